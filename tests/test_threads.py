"""Many Python threads, and forked processes, calling fastconv get correct results and no crash."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import numba
import numpy as np
import pytest

import fastconv
from fastconv import ndimage


def test_32_threads_call_concurrently(rng):
    # Numba's 'omp' and 'tbb' threading layers accept parallel kernels
    # launched from many threads at once ('workqueue' would abort the
    # process); fastconv never selects 'workqueue'.
    x = rng.standard_normal((64, 300))
    k = rng.standard_normal((3, 5))
    img = rng.standard_normal((40, 50)).astype(np.float32)
    expected = fastconv.convolve(x, k)
    expected_img = ndimage.correlate(img, k.astype(np.float32))
    errors = []
    calls = [0] * 32
    stop = time.monotonic() + 3.0

    def work(i):
        try:
            while time.monotonic() < stop:
                if not np.array_equal(fastconv.convolve(x, k), expected):
                    errors.append(f"thread {i}: convolve differs")
                if not np.array_equal(ndimage.correlate(img, k.astype(np.float32)), expected_img):
                    errors.append(f"thread {i}: ndimage.correlate differs")
                calls[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert all(c > 0 for c in calls)


def _forked_work(queue, x, k):
    import fastconv as fc

    queue.put((fc.convolve(x, k), fc.ndimage.correlate(x, k)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the 'fork' start method")
# JAX, when an earlier test imported it, warns at every fork (its own threads).
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_forked_worker_processes_compute_and_do_not_hang(rng):
    # The parent runs parallel kernels first, so a forked child inherits a
    # started OpenMP runtime; fastconv then runs the serial twins there.
    x = rng.standard_normal((60, 70))
    k = rng.standard_normal((3, 4))
    expected = (fastconv.convolve(x, k), ndimage.correlate(x, k))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_forked_work, args=(queue, x, k)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for conv, corr in results:
        np.testing.assert_array_equal(conv, expected[0])
        np.testing.assert_array_equal(corr, expected[1])


_FORKED_CALLS = {
    "oaconvolve": lambda x, w: fastconv.oaconvolve(x, w),
    "fftconvolve": lambda x, w: fastconv.fftconvolve(x, w),
    "conv2d": lambda x, w: fastconv.nn.conv2d(x, w, padding=1),
}


def _forked_call(queue, call, x, w):
    queue.put(_FORKED_CALLS[call](x, w))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the 'fork' start method")
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("call", list(_FORKED_CALLS))
def test_forked_child_gets_its_own_pool_threads(rng, call):
    # The parent's call starts fastconv's pool threads (the FFT engines', the
    # CNN engine's); a forked child has none of them, and must start its own
    # rather than wait forever on work queued to threads that do not exist.
    from fastconv._engines import _threads

    if call == "conv2d":
        x = rng.standard_normal((4, 16, 20, 20)).astype(np.float32)
        w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    else:
        x, w = rng.standard_normal(300_000), rng.standard_normal(1000)
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        expected = _FORKED_CALLS[call](x, w)
        assert _threads._pool is not None or fastconv.get_num_threads() == 1
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        proc = ctx.Process(target=_forked_call, args=(queue, call, x, w))
        proc.start()
        got = queue.get(timeout=120)
        proc.join(60)
    finally:
        fastconv.set_num_threads(before)
    assert proc.exitcode == 0
    np.testing.assert_array_equal(got, expected)


def test_shares_cover_the_range_once_in_contiguous_runs():
    from fastconv._engines import _threads

    for count, threads in [(0, 2), (1, 4), (5, 2), (7, 3), (100, 8), (3, 1)]:
        seen = []
        lock = threading.Lock()

        def work(share, lo, hi, seen=seen, lock=lock):
            with lock:
                seen.append((share, lo, hi, threading.get_ident()))

        _threads.shares(count, threads, work)
        seen.sort()
        n = max(1, min(threads, count))
        assert [s[0] for s in seen] == list(range(n))
        assert [(lo, hi) for _, lo, hi, _ in seen] == [(k * count // n, (k + 1) * count // n) for k in range(n)]
        assert seen[0][3] == threading.get_ident()  # the caller runs share 0


def test_shares_raise_after_every_share_finished():
    from fastconv._engines import _threads

    done = []

    def work(share, lo, hi):
        time.sleep(0.05 * share)
        done.append(share)
        if share == 0:
            raise ValueError("share 0 failed")

    with pytest.raises(ValueError, match="share 0 failed"):
        _threads.shares(3, 3, work)
    assert sorted(done) == [0, 1, 2]

    def late(share, lo, hi):
        if share == 2:
            raise KeyError("share 2")

    with pytest.raises(KeyError):
        _threads.shares(3, 3, late)


def test_shares_nested_in_a_pool_thread_run_serially():
    # Work that itself splits into shares, running in a pool thread, must
    # not wait on pool threads that are all busy: it runs its shares itself.
    from fastconv._engines import _threads

    inner = []

    def outer(share, lo, hi):
        _threads.shares(4, 4, lambda s, a, b: inner.append((share, s, threading.get_ident())))

    _threads.shares(2, 2, outer)
    by_outer = {}
    for share, s, ident in inner:
        by_outer.setdefault(share, set()).add(ident)
    assert sorted(s for _, s, _ in inner) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(by_outer[1]) == 1  # the pool thread ran all four inner shares


def test_each_runs_every_task_once_on_at_most_the_threads_asked_for():
    # The pool may be larger than a caller's thread count (another caller
    # asked for more); the FFT engines' memory bound per thread needs at
    # most that many of their tasks running at once.
    from fastconv._engines import _threads

    _threads.executor(6)
    lock = threading.Lock()
    running, peak, seen = [0], [0], []

    def run(task):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append(task)
        time.sleep(0.002)
        with lock:
            running[0] -= 1

    for threads in (1, 2, 3):
        peak[0], seen[:] = 0, []
        _threads.each(range(40), run, threads)
        assert sorted(seen) == list(range(40))
        assert 1 <= peak[0] <= threads
    _threads.each([], run, 3)  # nothing to do


def test_thread_count_follows_numba_per_calling_thread():
    # fastconv reads the count without Numba's launch check once the pool runs
    # (fastconv._config.threads); it must still be Numba's count, per thread.
    from fastconv import _config

    fastconv.convolve(np.ones(10), np.ones(3))  # the pool runs
    before = numba.get_num_threads()
    seen = {}
    try:
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(n)
            assert _config.threads() == fastconv.get_num_threads() == numba.get_num_threads() == n
        numba.set_num_threads(1)

        def other():
            seen["default"] = _config.threads(), numba.get_num_threads()
            numba.set_num_threads(1)
            seen["set"] = _config.threads()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    finally:
        numba.set_num_threads(before)
    assert seen["default"][0] == seen["default"][1]  # a new thread starts at Numba's default
    assert seen["set"] == 1

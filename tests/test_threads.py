"""Many Python threads, and forked processes, calling fastconv get correct results and no crash."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

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

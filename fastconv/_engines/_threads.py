"""fastconv's worker threads: one shared pool of Python threads for work that releases the GIL.

The channel-contracting and Winograd engines (whose products are NumPy BLAS
calls) and the FFT engines split a call's work into parts run side by side
on this pool; the direct and depthwise engines use Numba's own threads.
Handing work to a pool thread costs about 60 microseconds on the 2-core
reference machine (Numba's spinning threads start a parallel region in about
2), so only calls far longer than that use it.

* :func:`shares` runs ``work(share, lo, hi)`` over contiguous shares of
  ``range(count)``; the calling thread runs share 0 itself.
* :func:`each` runs a list of tasks on at most a given number of threads
  (the calling thread among them), each taking the next task when free.
* The engines give every share or task its own outputs, computed in a fixed
  order, so results do not depend on the thread count.
* A call from inside a pool thread runs its shares one after another, so
  nested use can never wait on itself.
* A forked child gets a new pool: the parent's threads do not exist there.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_size = 0
_local = threading.local()


def _mark_worker() -> None:
    _local.worker = True


def _after_fork_in_child() -> None:
    global _lock, _pool, _size
    _lock = threading.Lock()
    _pool = None
    _size = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_worker() -> bool:
    """True in one of the pool's threads."""
    return getattr(_local, "worker", False)


def executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, with at least ``workers`` threads."""
    global _pool, _size
    with _lock:
        if _pool is None or _size < workers:
            # Threads start only as work needs them, so the pool is sized for
            # the machine once.  A smaller pool it replaces is not shut down:
            # a caller may still be submitting to it; its threads exit once
            # it is no longer referenced.
            _size = max(workers, os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(_size, thread_name_prefix="fastconv", initializer=_mark_worker)
        return _pool


def shares(count: int, threads: int, work) -> None:
    """``work(share, lo, hi)`` for ``threads`` contiguous shares ``lo .. hi`` of ``range(count)``.

    Share ``k`` covers ``k * count // threads`` to ``(k + 1) * count // threads``
    (``threads`` is clipped to ``1 .. count``).  Returns when every share is
    done; an exception in a share is raised here after all have finished.
    """
    threads = max(1, min(threads, count))
    if threads == 1 or in_worker():
        for k in range(threads):
            work(k, k * count // threads, (k + 1) * count // threads)
        return
    pool = executor(threads - 1)
    futures = [pool.submit(work, k, k * count // threads, (k + 1) * count // threads) for k in range(1, threads)]
    errors = []
    try:
        work(0, 0, count // threads)
    finally:
        for future in futures:  # every share has finished before this returns or raises
            try:
                future.result()
            except BaseException as error:  # noqa: BLE001 - re-raised below
                errors.append(error)
    if errors:
        raise errors[0]


def each(tasks, run, threads: int) -> None:
    """``run(task)`` for every task, on at most ``threads`` threads that take the next task when free.

    For tasks of uneven cost (FFT block groups); the calling thread is one
    of the ``threads``.  However large the pool, at most ``threads`` tasks
    run at once, so a caller's memory bound per thread holds.
    """
    tasks = list(tasks)
    lock = threading.Lock()
    pending = iter(tasks)
    done = object()

    def pull(share, lo, hi):
        while True:
            with lock:
                task = next(pending, done)
            if task is done:
                return
            run(task)

    shares(len(tasks), threads, pull)

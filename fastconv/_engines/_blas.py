"""fastconv's matrix products: single-threaded BLAS calls, run side by side on fastconv's threads.

The channel-contracting engine multiplies one block at a time.  Letting
NumPy's BLAS thread each small product was measured 2-8x *slower* than one
thread on a shared 2-core host (OpenBLAS workers spin and yield while the
gather runs, and wait on each other when a core is taken), so fastconv runs
its own threads, one block each, and asks the BLAS for one thread during the
call.  The BLAS thread count is process-wide: while a fastconv call runs,
other threads' NumPy products are single-threaded too, and it is restored
when the last concurrent fastconv call returns.  Where the BLAS cannot be
found (not OpenBLAS, or not Linux), products keep the BLAS's own threads and
blocks run one after the other.

A product of one block by one thread gives the same bits whatever the number
of threads, so results do not depend on the thread count.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from contextlib import contextmanager

import numpy as np

from . import _threads

_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)

_lock = threading.Lock()
_depth = 0
_saved = None


@functools.cache
def _controls():
    """``(get, set)`` of the loaded OpenBLAS's thread count, or None."""
    import numpy  # noqa: F401 - make sure NumPy's BLAS is loaded

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                get, set_ = getattr(lib, get_name), getattr(lib, set_name)
                get.restype = ctypes.c_int
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None


@contextmanager
def single_threaded():
    """Run the body with NumPy's BLAS on one thread; yields whether that could be arranged."""
    global _depth, _saved
    controls = _controls()
    if controls is None:
        yield False
        return
    get, set_ = controls
    with _lock:
        if _depth == 0:
            _saved = get()
            set_(1)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                set_(_saved)


def run(tasks, work, threads: int) -> None:
    """``work(task, worker)`` for every task, spread over ``threads`` workers in contiguous runs.

    ``worker`` (0 .. threads - 1) indexes per-worker scratch.  With one
    worker (or when the BLAS thread count cannot be set) tasks run in order
    in the calling thread.  The workers are :mod:`._threads`' pool.
    """
    tasks = list(tasks)
    with single_threaded() as alone:

        def runs(worker, lo, hi):
            # inf - inf and overflow give NaN and inf silently, as in the
            # Numba engines and torch (NumPy's matmul would warn; its error
            # state is per thread, so each worker sets it).
            with np.errstate(invalid="ignore", over="ignore"):
                for task in tasks[lo:hi]:
                    work(task, worker)

        _threads.shares(len(tasks), threads if alone else 1, runs)

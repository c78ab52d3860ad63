"""The one place that sets Numba options for every fastconv kernel.

Kernels never carry ad-hoc flags: they use :func:`kernel` (a parallel driver) or
:func:`inline` (a tiny helper that LLVM inlines into its caller).

* ``cache=True`` so a kernel compiles once per machine and loads from disk in
  milliseconds afterwards; ``FASTCONV_CACHE=0`` switches caching off.
* ``fastmath={'contract'}`` lets LLVM fuse ``a * b + c`` into one FMA
  instruction.  Reassociation is deliberately *not* allowed: it would let the
  summation order depend on vector width and thread count, and fastconv
  promises bitwise-identical results at any thread count.
* ``error_model='numpy'`` so integer division by zero does not raise inside a
  kernel (kernels only divide by validated, non-zero sizes anyway).
* ``boundscheck`` is left unset so ``NUMBA_BOUNDSCHECK=1`` turns it on for a
  whole test run.

Forked processes: GNU OpenMP, the threading layer Numba picks here, cannot
run a parallel region in a child forked after the parent ran one (Numba then
terminates the child).  :func:`launch` therefore gives, in such a child, a
serial twin of a parallel kernel: the same code compiled without
``parallel`` (``prange`` runs as ``range``), so forked workers
(``multiprocessing`` with the default 'fork' start method on Linux) compute
the same results on one thread instead of dying.  The twin has its own name,
so it has its own entry in the on-disk cache.
"""

from __future__ import annotations

import os
import threading
import types

import numba

from .._config import CACHE

_COMMON = dict(cache=CACHE, nogil=True, error_model="numpy", fastmath={"contract"})


def kernel(func):
    """Compile ``func`` as a parallel kernel (``prange`` over independent work)."""
    return numba.njit(parallel=True, **_COMMON)(func)


def serial(func):
    """Compile ``func`` as a serial kernel (called from a parallel driver or alone)."""
    return numba.njit(**_COMMON)(func)


def share_kernel(func, signature):
    """Compile ``func`` for one ``signature`` as a C function that parallel launchers call.

    A parallel kernel that calls another jitted function links that
    function's code into its own and compiles it again, twice (the parallel
    region and its driver).  A launcher that receives this compiled function
    as an *argument* calls it through its address instead (a Numba
    first-class function), so the heavy code compiles once; the call costs
    about 10 us more per launch.
    """
    if numba.config.DISABLE_JIT:
        return func
    return numba.cfunc(signature, cache=CACHE, error_model="numpy", fastmath={"contract"})(func)


def in_fresh_thread(build):
    """``build()`` run in a new thread; returns its result or raises its exception.

    For compiles.  CPython 3.11 keeps its frames in 16 KiB chunks and unmaps a
    chunk as soon as the call depth drops back below it, so a compile whose
    deep recursion goes up and down across a chunk boundary maps and unmaps
    one chunk hundreds of thousands of times: the direct engine's compile
    took 14 s instead of 7.5 s when called a few frames deeper.  A new
    thread starts the compile at the same shallow depth, whatever the caller's.
    """
    outcome = []

    def run():
        try:
            outcome.append((True, build()))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="fastconv-compile")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def inline(func):
    """Compile a tiny helper that is always inlined into its caller."""
    return numba.njit(inline="always", **_COMMON)(func)


_forked = False
_twins = {}


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _parallel_unsafe_here() -> bool:
    """True in a forked child whose parent started Numba's OpenMP threads."""
    if not _forked:
        return False
    try:
        return numba.threading_layer() == "omp"
    except ValueError:  # no threading layer was started before the fork
        return False


def rebind(func, name: str, glob: dict | None = None):
    """A Python copy of ``func`` (a function, or the one a dispatcher compiles) named ``name``.

    It looks up its globals in ``glob`` (default: ``func``'s own).  A copy
    has its own name, so compiled it has its own entry in the on-disk cache.
    """
    func = getattr(func, "py_func", func)  # a plain function under NUMBA_DISABLE_JIT=1
    copy = types.FunctionType(func.__code__, func.__globals__ if glob is None else glob, name,
                              func.__defaults__, func.__closure__)
    copy.__qualname__ = name
    copy.__doc__ = func.__doc__
    return copy


def launch(parallel_kernel):
    """``parallel_kernel``, or its serial twin where parallel regions cannot run (see above)."""
    if not _parallel_unsafe_here():
        return parallel_kernel
    twin = _twins.get(parallel_kernel)
    if twin is None:
        func = getattr(parallel_kernel, "py_func", parallel_kernel)
        twin = _twins[parallel_kernel] = serial(rebind(func, func.__qualname__ + "_serial"))
    return twin

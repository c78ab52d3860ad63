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
"""

from __future__ import annotations

import numba

from .._config import CACHE

_COMMON = dict(cache=CACHE, nogil=True, error_model="numpy", fastmath={"contract"})


def kernel(func):
    """Compile ``func`` as a parallel kernel (``prange`` over independent work)."""
    return numba.njit(parallel=True, **_COMMON)(func)


def serial(func):
    """Compile ``func`` as a serial kernel (called from a parallel driver or alone)."""
    return numba.njit(**_COMMON)(func)


def inline(func):
    """Compile a tiny helper that is always inlined into its caller."""
    return numba.njit(inline="always", **_COMMON)(func)

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
import types

import numba
import numpy as np

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


@inline
def index(i):
    """``i`` (>= 0) as an unsigned index, so Numba skips its negative-index wraparound.

    Numba wraps a signed index it cannot prove non-negative (``i + n`` when
    ``i < 0``); inside a loop that select makes the address non-affine and
    keeps the loop scalar or turns it into gathers and scatters.  Use this for
    an inner loop's index such as ``off + k`` whose offset LLVM cannot bound.
    """
    return np.uint64(i)


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


# --------------------------------------------------------------------------
# Calling a compiled function by address
# --------------------------------------------------------------------------
# Numba links the code of every function a kernel calls into the kernel's
# own and optimises and compiles it again there; a parallel loop is built in
# four such levels (its body, two wrappers, the kernel).  A large callee
# therefore goes through LLVM once per level.  Called by address instead, it
# compiles once, and the caller stays small.  The callee must be compiled,
# from Python, for exactly the argument types the caller passes (a
# first-class function is never cast to); the call goes through Numba's own
# calling convention, so an exception raised in the callee (an index error
# under NUMBA_BOUNDSCHECK=1) still reaches the caller.


def array_key(a) -> tuple:
    """What ``numba.typeof(a)`` depends on for a NumPy array (dtype, ndim, layout, writable, aligned)."""
    f = a.flags
    return a.dtype, a.ndim, f.c_contiguous, f.f_contiguous, f.writeable, f.aligned


def address(dispatcher, signature):
    """The address of ``dispatcher`` compiled (or loaded from the cache) for ``signature``.

    Under NUMBA_DISABLE_JIT=1 the dispatcher is a plain function, returned as it is.
    """
    if not hasattr(dispatcher, "overloads"):
        return dispatcher
    dispatcher.compile(signature.args)
    compiled = dispatcher.overloads[signature.args]
    return compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)


_addresses: dict = {}


def operand_key(a):
    """What an operand's Numba type depends on: :func:`array_key` for an array, the type of a scalar."""
    return array_key(a) if isinstance(a, np.ndarray) else type(a)


def address_for(dispatcher, signature_of, operands):
    """:func:`address` of ``dispatcher`` for ``signature_of(*types of operands)``, remembered.

    Remembered by what the operands' Numba types depend on (:func:`array_key`
    for arrays, the type of a scalar), which costs a microsecond where
    ``numba.typeof`` costs several per array.
    """
    key = (dispatcher, *map(operand_key, operands))
    found = _addresses.get(key)
    if found is None:
        found = _addresses[key] = address(dispatcher, signature_of(*(numba.typeof(a) for a in operands)))
    return found


def function_at(signature_of):
    """An intrinsic ``at(address, operands)``: the function at ``address`` (see :func:`address`).

    Its signature is ``signature_of(*types of the operands tuple)``, so
    the types the caller passes decide which compiled function the address
    must be.  Under NUMBA_DISABLE_JIT=1, ``at`` returns ``address``, the
    plain function :func:`address` gave.
    """
    if numba.config.DISABLE_JIT:
        return lambda address, operands: address

    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def at(typingctx, address, operands):
        if not isinstance(address, types.Integer) or not isinstance(operands, types.BaseTuple):
            return None
        function = types.FunctionType(signature_of(*operands.types))

        def codegen(context, builder, sig, args):
            value = cgutils.create_struct_proxy(function)(context, builder)
            null = context.get_constant_null(types.voidptr)
            value.c_addr = null
            value.py_addr = null
            value.jit_addr = builder.inttoptr(args[0], context.get_value_type(types.voidptr))
            return value._getvalue()

        return function(address, operands), codegen

    return at


"""Argument checks shared by every face.

Every message names the parameter, says what is allowed and what was given.
Where scipy has a well-known wording (its own tests match on it), the message
contains that wording too.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import numpy as np


def check_choice(value, name: str, allowed, hint: str = "") -> str:
    """Return ``value`` if it is one of ``allowed`` (strings), else raise ValueError."""
    if isinstance(value, str) and value in allowed:
        return value
    listed = ", ".join(repr(a) for a in allowed)
    extra = f" ({hint})" if hint else ""
    raise ValueError(f"{name} must be one of {listed}; got {value!r}{extra}")


def check_signal_array(a: np.ndarray, name: str) -> None:
    """Refuse dtypes that cannot be convolved numerically."""
    kind = a.dtype.kind
    if kind not in "biufc":
        raise TypeError(
            f"{name} must have a boolean, integer, floating or complex dtype; got dtype {a.dtype}"
        )
    if kind in "fc" and a.dtype.itemsize > (8 if kind == "f" else 16):
        raise TypeError(
            f"{name} has extended precision dtype {a.dtype}, which fastconv does not support; "
            f"convert it to float64 / complex128 first"
        )


def check_same_ndim(in1: np.ndarray, in2: np.ndarray) -> None:
    if in1.ndim != in2.ndim:
        raise ValueError(
            "in1 and in2 should have the same dimensionality; "
            f"got in1.ndim={in1.ndim} and in2.ndim={in2.ndim}"
        )


def check_not_empty(a: np.ndarray, name: str) -> None:
    if a.size == 0:
        raise ValueError(f"{name} cannot be empty; got shape {a.shape}")


def normalize_axes(axes, ndim: int) -> tuple[int, ...]:
    """Return ``axes`` as a sorted tuple of distinct non-negative axes of an ``ndim`` array.

    ``None`` means every axis.  Messages follow ``scipy.signal.fftconvolve``.
    """
    if axes is None:
        return tuple(range(ndim))
    if not isinstance(axes, Iterable) or isinstance(axes, (str, bytes)):
        axes = [axes]
    axes = list(axes)
    if not axes:
        raise ValueError("axes: when provided, axes cannot be empty")
    try:
        axes = [operator.index(a) for a in axes]
    except TypeError:
        raise ValueError(
            f"axes must be a scalar or iterable of integers; got {axes!r}"
        ) from None
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"axes exceeds dimensionality of input: axis {a} for arrays of ndim {ndim}"
            )
    axes = [a % ndim for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes: all axes must be unique; got {axes!r}")
    return tuple(sorted(axes))


def check_scalar(value, name: str):
    """Return ``value`` as a Python/NumPy scalar; accept one-element arrays like scipy."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{name} must be scalar or an array with one element; got shape {arr.shape}")
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be a number; got {value!r}")
    return arr.reshape(()).item()


_FILL_CAST = "could not cast `fillvalue` directly to the output type"


def check_fillvalue(value, dtype: np.dtype):
    """``value`` converted to ``dtype`` as ``scipy.signal.convolve2d`` converts its fillvalue.

    Returns a NumPy scalar of ``dtype``.  As scipy: arrays (0-d included) must
    cast safely to ``dtype``; Python and NumPy scalars are converted by value
    (``0.75`` becomes ``0`` for integer output) and must fit; one element
    exactly.  fastconv's own rules: a complex value with real output is
    accepted only when its imaginary part is 0; strings and None are refused
    with a TypeError.  Every other failure is a ValueError; all name
    `fillvalue` and contain scipy's wording where scipy has one.
    """
    dtype = np.dtype(dtype)
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"fillvalue must be a number; got {value!r}")
    if not isinstance(value, (int, float, complex, list, tuple, np.generic)):
        value = np.asarray(value)  # ndarrays and other array objects
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc" or not np.can_cast(value.dtype, dtype, "safe"):
            raise ValueError(
                f"{_FILL_CAST}: a fillvalue array of dtype {value.dtype} does not cast safely "
                f"to {dtype}"
            )
        arr = value.astype(dtype)
    else:
        # Python ints beyond int64 are numbers too (object dtype here).
        probe = np.asarray(value)
        if probe.dtype.kind not in "biufcO" or (
            probe.dtype.kind == "O" and not all(isinstance(v, int) for v in probe.flat)
        ):
            raise TypeError(f"fillvalue must be a number; got {value!r}")
        if probe.dtype.kind == "c" and dtype.kind != "c":
            if np.any(probe.imag != 0):
                raise ValueError(
                    f"{_FILL_CAST}: fillvalue {value!r} is complex but the output dtype is {dtype}"
                )
            value = probe.real
        try:
            arr = np.array(value, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{_FILL_CAST}: fillvalue {value!r} as {dtype}: {exc}") from None
    if arr.size == 0:
        raise ValueError(
            f"fillvalue cannot be empty; got shape {arr.shape} "
            "(`fillvalue` cannot be an empty array.)"
        )
    if arr.size != 1:
        raise ValueError(
            f"fillvalue must be scalar or an array with one element; got shape {arr.shape} "
            "(`fillvalue` must be scalar or an array with one element.)"
        )
    return arr.reshape(())[()]

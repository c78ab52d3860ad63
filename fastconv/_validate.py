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

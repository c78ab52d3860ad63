"""Random test data and the array kinds fastconv must accept and return."""

from __future__ import annotations

import numpy as np
import pytest


def random_array(rng, shape, dtype):
    """Random values of ``dtype``: small integers (so exact sums are checkable), or normals."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -50), min(info.max, 50)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _strict():
    try:
        import array_api_strict
    except ImportError:
        return None
    return array_api_strict


# Each kind: (name, converter from NumPy, check that the result is of that kind).
ARRAY_KINDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("numpy-readonly", id="numpy-readonly"),
    pytest.param("array_api_strict", id="array_api_strict"),
    pytest.param("torch", id="torch"),
]


def to_kind(kind: str, a: np.ndarray):
    if kind == "numpy":
        return a
    if kind == "numpy-readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if kind == "array_api_strict":
        xps = _strict()
        if xps is None:
            pytest.skip("array-api-strict is not installed")
        return xps.asarray(a)
    if kind == "torch":
        torch = _torch()
        if torch is None:
            pytest.skip("torch is not installed")
        return torch.from_numpy(np.ascontiguousarray(a))
    raise AssertionError(kind)


def is_kind(kind: str, out) -> bool:
    if kind.startswith("numpy"):
        return isinstance(out, np.ndarray)
    if kind == "array_api_strict":
        return type(out).__module__.startswith("array_api_strict")
    if kind == "torch":
        return type(out).__module__.startswith("torch")
    raise AssertionError(kind)


def as_numpy(out) -> np.ndarray:
    if isinstance(out, np.ndarray):
        return out
    if type(out).__module__.startswith("torch"):
        return out.numpy()
    return np.from_dlpack(out)

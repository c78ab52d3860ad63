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


def _optional(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        pytest.skip(f"{module} is not installed")


# Each kind: (name, converter from NumPy, check that the result is of that kind).
ARRAY_KINDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("numpy-readonly", id="numpy-readonly"),
    pytest.param("array_api_strict", id="array_api_strict"),
    pytest.param("torch", id="torch"),
    pytest.param("jax", id="jax"),
    pytest.param("dask", id="dask"),
]


def to_kind(kind: str, a: np.ndarray):
    if kind == "numpy":
        return a
    if kind == "numpy-readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if kind == "array_api_strict":
        return _optional("array_api_strict").asarray(a)
    if kind == "torch":
        return _optional("torch").from_numpy(np.ascontiguousarray(a))
    if kind == "jax":
        jnp = _optional("jax.numpy")
        if a.dtype == np.float64 and not _optional("jax").config.jax_enable_x64:
            pytest.skip("jax is configured for 32-bit floats")
        return jnp.asarray(a)
    if kind == "dask":
        return _optional("dask.array").from_array(a, chunks=tuple(max(1, n // 2) for n in a.shape))
    raise AssertionError(kind)


def is_kind(kind: str, out) -> bool:
    if kind.startswith("numpy"):
        return isinstance(out, np.ndarray)
    if kind == "array_api_strict":
        return type(out).__module__.startswith("array_api_strict")
    if kind == "torch":
        return type(out).__module__.startswith("torch")
    if kind == "jax":
        return type(out).__module__.startswith("jax")
    if kind == "dask":
        return type(out).__module__.startswith("dask")
    raise AssertionError(kind)


def as_numpy(out) -> np.ndarray:
    if isinstance(out, np.ndarray):
        return out
    module = type(out).__module__
    if module.startswith("torch"):
        return out.numpy()
    if module.startswith("dask"):
        return np.asarray(out.compute())
    if module.startswith("jax"):
        return np.asarray(out)
    return np.from_dlpack(out)

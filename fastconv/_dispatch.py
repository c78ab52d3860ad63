"""The array-API boundary: any array in, the caller's kind of array out.

This is the only module that imports ``array_api_compat``.  Inputs are turned
into NumPy arrays (DLPack, zero-copy for CPU arrays where the producer allows
it); results go back through the caller's namespace.  Python scalars and
lists are NumPy's business, as in scipy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# DLPack device types that are host memory NumPy can read.
_DL_CPU = 1
_DL_CUDA_HOST = 3


def _is_array_object(a) -> bool:
    import array_api_compat

    return array_api_compat.is_array_api_obj(a)


class Kind(NamedTuple):
    """The caller's kind of array: what :func:`from_numpy` turns a result into."""

    xp: object  # the array namespace
    device: object = None  # the device of the caller's array (None: NumPy's)


_NUMPY = Kind(np)


def namespace(*arrays) -> Kind:
    """The array namespace and device of the array arguments.

    NumPy arrays, Python scalars and lists count as plain data: the result
    follows the one other array library among the arguments (on the device
    of the first such argument), or NumPy.  Raises TypeError when arrays of
    two other libraries are mixed.
    """
    import array_api_compat

    found = [
        a for a in arrays if not isinstance(a, (np.ndarray, np.generic)) and _is_array_object(a)
    ]
    if not found:
        return _NUMPY
    try:
        xp = array_api_compat.array_namespace(*found)
    except TypeError as exc:
        names = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in found})
        raise TypeError(
            f"the array arguments must come from one array library; got {' and '.join(names)}"
        ) from exc
    try:
        device = array_api_compat.device(found[0])
    except Exception:  # noqa: BLE001 - a library without a device query: its default
        device = None
    return Kind(xp, device)


def _is_python_data(a) -> bool:
    return isinstance(a, (int, float, complex, bool, list, tuple))


def to_numpy(a, name: str) -> np.ndarray:
    """A NumPy view of ``a`` (a copy only where the producer cannot share memory)."""
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, np.generic) or _is_python_data(a):
        return np.asarray(a)
    _check_host(a, name)
    module = type(a).__module__.split(".")[0]
    if module == "torch":
        if a.requires_grad:
            raise TypeError(
                f"{name} is a torch tensor that requires grad; fastconv does not record "
                f"autograd history. Pass {name}.detach() to compute without gradients"
            )
        a = a.resolve_conj().resolve_neg()
    if hasattr(a, "__dlpack__"):
        try:
            return np.from_dlpack(a)
        except (BufferError, TypeError, RuntimeError, ValueError):
            pass  # e.g. a dtype DLPack cannot carry; fall back to the buffer protocol
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - re-raised with the parameter name
        raise TypeError(f"{name} could not be converted to a NumPy array: {exc}") from exc


def _check_host(a, name: str) -> None:
    """Refuse arrays that live on an accelerator, naming the device."""
    device_fn = getattr(a, "__dlpack_device__", None)
    if device_fn is None:
        return
    try:
        dev_type, dev_id = device_fn()
    except Exception:  # noqa: BLE001 - a producer without a usable device query
        return
    if int(dev_type) not in (_DL_CPU, _DL_CUDA_HOST):
        import array_api_compat

        try:
            device = array_api_compat.device(a)
        except Exception:  # noqa: BLE001
            device = f"DLPack device type {int(dev_type)}, id {dev_id}"
        raise TypeError(
            f"{name} lives on device {device!s}; fastconv computes on the CPU only. "
            f"Move it to host memory first (for example with .cpu() or numpy.asarray)"
        )


def from_numpy(result: np.ndarray, kind: Kind):
    """``result`` as an array of the caller's ``kind`` (:func:`namespace`), on its (CPU) device.

    A 0-d result (the product of two 0-d inputs) comes back to NumPy callers
    as a NumPy scalar, as ``scipy.signal`` returns it, and to other libraries
    as a 0-d array.
    """
    xp = kind.xp
    if xp is np:
        return result[()] if np.ndim(result) == 0 else result
    import array_api_compat

    if array_api_compat.is_numpy_namespace(xp):
        return result[()] if np.ndim(result) == 0 else result
    # np.require, not np.ascontiguousarray: the latter turns 0-d into shape (1,).
    result = np.require(np.asarray(result), requirements="C")
    if array_api_compat.is_torch_namespace(xp):
        import torch

        return torch.from_numpy(result)  # a CPU tensor: inputs on other devices are refused
    if kind.device is not None:
        try:
            return xp.asarray(result, device=kind.device)
        except TypeError:  # an asarray without a device argument
            pass
    return xp.asarray(result)

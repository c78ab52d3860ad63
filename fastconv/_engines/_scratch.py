"""Scratch memory the engines keep from one call to the next, per calling thread.

A CNN layer's workspace (transformed weights and tiles, column blocks) is
several megabytes.  Fresh memory of that size comes from the OS as new pages
on every call, and their first touch (page faults, zeroing, and at times the
kernel compacting memory for huge pages) was measured to cost up to a fifth
of a 10 ms layer.  So an engine asks for its scratch by slot name: the first
call of a thread allocates it and later calls of that thread reuse it,
growing it when a larger layer needs more.  At most :data:`LIMIT_BYTES` are
kept per thread; beyond that a call gets fresh memory it frees on return.
The memory a thread kept is freed when the thread ends.

Scratch never reaches the caller: results are always fresh arrays.  Two calls
from the same thread cannot overlap, and calls from other threads use their
own slots, so a slot is never in use twice at once.
"""

from __future__ import annotations

import math
import threading

import numpy as np

# Bytes of scratch kept per calling thread.
LIMIT_BYTES = 64 << 20
# Alignment of every scratch array (a cache line).
_ALIGN = 64

_local = threading.local()


def empty(slot: str, shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape``, the memory of this thread's ``slot`` where it can be kept."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    slots = _local.__dict__.setdefault("slots", {})
    raw = slots.get(slot)
    if raw is None or raw.nbytes < nbytes + _ALIGN:
        slots.pop(slot, None)
        raw = np.empty(nbytes + _ALIGN, np.uint8)
        if sum(b.nbytes for b in slots.values()) + raw.nbytes <= LIMIT_BYTES:
            slots[slot] = raw
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def per_worker(slot: str, workers: int, shape, dtype) -> np.ndarray:
    """``(workers,) + shape`` scratch whose part for each worker is C-contiguous and on cache lines of its own.

    Workers writing small parts that share a cache line would pass the line
    between their cores on every write (a 224-byte part per worker, written
    once per input row, made the Winograd input transform slower on two
    threads than on one).
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    size = math.prod(shape)
    pitch = -(-size * dtype.itemsize // _ALIGN) * _ALIGN // dtype.itemsize
    return empty(slot, (workers, pitch), dtype)[:, :size].reshape((workers,) + shape)


def kept_bytes() -> int:
    """Bytes of scratch the calling thread keeps now."""
    return sum(b.nbytes for b in _local.__dict__.get("slots", {}).values())

"""Memory for large results, used again once the caller has dropped them.

Fresh memory costs a page fault (and the kernel's zeroing) per page on first
write.  With glibc's allocator a block of 32 MiB or more is mapped fresh
from the OS on every allocation and unmapped when freed: a 2048 x 2048
float64 image filtered with a 3 x 3 kernel took 5.0 ms into fresh memory
and 2.7 ms into memory written before.  Smaller blocks come from glibc's
heap, but fresh too whenever the heap was given back to the OS (other code
in the process freed large blocks); NumPy asks for huge pages on arrays of
4 MiB or more, and where the OS must find and zero those on first touch a
call of a CNN layer with a 25 MiB output, made just after PyTorch's, took
58 ms against 16 ms.  So the direct engine and the CNN layers' engines
take their outputs of :data:`MIN_BYTES` or more from here (the FFT engines'
outputs come from the FFT library).  When the last array that uses such a
block (the result and every view of it, a torch tensor made from it, ...)
is gone, the block is kept, and the next large result of about its size is
written into it.

* At most one block is kept, of at most :data:`LIMIT_BYTES`; nothing is kept
  while the caller holds the results.  ``FASTCONV_RECYCLE=0`` turns it off.
* A block is handed out again only after no array refers to it any more,
  so a result never shares memory with anything the caller can still see.
* The block is kept by the process, not per thread: calls from several
  threads take turns at a lock, and a forked child starts with none.
"""

from __future__ import annotations

import os
import threading
import weakref

import numpy as np

from ._config import RECYCLE

# Results at least this large come from here (where NumPy asks for huge pages).
MIN_BYTES = 4 << 20
# Larger blocks are never kept: their memory goes back to the OS.
LIMIT_BYTES = 512 << 20

_lock = threading.Lock()
_kept: list = []  # at most one raw block (uint8 array) no array refers to


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _kept.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def empty(nbytes: int) -> np.ndarray:
    """A writable uint8 array of ``nbytes``, in a kept block if one fits.

    Views of it keep it alive; once none is left its memory may serve the
    next call.
    """
    if not RECYCLE or not MIN_BYTES <= nbytes <= LIMIT_BYTES:
        return np.empty(nbytes, np.uint8)
    block = None
    with _lock:
        if _kept and nbytes <= _kept[0].nbytes <= nbytes + nbytes // 4:
            block = _kept.pop()
    if block is None:
        block = np.empty(nbytes, np.uint8)
    # The array handed out does not own its memory and its base is a
    # memoryview, not an array: NumPy then makes every view of it refer to
    # it (not to ``block``), so it lives exactly as long as anything uses
    # the block.
    root = np.frombuffer(memoryview(block), np.uint8, count=nbytes)
    assert not isinstance(root.base, np.ndarray)
    weakref.finalize(root, _release, block).atexit = False
    return root


def _release(block: np.ndarray) -> None:
    with _lock:
        _kept[:] = [block]


def kept_bytes() -> int:
    """Bytes of result memory kept now (0 or one block)."""
    return sum(b.nbytes for b in _kept)


def release() -> None:
    """Free the kept block."""
    with _lock:
        _kept.clear()

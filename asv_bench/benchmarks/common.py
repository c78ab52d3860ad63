"""Shared helpers of the asv suite: data, anchors behind import guards, skips.

Only fastconv's public API is used here and in the benchmark files, so the
suite runs against any commit: a feature that a commit lacks is detected by
a probe and its benchmarks are skipped (asv skips a benchmark whose ``setup``
raises ``NotImplementedError``).

Anchors (numpy, scipy, OpenCV, torch) are imported once, at module level,
behind guards: a missing package skips its benchmark classes, never fails.
With asv's ``forkserver`` launch method (set in ``asv.conf.json``) these
imports, and numba's, are paid once per run instead of once per benchmark
process.  Importing starts no threads, so forking afterwards is safe; every
kernel runs first in a child's ``setup``.
"""

from __future__ import annotations

import functools
import importlib

import numba  # imported here, once, for every forked benchmark process
import numpy as np

import fastconv


def optional(module: str):
    """The module, or None when it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# The bench's allocator setting, where the commit under test has it: glibc
# keeps freed memory, so no library's large outputs come back as fresh pages
# (a page fault each) on every call (see fastconv._bench.keep_freed_memory).
# Forked benchmark processes inherit it.
_keep_freed_memory = getattr(optional("fastconv._bench"), "keep_freed_memory", None)
if _keep_freed_memory is not None:
    _keep_freed_memory()

scipy_signal = optional("scipy.signal")
scipy_ndimage = optional("scipy.ndimage")
scipy_fft = optional("scipy.fft")
cv2 = optional("cv2")
torch = optional("torch")

DTYPES = ["float64", "float32"]


def threads() -> int:
    """The thread count fastconv uses; the anchors are given the same."""
    return numba.get_num_threads()


def require(module, name: str):
    """Skip the benchmark (asv's way: ``NotImplementedError`` in setup) when ``module`` is missing."""
    if module is None:
        raise NotImplementedError(f"{name} is not installed")
    return module


def skip_if_over(work: float, limit: float, why: str) -> None:
    """Skip a case whose estimated ``work`` exceeds ``limit`` (slow or memory-hungry anchors)."""
    if work > limit:
        raise NotImplementedError(f"skipped: {why} ({work:.3g} > {limit:.3g})")


@functools.cache
def probe_method(method: str) -> bool:
    """Whether this fastconv accepts ``method=...`` (``'fft'`` and ``'oa'`` arrived later)."""
    try:
        fastconv.convolve(np.ones(8), np.ones(3), method=method)
    except (NotImplementedError, ValueError):
        return False
    return True


def require_method(method: str) -> None:
    if not probe_method(method):
        raise NotImplementedError(f"fastconv at this commit has no method={method!r}")


# --- data: deterministic, cached per process ------------------------------------------


@functools.lru_cache(maxsize=8)
def random(shape: tuple, dtype: str, seed: int = 0) -> np.ndarray:
    """Standard-normal data of ``shape``, read-only so no benchmark can change it."""
    out = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    out.flags.writeable = False
    return out


def torch_tensor(array: np.ndarray):
    """A torch tensor of a copy of ``array`` (torch wants writeable memory)."""
    return torch.from_numpy(np.array(array))


def set_anchor_threads() -> int:
    """Give OpenCV and torch fastconv's thread count; returns it (for scipy.fft's workers)."""
    n = threads()
    if cv2 is not None:
        cv2.setNumThreads(n)
    if torch is not None:
        torch.set_num_threads(n)
    return n


def warm(func, *args, **kwargs):
    """Call ``func`` once so that Numba compiles (or loads from its disk cache) before timing."""
    return func(*args, **kwargs)


# --- memory -----------------------------------------------------------------------------


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {key} in /proc/self/status")


def call_memory(func) -> float:
    """Bytes by which ``func()`` raised the process's peak resident size above its size before the call.

    Unlike asv's ``peakmem`` (the whole process's peak, imported libraries
    included), this is the call's own footprint: output, copies and scratch.
    Linux only (it resets the peak through ``/proc/self/clear_refs``); NaN elsewhere.
    """
    try:
        before = _status_bytes("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    func()
    return float(_status_bytes("VmHWM") - before)


class Anchor:
    """Base of the anchors' benchmark classes: another library's call on fastconv's grid.

    An anchor is a reference line on the dashboard, not what regressions are
    looked for in, so it is timed in one round (fastconv's classes keep asv's
    two), which keeps a full run of the suite within a few minutes.
    """

    rounds = 1

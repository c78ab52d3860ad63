"""The signal face, 1-D: ``convolve`` / ``correlate`` / ``fftconvolve`` / ``oaconvolve``, ``'full'`` output.

fastconv's classes come first; each anchor's class measures the same grid
(dtype x signal length n x kernel size k) so the dashboard shows them side
by side.  ``setup_cache`` compiles every kernel of a class's grid once
(Numba caches it on disk) and ``setup`` calls once more in the measuring
process, so compile time never counts as run time; compile time itself is
tracked in ``bench_startup``.
"""

from __future__ import annotations

import numpy as np

import fastconv

from .common import (
    DTYPES,
    Anchor,
    call_memory,
    random,
    require,
    require_method,
    scipy_signal,
    set_anchor_threads,
    skip_if_over,
    torch,
    torch_tensor,
    warm,
)

SIZES = [10_000, 1_000_000]
KERNELS = [3, 15, 63]
GRID = [DTYPES, SIZES, KERNELS]
NAMES = ["dtype", "n", "k"]


def _data(dtype, n, k):
    return random((n,), dtype), random((k,), dtype, 1)


def _warm_grid(func, grid=GRID):
    for dtype in grid[0]:
        for k in grid[2]:
            func(*_data(dtype, grid[1][-1], k))


class Convolve1D:
    """``fastconv.convolve(x, v)``: the call users make (``method='auto'``)."""

    params = GRID
    param_names = NAMES

    def setup_cache(self):
        _warm_grid(fastconv.convolve)

    def setup(self, dtype, n, k):
        self.x, self.v = _data(dtype, n, k)
        warm(fastconv.convolve, self.x, self.v)

    def time_convolve(self, dtype, n, k):
        fastconv.convolve(self.x, self.v)


class Correlate1D:
    """``fastconv.correlate(x, template, 'valid')``: matched filtering, no flip."""

    params = [DTYPES, [1_000_000], [63]]
    param_names = NAMES

    def setup_cache(self):
        _warm_grid(lambda x, v: fastconv.correlate(x, v, mode="valid"), self.params)

    def setup(self, dtype, n, k):
        self.x, self.v = _data(dtype, n, k)
        warm(fastconv.correlate, self.x, self.v, mode="valid")

    def time_correlate(self, dtype, n, k):
        fastconv.correlate(self.x, self.v, mode="valid")


class Methods1D:
    """``fastconv.convolve(x, v, method=...)`` for every engine this commit has.

    ``'fft'`` and ``'oa'`` are skipped on commits that do not have them.
    """

    params = [["direct", "fft", "oa", "auto"], ["float64"], [1_000_000], [63, 1023]]
    param_names = ["method", "dtype", "n", "k"]

    def setup_cache(self):
        for method in self.params[0]:
            try:
                require_method(method)
            except NotImplementedError:
                continue
            _warm_grid(lambda x, v, m=method: fastconv.convolve(x, v, method=m), self.params[1:])

    def setup(self, method, dtype, n, k):
        require_method(method)
        self.x, self.v = _data(dtype, n, k)
        warm(fastconv.convolve, self.x, self.v, method=method)

    def time_convolve(self, method, dtype, n, k):
        fastconv.convolve(self.x, self.v, method=method)


class FFTConvolve1D:
    """``fastconv.fftconvolve`` and ``fastconv.oaconvolve`` with long kernels (commits without them skip)."""

    params = [DTYPES, [1_000_000], [1023, 4095]]
    param_names = NAMES

    def setup_cache(self):
        if _has_fft_functions():
            _warm_grid(fastconv.fftconvolve, self.params)
            _warm_grid(fastconv.oaconvolve, self.params)

    def setup(self, dtype, n, k):
        if not _has_fft_functions():
            raise NotImplementedError("fastconv at this commit has no fftconvolve / oaconvolve")
        self.x, self.v = _data(dtype, n, k)
        warm(fastconv.fftconvolve, self.x, self.v)
        warm(fastconv.oaconvolve, self.x, self.v)

    def time_fftconvolve(self, dtype, n, k):
        fastconv.fftconvolve(self.x, self.v)

    def time_oaconvolve(self, dtype, n, k):
        fastconv.oaconvolve(self.x, self.v)


def _has_fft_functions():
    return hasattr(fastconv, "fftconvolve") and hasattr(fastconv, "oaconvolve")


# --- anchors ---------------------------------------------------------------------------


class Floor1D:
    """The memory floor: one copy of the input into an output-sized array."""

    params = [DTYPES, SIZES]
    param_names = ["dtype", "n"]

    def setup(self, dtype, n):
        self.x = random((n,), dtype)
        self.out = np.empty(n + 62, dtype)

    def time_copy(self, dtype, n):
        np.copyto(self.out[:n], self.x)


class Convolve1DNumPy(Anchor):
    """``numpy.convolve(x, v)`` (single-threaded direct; the same as scipy's direct method)."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, n, k):
        self.x, self.v = _data(dtype, n, k)

    def time_convolve(self, dtype, n, k):
        np.convolve(self.x, self.v)


class Convolve1DSciPy(Anchor):
    """``scipy.signal.convolve(x, v)``: scipy's ``auto`` choice (see ``Methods1DSciPy`` for its engines)."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, n, k):
        require(scipy_signal, "scipy")
        self.x, self.v = _data(dtype, n, k)

    def time_convolve(self, dtype, n, k):
        scipy_signal.convolve(self.x, self.v)


class Methods1DSciPy(Anchor):
    """scipy.signal's engines on fastconv's method grid (``'oa'`` is ``oaconvolve``)."""

    params = Methods1D.params
    param_names = Methods1D.param_names

    def setup(self, method, dtype, n, k):
        require(scipy_signal, "scipy")
        # single-threaded direct at 1e6 x 1023 takes seconds: outside a quick suite's budget
        skip_if_over(n * k if method == "direct" else 0, 1e8, "single-threaded direct")
        self.x, self.v = _data(dtype, n, k)

    def time_convolve(self, method, dtype, n, k):
        if method == "oa":
            scipy_signal.oaconvolve(self.x, self.v)
        else:
            scipy_signal.convolve(self.x, self.v, method=method)


class FFTConvolve1DSciPy(Anchor):
    """``scipy.signal.fftconvolve`` and ``scipy.signal.oaconvolve`` on fastconv's FFT grid."""

    params = FFTConvolve1D.params
    param_names = NAMES

    def setup(self, dtype, n, k):
        require(scipy_signal, "scipy")
        self.x, self.v = _data(dtype, n, k)

    def time_fftconvolve(self, dtype, n, k):
        scipy_signal.fftconvolve(self.x, self.v)

    def time_oaconvolve(self, dtype, n, k):
        scipy_signal.oaconvolve(self.x, self.v)


class Convolve1DTorch(Anchor):
    """``torch.nn.functional.conv1d`` with the kernel flipped and ``k - 1`` zero padding ('full')."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, n, k):
        require(torch, "torch")
        set_anchor_threads()
        x, v = _data(dtype, n, k)
        # torch's float64 path unfolds the input: k copies of it
        skip_if_over(
            n * k * np.dtype(dtype).itemsize if dtype == "float64" else 0, 1e9, "unfold memory"
        )
        self.x = torch_tensor(x).reshape(1, 1, n)
        self.w = torch_tensor(v[::-1]).reshape(1, 1, k)
        self.k = k
        with torch.no_grad():
            torch.nn.functional.conv1d(self.x, self.w, padding=k - 1)

    def time_convolve(self, dtype, n, k):
        with torch.no_grad():
            torch.nn.functional.conv1d(self.x, self.w, padding=self.k - 1)


class Memory1D:
    """Peak memory of one 1-D ``'full'`` convolution, fastconv and each anchor (float64, n = 1e6, k = 63).

    ``peakmem_*`` is asv's peak resident size of the whole benchmark process, imported
    libraries included; ``track_call_memory`` is the call's own footprint above the
    process's size before it (output, copies, scratch).  Compare the libraries with each other, not with the data size.
    """

    params = [["fastconv", "numpy", "scipy"], ["float64"], [1_000_000], [63]]
    param_names = ["library", "dtype", "n", "k"]

    def setup_cache(self):
        fastconv.convolve(*_data("float64", 1000, 63))

    def setup(self, library, dtype, n, k):
        self.x, self.v = _data(dtype, n, k)
        if library == "fastconv":
            self.func = fastconv.convolve
            warm(self.func, self.x[:1000], self.v)
        elif library == "numpy":
            self.func = np.convolve
        else:
            self.func = require(scipy_signal, "scipy").convolve

    def peakmem_convolve(self, library, dtype, n, k):
        self.func(self.x, self.v)

    def track_call_memory(self, library, dtype, n, k):
        return call_memory(lambda: self.func(self.x, self.v))

    track_call_memory.unit = "bytes"

"""The signal face, batched: many 1-D signals filtered at once.

``fastconv.convolve(x, fir[None, :], axes=-1)`` on ``rows x 4096`` signals,
``'full'`` output, against scipy's FFT convolution along the last axis (with
as many ``scipy.fft`` workers as fastconv has threads) and torch's conv1d
over a batch.  ``Channels1D``: the other layout, samples along axis 0 and
channels along the last axis (``axes=0``), against ``scipy.ndimage``'s
filter along axis 0 and scipy's FFT convolution with ``axes=0``.
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
    scipy_fft,
    scipy_ndimage,
    scipy_signal,
    set_anchor_threads,
    skip_if_over,
    torch,
    torch_tensor,
    warm,
)

COLUMNS = 4096
ROWS = [64, 512]
KERNELS = [15, 63]
GRID = [DTYPES, ROWS, KERNELS]
NAMES = ["dtype", "rows", "k"]


def _data(dtype, rows, k):
    return random((rows, COLUMNS), dtype), random((1, k), dtype, 1)


class Batched1D:
    """``fastconv.convolve(x, v, axes=-1)`` with ``v`` of shape ``(1, k)``."""

    params = GRID
    param_names = NAMES

    def setup_cache(self):
        for dtype in DTYPES:
            for k in KERNELS:
                fastconv.convolve(*_data(dtype, ROWS[0], k), axes=-1)

    def setup(self, dtype, rows, k):
        self.x, self.v = _data(dtype, rows, k)
        warm(fastconv.convolve, self.x, self.v, axes=-1)

    def time_convolve(self, dtype, rows, k):
        fastconv.convolve(self.x, self.v, axes=-1)


# --- anchors ---------------------------------------------------------------------------


class Batched1DFloor:
    """The memory floor: one copy of the signals into an output-sized array."""

    params = [DTYPES, ROWS]
    param_names = ["dtype", "rows"]

    def setup(self, dtype, rows):
        self.x = random((rows, COLUMNS), dtype)
        self.out = np.empty((rows, COLUMNS + KERNELS[-1] - 1), dtype)

    def time_copy(self, dtype, rows):
        np.copyto(self.out[:, :COLUMNS], self.x)


class Batched1DSciPy(Anchor):
    """``scipy.signal.fftconvolve(x, v, axes=-1)`` with fastconv's thread count as ``scipy.fft`` workers."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, rows, k):
        require(scipy_signal, "scipy")
        self.workers = set_anchor_threads()
        self.x, self.v = _data(dtype, rows, k)

    def time_fftconvolve(self, dtype, rows, k):
        with scipy_fft.set_workers(self.workers):
            scipy_signal.fftconvolve(self.x, self.v, axes=-1)

    def time_oaconvolve(self, dtype, rows, k):
        with scipy_fft.set_workers(self.workers):
            scipy_signal.oaconvolve(self.x, self.v, axes=-1)


class Batched1DTorch(Anchor):
    """``torch.nn.functional.conv1d`` over a batch of one-channel signals, kernel flipped."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, rows, k):
        require(torch, "torch")
        set_anchor_threads()
        # the float64 path unfolds: k copies of the input
        if dtype == "float64":
            skip_if_over(rows * COLUMNS * k * 8, 1e9, "unfold memory")
        x, v = _data(dtype, rows, k)
        self.x = torch_tensor(x).reshape(rows, 1, COLUMNS)
        self.w = torch_tensor(v[:, ::-1]).reshape(1, 1, k)
        self.k = k
        self.time_conv1d(dtype, rows, k)

    def time_conv1d(self, dtype, rows, k):
        with torch.no_grad():
            torch.nn.functional.conv1d(self.x, self.w, padding=self.k - 1)


SAMPLES = 16384
CHANNELS = [64, 1024]
CHANNEL_GRID = [DTYPES, CHANNELS, [31]]
CHANNEL_NAMES = ["dtype", "channels", "k"]


def _channel_data(dtype, channels, k):
    return random((SAMPLES, channels), dtype), random((k, 1), dtype, 1)


class Channels1D:
    """``fastconv.convolve(x, v, 'same', axes=0)``: ``v`` of shape ``(k, 1)``, one filter for every channel."""

    params = CHANNEL_GRID
    param_names = CHANNEL_NAMES

    def setup(self, dtype, channels, k):
        self.x, self.v = _channel_data(dtype, channels, k)
        warm(fastconv.convolve, self.x, self.v, "same", axes=0)

    def time_convolve(self, dtype, channels, k):
        fastconv.convolve(self.x, self.v, "same", axes=0)


class Channels1DSciPy(Anchor):
    """``scipy.ndimage.convolve1d(x, v, axis=0, mode='constant')`` and ``scipy.signal.oaconvolve(axes=0)``."""

    params = CHANNEL_GRID
    param_names = CHANNEL_NAMES

    def setup(self, dtype, channels, k):
        require(scipy_signal, "scipy")
        self.workers = set_anchor_threads()
        self.x, self.v = _channel_data(dtype, channels, k)

    def time_ndimage_convolve1d(self, dtype, channels, k):
        scipy_ndimage.convolve1d(self.x, self.v[:, 0], axis=0, mode="constant")

    def time_oaconvolve(self, dtype, channels, k):
        with scipy_fft.set_workers(self.workers):
            scipy_signal.oaconvolve(self.x, self.v, "same", axes=0)


class MemoryBatched:
    """Peak memory of one batched convolution, fastconv and each anchor (float32, 512 x 4096, k = 63).

    ``peakmem_*`` is asv's peak resident size of the whole benchmark process, imported
    libraries included; ``track_call_memory`` is the call's own footprint above the
    process's size before it (output, copies, scratch).  Compare the libraries with each other (the signals are 8 MiB).
    """

    params = [["fastconv", "scipy", "torch"], ["float32"], [512], [63]]
    param_names = ["library", "dtype", "rows", "k"]

    def setup_cache(self):
        fastconv.convolve(*_data("float32", 8, 63), axes=-1)

    def setup(self, library, dtype, rows, k):
        x, v = _data(dtype, rows, k)
        if library == "fastconv":
            warm(fastconv.convolve, x[:8], v, axes=-1)
            self.call = lambda: fastconv.convolve(x, v, axes=-1)
        elif library == "scipy":
            require(scipy_signal, "scipy")
            workers = set_anchor_threads()

            def call():
                with scipy_fft.set_workers(workers):
                    scipy_signal.fftconvolve(x, v, axes=-1)

            self.call = call
        else:
            require(torch, "torch")
            set_anchor_threads()
            tx = torch_tensor(x).reshape(rows, 1, COLUMNS)
            tw = torch_tensor(v[:, ::-1]).reshape(1, 1, k)

            def call():
                with torch.no_grad():
                    torch.nn.functional.conv1d(tx, tw, padding=k - 1)

            self.call = call

    def peakmem_convolve(self, library, dtype, rows, k):
        self.call()

    def track_call_memory(self, library, dtype, rows, k):
        return call_memory(self.call)

    track_call_memory.unit = "bytes"

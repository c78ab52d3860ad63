"""The signal face, N-D: ``fastconv.convolve(volume, kernel, 'same')`` on cubes.

Anchors: ``scipy.signal.convolve`` (its ``auto`` picks FFT or direct),
``scipy.ndimage.convolve`` and torch's conv3d on one channel.
"""

from __future__ import annotations

import fastconv

from .common import (
    DTYPES,
    Anchor,
    random,
    require,
    scipy_ndimage,
    scipy_signal,
    set_anchor_threads,
    skip_if_over,
    torch,
    torch_tensor,
    warm,
)

SIZES = [32, 96]
KERNELS = [3, 5]
GRID = [DTYPES, SIZES, KERNELS]
NAMES = ["dtype", "size", "k"]


def _data(dtype, size, k):
    return random((size,) * 3, dtype), random((k,) * 3, dtype, 1)


class Convolve3D:
    """``fastconv.convolve(volume, kernel, mode='same')``."""

    params = GRID
    param_names = NAMES

    def setup_cache(self):
        for dtype in DTYPES:
            for k in KERNELS:
                fastconv.convolve(*_data(dtype, SIZES[0], k), mode="same")

    # It compiles the 3-D kernels of every dtype from a cold cache, which took
    # longer than asv's default 60 s on a slow 2-core host.
    setup_cache.timeout = 300

    def setup(self, dtype, size, k):
        self.vol, self.ker = _data(dtype, size, k)
        warm(fastconv.convolve, self.vol, self.ker, mode="same")

    def time_convolve(self, dtype, size, k):
        fastconv.convolve(self.vol, self.ker, mode="same")


# --- anchors ---------------------------------------------------------------------------


class Convolve3DSciPy(Anchor):
    """``scipy.signal.convolve(volume, kernel, mode='same')``."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(scipy_signal, "scipy")
        self.vol, self.ker = _data(dtype, size, k)

    def time_convolve(self, dtype, size, k):
        scipy_signal.convolve(self.vol, self.ker, mode="same")


class Convolve3DNdimage(Anchor):
    """``scipy.ndimage.convolve(volume, kernel, mode='constant')`` (single-threaded)."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(scipy_ndimage, "scipy")
        self.vol, self.ker = _data(dtype, size, k)

    def time_convolve(self, dtype, size, k):
        scipy_ndimage.convolve(self.vol, self.ker, mode="constant")


class Convolve3DTorch(Anchor):
    """``torch.nn.functional.conv3d`` on one channel, kernel flipped, ``k // 2`` zero padding."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(torch, "torch")
        set_anchor_threads()
        if dtype == "float64":  # unfolds: k**3 copies of the volume
            skip_if_over(size**3 * k**3 * 8, 1e9, "unfold memory")
        vol, ker = _data(dtype, size, k)
        self.vol = torch_tensor(vol).reshape(1, 1, size, size, size)
        self.ker = torch_tensor(ker[::-1, ::-1, ::-1]).reshape(1, 1, k, k, k)
        self.pad = k // 2
        self.time_conv3d(dtype, size, k)

    def time_conv3d(self, dtype, size, k):
        with torch.no_grad():
            torch.nn.functional.conv3d(self.vol, self.ker, padding=self.pad)

"""The ndimage face: ``fastconv.ndimage.convolve`` / ``convolve1d`` on square images.

Output of the input's shape, the input extended by ``mode`` (default
``'reflect'``).  Anchors: ``scipy.ndimage`` (single-threaded) and OpenCV
(``filter2D`` / ``sepFilter2D`` with the matching border type).  Commits
without ``fastconv.ndimage`` skip the fastconv classes.
"""

from __future__ import annotations

import numpy as np

import fastconv

from .common import (
    Anchor,
    cv2,
    random,
    require,
    scipy_ndimage,
    set_anchor_threads,
    skip_if_over,
    warm,
)

ndimage = getattr(fastconv, "ndimage", None)

SIZES = [512, 2048]
KERNELS = [3, 7, 15]
GRID = [["float32", "float64"], SIZES, KERNELS]
NAMES = ["dtype", "size", "k"]
MODES = ["reflect", "constant", "nearest", "mirror", "wrap"]
GRID_1D = [["float32", "float64"], SIZES, [7, 31]]

# Single-threaded scipy.ndimage runs about 0.5-1e9 multiply-adds a second: cap a case near a second.
SCIPY_WORK = 3e8


def _data(dtype, size, k):
    return random((size, size), dtype), random((k, k), dtype, 1)


def _data_1d(dtype, size, k):
    return random((size, size), dtype), random((k,), dtype, 1)


def _require_ndimage():
    if ndimage is None:
        raise NotImplementedError("fastconv at this commit has no ndimage face")
    return ndimage


def _cv2_border(mode):
    """OpenCV's border type for a scipy.ndimage mode (None: OpenCV's filters have none)."""
    return {
        "reflect": cv2.BORDER_REFLECT,
        "mirror": cv2.BORDER_REFLECT_101,
        "nearest": cv2.BORDER_REPLICATE,
        "constant": cv2.BORDER_CONSTANT,
    }.get(mode)


class NdimageConvolve:
    """``fastconv.ndimage.convolve(image, kernel)`` (mode ``'reflect'``, a dense kernel)."""

    params = GRID
    param_names = NAMES

    def setup_cache(self):
        if ndimage is not None:
            for dtype in GRID[0]:
                for k in KERNELS:
                    ndimage.convolve(*_data(dtype, SIZES[0], k))

    def setup(self, dtype, size, k):
        self.ndi = _require_ndimage()
        self.img, self.ker = _data(dtype, size, k)
        warm(self.ndi.convolve, self.img, self.ker)

    def time_convolve(self, dtype, size, k):
        self.ndi.convolve(self.img, self.ker)


class NdimageModes:
    """``fastconv.ndimage.convolve`` with each border mode: the extension is virtual, never a copy."""

    params = [MODES, ["float32"], [2048], [7]]
    param_names = ["mode", "dtype", "size", "k"]

    def setup_cache(self):
        if ndimage is not None:
            for mode in MODES:
                ndimage.convolve(*_data("float32", SIZES[0], 7), mode=mode)

    def setup(self, mode, dtype, size, k):
        self.ndi = _require_ndimage()
        self.img, self.ker = _data(dtype, size, k)
        warm(self.ndi.convolve, self.img, self.ker, mode=mode)

    def time_convolve(self, mode, dtype, size, k):
        self.ndi.convolve(self.img, self.ker, mode=mode)


class NdimageConvolve1D:
    """``fastconv.ndimage.convolve1d(image, weights, axis=-1)``: one pass of a separable filter."""

    params = GRID_1D
    param_names = NAMES

    def setup_cache(self):
        if ndimage is not None:
            for dtype in GRID_1D[0]:
                for k in GRID_1D[2]:
                    ndimage.convolve1d(*_data_1d(dtype, SIZES[0], k))

    def setup(self, dtype, size, k):
        self.ndi = _require_ndimage()
        self.img, self.w = _data_1d(dtype, size, k)
        warm(self.ndi.convolve1d, self.img, self.w)

    def time_convolve1d(self, dtype, size, k):
        self.ndi.convolve1d(self.img, self.w)


# --- anchors ---------------------------------------------------------------------------


class NdimageConvolveSciPy(Anchor):
    """``scipy.ndimage.convolve(image, kernel)``."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(scipy_ndimage, "scipy")
        skip_if_over(size * size * k * k, SCIPY_WORK, "single-threaded, over a second")
        self.img, self.ker = _data(dtype, size, k)

    def time_convolve(self, dtype, size, k):
        scipy_ndimage.convolve(self.img, self.ker)


class NdimageConvolveOpenCV(Anchor):
    """``cv2.filter2D`` with ``BORDER_REFLECT`` (scipy's ``'reflect'``), kernel flipped."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(cv2, "opencv-python-headless")
        set_anchor_threads()
        img, ker = _data(dtype, size, k)
        self.img = np.array(img)
        self.ker = np.ascontiguousarray(ker[::-1, ::-1])

    def time_convolve(self, dtype, size, k):
        cv2.filter2D(self.img, -1, self.ker, borderType=cv2.BORDER_REFLECT)


class NdimageModesSciPy(Anchor):
    """``scipy.ndimage.convolve`` with each border mode."""

    params = NdimageModes.params
    param_names = NdimageModes.param_names

    def setup(self, mode, dtype, size, k):
        require(scipy_ndimage, "scipy")
        self.img, self.ker = _data(dtype, size, k)

    def time_convolve(self, mode, dtype, size, k):
        scipy_ndimage.convolve(self.img, self.ker, mode=mode)


class NdimageModesOpenCV(Anchor):
    """``cv2.filter2D`` with the matching border type (``'wrap'``: filter2D has none, skipped)."""

    params = NdimageModes.params
    param_names = NdimageModes.param_names

    def setup(self, mode, dtype, size, k):
        require(cv2, "opencv-python-headless")
        self.border = _cv2_border(mode)
        if self.border is None:
            raise NotImplementedError(f"cv2.filter2D has no border type for mode={mode!r}")
        set_anchor_threads()
        img, ker = _data(dtype, size, k)
        self.img = np.array(img)
        self.ker = np.ascontiguousarray(ker[::-1, ::-1])

    def time_convolve(self, mode, dtype, size, k):
        cv2.filter2D(self.img, -1, self.ker, borderType=self.border)


class NdimageConvolve1DSciPy(Anchor):
    """``scipy.ndimage.convolve1d(image, weights, axis=-1)``."""

    params = GRID_1D
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(scipy_ndimage, "scipy")
        self.img, self.w = _data_1d(dtype, size, k)

    def time_convolve1d(self, dtype, size, k):
        scipy_ndimage.convolve1d(self.img, self.w)


class NdimageConvolve1DOpenCV(Anchor):
    """``cv2.sepFilter2D`` with the row kernel flipped and a one-tap column kernel, ``BORDER_REFLECT``."""

    params = GRID_1D
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(cv2, "opencv-python-headless")
        set_anchor_threads()
        img, w = _data_1d(dtype, size, k)
        self.img = np.array(img)
        self.row = np.ascontiguousarray(w[::-1])
        self.col = np.ones(1, dtype)

    def time_convolve1d(self, dtype, size, k):
        cv2.sepFilter2D(self.img, -1, self.row, self.col, borderType=cv2.BORDER_REFLECT)

"""The signal face, 2-D: ``fastconv.convolve2d(image, kernel, 'same')`` on square images.

Every anchor class measures fastconv's grid (dtype x image size x kernel
size).  Anchors that would take seconds or gigabytes on a case (the
single-threaded scipy paths at large kernels, torch's unfolding float64
path) skip it rather than stretch the suite's run time.
"""

from __future__ import annotations

import numpy as np

import fastconv

from .common import (
    DTYPES,
    Anchor,
    call_memory,
    cv2,
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

SIZES = [512, 2048]
KERNELS = [3, 7, 15]
GRID = [["float32", "float64"], SIZES, KERNELS]
NAMES = ["dtype", "size", "k"]

# Single-threaded scipy runs about 0.5-1e9 multiply-adds a second: cap a case near a second.
SCIPY_WORK = 3e8


def _data(dtype, size, k):
    return random((size, size), dtype), random((k, k), dtype, 1)


class Convolve2D:
    """``fastconv.convolve2d(image, kernel, mode='same')`` (zero fill)."""

    params = GRID
    param_names = NAMES

    def setup_cache(self):
        for dtype in DTYPES:
            for k in KERNELS:
                fastconv.convolve2d(*_data(dtype, SIZES[0], k), mode="same")

    def setup(self, dtype, size, k):
        self.img, self.ker = _data(dtype, size, k)
        warm(fastconv.convolve2d, self.img, self.ker, mode="same")

    def time_convolve2d(self, dtype, size, k):
        fastconv.convolve2d(self.img, self.ker, mode="same")


class Convolve2DNDim:
    """``fastconv.convolve(image, kernel, mode='same')``: the N-D entry point on the same images."""

    params = [["float32"], SIZES, [7]]
    param_names = NAMES

    def setup_cache(self):
        fastconv.convolve(*_data("float32", SIZES[0], 7), mode="same")

    def setup(self, dtype, size, k):
        self.img, self.ker = _data(dtype, size, k)
        warm(fastconv.convolve, self.img, self.ker, mode="same")

    def time_convolve(self, dtype, size, k):
        fastconv.convolve(self.img, self.ker, mode="same")


class Boundary2D:
    """``convolve2d`` boundary rules: the input is extended virtually, never copied."""

    params = [["fill", "symm", "wrap"], ["float32"], [2048], [7]]
    param_names = ["boundary", "dtype", "size", "k"]

    def setup_cache(self):
        for boundary in self.params[0]:
            fastconv.convolve2d(*_data("float32", SIZES[0], 7), mode="same", boundary=boundary)

    def setup(self, boundary, dtype, size, k):
        self.img, self.ker = _data(dtype, size, k)
        warm(fastconv.convolve2d, self.img, self.ker, mode="same", boundary=boundary)

    def time_convolve2d(self, boundary, dtype, size, k):
        fastconv.convolve2d(self.img, self.ker, mode="same", boundary=boundary)


# --- anchors ---------------------------------------------------------------------------


class Floor2D:
    """The memory floor: one copy of the image into an output-sized array."""

    params = [GRID[0], SIZES]
    param_names = ["dtype", "size"]

    def setup(self, dtype, size):
        self.img = random((size, size), dtype)
        self.out = np.empty_like(self.img)

    def time_copy(self, dtype, size):
        np.copyto(self.out, self.img)


class Convolve2DOpenCV(Anchor):
    """``cv2.filter2D`` (a correlation: the kernel is flipped and anchored as scipy's 'same')."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(cv2, "opencv-python-headless")
        set_anchor_threads()
        self.img, ker = _data(dtype, size, k)
        self.img = np.array(self.img)
        self.ker = np.ascontiguousarray(ker[::-1, ::-1])
        self.anchor = (k // 2, k // 2)

    def time_convolve2d(self, dtype, size, k):
        cv2.filter2D(self.img, -1, self.ker, anchor=self.anchor, borderType=cv2.BORDER_CONSTANT)


class Convolve2DNdimage(Anchor):
    """``scipy.ndimage.convolve(image, kernel, mode='constant')`` (single-threaded)."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(scipy_ndimage, "scipy")
        skip_if_over(size * size * k * k, SCIPY_WORK, "single-threaded, over a second")
        self.img, self.ker = _data(dtype, size, k)

    def time_convolve(self, dtype, size, k):
        scipy_ndimage.convolve(self.img, self.ker, mode="constant")


class Convolve2DSciPy(Anchor):
    """``scipy.signal.convolve2d(image, kernel, mode='same')`` (single-threaded direct)."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(scipy_signal, "scipy")
        skip_if_over(size * size * k * k, SCIPY_WORK, "single-threaded, over a second")
        self.img, self.ker = _data(dtype, size, k)

    def time_convolve2d(self, dtype, size, k):
        scipy_signal.convolve2d(self.img, self.ker, mode="same")


class Boundary2DNdimage(Anchor):
    """``scipy.ndimage.convolve`` with the modes matching fill / symm / wrap."""

    params = Boundary2D.params
    param_names = Boundary2D.param_names
    MODES = {"fill": "constant", "symm": "reflect", "wrap": "wrap"}

    def setup(self, boundary, dtype, size, k):
        require(scipy_ndimage, "scipy")
        self.img, self.ker = _data(dtype, size, k)
        self.mode = self.MODES[boundary]

    def time_convolve(self, boundary, dtype, size, k):
        scipy_ndimage.convolve(self.img, self.ker, mode=self.mode)


class Convolve2DTorch(Anchor):
    """``torch.nn.functional.conv2d`` on one channel, kernel flipped, ``k // 2`` zero padding."""

    params = GRID
    param_names = NAMES

    def setup(self, dtype, size, k):
        require(torch, "torch")
        set_anchor_threads()
        # float64 unfolds the image (k*k copies of it: 7.5 GB and 15 s at 2048**2, k = 15);
        # one-channel float32 runs at about 1e9 multiply-adds a second
        limit = 1e8 if dtype == "float64" else 5e8
        skip_if_over(size * size * k * k, limit, "over a second (or unfold memory)")
        img, ker = _data(dtype, size, k)
        self.img = torch_tensor(img).reshape(1, 1, size, size)
        self.ker = torch_tensor(ker[::-1, ::-1]).reshape(1, 1, k, k)
        self.pad = k // 2
        self.time_conv2d(dtype, size, k)

    def time_conv2d(self, dtype, size, k):
        with torch.no_grad():
            torch.nn.functional.conv2d(self.img, self.ker, padding=self.pad)


class Memory2D:
    """Peak memory of one 2-D ``'same'`` convolution, fastconv and each anchor (float32, 2048**2, 7 x 7).

    ``peakmem_*`` is asv's peak resident size of the whole benchmark process, imported
    libraries included; ``track_call_memory`` is the call's own footprint above the
    process's size before it (output, copies, scratch).  Compare the libraries with each other (the image is 16 MiB).
    """

    params = [
        ["fastconv", "opencv", "scipy.ndimage", "scipy.signal", "torch"],
        ["float32"],
        [2048],
        [7],
    ]
    param_names = ["library", "dtype", "size", "k"]

    def setup_cache(self):
        fastconv.convolve2d(*_data("float32", 64, 7), mode="same")

    def setup(self, library, dtype, size, k):
        img, ker = _data(dtype, size, k)
        if library == "fastconv":
            warm(fastconv.convolve2d, img[:64, :64], ker, mode="same")
            self.call = lambda: fastconv.convolve2d(img, ker, mode="same")
        elif library == "opencv":
            require(cv2, "opencv-python-headless")
            set_anchor_threads()
            flipped = np.ascontiguousarray(ker[::-1, ::-1])
            self.call = lambda: cv2.filter2D(
                img, -1, flipped, anchor=(k // 2, k // 2), borderType=cv2.BORDER_CONSTANT
            )
        elif library == "scipy.ndimage":
            require(scipy_ndimage, "scipy")
            self.call = lambda: scipy_ndimage.convolve(img, ker, mode="constant")
        elif library == "scipy.signal":
            require(scipy_signal, "scipy")
            self.call = lambda: scipy_signal.convolve2d(img, ker, mode="same")
        else:
            require(torch, "torch")
            set_anchor_threads()
            timg = torch_tensor(img).reshape(1, 1, size, size)
            tker = torch_tensor(ker[::-1, ::-1]).reshape(1, 1, k, k)

            def call():
                with torch.no_grad():
                    torch.nn.functional.conv2d(timg, tker, padding=k // 2)

            self.call = call

    def peakmem_convolve2d(self, library, dtype, size, k):
        self.call()

    def track_call_memory(self, library, dtype, size, k):
        return call_memory(self.call)

    track_call_memory.unit = "bytes"

"""Benchmark cases of the FFT issue, for ``python -m fastconv bench``.

``CASES`` is a list of dicts with keys ``name``, ``fastconv`` (a zero-argument
callable), ``anchors`` (name -> zero-argument callable, only libraries that
import here), ``floor`` (the memory-floor copy, or None), ``flops`` (nominal
``2 * outputs * taps``), ``group`` and ``target``.  Data is built on first
call of a case's functions (the harness calls each once before timing) and
cached, so importing this module allocates nothing.

Groups:

``fft-1d``
    The issue's grid: 1-D float64, 1,000,000 samples, kernels of 3 ... 4095
    taps, mode 'full'; fastconv (``method='auto'``) against numpy.convolve
    and scipy.signal.convolve / fftconvolve / oaconvolve.  Target: at most
    0.5x the fastest anchor, or within 1.15x of the memory floor.  The same
    grid in float32, and a batch of signals along the last axis.
``fft-2d``
    Images with large kernels, mode 'same', against scipy.signal.fftconvolve
    (all workers), oaconvolve and OpenCV's filter2D.  Target (2048 x 2048
    float32, 15 x 15 and 31 x 31): faster than filter2D and at most 0.5x
    fftconvolve.
``auto-vs-fixed``
    ``method='auto'`` against each fixed fastconv method on a grid of 42
    (shape, kernel, dtype) cases (1-D, 2-D and 3-D, float64 and float32),
    and beside them ``scipy.signal.convolve`` with scipy's ``auto`` (the
    target line names the method scipy's ``choose_conv_method`` picks).
    Target: auto within 1.15x of the best fixed method.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from . import signal

_SEED = 20261201


@functools.cache
def _data(shape1, shape2, dtype):
    rng = np.random.default_rng(_SEED)
    x = rng.standard_normal(shape1).astype(dtype)
    w = rng.standard_normal(shape2).astype(dtype)
    return x, w


@functools.cache
def _floor_buffers(shape, dtype):
    src = np.ones(shape, dtype)
    return src, np.empty_like(src)


def _floor(out_shape, dtype):
    def run():
        src, dst = _floor_buffers(tuple(out_shape), dtype)
        np.copyto(dst, src)

    return run


def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _full_shape(s1, s2, axes):
    return tuple(a + b - 1 if i in axes else max(a, b) for i, (a, b) in enumerate(zip(s1, s2)))


def _one_d_case(n, k, dtype, group, target):
    shape1, shape2 = (n,), (k,)
    get = lambda: _data(shape1, shape2, dtype)
    anchors = {"numpy.convolve": lambda: np.convolve(*get())}
    ss = _optional("scipy.signal")
    if ss is not None:
        anchors["scipy.signal.convolve"] = lambda: ss.convolve(*get())
        anchors["scipy.signal.fftconvolve"] = lambda: ss.fftconvolve(*get())
        anchors["scipy.signal.oaconvolve"] = lambda: ss.oaconvolve(*get())
    return {
        "group": group,
        "name": f"1-D {np.dtype(dtype).name} n={n} k={k} full",
        "fastconv": lambda: signal.convolve(*get()),
        "anchors": anchors,
        "floor": _floor((n + k - 1,), dtype),
        "flops": 2.0 * (n + k - 1) * k,
        "target": "<= 0.5x fastest anchor or <= 1.15x floor",
    }


def _batch_case(rows, n, k, dtype):
    shape1, shape2 = (rows, n), (1, k)
    get = lambda: _data(shape1, shape2, dtype)
    anchors = {}
    ss = _optional("scipy.signal")
    if ss is not None:
        sfft = _optional("scipy.fft")

        def scipy_fft():
            with sfft.set_workers(-1):
                return ss.fftconvolve(*get(), axes=-1)

        anchors["scipy.signal.fftconvolve(axes=-1, workers=all)"] = scipy_fft
        anchors["scipy.signal.oaconvolve(axes=-1)"] = lambda: ss.oaconvolve(*get(), axes=-1)
    return {
        "group": "fft-1d",
        "name": f"{rows}x{n} {np.dtype(dtype).name} k={k} axes=-1 full",
        "fastconv": lambda: signal.convolve(*get(), axes=-1),
        "anchors": anchors,
        "floor": _floor((rows, n + k - 1), dtype),
        "flops": 2.0 * rows * (n + k - 1) * k,
        "target": "<= 0.5x fastest anchor or <= 1.15x floor",
    }


def _image_case(n, k, dtype):
    shape1, shape2 = (n, n), (k, k)
    get = lambda: _data(shape1, shape2, dtype)
    anchors = {}
    ss = _optional("scipy.signal")
    if ss is not None:
        sfft = _optional("scipy.fft")

        def scipy_fft():
            with sfft.set_workers(-1):
                return ss.fftconvolve(*get(), mode="same")

        anchors["scipy.signal.fftconvolve(workers=all)"] = scipy_fft
        anchors["scipy.signal.oaconvolve"] = lambda: ss.oaconvolve(*get(), mode="same")
    cv2 = _optional("cv2")
    if cv2 is not None:
        import numba

        def opencv():
            # filter2D correlates: a convolution is the flipped kernel; zero border as 'same'
            cv2.setNumThreads(numba.get_num_threads())
            x, w = get()
            return cv2.filter2D(x, -1, np.ascontiguousarray(w[::-1, ::-1]), borderType=cv2.BORDER_CONSTANT)

        anchors["cv2.filter2D"] = opencv
    return {
        "group": "fft-2d",
        "name": f"2-D {np.dtype(dtype).name} {n}x{n} * {k}x{k} same",
        "fastconv": lambda: signal.convolve(*get(), mode="same"),
        "anchors": anchors,
        "floor": _floor(shape1, dtype),
        "flops": 2.0 * n * n * k * k,
        "target": "faster than cv2.filter2D and <= 0.5x scipy.signal.fftconvolve",
    }


def _auto_case(shape1, shape2, dtype, mode):
    axes = tuple(range(len(shape1)))
    get = lambda: _data(shape1, shape2, dtype)
    anchors = {
        f"fastconv method={m!r}": (lambda m=m: signal.convolve(*get(), mode=mode, method=m))
        for m in ("direct", "fft", "oa")
    }
    target = "auto <= 1.15x best fixed method"
    ss = _optional("scipy.signal")
    if ss is not None:
        # scipy's own 'auto' beside ours, and the method it picks (its
        # heuristic reads only the shapes and dtype of float inputs, so
        # zero-strided stand-ins keep the data unallocated until timed).
        stand_in = [np.broadcast_to(np.zeros((), dtype), s) for s in (shape1, shape2)]
        target += f" (scipy's auto picks {ss.choose_conv_method(*stand_in, mode=mode)})"
        anchors["scipy.signal.convolve (auto)"] = lambda: ss.convolve(*get(), mode=mode)
    out = {"full": _full_shape(shape1, shape2, axes), "same": shape1}[mode]
    taps = int(np.prod(shape2))
    return {
        "group": "auto-vs-fixed",
        "name": f"{'x'.join(map(str, shape1))} * {'x'.join(map(str, shape2))} "
        f"{np.dtype(dtype).name} {mode}",
        "fastconv": lambda: signal.convolve(*get(), mode=mode),
        "anchors": anchors,
        "floor": None,
        "flops": 2.0 * float(np.prod(out)) * taps,
        "target": target,
    }


def _cases():
    cases = []
    for dtype in (np.float64, np.float32):
        for k in (3, 15, 63, 255, 1023, 4095):
            cases.append(_one_d_case(1_000_000, k, dtype, "fft-1d", ""))
    for dtype in (np.float64, np.float32):
        cases.append(_batch_case(512, 4096, 63, dtype))
    for dtype in (np.float32, np.float64):
        for n, k in ((2048, 15), (2048, 31), (1024, 63)):
            cases.append(_image_case(n, k, dtype))
    grid_1d = [
        (1000, 10),
        (1000, 100),
        (10_000, 30),
        (10_000, 300),
        (100_000, 50),
        (100_000, 120),
        (100_000, 2000),
        (1_000_000, 100),
        (1_000_000, 200),
        (1_000_000, 10_000),
        (30_000, 30_000),
    ]
    for dtype in (np.float64, np.float32):
        for n, k in grid_1d:
            cases.append(_auto_case((n,), (k,), dtype, "full"))
    grid_2d = [
        ((512, 512), (3, 3)),
        ((512, 512), (9, 9)),
        ((512, 512), (17, 17)),
        ((1024, 1024), (31, 31)),
        ((2048, 2048), (15, 15)),
        ((256, 256), (256, 256)),
        ((256, 256), (31, 31)),
        ((1024, 1024), (9, 9)),
        ((1024, 1024), (63, 63)),
        ((64, 64, 64), (5, 5, 5)),
    ]
    for dtype in (np.float64, np.float32):
        for s1, s2 in grid_2d:
            cases.append(_auto_case(s1, s2, dtype, "same"))
    return cases


CASES = _cases()

"""``python -m fastconv demo``: convolution vs cross-correlation, then a timing.

The demo carries its own examples (those of the background note on
convolution in CNNs): the 1-D convolution of ``[1, 0.5, 1, 1]`` with
``[1, 0.5, 0.25]`` worked step by step, then a 2-D image where the only
difference between convolution and cross-correlation is the flip of the
kernel, and finally fastconv timed against NumPy / SciPy on realistic sizes.
"""

from __future__ import annotations

import time

import numpy as np

from . import signal

A = np.array([1.0, 0.5, 1.0, 1.0])
B = np.array([1.0, 0.5, 0.25])
EXPECTED_1D = np.array([1.0, 1.0, 1.5, 1.625, 0.75, 0.25])

IMAGE = np.array(
    [
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
    ]
)
KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def _fmt(x) -> str:
    return f"{x:g}"


def _print(text: str = "") -> None:
    print(text, flush=True)


def one_d() -> None:
    _print("1. Convolution in 1-D:  c[n] = sum_m a[m] * b[n - m]")
    _print(f"   a = {[_fmt(v) for v in A]}")
    _print(f"   b = {[_fmt(v) for v in B]}")
    _print("   Flip b, slide it across a, multiply overlapping samples and add:")
    n_out = len(A) + len(B) - 1
    for n in range(n_out):
        terms = [(m, n - m) for m in range(len(A)) if 0 <= n - m < len(B)]
        text = " + ".join(f"{_fmt(A[m])}*{_fmt(B[k])}" for m, k in terms)
        value = sum(A[m] * B[k] for m, k in terms)
        _print(f"   c[{n}] = {text} = {_fmt(value)}")
    result = signal.convolve(A, B)
    _print(f"   fastconv.convolve(a, b)   -> {[_fmt(v) for v in result]}")
    _print(f"   numpy.convolve(a, b)      -> {[_fmt(v) for v in np.convolve(A, B)]}")
    assert np.allclose(result, EXPECTED_1D)
    corr = signal.correlate(A, B)
    _print(f"   fastconv.correlate(a, b)  -> {[_fmt(v) for v in corr]}   (no flip: a different answer)")
    _print()


def two_d() -> None:
    _print("2. In 2-D: a CNN 'convolution' is a cross-correlation (the kernel is not flipped)")
    _print("   image:" + "".join(f"\n     {row}" for row in IMAGE.tolist()))
    _print("   kernel:" + "".join(f"\n     {row}" for row in KERNEL.tolist()))
    corr = signal.correlate(IMAGE, KERNEL, mode="valid")
    conv = signal.convolve(IMAGE, KERNEL, mode="valid")
    _print("   fastconv.correlate(image, kernel, 'valid')  (slide, multiply, add):")
    _print("".join(f"     {row}\n" for row in corr.tolist()).rstrip("\n"))
    _print(f"   This kernel is symmetric, so convolve gives the same: {np.array_equal(corr, conv)}")
    corr = signal.correlate(IMAGE, SOBEL, mode="valid")
    conv = signal.convolve(IMAGE, SOBEL, mode="valid")
    _print("   With an asymmetric kernel (Sobel x) the flip matters:")
    _print("   kernel:" + "".join(f"\n     {row}" for row in SOBEL.tolist()))
    _print("   correlate:" + "".join(f"\n     {row}" for row in corr.tolist()))
    _print("   convolve (= correlate with the kernel flipped on both axes):"
           + "".join(f"\n     {row}" for row in conv.tolist()))
    assert np.array_equal(conv, signal.correlate(IMAGE, SOBEL[::-1, ::-1], mode="valid"))
    _print()


def _median_time(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timing() -> None:
    import numba

    _print(f"3. Timing (median of several runs, {numba.get_num_threads()} threads for fastconv)")
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(1_000_000)
    k1 = rng.standard_normal(63)
    image = rng.standard_normal((2048, 2048)).astype(np.float32)
    k2 = rng.standard_normal((5, 5)).astype(np.float32)

    start = time.perf_counter()
    signal.convolve(x1[:100], k1)
    signal.convolve2d(image[:16, :16], k2, mode="same")
    _print(f"   first calls (compile or load from cache, once per process): "
           f"{time.perf_counter() - start:.2f} s")

    rows = []
    ours = _median_time(lambda: signal.convolve(x1, k1), 7)
    rows.append(("1-D float64, 1e6 samples, 63 taps, 'full'", "fastconv.convolve", ours, ours))
    rows.append(("", "numpy.convolve", _median_time(lambda: np.convolve(x1, k1), 3), ours))
    try:
        import scipy.ndimage
        import scipy.signal
    except ImportError:
        scipy = None
    if scipy is not None:
        rows.append(("", "scipy.signal.convolve(direct)",
                     _median_time(lambda: scipy.signal.convolve(x1, k1, method="direct"), 3), ours))
    ours = _median_time(lambda: signal.convolve2d(image, k2, mode="same"), 7)
    rows.append(("2-D float32, 2048x2048, 5x5, 'same'", "fastconv.convolve2d", ours, ours))
    if scipy is not None:
        rows.append(("", "scipy.ndimage.convolve",
                     _median_time(lambda: scipy.ndimage.convolve(image, k2, mode="constant"), 3), ours))
        rows.append(("", "scipy.signal.convolve2d",
                     _median_time(lambda: scipy.signal.convolve2d(image, k2, mode="same"), 1), ours))
    else:
        _print("   (install scipy to compare with scipy.signal and scipy.ndimage)")

    _print(f"   {'case':<42} {'function':<30} {'time':>10} {'fastconv speed-up':>18}")
    for case, name, seconds, ref in rows:
        speedup = "" if name.startswith("fastconv") else f"{seconds / ref:.1f}x"
        _print(f"   {case:<42} {name:<30} {seconds * 1e3:>8.2f} ms {speedup:>18}")


def main() -> int:
    one_d()
    two_d()
    timing()
    return 0

"""Slow, obviously-correct oracles written for the tests.

Nothing here shares code with fastconv: every function is a plain loop over
kernel taps of whole-array NumPy slices, on an input that ``numpy.pad`` has
really padded.  Floating inputs are accumulated in float64 / complex128 (so
the oracle is more accurate than float32 results it checks), integer and bool
inputs in int64, whose wrap-around modulo 2**64 reduces to the wrap-around
modulo 2**n of any narrower result dtype.
"""

from __future__ import annotations

import numpy as np

# numpy.pad modes for the engines' border rules and for the faces' names.
PAD_MODE = {
    "zero": "constant",
    "constant": "constant",
    "fill": "constant",
    "edge": "edge",
    "symmetric": "symmetric",
    "symm": "symmetric",
    "reflect": "reflect",
    "wrap": "wrap",
    "circular": "wrap",
}


def accumulator_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return np.dtype(np.int64)
    if dtype.kind == "c":
        return np.dtype(np.complex128)
    return np.dtype(np.float64)


def to_result(acc: np.ndarray, dtype) -> np.ndarray:
    """Cast an accumulator to the result dtype as NumPy would (wrap-around, bool = nonzero)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return acc != 0
    return acc.astype(dtype)


def pad(x: np.ndarray, before, after, mode: str = "zero", cval=0) -> np.ndarray:
    """``x`` really padded by ``before`` / ``after`` samples per axis."""
    widths = [(int(b), int(a)) for b, a in zip(before, after)]
    np_mode = PAD_MODE[mode]
    if np_mode == "constant":
        value = cval if mode != "zero" else 0
        return np.pad(x, widths, mode="constant", constant_values=value)
    if np_mode == "reflect":
        # Axis by axis: a length-1 axis has nothing to reflect, and the
        # engines' REFLECT rule repeats its sample (numpy.pad's 'edge').
        for axis, (n, w) in enumerate(zip(x.shape, widths)):
            one = [(0, 0)] * x.ndim
            one[axis] = w
            x = np.pad(x, one, mode="edge" if n == 1 else "reflect")
        return x
    return np.pad(x, widths, mode=np_mode)


def correlate_valid(x: np.ndarray, w: np.ndarray, stride=None, dilation=None) -> np.ndarray:
    """Valid N-D cross-correlation (no flip, no conjugation) of a padded input.

    ``out[y] = sum_t x[y * stride + t * dilation] * w[t]``, accumulated in the
    dtype of :func:`accumulator_dtype`.
    """
    nd = x.ndim
    stride = (1,) * nd if stride is None else tuple(stride)
    dilation = (1,) * nd if dilation is None else tuple(dilation)
    acc = np.result_type(accumulator_dtype(x.dtype), accumulator_dtype(w.dtype))
    xs = x.astype(acc)
    ws = w.astype(acc)
    span = [(k - 1) * d + 1 for k, d in zip(w.shape, dilation)]
    out_shape = tuple((n - sp) // s + 1 for n, sp, s in zip(x.shape, span, stride))
    out = np.zeros(out_shape, acc)
    for t in np.ndindex(*w.shape):
        window = tuple(
            slice(ti * d, ti * d + (o - 1) * s + 1, s)
            for ti, d, o, s in zip(t, dilation, out_shape, stride)
        )
        out += ws[t] * xs[window]
    return out


def flip(a: np.ndarray, axes=None) -> np.ndarray:
    axes = range(a.ndim) if axes is None else axes
    return a[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(a.ndim))]


def full_correlation(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Full cross-correlation without conjugation, in the accumulator dtype."""
    k = v.shape
    return correlate_valid(pad(a, [n - 1 for n in k], [n - 1 for n in k]), v)


def _same_slice(full: np.ndarray, in_shape, kernel_shape, lo) -> np.ndarray:
    return full[tuple(slice(lo(k), lo(k) + n) for n, k in zip(in_shape, kernel_shape))]


def _valid_slice(full: np.ndarray, in_shape, kernel_shape) -> np.ndarray:
    return full[tuple(slice(k - 1, n) for n, k in zip(in_shape, kernel_shape))]


def signal_convolve(a, v, mode="full"):
    """scipy.signal.convolve's definition, from the formula ``c[n] = sum_m a[m] v[n - m]``."""
    a, v = np.asarray(a), np.asarray(v)
    rdt = np.result_type(a, v)
    if mode == "valid" and any(n < k for n, k in zip(a.shape, v.shape)):
        a, v = v, a
    full = full_correlation(a, flip(v))
    if mode == "full":
        out = full
    elif mode == "same":
        out = _same_slice(full, a.shape, v.shape, lambda k: (k - 1) // 2)
    else:
        out = _valid_slice(full, a.shape, v.shape)
    return to_result(out, rdt)


def signal_correlate(a, v, mode="full"):
    """scipy.signal.correlate's definition ``z[k] = sum_n a[n + k] conj(v[n])``.

    For 'valid' with ``v`` the larger input, scipy returns the correlation of
    ``v`` with ``a``, reversed and conjugated.
    """
    a, v = np.asarray(a), np.asarray(v)
    rdt = np.result_type(a, v)
    if mode == "valid" and any(n < k for n, k in zip(a.shape, v.shape)):
        return np.conj(flip(signal_correlate(v, a, mode))).astype(rdt)
    full = full_correlation(a, np.conj(v))
    if mode == "full":
        out = full
    elif mode == "same":
        out = _same_slice(full, a.shape, v.shape, lambda k: (k - 1) // 2)
    else:
        out = _valid_slice(full, a.shape, v.shape)
    return to_result(out, rdt)


def correlate_2d(a, v, mode="full", boundary="fill", fillvalue=0, *, convolution=False):
    """scipy.signal.convolve2d / correlate2d from a really padded input.

    The full output ``i`` reads input rows ``i - (K - 1) .. i``; boundary rules
    extend ``a`` by ``K - 1`` on each side.  'same' of convolve2d starts at
    full index ``(K - 1) // 2``, of correlate2d at ``K // 2``; 'valid' with a
    larger ``v`` swaps the inputs (correlate2d reverses the result, without
    conjugating it).
    """
    a, v = np.asarray(a), np.asarray(v)
    rdt = np.result_type(a, v)
    swapped = mode == "valid" and any(n < k for n, k in zip(a.shape, v.shape))
    if swapped:
        a, v = v, a
    kernel = flip(v) if convolution else np.conj(v)
    k = v.shape
    # Padded in the result dtype: scipy converts the fill value to it, so a
    # bool image padded with 2 reads 2, not True.
    ext = pad(a.astype(rdt), [n - 1 for n in k], [n - 1 for n in k], boundary, fillvalue)
    full = correlate_valid(ext, kernel)
    if mode == "full":
        out = full
    elif mode == "same":
        lo = (lambda n: (n - 1) // 2) if convolution else (lambda n: n // 2)
        out = _same_slice(full, a.shape, k, lo)
    else:
        out = _valid_slice(full, a.shape, k)
    if swapped and not convolution:
        out = flip(out)
    return to_result(out, rdt)


def primitive(x, w, *, pad_lo, out_shape, stride, dilation, border, cval=0):
    """The engines' primitive on one (unbatched) input: valid correlation of a padded ``x``.

    ``border`` is one rule name, or one per axis.  Axes are padded one after
    the other, and a later padding also covers the corners left by earlier
    ones; padding the index-mapping rules first, then 'constant', then 'zero'
    gives the engines' documented corners: a sample outside a zero axis is 0,
    else outside a constant axis it is ``cval``.
    """
    nd = x.ndim
    borders = (border,) * nd if isinstance(border, str) else tuple(border)
    span = [(k - 1) * d + 1 for k, d in zip(w.shape, dilation)]
    pad_hi = [(o - 1) * s + sp - n - p for o, s, sp, n, p in zip(out_shape, stride, span, x.shape, pad_lo)]
    ext = x
    rank = {"zero": 2, "constant": 1}
    for axis in sorted(range(nd), key=lambda a: rank.get(borders[a], 0)):
        before = [0] * nd
        after = [0] * nd
        before[axis] = max(pad_lo[axis], 0)
        after[axis] = max(pad_hi[axis], 0)
        ext = pad(ext, before, after, borders[axis], cval)
    return correlate_valid(ext, w, stride, dilation)


def abs_magnitude(fn, a, v, *args, **kwargs):
    """``fn`` applied to ``|a|`` and ``|v|`` in float64: the scale of the rounding error bound."""
    a = np.abs(np.asarray(a)).astype(np.float64)
    v = np.abs(np.asarray(v)).astype(np.float64)
    return np.abs(fn(a, v, *args, **kwargs).astype(np.float64))


def assert_close(got, expected, magnitude, nterms, dtype):
    """Assert the floating result is within the rounding error bound of a sum of products.

    A sum of ``n`` products computed in precision ``eps`` (with or without
    FMA) differs from the exact sum by at most ``gamma_n * sum |a_i b_i|``,
    ``gamma_n = n eps / (1 - n eps)`` (Higham, *Accuracy and Stability of
    Numerical Algorithms*, 3.1).  The oracle itself is float64, and complex
    products add a factor of at most 2 (sqrt(2) for the multiply, one extra
    rounding of the sum); a final rounding to a narrower result dtype (float16)
    adds half an ulp of the value.  ``magnitude`` is ``sum |a_i b_i|`` per
    output element (:func:`abs_magnitude`).
    """
    got = np.asarray(got)
    dtype = np.dtype(dtype)
    eps = np.finfo(dtype).eps
    compute_eps = np.finfo(np.float32).eps if dtype == np.float16 else eps
    n = max(int(nterms), 1)
    factor = 2.0 if dtype.kind == "c" else 1.0
    bound = factor * (n + 1) * (compute_eps + np.finfo(np.float64).eps) * magnitude
    if dtype == np.float16:
        bound = bound + eps * np.abs(expected)
    err = np.abs(got.astype(np.complex128) - np.asarray(expected).astype(np.complex128))
    # Subnormal and zero outputs: allow the smallest normal number of the dtype.
    bound = bound + np.finfo(dtype).tiny
    bad = ~(err <= bound)
    if bad.any():
        idx = np.argwhere(bad)[:5]
        raise AssertionError(
            f"{bad.sum()} of {bad.size} elements exceed the rounding bound; first at {idx.tolist()}: "
            f"got {got[tuple(idx[0])]!r}, expected {np.asarray(expected)[tuple(idx[0])]!r}, "
            f"error {err[tuple(idx[0])]:.3g} > bound {np.broadcast_to(bound, err.shape)[tuple(idx[0])]:.3g}"
        )


# scipy.ndimage's mode names as the rules of :func:`pad`.
NDIMAGE_PAD = {"reflect": "symmetric", "grid-mirror": "symmetric", "mirror": "reflect", "nearest": "edge",
               "wrap": "wrap", "grid-wrap": "wrap", "constant": "constant", "grid-constant": "constant"}


def ndimage_correlate(x, w, mode, cval, origin, convolution=False):
    """scipy.ndimage's definition from a really padded input, every weight multiplied (float64 sums)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    origins = [origin] * x.ndim if np.isscalar(origin) else list(origin)
    if convolution:
        w = flip(w)
        origins = [-o - (1 - k % 2) for o, k in zip(origins, w.shape)]
    shift = [k // 2 + o for k, o in zip(w.shape, origins)]
    return primitive(x, w, pad_lo=shift, out_shape=x.shape, stride=[1] * x.ndim,
                     dilation=[1] * x.ndim, border=NDIMAGE_PAD[mode], cval=cval)

"""Fuzzing: random shapes, dtypes, values and arguments at every public function (signal, ndimage, nn).

The only acceptable outcomes are a correct result or a ValueError, TypeError
or NotImplementedError with a message; anything else (another exception, a
wrong value, a crash of the interpreter) fails.  Values are small integers,
NaN and inf, so every finite sum is exact in any floating dtype and results
compare exactly with the float64 / int64 oracle (FFT methods: within their
rounding).  The budget is fixed (``max_examples``) so CI time stays bounded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastconv
import reference as ref
from fastconv import ndimage

REFUSALS = (ValueError, TypeError, NotImplementedError)
DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64",
          "complex64", "complex128", "object", "str", "longdouble", "datetime64[s]"]
NUMERIC = {"bool", "int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64",
           "complex64", "complex128"}


@st.composite
def arrays(draw, max_ndim=3, max_side=6, min_ndim=0):
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.integers(min_ndim, max_ndim))
    shape = tuple(draw(st.integers(0 if draw(st.booleans()) and draw(st.booleans()) else 1, max_side))
                  for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(-4, 5, shape).astype(np.float64)
    if dtype.startswith(("float", "complex")) and values.size and draw(st.booleans()):
        flat = values.reshape(-1)
        flat[rng.integers(0, flat.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if dtype in ("object", "str"):
        return values.astype(object if dtype == "object" else str)
    if dtype.startswith("datetime"):
        return values.astype(np.int64).astype(dtype)
    if dtype in ("bool", "uint8", "uint64"):
        values = np.abs(np.nan_to_num(values))
    if dtype.startswith("complex"):
        imag = values[::-1] if values.ndim else values
        return (values + 1j * np.nan_to_num(imag, posinf=2, neginf=-2)).astype(dtype)
    if dtype == "longdouble":
        return values.astype(np.longdouble)
    return np.nan_to_num(values).astype(dtype) if not dtype.startswith("float") else values.astype(dtype)


modes = st.sampled_from(["full", "same", "valid", "FULL", "", None, 3])
methods = st.sampled_from(["auto", "direct", "fft", "oa", "fast", None])
axes_st = st.one_of(st.none(), st.integers(-4, 3), st.lists(st.integers(-4, 3), max_size=3),
                    st.just([0.5]), st.just("x"))


def _expected_signal(op, a, v, mode, axes):
    """The oracle's answer, or None where the oracle does not apply (batched axes)."""
    every = list(range(a.ndim))
    if axes is not None and not (isinstance(axes, list) and sorted({i % a.ndim for i in axes}) == every):
        return None
    fn = ref.signal_convolve if op in ("convolve", "fftconvolve", "oaconvolve") else ref.signal_correlate
    with np.errstate(invalid="ignore", over="ignore"):
        return fn(a, v, mode)


_FFT_NAN_WARNING = "Use of fft convolution on input with NAN or inf"


def _check_refusal(exc):
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


def _compare(got, expected, method, nterms):
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    if method in ("fft", "oa") and got.dtype.kind in "fc":
        finite = np.isfinite(expected)
        scale = np.nanmax(np.abs(np.where(finite, expected, 0)), initial=1.0) * nterms
        tol = 64 * np.finfo(got.dtype).eps * scale
        np.testing.assert_allclose(got[finite], expected[finite].astype(got.dtype), rtol=0, atol=tol)
        return
    if got.dtype.kind in "fc":
        np.testing.assert_array_equal(got, expected.astype(got.dtype))
    else:
        np.testing.assert_array_equal(got, expected.astype(got.dtype))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(["convolve", "correlate", "fftconvolve", "oaconvolve"]), a=arrays(),
       v=arrays(max_side=4), mode=modes, method=methods, axes=axes_st)
def test_signal_functions(op, a, v, mode, method, axes):
    kwargs = {"mode": mode, "axes": axes}
    if op in ("convolve", "correlate"):
        kwargs["method"] = method
    try:
        with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings(record=True) as caught:
            # convolve / correlate warn as scipy does when an FFT engine's
            # first output is NaN or inf (recorded; any other warning fails)
            warnings.filterwarnings("always", message=_FFT_NAN_WARNING, category=RuntimeWarning)
            got = getattr(fastconv, op)(a, v, **kwargs)
    except REFUSALS as exc:
        _check_refusal(exc)
        return
    assert a.dtype.name in NUMERIC and v.dtype.name in NUMERIC
    # the warning only ever comes with a NaN or inf in the result
    assert not caught or not np.isfinite(np.asarray(got)).all(), [str(w.message) for w in caught]
    if a.ndim == 0:
        return
    if not (np.isfinite(a).all() and np.isfinite(v).all()):
        # Where NaN and inf land follows scipy's padding and swapping rules,
        # not the oracle's: compare with scipy, where it takes the dtypes.
        _compare_nonfinite(op, got, a, v, mode, method, axes)
        return
    expected = _expected_signal(op, a, v, mode, axes)
    if expected is None or a.dtype.kind in "biu" and op in ("fftconvolve", "oaconvolve"):
        assert np.asarray(got).ndim == a.ndim
        return
    if op in ("fftconvolve", "oaconvolve") or method in ("fft", "oa"):
        used = "fft"
    else:
        used = "direct"
    if used == "direct" or np.asarray(got).dtype.kind in "fc":
        _compare(got, expected, used, max(v.size, 1))


def _compare_nonfinite(op, got, a, v, mode, method, axes):
    signal = pytest.importorskip("scipy.signal")
    if a.dtype == np.float16 or v.dtype == np.float16 or op != "convolve" and op != "correlate":
        return
    if a.ndim > 1 and (a.dtype == np.bool_ or v.dtype == np.bool_) or axes is not None:
        return
    if np.result_type(a, v).kind == "c" and a.ndim == 1:
        # numpy.convolve (scipy's 1-D path) multiplies complex infinities
        # differently from IEEE complex arithmetic (inf+0j times 1 is nan+nanj
        # there); fastconv follows scipy's N-D path and IEEE.
        return
    if method in ("fft", "oa"):
        return
    with np.errstate(invalid="ignore", over="ignore"):
        expected = getattr(signal, op)(a, v, mode=mode, method="direct")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(["convolve2d", "correlate2d"]), a=arrays(max_ndim=3), v=arrays(max_ndim=3, max_side=4),
       mode=modes, boundary=st.sampled_from(["fill", "wrap", "symm", "circular", "reflect", None]),
       fillvalue=st.sampled_from([0, 1, 2.5, 1j, "x", None, [1, 2]]))
def test_2d_functions(op, a, v, mode, boundary, fillvalue):
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            got = getattr(fastconv, op)(a, v, mode, boundary, fillvalue)
    except REFUSALS as exc:
        _check_refusal(exc)
        return
    assert a.ndim == v.ndim == 2
    # The fill value is converted to the result dtype first (2.5 is 2 for int8,
    # 1j is 0 for a real result and stays 1j for a complex one).  Other
    # boundaries ignore it, as in scipy.
    rdt = np.result_type(a, v)
    value = np.asarray(fillvalue) if rdt.kind == "c" else np.asarray(fillvalue).real
    fill = value.astype(rdt).item() if boundary == "fill" else 0
    with np.errstate(invalid="ignore", over="ignore"):
        expected = ref.correlate_2d(a, v, mode, boundary if boundary != "circular" else "wrap",
                                    fill, convolution=op == "convolve2d")
    _compare(got, expected, "direct", v.size)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(["correlate", "convolve", "correlate1d", "convolve1d"]), a=arrays(min_ndim=0),
       v=arrays(max_side=4), mode=st.sampled_from(["reflect", "constant", "nearest", "mirror", "wrap",
                                                      "grid-wrap", "bad", None]),
       origin=st.sampled_from([0, 1, -1, 2, -3, 0.5, [0, 0]]), cval=st.sampled_from([0, 1.5, 1j, "x"]),
       axis=st.sampled_from([-1, 0, 1, 5]))
def test_ndimage_functions(op, a, v, mode, origin, cval, axis):
    kwargs = {"mode": mode, "origin": origin, "cval": cval}
    if op.endswith("1d"):
        kwargs["axis"] = axis
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            got = getattr(ndimage, op)(a, v, **kwargs)
    except REFUSALS as exc:
        _check_refusal(exc)
        return
    got = np.asarray(got)
    assert got.shape == a.shape
    if a.size == 0 or a.dtype.kind not in "biuf" or v.dtype.kind not in "biuf":
        return
    # The oracle: scipy.ndimage itself where it accepts the dtypes.
    ndi = pytest.importorskip("scipy.ndimage")
    if a.dtype == np.float16 or v.dtype == np.float16:
        return
    if got.dtype.kind in "biu" and not (np.isfinite(a).all() and np.isfinite(v).all()):
        # C leaves the conversion of NaN and inf to integers undefined, and
        # scipy's results for them vary with its input dtype's code path.
        return
    with np.errstate(invalid="ignore", over="ignore"):
        expected = getattr(ndi, op)(a, v, **kwargs)
    if op in ("correlate", "convolve") and a.dtype.kind == "f" and not np.isfinite(a).all():
        # The documented difference: the zero weights (those scipy leaves
        # out) multiply NaN and inf samples here, scipy skips them.  Outputs
        # may differ only where such a weight reaches one, and are NaN there.
        zero = ~(np.abs(v.astype(np.float64)) > np.finfo(np.float64).eps)
        reach = ref.ndimage_correlate((~np.isfinite(a)).astype(np.float64), zero.astype(np.float64),
                                      mode, 0.0, origin, convolution=op == "convolve") > 0
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        assert np.isnan(got[~same]).all() and reach[~same].all()
        got, expected = got[~reach], expected[~reach]
    np.testing.assert_array_equal(got, expected)


def _mostly(valid, invalid):
    """Valid values nine times in ten, so that most examples are computed and compared."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(invalid)) if invalid else st.sampled_from(valid)


# torch (the oracle) warns that it copies the input for 'same' with even kernels.
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    ndim=st.sampled_from([1, 2]),
    dtype=st.sampled_from(["float32", "float64"] * 9 + ["int32", "complex64", "float16"]),
    stride=st.sampled_from([1, 2] * 9 + [0, -1, 1.5]),
    padding=st.sampled_from([0, 1, 2, "same", "valid"] * 5 + [-1, "bad"]),
    dilation=st.sampled_from([1, 2] * 9 + [0]),
    groups=st.sampled_from([1] * 12 + [2, 3, 0]),
    padding_mode=st.sampled_from(["zeros"] * 6 + ["reflect", "replicate", "circular"] * 2 + ["bad"]),
    transpose=st.booleans(),
)
def test_nn_functions(data, ndim, dtype, stride, padding, dilation, groups, padding_mode, transpose):
    from fastconv import nn

    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    n = data.draw(st.integers(0, 2))
    c_in = data.draw(st.integers(1, 4))
    c_out = data.draw(st.integers(1, 4))
    size = [data.draw(st.integers(1, 7)) for _ in range(ndim)]
    ksize = [data.draw(st.integers(1, 4)) for _ in range(ndim)]
    batched = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-3, 4, ((n,) if batched else ()) + (c_in, *size)).astype(dtype)
    wshape = (c_in, max(c_out // max(groups, 1), 1), *ksize) if transpose else (
        c_out, max(c_in // max(groups, 1), 1), *ksize)
    w = rng.integers(-3, 4, wshape).astype(dtype)
    name = f"conv_transpose{ndim}d" if transpose else f"conv{ndim}d"
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if not transpose:
        kwargs["padding_mode"] = padding_mode
    try:
        got = getattr(nn, name)(x, w, **kwargs)
    except REFUSALS as exc:
        _check_refusal(exc)
        event(f"refused with {type(exc).__name__}")
        return
    event("computed and compared with torch")
    # fastconv accepted the call: torch must accept it too, and agree.  Small
    # integer values keep every float sum exact.
    assert np.dtype(dtype).kind == "f"
    xt = torch.from_numpy(x.astype(np.float64))
    wt = torch.from_numpy(w.astype(np.float64))
    if transpose:
        expected = getattr(F, name)(xt, wt, **kwargs)
    else:
        # torch.nn.ConvNd applies padding_mode (F.convNd knows only zeros).
        layer = getattr(torch.nn, f"Conv{ndim}d")(
            c_in, wt.shape[0], tuple(ksize), bias=False, dtype=torch.float64, **kwargs)
        with torch.no_grad():
            layer.weight.copy_(wt)
            expected = layer(xt)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), expected.detach().numpy(), rtol=0,
                               atol=1e-2 if dtype == "float16" else 1e-9)

"""Dask arrays stay lazy and chunked, and give the in-memory result.

With the direct engine every output sample is summed from the same samples
in the same order as in memory, so the comparisons are exact (bitwise)
except where noted.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ndimage

da = pytest.importorskip("dask.array")


@pytest.fixture
def image(rng):
    return rng.standard_normal((130, 97)).astype(np.float32)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_signal_face_is_lazy_and_exact(rng, image, op, mode):
    k = rng.standard_normal((5, 4)).astype(np.float32)
    lazy = getattr(fastconv, op)(da.from_array(image, chunks=(40, 30)), k, mode)
    assert isinstance(lazy, da.Array)
    expected = getattr(fastconv, op)(image, k, mode)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    np.testing.assert_array_equal(lazy.compute(), expected)


@pytest.mark.parametrize("mode,chunks", [("same", (250, 250, 250, 250)), ("full", (6, 250, 250, 250, 250)),
                                         ("valid", (250, 250, 250, 244))])
def test_signal_face_output_chunks_follow_the_input(rng, mode, chunks):
    # As the Dask guide shows: 'same' keeps the input's chunks; 'full' and
    # 'valid' grow or shrink the first or last chunk by the kernel's reach.
    x = rng.standard_normal(1000)
    fir = rng.standard_normal(7)
    lazy = fastconv.convolve(da.from_array(x, chunks=250), fir, mode)
    assert lazy.chunks == (chunks,)
    np.testing.assert_array_equal(lazy.compute(), fastconv.convolve(x, fir, mode))


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_2d_boundaries(rng, image, mode, boundary):
    k = rng.standard_normal((3, 6)).astype(np.float32)
    x = da.from_array(image, chunks=(33, 25))
    for op in ("convolve2d", "correlate2d"):
        got = getattr(fastconv, op)(x, k, mode, boundary).compute()
        np.testing.assert_array_equal(got, getattr(fastconv, op)(image, k, mode, boundary))
    # A nonzero fill value is added in another order than in memory (which
    # sums the fill's taps first): equal up to float32 rounding of the sum.
    got = fastconv.convolve2d(x, k, mode, "fill", 2.5).compute()
    expected = fastconv.convolve2d(image, k, mode, "fill", 2.5)
    bound = 2 * k.size * np.finfo(np.float32).eps * (np.abs(image).max() + 2.5) * np.abs(k).sum()
    np.testing.assert_allclose(got, expected, rtol=0, atol=bound)


@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("boundary", ["wrap", "symm"])
@pytest.mark.parametrize("shape, kshape, chunks", [((6, 4), (3, 6), (4, 2)), ((9, 2), (1, 7), (9, 1)),
                                                   ((6, 2), (1, 7), (1, 2)), ((3, 5), (8, 11), (2, 3))])
def test_2d_boundaries_with_a_kernel_longer_than_the_input(rng, mode, boundary, shape, kshape, chunks):
    # The wrap / symm extension is then wider than the input itself (the
    # samples next to the edge are not enough): against the in-memory result
    # and scipy.
    signal = pytest.importorskip("scipy.signal")
    a = rng.standard_normal(shape)
    b = rng.standard_normal(kshape)
    for op in ("convolve2d", "correlate2d"):
        got = getattr(fastconv, op)(da.from_array(a, chunks=chunks), b, mode, boundary).compute()
        np.testing.assert_array_equal(got, getattr(fastconv, op)(a, b, mode, boundary))
        bound = 4 * b.size * np.finfo(np.float64).eps * np.abs(a).max() * np.abs(b).sum()
        np.testing.assert_allclose(got, getattr(signal, op)(a, b, mode, boundary), rtol=0, atol=bound)


@pytest.mark.parametrize("dtypes", [(np.bool_, np.complex128), (np.int8, np.float64), (np.float32, np.complex128),
                                    (np.bool_, np.int16)])
@pytest.mark.parametrize("fillvalue", [0, 2, 1.5, 2 - 1j])
def test_2d_fill_value_of_the_result_dtype(rng, dtypes, fillvalue):
    # The fill value belongs to the result's dtype (2 for a bool image and
    # a complex kernel): the lazy padding must not cast it to the input's.
    import warnings

    a = (rng.standard_normal((8, 9)) * 3).astype(dtypes[0])
    b = (rng.standard_normal((4, 3)) * 3).astype(dtypes[1])
    if isinstance(fillvalue, complex) and np.result_type(*dtypes).kind != "c":
        # a complex fill value for a real result: refused, lazily as in memory
        for image in (a, da.from_array(a, chunks=3)):
            with pytest.raises(ValueError, match="fillvalue"):
                fastconv.convolve2d(image, b, "full", "fill", fillvalue)
        return
    expected = fastconv.convolve2d(a, b, "full", "fill", fillvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fastconv.convolve2d(da.from_array(a, chunks=3), b, "full", "fill", fillvalue).compute()
    assert got.dtype == expected.dtype
    scale = np.finfo(np.float64).eps * 16 * (np.abs(a).max() + abs(fillvalue)) * np.abs(b).sum()
    np.testing.assert_allclose(got, expected, rtol=0, atol=scale)


def test_many_signals_along_the_last_axis(rng):
    x = rng.standard_normal((12, 3000))
    v = rng.standard_normal((1, 40))
    lazy = fastconv.convolve(da.from_array(x, chunks=(5, 700)), v, axes=-1)
    np.testing.assert_array_equal(lazy.compute(), fastconv.convolve(x, v, axes=-1))
    with pytest.raises(NotImplementedError, match="length 1 along the axes that are not convolved"):
        fastconv.convolve(da.from_array(x, chunks=(5, 700)), rng.standard_normal((12, 40)), axes=-1)


def test_kernel_longer_than_the_chunks_is_rechunked(rng):
    x = rng.standard_normal(1000)
    v = rng.standard_normal(150)
    # method='direct' in both: 'auto' may pick an FFT engine for the whole
    # signal and the direct one for its chunks, which round differently.
    lazy = fastconv.correlate(da.from_array(x, chunks=64), v, method="direct")
    np.testing.assert_array_equal(lazy.compute(), fastconv.correlate(x, v, method="direct"))
    auto = fastconv.correlate(da.from_array(x, chunks=64), v).compute()
    scale = np.finfo(np.float64).eps * np.log2(2048) * np.linalg.norm(x) * np.linalg.norm(v)
    np.testing.assert_allclose(auto, fastconv.correlate(x, v), rtol=0, atol=4 * scale)


def test_valid_with_a_larger_kernel_is_refused_clearly(rng):
    with pytest.raises(NotImplementedError, match="in2 is larger than in1"):
        fastconv.convolve(da.ones(5, chunks=2), np.ones(9), "valid")


@pytest.mark.parametrize("mode", ["reflect", "constant", "nearest", "mirror", "wrap"])
@pytest.mark.parametrize("op", ["correlate", "convolve"])
def test_ndimage_is_lazy_and_exact(rng, image, op, mode):
    k = rng.standard_normal((7, 4)).astype(np.float32)
    x = da.from_array(image, chunks=(30, 41))
    lazy = getattr(ndimage, op)(x, k, mode=mode, cval=0.5, origin=(1, -1))
    assert isinstance(lazy, da.Array)
    expected = getattr(ndimage, op)(image, k, mode=mode, cval=0.5, origin=(1, -1))
    np.testing.assert_array_equal(lazy.compute(), expected)


@pytest.mark.parametrize("chunks", [(2, 3), (4, 5), (3, 97), (65, 49)])
@pytest.mark.parametrize("mode", ["reflect", "wrap", "constant"])
def test_ndimage_any_chunking(rng, image, chunks, mode):
    # Chunks thinner than the kernel's reach are merged with a neighbour
    # (the halo then comes from the adjacent chunk alone); two chunks along a
    # wrapped axis are each other's neighbour on both sides.
    k = rng.standard_normal((7, 6)).astype(np.float32)
    lazy = ndimage.correlate(da.from_array(image, chunks=chunks), k, mode=mode, cval=-1.0)
    assert all(min(c) >= 3 for c in lazy.chunks)
    np.testing.assert_array_equal(lazy.compute(), ndimage.correlate(image, k, mode=mode, cval=-1.0))


@pytest.mark.parametrize("mode", ["nearest", "wrap", "mirror"])
def test_ndimage_3d_every_axis_chunked(rng, mode):
    vol = rng.standard_normal((20, 17, 15))
    k = rng.standard_normal((3, 5, 4))
    lazy = ndimage.convolve(da.from_array(vol, chunks=(7, 6, 8)), k, mode=mode)
    np.testing.assert_array_equal(lazy.compute(), ndimage.convolve(vol, k, mode=mode))


def test_ndimage_separable_integer_and_1d(rng):
    img = rng.integers(0, 255, (90, 70)).astype(np.uint8)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    x = da.from_array(img, chunks=(25, 30))
    np.testing.assert_array_equal(ndimage.correlate(x, sobel).compute(), ndimage.correlate(img, sobel))
    np.testing.assert_array_equal(
        ndimage.convolve1d(x, [1, 2, 3, 4], axis=0, mode="wrap").compute(),
        ndimage.convolve1d(img, [1, 2, 3, 4], axis=0, mode="wrap"),
    )
    with pytest.raises(TypeError, match="output must be None or a dtype"):
        ndimage.correlate(x, sobel, output=np.empty(img.shape))


def test_results_computed_one_after_another_in_one_thread_stay_intact(rng):
    # Every chunk's extended copy is scratch kept by the worker thread; the
    # results handed out must never be views of it, so an earlier result is
    # unchanged after later tasks in the same thread reused the scratch.
    x, y = rng.standard_normal((2, 90, 70))
    k = rng.standard_normal((5, 3))
    first = ndimage.correlate(da.from_array(x, chunks=(30, 35)), k).persist(scheduler="sync")
    second = ndimage.correlate(da.from_array(y, chunks=(30, 35)), k).persist(scheduler="sync")
    np.testing.assert_array_equal(first.compute(scheduler="sync"), ndimage.correlate(x, k))
    np.testing.assert_array_equal(second.compute(scheduler="sync"), ndimage.correlate(y, k))


def test_distributed_local_cluster(rng):
    distributed = pytest.importorskip("distributed")
    img = rng.standard_normal((512, 384)).astype(np.float32)
    k = rng.standard_normal((7, 7)).astype(np.float32)
    batch = rng.standard_normal((5, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    import dask

    # Worker processes import numpy, numba and fastconv: on a loaded CI
    # machine that may take longer than distributed's default timeouts.
    timeouts = {"distributed.comm.timeouts.connect": "180s", "distributed.comm.timeouts.tcp": "180s",
                "distributed.deploy.lost-worker-timeout": "180s"}
    with dask.config.set(timeouts), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, timeout="180s"
    ) as cluster, distributed.Client(cluster, timeout="180s"):
        x = da.from_array(img, chunks=(128, 128))
        got = ndimage.correlate(x, k, mode="reflect").compute()
        got2 = fastconv.convolve2d(x, k, mode="same", boundary="symm").compute()
        got3 = fastconv.nn.conv2d(da.from_array(batch, chunks=(2, 3, 16, 16)), w, padding=1).compute()
    np.testing.assert_array_equal(got, ndimage.correlate(img, k, mode="reflect"))
    # each task is the in-memory layer on its 2 (or 1) samples
    per_chunk = [fastconv.nn.conv2d(batch[i:i + 2], w, padding=1) for i in range(0, 5, 2)]
    np.testing.assert_array_equal(got3, np.concatenate(per_chunk))
    np.testing.assert_array_equal(got2, fastconv.convolve2d(img, k, mode="same", boundary="symm"))


def test_dask_weights_alone_give_a_lazy_result_in_every_face(rng):
    # A Dask array among the arguments makes the result a Dask array, also
    # when it is the kernel.
    x = rng.standard_normal((12, 13))
    k2, k1 = rng.standard_normal((3, 3)), rng.standard_normal(4)
    calls = [(fastconv.convolve, (x, k2)), (fastconv.correlate2d, (x, k2)), (ndimage.correlate, (x, k2)),
             (ndimage.convolve, (x, k2)), (ndimage.correlate1d, (x, k1)), (ndimage.convolve1d, (x, k1))]
    for func, (a, k) in calls:
        lazy = func(a, da.from_array(k))
        assert isinstance(lazy, da.Array), func.__name__
        np.testing.assert_array_equal(lazy.compute(), func(a, k))


def test_dask_1d_filters_multiply_every_weight_like_in_memory():
    # correlate1d / convolve1d use every weight (a NaN or a tiny one too),
    # as scipy's; the lazy path must not apply the N-D filters' rule.
    ndi = pytest.importorskip("scipy.ndimage")
    x = np.arange(8.0)
    for op, w in [("correlate1d", [1.0, np.nan, 1.0]), ("convolve1d", [0.0, 1e-20, 0.0])]:
        lazy = getattr(ndimage, op)(da.from_array(x, chunks=4), w).compute()
        np.testing.assert_array_equal(lazy, getattr(ndimage, op)(x, w))
        np.testing.assert_array_equal(lazy, getattr(ndi, op)(x, w))


def test_a_dask_array_beside_another_library_is_refused():
    torch = pytest.importorskip("torch")
    calls = [fastconv.convolve, lambda a, b: fastconv.correlate2d(a[None], b[None]), ndimage.correlate,
             ndimage.convolve1d]
    lazy, tensor = da.ones((6,), chunks=2), torch.ones(3, dtype=torch.float64)
    for call in calls:
        for a, b in ((lazy, tensor), (tensor, lazy)):
            with pytest.raises(TypeError, match="one array library"):
                call(a, b)
    # NumPy arrays and lists beside a Dask array are plain data
    assert isinstance(fastconv.convolve(lazy, [1.0, 2.0]), da.Array)


# --- CNN layers: one task per chunk of the batch ----------------------------------------------

_NN_CASES = [
    # (nd, input shape, weight shape, keyword arguments)
    (1, (7, 4, 19), (6, 2, 3), dict(stride=2, padding=1, groups=2)),
    (2, (5, 3, 11, 10), (4, 3, 3, 2), dict(padding=(1, 2), dilation=(2, 1), padding_mode="reflect")),
    (3, (3, 2, 5, 6, 4), (3, 2, 2, 3, 3), dict(stride=(1, 2, 1), padding=1)),
]


def _computes(counter):
    """A scheduler that counts the graphs it is asked to compute."""
    import dask

    def get(dsk, keys, **kwargs):
        counter.append(1)
        return dask.get(dsk, keys, **kwargs)

    return get


def _per_chunk(func, lazy, *args, **kwargs):
    """``func`` in memory on each batch chunk of the Dask array ``lazy``, concatenated."""
    starts = np.cumsum((0,) + lazy.chunks[0])
    data = lazy.compute()
    return np.concatenate([func(data[a:b], *args, **kwargs) for a, b in zip(starts[:-1], starts[1:])])


def _assert_rounding_close(got, expected, magnitude, terms, dtype):
    """|got - expected| within twice the rounding bound of sums of ``terms`` products (``magnitude``: on |x|, |w|)."""
    bound = 2 * terms * np.finfo(dtype).eps * magnitude
    assert np.all(np.abs(got - expected) <= bound)


@pytest.mark.parametrize("nd, xshape, wshape, kwargs", _NN_CASES)
def test_nn_layers_are_lazy_per_batch_chunk(rng, nd, xshape, wshape, kwargs):
    import dask

    from fastconv import nn

    conv = getattr(nn, f"conv{nd}d")
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    b = rng.standard_normal(wshape[0]).astype(np.float32)
    # chunked along every axis: the channel and spatial axes are gathered
    lazy_x = da.from_array(x, chunks=(2,) + (3,) * (x.ndim - 1))
    computed = []
    with dask.config.set(scheduler=_computes(computed)):
        lazy = conv(lazy_x, w, b, **kwargs)
        assert isinstance(lazy, da.Array) and not computed
        expected = conv(x, w, b, **kwargs)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        assert lazy.chunks[0] == lazy_x.chunks[0]
        got = lazy.compute()
        # each task is the in-memory layer on its samples: bitwise
        np.testing.assert_array_equal(got, _per_chunk(conv, lazy_x, w, b, **kwargs))
        # and the whole batch's result up to float32 rounding
        magnitude = conv(np.abs(x), np.abs(w), np.abs(b), **kwargs)
        _assert_rounding_close(got, expected, magnitude, w[0].size + 1, np.float32)
        # unbatched input: one sample
        np.testing.assert_array_equal(conv(lazy_x[1], w, b, **kwargs).compute(), conv(x[1], w, b, **kwargs))
        # Dask weights and bias alone make the result lazy too
        lazy_w = conv(x, da.from_array(w), da.from_array(b), **kwargs)
        assert isinstance(lazy_w, da.Array)
        np.testing.assert_array_equal(lazy_w.compute(), expected)


@pytest.mark.parametrize("nd, xshape, wshape, kwargs", _NN_CASES)
def test_nn_transposed_layers_and_gradients_on_dask(rng, nd, xshape, wshape, kwargs):
    import dask

    from fastconv import nn

    kwargs = {k: v for k, v in kwargs.items() if k != "padding_mode"}
    x = rng.standard_normal(xshape).astype(np.float64)
    w = rng.standard_normal(wshape).astype(np.float64)
    go = getattr(nn, f"conv{nd}d")(x, w, **kwargs)
    go = rng.standard_normal(go.shape)
    chunked = lambda a: da.from_array(a, chunks=(2,) + a.shape[1:])  # noqa: E731

    transposed = getattr(nn, f"conv_transpose{nd}d")
    lazy = transposed(chunked(go), w, **kwargs)
    assert isinstance(lazy, da.Array) and lazy.chunks[0] == chunked(go).chunks[0]
    got = lazy.compute()
    np.testing.assert_array_equal(got, _per_chunk(transposed, chunked(go), w, **kwargs))
    _assert_rounding_close(got, transposed(go, w, **kwargs), transposed(np.abs(go), np.abs(w), **kwargs),
                           w[0].size, np.float64)

    input_grad = getattr(nn, f"conv{nd}d_input_grad")
    for size in (x.shape, x.shape[1:], x.shape[2:]):  # with and without batch and channel counts
        lazy = input_grad(size, w, chunked(go), **kwargs)
        assert isinstance(lazy, da.Array) and lazy.shape == x.shape and lazy.chunks[0] == chunked(go).chunks[0]
        got = lazy.compute()
        np.testing.assert_array_equal(got, _per_chunk(lambda g, size=size: input_grad(size[-nd - 1:], w, g, **kwargs),
                                                      chunked(go)))
        _assert_rounding_close(got, input_grad(size, w, go, **kwargs),
                               input_grad(size, np.abs(w), np.abs(go), **kwargs), w.size, np.float64)
    with pytest.raises(ValueError, match="batch"):
        input_grad((x.shape[0] + 1,) + x.shape[1:], w, chunked(go), **kwargs)

    # The weight gradient sums the chunks' gradients: the in-memory sums
    # regrouped, so equal up to float64 rounding of sums of |terms| at most
    # the bound below (tested against the float64 in-memory gradient).
    weight_grad = getattr(nn, f"conv{nd}d_weight_grad")
    computed = []
    with dask.config.set(scheduler=_computes(computed)):
        lazy = weight_grad(chunked(x), w.shape, chunked(go), **kwargs)
    assert not computed
    assert isinstance(lazy, da.Array) and lazy.shape == w.shape and lazy.dtype == np.float64
    expected = weight_grad(x, w.shape, go, **kwargs)
    magnitude = weight_grad(np.abs(x), w.shape, np.abs(go), **kwargs)
    terms = x.shape[0] * np.prod(go.shape[2:])
    _assert_rounding_close(lazy.compute(), expected, magnitude, terms, np.float64)
    # a NumPy input beside a Dask grad_output, and unbatched pairs
    _assert_rounding_close(weight_grad(x, w.shape, chunked(go), **kwargs).compute(), expected, magnitude, terms,
                           np.float64)
    np.testing.assert_array_equal(weight_grad(chunked(x)[0], w.shape, go[0], **kwargs).compute(),
                                  weight_grad(x[0], w.shape, go[0], **kwargs))


def test_nn_on_dask_refuses_what_it_refuses_in_memory(rng):
    from fastconv import nn

    x = da.from_array(rng.standard_normal((4, 3, 8, 8)), chunks=(2, 3, 8, 8))
    w = rng.standard_normal((5, 3, 3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.conv2d(x, w, groups=2)
    with pytest.raises(ValueError, match="must be 4-D"):
        nn.conv2d(x[None], w)
    with pytest.raises(ValueError, match="larger than the padded input"):
        nn.conv2d(x[:, :, :2, :2], w)
    with pytest.raises(ValueError, match=r"both be batched.*\(3, 8, 8\) and \(4, 5, 6, 6\)"):
        nn.conv2d_weight_grad(x[0], w.shape, da.zeros((4, 5, 6, 6)))
    with pytest.raises(ValueError, match=r"grad_output must have batch 4 .*\(3, 5, 6, 6\)"):
        nn.conv2d_weight_grad(x, w.shape, da.zeros((3, 5, 6, 6)))
    with pytest.raises(ValueError, match="grad_output is unbatched"):
        nn.conv2d_input_grad((1, 3, 8, 8), w, da.zeros((5, 6, 6)))
    with pytest.raises(TypeError, match="floating dtype"):
        nn.conv2d(x.astype(np.int32), w)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one array library"):
        nn.conv2d(x, torch.from_numpy(w))


def test_choose_method_on_dask_computes_one_chunk_not_the_array():
    # 160 GB if it were computed: choose_method looks at the first task's block only
    big = da.ones((200_000, 200_000), chunks=(2000, 2000), dtype=np.float32)
    assert fastconv.choose_method(big, np.ones((31, 31), np.float32), "same") in ("direct", "fft", "oa")
    signal = da.ones(10**6, chunks=10**5)
    assert fastconv.choose_method(signal, np.ones(3)) == "direct"
    with pytest.raises(NotImplementedError, match="measure=True"):
        fastconv.choose_method(signal, np.ones(3), measure=True)
    with pytest.raises(ValueError, match="same dimensionality"):
        fastconv.choose_method(big, np.ones(3))


@pytest.mark.parametrize("shape, chunks, kshape, mode", [
    ((1000,), 1000, (1000,), "full"), ((2000,), 1000, (1999,), "full"), ((3000,), 700, (3,), "same"),
    ((90_000,), 30_000, (4095,), "full"), ((300, 280), (100, 140), (31, 31), "same"),
    ((300, 280), (100, 140), (3, 3), "valid")])
def test_choose_method_on_dask_is_the_first_tasks_choice(monkeypatch, shape, chunks, kshape, mode):
    import dask

    from fastconv import _auto

    x = da.ones(shape, chunks=chunks)
    k = np.ones(kshape)
    said = fastconv.choose_method(x, k, mode)
    ran = []
    choose = _auto.plan_for_auto

    def record(plan, a, w):
        chosen = choose(plan, a, w)
        ran.append((a.shape, chosen.method))
        return chosen

    monkeypatch.setattr(_auto, "plan_for_auto", record)
    with dask.config.set(scheduler="synchronous"):
        fastconv.convolve(x, k, mode).compute()
    # the block choose_method looked at is one a task ran, and that task chose the same
    from fastconv import _dask, signal

    a, b, axes, _, _, rule, rdt = signal._lazy_operands(x, k, mode, None, "auto", False, None)
    pad_lo, out_shape = signal._mode_padding(a, b, axes, mode, rule, lambda n: n // 2)
    first = _dask.first_block(a, axes, list(kshape), pad_lo, out_shape, "zero", 0, rdt).shape
    assert (first, said) in ran
def test_unknown_chunk_sizes_are_refused_naming_the_argument():
    from fastconv import nn

    x = da.ones((10, 10), chunks=3)
    x = x[x[:, 0] > 0]  # chunk sizes unknown until computed
    calls = [(lambda: fastconv.convolve(x[:, 0], np.ones(3)), "in1"),
             (lambda: fastconv.fftconvolve(x, np.ones((3, 3)), axes=1), "in1"),
             (lambda: fastconv.choose_method(x, np.ones((3, 3))), "in1"),
             (lambda: ndimage.correlate(x, np.ones((3, 3))), "input"),
             (lambda: nn.conv1d_weight_grad(x[:, None], (1, 1, 3), np.ones((10, 1, 8))), "input")]
    for call, name in calls:
        with pytest.raises(ValueError, match=f"{name} is a Dask array of unknown chunk sizes"):
            call()
    # a batch of unknown length is fine for a layer: each chunk stands alone
    known = da.ones((10, 1, 10), chunks=3)
    lazy = nn.conv1d(x[:, None], np.ones((2, 1, 3)))
    np.testing.assert_array_equal(lazy.compute(), nn.conv1d(known, np.ones((2, 1, 3))).compute())


def test_nn_weight_gradient_follows_the_chunked_argument_and_sums_float16_in_float32(rng, monkeypatch):
    import dask

    from fastconv import _execute, nn

    x = rng.standard_normal((16, 2, 10))
    w_shape = (3, 2, 3)
    go = rng.standard_normal((16, 3, 8))
    calls = []
    run = _execute.run_conv_weight_grad
    monkeypatch.setattr(_execute, "run_conv_weight_grad", lambda plan, *a: calls.append(plan.batch) or run(plan, *a))
    with dask.config.set(scheduler="synchronous"):
        # NumPy input beside a grad_output in 8 chunks: 8 tasks, not one
        nn.conv1d_weight_grad(x, w_shape, da.from_array(go, chunks=(2, 3, 8))).compute()
    assert sorted(n for n in calls if n) == [2] * 8
    monkeypatch.setattr(_execute, "run_conv_weight_grad", run)
    # float16: the 16 one-sample gradients are added in float32 and rounded
    # once (added in float16, each addition would round)
    x16, go16 = x.astype(np.float16), go.astype(np.float16)
    got = nn.conv1d_weight_grad(da.from_array(x16, chunks=(1, 2, 10)), w_shape, go16).compute()
    parts = np.stack([nn.conv1d_weight_grad(x16[i:i + 1], w_shape, go16[i:i + 1]) for i in range(16)])
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, parts.astype(np.float32).sum(axis=0).astype(np.float16))


def test_nn_batch_of_unknown_length_with_a_full_input_size(rng):
    from fastconv import nn

    x = rng.standard_normal((10, 1, 10))
    lazy_x = da.from_array(x, chunks=(3, 1, 10))
    unknown = lazy_x[lazy_x[:, 0, 0] > -100]  # every sample, in chunks of unknown length
    w = rng.standard_normal((2, 1, 3))
    go = nn.conv1d(unknown, w)
    got = nn.conv1d_input_grad((10, 1, 10), w, go).compute()
    np.testing.assert_allclose(got, nn.conv1d_input_grad((10, 1, 10), w, nn.conv1d(x, w)), rtol=1e-12, atol=1e-12)
    # an unbatched input of unknown length has unknown channels: refused by name
    y = da.ones((10, 10), chunks=3)
    with pytest.raises(ValueError, match="input is a Dask array of unknown chunk sizes"):
        nn.conv1d(y[y[:, 0] > 0], np.ones((2, 10, 3)))

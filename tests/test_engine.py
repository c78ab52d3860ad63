"""The primitive itself: plans with stride, dilation, every border rule, batches.

The faces reach only part of the primitive today (stride 1, dilation 1, three
border rules); the ndimage and nn faces will use the rest.  These tests build
plans directly and compare with ``reference.primitive``, which really pads the
input with ``numpy.pad``.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import reference as ref
from fastconv import _execute
from fastconv._engines import _jit
from fastconv._plan import make_plan
from kinds import random_array

BORDERS = ["zero", "constant", "edge", "symmetric", "reflect", "wrap"]


def run_plan(x, w, *, pad_lo, stride, dilation, border, cval=0, out_shape=None, axes=None):
    nd = len(pad_lo)
    axes = tuple(range(x.ndim - nd, x.ndim)) if axes is None else axes
    n = [x.shape[a] for a in axes]
    k = [w.shape[a] for a in axes]
    if out_shape is None:
        # As much output as a symmetric padding of pad_lo allows.
        out_shape = [(ni + 2 * p - (ki - 1) * d - 1) // s + 1
                     for ni, ki, p, s, d in zip(n, k, pad_lo, stride, dilation)]
    plan = make_plan(x, w, axes=axes, pad_lo=pad_lo, out_shape=out_shape,
                     result_dtype=np.result_type(x, w), stride=stride, dilation=dilation,
                     border=border, cval=cval)
    return _execute.run(plan, x, w), out_shape


def expected_plan(x, w, *, pad_lo, out_shape, stride, dilation, border, cval=0):
    out = ref.primitive(x, w, pad_lo=pad_lo, out_shape=out_shape, stride=stride,
                        dilation=dilation, border=border, cval=cval)
    return ref.to_result(out, np.result_type(x, w))


def assert_matches(got, expected, x, w, border, cval, **geometry):
    got = np.asarray(got)
    if got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected)
        return
    magnitude = np.abs(ref.primitive(np.abs(x).astype(float), np.abs(w).astype(float),
                                     border=border, cval=abs(cval), **geometry))
    ref.assert_close(got, expected, magnitude, w.size, got.dtype)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("stride,dilation", [((1, 1), (1, 1)), ((2, 3), (1, 1)), ((1, 1), (2, 3)),
                                             ((3, 2), (2, 2))])
@pytest.mark.parametrize("shape,kshape,pad", [((13, 17), (3, 3), (1, 1)), ((9, 20), (4, 5), (3, 4)),
                                              ((3, 4), (5, 6), (6, 7)), ((1, 7), (2, 3), (1, 2))])
def test_2d_borders_stride_dilation(rng, border, stride, dilation, shape, kshape, pad):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(kshape)
    got, out_shape = run_plan(x, w, pad_lo=pad, stride=stride, dilation=dilation, border=border, cval=1.5)
    if min(out_shape) < 1:
        pytest.skip("geometry leaves no output")
    geometry = dict(pad_lo=pad, out_shape=out_shape, stride=stride, dilation=dilation)
    expected = expected_plan(x, w, border=border, cval=1.5, **geometry)
    assert got.shape == expected.shape
    assert_matches(got, expected, x, w, border, 1.5, **geometry)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.complex64, np.complex128])
def test_1d_borders_with_kernels_longer_than_the_input(rng, border, dtype):
    # Periodic and mirrored extensions repeat more than once when the padding
    # exceeds the input length.
    x = random_array(rng, (5,), dtype)
    w = random_array(rng, (13,), dtype)
    geometry = dict(pad_lo=(12,), out_shape=(17,), stride=(1,), dilation=(1,))
    got, _ = run_plan(x, w, pad_lo=(12,), stride=(1,), dilation=(1,), border=border, cval=2,
                      out_shape=(17,))
    expected = expected_plan(x, w, border=border, cval=2, **geometry)
    assert_matches(got, expected, x, w, border, 2, **geometry)


@pytest.mark.parametrize("border", BORDERS)
def test_border_columns_mapped_on_the_fly_when_the_table_would_be_large(rng, border):
    # A kernel far longer than the input: every output column is a border
    # column, more (columns x taps) than the engine tabulates, so each tap's
    # column is mapped as it goes (the other tests use the table).
    from fastconv._engines import direct

    x = rng.standard_normal((7,))
    w = rng.standard_normal((301,))
    assert 307 * 301 > direct._BORDER_TABLE_MAX
    geometry = dict(pad_lo=(300,), out_shape=(307,), stride=(1,), dilation=(1,))
    got, _ = run_plan(x, w, pad_lo=(300,), stride=(1,), dilation=(1,), border=border, cval=0.5,
                      out_shape=(307,))
    expected = expected_plan(x, w, border=border, cval=0.5, **geometry)
    assert_matches(got, expected, x, w, border, 0.5, **geometry)


@pytest.mark.parametrize("name", ["edge", "symmetric", "reflect", "wrap"])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_border_index_tables_follow_numpy_pad(name, n):
    # The table of border columns is built with NumPy (borders.map_indices);
    # np.pad with the same mode is the oracle, and the scalar rule the
    # kernels inline (borders.map_index) must agree with both.
    from fastconv._engines import borders

    reach = 4 * n + 3
    i = np.arange(-reach, n + reach, dtype=np.int64)
    expected = np.pad(np.arange(n), reach, mode=name)
    got = borders.map_indices(i, n, borders.BY_NAME[name])
    np.testing.assert_array_equal(got, expected)
    assert [borders.map_index(int(v), n, borders.BY_NAME[name]) for v in i] == expected.tolist()
    assert got.dtype == np.int64


@pytest.mark.parametrize("borders", [("wrap", "reflect"), ("edge", "zero"), ("constant", "symmetric"),
                                     ("zero", "constant")])
def test_one_border_rule_per_axis(rng, borders):
    x = rng.standard_normal((7, 8))
    w = rng.standard_normal((4, 3))
    geometry = dict(pad_lo=(3, 2), out_shape=(10, 10), stride=(1, 1), dilation=(1, 1))
    got, _ = run_plan(x, w, pad_lo=(3, 2), stride=(1, 1), dilation=(1, 1), border=borders, cval=-1.0,
                      out_shape=(10, 10))
    expected = expected_plan(x, w, border=borders, cval=-1.0, **geometry)
    assert_matches(got, expected, x, w, borders, -1.0, **geometry)


@pytest.mark.parametrize("border", ["zero", "reflect", "wrap"])
def test_3d_with_batches(rng, border):
    # Two batch axes (broadcast: the kernel has length 1 on the first) and
    # three convolved axes, with stride and dilation on some of them.
    x = rng.standard_normal((2, 3, 6, 7, 9)).astype(np.float32)
    w = rng.standard_normal((1, 3, 3, 2, 4)).astype(np.float32)
    pad, stride, dilation = (1, 2, 3), (1, 2, 1), (2, 1, 1)
    got, out_shape = run_plan(x, w, pad_lo=pad, stride=stride, dilation=dilation, border=border)
    geometry = dict(pad_lo=pad, out_shape=out_shape, stride=stride, dilation=dilation)
    for i in range(2):
        for j in range(3):
            expected = expected_plan(x[i, j], w[0, j], border=border, **geometry)
            assert_matches(got[i, j], expected, x[i, j], w[0, j], border, 0, **geometry)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128, np.int64])
def test_bitwise_identical_at_any_thread_count(rng, dtype):
    # Each output element is summed by one task in a fixed order, so the
    # thread count (and hence how tasks are split) cannot change any bit.
    x = random_array(rng, (3, 301, 517), dtype)
    w = random_array(rng, (1, 7, 6), dtype)
    kwargs = dict(pad_lo=(3, 2), stride=(1, 1), dilation=(1, 1), border="symmetric")
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, 2, before}):
            numba.set_num_threads(threads)
            results.append(run_plan(x, w, **kwargs)[0])
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        assert r.tobytes() == results[0].tobytes()
    # A long single row is split into column blocks across threads: also exact.
    y = random_array(rng, (1, 1, 200_001), dtype)
    v = random_array(rng, (1, 1, 31), dtype)
    long_results = []
    try:
        for threads in sorted({1, 2, before}):
            numba.set_num_threads(threads)
            long_results.append(run_plan(y, v, pad_lo=(0, 30), stride=(1, 1), dilation=(1, 1),
                                         border="zero")[0])
    finally:
        numba.set_num_threads(before)
    for r in long_results[1:]:
        assert r.tobytes() == long_results[0].tobytes()


# Windows with a fused kernel (fastconv._engines.direct.FUSED_WINDOWS), each on
# a problem large enough to use it; geometries where every pair of output rows
# reads shifted kernel rows (stride 1), where none does (row stride 2, row
# dilation 2), and an odd number of output rows (a last unpaired row).
FUSED_CASES = [
    ((3, 3), np.float64), ((5, 5), np.float64), ((7, 7), np.float64), ((3, 3, 3), np.float64),
    ((3, 3), np.float32), ((3, 3), np.complex128), ((3, 3), np.int64), ((7, 7), np.float32),
]


@pytest.mark.parametrize("kshape,dtype", FUSED_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("row_stride,row_dilation", [(1, 1), (2, 1), (1, 2)])
def test_fused_windows_match_the_tap_passes_bitwise(rng, monkeypatch, kshape, dtype, border,
                                                    row_stride, row_dilation):
    from fastconv._engines import direct

    nd = len(kshape)
    window = (int(np.prod(kshape[:-1])), kshape[-1])
    assert window in direct.FUSED_WINDOWS
    shape = (5, 41, 80) if nd == 3 else (101, 90)
    x = random_array(rng, shape, dtype)
    w = random_array(rng, kshape, dtype)
    pad = tuple(k // 2 for k in kshape)
    stride = (1,) * (nd - 2) + (row_stride, 1)
    dilation = (1,) * (nd - 2) + (row_dilation, 1)
    kwargs = dict(pad_lo=pad, stride=stride, dilation=dilation, border=border, cval=-2)
    fused, out_shape = run_plan(x, w, **kwargs)
    assert np.prod(out_shape) >= _execute._FUSED_MIN_OUTPUTS  # the fused kernel ran
    assert window in direct._WINDOWS
    # The launch derived from the shapes (the task among them) is
    # remembered: forget it, so that the general kernel runs.
    monkeypatch.setattr(_execute, "_FUSED_MIN_OUTPUTS", np.inf)
    monkeypatch.setattr(direct, "for_window", None)  # not asked for a fused kernel
    _execute._direct_launch.cache_clear()
    try:
        passes, _ = run_plan(x, w, **kwargs)
    finally:
        _execute._direct_launch.cache_clear()
    # The fused kernel adds the taps in the order the tap passes do.
    assert fused.dtype == passes.dtype and fused.tobytes() == passes.tobytes()
    geometry = dict(pad_lo=pad, out_shape=out_shape, stride=stride, dilation=dilation)
    expected = expected_plan(x, w, border=border, cval=-2, **geometry)
    assert_matches(fused, expected, x, w, border, -2, **geometry)


# Border columns along a zero border, in runs of at least
# direct._BORDER_RUN_MIN columns, go tap by tap over the run; they must add
# the same terms in the same order as the interior code does on a really
# padded input (a skipped tap there adds w * 0, which changes no sum), and
# so must the constant border's columns, computed one by one.
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.int64])
@pytest.mark.parametrize("border", ["zero", "constant"])
@pytest.mark.parametrize("shape,kshape,pad,dilation", [
    ((3, 200), (1, 63), (0, 62), (1, 1)),  # 'full': 62 border columns per side
    ((9, 100), (3, 65), (1, 32), (1, 1)),  # 'same', 2-D
    ((2, 30), (1, 45), (0, 44), (1, 1)),  # a kernel longer than the row: every column a border one
    ((4, 150), (2, 20), (1, 38), (1, 2)),  # dilated taps
])
def test_border_runs_match_the_interior_code_bitwise(rng, dtype, border, shape, kshape, pad, dilation):
    from fastconv._engines import direct

    x = random_array(rng, shape, dtype)
    w = random_array(rng, kshape, dtype)
    cval = 0 if border == "zero" else 3
    if border == "constant":
        # Outside the leading axis the engine adds a constant row's taps
        # ahead of the others (documented): keep the windows inside it.
        pad = (0, pad[1])
    got, out_shape = run_plan(x, w, border=border, cval=cval, pad_lo=pad, stride=(1, 1), dilation=dilation)
    assert pad[-1] >= direct._BORDER_RUN_MIN  # the runs are long enough
    span = [(k - 1) * d + 1 for k, d in zip(kshape, dilation)]
    after = [(o - 1) + sp - n - p for o, sp, n, p in zip(out_shape, span, shape, pad)]
    ext = ref.pad(x, pad, [max(a, 0) for a in after], border, cval)
    inner, _ = run_plan(ext, w, pad_lo=(0, 0), stride=(1, 1), dilation=dilation, border="zero",
                        out_shape=out_shape)
    assert got.dtype == inner.dtype and got.tobytes() == inner.tobytes()


def assert_same_bits_but_nan_signs(a, b):
    """Bitwise equal, except that a NaN may carry either sign.

    Which sign an invalid operation such as ``inf * 0`` gives its NaN depends
    on the instructions (x86 makes it negative; a NaN operand passes its own
    on), so two layouts of the same sums may differ there, e.g. where one is
    compiled to AVX-512 complex products and the other is not.  Every other
    bit must agree.
    """
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    parts = (lambda t: t.view(t.real.dtype)) if a.dtype.kind == "c" else (lambda t: t)
    pa, pb = parts(a), parts(b)
    if pa.dtype.kind == "f":
        nan = np.isnan(pa)
        assert np.array_equal(nan, np.isnan(pb))
        pa, pb = np.where(nan, 0, pa), np.where(nan, 0, pb)
    assert pa.tobytes() == pb.tobytes()


# Border columns of 2-D calls with enough interior rows go down the rows
# (direct._edge_task, over a transposed copy of the input columns they
# read) instead of column by column in the tasks: each output must get the
# same taps in the same order, so the same bits.  Cases: 'same' with an odd
# kernel, 'full' with an even one, dilation along both axes, a kernel wider
# than the row (every column a border one), one taller than the input (no
# interior row), batches with a shared and with a per-item kernel; constant
# borders read a row of cval in the transposed copy.
EDGE_CASES = [
    # x shape, kernel shape, pad_lo, dilation
    ((40, 30), (15, 15), (7, 7), (1, 1)),
    ((33, 25), (6, 10), (5, 9), (1, 1)),
    ((41, 26), (5, 7), (4, 9), (2, 3)),
    ((20, 12), (3, 20), (1, 10), (1, 1)),
    ((5, 30), (9, 5), (4, 2), (1, 1)),
    ((3, 24, 20), (1, 9, 9), (4, 4), (1, 1)),
    ((2, 24, 20), (2, 5, 8), (2, 7), (1, 2)),
]
EDGE_BORDERS = [("zero", "zero"), ("reflect", "reflect"), ("wrap", "wrap"), ("edge", "symmetric"),
                ("constant", "reflect"), ("zero", "edge"), ("constant", "constant"), ("reflect", "constant")]


@pytest.fixture
def edge_launches(monkeypatch):
    """What each call's ``direct._edges_apart`` returned (None: the border columns stayed in the tasks)."""
    from fastconv._engines import direct

    launched = []
    edges_apart = direct._edges_apart
    monkeypatch.setattr(direct, "_edges_apart",
                        lambda *args: launched.append(edges_apart(*args)) or launched[-1])
    return launched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("borders", EDGE_BORDERS, ids=str)
@pytest.mark.parametrize("shape,kshape,pad,dilation", EDGE_CASES, ids=str)
def test_edge_columns_down_the_rows_match_the_tasks_bitwise(rng, monkeypatch, edge_launches, dtype, borders,
                                                            shape, kshape, pad, dilation):
    from fastconv._engines import direct

    launched = edge_launches
    x = random_array(rng, shape, dtype)
    w = random_array(rng, kshape, dtype)
    specials = x.copy()
    flat = specials.reshape(-1, shape[-1])
    flat[1, 0], flat[2, -1], flat[3, 1], flat[-1, 0] = np.nan, np.inf, -np.inf, -0.0
    cval = -1.5

    def run(a, edges: bool):
        monkeypatch.setattr(direct, "_EDGE_MIN_TAPS", 0 if edges else np.inf)
        monkeypatch.setattr(direct, "_EDGE_MIN_ROWS", 0 if edges else np.inf)
        got, out_shape = run_plan(a, w, pad_lo=pad, stride=(1, 1), dilation=dilation, border=borders, cval=cval)
        assert (launched[-1] is not None) == edges  # the border columns went where asked
        return got, out_shape

    got, out_shape = run(x, True)
    tasks, _ = run(x, False)
    assert got.tobytes() == tasks.tobytes()
    assert_same_bits_but_nan_signs(run(specials, True)[0], run(specials, False)[0])
    geometry = dict(pad_lo=pad, out_shape=out_shape, stride=(1, 1), dilation=dilation)
    for b in np.ndindex(shape[:-2]):
        wb = w[b] if w.shape[:-2] == shape[:-2] else w[(0,) * (w.ndim - 2)]
        expected = expected_plan(x[b], wb, border=borders, cval=cval, **geometry)
        assert_matches(got[b], expected, x[b], wb, borders, cval, **geometry)


@pytest.mark.parametrize("case", ["a stride", "complex", "1-D", "few taps"])
def test_edge_columns_stay_in_the_tasks_where_they_would_not_match_or_pay(rng, edge_launches, case):
    launched = edge_launches
    x, w = rng.standard_normal((200, 200)), rng.standard_normal((15, 15))
    border, stride, pad = "zero", (1, 1), (7, 7)
    if case == "a stride":
        stride = (1, 2)
    elif case == "complex":
        x = x.astype(np.complex128)
    elif case == "1-D":
        x, w, pad = x.ravel(), w.ravel(), (112,)
        stride = (1,)
    else:
        w = w[:2, :3]  # 2 x 198 x 2 border columns of 6 taps: fewer than direct._EDGE_MIN_TAPS
        pad = (1, 2)
    got, out_shape = run_plan(x, w, pad_lo=pad, stride=stride, dilation=(1,) * len(pad), border=border, cval=2.0)
    assert launched == [None]  # asked, and declined
    geometry = dict(pad_lo=pad, out_shape=out_shape, stride=stride, dilation=(1,) * len(pad))
    expected = expected_plan(x, w, border=border, cval=2.0, **geometry)
    assert_matches(got, expected, x, w, border, 2.0, **geometry)


# Batch axes after the last convolved axis, with a kernel that does not vary
# along them: the executor makes them convolved axes of kernel extent 1, so
# the engine works along the input's own rows (fastconv._execute._long_rows).
# Cases: one and two trailing axes, stride and dilation, a 2-D kernel, and
# inputs with zeros, -0.0, NaN and inf.
TRAILING_BATCH_CASES = [
    # shape, kernel shape, convolved axes, pad_lo, stride, dilation
    ((16, 600), (5, 1), (0,), (2,), (1,), (1,)),
    ((9, 10, 70), (3, 1, 1), (0,), (1,), (1,), (1,)),
    ((40, 300), (3, 1), (0,), (2,), (2,), (2,)),
    ((30, 20, 100), (3, 4, 1), (0, 1), (1, 2), (1, 1), (1, 1)),
]


@pytest.mark.parametrize("shape,kshape,axes,pad,stride,dilation", TRAILING_BATCH_CASES)
@pytest.mark.parametrize("border", [b for b in BORDERS if b != "constant"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.int64])
def test_trailing_batch_axes_become_rows_bitwise(rng, monkeypatch, shape, kshape, axes, pad, stride,
                                                 dilation, border, dtype):
    finite = random_array(rng, shape, dtype)
    x = finite.copy()
    if dtype != np.int64:
        flat = x.reshape(-1)
        flat[::7] = 0
        flat[1::11] = -0.0
        flat[2::97] = np.nan
        flat[3::89] = np.inf
    w = random_array(rng, kshape, dtype)
    kwargs = dict(pad_lo=pad, stride=stride, dilation=dilation, border=border, axes=axes)
    out_shape = [(x.shape[a] + 2 * p - (w.shape[a] - 1) * d - 1) // s + 1
                 for a, p, s, d in zip(axes, pad, stride, dilation)]
    plan = make_plan(x, w, axes=axes, pad_lo=pad, out_shape=out_shape, result_dtype=np.result_type(x, w),
                     stride=stride, dilation=dilation, border=border)
    assert _execute._long_rows(plan, x.shape, w.shape) is not None  # the case is re-expressed
    along, _ = run_plan(x, w, **kwargs)
    along_finite, _ = run_plan(finite, w, **kwargs)
    # The launch derived from the shapes is remembered: forget it around the
    # run without the re-expression.
    monkeypatch.setattr(_execute, "_long_rows", lambda plan, x_shape, w_shape: None)
    _execute._direct_launch.cache_clear()
    try:
        assert _execute._direct_launch(plan, x.shape, w.shape, 1).plan == plan
        batched, _ = run_plan(x, w, **kwargs)
    finally:
        _execute._direct_launch.cache_clear()
    assert along.shape == batched.shape and along.dtype == batched.dtype
    assert along.flags.c_contiguous
    assert_same_bits_but_nan_signs(along, batched)
    # Against the reference on finite data; it convolves every axis, the
    # batch ones with their extent-1 kernel.
    along, x = along_finite, finite
    full = {a: (p, o, s, d) for a, p, o, s, d in zip(axes, pad, out_shape, stride, dilation)}
    p, o, s, d = zip(*(full.get(a, (0, x.shape[a], 1, 1)) for a in range(x.ndim)))
    geometry = dict(pad_lo=p, out_shape=o, stride=s, dilation=d)
    assert_matches(along, expected_plan(x, w, border=border, **geometry), x, w, border, 0, **geometry)


@pytest.mark.parametrize("shape,kshape,border", [
    ((300, 16), (5, 1), "constant"),  # outside taps added in another order along rows
    ((300, 16), (5, 16), "reflect"),  # the kernel varies along the batch axis
    ((3000, 2), (5, 1), "reflect"),  # rows of 2: the batched layout is faster
    ((300, 16), (1, 5), "reflect"),  # no batch axis after the convolved one
])
def test_batch_axes_that_stay_batch_axes(rng, shape, kshape, border):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(kshape)
    axes = (1,) if kshape[0] == 1 else (0,)
    a = axes[0]
    plan = make_plan(x, w, axes=axes, pad_lo=(2,), out_shape=(x.shape[a],), result_dtype=np.float64,
                     border=border)
    assert _execute._long_rows(plan, x.shape, w.shape) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_output_buffer_starts_away_from_the_input_modulo_a_page(dtype):
    # The direct engine's output never starts within 512 bytes of its input's
    # page offset (4K aliasing), whatever the allocator returns.
    for shape in [(1, 300, 300), (2, 1024, 1030), (1, 7, 9)]:
        x = np.empty(shape, dtype)
        out = _execute._output_buffer(shape, dtype, x)
        assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous
        assert out.flags.writeable
        if out.nbytes >= 1 << 16:
            delta = (out.ctypes.data - x.ctypes.data) % 4096
            assert 512 <= delta <= 4096 - 512


def test_fused_windows_run_with_the_jit_disabled():
    # NUMBA_DISABLE_JIT=1 (for debugging kernels in Python) turns the
    # dispatchers into plain functions; the fused windows are built from them.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import numpy as np, fastconv
        rng = np.random.default_rng(0)
        x, k = rng.standard_normal((70, 70)), rng.standard_normal((3, 3))
        got = fastconv.correlate(x, k, mode="same", method="direct")
        xp = np.pad(x, 1)
        want = sum(k[i, j] * xp[i:i + 70, j:j + 70] for i in range(3) for j in range(3))
        print(np.abs(got - want).max() < 1e-12)
        """
    )
    import os

    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


# A kernel calls its task by address (``_jit.function_at``), not linked in.
def _scale_row(out, x, i, factor):
    if i >= x.shape[0]:
        raise ValueError("row out of range")
    for j in range(x.shape[1]):
        out[i, j] = factor * x[i, j]


def _rows_by_address(address, out, x, rows, factor):
    for i in range(rows):
        run = _SCALE_AT(address, (out, x, factor))
        run(out, x, np.int64(i), factor)


def _scale_signature(out, x, factor):
    from numba.core import types

    return types.none(out, x, types.int64, factor)


_SCALE_AT = _jit.function_at(_scale_signature)
_scale_row = _jit.serial(_scale_row)
_rows_by_address = _jit.serial(_rows_by_address)


def test_a_function_called_by_address_computes_and_raises_like_a_linked_one(rng):
    x = rng.standard_normal((3, 5))
    out = np.zeros_like(x)
    factor = np.float64(2.5)
    signature = _scale_signature(*(numba.typeof(v) for v in (out, x, factor)))
    address = _jit.address(_scale_row, signature)
    assert isinstance(address, int) and address > 0
    _rows_by_address(address, out, x, 3, factor)
    np.testing.assert_array_equal(out, 2.5 * x)  # one multiply per element: exact
    # An exception in the callee reaches the Python caller (Numba's calling
    # convention, not the C one a first-class function may use).
    with pytest.raises(ValueError, match="row out of range"):
        _rows_by_address(address, out, x, 4, factor)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT there are no compiled addresses")
def test_direct_task_addresses_follow_the_operand_types(rng):
    # A task compiled for read-only operands is not called on writable ones
    # (nor on another dtype): each set of operand types has its addresses.
    from fastconv._engines import direct

    x = rng.standard_normal((1, 1, 8))
    w = rng.standard_normal((1, 1, 3))
    out = np.zeros((1, 1, 6))
    cval = np.float64(0)
    writable = direct._calls(x, w, out, cval, False, False, None, False)
    x.flags.writeable = False
    read_only = direct._calls(x, w, out, cval, False, False, None, False)
    assert read_only[0] != writable[0] and read_only[1][0] != writable[1][0]
    assert direct._calls(x, w, out, cval, False, False, None, False) == read_only
    single = direct._calls(x.astype(np.float32), w.astype(np.float32), out.astype(np.float32), np.float32(0),
                           False, False, None, False)
    assert single[0] not in (read_only[0], writable[0])
    # Helpers a call cannot reach are not compiled: their address is 0.
    assert read_only[1][1:] == (0, 0, 0, 0)
    both = direct._calls(x, w, out, cval, True, True, None, True)[1]
    assert both[0] == read_only[1][0] and 0 not in both[1:3] and both[3] == 0 and both[4] != 0

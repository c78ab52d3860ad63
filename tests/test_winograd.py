"""The Winograd engine for 3x3 stride-1 CNN layers, against a float64 NumPy oracle.

Error bound.  F(m x m, 3x3) computes an output from its whole
(m + 2) x (m + 2) input tile: ``Y = A^T [sum_c (G g_c G^T) * (B^T d_c B)] A``.
Each rounding is a relative error on a sum of terms that the bound below
majorises, so to first order the computed result is within

    gamma_{C + k} * |A^T| [sum_c (|G| |g_c| |G^T|) * (|B^T| |d_c| |B|)] |A|

of the exact one, ``C`` the channels of a group (the sum over them rounds
``C`` times in any order) and ``k`` the roundings any term passes through
in the transforms and the bias:

* F(2x2, 3x3): ``B^T d B`` twice, ``G g G^T`` (and its rounding to the
  dtype) at most five times, ``A^T m A`` four times, the bias once: 12.
* F(4x4, 3x3): ``B^T d B`` three times per side (6), ``G g G^T`` in float64
  four times per side including its rounded constants (8, then once to the
  dtype), ``A^T m A`` three times per side (6), the bias once: 22; the
  tests allow 24.

The float64 oracle adds ``gamma_{9 C + 1}`` times the plain
``sum |x| |w|``, which the same quantity majorises.  The tests compute that
quantity with NumPy einsums over the tiles, independently of the engine.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastconv
import reference as ref
from fastconv import _config, nn
from fastconv._engines import _scratch, winograd

try:
    import torch
except ImportError:  # pragma: no cover - CI installs torch CPU where it can
    torch = None

# (B^T, G, A^T) of F(m x m, 3x3), and the roundings k of the bound above.
_MATRICES = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
        np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float)),
}
_ROUNDINGS = {2: 12, 4: 24}
_PAD = {"zeros": "zero", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _gamma(n, dtype):
    u = float(np.finfo(dtype).eps) / 2
    return n * u / (1 - n * u)


def _padding(padding, H, W):
    if padding == "same":
        return (1, 1), (1, 1)
    p = (padding, padding) if isinstance(padding, int) else padding
    return (p[0], p[1]), (p[0], p[1])


def oracle(x, w, b, lo, hi, mode, groups):
    """The layer in float64: ``numpy.pad`` the input, then sum tap by tap."""
    N, C, H, W = x.shape
    Ho, Wo = H + lo[0] + hi[0] - 2, W + lo[1] + hi[1] - 2
    Cout, Cg = w.shape[:2]
    og = Cout // groups
    out = np.zeros((N, Cout, Ho, Wo))
    for n in range(N):
        for c in range(C):
            g = c // Cg
            xp = ref.pad(x[n, c].astype(np.float64), lo, hi, _PAD[mode])
            for kh in range(3):
                for kw in range(3):
                    out[n, g * og:(g + 1) * og] += (w[g * og:(g + 1) * og, c - g * Cg, kh, kw].astype(np.float64)[:, None, None]
                                                    * xp[kh:kh + Ho, kw:kw + Wo])
    if b is not None:
        out += b.astype(np.float64)[None, :, None, None]
    return out


def winograd_magnitude(x, w, b, lo, mode, groups, out_shape, m=2):
    """``|A^T| [sum_c (|G||g_c||G^T|) * (|B^T||d_c||B|)] |A|`` of F(m x m, 3x3) per output, plus ``|bias|``."""
    BT, G, AT = (np.abs(a) for a in _MATRICES[m])
    N, C, H, W = x.shape
    Ho, Wo = out_shape
    TH, TW = -(-Ho // m), -(-Wo // m)
    P = m + 2
    Cout, Cg = w.shape[:2]
    og = Cout // groups
    # The engine reads every tile's input through the border rule, also past the layer's padding.
    hi = (m * TH + 2 - H - lo[0], m * TW + 2 - W - lo[1])
    xp = np.stack([np.stack([ref.pad(np.abs(x[n, c]).astype(np.float64), lo, hi, _PAD[mode]) for c in range(C)])
                   for n in range(N)])
    tiles = np.lib.stride_tricks.sliding_window_view(xp, (P, P), axis=(2, 3))[:, :, ::m, ::m][:, :, :TH, :TW]
    v = np.einsum("ij,nctsjk,lk->nctsil", BT, tiles, BT)
    u = np.einsum("ia,ocab,jb->ocij", G, np.abs(w).astype(np.float64), G)
    mm = np.zeros((N, Cout, TH, TW, P, P))
    for g in range(groups):
        for i in range(P):
            for j in range(P):
                vg = v[:, g * Cg:(g + 1) * Cg, :, :, i, j].transpose(1, 0, 2, 3).reshape(Cg, -1)
                mg = u[g * og:(g + 1) * og, :, i, j] @ vg
                mm[:, g * og:(g + 1) * og, :, :, i, j] = mg.reshape(og, N, TH, TW).transpose(1, 0, 2, 3)
    y = np.einsum("ai,notsij,bj->notsab", AT, mm, AT)
    y = y.transpose(0, 1, 2, 4, 3, 5).reshape(N, Cout, m * TH, m * TW)[:, :, :Ho, :Wo]
    if b is not None:
        y = y + np.abs(b).astype(np.float64)[None, :, None, None]
    return y


def assert_winograd_close(got, want, magnitude, cg, dtype, m=2):
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == want.shape
    bound = (_gamma(cg + _ROUNDINGS[m], dtype) + _gamma(9 * cg + 1, np.float64)) * magnitude + np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - want)
    worst = np.max(err - bound)
    assert worst <= 0, f"error exceeds the Winograd bound by {worst} (max err {err.max()})"


@pytest.fixture
def spy(monkeypatch):
    """Records what every call of the engine returned (True: computed by Winograd)."""
    calls = []
    forward = winograd.forward

    def recording(*args):
        result = forward(*args)
        calls.append(result)
        return result

    monkeypatch.setattr(winograd, "forward", recording)
    return calls


@pytest.fixture
def tiles(monkeypatch):
    """Records the tile size ``m`` of F(m x m, 3x3) that every call of the engine ran."""
    sizes = []
    blocks, few = winograd._forward_blocks, winograd._forward_few

    def recording_blocks(x4, w4, out4, m, *rest):
        sizes.append(m)
        return blocks(x4, w4, out4, m, *rest)

    def recording_few(*args):
        sizes.append(2)
        return few(*args)

    monkeypatch.setattr(winograd, "_forward_blocks", recording_blocks)
    monkeypatch.setattr(winograd, "_forward_few", recording_few)
    return sizes


# Layouts and tile sizes: (name, m).
LAYOUTS = {"blocks": 2, "blocks-f4": 4, "channels-last": 2}


@pytest.fixture(params=list(LAYOUTS))
def layout(request, monkeypatch):
    """Each test runs on both layouts of the engine and both tile sizes, on every shape, however small."""
    monkeypatch.setattr(winograd, "_WEIGHT_COST", -(10**9))  # use the engine whatever the size
    monkeypatch.setattr(winograd, "_MIN_LAYER_TILES", 0)
    if request.param.startswith("blocks"):
        monkeypatch.setattr(winograd, "_MIN_BLOCKS", 0)
        monkeypatch.setattr(winograd, "WORKSPACE_BYTES", 1)  # one tile row per block
        monkeypatch.setattr(winograd, "_MIN_TILES", 1)
        large = LAYOUTS[request.param] == 4
        monkeypatch.setattr(winograd, "large_tiles", lambda *shape: large)
    else:
        monkeypatch.setattr(winograd, "_MIN_BLOCKS", 10**9)
        monkeypatch.setattr(winograd, "SHARED_BYTES", 1 << 40)
    return request.param


CASES = [
    # N, C, H, W, Cout, groups, padding
    (2, 16, 9, 11, 20, 1, 1),
    (1, 16, 8, 6, 16, 1, 0),
    (3, 17, 5, 4, 18, 1, 2),
    (1, 16, 1, 1, 16, 1, 1),
    (2, 16, 2, 3, 16, 1, (1, 0)),
    (1, 24, 7, 7, 32, 1, "same"),
    (2, 32, 6, 9, 32, 2, 1),
    (1, 48, 13, 3, 48, 3, (0, 1)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", list(_PAD))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_oracle_within_the_winograd_bound(case, mode, dtype, layout, spy):
    N, C, H, W, Cout, groups, padding = case
    lo, hi = _padding(padding, H, W)
    if mode != "zeros" and max(lo + hi) >= min(H, W):
        pytest.skip("torch refuses reflect/circular padding as wide as the input")
    if layout == "channels-last" and groups > 1:
        pytest.skip("the channels-last layout is for one group")
    rng = np.random.default_rng(abs(hash((case, mode))) % 2**32)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Cout, C // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(Cout).astype(dtype)
    got = nn.conv2d(x, w, b, padding=padding, groups=groups, padding_mode=mode)
    want = oracle(x, w, b, lo, hi, mode, groups)
    assert spy == [True], "the layer did not run on the Winograd engine"
    m = LAYOUTS[layout]
    assert_winograd_close(got, want, winograd_magnitude(x, w, b, lo, mode, groups, want.shape[2:], m), C // groups,
                          dtype, m)


def test_large_tile_values_enter_the_bound_but_not_the_window(layout, spy):
    # A huge value in a tile's fourth column is outside the 3x3 window of the
    # tile's first output column: exact arithmetic cancels it, rounding does
    # not.  The bound of the module docstring covers exactly that error.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    x[0, 3, 2, 3] = 1e6
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    got = nn.conv2d(x, w, padding=1)
    want = oracle(x, w, None, (1, 1), (1, 1), "zeros", 1)
    assert spy == [True]
    m = LAYOUTS[layout]
    assert_winograd_close(got, want, winograd_magnitude(x, w, None, (1, 1), "zeros", 1, (6, 6), m), 16, np.float32,
                          m)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_propagate_as_by_direct_summation(bad, layout, spy, monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 9, 8))
    x[1, 4, 3, 5] = bad
    x[0, 0, 0, 0] = bad
    w = rng.standard_normal((16, 16, 3, 3))
    got = nn.conv2d(x, w, padding=1)
    assert spy == [False], "the engine must report the non-finite outputs"
    monkeypatch.setattr(_config, "WINOGRAD", False)
    direct = nn.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(got, direct)
    # Only outputs whose 3x3 window holds the bad value are non-finite.
    assert np.count_nonzero(~np.isfinite(got)) == 16 * (9 + 4)


def test_non_finite_weight_propagates_as_by_direct_summation(layout, spy, monkeypatch):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 16, 5, 5))
    w = rng.standard_normal((16, 16, 3, 3))
    w[3, 2, 1, 1] = np.nan
    got = nn.conv2d(x, w, padding=1)
    assert spy == [False]
    monkeypatch.setattr(_config, "WINOGRAD", False)
    np.testing.assert_array_equal(got, nn.conv2d(x, w, padding=1))
    assert np.isnan(got[0, 3]).all() and np.isfinite(np.delete(got, 3, axis=1)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_at_any_thread_count(layout, dtype, spy):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 32, 12, 10)).astype(dtype)
    w = rng.standard_normal((48, 32, 3, 3)).astype(dtype)
    before = fastconv.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            fastconv.set_num_threads(min(threads, before) if before > 1 else 1)
            results.append(nn.conv2d(x, w, padding=1, padding_mode="reflect"))
    finally:
        fastconv.set_num_threads(before)
    assert spy == [True, True]
    assert results[0].tobytes() == results[1].tobytes()


def test_transposed_and_input_gradient_layers_use_it(spy, tiles):
    # Stride-1 transposed layers are the forward layer with the flipped,
    # channel-swapped weight: the same engine, against the oracle.
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 32, 18, 16))
    w = rng.standard_normal((32, 24, 3, 3))  # (C_in, C_out, kh, kw) as torch's conv_transpose2d
    got = nn.conv_transpose2d(x, w, padding=1)
    wf = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    want = oracle(x, wf, None, (1, 1), (1, 1), "zeros", 1)
    assert spy == [True]
    m = tiles[-1]
    assert_winograd_close(got, want, winograd_magnitude(x, wf, None, (1, 1), "zeros", 1, want.shape[2:], m), 32,
                          np.float64, m)
    go = rng.standard_normal((2, 24, 18, 16))
    w2 = rng.standard_normal((24, 32, 3, 3))
    gi = nn.conv2d_input_grad(x.shape, w2, go, padding=1)
    w2f = w2[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    want = oracle(go, w2f, None, (1, 1), (1, 1), "zeros", 1)
    assert spy == [True, True]
    m = tiles[-1]
    assert_winograd_close(gi, want, winograd_magnitude(go, w2f, None, (1, 1), "zeros", 1, want.shape[2:], m), 24,
                          np.float64, m)


def test_large_tiles_on_large_images_only(monkeypatch, spy, tiles):
    # F(4x4, 3x3) where its products and weight transform cost at most 3/4 of
    # F(2x2, 3x3)'s and its transformed weight is no larger than input and
    # output; FASTCONV_WINOGRAD=2 keeps F(2x2, 3x3).
    assert winograd.large_tiles((8, 64, 56, 56), (8, 64, 56, 56), 64)
    assert winograd.large_tiles((1, 64, 56, 56), (1, 64, 56, 56), 64)
    assert not winograd.large_tiles((8, 256, 14, 14), (8, 256, 14, 14), 256)  # 14 = 3.5 tiles of 4
    assert not winograd.large_tiles((8, 512, 7, 7), (8, 512, 7, 7), 512)
    assert not winograd.large_tiles((64, 512, 7, 7), (64, 512, 7, 7), 512)  # 4x the weight > input + output
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 16, 90, 76)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    got = nn.conv2d(x, w, padding=1)
    monkeypatch.setattr(_config, "WINOGRAD_LARGE_TILES", False)
    small = nn.conv2d(x, w, padding=1)
    assert spy == [True, True] and tiles == [4, 2]
    want = oracle(x, w, None, (1, 1), (1, 1), "zeros", 1)
    for m, y in ((4, got), (2, small)):
        assert_winograd_close(y, want, winograd_magnitude(x, w, None, (1, 1), "zeros", 1, (90, 76), m), 16,
                              np.float32, m)


def test_cost_model_keeps_small_layers_on_direct_summation(spy):
    rng = np.random.default_rng(11)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    nn.conv2d(rng.standard_normal((1, 64, 4, 4)).astype(np.float32), w, padding=1)  # 16 outputs per channel pair
    assert spy == []
    nn.conv2d(rng.standard_normal((1, 64, 32, 32)).astype(np.float32), w, padding=1)
    assert spy == [True]
    nn.conv2d(rng.standard_normal((1, 64, 14, 14)).astype(np.float32), w, padding=1)  # 49 tiles: too few
    nn.conv2d(rng.standard_normal((4, 64, 7, 7)).astype(np.float32), w, padding=1)  # 64 tiles
    nn.conv2d(rng.standard_normal((1, 8, 32, 32)).astype(np.float32), w[:, :8], padding=1)  # too few channels
    nn.conv2d(rng.standard_normal((1, 64, 32, 32)).astype(np.float32), w, padding=1, stride=2)
    nn.conv2d(rng.standard_normal((1, 64, 32, 32)).astype(np.float32), w, padding=2, dilation=2)
    assert spy == [True]


def test_switched_off_by_the_setting(monkeypatch, spy):
    monkeypatch.setattr(_config, "WINOGRAD", False)
    x = np.ones((2, 64, 32, 32), np.float32)
    out = nn.conv2d(x, np.ones((64, 64, 3, 3), np.float32), padding=1)
    assert spy == []
    assert out[0, 0, 5, 5] == 64 * 9


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("shape", [(8, 64, 56, 64), (8, 128, 28, 128), (8, 256, 14, 256), (8, 512, 7, 512)])
def test_benchmark_layers_match_torch(shape, spy, tiles):
    # The dense layers at full size, each layout and tile size as the shape picks it.
    N, C, H, O = shape
    rng = np.random.default_rng(12)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((O, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
    got = nn.conv2d(x, w, padding=1)
    want = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding=1).numpy()
    assert spy == [True]
    assert tiles == [4 if H >= 28 else 2]
    magnitude = winograd_magnitude(x, w, None, (1, 1), "zeros", 1, (H, H), tiles[0])
    assert_winograd_close(got, want, magnitude, C, np.float32, tiles[0])


def _peak_bytes(call):
    """Peak bytes NumPy allocated during ``call()``, run in a new thread (whose scratch starts empty)."""
    import tracemalloc

    result = {}

    def run():
        tracemalloc.start()
        try:
            result["out"] = call()
            result["peak"] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result["peak"], result["out"]


@pytest.mark.parametrize("shape", [(8, 64, 56, 64), (8, 512, 7, 512)])
def test_peak_memory_of_the_dense_layers(shape):
    # The bound: at most 2x (input + output + weight), scratch included.
    N, C, H, O = shape
    x = np.ones((N, C, H, H), np.float32)
    w = np.ones((O, C, 3, 3), np.float32)
    nn.conv2d(x, w, padding=1)  # compile / load the kernels first
    peak, out = _peak_bytes(lambda: nn.conv2d(x, w, padding=1))
    assert out[0, 0, 3, 3] == C * 9
    assert peak <= 2 * (x.nbytes + out.nbytes + w.nbytes)


def test_scratch_is_reused_per_thread_and_bounded(monkeypatch):
    a = _scratch.empty("test.a", (100, 3), np.float32)
    b = _scratch.empty("test.a", (50,), np.float64)
    assert a.ctypes.data == b.ctypes.data and b.ctypes.data % 64 == 0
    other = {}
    thread = threading.Thread(target=lambda: other.update(p=_scratch.empty("test.a", (10,), np.float32).ctypes.data))
    thread.start()
    thread.join()
    assert other["p"] != a.ctypes.data
    kept = _scratch.kept_bytes()
    monkeypatch.setattr(_scratch, "LIMIT_BYTES", kept + 1000)
    big = _scratch.empty("test.big", (10_000,), np.float32)  # over the limit: not kept
    assert big.shape == (10_000,) and _scratch.kept_bytes() == kept
    small = _scratch.empty("test.small", (100,), np.float32)  # within it: kept
    assert _scratch.kept_bytes() > kept and _scratch.empty("test.small", (10,), np.float32).ctypes.data == small.ctypes.data


@pytest.mark.parametrize("shape", [(1, 2, 29), (16, 98), (3,)])
def test_per_worker_scratch_parts_own_their_cache_lines(shape):
    parts = _scratch.per_worker("test.parts", 3, shape, np.float32)
    assert parts.shape == (3,) + shape
    lines = []
    for k in range(3):
        part = parts[k]
        assert part.flags.c_contiguous and part.ctypes.data % 64 == 0
        lines.append((part.ctypes.data // 64, (part.ctypes.data + part.nbytes - 1) // 64))
    # No cache line holds bytes of two workers' parts.
    assert all(lines[k][1] < lines[k + 1][0] for k in range(2))
    parts[...] = np.arange(3).reshape((3,) + (1,) * len(shape))
    assert all((parts[k] == k).all() for k in range(3))


def test_environment_setting_is_read_at_import():
    import os
    import subprocess
    import sys

    code = "from fastconv import _config; print(_config.WINOGRAD, _config.info()['winograd'])"
    for value, want in (("0", "False off (FASTCONV_WINOGRAD=0)"),
                        ("1", "True on (dense 3x3 CNN layers, F(4x4, 3x3) and F(2x2, 3x3))"),
                        ("2", "True on (dense 3x3 CNN layers, F(2x2, 3x3) only: FASTCONV_WINOGRAD=2)")):
        env = dict(os.environ, FASTCONV_WINOGRAD=value)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                                check=True)
        assert result.stdout.strip() == want


@pytest.mark.parametrize("shape", [(2, 32, 64, 32), (8, 64, 10, 64)])  # blocks, channels-last
def test_concurrent_calls_from_many_threads(shape):
    # Each calling thread has its own scratch; the workers' pool is shared.
    N, C, H, O = shape
    rng = np.random.default_rng(13)
    inputs = [rng.standard_normal((N, C, H, H)).astype(np.float32) for _ in range(4)]
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    want = [nn.conv2d(x, w, padding=1).tobytes() for x in inputs]
    failures = []

    def worker(k):
        for i in range(6):
            j = (k + i) % len(inputs)
            if nn.conv2d(inputs[j], w, padding=1).tobytes() != want[j]:
                failures.append((k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.skipif(torch is None, reason="needs torch")
@pytest.mark.parametrize("padding", [(1, 1, 1), (2, 0, 1), (0, 1, 1)])
@pytest.mark.parametrize("mode", ["zeros", "replicate"])
def test_single_plane_volumes_run_on_it_only_without_depth_padding(layout, spy, padding, mode):
    # A conv3d with a 1x3x3 kernel on single-plane volumes is a 2-D layer,
    # but only without depth padding: padded planes add output planes (zero,
    # or copies of the one plane), which the engine does not compute.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 1, 9, 10))
    w = rng.standard_normal((16, 16, 1, 3, 3))
    got = nn.conv3d(x, w, padding=padding, padding_mode=mode)
    tx = torch.from_numpy(x)
    pad = [p for p in reversed(padding) for _ in range(2)]
    F = torch.nn.functional
    want = F.conv3d(F.pad(tx, pad, mode="constant" if mode == "zeros" else mode), torch.from_numpy(w)).numpy()
    assert got.shape == want.shape
    assert spy == ([True] if padding[0] == 0 else [])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())

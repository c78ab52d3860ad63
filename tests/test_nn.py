"""fastconv.nn: CNN layers, transposed layers and gradients against torch and a NumPy oracle.

Tolerances.  Every output is a sum of ``L`` products (``L = C_in/groups *
prod(K)`` for a layer, ``N * prod(out)`` for a weight gradient), plus a bias.
Whatever the summation order, a floating sum of ``L`` products is within
``gamma_L * sum |x| |w|`` of the exact value, ``gamma_L = L u / (1 - L u)``
with ``u`` the unit roundoff (2**-24 for float32, 2**-53 for float64).  Two
implementations (fastconv and torch, each with its own order) differ by at
most twice that, so the tests check

    |fastconv - torch| <= 2 gamma_{L+1} * (the same operation on |x|, |w|) + tiny

which is rigorous, scales with the reduction length and the data, and does
not depend on how either library orders its sums.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastconv import nn

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - CI installs torch CPU where it can
    torch = None
    F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

_MODES = {"zeros": None, "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _u(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2


def _bound(absolute: np.ndarray, terms: int, dtype) -> np.ndarray:
    u = _u(dtype)
    gamma = (terms + 1) * u / (1 - (terms + 1) * u)
    return 2 * gamma * absolute + np.finfo(dtype).tiny


def _assert_close(got, want, absolute, terms, dtype):
    got = np.asarray(got)
    assert got.shape == want.shape
    assert got.dtype == np.dtype(dtype)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bound = _bound(absolute, terms, dtype)
    worst = np.max(err - bound)
    assert worst <= 0, f"error exceeds the rounding bound by {worst} (max err {err.max()})"


# --- a plain NumPy oracle (no torch needed) ---------------------------------------------------


def ref_conv(x, w, b, stride, pad_lo, pad_hi, dilation, groups, mode="zeros"):
    """Naive batched grouped correlation in float64: pad with np.pad, then sum tap by tap."""
    nd = x.ndim - 2
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(pad_lo, pad_hi)), mode=np_mode)
    N, C = x.shape[:2]
    Cout, Cg = w.shape[:2]
    K = w.shape[2:]
    out_shape = tuple((xp.shape[2 + a] - dilation[a] * (K[a] - 1) - 1) // stride[a] + 1 for a in range(nd))
    out = np.zeros((N, Cout) + out_shape)
    og = Cout // groups
    for t in itertools.product(*(range(k) for k in K)):
        sl = tuple(slice(t[a] * dilation[a], t[a] * dilation[a] + (out_shape[a] - 1) * stride[a] + 1, stride[a])
                   for a in range(nd))
        for g in range(groups):
            patch = xp[(slice(None), slice(g * Cg, (g + 1) * Cg)) + sl]  # (N, Cg, *out)
            wt = w[(slice(g * og, (g + 1) * og), slice(None)) + t].astype(np.float64)  # (og, Cg)
            out[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", patch, wt)
    if b is not None:
        out += b.astype(np.float64).reshape((1, Cout) + (1,) * nd)
    return out


# --- random layer configurations ---------------------------------------------------------


def _random_layer(rng, nd):
    kind = rng.choice(["dense", "grouped", "depthwise"])
    groups = 1 if kind == "dense" else int(rng.integers(2, 4))
    cg = 1 if kind == "depthwise" else int(rng.integers(1, 4))
    og = int(rng.integers(1, 3)) if kind != "dense" else int(rng.integers(1, 5))
    kmax = 4 if nd < 3 else 3
    K = tuple(int(k) for k in rng.integers(1, kmax + 1, nd))
    stride = tuple(int(s) for s in rng.integers(1, 4, nd))
    dilation = tuple(int(d) for d in rng.integers(1, 3, nd))
    mode = str(rng.choice(list(_MODES)))
    choice = rng.integers(0, 4)
    if choice == 0 and all(s == 1 for s in stride):
        padding = "same"
        total = [d * (k - 1) for d, k in zip(dilation, K)]
        lo = tuple(t // 2 for t in total)
        hi = tuple(t - t // 2 for t in total)
    elif choice == 1:
        padding = "valid"
        lo = hi = (0,) * nd
    elif choice == 2:
        padding = int(rng.integers(0, 3))
        lo = hi = (padding,) * nd
    else:
        padding = tuple(int(p) for p in rng.integers(0, 3, nd))
        lo = hi = padding
    smax = 9 if nd < 3 else 6
    shape = []
    for a in range(nd):
        least = max(1, dilation[a] * (K[a] - 1) + 1 - lo[a] - hi[a], max(lo[a], hi[a]) + 1)
        shape.append(int(rng.integers(least, least + smax)))
    return dict(N=int(rng.integers(1, 3)), C=cg * groups, Cout=og * groups, groups=groups, K=K,
                stride=stride, dilation=dilation, padding=padding, lo=lo, hi=hi, mode=mode,
                shape=tuple(shape), bias=bool(rng.integers(0, 2)), batched=bool(rng.integers(0, 4)))


def _data(rng, cfg, dtype):
    x = rng.standard_normal((cfg["N"], cfg["C"]) + cfg["shape"]).astype(dtype)
    w = rng.standard_normal((cfg["Cout"], cfg["C"] // cfg["groups"]) + cfg["K"]).astype(dtype)
    b = rng.standard_normal(cfg["Cout"]).astype(dtype) if cfg["bias"] else None
    return x, w, b


_CONV = {1: nn.conv1d, 2: nn.conv2d, 3: nn.conv3d}
_CONVT = {1: nn.conv_transpose1d, 2: nn.conv_transpose2d, 3: nn.conv_transpose3d}
_IGRAD = {1: nn.conv1d_input_grad, 2: nn.conv2d_input_grad, 3: nn.conv3d_input_grad}
_WGRAD = {1: nn.conv1d_weight_grad, 2: nn.conv2d_weight_grad, 3: nn.conv3d_weight_grad}


def _torch_conv(nd, x, w, b, cfg):
    x = torch.from_numpy(x)
    if cfg["mode"] != "zeros":
        pad = [p for a in reversed(range(nd)) for p in (cfg["lo"][a], cfg["hi"][a])]
        x = F.pad(x, pad, mode=_MODES[cfg["mode"]])
        padding = 0
    else:
        padding = cfg["padding"]
    f = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    return f(x, torch.from_numpy(w), None if b is None else torch.from_numpy(b), stride=cfg["stride"],
             padding=padding, dilation=cfg["dilation"], groups=cfg["groups"]).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_against_numpy_oracle(nd, dtype):
    rng = np.random.default_rng(100 + nd)
    for _ in range(12):
        cfg = _random_layer(rng, nd)
        x, w, b = _data(rng, cfg, dtype)
        args = (cfg["stride"], cfg["lo"], cfg["hi"], cfg["dilation"], cfg["groups"], cfg["mode"])
        want = ref_conv(x, w, b, *args)
        absolute = ref_conv(np.abs(x), np.abs(w), None if b is None else np.abs(b), *args)
        got = _CONV[nd](x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], cfg["mode"])
        _assert_close(got, want, absolute, (cfg["C"] // cfg["groups"]) * math.prod(cfg["K"]), dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_against_torch(nd, dtype):
    rng = np.random.default_rng(200 + nd)
    for _ in range(25):
        cfg = _random_layer(rng, nd)
        x, w, b = _data(rng, cfg, dtype)
        if not cfg["batched"]:
            x = x[:1]
        want = _torch_conv(nd, x.astype(np.float64), w.astype(np.float64),
                           None if b is None else b.astype(np.float64), cfg)
        absolute = _torch_conv(nd, np.abs(x).astype(np.float64), np.abs(w).astype(np.float64),
                               None if b is None else np.abs(b).astype(np.float64), cfg)
        xin = x if cfg["batched"] else x[0]
        got = _CONV[nd](xin, w, b, stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                        groups=cfg["groups"], padding_mode=cfg["mode"])
        got = got if cfg["batched"] else got[None]
        _assert_close(got, want, absolute, (cfg["C"] // cfg["groups"]) * math.prod(cfg["K"]), dtype)
        # and torch in its own dtype, as a second opinion with torch's own rounding
        tgot = _torch_conv(nd, x, w, b, cfg)
        _assert_close(got, tgot.astype(np.float64), absolute, (cfg["C"] // cfg["groups"]) * math.prod(cfg["K"]),
                      dtype)


def _random_transpose(rng, nd):
    groups = int(rng.integers(1, 4))
    cg = int(rng.integers(1, 3))
    og = int(rng.integers(1, 3))
    K = tuple(int(k) for k in rng.integers(1, 4, nd))
    stride = tuple(int(s) for s in rng.integers(1, 4, nd))
    dilation = tuple(int(d) for d in rng.integers(1, 3, nd))
    padding = tuple(int(p) for p in rng.integers(0, 3, nd))
    out_pad = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    shape = []
    for a in range(nd):
        n = int(rng.integers(1, 6 if nd < 3 else 4))
        while (n - 1) * stride[a] - 2 * padding[a] + dilation[a] * (K[a] - 1) + out_pad[a] + 1 < 1:
            n += 1
        shape.append(n)
    return dict(N=int(rng.integers(1, 3)), C=cg * groups, og=og, groups=groups, K=K, stride=stride,
                dilation=dilation, padding=padding, out_pad=out_pad, shape=tuple(shape),
                bias=bool(rng.integers(0, 2)))


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_against_torch(nd, dtype):
    rng = np.random.default_rng(300 + nd)
    ft = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    for _ in range(15):
        c = _random_transpose(rng, nd)
        x = rng.standard_normal((c["N"], c["C"]) + c["shape"]).astype(dtype)
        w = rng.standard_normal((c["C"], c["og"]) + c["K"]).astype(dtype)
        b = rng.standard_normal(c["og"] * c["groups"]).astype(dtype) if c["bias"] else None

        def run(x, w, b):
            t = lambda a: None if a is None else torch.from_numpy(a.astype(np.float64))  # noqa: E731
            return ft(t(x), t(w), t(b), stride=c["stride"], padding=c["padding"],
                      output_padding=c["out_pad"], groups=c["groups"], dilation=c["dilation"]).numpy()

        want = run(x, w, b)
        absolute = run(np.abs(x), np.abs(w), None if b is None else np.abs(b))
        got = _CONVT[nd](x, w, b, c["stride"], c["padding"], c["out_pad"], c["groups"], c["dilation"])
        _assert_close(got, want, absolute, (c["C"] // c["groups"]) * math.prod(c["K"]), dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_gradients_against_torch(nd, dtype):
    import torch.nn.grad as tg

    rng = np.random.default_rng(400 + nd)
    ti = {1: tg.conv1d_input, 2: tg.conv2d_input, 3: tg.conv3d_input}[nd]
    tw = {1: tg.conv1d_weight, 2: tg.conv2d_weight, 3: tg.conv3d_weight}[nd]
    for _ in range(10):
        cfg = _random_layer(rng, nd)
        cfg["mode"] = "zeros"
        if isinstance(cfg["padding"], str):
            cfg["padding"] = cfg["lo"] if cfg["lo"] == cfg["hi"] else 0
            cfg["lo"] = cfg["hi"] = cfg["padding"] if isinstance(cfg["padding"], tuple) else (0,) * nd
        x, w, _ = _data(rng, cfg, dtype)
        out_shape = _torch_conv(nd, x, w, None, cfg).shape
        go = rng.standard_normal(out_shape).astype(dtype)
        kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])
        t64 = lambda a: torch.from_numpy(a.astype(np.float64))  # noqa: E731

        want = ti(x.shape, t64(w), t64(go), **kw).numpy()
        absolute = ti(x.shape, t64(np.abs(w)), t64(np.abs(go)), **kw).numpy()
        got = _IGRAD[nd](x.shape, w, go, **kw)
        # each input sample receives at most Cout/groups * prod(K) products
        _assert_close(got, want, absolute, (cfg["Cout"] // cfg["groups"]) * math.prod(cfg["K"]), dtype)

        want = tw(t64(x), w.shape, t64(go), **kw).numpy()
        absolute = tw(t64(np.abs(x)), w.shape, t64(np.abs(go)), **kw).numpy()
        got = _WGRAD[nd](x, w.shape, go, **kw)
        _assert_close(got, want, absolute, cfg["N"] * math.prod(out_shape[2:]), dtype)


# --- array kinds, dtypes --------------------------------------------------------------------


@needs_torch
def test_torch_in_torch_out():
    x = torch.randn(2, 4, 9, 9)
    w = torch.randn(6, 2, 3, 3)
    out = nn.conv2d(x, w, padding=1, groups=2)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (2, 6, 9, 9)
    ref = F.conv2d(x, w, padding=1, groups=2)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4)
    gi = nn.conv2d_input_grad(x.shape, w, torch.ones_like(ref), padding=1, groups=2)
    assert isinstance(gi, torch.Tensor) and gi.shape == x.shape
    with pytest.raises(TypeError, match="detach"):
        nn.conv2d(x.requires_grad_(), w)


def test_numpy_in_numpy_out_and_dtypes():
    x = np.ones((1, 2, 5), np.float32)
    out = nn.conv1d(x, np.ones((3, 2, 2), np.float32))
    assert type(out) is np.ndarray and out.dtype == np.float32
    assert nn.conv1d(x, np.ones((3, 2, 2))).dtype == np.float64  # result_type promotion
    half = nn.conv1d(x.astype(np.float16), np.ones((3, 2, 2), np.float16))
    assert half.dtype == np.float16 and np.all(half == 4)
    assert nn.conv1d(x[0], np.ones((3, 2, 2), np.float32)).shape == (3, 4)  # unbatched
    with pytest.raises(TypeError, match="floating dtype"):
        nn.conv1d(np.ones((1, 2, 5), np.int64), np.ones((3, 2, 2)))


def test_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    x = xps.asarray(np.ones((1, 1, 4, 4)))
    out = nn.conv2d(x, xps.asarray(np.ones((1, 1, 3, 3))))
    assert type(out) is type(x)
    assert np.all(np.asarray(out) == 9)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: nn.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 1, 3, 3)), groups=2), "divisible by groups"),
        (lambda: nn.conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2), "out_channels"),
        (lambda: nn.conv2d(np.ones((1, 4, 5, 5)), np.ones((4, 1, 3, 3)), groups=2), "channels"),
        (lambda: nn.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), "larger than the padded input"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same"),
         "padding='same' is not supported for strided"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=-1), "padding must be non-negative"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="full"), "padding must be one of"),
        (lambda: nn.conv2d(np.ones((5, 5)), np.ones((1, 1, 3, 3))), "input must be 4-D"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 3, 3))), "weight must be 4-D"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0), "stride must be positive"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), dilation=(1, 2, 3)), "dilation"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), groups=0), "groups must be a positive"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), bias=np.ones(3)), "bias must have shape"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding_mode="mirror"), "padding_mode"),
        (lambda: nn.conv1d(np.ones((1, 1, 3)), np.ones((1, 1, 3)), padding=3, padding_mode="reflect"),
         "padding_mode='reflect' needs padding smaller"),
        (lambda: nn.conv1d(np.ones((1, 1, 3)), np.ones((1, 1, 3)), padding=4, padding_mode="circular"),
         "padding_mode='circular'"),
        (lambda: nn.conv_transpose2d(np.ones((1, 2, 3, 3)), np.ones((2, 1, 3, 3)), stride=2, output_padding=2),
         "output_padding must be smaller than either stride or dilation"),
        (lambda: nn.conv_transpose2d(np.ones((1, 3, 3, 3)), np.ones((3, 1, 3, 3)), groups=2), "divisible by groups"),
        (lambda: nn.conv_transpose1d(np.ones((1, 1, 1)), np.ones((1, 1, 1)), padding=1), "padding .* too large"),
        (lambda: nn.conv2d_input_grad((1, 1, 5, 5), np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))),
         "grad_output has spatial shape"),
        (lambda: nn.conv2d_weight_grad(np.ones((1, 1, 5, 5)), (1, 1, 3, 3), np.ones((1, 2, 3, 3))),
         "grad_output must have batch"),
        # sizes beyond int64 arithmetic, and outputs no memory could hold
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2**63), "stride must be at most"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=(0, 2**62)), "padding must be at"),
        (lambda: nn.conv_transpose2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), dilation=2**41), "dilation"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=10**9, padding_mode="replicate"),
         "too large for memory"),
        (lambda: nn.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=(True, 1)), "stride must be an int"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@needs_torch
@pytest.mark.parametrize(
    "args",
    [
        dict(x=(1, 3, 5, 5), w=(4, 1, 3, 3), groups=2),
        dict(x=(1, 1, 2, 2), w=(1, 1, 3, 3)),
        dict(x=(1, 1, 5, 5), w=(1, 1, 3, 3), stride=2, padding="same"),
        dict(x=(1, 1, 5, 5), w=(1, 1, 3, 3), padding=-1),
    ],
)
def test_torch_refuses_the_same(args):
    args = dict(args)
    x, w = torch.ones(args.pop("x")), torch.ones(args.pop("w"))
    with pytest.raises((RuntimeError, ValueError)):
        F.conv2d(x, w, **args)
    with pytest.raises(ValueError):
        nn.conv2d(x.numpy(), w.numpy(), **args)


# --- determinism and memory ----------------------------------------------------------------


def test_identical_bits_at_any_numba_thread_count():
    import numba

    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 8, 17, 19)).astype(np.float32)
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    dw = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    go = rng.standard_normal((3, 6, 17, 19)).astype(np.float32)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            results.append((nn.conv2d(x, w, padding=1, padding_mode="reflect"),
                            nn.conv2d(x, dw, padding=1, groups=8),
                            nn.conv2d_weight_grad(x, w.shape, go, padding=1)))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(results[0], results[-1]):
        assert np.array_equal(a, b)


def test_identical_bits_at_any_blas_thread_count():
    # The matrix products run in NumPy's BLAS, one thread per product (fastconv
    # sets it for the call): the user's OPENBLAS_NUM_THREADS must not change
    # the bits.  Checked in fresh processes.
    code = textwrap.dedent(
        """
        import numpy as np
        from fastconv import nn
        rng = np.random.default_rng(3)
        x = rng.standard_normal((4, 32, 20, 20)).astype(np.float32)
        w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
        go = rng.standard_normal((4, 48, 20, 20)).astype(np.float32)
        a = nn.conv2d(x, w, padding=1)
        g = nn.conv2d_weight_grad(x, w.shape, go, padding=1)
        import hashlib
        print(hashlib.sha256(a.tobytes() + g.tobytes()).hexdigest())
        """
    )
    import os

    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_workspace_is_bounded():
    # A batch far larger than the workspace: the column matrix stays within it.
    import tracemalloc

    from fastconv._engines import channels

    x = np.ones((16, 16, 64, 64), np.float32)
    w = np.ones((8, 16, 3, 3), np.float32)
    nn.conv2d(x[:1], w, padding=1)  # compile / load first
    tracemalloc.start()
    out = nn.conv2d(x, w, padding=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full_im2col = 16 * 16 * 9 * 64 * 64 * 4
    assert peak <= out.nbytes + 2 * channels.WORKSPACE_BYTES + (1 << 20) < full_im2col
    assert np.all(out[:, :, 1:-1, 1:-1] == 16 * 9)


@pytest.mark.parametrize("workspace", [1 << 10, 1 << 14, 1 << 30])
def test_block_shapes_do_not_change_the_result(monkeypatch, workspace):
    # Row blocks (tiny workspace), several images per product (large one):
    # the same sums, whatever the blocking.
    from fastconv._engines import channels

    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 13, 11))
    w = rng.standard_normal((6, 2, 3, 2))
    wt = rng.standard_normal((4, 3, 3, 2))
    go = rng.standard_normal((3, 6, 7, 12))
    monkeypatch.setattr(channels, "WORKSPACE_BYTES", workspace)
    got = nn.conv2d(x, w, stride=(2, 1), padding=1, groups=2, padding_mode="circular")
    want = ref_conv(x, w, None, (2, 1), (1, 1), (1, 1), (1, 1), 2, "circular")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    gw = nn.conv2d_weight_grad(x, w.shape, go, stride=(2, 1), padding=1, groups=2)
    monkeypatch.setattr(channels, "WORKSPACE_BYTES", 1 << 30)
    np.testing.assert_allclose(gw, nn.conv2d_weight_grad(x, w.shape, go, stride=(2, 1), padding=1, groups=2),
                               rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(channels, "WORKSPACE_BYTES", workspace)
    t = nn.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1, groups=2)
    monkeypatch.setattr(channels, "WORKSPACE_BYTES", 1 << 30)
    np.testing.assert_allclose(t, nn.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1, groups=2),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_gradients_are_adjoints_without_torch(nd):
    # <conv(x, w), g> = <x, input_grad(g)> = <w, weight_grad(x, g)> = <g~, conv_transpose(...)>:
    # a torch-free check of the transposed layer and both gradients, in float64.
    rng = np.random.default_rng(500 + nd)
    for _ in range(8):
        cfg = _random_layer(rng, nd)
        cfg["mode"] = "zeros"
        x, w, _ = _data(rng, cfg, np.float64)
        kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])
        y = _CONV[nd](x, w, **kw)
        g = rng.standard_normal(y.shape)
        lhs = float(np.vdot(y, g))
        gi = _IGRAD[nd](x.shape, w, g, **kw)
        gw = _WGRAD[nd](x, w.shape, g, **kw)
        scale = float(np.abs(y).sum() * np.abs(g).max()) + 1.0
        assert abs(lhs - float(np.vdot(x, gi))) <= 1e-12 * scale
        assert abs(lhs - float(np.vdot(w, gw))) <= 1e-12 * scale
        if not isinstance(cfg["padding"], str):
            # conv_transpose with output_padding filling up to the input's extent is input_grad
            lo = cfg["lo"]
            up = tuple((o - 1) * s - 2 * p + d * (k - 1) + 1
                       for o, s, p, d, k in zip(y.shape[2:], cfg["stride"], lo, cfg["dilation"], cfg["K"]))
            op = tuple(n - u for n, u in zip(x.shape[2:], up))
            if all(0 <= o < max(s, d) for o, s, d in zip(op, cfg["stride"], cfg["dilation"])):
                # the forward weight (Cout, Cg, *K) is the transposed layer's (in, out / groups, *K)
                t = _CONVT[nd](g, w, None, cfg["stride"], lo, op, cfg["groups"], cfg["dilation"])
                np.testing.assert_allclose(t, gi, rtol=1e-12, atol=1e-12 * scale)


def test_empty_batch():
    out = nn.conv2d(np.ones((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), padding=1)
    assert out.shape == (0, 3, 5, 5)
    assert nn.conv_transpose2d(np.ones((0, 2, 3, 3)), np.ones((2, 1, 2, 2)), stride=2).shape == (0, 1, 6, 6)
    gw = nn.conv2d_weight_grad(np.ones((0, 2, 5, 5)), (3, 2, 3, 3), np.ones((0, 3, 3, 3)))
    assert gw.shape == (3, 2, 3, 3) and not gw.any()
    if torch is not None:
        assert F.conv2d(torch.ones(0, 2, 5, 5), torch.ones(3, 2, 3, 3), padding=1).shape == out.shape


def test_kernels_are_compiled():
    # A kernel that lost its decorator still gives right answers, 100x slower.
    from numba.core.registry import CPUDispatcher

    from fastconv._engines import channels, depthwise

    for f in (channels._map_index, channels.im2col_tasks, channels.stage_rows, channels.im2col_staged,
              channels.col2im_planes, depthwise._fill,
              depthwise._plane, depthwise._plane_in_place, depthwise._plane_padded,
              depthwise.depthwise):
        assert isinstance(f, CPUDispatcher), f


def test_depthwise_layers_with_padding_far_beyond_the_plane_gather_blocks():
    # The depthwise engine copies each plane into a padded plane; with
    # padding 10**9 that copy would be 16 GB per thread for a 5-sample
    # output.  Such layers go to the channel-contracting engine instead.
    from fastconv._plan import make_conv_plan

    def method(pad, in_shape=(5,), kernel=(3,), dilation=(1,)):
        return make_conv_plan(batch=1, in_channels=2, out_channels=2, groups=2, in_shape=in_shape,
                              kernel_shape=kernel, pad_lo=(pad,), pad_hi=(pad,), stride=(1,),
                              dilation=dilation, border=("zero",), result_dtype=np.float64).method

    assert method(1) == method(3, (224,), (7,)) == "direct"
    assert method(10**9, dilation=(10**9,)) == method(10**6, dilation=(10**6,)) == "channels"
    assert method(10**6) == "direct"  # a long output: the padded plane is of its size
    x, w = np.ones((1, 2, 5)), np.ones((2, 1, 3))
    np.testing.assert_array_equal(nn.conv1d(x, w, padding=10**9, dilation=10**9, groups=2), np.ones((1, 2, 5)))
    got = nn.conv1d(x, w, padding=10**5, groups=2)
    assert got.shape == (1, 2, 5 + 2 * 10**5 - 2) and got.sum() == 2 * 3 * 5


def _im2col_oracle(x, n0, n1, r0, r1, k, stride, dilation, pad, mode):
    """The column matrix of images ``n0 .. n1`` and output rows ``r0 .. r1``, from an np.pad copy (2-D layers)."""
    (KH, KW), (s1, s2), (d1, d2), (p1, p2) = k, stride, dilation, pad
    N, C, H, W = x.shape
    Ho = (H + 2 * p1 - (KH - 1) * d1 - 1) // s1 + 1
    Wo = (W + 2 * p2 - (KW - 1) * d2 - 1) // s2 + 1
    # Negative padding crops; np.pad takes the positive part.
    xp = np.pad(x, [(0, 0), (0, 0), (max(p1, 0),) * 2, (max(p2, 0),) * 2], mode=mode)
    xp = xp[:, :, max(-p1, 0):xp.shape[2] - max(-p1, 0), max(-p2, 0):xp.shape[3] - max(-p2, 0)]
    cols = np.empty((C, KH, KW, n1 - n0, r1 - r0, Wo), x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            rows = xp[n0:n1, :, kh * d1: kh * d1 + (Ho - 1) * s1 + 1: s1]
            win = rows[:, :, :, kw * d2: kw * d2 + (Wo - 1) * s2 + 1: s2]
            cols[:, kh, kw] = win[:, :, r0:r1].transpose(1, 0, 2, 3)
    return cols.reshape(C * KH * KW, -1), (Ho, Wo)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@pytest.mark.parametrize("k, stride, dilation, pad", [
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 5), (2, 1), (1, 2), (2, 3)),
    ((1, 3), (2, 1), (1, 1), (1, 1)),
    ((2, 4), (1, 1), (2, 1), (0, 2)),
    ((3, 3), (1, 1), (1, 1), (-1, -1)),
    ((5, 1), (2, 1), (1, 1), (4, 0)),
    ((7, 7), (2, 2), (1, 1), (3, 3)),  # a first layer: strided along the rows, phases in the stage
    ((3, 4), (1, 2), (1, 2), (1, 3)),
    ((2, 3), (2, 3), (1, 1), (0, 2)),
    ((5, 5), (1, 3), (1, 1), (2, 3)),  # taps on every phase, in turn
])
def test_staged_gather_against_an_np_pad_oracle(mode, k, stride, dilation, pad):
    # The staged column matrix (a border-extended copy of the block's rows,
    # then plain row copies) equals the one built from np.pad, for every
    # border rule, blocks of several images and blocks of rows, gathered in
    # one part or several.
    from fastconv._engines import borders, channels

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    if mode != "constant" and min(pad) < 0:
        return  # a crop reads no border: covered by the zero rule
    rule = {"constant": borders.ZERO, "edge": borders.EDGE, "reflect": borders.REFLECT,
            "symmetric": borders.SYMMETRIC, "wrap": borders.WRAP}[mode]
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    _, (Ho, Wo) = _im2col_oracle(x, 0, 1, 0, 1, k, stride, dilation, pad, mode)
    geometry = (i64(1, 7, 6), i64(1, Ho, Wo), i64(1, *k), i64(1, *stride), i64(1, *dilation), i64(0, *pad),
                i64(borders.ZERO, rule, rule))
    x5 = x[:, :, None]
    for n0, n1, r0, r1 in [(0, 3, 0, Ho), (1, 2, 0, Ho), (2, 3, 1, Ho), (0, 1, Ho - 1, Ho)]:
        want, _ = _im2col_oracle(x, n0, n1, r0, r1, k, stride, dilation, pad, mode)
        for parts in (1, 3):
            cols = np.full(want.shape, np.nan, np.float32)
            assert channels._staged(x5, cols, n0, n1, r0, r1, geometry, parts)
            assert np.array_equal(cols, want), (n0, n1, r0, r1, parts)


def test_staged_gather_leaves_far_dilations_to_the_general_path():
    # A stage wider than the column matrix (dilation far beyond the row) is not made.
    from fastconv._engines import channels

    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    x5 = np.ones((1, 2, 1, 3, 4), np.float32)
    geometry = (i64(1, 3, 4), i64(1, 3, 4), i64(1, 1, 2), i64(1, 1, 1), i64(1, 1, 10**6), i64(0, 0, 10**6),
                i64(0, 0, 0))
    cols = np.empty((4, 12), np.float32)
    assert not channels._staged(x5, cols, 0, 1, 0, 3, geometry, 1)


@needs_torch
@pytest.mark.parametrize("shape", [(1, 256, 7, 7, 512, 3, 1), (2, 128, 5, 6, 384, 3, 0), (1, 64, 9, 9, 256, 1, 0),
                                   (1, 32, 12, 10, 300, 1, 1)])
def test_lone_blocks_multiplied_in_output_slices(shape, monkeypatch):
    # Batch-1 layers on small images are one block: it is gathered by every
    # worker and multiplied in slices of output channels.  Against torch in
    # float64 and float32 (the rounding bound of the module notes), and
    # bitwise the same at any thread count (the slices depend on the shape).
    import fastconv
    from fastconv import _config
    from fastconv._engines import channels

    monkeypatch.setattr(_config, "WINOGRAD", False)
    N, C, H, W, O, K, p = shape
    rng = np.random.default_rng(9)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C, K, K))
    assert channels._output_slices(1, 1, O) > 1
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=p).numpy()
    magnitude = F.conv2d(torch.from_numpy(np.abs(x)), torch.from_numpy(np.abs(w)), padding=p).numpy()
    before = fastconv.get_num_threads()
    results = []
    try:
        for threads in sorted({1, before}):
            fastconv.set_num_threads(threads)
            results.append(nn.conv2d(x, w, padding=p))
            results.append(nn.conv2d(x.astype(np.float32), w.astype(np.float32), padding=p))
    finally:
        fastconv.set_num_threads(before)
    L = C * K * K + 1
    for got, u in zip(results[:2], (2.0**-53, 2.0**-24)):
        # float32 inputs are rounded once more (|x|, |w| relative u each), hence 3 u per product.
        assert np.all(np.abs(got - want) <= 2 * (L + 3) * u * magnitude + 1e-30)
    for a, b in zip(results[:2], results[-2:]):
        assert np.array_equal(a, b)


def test_strides_longer_than_the_row_gather_no_padded_rows():
    # A stride beyond the input row (with padding as long) samples each
    # padded row a few times: the gather must not split rows of 10**9
    # samples by phase (a 74.5 GiB scratch block for a 2 x 3 x 3 output).
    x, w = np.ones((1, 2, 5, 5)), np.ones((2, 2, 3, 3))
    got = nn.conv2d(x, w, padding=10**9, stride=10**9)
    # only the centre output's window reaches the input: rows and columns 0..2
    expected = np.zeros((1, 2, 3, 3))
    expected[:, :, 1, 1] = 2 * 9
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", list(_MODES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_3x3(mode, dtype):
    # The depthwise engine's fused 3x3 pass (stride 1 along the rows), with
    # row strides, dilations and channel multipliers.
    rng = np.random.default_rng(12)
    for stride, dilation, mult in [((1, 1), (1, 1), 1), ((2, 1), (1, 2), 2), ((3, 1), (2, 1), 1)]:
        x = rng.standard_normal((2, 3, 11, 13)).astype(dtype)
        w = rng.standard_normal((3 * mult, 1, 3, 3)).astype(dtype)
        got = nn.conv2d(x, w, stride=stride, padding=2, dilation=dilation, groups=3, padding_mode=mode)
        args = (stride, (2, 2), (2, 2), dilation, 3, mode)
        _assert_close(got, ref_conv(x, w, None, *args), ref_conv(np.abs(x), np.abs(w), None, *args), 9, dtype)


def test_concurrent_calls_from_a_thread_pool():
    # Calls from several user threads at once share fastconv's workers and the
    # BLAS thread setting; each gets the same bits as alone, and the BLAS
    # thread count is restored afterwards.
    from concurrent.futures import ThreadPoolExecutor

    from fastconv._engines import _blas

    rng = np.random.default_rng(13)
    xs = [rng.standard_normal((2, 8, 15, 15)).astype(np.float32) for _ in range(6)]
    w = rng.standard_normal((5, 8, 3, 3)).astype(np.float32)
    alone = [nn.conv2d(x, w, padding=1) for x in xs]
    controls = _blas._controls()
    before = controls[0]() if controls else None
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda x: nn.conv2d(x, w, padding=1), xs))
    for a, b in zip(alone, together):
        assert np.array_equal(a, b)
    if controls:
        assert controls[0]() == before


@pytest.mark.parametrize("mode", list(_MODES))
@pytest.mark.parametrize("stride, dilation, padding", [(2, 1, 3), (3, 1, 2), (2, 2, 4), ((2, 3), (1, 2), (1, 5))])
def test_strided_rows_gathered_by_column_phase(mode, stride, dilation, padding):
    # Images with at least 1024 output pixels are gathered one at a time, and
    # then strided rows are copied from the input split by column phase.
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 100, 110))
    w = rng.standard_normal((5, 3, 7, 5))
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    p = (padding, padding) if isinstance(padding, int) else padding
    got = nn.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, padding_mode=mode)
    assert got.shape[2] * got.shape[3] >= 1024
    args = (s, p, p, d, 1, mode)
    _assert_close(got, ref_conv(x, w, None, *args), ref_conv(np.abs(x), np.abs(w), None, *args), 3 * 35, np.float64)
    go = rng.standard_normal(got.shape)
    gw = nn.conv2d_weight_grad(x, w.shape, go, stride=stride, padding=padding, dilation=dilation)
    if torch is not None:
        want = torch.nn.grad.conv2d_weight(torch.from_numpy(x), w.shape, torch.from_numpy(go), stride=s, padding=p,
                                           dilation=d).numpy() if mode == "zeros" else None
        if want is not None:
            np.testing.assert_allclose(gw, want, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (2, 2), (7, 9), (56, 56)])
@pytest.mark.parametrize("mult", [1, 2])
def test_depthwise_same_3x3_zero_padding_reads_planes_in_place(dtype, shape, mult):
    rng = np.random.default_rng(15)
    C = 5
    x = rng.standard_normal((2, C) + shape).astype(dtype)
    w = rng.standard_normal((C * mult, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(C * mult).astype(dtype)
    got = nn.conv2d(x, w, b, padding=1, groups=C)
    args = ((1, 1), (1, 1), (1, 1), (1, 1), C)
    _assert_close(got, ref_conv(x, w, b, *args), ref_conv(np.abs(x), np.abs(w), np.abs(b), *args), 10, dtype)
    # NaN and inf reach exactly the outputs whose window holds them.
    x[0, 1, 0, -1] = np.nan
    x[1, 2, shape[0] // 2, 0] = np.inf
    got = nn.conv2d(x, w, padding=1, groups=C)
    want = ref_conv(x, w, None, *args)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


# Single-plane volumes (depth 1) whose depth padding puts some or all depth
# taps in the padding.  Each case reaches an engine shortcut for planes: the
# im2col gather's copy of whole rows (dense and grouped layers, the weight
# gradient) and the depthwise engine's in-place 3x3 path.
_ONE_PLANE = [
    # (C, Cout, groups, K, stride, padding)
    (2, 1, 1, (3, 1, 1), 1, (1, 0, 0)),
    (4, 6, 1, (3, 3, 3), 1, 1),
    (4, 4, 2, (2, 3, 3), 1, (1, 1, 1)),
    (3, 3, 3, (1, 3, 3), (3, 1, 1), 1),  # the only output plane lies in the padding
    (3, 6, 3, (1, 3, 3), 1, (0, 1, 1)),  # depthwise in place, no depth padding
    (3, 3, 3, (3, 3, 3), 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("case", _ONE_PLANE)
def test_single_plane_volumes_with_depth_padding(case, mode, dtype):
    C, Cout, G, K, stride, padding = case
    stride = (stride,) * 3 if isinstance(stride, int) else stride
    pad = (padding,) * 3 if isinstance(padding, int) else padding
    if mode == "reflect" and pad[0] > 0:
        return  # reflect padding needs a border wider than the padding (torch refuses it too)
    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, C, 1, 6, 7)).astype(dtype)
    w = rng.standard_normal((Cout, C // G) + K).astype(dtype)
    b = rng.standard_normal(Cout).astype(dtype)
    args = (stride, pad, pad, (1, 1, 1), G, mode)
    got = nn.conv3d(x, w, b, stride, padding, 1, G, mode)
    terms = (C // G) * math.prod(K) + 1
    _assert_close(got, ref_conv(x, w, b, *args), ref_conv(np.abs(x), np.abs(w), np.abs(b), *args), terms, dtype)
    if mode != "zeros":
        return
    # The weight gradient, entry by entry: <go, conv(x, e)> for each unit weight e.
    go = rng.standard_normal(got.shape).astype(dtype)
    gw = nn.conv3d_weight_grad(x, w.shape, go, stride, padding, 1, G)
    want = np.empty(w.shape)
    absolute = np.empty(w.shape)
    for idx in np.ndindex(*w.shape):
        e = np.zeros(w.shape)
        e[idx] = 1
        want[idx] = np.sum(go * ref_conv(x, e, None, *args))
        absolute[idx] = np.sum(np.abs(go) * ref_conv(np.abs(x), e, None, *args))
    _assert_close(gw, want, absolute, got.size // Cout * got.shape[0], dtype)


@pytest.mark.parametrize("shape, kernel, kwargs", [
    ((2, 3, 9, 9), (4, 3, 2, 2), {}),                        # im2col, several images per product
    ((1, 3, 40, 40), (4, 3, 3, 3), {"stride": 2}),          # im2col, one image per product
    ((2, 8, 16, 16), (8, 8, 3, 3), {"padding": 1}),         # Winograd (redone directly: non-finite)
    ((2, 8, 9, 9), (6, 8, 1, 1), {}),                        # pointwise
])
def test_inf_minus_inf_gives_nan_without_a_warning(shape, kernel, kwargs):
    import warnings

    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    x[0, 0, 1, 1] = np.inf
    x[0, 1, 1, 1] = -np.inf
    w = np.abs(rng.standard_normal(kernel)) + 0.5  # positive weights: inf and -inf meet in a sum
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nn.conv2d(x, w, **kwargs)
    stride = (kwargs.get("stride", 1),) * 2
    pad = (kwargs.get("padding", 0),) * 2
    want = ref_conv(x, w, None, stride, pad, pad, (1, 1), 1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isnan(want).any()


# --- depthwise layers of multiplier 1 on the signal face's engines ------------------------------


def _fft_bound(x, w, cfg, dtype):
    """The FFT engines' worst-case error bound (see tests/test_fft.py), per (sample, channel) plane."""
    eps = float(np.finfo(dtype).eps)
    lengths = [n + lo + hi + k - 1 for n, lo, hi, k in zip(x.shape[2:], cfg["lo"], cfg["hi"], cfg["K"])]
    m = math.prod(lengths)
    xa = np.abs(x.astype(np.float64)).reshape(x.shape[:2] + (-1,))
    wa = np.abs(w.astype(np.float64)).reshape(1, w.shape[0], -1)
    t = np.linalg.norm(xa, axis=2) * wa.sum(axis=2) + xa.sum(axis=2) * np.linalg.norm(wa, axis=2)
    return ((5 * math.log2(m) + 1) * eps * t).reshape(t.shape + (1,) * (x.ndim - 2))


PLANES = [
    # input shape, kernel, padding (torch's), the engine the layer's planes take
    ((2, 3, 50), (5,), 2, None),  # short 1-D planes: the depthwise engine
    ((4, 16, 4100), (5,), 2, "direct"),  # long 1-D planes
    ((1, 64, 4096), (4,), "same", "direct"),
    ((1, 2, 260, 256), (5, 5), 2, "direct"),  # a large plane
    ((2, 3, 40, 40), (15, 15), 7, "fft"),  # a large kernel
    ((2, 3, 40, 40), (16, 16), "same", "fft"),  # torch's asymmetric 'same'
    ((1, 2, 20, 20, 20), (7, 7, 7), 3, "fft"),
]


@pytest.mark.parametrize("mode", list(_MODES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PLANES)
def test_depthwise_planes_on_the_signal_engines(case, mode, dtype, monkeypatch):
    # One input and one output channel per group, stride and dilation 1: every
    # (sample, channel) plane is a correlation the signal face's engines run
    # (the direct N-D kernels or, for large kernels, the FFT).
    from fastconv import _execute

    shape, K, padding, engine = case
    nd = len(K)
    C = shape[1]
    if mode != "zeros" and engine == "fft":
        engine = None  # the FFT engines pad with zeros only: the depthwise engine keeps these
    taken = []
    run_planes = _execute._run_planes
    monkeypatch.setattr(_execute, "_run_planes", lambda planes, *args: taken.append(planes.method)
                        or run_planes(planes, *args))
    rng = np.random.default_rng(31)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((C, 1) + K).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    if padding == "same":
        lo = tuple((k - 1) // 2 for k in K)
        hi = tuple(k - 1 - (k - 1) // 2 for k in K)
    else:
        lo = hi = (padding,) * nd
    if mode in ("reflect", "circular") and max(lo + hi) >= min(shape[2:]):
        pytest.skip("torch refuses reflect/circular padding as wide as the input")
    cfg = dict(lo=lo, hi=hi, K=K)
    got = _CONV[nd](x, w, b, padding=padding, groups=C, padding_mode=mode)
    args = ((1,) * nd, lo, hi, (1,) * nd, C, mode)
    want = ref_conv(x, w, b, *args)
    assert taken == ([engine] if engine else [])
    if engine != "fft":
        _assert_close(got, want, ref_conv(np.abs(x), np.abs(w), np.abs(b), *args), math.prod(K), dtype)
    else:
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        err = np.abs(got.astype(np.float64) - want)
        assert np.all(err <= _fft_bound(x, w, cfg, dtype) + _bound(np.abs(b).reshape((1, C) + (1,) * nd), 1, dtype))
    # unbatched input: the same planes
    np.testing.assert_array_equal(_CONV[nd](x[0], w, b, padding=padding, groups=C, padding_mode=mode), got[0])


@needs_torch
@pytest.mark.parametrize("K", [15, 31])
def test_single_channel_large_kernels_against_torch(K):
    # The single-channel layer (1, 1, H, 1, K, 1, 'same'), on a smaller plane.
    rng = np.random.default_rng(K)
    x = rng.standard_normal((1, 1, 300, 300)).astype(np.float32)
    w = rng.standard_normal((1, 1, K, K)).astype(np.float32)
    got = nn.conv2d(x, w, padding="same")
    want = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding="same").numpy()
    cfg = dict(lo=(K // 2,) * 2, hi=(K // 2,) * 2, K=(K, K))
    bound = np.maximum(_fft_bound(x, w, cfg, np.float32),
                       _bound(F.conv2d(torch.from_numpy(np.abs(x)).double(), torch.from_numpy(np.abs(w)).double(),
                                       padding="same").numpy(), K * K, np.float32))
    assert np.all(np.abs(got - want) <= bound)


def test_depthwise_planes_round_a_float16_layer_with_bias_once():
    # The planes come back in float32 and the bias is added before the one rounding to float16.
    rng = np.random.default_rng(32)
    x = rng.standard_normal((1, 2, 256, 256)).astype(np.float16)
    w = rng.standard_normal((2, 1, 5, 5)).astype(np.float16)
    b = rng.standard_normal(2).astype(np.float16)
    got = nn.conv2d(x, w, b, padding=2, groups=2)
    want = ref_conv(x, w, b, (1, 1), (2, 2), (2, 2), (1, 1), 2)
    assert got.dtype == np.float16
    # One rounding of a float32 sum: within a float16 unit plus the float32
    # summation bound, and almost always the correctly rounded value (adding
    # the bias after a first rounding to float16 gave it for 68 % only).
    absolute = ref_conv(np.abs(x), np.abs(w), np.abs(b), (1, 1), (2, 2), (2, 2), (1, 1), 2)
    spacing = np.spacing(np.abs(want).astype(np.float16)).astype(np.float64)
    assert np.all(np.abs(got.astype(np.float64) - want) <= spacing + _bound(absolute, 26, np.float32))
    assert np.mean(got == want.astype(np.float16)) > 0.999


@pytest.mark.parametrize("shape,K,padding", [((1, 4, 64, 64), 15, 7), ((2, 2, 30, 30), 16, "same"),
                                               ((4, 16, 4100), 9, 4)])
def test_depthwise_planes_put_nan_and_inf_where_torch_does(shape, K, padding):
    # The FFT spreads a NaN or an infinity over the whole plane: such layers
    # are recomputed on the depthwise engine, silently.  A non-finite weight
    # never takes the planes route (torch multiplies the zero padding by it).
    import warnings

    nd = len(shape) - 2
    C = shape[1]
    rng = np.random.default_rng(33)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((C, 1) + (K,) * nd).astype(np.float32)
    flat = x.reshape(-1)
    flat[[7, 500, 1234]] = [np.inf, -np.inf, np.nan]
    lo = tuple((K - 1) // 2 for _ in range(nd)) if padding == "same" else (padding,) * nd
    hi = tuple(K - 1 - lo_ for lo_ in lo) if padding == "same" else lo
    w_inf = w.copy()
    w_inf[0].reshape(-1)[0] = np.inf
    for xin, win in ((x, w), (np.nan_to_num(x, posinf=0, neginf=0, nan=0), w_inf)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = _CONV[nd](xin, win, padding=padding, groups=C)
        with np.errstate(invalid="ignore"):
            want = ref_conv(xin, win, None, (1,) * nd, lo, hi, (1,) * nd, C)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_depthwise_planes_take_the_same_engine_at_any_thread_count():
    # Found by a differential campaign: the engine was chosen for the calling
    # thread's count, so 1 and 2 threads gave different bits.
    import numba

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 69, 69))
    w = rng.standard_normal((1, 1, 30, 30))
    before = numba.get_num_threads()
    try:
        results = []
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(n)
            results.append(nn.conv2d(x, w))
    finally:
        numba.set_num_threads(before)
    assert results[0].tobytes() == results[1].tobytes()

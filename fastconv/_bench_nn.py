"""Benchmark cases of the CNN-layer issue, for ``python -m fastconv bench --filter nn``.

``CASES`` is a list of dicts with keys ``group`` ("nn"), ``name``,
``fastconv`` (a zero-argument callable), ``anchors`` (name -> zero-argument
callable; torch.nn.functional with ``torch.set_num_threads`` equal to
fastconv's thread count, only when torch imports), ``floor`` (the
memory-floor copy, or None), ``flops`` (``2 * outputs * C_in/groups *
prod(K)``) and ``target``.  Data is built on the first call of a case's
functions and cached, so importing this module allocates nothing.

The grid: float32 forward layers of a ResNet-like network, batch 8, in
``(N, C, H=W, C_out, K, stride, padding)``; a depthwise 3x3 layer (256
channels, 56x56); one-channel layers with 15x15 and 31x31 kernels on a
2048x2048 image (``padding='same'``); and, for information, the deep 3x3
layers at batch 1 (inference), a transposed layer and the two gradients of
one dense layer.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from . import nn

_SEED = 20261206

DENSE = [
    (8, 3, 224, 64, 7, 2, 3),
    (8, 64, 56, 64, 3, 1, 1),
    (8, 128, 28, 128, 3, 1, 1),
    (8, 256, 14, 256, 3, 1, 1),
    (8, 512, 7, 512, 3, 1, 1),
    (8, 64, 56, 256, 1, 1, 0),
]
# Batch-1 dense layers (information: not among the targets).
BATCH1 = [
    (1, 128, 28, 128, 3, 1, 1),
    (1, 256, 14, 256, 3, 1, 1),
    (1, 512, 7, 512, 3, 1, 1),
]
# ResNet's stride-2 downsampling layers (information: not among the targets).
DOWNSAMPLING = [
    (8, 64, 56, 128, 3, 2, 1),
    (8, 128, 28, 256, 3, 2, 1),
    (8, 256, 56, 512, 1, 2, 0),
]


def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _torch():
    torch = _optional("torch")
    if torch is not None:
        import numba

        torch.set_num_threads(numba.get_num_threads())
    return torch


@functools.cache
def _layer(N, C, H, O, K, groups, dtype=np.float32):
    rng = np.random.default_rng(_SEED)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = rng.standard_normal((O, C // groups, K, K)).astype(dtype)
    return x, w


@functools.cache
def _torch_layer(N, C, H, O, K, groups, channels_last=False):
    torch = _torch()
    x, w = (torch.from_numpy(a) for a in _layer(N, C, H, O, K, groups))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    return x, w


@functools.cache
def _floor_buffers(shape):
    src = np.ones(shape, np.float32)
    return src, np.empty_like(src)


def _floor(shape):
    def run():
        src, dst = _floor_buffers(tuple(shape))
        np.copyto(dst, src)

    return run


def _out(H, K, s, p):
    return (H + 2 * p - K) // s + 1


def _dense_case(N, C, H, O, K, s, p, target="dense: <= 1.25x torch"):
    key = (N, C, H, O, K, 1)
    anchors = {}
    if _optional("torch") is not None:
        import torch.nn.functional as F

        anchors["torch conv2d (NCHW)"] = lambda: F.conv2d(*_torch_layer(*key), stride=s, padding=p)
    Ho = _out(H, K, s, p)
    return {
        "group": "nn",
        "name": f"conv2d f32 N{N} C{C} {H}x{H} ->{O} k{K} s{s} p{p}",
        "fastconv": lambda: nn.conv2d(*_layer(*key), stride=s, padding=p),
        "anchors": anchors,
        "floor": None,
        "flops": 2.0 * N * O * Ho * Ho * C * K * K,
        "target": target,
    }


def _depthwise_case(N=8, C=256, H=56, K=3):
    key = (N, C, H, C, K, C)
    anchors = {}
    if _optional("torch") is not None:
        import torch.nn.functional as F

        anchors["torch conv2d (NCHW)"] = lambda: F.conv2d(*_torch_layer(*key), padding=K // 2, groups=C)
        anchors["torch conv2d (channels_last)"] = lambda: F.conv2d(
            *_torch_layer(*key, channels_last=True), padding=K // 2, groups=C)
    return {
        "group": "nn",
        "name": f"depthwise f32 N{N} C{C} {H}x{H} k{K} p{K // 2}",
        "fastconv": lambda: nn.conv2d(*_layer(*key), padding=K // 2, groups=C),
        "anchors": anchors,
        "floor": _floor((N, C, H, H)),
        "flops": 2.0 * N * C * H * H * K * K,
        "target": "depthwise: < 1.0x torch NCHW (or <= 1.3x the floor)",
    }


def _single_channel_case(K, H=2048):
    key = (1, 1, H, 1, K, 1)
    anchors = {}
    if _optional("torch") is not None:
        import torch.nn.functional as F

        anchors["torch conv2d (NCHW)"] = lambda: F.conv2d(*_torch_layer(*key), padding="same")
    return {
        "group": "nn",
        "name": f"conv2d f32 N1 C1 {H}x{H} ->1 k{K} same",
        "fastconv": lambda: nn.conv2d(*_layer(*key), padding="same"),
        "anchors": anchors,
        "floor": _floor((1, 1, H, H)),
        "flops": 2.0 * H * H * K * K,
        "target": "single-channel: <= 0.1x torch",
    }


def _transpose_case(N=8, C=128, H=28, O=64, K=4, s=2, p=1):
    rng = np.random.default_rng(_SEED)
    get = functools.cache(lambda: (rng.standard_normal((N, C, H, H)).astype(np.float32),
                                   rng.standard_normal((C, O, K, K)).astype(np.float32)))
    anchors = {}
    if _optional("torch") is not None:
        import torch
        import torch.nn.functional as F

        tget = functools.cache(lambda: (_torch(), tuple(torch.from_numpy(a) for a in get()))[1])
        anchors["torch conv_transpose2d"] = lambda: F.conv_transpose2d(*tget(), stride=s, padding=p)
    return {
        "group": "nn",
        "name": f"conv_transpose2d f32 N{N} C{C} {H}x{H} ->{O} k{K} s{s} p{p}",
        "fastconv": lambda: nn.conv_transpose2d(*get(), stride=s, padding=p),
        "anchors": anchors,
        "floor": None,
        # useful work: every input sample times every kernel tap and output channel
        "flops": 2.0 * N * C * H * H * O * K * K,
        "target": "(information: computed on the stride-spread input)",
    }


def _grad_cases(N=8, C=128, H=28, O=128, K=3):
    key = (N, C, H, O, K, 1)
    rng = np.random.default_rng(_SEED + 1)
    go = functools.cache(lambda: rng.standard_normal((N, O, H, H)).astype(np.float32))
    flops = 2.0 * N * O * H * H * C * K * K
    input_anchor, weight_anchor = {}, {}
    if _optional("torch") is not None:
        import torch
        import torch.nn.grad as tg

        tgo = functools.cache(lambda: torch.from_numpy(go()))
        input_anchor["torch.nn.grad.conv2d_input"] = lambda: tg.conv2d_input(
            (N, C, H, H), _torch_layer(*key)[1], tgo(), padding=1)
        weight_anchor["torch.nn.grad.conv2d_weight"] = lambda: tg.conv2d_weight(
            _torch_layer(*key)[0], (O, C, K, K), tgo(), padding=1)
    name = f"f32 N{N} C{C} {H}x{H} ->{O} k{K} p1"
    return [
        {"group": "nn", "name": f"conv2d_input_grad {name}",
         "fastconv": lambda: nn.conv2d_input_grad((N, C, H, H), _layer(*key)[1], go(), padding=1),
         "anchors": input_anchor, "floor": None, "flops": flops, "target": "(information)"},
        {"group": "nn", "name": f"conv2d_weight_grad {name}",
         "fastconv": lambda: nn.conv2d_weight_grad(_layer(*key)[0], (O, C, K, K), go(), padding=1),
         "anchors": weight_anchor, "floor": None, "flops": flops, "target": "(information)"},
    ]


def _cases():
    return ([_dense_case(*shape) for shape in DENSE] + [_depthwise_case()]
            + [_dense_case(*shape, target="(information)") for shape in BATCH1 + DOWNSAMPLING]
            + [_single_channel_case(K) for K in (15, 31)] + [_transpose_case()] + _grad_cases())


CASES = _cases()

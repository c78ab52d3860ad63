"""The nn face: CNN layers with ``torch.nn.functional`` semantics, NCHW, batch of one, float32.

Layers (``layer``): ``dense3x3`` (64 -> 64 channels, 3 x 3, padding 1),
``depthwise3x3`` (256 channels, groups = 256) and ``pointwise1x1``
(64 -> 256 channels), on ``size x size`` feature maps; then a stride-2
transposed convolution and the two gradients of the dense layer.  Separately,
``NNResNet3x3`` times the dense 3 x 3 layers of a ResNet at batch 8 and, as
for inference, batch 1 (64 to 512 channels on 56 x 56 down to 7 x 7 maps),
which fastconv computes by Winograd's algorithm or, with few tiles, by
channel contraction, and ``NNSingleChannel`` one-channel layers with 15 x 15
and 31 x 31 kernels on a 2048 x 2048 image, both anchored on torch in the
same way.  The anchor
is torch itself, on contiguous NCHW tensors and, for ``conv2d``, also in
torch's faster channels-last layout.  Commits without ``fastconv.nn`` skip
the fastconv classes.
"""

from __future__ import annotations

import fastconv

from .common import Anchor, random, require, set_anchor_threads, torch, torch_tensor, warm

nn = getattr(fastconv, "nn", None)

LAYERS = {  # name: (in channels, out channels, kernel size, groups)
    "dense3x3": (64, 64, 3, 1),
    "depthwise3x3": (256, 256, 3, 256),
    "pointwise1x1": (64, 256, 1, 1),
}
GRID = [list(LAYERS), ["float32"], [28, 56]]
NAMES = ["layer", "dtype", "size"]
GRAD_GRID = [["input", "weight"], ["float32"], [28, 56]]


def _layer(layer, dtype, size):
    """Input, weight and keyword arguments of ``layer`` on ``size x size`` maps."""
    cin, cout, k, groups = LAYERS[layer]
    x = random((1, cin, size, size), dtype)
    w = random((cout, cin // groups, k, k), dtype, 1)
    return x, w, {"padding": k // 2, "groups": groups}


def _transpose(dtype, size):
    """A stride-2 upsampling layer, 64 -> 32 channels, 4 x 4 kernel: ``size / 2`` -> ``size``."""
    x = random((1, 64, size // 2, size // 2), dtype)
    w = random((64, 32, 4, 4), dtype, 1)
    return x, w, {"stride": 2, "padding": 1}


def _grads(dtype, size):
    x, w, kwargs = _layer("dense3x3", dtype, size)
    grad_out = random((1, w.shape[0], size, size), dtype, 2)
    return x, w, grad_out, kwargs


# ResNet's dense 3 x 3 layers: channels -> (map size).
RESNET = {64: 56, 128: 28, 256: 14, 512: 7}
BATCHES = [1, 8]


def _resnet(channels, batch, dtype):
    size = RESNET[channels]
    x = random((batch, channels, size, size), dtype)
    w = random((channels, channels, 3, 3), dtype, 1)
    return x, w


def _require_nn():
    if nn is None:
        raise NotImplementedError("fastconv at this commit has no nn face")
    return nn


class NNConv2D:
    """``fastconv.nn.conv2d(input, weight, padding=k // 2, groups=...)``."""

    params = GRID
    param_names = NAMES

    def setup_cache(self):
        if nn is not None:
            for layer in LAYERS:
                for dtype in GRID[1]:
                    x, w, kwargs = _layer(layer, dtype, GRID[2][0])
                    nn.conv2d(x, w, **kwargs)

    def setup(self, layer, dtype, size):
        self.nn = _require_nn()
        self.x, self.w, self.kwargs = _layer(layer, dtype, size)
        warm(self.nn.conv2d, self.x, self.w, **self.kwargs)

    def time_conv2d(self, layer, dtype, size):
        self.nn.conv2d(self.x, self.w, **self.kwargs)


class NNConvTranspose2D:
    """``fastconv.nn.conv_transpose2d``: a stride-2 upsampling layer to ``size x size``."""

    params = [["float32"], [28, 56]]
    param_names = ["dtype", "size"]

    def setup_cache(self):
        if nn is not None:
            for dtype in self.params[0]:
                x, w, kwargs = _transpose(dtype, self.params[1][0])
                nn.conv_transpose2d(x, w, **kwargs)

    def setup(self, dtype, size):
        self.nn = _require_nn()
        self.x, self.w, self.kwargs = _transpose(dtype, size)
        warm(self.nn.conv_transpose2d, self.x, self.w, **self.kwargs)

    def time_conv_transpose2d(self, dtype, size):
        self.nn.conv_transpose2d(self.x, self.w, **self.kwargs)


class NNConv2DGrad:
    """``fastconv.nn.conv2d_input_grad`` / ``conv2d_weight_grad`` of the dense 3 x 3 layer."""

    params = GRAD_GRID
    param_names = ["grad", "dtype", "size"]

    def setup_cache(self):
        if nn is not None:
            x, w, g, kwargs = _grads("float32", GRAD_GRID[2][0])
            nn.conv2d_input_grad(x.shape, w, g, **kwargs)
            nn.conv2d_weight_grad(x, w.shape, g, **kwargs)

    def setup(self, grad, dtype, size):
        self.nn = _require_nn()
        x, w, g, kwargs = _grads(dtype, size)
        if grad == "input":
            self.call = lambda: self.nn.conv2d_input_grad(x.shape, w, g, **kwargs)
        else:
            self.call = lambda: self.nn.conv2d_weight_grad(x, w.shape, g, **kwargs)
        self.call()

    def time_grad(self, grad, dtype, size):
        self.call()


class NNResNet3x3:
    """``fastconv.nn.conv2d(input, weight, padding=1)`` on ResNet's dense 3 x 3 layers, batch 1 and 8."""

    params = [list(RESNET), BATCHES, ["float32"]]
    param_names = ["channels", "batch", "dtype"]

    def setup_cache(self):
        if nn is not None:
            x, w = _resnet(64, 1, "float32")
            nn.conv2d(x, w, padding=1)

    def setup(self, channels, batch, dtype):
        self.nn = _require_nn()
        self.x, self.w = _resnet(channels, batch, dtype)
        warm(self.nn.conv2d, self.x, self.w, padding=1)

    def time_conv2d(self, channels, batch, dtype):
        self.nn.conv2d(self.x, self.w, padding=1)


def _single_channel(kernel, dtype):
    """One input and one output channel, a ``kernel x kernel`` filter on a 2048 x 2048 image."""
    return random((1, 1, 2048, 2048), dtype), random((1, 1, kernel, kernel), dtype, 1)


class NNSingleChannel:
    """``fastconv.nn.conv2d(input, weight, padding='same')`` with one channel and a large kernel."""

    params = [[15, 31], ["float32"]]
    param_names = ["kernel", "dtype"]

    def setup(self, kernel, dtype):
        self.nn = _require_nn()
        self.x, self.w = _single_channel(kernel, dtype)
        warm(self.nn.conv2d, self.x, self.w, padding="same")

    def time_conv2d(self, kernel, dtype):
        self.nn.conv2d(self.x, self.w, padding="same")


# --- anchors ---------------------------------------------------------------------------


class NNConv2DTorch(Anchor):
    """``torch.nn.functional.conv2d`` on NCHW tensors, and on channels-last ones (torch's fast layout)."""

    params = GRID
    param_names = NAMES

    def setup(self, layer, dtype, size):
        require(torch, "torch")
        set_anchor_threads()
        x, w, self.kwargs = _layer(layer, dtype, size)
        self.x, self.w = torch_tensor(x), torch_tensor(w)
        self.x_cl = self.x.contiguous(memory_format=torch.channels_last)
        self.w_cl = self.w.contiguous(memory_format=torch.channels_last)
        self.time_conv2d(layer, dtype, size)
        self.time_conv2d_channels_last(layer, dtype, size)

    def time_conv2d(self, layer, dtype, size):
        with torch.no_grad():
            torch.nn.functional.conv2d(self.x, self.w, **self.kwargs)

    def time_conv2d_channels_last(self, layer, dtype, size):
        with torch.no_grad():
            torch.nn.functional.conv2d(self.x_cl, self.w_cl, **self.kwargs)


class NNConvTranspose2DTorch(Anchor):
    """``torch.nn.functional.conv_transpose2d`` on the same layer."""

    params = NNConvTranspose2D.params
    param_names = NNConvTranspose2D.param_names

    def setup(self, dtype, size):
        require(torch, "torch")
        set_anchor_threads()
        x, w, self.kwargs = _transpose(dtype, size)
        self.x, self.w = torch_tensor(x), torch_tensor(w)
        self.time_conv_transpose2d(dtype, size)

    def time_conv_transpose2d(self, dtype, size):
        with torch.no_grad():
            torch.nn.functional.conv_transpose2d(self.x, self.w, **self.kwargs)


class NNConv2DGradTorch(Anchor):
    """``torch.nn.grad.conv2d_input`` / ``conv2d_weight`` on the same layer."""

    params = GRAD_GRID
    param_names = NNConv2DGrad.param_names

    def setup(self, grad, dtype, size):
        require(torch, "torch")
        set_anchor_threads()
        x, w, g, kwargs = _grads(dtype, size)
        x, w, g = torch_tensor(x), torch_tensor(w), torch_tensor(g)
        if grad == "input":
            self.call = lambda: torch.nn.grad.conv2d_input(x.shape, w, g, **kwargs)
        else:
            self.call = lambda: torch.nn.grad.conv2d_weight(x, w.shape, g, **kwargs)
        self.call()

    def time_grad(self, grad, dtype, size):
        with torch.no_grad():
            self.call()


class NNResNet3x3Torch(Anchor):
    """``torch.nn.functional.conv2d`` on the same layers (NCHW, as the issue's target compares)."""

    params = NNResNet3x3.params
    param_names = NNResNet3x3.param_names

    def setup(self, channels, batch, dtype):
        require(torch, "torch")
        set_anchor_threads()
        x, w = _resnet(channels, batch, dtype)
        self.x, self.w = torch_tensor(x), torch_tensor(w)
        self.time_conv2d(channels, batch, dtype)

    def time_conv2d(self, channels, batch, dtype):
        with torch.no_grad():
            torch.nn.functional.conv2d(self.x, self.w, padding=1)


class NNSingleChannelTorch(Anchor):
    """``torch.nn.functional.conv2d`` on the same one-channel layers."""

    params = NNSingleChannel.params
    param_names = NNSingleChannel.param_names

    def setup(self, kernel, dtype):
        require(torch, "torch")
        set_anchor_threads()
        x, w = _single_channel(kernel, dtype)
        self.x, self.w = torch_tensor(x), torch_tensor(w)
        self.time_conv2d(kernel, dtype)

    def time_conv2d(self, kernel, dtype):
        with torch.no_grad():
            torch.nn.functional.conv2d(self.x, self.w, padding="same")

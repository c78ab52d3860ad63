"""The plan: the one place where geometry and dtypes are decided.

A :class:`Plan` describes one call of the primitive

    out[b, y] = sum_t  x~[b, y * stride + t * dilation - pad_lo] * w[b, t]

(a valid cross-correlation over a virtually padded input, batched over the
axes that are not convolved).  Faces translate their users' vocabulary into a
plan with the builders below; engines execute plans and know nothing about
scipy, ndimage or torch conventions.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from ._dtypes import compute_dtype
from ._engines.borders import BY_NAME as BORDERS


@dataclass(frozen=True)
class Plan:
    """A frozen description of one correlation.

    Attributes
    ----------
    axes : tuple of int
        The convolved axes of the (equal-ndim) inputs, ascending.  All other
        axes are batch axes and broadcast against each other.
    in_shape, kernel_shape, out_shape : tuple of int
        Extents along ``axes`` of the input, the kernel and the output.
    pad_lo : tuple of int
        Virtual padding before each convolved axis (``pad_hi`` follows from
        the output shape).
    stride, dilation : tuple of int
    border : str or tuple of str
        One of :data:`BORDERS`: how the input is extended beyond its edges;
        or a tuple with one rule per convolved axis.
    cval : scalar
        The outside value for the ``'constant'`` border.
    flip : bool
        Reverse the kernel along every convolved axis (convolution).
    conj : bool
        Conjugate the kernel (complex correlation).
    result_dtype, compute_dtype : numpy.dtype
    method : str
        The engine that runs the plan.
    """

    axes: tuple
    in_shape: tuple
    kernel_shape: tuple
    out_shape: tuple
    pad_lo: tuple
    stride: tuple
    dilation: tuple
    border: str | tuple
    cval: complex
    flip: bool
    conj: bool
    result_dtype: np.dtype
    compute_dtype: np.dtype
    method: str

    @property
    def border_codes(self) -> tuple:
        """The engines' integer border code of every convolved axis."""
        if isinstance(self.border, str):
            return (BORDERS[self.border],) * len(self.axes)
        return tuple(BORDERS[b] for b in self.border)

    @property
    def pad_hi(self) -> tuple:
        """Virtual padding after each convolved axis implied by the output shape."""
        return tuple(
            (o - 1) * s + (k - 1) * d + 1 - n - p
            for o, s, k, d, n, p in zip(
                self.out_shape, self.stride, self.kernel_shape, self.dilation, self.in_shape, self.pad_lo
            )
        )


def signal_padding(in_shape, kernel_shape, mode: str, *, same_lo=lambda k: k // 2):
    """Padding before each axis and output shape of a scipy.signal-style mode.

    ``full`` pads ``K - 1`` on both sides, ``valid`` pads nothing, ``same`` keeps
    the input's shape and pads ``same_lo(K)`` before (``K // 2`` for
    ``scipy.signal.correlate`` / ``convolve`` / ``convolve2d`` on the
    transformed kernel, ``(K - 1) // 2`` for ``correlate2d``).
    """
    if mode == "full":
        pad_lo = tuple(k - 1 for k in kernel_shape)
        out = tuple(n + k - 1 for n, k in zip(in_shape, kernel_shape))
    elif mode == "valid":
        pad_lo = (0,) * len(in_shape)
        out = tuple(n - k + 1 for n, k in zip(in_shape, kernel_shape))
    else:  # same
        pad_lo = tuple(same_lo(k) for k in kernel_shape)
        out = tuple(in_shape)
    return pad_lo, out


def make_plan(
    x: np.ndarray,
    w: np.ndarray,
    *,
    axes,
    pad_lo,
    out_shape,
    result_dtype,
    stride=None,
    dilation=None,
    border: str | tuple = "zero",
    cval=0,
    flip: bool = False,
    conj: bool = False,
    method: str = "direct",
    compute=None,
) -> Plan:
    """Build a :class:`Plan`; ``compute`` overrides the compute dtype the result dtype implies."""
    n = len(axes)
    return Plan(
        axes=tuple(axes),
        in_shape=tuple(x.shape[a] for a in axes),
        kernel_shape=tuple(w.shape[a] for a in axes),
        out_shape=tuple(out_shape),
        pad_lo=tuple(pad_lo),
        stride=tuple(stride) if stride is not None else (1,) * n,
        dilation=tuple(dilation) if dilation is not None else (1,) * n,
        border=border if isinstance(border, str) else tuple(border),
        cval=cval,
        flip=flip,
        conj=conj and np.dtype(result_dtype).kind == "c",
        result_dtype=np.dtype(result_dtype),
        compute_dtype=np.dtype(compute) if compute is not None else compute_dtype(np.dtype(result_dtype), method),
        method=method,
    )


# Remembered: ``method='auto'`` calls this on every call, and a dataclass
# replace costs microseconds, as much as a small convolution.
@functools.lru_cache(maxsize=1024)
def with_method(plan: Plan, method: str) -> Plan:
    """``plan`` run by another engine (the compute dtype follows the engine)."""
    if plan.method == method:
        return plan
    return replace(plan, method=method, compute_dtype=compute_dtype(plan.result_dtype, method))


@dataclass(frozen=True)
class ConvPlan:
    """A frozen description of one CNN layer (the primitive, contracting channels).

    ::

        out[n, g*Og + o, y] = sum_{c < Cg, t}  x~[n, g*Cg + c, y*stride + t*dilation - pad_lo]
                                                * w[g*Og + o, c, t]

    where ``x~`` is the input, first spread out by ``upsample`` (``upsample - 1``
    zeros between samples: a transposed convolution), then extended by the
    border rule of each spatial axis.

    Attributes
    ----------
    batch, in_channels, out_channels, groups : int
        ``Cg = in_channels // groups``, ``Og = out_channels // groups``.
    in_shape, kernel_shape, out_shape : tuple of int
        Spatial extents of the input (before upsampling), kernel and output.
    pad_lo : tuple of int
        Padding before each spatial axis of the upsampled input; negative
        values crop (a transposed convolution with large ``padding``).
    stride, dilation, upsample : tuple of int
    border : tuple of str
        One rule of :data:`BORDERS` per spatial axis.
    transposed_weight : bool
        The weight is given as ``(in_channels, Og, *kernel)`` and is used
        flipped, with input and output channel roles swapped (transposed
        convolution and input gradient).
    result_dtype, compute_dtype : numpy.dtype
    method : str
        ``'channels'`` (im2col + GEMM) or ``'direct'`` (one input channel per
        group: each channel correlated on its own, plane by plane, by
        :mod:`fastconv._engines.depthwise`).
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_shape: tuple
    kernel_shape: tuple
    out_shape: tuple
    pad_lo: tuple
    stride: tuple
    dilation: tuple
    upsample: tuple
    border: tuple
    transposed_weight: bool
    result_dtype: np.dtype
    compute_dtype: np.dtype
    method: str

    @property
    def upsampled_shape(self) -> tuple:
        """Spatial extents of the input after upsampling."""
        return tuple((n - 1) * u + 1 for n, u in zip(self.in_shape, self.upsample))

    @property
    def pad_hi(self) -> tuple:
        """Padding after each spatial axis implied by the output shape."""
        return tuple(
            (o - 1) * s + (k - 1) * d + 1 - n - p
            for o, s, k, d, n, p in zip(
                self.out_shape, self.stride, self.kernel_shape, self.dilation, self.upsampled_shape,
                self.pad_lo,
            )
        )

    @property
    def border_codes(self) -> tuple:
        return tuple(BORDERS[b] for b in self.border)


def conv_out_shape(in_shape, kernel_shape, pad_lo, pad_hi, stride, dilation, upsample=None) -> tuple:
    """Output extents ``(n' + lo + hi - d (k - 1) - 1) // s + 1`` (``n'`` the upsampled extent); may be < 1."""
    upsample = upsample or (1,) * len(in_shape)
    return tuple(
        ((n - 1) * u + 1 + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, lo, hi, s, d, u in zip(in_shape, kernel_shape, pad_lo, pad_hi, stride, dilation, upsample)
    )


def make_conv_plan(
    *,
    batch,
    in_channels,
    out_channels,
    groups,
    in_shape,
    kernel_shape,
    pad_lo,
    pad_hi,
    stride,
    dilation,
    border,
    result_dtype,
    upsample=None,
    transposed_weight=False,
    method=None,
) -> ConvPlan:
    """Build a :class:`ConvPlan`; ``method`` defaults to ``'direct'`` for one input channel per group.

    Unless the padded plane the depthwise engine copies each input plane into
    would be far larger than the input and output planes (padding of the
    order of the plane or beyond): the channel-contracting engine, which
    gathers bounded blocks, then takes the layer.
    """
    n = len(in_shape)
    upsample = tuple(upsample) if upsample is not None else (1,) * n
    out = conv_out_shape(in_shape, kernel_shape, pad_lo, pad_hi, stride, dilation, upsample)
    if method is None:
        method = "channels"
        if in_channels == groups:
            up = [(m - 1) * u + 1 for m, u in zip(in_shape, upsample)]
            padded = math.prod(m + max(lo, 0) + max(hi, 0) for m, lo, hi in zip(up, pad_lo, pad_hi))
            if padded <= 4 * (math.prod(up) + math.prod(max(o, 0) for o in out)) + (1 << 16):
                method = "direct"
    return ConvPlan(
        batch=int(batch),
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        groups=int(groups),
        in_shape=tuple(in_shape),
        kernel_shape=tuple(kernel_shape),
        out_shape=out,
        pad_lo=tuple(pad_lo),
        stride=tuple(stride),
        dilation=tuple(dilation),
        upsample=upsample,
        border=tuple(border),
        transposed_weight=bool(transposed_weight),
        result_dtype=np.dtype(result_dtype),
        compute_dtype=compute_dtype(np.dtype(result_dtype)),
        method=method,
    )

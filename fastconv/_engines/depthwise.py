"""Depthwise engine: layers with one input channel per group, plane by plane.

Each output plane ``(n, o)`` is the valid correlation of one input plane
``(n, o // mult)``, virtually padded by the border rule, with its own small
kernel ``w[o]``::

    out[n, o, y] = sum_t  x~[n, o // mult, y * s + t * d - p_lo] * w[o, t]

There is nothing to contract, so a matrix product is a poor fit; the
general direct engine handles it too, but spends most of its time on
per-row bookkeeping when planes are small (56 x 56, say).  Here a task is a
whole plane: its padded copy is built once in a per-thread scratch buffer
(every border rule applied there, so the inner loops have no branches), then
every kernel tap is added to each output row by a contiguous loop over its
columns that LLVM vectorises.  The most common layer, 3x3 'same' with zero
padding and stride 1, reads its planes in place instead (:func:`_same3x3`):
the copy cost as much as the filter (2048 planes of 56 x 56: 5.6 ms with the
copy, 2.1 ms without, against a 1.8 ms copy floor).

Layout contract (enforced by :mod:`fastconv._execute`): ``x`` ``(N, C, D, H,
W)`` C-contiguous read-only; ``w`` ``(Cout, KD, KH, KW)`` C-contiguous
read-only with ``Cout = C * mult``; ``out`` ``(N, Cout, Do, Ho, Wo)``
C-contiguous, overwritten; geometry as int64 arrays of three entries, pad_lo
>= 0.  Scratch memory: one padded plane per chunk of planes, a few per thread.

Determinism: each output element is summed by one task, taps in a fixed
order, so results are identical at any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from . import _jit
from .borders import ZERO
from .channels import _map_index


@_jit.serial
def _fill(pad, src, p_lo, border):
    """``pad`` = the plane ``src`` extended by the border rules, ``p_lo`` samples before each axis."""
    Dp, Hp, Wp = pad.shape
    D, H, W = src.shape
    p2 = p_lo[2]
    left = min(p2, Wp)
    right = max(left, min(p2 + W, Wp))
    for a in range(Dp):
        ia = _map_index(a - p_lo[0], D, border[0])
        for b in range(Hp):
            ib = _map_index(b - p_lo[1], H, border[1])
            row = pad[a, b]
            if ia < 0 or ib < 0:
                for j in range(Wp):
                    row[j] = 0
                continue
            s = src[ia, ib]
            for j in range(left):
                m = _map_index(j - p2, W, border[2])
                row[j] = s[m] if m >= 0 else 0
            n = right - left
            if n > 0:
                dst = row[left:]
                seg = s[left - p2:]
                for j in range(n):
                    dst[j] = seg[j]
            for j in range(right, Wp):
                m = _map_index(j - p2, W, border[2])
                row[j] = s[m] if m >= 0 else 0


@_jit.inline
def _taps3x3(wo):
    """The nine taps of a 3x3 kernel ``wo[0]``, row by row."""
    return (wo[0, 0, 0], wo[0, 0, 1], wo[0, 0, 2], wo[0, 1, 0], wo[0, 1, 1], wo[0, 1, 2], wo[0, 2, 0], wo[0, 2, 1],
            wo[0, 2, 2])


@_jit.serial
def _plane(ob, pad, wo, stride, dilation):
    """``ob`` = the valid correlation of the padded plane ``pad`` with the kernel ``wo``."""
    Do, Ho, Wo = ob.shape
    KD, KH, KW = wo.shape
    s2 = stride[2]
    d2 = dilation[2]
    if KD == 1 and KH == 3 and KW == 3 and s2 == 1:
        # The common 3x3 layer: all nine taps in one pass over each output row
        # (one load and store of the output per nine multiply-adds), added in
        # the order of the general loop below, so the bits are the same.
        w0, w1, w2, w3, w4, w5, w6, w7, w8 = _taps3x3(wo)
        d1 = dilation[1]
        for od in range(Do):
            plane = pad[od * stride[0]]
            for oh in range(Ho):
                orow = ob[od, oh]
                h = oh * stride[1]
                r0 = plane[h]
                r1 = plane[h + d1]
                r2 = plane[h + 2 * d1]
                a0 = r0[0:]
                a1 = r0[d2:]
                a2 = r0[2 * d2:]
                b0 = r1[0:]
                b1 = r1[d2:]
                b2 = r1[2 * d2:]
                c0 = r2[0:]
                c1 = r2[d2:]
                c2 = r2[2 * d2:]
                for j in range(Wo):
                    acc = w0 * a0[j]
                    acc += w1 * a1[j]
                    acc += w2 * a2[j]
                    acc += w3 * b0[j]
                    acc += w4 * b1[j]
                    acc += w5 * b2[j]
                    acc += w6 * c0[j]
                    acc += w7 * c1[j]
                    acc += w8 * c2[j]
                    orow[j] = acc
        return
    for od in range(Do):
        for oh in range(Ho):
            orow = ob[od, oh]
            for j in range(Wo):
                orow[j] = 0
            for kd in range(KD):
                for kh in range(KH):
                    prow = pad[od * stride[0] + kd * dilation[0], oh * stride[1] + kh * dilation[1]]
                    for kw in range(KW):
                        wv = wo[kd, kh, kw]
                        seg = prow[kw * d2:]
                        if s2 == 1:
                            for j in range(Wo):
                                orow[j] += wv * seg[j]
                        else:
                            for j in range(Wo):
                                orow[j] += wv * seg[j * s2]


@_jit.serial
def _same3x3(ob, src, wo, zrow):
    """``ob`` = the 3x3 correlation of the plane ``src`` with zero padding 1 ('same', stride 1): no padded copy.

    Rows above and below the plane read the zero row ``zrow``; the first and
    last column add the taps that fall outside as products with 0.  Every
    output adds the same nine products in the same order as :func:`_plane`
    on a zero-padded copy; in the first and last columns the compiler may
    fuse other pairs into FMAs than in the vectorised loop, so those may
    differ from it in the last bit (each output is still computed by one
    task, the same way at any thread count).
    """
    H = src.shape[1]
    W = src.shape[2]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = _taps3x3(wo)
    z = zrow[0]
    for oh in range(H):
        orow = ob[0, oh]
        a = src[0, oh - 1] if oh > 0 else zrow
        b = src[0, oh]
        c = src[0, oh + 1] if oh + 1 < H else zrow
        for j in range(1, W - 1):
            acc = w0 * a[j - 1]
            acc += w1 * a[j]
            acc += w2 * a[j + 1]
            acc += w3 * b[j - 1]
            acc += w4 * b[j]
            acc += w5 * b[j + 1]
            acc += w6 * c[j - 1]
            acc += w7 * c[j]
            acc += w8 * c[j + 1]
            orow[j] = acc
        # The first and last columns (one column: both at once).
        for j in (0, W - 1):
            am = a[j - 1] if j > 0 else z
            bm = b[j - 1] if j > 0 else z
            cm = c[j - 1] if j > 0 else z
            ap = a[j + 1] if j + 1 < W else z
            bp = b[j + 1] if j + 1 < W else z
            cp = c[j + 1] if j + 1 < W else z
            acc = w0 * am
            acc += w1 * a[j]
            acc += w2 * ap
            acc += w3 * bm
            acc += w4 * b[j]
            acc += w5 * bp
            acc += w6 * cm
            acc += w7 * c[j]
            acc += w8 * cp
            orow[j] = acc


@_jit.kernel
def depthwise(task, same3, x, w, out, stride, dilation, pad_lo, border, mult, nchunks):
    """Every output plane of a depthwise layer (see the module docstring); ``task``, ``same3``: see :func:`run`."""
    N = out.shape[0]
    Cout = out.shape[1]
    Do = out.shape[2]
    Ho = out.shape[3]
    Wo = out.shape[4]
    Dp = (Do - 1) * stride[0] + (w.shape[1] - 1) * dilation[0] + 1
    Hp = (Ho - 1) * stride[1] + (w.shape[2] - 1) * dilation[1] + 1
    Wp = (Wo - 1) * stride[2] + (w.shape[3] - 1) * dilation[2] + 1
    ntasks = N * Cout
    nchunks = max(1, min(nchunks, ntasks))
    for chunk in prange(nchunks):
        zrow = np.zeros(Wo if same3 else 0, out.dtype)
        pad = np.empty((0, 0, 0) if same3 else (Dp, Hp, Wp), out.dtype)
        run = _task_at(task, (x, w, out, stride, dilation, pad_lo, border))
        for t in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            run(x, w, out, t // Cout, t % Cout, mult, pad, zrow, stride, dilation, pad_lo, border)


@_jit.serial
def _plane_in_place(x, w, out, n, o, mult, pad, zrow, stride, dilation, pad_lo, border):
    """Output plane ``(n, o)`` of the 'same' 3x3 layer, read in place (``zrow``: a row of zeros)."""
    _same3x3(out[n, o], x[n, o // mult], w[o], zrow)


@_jit.serial
def _plane_padded(x, w, out, n, o, mult, pad, zrow, stride, dilation, pad_lo, border):
    """Output plane ``(n, o)`` from its padded copy in ``pad``."""
    _fill(pad, x[n, o // mult], pad_lo, border)
    _plane(out[n, o], pad, w[o], stride, dilation)


def _task_signature(x, w, out, stride, dilation, pad_lo, border):
    """The Numba signature of a task as :func:`depthwise` calls it (see :func:`._jit.function_at`)."""
    from numba.core import types

    i64 = types.int64
    return types.none(x, w, out, i64, i64, i64, out.dtype[:, :, ::1], out.dtype[::1], stride, dilation, pad_lo,
                      border)


# A task at an address, as :func:`depthwise` calls it: by address, so its
# code goes through LLVM once rather than once per level of the parallel
# loop (see :mod:`._jit`), and only the task a layer needs is compiled.
_task_at = _jit.function_at(_task_signature)


def _reads_in_place(x, w, out, stride, dilation, pad_lo, border) -> bool:
    """The common 'same' 3x3 layer with zero padding and stride 1: its planes are read in place."""
    return bool(
        out.shape[2] == 1 and w.shape[1:] == (1, 3, 3)
        and stride[1] == stride[2] == dilation[1] == dilation[2] == 1
        and pad_lo[1] == pad_lo[2] == 1 and border[1] == border[2] == ZERO
        and out.shape[3:] == x.shape[3:] and x.shape[2] == 1 and pad_lo[0] == 0
    )


def run(x, w, out, stride, dilation, pad_lo, border, mult, nchunks) -> None:
    """:func:`depthwise` on these operands, with the task it needs compiled for them."""
    same3 = _reads_in_place(x, w, out, stride, dilation, pad_lo, border)
    task = _jit.address_for(_plane_in_place if same3 else _plane_padded, _task_signature,
                            (x, w, out, stride, dilation, pad_lo, border))
    _jit.launch(depthwise)(task, same3, x, w, out, stride, dilation, pad_lo, border, mult, nchunks)

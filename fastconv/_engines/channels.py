"""Channel-contracting engine: dense and grouped CNN layers as im2col + GEMM.

A CNN layer is the primitive with a contraction over input channels::

    out[n, g, o, y] = sum_{c, t}  x~[n, g*Cg + c, y*s + t*d - p_lo] * w[g, o, c, t]

For each block of output pixels the engine gathers the input values every
output pixel reads into a *column matrix* (im2col) of ``C * prod(K)`` rows,
one per (input channel, kernel tap), and ``P_block`` columns, one per output
pixel of the block; the layer is then one matrix product per group,
``w[g] (Og x Cg*KK)  @  cols[g] (Cg*KK x P_block)``, done by the BLAS NumPy is
linked against.  The weight gradient is the product of the output gradient
with the transposed column matrix, accumulated block after block.

Memory is bounded: the column matrix of one block never exceeds
:data:`WORKSPACE_BYTES` (unless a single output row needs more), whatever the
batch size.  Small images are gathered several at a time, so the matrix
product is wide enough for BLAS to run near its peak.  A 1x1 layer with
stride 1 and no padding needs no gathering at all: the input *is* the column
matrix.

Gathering 2-D (and 1-D) layers with stride 1 along the rows first copies the
block's input rows, extended by the border rule, into a *stage* no larger
than the column matrix; each row of the column matrix is then plain copies
of stage rows (:func:`stage_rows`, :func:`im2col_staged`).  Other layers
(3-D, strided rows, dilations far beyond the input) apply the border rule
tap by tap as they gather (:func:`im2col_tasks`).

Layout contract (enforced by :mod:`fastconv._execute`): ``x`` is
``(N, C, D, H, W)``, C-contiguous, read-only, in the compute dtype (1-D and
2-D layers have unit leading spatial dims); ``w`` is ``(Cout, Cg, KD, KH,
KW)`` C-contiguous; ``geometry`` holds int64 arrays of three entries each.
The im2col kernel accepts any padding (negative padding crops) and the
border rules zero, edge, symmetric, reflect and wrap of :mod:`.borders`.

Threads and determinism: blocks run side by side on fastconv's threads,
each gathered by its worker and multiplied by a single-threaded BLAS call
(see :mod:`._blas`).  A layer that is one block (batch 1 on a small image)
is gathered by all workers, then multiplied in slices of output channels
side by side; the slices are set by the shape alone (:func:`_output_slices`).
The gather is a copy; every output element is the dot product of one weight
row with one column, computed by one BLAS call on one thread, so results do
not depend on the thread count.  The weight gradient
adds its blocks into a fixed number of partial sums, then those in order.
"""

from __future__ import annotations

import math

import numpy as np

from . import _blas, _jit, _scratch, borders
from .borders import ZERO


# The border rule of every engine (:func:`.borders.map_index`), as a called
# function rather than inlined Numba IR: the gather maps indices at four
# places, and inlining the rule into each made its cold compile three times
# longer.  LLVM still inlines it where that pays.
_map_index = _jit.serial(borders.map_index)


# Bytes of the column matrix gathered per block: about one core's L2, so the
# matrix product reads the columns from cache (measured best among 0.25 - 8 MiB).
WORKSPACE_BYTES = 2 << 20
# Output pixels per image below which several images share one matrix product.
_SMALL_IMAGE = 1024


@_jit.serial
def split_phases(x, xs, n, h_lo, s2):
    """``xs[c, h - h_lo, p, q] = x[n, c, 0, h, q s2 + p]``: the rows of image ``n`` split by column phase."""
    W = x.shape[4]
    for c in range(xs.shape[0]):
        for hh in range(xs.shape[1]):
            src = x[n, c, 0, h_lo + hh]
            for ph in range(s2):
                dst = xs[c, hh, ph]
                for q in range((W - ph + s2 - 1) // s2):
                    dst[q] = src[q * s2 + ph]


@_jit.serial
def im2col_tasks(x, cols, n0, n1, r0, r1, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border,
                 task_lo, task_hi, xs, h_lo):
    """Gather the rows ``task_lo .. task_hi`` of ``cols`` (one per channel, tap and image; see :func:`gather`).

    ``xs`` is empty, or image ``n0``'s input rows from ``h_lo`` on split by
    column phase (:func:`split_phases`), from which the strided rows that
    read inside the input are copied contiguously.
    """
    D = in_dims[0]
    H = in_dims[1]
    W = in_dims[2]
    Ho = out_dims[1]
    Wo = out_dims[2]
    KH = k_dims[1]
    KW = k_dims[2]
    KK = k_dims[0] * KH * KW
    s2 = stride[2]
    d2 = dilation[2]
    p2 = pad_lo[2]
    b2 = border[2]
    nr = r1 - r0
    nimg = n1 - n0
    phases = xs.shape[0] > 0
    for task in range(task_lo, task_hi):
        ni = task % nimg
        rest = task // nimg
        t = rest % KK
        c = rest // KK
        kw = t % KW
        kh = (t // KW) % KH
        kd = t // (KW * KH)
        crow = cols[c * KK + t, ni * nr * Wo:(ni + 1) * nr * Wo]
        off = kw * d2 - p2
        # Interior columns: 0 <= j * s2 + off < W.
        j_lo = 0 if off >= 0 else (s2 - 1 - off) // s2
        last = W - 1 - off
        j_hi = last // s2 + 1 if last >= 0 else 0
        j_hi = min(j_hi, Wo)
        j_lo = min(j_lo, j_hi)
        n = j_hi - j_lo
        xc = x[n0 + ni, c]
        skip_lo = 0
        skip_hi = 0
        if s2 == 1 and W == Wo and stride[1] == 1 and D == 1 and out_dims[0] == 1 and n > 0:
            # Rows as wide as the input (stride 1 along them, 'same'-like
            # padding), consecutive output rows on consecutive input rows: the
            # interiors of the block's rows that read inside the input are one
            # contiguous run of the input plane, copied at once; then the
            # border columns of those rows are redone one by one.  Rows that
            # read outside the input take the general path below, and so do
            # all rows of a depth tap that reads the zero padding (``i_d``:
            # the one plane the tap reads, or -1 for none).
            i_d = kd * dilation[0] - pad_lo[0]
            if i_d != 0:
                i_d = _map_index(i_d, D, border[0])
            ih0 = r0 + kh * dilation[1] - pad_lo[1]
            ra = min(max(0, -ih0), nr)
            rb = max(min(nr, H - ih0), ra)
            if ra < rb and i_d == 0:
                plane = xc[0].reshape(H * W)
                q0 = ra * Wo + j_lo
                q1 = (rb - 1) * Wo + j_hi
                dst = crow[q0:q1]
                src = plane[(ih0 + ra) * W + j_lo + off:]
                for q in range(q1 - q0):
                    dst[q] = src[q]
                for r in range(ra, rb):
                    row = crow[r * Wo:(r + 1) * Wo]
                    srow = plane[(ih0 + r) * W:(ih0 + r + 1) * W]
                    for j in range(j_lo):
                        m = -1 if b2 == ZERO else _map_index(j + off, W, b2)
                        row[j] = srow[m] if m >= 0 else 0
                    for j in range(j_hi, Wo):
                        m = -1 if b2 == ZERO else _map_index(j + off, W, b2)
                        row[j] = srow[m] if m >= 0 else 0
                skip_lo = ra
                skip_hi = rb
        od = r0 // Ho
        oh = r0 % Ho
        for r in range(nr):
            if skip_lo <= r < skip_hi:
                oh += 1
                if oh == Ho:
                    oh = 0
                    od += 1
                continue
            row = crow[r * Wo:(r + 1) * Wo]
            # The border rule only off the input (a call per row costs more
            # than the short copies it guards).
            i_d = od * stride[0] + kd * dilation[0] - pad_lo[0]
            if i_d < 0 or i_d >= D:
                i_d = _map_index(i_d, D, border[0])
            i_h = oh * stride[1] + kh * dilation[1] - pad_lo[1]
            phased = phases and 0 <= i_h < H
            if i_h < 0 or i_h >= H:
                i_h = _map_index(i_h, H, border[1])
            oh += 1
            if oh == Ho:
                oh = 0
                od += 1
            if i_d < 0 or i_h < 0:
                for j in range(Wo):
                    row[j] = 0
                continue
            src = xc[i_d, i_h]
            for j in range(j_lo):
                m = -1 if b2 == ZERO else _map_index(j * s2 + off, W, b2)
                row[j] = src[m] if m >= 0 else 0
            if n > 0:
                dst = row[j_lo:]
                if s2 == 1:
                    seg = src[j_lo + off:]
                    for j in range(n):
                        dst[j] = seg[j]
                elif phased:
                    # Column j * s2 + off is phase off % s2, index j + off // s2.
                    seg = xs[c, i_h - h_lo, off % s2, j_lo + off // s2:]
                    for j in range(n):
                        dst[j] = seg[j]
                else:
                    seg = src[j_lo * s2 + off:]
                    for j in range(n):
                        dst[j] = seg[j * s2]
            for j in range(j_hi, Wo):
                m = -1 if b2 == ZERO else _map_index(j * s2 + off, W, b2)
                row[j] = src[m] if m >= 0 else 0


@_jit.serial
def stage_rows(x, xs, n0, ih_lo, iw_lo, b1, b2, c_lo, c_hi):
    """``xs[n, c, p, i, q] = x~[n0 + n, c, 0, ih_lo + i, iw_lo + q * s + p]`` for channels ``c_lo .. c_hi``.

    ``s = xs.shape[2]`` is the layer's column stride: the stage holds the
    rows split by column phase ``p``, so that a strided tap reads a
    contiguous run.  ``x~`` is the input extended by the border rules
    ``b1`` (rows) and ``b2`` (columns); the ZERO rule gives 0.
    """
    H = x.shape[3]
    W = x.shape[4]
    s = xs.shape[2]
    Wq = xs.shape[4]
    for n in range(xs.shape[0]):
        for c in range(c_lo, c_hi):
            for i in range(xs.shape[3]):
                m = _map_index(ih_lo + i, H, b1)
                for p in range(s):
                    dst = xs[n, c, p, i]
                    if m < 0:
                        for q in range(Wq):
                            dst[q] = 0
                        continue
                    src = x[n0 + n, c, 0, m]
                    start = iw_lo + p  # the input column of q = 0
                    # Columns q_lo .. q_hi read inside the row.
                    q_lo = min(max(0, -(start // s)), Wq)
                    q_hi = max(min(Wq, (W - 1 - start) // s + 1), q_lo)
                    for q in range(q_lo):
                        k = _map_index(start + q * s, W, b2)
                        dst[q] = src[k] if k >= 0 else 0
                    out = dst[q_lo:]
                    if s == 1:
                        seg = src[start + q_lo:]
                        for q in range(q_hi - q_lo):
                            out[q] = seg[q]
                    else:
                        seg = src[start + q_lo * s:]
                        for q in range(q_hi - q_lo):
                            out[q] = seg[q * s]
                    for q in range(q_hi, Wq):
                        k = _map_index(start + q * s, W, b2)
                        dst[q] = src[k] if k >= 0 else 0


@_jit.serial
def im2col_staged(xs, cols, nr, Wo, KH, KW, s1, d1, d2, task_lo, task_hi):
    """Rows ``task_lo .. task_hi`` of ``cols`` (as :func:`im2col_tasks`) from the stage ``xs``.

    ``xs`` is the block :func:`stage_rows` made: every tap reads inside it,
    so there is no border rule, one contiguous copy per output row (tap
    ``kw`` reads phase ``kw d2 mod s`` from column ``kw d2 // s`` on).
    """
    nimg = xs.shape[0]
    s = xs.shape[2]
    KK = KH * KW
    for task in range(task_lo, task_hi):
        ni = task % nimg
        rest = task // nimg
        t = rest % KK
        c = rest // KK
        kw = t % KW
        kh = t // KW
        crow = cols[c * KK + t]
        p = kw * d2 % s
        q0 = kw * d2 // s
        for r in range(nr):
            src = xs[ni, c, p, r * s1 + kh * d1, q0:]
            dst = crow[(ni * nr + r) * Wo:]
            for j in range(Wo):
                dst[j] = src[j]


def _staged(x, cols, n0, n1, r0, r1, geometry, parts: int) -> bool:
    """:func:`gather` through a staged copy of the block's input rows; False where it does not apply.

    Applies to 2-D (and 1-D) layers.  The stage holds every input value the
    block reads, already extended by the border rules and, for a stride
    along the rows, split by column phase, so each column-matrix row is
    plain copies of contiguous runs: with small images, where rows are a
    few values long, the border logic of :func:`im2col_tasks` costs far
    more than the copies (measured 5-9x), and a block of the 7 x 7
    stride-2 first layer (8 x 3 x 224 x 224, 28 output rows) took 0.45 ms
    through it against 0.19 ms staged.  The stage is at most as large as
    the column matrix (else the general path runs, as for dilations far
    beyond the input).
    """
    in_dims, out_dims, k_dims, stride, dilation, pad_lo, border = geometry
    if not (int(in_dims[0]) == 1 and int(out_dims[0]) == 1 and int(k_dims[0]) == 1 and int(pad_lo[0]) == 0):
        return False
    KH, KW = int(k_dims[1]), int(k_dims[2])
    s1, s2, d1, d2 = int(stride[1]), int(stride[2]), int(dilation[1]), int(dilation[2])
    p1, p2 = int(pad_lo[1]), int(pad_lo[2])
    Wo = int(out_dims[2])
    nimg, nr, C = n1 - n0, r1 - r0, x.shape[1]
    Hs = (nr - 1) * s1 + (KH - 1) * d1 + 1
    Wq = Wo + (KW - 1) * d2 // s2  # stage columns per phase
    if nimg * C * s2 * Hs * Wq > cols.size:
        return False
    xs = _scratch.empty("channels.staged", (nimg, C, s2, Hs, Wq), x.dtype)
    b1, b2 = int(border[1]), int(border[2])
    per_channel = KH * KW * nimg  # rows of cols per channel

    def part(k, worker):
        # A part stages its channels, then copies their rows of cols.
        c_lo, c_hi = k * C // parts, (k + 1) * C // parts
        stage_rows(x, xs, n0, r0 * s1 - p1, -p2, b1, b2, c_lo, c_hi)
        im2col_staged(xs, cols, nr, Wo, KH, KW, s1, d1, d2, c_lo * per_channel, c_hi * per_channel)

    if parts == 1:
        part(0, 0)
    else:
        _blas.run(range(parts), part, parts)
    return True


def gather(x, cols, n0, n1, r0, r1, geometry, parts: int = 1) -> None:
    """Fill ``cols[(c, t), (n - n0, r - r0, ow)]`` for images ``n0 .. n1`` and output rows ``r0 .. r1``.

    An output row ``r`` is a pair ``(od, oh)`` of the first two spatial
    dims; ``t`` runs over the kernel taps ``(kd, kh, kw)``.  Runs in the
    calling thread, or in ``parts`` parts side by side on fastconv's
    threads (the caller runs blocks side by side, or gathers a lone block
    with every worker).
    """
    if _staged(x, cols, n0, n1, r0, r1, geometry, parts):
        return
    in_dims, out_dims, k_dims, stride, dilation, pad_lo, border = geometry
    ntasks = x.shape[1] * int(np.prod(k_dims)) * (n1 - n0)
    s2 = int(stride[2])
    h_lo = 0
    if 1 < s2 <= int(in_dims[2]) and n1 - n0 == 1 and int(in_dims[0]) == 1 and int(out_dims[0]) == 1:
        # Strided rows: split the block's input rows by column phase once, so
        # every tap copies contiguous runs (3x faster than strided loads).
        # (Not for a stride longer than the row: the split rows would hold
        # ``s2`` samples each, mostly padding.)
        H, W = int(in_dims[1]), int(in_dims[2])
        s1, d1, p1 = int(stride[1]), int(dilation[1]), int(pad_lo[1])
        h_lo = max(0, r0 * s1 - p1)
        h_hi = min(H, (r1 - 1) * s1 + (int(k_dims[1]) - 1) * d1 - p1 + 1)
        xs = _scratch.empty("channels.phases", (x.shape[1], max(h_hi - h_lo, 0), s2, -(-W // s2)), x.dtype)
        split_phases(x, xs, n0, h_lo, s2)
    else:
        xs = np.empty((0, 1, 1, 1), x.dtype)
    if parts == 1:
        im2col_tasks(x, cols, n0, n1, r0, r1, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border,
                     0, ntasks, xs, h_lo)
        return
    _blas.run(range(parts), lambda k, worker: im2col_tasks(
        x, cols, n0, n1, r0, r1, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border,
        k * ntasks // parts, (k + 1) * ntasks // parts, xs, h_lo), parts)


@_jit.serial
def col2im_planes(cols, out, n, r0, r1, in_dims, out_dims, k_dims, stride, dilation, pad, o_lo, o_hi):
    """Add ``cols`` into the output planes ``o_lo .. o_hi`` of image ``n`` (see :func:`scatter`)."""
    H = in_dims[1]
    W = in_dims[2]
    Do = out_dims[0]
    Ho = out_dims[1]
    Wo = out_dims[2]
    KH = k_dims[1]
    KW = k_dims[2]
    KK = k_dims[0] * KH * KW
    s2 = stride[2]
    d2 = dilation[2]
    p2 = pad[2]
    for o in range(o_lo, o_hi):
        plane = out[n, o]
        for t in range(KK):
            kw = t % KW
            kh = (t // KW) % KH
            kd = t // (KW * KH)
            row = cols[o * KK + t]
            off = kw * d2 - p2
            # Input columns whose output column iw * s2 + off lies in [0, Wo).
            i_lo = 0 if off >= 0 else (s2 - 1 - off) // s2
            last = Wo - 1 - off
            i_hi = last // s2 + 1 if last >= 0 else 0
            i_hi = min(i_hi, W)
            i_lo = min(i_lo, i_hi)
            m = i_hi - i_lo
            for r in range(r0, r1):
                yd = (r // H) * stride[0] + kd * dilation[0] - pad[0]
                yh = (r % H) * stride[1] + kh * dilation[1] - pad[1]
                if yd < 0 or yd >= Do or yh < 0 or yh >= Ho or m <= 0:
                    continue
                src = row[(r - r0) * W + i_lo:]
                dst = plane[yd, yh, i_lo * s2 + off:]
                if s2 == 1:
                    for j in range(m):
                        dst[j] += src[j]
                else:
                    for j in range(m):
                        dst[j * s2] += src[j]


def scatter(cols, out, n, r0, r1, geometry) -> None:
    """``out[n, o, y] += cols[(o, t), (r - r0, iw)]`` for every input pixel ``i = (r, iw)`` with ``y = i s + t d - pad``.

    The scatter of a transposed convolution, in the calling thread: each
    output element receives its terms taps first, then input rows, in order.
    """
    in_dims, out_dims, k_dims, stride, dilation, pad = geometry
    col2im_planes(cols, out, n, r0, r1, in_dims, out_dims, k_dims, stride, dilation, pad, 0, out.shape[1])


def transposed(x, w, out, geometry, groups: int) -> None:
    """Transposed convolution ``out[n, o, i s + t d - p] += x[n, c, i] w[c, o, t]`` (matrix product, then scatter).

    ``x`` is ``(N, C, D, H, W)``, ``w`` ``(C, Og, KD, KH, KW)`` (input channels
    first, not flipped), ``out`` ``(N, G * Og, Do, Ho, Wo)`` C-contiguous and
    overwritten; ``geometry`` is ``(in_dims, out_dims, k_dims, stride,
    dilation, pad)``.  Only the products of real input samples are computed:
    ``W^T x`` gives, per input pixel, its contribution to every (output
    channel, tap), and :func:`scatter` adds them where they land.
    """
    N, C = x.shape[:2]
    G = groups
    Cg = C // G
    Og = w.shape[1]
    in_dims, out_dims, k_dims = geometry[:3]
    KK = math.prod(int(k) for k in k_dims)
    W = int(in_dims[2])
    R = int(in_dims[0]) * int(in_dims[1])
    wt = w.reshape(G, Cg, Og * KK).transpose(0, 2, 1)
    xm = x.reshape(N, G, Cg, -1)
    rows = max(1, min(R, WORKSPACE_BYTES // max(G * Og * KK * W * x.dtype.itemsize, 1)))
    workers = max(1, min(_threads(), N))
    work = np.empty((workers, G * Og * KK * rows * W), x.dtype)
    out[...] = 0

    def image(n, worker):
        # The row blocks of one image add into overlapping output rows: one
        # worker, in order.
        for r0 in range(0, R, rows):
            r1 = min(r0 + rows, R)
            pb = (r1 - r0) * W
            cols = work[worker, : G * Og * KK * pb].reshape(G, Og * KK, pb)
            np.matmul(wt, xm[n][:, :, r0 * W: r1 * W], out=cols)
            scatter(cols.reshape(G * Og * KK, pb), out, n, r0, r1, geometry)

    _blas.run(range(N), image, workers)


def _is_pointwise(geometry) -> bool:
    in_dims, out_dims, k_dims, stride, dilation, pad_lo, _ = geometry
    return (
        all(k == 1 for k in k_dims)
        and all(s == 1 for s in stride)
        and all(p == 0 for p in pad_lo)
        and tuple(in_dims) == tuple(out_dims)
    )


def _plan_blocks(x, w, geometry, groups):
    """``(n0, n1, r0, r1)`` blocks of images and output rows whose column matrix fits the workspace.

    An image whose columns do not fit is cut into runs of output rows;
    small images (fewer than ``_SMALL_IMAGE`` output pixels) are taken
    several at a time, so the matrix product is wide enough for BLAS.
    """
    N, C = x.shape[:2]
    _, out_dims, k_dims = geometry[:3]
    KK = math.prod(int(k) for k in k_dims)
    Wo = int(out_dims[2])
    R = int(out_dims[0]) * int(out_dims[1])
    P = R * Wo
    row_bytes = C * KK * Wo * x.dtype.itemsize
    image_bytes = row_bytes * R
    if image_bytes > WORKSPACE_BYTES:
        rows = max(1, WORKSPACE_BYTES // row_bytes)
        return [(n, n + 1, r0, min(r0 + rows, R)) for n in range(N) for r0 in range(0, R, rows)], KK, R, P
    per = max(1, min(N, WORKSPACE_BYTES // image_bytes)) if P < _SMALL_IMAGE else 1
    return [(n0, min(n0 + per, N), 0, R) for n0 in range(0, N, per)], KK, R, P


# A lone block (one group) is multiplied in up to this many slices of output
# channels side by side, each at least this many channels: the shape alone
# sets the slices, so results do not depend on the thread count.
_SLICES = 4
_MIN_SLICE = 128


def _output_slices(nblocks: int, G: int, Og: int) -> int:
    """Slices of output channels a layer of ``nblocks`` blocks is multiplied in (1: none)."""
    if G != 1 or nblocks > 1:
        return 1
    return max(1, min(_SLICES, Og // _MIN_SLICE))


def _threads() -> int:
    from .._config import threads

    return threads()


def forward(x, w, out, geometry, groups: int) -> None:
    """``out[n, o] = sum_{c, t} x~[n, c, ...] w[o, c, t]`` with ``groups`` groups (see module docstring).

    ``out`` is ``(N, Cout, Do, Ho, Wo)`` C-contiguous, overwritten.  Blocks
    write disjoint parts of ``out`` and run side by side on fastconv's
    threads, each with its own workspace and a single-threaded BLAS call.
    """
    N, C = x.shape[:2]
    Cout = w.shape[0]
    G = groups
    Cg = C // G
    Og = Cout // G
    in_dims, out_dims, k_dims, stride, dilation, pad_lo, border = geometry
    outm = out.reshape(N, Cout, -1)
    threads = _threads()
    if _is_pointwise(geometry):
        wm = w.reshape(G, Og, Cg)
        xm = x.reshape(N, G, Cg, -1)
        P = xm.shape[-1]
        step = max(1, min(P, WORKSPACE_BYTES // max(C * x.dtype.itemsize, 1)))

        def pointwise(block, worker):
            n, p0 = block
            p1 = min(p0 + step, P)
            if G == 1:
                np.matmul(wm[0], xm[n, 0, :, p0:p1], out=outm[n][:, p0:p1])
            else:
                np.matmul(wm, xm[n, :, :, p0:p1], out=outm[n].reshape(G, Og, -1)[:, :, p0:p1])

        blocks = [(n, p0) for n in range(N) for p0 in range(0, P, step)]
        slices = _output_slices(len(blocks), G, Og)
        if slices > 1:
            _blas.run(range(slices), lambda k, worker: np.matmul(
                wm[0, k * Cout // slices:(k + 1) * Cout // slices], xm[0, 0],
                out=outm[0][k * Cout // slices:(k + 1) * Cout // slices]), threads)
            return
        _blas.run(blocks, pointwise, threads)
        return
    blocks, KK, R, P = _plan_blocks(x, w, geometry, groups)
    Wo = int(out_dims[2])
    wm = w.reshape(G, Og, Cg * KK)
    width = max((n1 - n0) * (r1 - r0) * Wo for n0, n1, r0, r1 in blocks)
    workers = max(1, min(threads, len(blocks)))
    work = _scratch.per_worker("channels.cols", workers, (C * KK * width,), x.dtype)
    tmp = (_scratch.per_worker("channels.tmp", workers, (G, Og, width), x.dtype)
           if any(b[1] - b[0] > 1 for b in blocks) else None)

    slices = _output_slices(len(blocks), G, Og)
    if slices > 1:
        # One block, nothing to share out (batch-1 layers on small images):
        # every worker gathers a share of it, then the slices of output
        # channels are multiplied side by side.
        (n0, n1, r0, r1), = blocks
        cols = work[0, : C * KK * width].reshape(C * KK, width)
        gather(x, cols, n0, n1, r0, r1, geometry, threads)
        dst = outm[n0][:, r0 * Wo: r1 * Wo] if n1 - n0 == 1 else tmp[0, 0, :, :width]

        def part(k, worker):
            o0, o1 = k * Cout // slices, (k + 1) * Cout // slices
            np.matmul(wm[0, o0:o1], cols, out=dst[o0:o1])

        _blas.run(range(slices), part, threads)
        if n1 - n0 > 1:
            outm[n0:n1] = dst.reshape(Cout, n1 - n0, P).transpose(1, 0, 2)
        return

    def block(b, worker):
        n0, n1, r0, r1 = b
        nimg = n1 - n0
        pb = nimg * (r1 - r0) * Wo
        cols = work[worker, : C * KK * pb].reshape(C * KK, pb)
        gather(x, cols, n0, n1, r0, r1, geometry)
        if nimg == 1:
            dst = outm[n0][:, r0 * Wo: r1 * Wo]
            if G == 1:
                np.matmul(wm[0], cols, out=dst)
            else:
                np.matmul(wm, cols.reshape(G, Cg * KK, pb), out=dst.reshape(G, Og, pb))
        else:
            t = tmp[worker, :, :, :pb]
            np.matmul(wm, cols.reshape(G, Cg * KK, pb), out=t)
            outm[n0:n1] = t.reshape(Cout, nimg, P).transpose(1, 0, 2)

    _blas.run(blocks, block, workers)


# Partial sums of the weight gradient, added in this order: a number that
# depends on the problem only, never on the thread count.
_REDUCTION_CHUNKS = 4


def weight_grad(x, go, gw, geometry, groups: int) -> None:
    """``gw[o, c, t] = sum_{n, y} go[n, o, y] x~[n, c, y*s + t*d - p]`` (the weight gradient).

    ``go`` is ``(N, Cout, Do, Ho, Wo)`` C-contiguous; ``gw`` is ``(Cout, Cg,
    KD, KH, KW)`` C-contiguous, overwritten.  The blocks are cut into at most
    ``_REDUCTION_CHUNKS`` contiguous runs; each run's blocks are accumulated
    in order into its own partial sum (runs side by side on fastconv's
    threads), then the partial sums are added in order: the same bits at any
    thread count.
    """
    N, C = x.shape[:2]
    Cout = gw.shape[0]
    G = groups
    Cg = C // G
    Og = Cout // G
    in_dims, out_dims, k_dims, stride, dilation, pad_lo, border = geometry
    gom = go.reshape(N, Cout, -1)
    gwm = gw.reshape(G, Og, -1)
    blocks, KK, R, P = _plan_blocks(x, gw, geometry, groups)
    Wo = int(out_dims[2])
    width = max((n1 - n0) * (r1 - r0) * Wo for n0, n1, r0, r1 in blocks)
    nchunks = min(_REDUCTION_CHUNKS, len(blocks))
    chunks = [blocks[k * len(blocks) // nchunks:(k + 1) * len(blocks) // nchunks] for k in range(nchunks)]
    workers = max(1, min(_threads(), nchunks))
    work = np.empty((workers, C * KK * width), x.dtype)
    part = np.empty((workers,) + gwm.shape, x.dtype)
    sums = np.zeros((nchunks,) + gwm.shape, x.dtype)
    pointwise = _is_pointwise(geometry)

    def chunk(k, worker):
        for n0, n1, r0, r1 in chunks[k]:
            nimg = n1 - n0
            pb = nimg * (r1 - r0) * Wo
            if pointwise and nimg == 1:
                cols = x[n0].reshape(C, -1)[:, r0 * Wo: r1 * Wo]
            else:
                cols = work[worker, : C * KK * pb].reshape(C * KK, pb)
                gather(x, cols, n0, n1, r0, r1, geometry)
            if nimg == 1:
                g = gom[n0][:, r0 * Wo: r1 * Wo]
            else:
                g = np.ascontiguousarray(gom[n0:n1].transpose(1, 0, 2)).reshape(Cout, pb)
            np.matmul(g.reshape(G, Og, pb), cols.reshape(G, Cg * KK, pb).transpose(0, 2, 1), out=part[worker])
            sums[k] += part[worker]

    _blas.run(range(nchunks), chunk, workers)
    gwm[...] = sums[0]
    for k in range(1, nchunks):
        gwm += sums[k]


def warm_up() -> None:
    """Compile (or load from the cache) the gather and the scatter for float32 and float64."""
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    for dtype in (np.float32, np.float64):
        x = np.ones((1, 1, 1, 1, 3), dtype)
        x.flags.writeable = False
        cols = np.empty((2, 2), dtype)
        gather(x, cols, 0, 1, 0, 1, (i64(1, 1, 3), i64(1, 1, 2), i64(1, 1, 2), i64(1, 1, 1),
                                     i64(1, 1, 1), i64(0, 0, 0), i64(0, 0, 0)))
        out = np.zeros((1, 1, 1, 1, 4), dtype)
        scatter(np.ones((2, 3), dtype), out, 0, 0, 1, (i64(1, 1, 3), i64(1, 1, 4), i64(1, 1, 2),
                                                       i64(1, 1, 1), i64(1, 1, 1), i64(0, 0, 0)))

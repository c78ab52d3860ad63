"""Winograd engine: dense 3x3 stride-1 CNN layers in 2.25x or 4x fewer multiplications.

Winograd's minimal filtering algorithm F(m x m, 3x3) (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016) computes an m x m block
of outputs of a 3x3 cross-correlation from the (m + 2) x (m + 2) input tile
it reads::

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise)

with ``g`` the 3x3 kernel, ``d`` the tile and small constant matrices ``A``,
``B``, ``G``.  Across channels the elementwise products become ``(m + 2)^2``
independent matrix products, one per tile position ``xi``::

    M[xi] (O x T)  =  U[xi] (O x C)  @  V[xi] (C x T)

where ``U = G g G^T`` is the transformed weight (made on every call),
``V = B^T d B`` the transformed input tiles and ``T`` the number of tiles.
The products run at the BLAS's speed; the transforms are additions and
multiplications by small constants.  Two tile sizes:

* F(2x2, 3x3): 16 multiply-adds per channel and tile where direct summation
  needs 36 (2x2 outputs x 9 taps); ``A``, ``B``, ``G`` hold 0, +-1, +-1/2.
* F(4x4, 3x3): 36 multiply-adds where direct summation needs 144, and 2.25
  transformed values per output instead of 4 (so 1.8x less memory traffic);
  its matrices hold up to 8 and 1/24 (see the F(4x4, 3x3) section), so its
  rounding error is larger (see below).  Taken on large images, where its
  cost model (:func:`large_tiles`) says it pays; never on deep layers of
  small images, where its 2.25x larger transformed weight dominates.

Two layouts, chosen from the shape:

* Many tiles (large images), with either tile size: blocks of tile rows run
  side by side on fastconv's threads (as in :mod:`.channels`).  Each worker
  transforms a block of the NCHW input into its own workspace, multiplies
  with a single-threaded BLAS call and transforms the products into the
  output.
* Few tiles (deep layers on small images, where blocks of tiles would be
  too few to share out or too narrow for the BLAS), F(2x2, 3x3) only: the
  input is copied channels-last and every tile is transformed once (vectorised along the
  channels); then each task makes the whole product of one tile position
  (``M[xi] = U[xi] @ V[xi]^T``, all output channels: the widest product the
  shape allows, which runs fastest), and the products are transformed into
  the NCHW output in slices of output channels.

The F(2x2, 3x3) transforms of both layouts round in the same order; the
products are different BLAS calls, so the two layouts may differ in the last
bits.  Which layout and tile size run, and how the work is cut, depends on
the problem shape only, never on the thread count, and every output element is computed by one
worker in a fixed order: results are bitwise identical at any thread count.
Memory beyond input, output and weight (kept between calls, see
:mod:`._scratch`): in the many-tiles layout the transformed weight (16/9 of
the weight, 4x with F(4x4, 3x3)) and per worker two blocks of
:data:`WORKSPACE_BYTES` and 16 (F(4x4, 3x3): 72) rows of a block's tiles;
in the few-tiles layout a channels-last copy of the input, the transformed tiles
(at most :data:`SHARED_BYTES`), all products (as many bytes times
``Cout / C``) and the transformed weight, in two slices of output channels
made and used one after the other when it exceeds
:data:`_WEIGHT_SLICE_BYTES` (then 8/9 of the weight).

Rounding: the transforms combine all the inputs of a tile before the
products, so the error of an output is bounded by the magnitudes of its
whole tile, weighted by the absolute values of the transform matrices,
rather than by its 3x3 window (the tests check the bound).  F(4x4, 3x3)'s
larger entries make that bound, and the typical error, about 10x larger
than F(2x2, 3x3)'s: relative to the largest output, a few 1e-6 in float32
where F(2x2, 3x3) gives a few 1e-7 and direct summation about 1e-7
(``FASTCONV_WINOGRAD=2`` keeps the small tile, ``0`` switches the engine
off).  A NaN or an infinity in a tile would reach all its outputs, so the
output transforms report non-finite results and the caller then recomputes
the layer by direct summation, which propagates them as torch does.

Layout contract: ``x`` is ``(N, C, 1, H, W)`` C-contiguous in the compute
dtype, ``w`` ``(G * Og, Cg, 1, 3, 3)``, ``out`` ``(N, G * Og, 1, Ho, Wo)``
C-contiguous, overwritten.  Padding ``pad_lo`` (>= 0 per axis) is virtual:
tiles that read outside the input apply the border rule of :mod:`.borders`
while they are loaded (any rule but CONSTANT).
"""

from __future__ import annotations

import numpy as np

from .. import _config
from . import _blas, _jit, _scratch, borders
from .borders import ZERO

_map_index = _jit.serial(borders.map_index)
_index = _jit.index

# Bytes of transformed input and products per block (both in one worker's
# cache while its 16 products run).
WORKSPACE_BYTES = 1 << 20
# Tiles per block at least (a narrower product runs far below the BLAS's peak).
_MIN_TILES = 96
# Channels per group below which the products are too small to pay for the transforms.
_MIN_CHANNELS = 16
# The weight transform's cost per pair of channels, in multiply-adds of the products (see pays).
_WEIGHT_COST = 640
# Tiles a layer needs at least (of F(2x2, 3x3), all images): on fewer, the weight transform costs more
# than the channel-contracting engine's whole layer (measured; see pays).
_MIN_LAYER_TILES = 128
# Fewer tile blocks than this (and one group) take the few-tiles layout ...
_MIN_BLOCKS = 4
# ... when all its transformed tiles fit in this many bytes.
SHARED_BYTES = 8 << 20
# ... and makes its transformed weight in two slices of output channels when it has more bytes than this.
_WEIGHT_SLICE_BYTES = 1 << 20
# F(4x4, 3x3)'s weight transform per pair of channels, in the unit of _WEIGHT_COST: 36 values,
# each 1.4x as costly as one of F(2x2, 3x3)'s 16 (measured).
_WEIGHT_COST_LARGE = round(36 / 16 * 1.4 * _WEIGHT_COST)
# The many-tiles layout takes F(4x4, 3x3) when it costs at most this share of F(2x2, 3x3) (see large_tiles).
_LARGE_TILE_SHARE = 0.75


def applies(geometry, groups: int, in_channels: int, out_channels: int, batch: int) -> bool:
    """Whether a layer suits this engine: 3x3 2-D, stride and dilation 1, enough channels and tiles."""
    in_dims, out_dims, k_dims, stride, dilation, pad_lo, border = geometry
    return (
        int(in_dims[0]) == 1
        and int(out_dims[0]) == 1
        and int(pad_lo[0]) == 0
        and tuple(int(k) for k in k_dims) == (1, 3, 3)
        and all(int(s) == 1 for s in stride)
        and all(int(d) == 1 for d in dilation)
        and all(int(b) != borders.CONSTANT for b in border)
        and pays(groups, in_channels, out_channels, batch, (int(out_dims[1]), int(out_dims[2])))
    )


def pays(groups: int, in_channels: int, out_channels: int, batch: int, out_shape) -> bool:
    """Whether the engine beats direct summation on a 3x3 layer of this size (a cost model).

    Per pair of input and output channel, direct summation does ``9 P``
    multiply-adds for ``P`` outputs; this engine ``16 T`` for ``T`` tiles,
    plus the weight transform, whose memory traffic costs about as much as
    :data:`_WEIGHT_COST` multiply-adds (measured).  A layer also needs
    :data:`_MIN_CHANNELS` channels per group for the products to pay for the
    transforms, and :data:`_MIN_LAYER_TILES` tiles for them to pay for the
    weight transform: measured against the channel-contracting engine in
    float32 on 2 cores, batch 1 at 14x14 and 20x20 (49 and 100 tiles), batch
    2 at 14x14 (98) and batch 4 at 7x7 (64) were 1.1-1.4x faster there, and
    batch 8 at 7x7 (128), batch 4 at 14x14 (196) and every larger layer
    faster here.  Always False when ``FASTCONV_WINOGRAD=0`` switches the
    engine off.
    """
    Ho, Wo = out_shape
    P = batch * Ho * Wo
    T = batch * (-(-Ho // 2)) * (-(-Wo // 2))
    return (
        _config.WINOGRAD
        and in_channels // groups >= _MIN_CHANNELS
        and out_channels // groups >= _MIN_CHANNELS
        and T >= _MIN_LAYER_TILES
        and 9 * P >= 16 * T + _WEIGHT_COST
    )


def forward(x, w, out, geometry, groups: int) -> bool:
    """``out[n, o] = sum_{c, t} x~[n, c, .] w[o, c, t]`` for a layer :func:`applies` accepts.

    Returns False when some output is NaN or infinite; the caller then
    computes the layer by direct summation instead (see the module notes).
    """
    N, C = x.shape[:2]
    Cout = w.shape[0]
    G = groups
    Cg = C // G
    Og = Cout // G
    in_dims, out_dims, _, _, _, pad_lo, border = geometry
    x4 = x.reshape(N, C, int(in_dims[1]), int(in_dims[2]))
    out4 = out.reshape(N, Cout, int(out_dims[1]), int(out_dims[2]))
    w4 = w.reshape(Cout, Cg, 3, 3)
    Ho, Wo = out4.shape[2:]
    TH = -(-Ho // 2)
    TW = -(-Wo // 2)
    pads = (int(pad_lo[1]), int(pad_lo[2]), int(border[1]), int(border[2]))
    item = x.dtype.itemsize
    threads = _threads()
    blocks, rows = _blocks(N, TH, TW, 16 * (C + Cout) * item)
    if G == 1 and len(blocks) < _MIN_BLOCKS and 16 * C * N * TH * TW * item <= SHARED_BYTES:
        return _forward_few(x4, w4, out4, TH, TW, pads, threads)
    return _forward_blocks(x4, w4, out4, 4 if large_tiles(x4.shape, out4.shape, Cg) else 2, pads, G, threads)


def large_tiles(in_shape, out_shape, in_per_group: int) -> bool:
    """Whether the many-tiles layout takes F(4x4, 3x3) rather than F(2x2, 3x3) (a cost model).

    ``in_shape`` is ``(N, C, H, W)``, ``out_shape`` ``(N, Cout, Ho, Wo)``.
    Per pair of input and output channel, F(m x m, 3x3) costs ``(m + 2)^2``
    multiply-adds per tile in the products plus its weight transform
    (:data:`_WEIGHT_COST`, :data:`_WEIGHT_COST_LARGE`, in the same unit).
    The larger tile is taken when that is at most :data:`_LARGE_TILE_SHARE`
    of the smaller one's (on large images; not where a 4x4 tile would mostly
    cover padding or the weight transform would dominate, as on deep layers
    of small images), and when its transformed weight (4x the weight) is no
    larger than input and output together, which bounds the memory.  The
    transforms of the input and the output cost about the same per output
    for both.  Always False when ``FASTCONV_WINOGRAD=2`` keeps the engine to
    F(2x2, 3x3).
    """
    N, C, H, W = (int(n) for n in in_shape)
    Cout, Ho, Wo = (int(n) for n in out_shape[1:])
    t2 = N * (-(-Ho // 2)) * (-(-Wo // 2))
    t4 = N * (-(-Ho // 4)) * (-(-Wo // 4))
    return (_config.WINOGRAD_LARGE_TILES
            and 36 * t4 + _WEIGHT_COST_LARGE <= _LARGE_TILE_SHARE * (16 * t2 + _WEIGHT_COST)
            and 36 * Cout * in_per_group <= N * (C * H * W + Cout * Ho * Wo))


def _forward_blocks(x4, w4, out4, m, pads, G, threads) -> bool:
    """:func:`forward` in the many-tiles layout with F(m x m, 3x3), ``m`` 2 or 4."""
    N, C = x4.shape[:2]
    Cout, Cg = w4.shape[:2]
    Og = Cout // G
    Ho, Wo = out4.shape[2:]
    TH = -(-Ho // m)
    TW = -(-Wo // m)
    P = (m + 2) ** 2
    ph, pw, bh, bw = pads
    dtype = x4.dtype
    blocks, rows = _blocks(N, TH, TW, P * (C + Cout) * dtype.itemsize)
    width = rows * TW
    workers = max(1, min(threads, len(blocks)))
    if m == 2:
        weight, inputs, outputs, row_shape = transform_weight, transform_input, transform_output, (1, 2, TW + 1)
    else:
        weight, inputs, outputs, row_shape = transform_weight4, transform_input4, transform_output4, (36, width)
    U = _plane_view("winograd.U", 1, Cout * Cg, (Cout, Cg), dtype, P)[0]
    Vw = _flat_planes("winograd.V", workers, C * width, dtype, P)
    Mw = _flat_planes("winograd.M", workers, Cout * width, dtype, P)
    rows_w = _scratch.per_worker("winograd.rows", workers, (P, width), dtype)
    row_w = _scratch.per_worker("winograd.loaded", workers, row_shape, dtype)  # rows as loaded
    parts = min(workers, Cout)
    _blas.run(range(parts), lambda k, worker: weight(w4, U, k * Cout // parts, (k + 1) * Cout // parts, 0), parts)
    U = U.reshape(P, G, Og, Cg)

    def block(b, worker):
        q0, q1 = b
        tb = (q1 - q0) * TW
        V = Vw[worker]
        M = Mw[worker]
        inputs(x4, V, q0, q1, TH, TW, ph, pw, bh, bw, row_w[worker], rows_w[worker])
        np.matmul(U, V[:, :C * tb].reshape(P, G, Cg, tb), out=M[:, :Cout * tb].reshape(P, G, Og, tb))
        if not outputs(M, out4, q0, q1, TH, TW, rows_w[worker], 0, Cout):
            nonfinite.append(b)

    nonfinite = []
    _blas.run(blocks, block, workers)
    return not nonfinite


# --- weight -------------------------------------------------------------------------------------


@_jit.serial
def transform_weight(w, U, o_lo, o_hi, u_lo):
    """``U[xi, o - u_lo, c] = (G w[o, c] G^T)[xi]`` for output channels ``o_lo .. o_hi``.

    ``G`` is F(2x2, 3x3)'s ``[[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2],
    [0, 0, 1]]``; ``w`` is ``(O, Cg, 3, 3)``, ``U`` ``(16, >= o_hi - u_lo, Cg)``.
    """
    Cg = w.shape[1]
    for o in range(o_lo, o_hi):
        u = o - u_lo
        for c in range(Cg):
            # G g: rows 0 .. 3 of a 4 x 3 matrix (columns b = 0, 1, 2).
            r00 = w[o, c, 0, 0]
            r01 = w[o, c, 0, 1]
            r02 = w[o, c, 0, 2]
            r30 = w[o, c, 2, 0]
            r31 = w[o, c, 2, 1]
            r32 = w[o, c, 2, 2]
            r10 = 0.5 * (r00 + w[o, c, 1, 0] + r30)
            r11 = 0.5 * (r01 + w[o, c, 1, 1] + r31)
            r12 = 0.5 * (r02 + w[o, c, 1, 2] + r32)
            r20 = r10 - w[o, c, 1, 0]
            r21 = r11 - w[o, c, 1, 1]
            r22 = r12 - w[o, c, 1, 2]
            # ... times G^T along each row.
            _times_gt(U, 0, u, c, r00, r01, r02)
            _times_gt(U, 4, u, c, r10, r11, r12)
            _times_gt(U, 8, u, c, r20, r21, r22)
            _times_gt(U, 12, u, c, r30, r31, r32)


@_jit.inline
def _times_gt(U, xi, u, c, a0, a1, a2):
    """``U[xi .. xi + 3, u, c]`` = the row ``(a0, a1, a2)`` times ``G^T``."""
    U[xi, u, c] = a0
    U[xi + 1, u, c] = 0.5 * (a0 + a1 + a2)
    U[xi + 2, u, c] = 0.5 * (a0 - a1 + a2)
    U[xi + 3, u, c] = a2


# --- many tiles: NCHW blocks of tile rows --------------------------------------------------------


def _blocks(N: int, TH: int, TW: int, per_tile_bytes: int):
    """Runs ``[q0, q1)`` of tile rows, each about :data:`WORKSPACE_BYTES` of workspace."""
    rows = max(1, WORKSPACE_BYTES // max(per_tile_bytes * TW, 1), -(-_MIN_TILES // TW))
    total = N * TH
    # As many blocks as that gives, of equal size (the last one not smaller).
    rows = -(-total // -(-total // rows))
    return [(q0, min(q0 + rows, total)) for q0 in range(0, total, rows)], rows


@_jit.inline
def _at(x, n, c, i, j, W, bw):
    """``x[n, c, i, j]``, or the value the border rule gives off the row (0 for ZERO and CONSTANT)."""
    if j >= 0 and j < W:
        return x[n, c, i, j]
    if bw == ZERO:
        return 0
    m = _map_index(j, W, bw)
    return x[n, c, i, m] if m >= 0 else 0


@_jit.inline
def _load_row(x, n, c, i, buf, r, W, pw, bw, ntiles):
    """``buf[r, 0, k], buf[r, 1, k] = x[n, c, i, 2k - pw], x[n, c, i, 2k + 1 - pw]`` for ``k <= ntiles``."""
    # Interior k: 0 <= 2k - pw and 2k + 1 - pw <= W - 1.
    k_lo = min((pw + 1) // 2, ntiles + 1)
    k_hi = max(min((W - 2 + pw) // 2 + 1, ntiles + 1), k_lo)
    for k in range(k_lo):
        buf[r, 0, k] = _at(x, n, c, i, 2 * k - pw, W, bw)
        buf[r, 1, k] = _at(x, n, c, i, 2 * k + 1 - pw, W, bw)
    for k in range(k_lo, k_hi):
        buf[r, 0, _index(k)] = x[n, c, i, _index(2 * k - pw)]
        buf[r, 1, _index(k)] = x[n, c, i, _index(2 * k + 1 - pw)]
    for k in range(k_hi, ntiles + 1):
        buf[r, 0, k] = _at(x, n, c, i, 2 * k - pw, W, bw)
        buf[r, 1, k] = _at(x, n, c, i, 2 * k + 1 - pw, W, bw)


@_jit.serial
def transform_input(x, V, q0, q1, TH, TW, ph, pw, bh, bw, pairs, R):
    """``V[xi, c L + (q - q0) TW + k] = (B^T d B)[xi]`` for the tiles of tile rows ``q0 .. q1`` (``L`` tiles).

    Tile row ``q`` is ``(n, ty) = divmod(q, TH)``; tile ``(ty, k)`` reads
    input rows ``2 ty - ph ..`` and columns ``2 k - pw ..`` (four each).
    ``V`` is ``(16, >= C L)``.  Per channel, ``d B`` is first taken along each
    input row into ``R[4 r + j, tile]`` (``r`` the tile's row, ``j`` the
    column of ``d B``), then ``B^T`` combines the rows: every loop runs over
    whole rows of tiles, which vectorises.  A tile row's rows 0 and 1 are the
    rows 2 and 3 of the one above, copied rather than computed again.
    ``pairs`` is scratch of shape ``(1, 2, TW + 1)``, ``R`` of ``(16, >= L)``.
    """
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    L = (q1 - q0) * TW
    for c in range(C):
        for q in range(q0, q1):
            n = q // TH
            ty = q % TH
            off = (q - q0) * TW
            first = 0
            if q > q0 and ty > 0:
                for s in range(8):
                    for k in range(TW):
                        R[s, _index(off + k)] = R[8 + s, _index(off - TW + k)]
                first = 2
            for r in range(first, 4):
                i = 2 * ty + r - ph
                if i < 0 or i >= H:
                    i = _map_index(i, H, bh)
                if i < 0:
                    for s in range(4 * r, 4 * r + 4):
                        for k in range(TW):
                            R[s, _index(off + k)] = 0
                else:
                    # Even and odd columns of the row, then d B: columns 2k - pw .. 2k + 3 - pw.
                    # (Zero padding as a constant folds the border code away: 4x faster rows.)
                    if bw == ZERO:
                        _load_row(x, n, c, i, pairs, 0, W, pw, ZERO, TW)
                    else:
                        _load_row(x, n, c, i, pairs, 0, W, pw, bw, TW)
                    for k in range(TW):
                        e0 = pairs[0, 0, k]
                        o0 = pairs[0, 1, k]
                        e1 = pairs[0, 0, k + 1]
                        o1 = pairs[0, 1, k + 1]
                        R[4 * r, _index(off + k)] = e0 - e1
                        R[4 * r + 1, _index(off + k)] = o0 + e1
                        R[4 * r + 2, _index(off + k)] = e1 - o0
                        R[4 * r + 3, _index(off + k)] = o0 - o1
        # B^T down the columns: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3 of d B.
        base = c * L
        for j in range(4):
            for t in range(L):
                V[j, _index(base + t)] = R[j, t] - R[8 + j, t]
            for t in range(L):
                V[4 + j, _index(base + t)] = R[4 + j, t] + R[8 + j, t]
            for t in range(L):
                V[8 + j, _index(base + t)] = R[8 + j, t] - R[4 + j, t]
            for t in range(L):
                V[12 + j, _index(base + t)] = R[4 + j, t] - R[12 + j, t]


@_jit.serial
def transform_output(M, out, q0, q1, TH, TW, S, o_lo, o_hi):
    """``out[n, o, 2 ty + a, 2 k + b] = (A^T M[:, o L + tile] A)[a, b]`` for the tiles of tile rows ``q0 .. q1``.

    For output channels ``o_lo .. o_hi``.  ``M`` is ``(16, >= o_hi L)``;
    ``S`` scratch of shape ``(8, >= L)`` takes
    ``A^T`` down the columns for a whole row of tiles at a time.  Returns
    whether every output written is finite.
    """
    Ho = out.shape[2]
    Wo = out.shape[3]
    full = Wo // 2
    L = (q1 - q0) * TW
    # (y - y) is 0 for a finite y and NaN otherwise (an integer OR, which vectorises).
    bad = 0
    for o in range(o_lo, o_hi):
        b = o * L
        # A^T down the columns: S[j] = m0j + m1j + m2j, S[4 + j] = m1j - m2j - m3j ...
        for j in range(4):
            for t in range(L):
                S[j, t] = (M[j, _index(b + t)] + M[4 + j, _index(b + t)]) + M[8 + j, _index(b + t)]
            for t in range(L):
                S[4 + j, t] = (M[4 + j, _index(b + t)] - M[8 + j, _index(b + t)]) - M[12 + j, _index(b + t)]
        # ... then A along the rows, into the output.
        for q in range(q0, q1):
            n = q // TH
            y = 2 * (q % TH)
            base = (q - q0) * TW
            if y + 1 < Ho:
                for k in range(full):
                    t = _index(base + k)
                    s1 = S[1, t]
                    s2 = S[2, t]
                    t1 = S[5, t]
                    t2 = S[6, t]
                    p00 = (S[0, t] + s1) + s2
                    p01 = (s1 - s2) - S[3, t]
                    p10 = (S[4, t] + t1) + t2
                    p11 = (t1 - t2) - S[7, t]
                    out[n, o, y, _index(2 * k)] = p00
                    out[n, o, y, _index(2 * k + 1)] = p01
                    out[n, o, y + 1, _index(2 * k)] = p10
                    out[n, o, y + 1, _index(2 * k + 1)] = p11
                    bad |= ((p00 - p00) + (p01 - p01)) + ((p10 - p10) + (p11 - p11)) != 0
                if full < TW:
                    t = _index(base + full)
                    p00 = (S[0, t] + S[1, t]) + S[2, t]
                    p10 = (S[4, t] + S[5, t]) + S[6, t]
                    out[n, o, y, 2 * full] = p00
                    out[n, o, y + 1, 2 * full] = p10
                    bad |= (p00 - p00) + (p10 - p10) != 0
            else:
                for k in range(TW):
                    t = _index(base + k)
                    p00 = (S[0, t] + S[1, t]) + S[2, t]
                    out[n, o, y, _index(2 * k)] = p00
                    bad |= p00 - p00 != 0
                    if k < full:
                        p01 = (S[1, t] - S[2, t]) - S[3, t]
                        out[n, o, y, _index(2 * k + 1)] = p01
                        bad |= p01 - p01 != 0
    return bad == 0


# --- F(4x4, 3x3) in NCHW blocks of tile rows ----------------------------------------------------
#
# The larger tile computes a 4x4 block of outputs from a 6x6 input tile with
# 36 products: 4x fewer multiply-adds than direct summation (F(2x2, 3x3):
# 2.25x), and 36 / 16 = 2.25 transformed values per output where F(2x2,
# 3x3) makes 4, so the transforms also move 1.8x fewer bytes.  Its matrices
# (Lavin & Gray; interpolation points 0, +-1, +-2 and infinity)::
#
#   B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
#          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
#   G   = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6],
#          [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]
#   A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
#
# Multiples by 2, 4 and 8 are written as additions (exact in binary floating
# point), so that no integer literal promotes float32 data to float64.


@_jit.serial
def _twice(a):
    return a + a


@_jit.serial
def _bt6(d0, d1, d2, d3, d4, d5):
    """``B^T (d0, .., d5)`` of F(4x4, 3x3)."""
    e = d4 - d2
    f = _twice(d3 - d1)
    return ((_twice(_twice(d0 - d2)) - d2) + d4, (d4 + d3) - _twice(_twice(d1 + d2)),
            (d4 - d3) + _twice(_twice(d1 - d2)), e + f, e - f, (_twice(_twice(d1 - d3)) - d3) + d5)


@_jit.serial
def _at6(m0, m1, m2, m3, m4, m5):
    """``A^T (m0, .., m5)`` of F(4x4, 3x3)."""
    p = m1 + m2
    q = m1 - m2
    r = m3 + m4
    s = _twice(m3 - m4)
    return (p + r) + m0, q + s, p + _twice(_twice(r)), (q + _twice(_twice(s))) + m5


# Each loop below writes one row (LLVM vectorises a loop only when it can
# check at run time that its stores overlap none of its loads, and gives up
# beyond a few such checks: one loop writing six rows stays scalar).  These
# helpers and the 1-D transforms above are called, not inlined into Numba's
# IR: each then goes through Numba once, which took the cold compile of a
# layer on this tile from 11.5 s to 8.1 s (F(2x2, 3x3): 7.3 s) at the same
# speed; LLVM still inlines the 1-D transforms.


@_jit.serial
def _bt6_planes(src, s0, ss, soff, dst, d0, ds, doff, L):
    """``dst[d0 + i ds, doff + t] = (B^T (src[s0 + r ss, soff + t] for r < 6))[i]`` for ``t < L``."""
    r0 = _index(s0)
    r1 = _index(s0 + ss)
    r2 = _index(s0 + 2 * ss)
    r3 = _index(s0 + 3 * ss)
    r4 = _index(s0 + 4 * ss)
    r5 = _index(s0 + 5 * ss)
    for i in range(6):
        row = _index(d0 + i * ds)
        for t in range(L):
            a = _index(soff + t)
            dst[row, _index(doff + t)] = _bt6(src[r0, a], src[r1, a], src[r2, a], src[r3, a], src[r4, a],
                                            src[r5, a])[i]


@_jit.serial
def _at6_planes(src, s0, ss, soff, dst, d0, ds, doff, L):
    """``dst[d0 + i ds, doff + t] = (A^T (src[s0 + r ss, soff + t] for r < 6))[i]`` for ``t < L``, ``i < 4``."""
    r0 = _index(s0)
    r1 = _index(s0 + ss)
    r2 = _index(s0 + 2 * ss)
    r3 = _index(s0 + 3 * ss)
    r4 = _index(s0 + 4 * ss)
    r5 = _index(s0 + 5 * ss)
    for i in range(4):
        row = _index(d0 + i * ds)
        for t in range(L):
            a = _index(soff + t)
            dst[row, _index(doff + t)] = _at6(src[r0, a], src[r1, a], src[r2, a], src[r3, a], src[r4, a],
                                            src[r5, a])[i]


@_jit.inline
def _g6(g0, g1, g2):
    """``G (g0, g1, g2)`` of F(4x4, 3x3)."""
    e = g0 + g2
    f = g0 * (1 / 24) + g2 * (1 / 6)
    h = g1 * (1 / 12)
    return g0 * 0.25, (e + g1) * (-1 / 6), (e - g1) * (-1 / 6), f + h, f - h, g2


@_jit.inline
def _times_g6t(U, xi, u, c, g0, g1, g2):
    """``U[xi .. xi + 5, u, c]`` = the row ``(g0, g1, g2)`` times ``G^T``."""
    v0, v1, v2, v3, v4, v5 = _g6(g0, g1, g2)
    U[xi, u, c] = v0
    U[xi + 1, u, c] = v1
    U[xi + 2, u, c] = v2
    U[xi + 3, u, c] = v3
    U[xi + 4, u, c] = v4
    U[xi + 5, u, c] = v5


@_jit.serial
def transform_weight4(w, U, o_lo, o_hi, u_lo):
    """``U[xi, o - u_lo, c] = (G w[o, c] G^T)[xi]`` of F(4x4, 3x3) for output channels ``o_lo .. o_hi``.

    Computed in float64 and rounded once into ``U`` (``(36, >= o_hi - u_lo, Cg)``).
    """
    Cg = w.shape[1]
    for o in range(o_lo, o_hi):
        u = o - u_lo
        for c in range(Cg):
            # The three columns of G g, then each of its six rows times G^T.
            a = _g6(np.float64(w[o, c, 0, 0]), np.float64(w[o, c, 1, 0]), np.float64(w[o, c, 2, 0]))
            b = _g6(np.float64(w[o, c, 0, 1]), np.float64(w[o, c, 1, 1]), np.float64(w[o, c, 2, 1]))
            d = _g6(np.float64(w[o, c, 0, 2]), np.float64(w[o, c, 1, 2]), np.float64(w[o, c, 2, 2]))
            _times_g6t(U, 0, u, c, a[0], b[0], d[0])
            _times_g6t(U, 6, u, c, a[1], b[1], d[1])
            _times_g6t(U, 12, u, c, a[2], b[2], d[2])
            _times_g6t(U, 18, u, c, a[3], b[3], d[3])
            _times_g6t(U, 24, u, c, a[4], b[4], d[4])
            _times_g6t(U, 30, u, c, a[5], b[5], d[5])


@_jit.inline
def _load_row4(x, n, c, i, buf, b0, off, W, pw, bw, ntiles):
    """``buf[b0 + s, off + k] = x[n, c, i, 4k + s - pw]`` for ``s < 6``, ``k < ntiles``.

    Off the row the border rule gives the value.
    """
    # Interior k: 0 <= 4k - pw and 4k + 5 - pw <= W - 1.
    k_lo = min((pw + 3) // 4, ntiles)
    k_hi = max(min((W - 6 + pw) // 4 + 1, ntiles), k_lo)
    for k in range(k_lo):
        for s in range(6):
            buf[b0 + s, off + k] = _at(x, n, c, i, 4 * k + s - pw, W, bw)
    for s in range(6):
        row = _index(b0 + s)
        for k in range(k_lo, k_hi):
            buf[row, _index(off + k)] = x[n, c, i, _index(4 * k + s - pw)]
    for k in range(k_hi, ntiles):
        for s in range(6):
            buf[b0 + s, off + k] = _at(x, n, c, i, 4 * k + s - pw, W, bw)


@_jit.serial
def transform_input4(x, V, q0, q1, TH, TW, ph, pw, bh, bw, D, R):
    """:func:`transform_input` of F(4x4, 3x3): ``V[xi, c L + (q - q0) TW + k] = (B^T d B)[xi]``.

    Tile ``(ty, k)`` reads input rows ``4 ty - ph ..`` and columns
    ``4 k - pw ..`` (six each).  Per channel, all the tiles of the block are
    first copied into ``D[6 r + s, tile] = d[r, s]`` (the only loops as short
    as a row of tiles), then ``d B`` is taken for every tile into
    ``R[6 r + j, tile]`` and ``B^T`` combines its rows: both loops run over
    the block's ``L`` tiles, which vectorises well.  ``V`` is
    ``(36, >= C L)``, ``D`` and ``R`` scratch of shape ``(36, >= L)``.
    """
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    L = (q1 - q0) * TW
    for c in range(C):
        for q in range(q0, q1):
            n = q // TH
            ty = q % TH
            off = (q - q0) * TW
            for r in range(6):
                i = 4 * ty + r - ph
                if i < 0 or i >= H:
                    i = _map_index(i, H, bh)
                if i < 0:
                    for s in range(6 * r, 6 * r + 6):
                        for k in range(TW):
                            D[s, _index(off + k)] = 0
                elif bw == ZERO:
                    # (Zero padding as a constant folds the border code away.)
                    _load_row4(x, n, c, i, D, 6 * r, off, W, pw, ZERO, TW)
                else:
                    _load_row4(x, n, c, i, D, 6 * r, off, W, pw, bw, TW)
        # d B along each row of the tiles, then B^T down their columns.
        for r in range(6):
            _bt6_planes(D, 6 * r, 1, 0, R, 6 * r, 1, 0, L)
        for j in range(6):
            _bt6_planes(R, j, 6, 0, V, j, 6, c * L, L)


@_jit.serial
def transform_output4(M, out, q0, q1, TH, TW, S, o_lo, o_hi):
    """:func:`transform_output` of F(4x4, 3x3): ``out[n, o, 4 ty + a, 4 k + b] = (A^T M A)[a, b]``.

    ``M`` is ``(36, >= o_hi L)``; ``S`` scratch of shape ``(24, >= L)``
    takes ``A^T`` down the columns of all the block's tiles.  Returns
    whether every output written is finite.
    """
    Ho = out.shape[2]
    Wo = out.shape[3]
    full = Wo // 4
    L = (q1 - q0) * TW
    bad = 0
    for o in range(o_lo, o_hi):
        b = o * L
        for j in range(6):
            _at6_planes(M, j, 6, b, S, j, 6, 0, L)
        # ... then A along the rows, into the output.
        for q in range(q0, q1):
            n = q // TH
            y = 4 * (q % TH)
            base = (q - q0) * TW
            for a in range(min(4, Ho - y)):
                s = 6 * a
                for k in range(full):
                    t = _index(base + k)
                    p0, p1, p2, p3 = _at6(S[s, t], S[s + 1, t], S[s + 2, t], S[s + 3, t], S[s + 4, t], S[s + 5, t])
                    out[n, o, y + a, _index(4 * k)] = p0
                    out[n, o, y + a, _index(4 * k + 1)] = p1
                    out[n, o, y + a, _index(4 * k + 2)] = p2
                    out[n, o, y + a, _index(4 * k + 3)] = p3
                    bad |= ((p0 - p0) + (p1 - p1)) + ((p2 - p2) + (p3 - p3)) != 0
                if full < TW:
                    t = base + full
                    p = _at6(S[s, t], S[s + 1, t], S[s + 2, t], S[s + 3, t], S[s + 4, t], S[s + 5, t])
                    for e in range(Wo - 4 * full):
                        out[n, o, y + a, 4 * full + e] = p[e]
                        bad |= p[e] - p[e] != 0
    return bad == 0


# --- few tiles: channels-last ---------------------------------------------------------------------


def _forward_few(x4, w4, out4, TH, TW, pads, threads) -> bool:
    """:func:`forward` in the few-tiles layout (one group): every tile transformed once, one product per tile position."""
    N, C, H, W = x4.shape
    Cout = w4.shape[0]
    ph, pw, bh, bw = pads
    dtype = x4.dtype
    T = N * TH * TW
    xt = _scratch.empty("winograd.x", (N, H, W, C), dtype)
    V = _flat_planes("winograd.V", 1, T * C, dtype)[0]
    M = _flat_planes("winograd.M", 1, T * Cout, dtype)[0]
    # The transformed weight in slices of output channels, made and used one after the other, bounds the memory.
    slices = 1 if 16 * Cout * C * x4.itemsize <= _WEIGHT_SLICE_BYTES else 2
    step = -(-Cout // slices)
    U = _plane_view("winograd.U", 1, step * C, (step, C), dtype)[0]
    zero = np.zeros(C, dtype)
    parts = max(1, min(threads, N * H))
    x_last = x4.transpose(0, 2, 3, 1)
    _blas.run(range(parts), lambda k, worker: copy_rows(x_last, xt, k * N * H // parts, (k + 1) * N * H // parts),
              parts)
    parts = max(1, min(threads, T))
    # (V whole, not sliced at each part's first tile: a slice from column 0
    # is C-contiguous and the others are not, two compiled variants.)
    _blas.run(range(parts), lambda k, worker: transform_input_nhwc(
        xt, V, k * T // parts, (k + 1) * T // parts, TH, TW, ph, pw, bh, bw, zero), parts)
    for o0 in range(0, Cout, step):
        o1 = min(o0 + step, Cout)
        wparts = max(1, min(threads, o1 - o0))
        _blas.run(range(wparts), lambda k, worker: transform_weight(
            w4, U, o0 + k * (o1 - o0) // wparts, o0 + (k + 1) * (o1 - o0) // wparts, o0), wparts)
        # M[xi][o0:o1] (channels x T) = U[xi] (channels x C) @ V[xi]^T (C x T), one BLAS call per tile position.
        _blas.run(range(16), lambda xi, worker: np.matmul(
            U[xi, :o1 - o0], V[xi, :T * C].reshape(T, C).T, out=M[xi, :Cout * T].reshape(Cout, T)[o0:o1]),
            min(threads, 16))
    nonfinite = []
    S = _scratch.per_worker("winograd.rows", threads, (8, T), dtype)
    oparts = max(1, min(threads, Cout))

    def output(k, worker):
        if not transform_output(M, out4, 0, N * TH, TH, TW, S[worker], k * Cout // oparts, (k + 1) * Cout // oparts):
            nonfinite.append(k)

    _blas.run(range(oparts), output, oparts)
    return not nonfinite


@_jit.serial
def copy_rows(src, dst, r_lo, r_hi):
    """``dst[n, a] = src[n, a]`` for the rows ``r = n * A + a`` in ``r_lo .. r_hi`` (``dst`` C-contiguous).

    With ``src`` a transposed view this is the copy to channels-last and back.
    """
    A = dst.shape[1]
    for r in range(r_lo, r_hi):
        n = r // A
        a = r % A
        for b in range(dst.shape[2]):
            out = dst[n, a, b]
            for c in range(dst.shape[3]):
                out[c] = src[n, a, b, c]


@_jit.serial
def _pp(dst, a, b, c, d):
    """``dst = (a + b) + (c + d)`` elementwise."""
    for i in range(dst.shape[0]):
        dst[i] = (a[i] + b[i]) + (c[i] + d[i])


@_jit.serial
def _pm(dst, a, b, c, d):
    """``dst = (a - b) + (c - d)`` elementwise."""
    for i in range(dst.shape[0]):
        dst[i] = (a[i] - b[i]) + (c[i] - d[i])


@_jit.serial
def _mp(dst, a, b, c, d):
    """``dst = (a + b) - (c + d)`` elementwise."""
    for i in range(dst.shape[0]):
        dst[i] = (a[i] + b[i]) - (c[i] + d[i])


@_jit.serial
def _mm(dst, a, b, c, d):
    """``dst = (a - b) - (c - d)`` elementwise."""
    for i in range(dst.shape[0]):
        dst[i] = (a[i] - b[i]) - (c[i] - d[i])


@_jit.serial
def transform_input_nhwc(xt, V, t_lo, t_hi, TH, TW, ph, pw, bh, bw, zero):
    """``V[xi, t C + c] = (B^T d_t B)[xi]`` for tiles ``t_lo .. t_hi`` of a channels-last input."""
    H = xt.shape[1]
    W = xt.shape[2]
    C = xt.shape[3]
    per = TH * TW
    for t in range(t_lo, t_hi):
        n = t // per
        ty = (t % per) // TW
        tx = t % TW
        i0 = _map_index(2 * ty - ph, H, bh)
        i1 = _map_index(2 * ty + 1 - ph, H, bh)
        i2 = _map_index(2 * ty + 2 - ph, H, bh)
        i3 = _map_index(2 * ty + 3 - ph, H, bh)
        j0 = _map_index(2 * tx - pw, W, bw)
        j1 = _map_index(2 * tx + 1 - pw, W, bw)
        j2 = _map_index(2 * tx + 2 - pw, W, bw)
        j3 = _map_index(2 * tx + 3 - pw, W, bw)
        d00 = xt[n, i0, j0] if i0 >= 0 and j0 >= 0 else zero
        d01 = xt[n, i0, j1] if i0 >= 0 and j1 >= 0 else zero
        d02 = xt[n, i0, j2] if i0 >= 0 and j2 >= 0 else zero
        d03 = xt[n, i0, j3] if i0 >= 0 and j3 >= 0 else zero
        d10 = xt[n, i1, j0] if i1 >= 0 and j0 >= 0 else zero
        d11 = xt[n, i1, j1] if i1 >= 0 and j1 >= 0 else zero
        d12 = xt[n, i1, j2] if i1 >= 0 and j2 >= 0 else zero
        d13 = xt[n, i1, j3] if i1 >= 0 and j3 >= 0 else zero
        d20 = xt[n, i2, j0] if i2 >= 0 and j0 >= 0 else zero
        d21 = xt[n, i2, j1] if i2 >= 0 and j1 >= 0 else zero
        d22 = xt[n, i2, j2] if i2 >= 0 and j2 >= 0 else zero
        d23 = xt[n, i2, j3] if i2 >= 0 and j3 >= 0 else zero
        d30 = xt[n, i3, j0] if i3 >= 0 and j0 >= 0 else zero
        d31 = xt[n, i3, j1] if i3 >= 0 and j1 >= 0 else zero
        d32 = xt[n, i3, j2] if i3 >= 0 and j2 >= 0 else zero
        d33 = xt[n, i3, j3] if i3 >= 0 and j3 >= 0 else zero
        k0 = t * C
        k1 = k0 + C
        # V[4 i + j] = (B^T d B)[i, j].  Row i of B^T is x_p - x_q, x_p + x_q, x_p - x_q, x_p - x_q
        # for (p, q) = (0, 2), (1, 2), (2, 1), (1, 3); B applies the same to the columns.
        _mm(V[0, k0:k1], d00, d02, d20, d22)
        _mp(V[1, k0:k1], d01, d02, d21, d22)
        _mm(V[2, k0:k1], d02, d01, d22, d21)
        _mm(V[3, k0:k1], d01, d03, d21, d23)
        _pm(V[4, k0:k1], d10, d12, d20, d22)
        _pp(V[5, k0:k1], d11, d12, d21, d22)
        _pm(V[6, k0:k1], d12, d11, d22, d21)
        _pm(V[7, k0:k1], d11, d13, d21, d23)
        _mm(V[8, k0:k1], d20, d22, d10, d12)
        _mp(V[9, k0:k1], d21, d22, d11, d12)
        _mm(V[10, k0:k1], d22, d21, d12, d11)
        _mm(V[11, k0:k1], d21, d23, d11, d13)
        _mm(V[12, k0:k1], d10, d12, d30, d32)
        _mp(V[13, k0:k1], d11, d12, d31, d32)
        _mm(V[14, k0:k1], d12, d11, d32, d31)
        _mm(V[15, k0:k1], d11, d13, d31, d33)


# --- scratch --------------------------------------------------------------------------------------


def _planes(slot: str, workers: int, size: int, dtype, planes: int = 16) -> np.ndarray:
    """Scratch for ``workers`` x ``planes`` planes of ``size`` elements, apart by a stride that spreads them over the cache sets.

    The transforms read or write all 16 planes in one loop; planes a multiple
    of 4 KiB apart would fall into the same sets of the L1 cache (measured 3x
    slower at 56x56 with 64 channels).  A stride of a whole number of pages
    plus 320 bytes puts the 16 planes on 16 different sets.
    """
    item = np.dtype(dtype).itemsize
    stride = (-(-size * item // 4096) * 4096 + 320) // item
    return _scratch.empty(slot, (workers, planes * stride), dtype)


def _flat_planes(slot: str, workers: int, size: int, dtype, planes: int = 16) -> np.ndarray:
    """``(workers, planes, stride)`` C-contiguous scratch of planes of ``>= size`` elements (see :func:`_planes`)."""
    return _planes(slot, workers, size, dtype, planes).reshape(workers, planes, -1)


def _plane_view(slot: str, workers: int, size: int, shape, dtype, planes: int = 16) -> np.ndarray:
    """``(workers, planes) + shape`` scratch whose planes lie on different cache sets (see :func:`_planes`)."""
    flat = _planes(slot, workers, size, dtype, planes).reshape(workers, planes, -1)
    return flat[:, :, :size].reshape((workers, planes) + tuple(shape))


def _threads() -> int:
    from .._config import threads

    return threads()

"""Direct engine: the one primitive, computed tap by tap in Numba.

Every fastconv operation reduces to a *valid cross-correlation with stride and
dilation over a virtually padded input, batched over a leading axis*::

    out[b, y] = sum_t  x~[b, y * s + t * d - p_lo] * w[b, t]

where ``y`` and ``t`` are multi-indices over the spatial axes and ``x~`` is
``x`` extended beyond its edges by a border rule.  The border is *virtual*: no
padded copy of the input is ever made.  Instead each output row is split into

* an **interior** run of columns, where every tap reads inside the input row.
  It is computed by branch-free loops over contiguous output columns that LLVM
  vectorises, with up to nine taps fused into one pass so each output element
  is loaded and stored once per eight or nine multiply-adds.  The first pass
  of a row (nine taps, or three for an odd count below nine) *writes* its
  outputs from the row's start value instead of zeroing them and reading them
  back: a 3 x 3 kernel is one pass over the row, 25 taps are 9 + 8 + 8, 49
  taps 9 + 5 x 8, 3 taps one pass, 5 taps 3 + 2; and
* at most ``K - 1`` **border** columns on each side, where each tap's column
  index goes through the border rule.  They cost O(K) scalar work per row;
  in 2-D calls with enough rows they are computed down the rows instead, in
  loops LLVM vectorises too, from a transposed copy of the input columns
  they read (:func:`_edge_task`).

The windows in :data:`FUSED_WINDOWS` (3 x 3, 5 x 5, 7 x 7, 3 x 3 x 3) also
get a fused interior of their own, :func:`for_window`, which carries all the
taps of the window in one pass over the row (two output rows at a time for
the 2-D windows).

Rows (every spatial axis but the last) are mapped through the border rule once
per output row and kernel row, so a tap whose row falls outside the input is
skipped (zero border), folded into a constant (constant border) or redirected
to a mirrored / wrapped / clamped row.

Layout contract (enforced by :mod:`fastconv._execute`, never checked here):

* ``x``   ``(Bx, R, W)``  C-contiguous, ``Bx`` is 1 or ``B``; ``R`` is the product
  of the input's spatial dims but the last.
* ``w``   ``(Bw, KR, KW)`` C-contiguous, ``Bw`` is 1 or ``B``.
* ``out`` ``(B, Ro, Wo)``  C-contiguous, overwritten.
* ``in_dims``, ``out_dims``, ``k_dims``, ``stride``, ``dilation``, ``pad_lo``,
  ``border``: int64 arrays with one entry per spatial axis; sizes, strides and
  dilations are >= 1, ``pad_lo`` >= 0, ``border`` holds codes of
  :mod:`.borders`.

Each spatial axis has its own border rule, so an axis extended by wrapping can
sit beside one extended by mirroring: the extended input is
``x~[i] = x[m_0(i_0), ..., m_last(i_last)]`` with ``m_a`` the rule of axis
``a``.  An index outside a zero axis makes the tap 0; outside a constant axis
(and no zero axis) it makes the tap ``cval``.

Determinism: the parallel loop runs over (batch, output row, column block)
tasks; each output element is summed by exactly one task in a fixed tap order,
so results are bitwise identical at any thread count.

Compiling: the parallel kernel (:func:`_launch`) calls the task function
(:func:`_task`), and the task its large helpers (the tap passes, the paired
passes, the border runs and a window's fused interior), by address (see
:mod:`._jit`).  Each of them is compiled once, on its own, and only where a
call can reach it; linked into its callers instead, each would go through
LLVM again inside each of them.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
from numba import prange

from . import _jit, borders

from .borders import CONSTANT, ZERO

# Kernel rows at least this wide are computed two output rows at a time.
_PAIR_MIN_WIDTH = 4

# Border runs at least this long along a zero border go tap by tap
# (:func:`_border_run`); shorter ones, and other borders, column by column.
_BORDER_RUN_MIN = 32

# Largest table of mapped border-column taps (entries) a call builds.
_BORDER_TABLE_MAX = 1 << 16

# Tables of border columns :func:`columns` remembers (the most recent ones;
# at most 512 KiB each).
_COLUMN_TABLES_REMEMBERED = 16


# The border rule, inlined into the loops that map row and column indices.
_map_index = _jit.inline(borders.map_index)


# Fused tap passes over a run of contiguous output columns.  ``o`` and every
# ``x*`` are pre-sliced 1-D views, so indices start at 0 and are provably
# non-negative (no wraparound checks), and the loop body has no branches.
# Taps are added one after the other onto the running value, so the
# summation order is the same as in the scalar border code.


@_jit.inline
def _pass8(o, x0, x1, x2, x3, x4, x5, x6, x7, w0, w1, w2, w3, w4, w5, w6, w7, n):
    for j in range(n):
        acc = o[j]
        acc += w0 * x0[j]
        acc += w1 * x1[j]
        acc += w2 * x2[j]
        acc += w3 * x3[j]
        acc += w4 * x4[j]
        acc += w5 * x5[j]
        acc += w6 * x6[j]
        acc += w7 * x7[j]
        o[j] = acc


@_jit.inline
def _first9(o, init, x0, x1, x2, x3, x4, x5, x6, x7, x8, w0, w1, w2, w3, w4, w5, w6, w7, w8, n):
    """Overwrite ``o`` with ``init`` plus nine taps (a 3 x 3 kernel in one pass)."""
    for j in range(n):
        acc = init
        acc += w0 * x0[j]
        acc += w1 * x1[j]
        acc += w2 * x2[j]
        acc += w3 * x3[j]
        acc += w4 * x4[j]
        acc += w5 * x5[j]
        acc += w6 * x6[j]
        acc += w7 * x7[j]
        acc += w8 * x8[j]
        o[j] = acc


@_jit.inline
def _first3(o, init, x0, x1, x2, w0, w1, w2, n):
    """Overwrite ``o`` with ``init`` plus three taps."""
    for j in range(n):
        acc = init
        acc += w0 * x0[j]
        acc += w1 * x1[j]
        acc += w2 * x2[j]
        o[j] = acc


@_jit.inline
def _pass4(o, x0, x1, x2, x3, w0, w1, w2, w3, n):
    for j in range(n):
        acc = o[j]
        acc += w0 * x0[j]
        acc += w1 * x1[j]
        acc += w2 * x2[j]
        acc += w3 * x3[j]
        o[j] = acc


@_jit.inline
def _pass2(o, x0, x1, w0, w1, n):
    for j in range(n):
        acc = o[j]
        acc += w0 * x0[j]
        acc += w1 * x1[j]
        o[j] = acc


@_jit.inline
def _pass1(o, x0, w0, n):
    for j in range(n):
        o[j] += w0 * x0[j]


@_jit.inline
def _pass1_strided(o, x0, w0, s, n):
    for j in range(n):
        o[j] += w0 * x0[j * s]


# Paired passes: one input stream feeds two output rows (``oa`` with weights
# ``a*``, ``ob`` with ``b*``), halving the loads per multiply-add.  Each output
# still receives its taps one after the other in the same order.


@_jit.inline
def _pair8(oa, ob, x0, x1, x2, x3, x4, x5, x6, x7,
           a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, n):
    for j in range(n):
        p = oa[j]
        q = ob[j]
        v = x0[j]
        p += a0 * v
        q += b0 * v
        v = x1[j]
        p += a1 * v
        q += b1 * v
        v = x2[j]
        p += a2 * v
        q += b2 * v
        v = x3[j]
        p += a3 * v
        q += b3 * v
        v = x4[j]
        p += a4 * v
        q += b4 * v
        v = x5[j]
        p += a5 * v
        q += b5 * v
        v = x6[j]
        p += a6 * v
        q += b6 * v
        v = x7[j]
        p += a7 * v
        q += b7 * v
        oa[j] = p
        ob[j] = q


@_jit.inline
def _pair4(oa, ob, x0, x1, x2, x3, a0, a1, a2, a3, b0, b1, b2, b3, n):
    for j in range(n):
        p = oa[j]
        q = ob[j]
        v = x0[j]
        p += a0 * v
        q += b0 * v
        v = x1[j]
        p += a1 * v
        q += b1 * v
        v = x2[j]
        p += a2 * v
        q += b2 * v
        v = x3[j]
        p += a3 * v
        q += b3 * v
        oa[j] = p
        ob[j] = q


@_jit.inline
def _pair1(oa, ob, x0, a0, b0, n):
    for j in range(n):
        v = x0[j]
        oa[j] += a0 * v
        ob[j] += b0 * v


@_jit.serial
def _pair_interior(oa, ob, xb, tap_row, tap_off, tap_w, tap_w2, ntaps, start, n):
    """Add taps to two output runs at once (unit column stride only)."""
    t = 0
    while ntaps - t >= 8:
        r = tap_row
        o = tap_off
        _pair8(
            oa, ob,
            xb[r[t], start + o[t]:], xb[r[t + 1], start + o[t + 1]:],
            xb[r[t + 2], start + o[t + 2]:], xb[r[t + 3], start + o[t + 3]:],
            xb[r[t + 4], start + o[t + 4]:], xb[r[t + 5], start + o[t + 5]:],
            xb[r[t + 6], start + o[t + 6]:], xb[r[t + 7], start + o[t + 7]:],
            tap_w[t], tap_w[t + 1], tap_w[t + 2], tap_w[t + 3],
            tap_w[t + 4], tap_w[t + 5], tap_w[t + 6], tap_w[t + 7],
            tap_w2[t], tap_w2[t + 1], tap_w2[t + 2], tap_w2[t + 3],
            tap_w2[t + 4], tap_w2[t + 5], tap_w2[t + 6], tap_w2[t + 7],
            n,
        )
        t += 8
    if ntaps - t >= 4:
        r = tap_row
        o = tap_off
        _pair4(
            oa, ob,
            xb[r[t], start + o[t]:], xb[r[t + 1], start + o[t + 1]:],
            xb[r[t + 2], start + o[t + 2]:], xb[r[t + 3], start + o[t + 3]:],
            tap_w[t], tap_w[t + 1], tap_w[t + 2], tap_w[t + 3],
            tap_w2[t], tap_w2[t + 1], tap_w2[t + 2], tap_w2[t + 3],
            n,
        )
        t += 4
    while t < ntaps:
        _pair1(oa, ob, xb[tap_row[t], start + tap_off[t]:], tap_w[t], tap_w2[t], n)
        t += 1


@_jit.serial
def _interior(o, xb, tap_row, tap_off, tap_w, ntaps, start, s, n, first, init):
    """Add every tap to ``o[0:n]``, the output columns ``start .. start + n``.

    With ``first`` the run is overwritten, starting from ``init``: the first
    nine taps (or three, for an odd count below nine) go in one pass that
    writes without reading ``o`` (a 3 x 3 kernel is a single pass; 25 taps are
    9 + 8 + 8, 49 are 9 + 5 x 8, 7 are 3 + 4); with an even count below nine
    the run is filled with ``init`` first.
    """
    t = np.int64(0)
    if first:
        if s == 1 and ntaps >= 9:
            _first9(
                o,
                init,
                xb[tap_row[0], start + tap_off[0] :],
                xb[tap_row[1], start + tap_off[1] :],
                xb[tap_row[2], start + tap_off[2] :],
                xb[tap_row[3], start + tap_off[3] :],
                xb[tap_row[4], start + tap_off[4] :],
                xb[tap_row[5], start + tap_off[5] :],
                xb[tap_row[6], start + tap_off[6] :],
                xb[tap_row[7], start + tap_off[7] :],
                xb[tap_row[8], start + tap_off[8] :],
                tap_w[0],
                tap_w[1],
                tap_w[2],
                tap_w[3],
                tap_w[4],
                tap_w[5],
                tap_w[6],
                tap_w[7],
                tap_w[8],
                n,
            )
            t += 9
        elif s == 1 and ntaps >= 3 and ntaps % 2 == 1:
            _first3(
                o,
                init,
                xb[tap_row[0], start + tap_off[0] :],
                xb[tap_row[1], start + tap_off[1] :],
                xb[tap_row[2], start + tap_off[2] :],
                tap_w[0],
                tap_w[1],
                tap_w[2],
                n,
            )
            t += 3
        else:
            for j in range(n):
                o[j] = init
    if s == 1:
        while ntaps - t >= 8:
            b = start
            _pass8(
                o,
                xb[tap_row[t], b + tap_off[t] :],
                xb[tap_row[t + 1], b + tap_off[t + 1] :],
                xb[tap_row[t + 2], b + tap_off[t + 2] :],
                xb[tap_row[t + 3], b + tap_off[t + 3] :],
                xb[tap_row[t + 4], b + tap_off[t + 4] :],
                xb[tap_row[t + 5], b + tap_off[t + 5] :],
                xb[tap_row[t + 6], b + tap_off[t + 6] :],
                xb[tap_row[t + 7], b + tap_off[t + 7] :],
                tap_w[t],
                tap_w[t + 1],
                tap_w[t + 2],
                tap_w[t + 3],
                tap_w[t + 4],
                tap_w[t + 5],
                tap_w[t + 6],
                tap_w[t + 7],
                n,
            )
            t += 8
        if ntaps - t >= 4:
            b = start
            _pass4(
                o,
                xb[tap_row[t], b + tap_off[t] :],
                xb[tap_row[t + 1], b + tap_off[t + 1] :],
                xb[tap_row[t + 2], b + tap_off[t + 2] :],
                xb[tap_row[t + 3], b + tap_off[t + 3] :],
                tap_w[t],
                tap_w[t + 1],
                tap_w[t + 2],
                tap_w[t + 3],
                n,
            )
            t += 4
        if ntaps - t >= 2:
            _pass2(
                o,
                xb[tap_row[t], start + tap_off[t] :],
                xb[tap_row[t + 1], start + tap_off[t + 1] :],
                tap_w[t],
                tap_w[t + 1],
                n,
            )
            t += 2
        if ntaps - t == 1:
            _pass1(o, xb[tap_row[t], start + tap_off[t] :], tap_w[t], n)
    else:
        for t in range(ntaps):
            _pass1_strided(o, xb[tap_row[t], start * s + tap_off[t] :], tap_w[t], s, n)


@_jit.serial
def _map_column_taps(cols, j, KW, W, s, d, p, border):
    """``cols[c]``: the input column tap ``c`` of output column ``j`` reads through the border
    rule, -1 to skip the tap (zero border), -2 for ``cval`` (constant border).

    For calls without a table of border columns (:func:`columns`), which
    are rare: called by address, so that other calls do not compile it.
    """
    for c in range(KW):
        col = j * s + c * d - p
        if col < 0 or col >= W:
            if border == ZERO:
                col = -1
            elif border == CONSTANT:
                col = -2
            else:
                col = _map_index(col, W, border)
        cols[c] = col


@_jit.inline
def _border_column(orow, j, xb, wb, rows, KR, KW, cols, cval, init):
    """Compute output column ``j`` from its taps' columns ``cols`` (see :func:`_map_column_taps`)."""
    acc = init
    for kr in range(KR):
        r = rows[kr]
        if r < 0:
            continue
        for c in range(KW):
            col = cols[c]
            if col >= 0:
                acc += wb[kr, c] * xb[r, col]
            elif col == -2:
                acc += wb[kr, c] * cval
    orow[j] = acc


@_jit.serial
def _border_run(orow, ja, jb, xb, wb, rows, KR, KW, W, d, p, init):
    """Border columns ``ja .. jb`` of one output row, stride 1, zero border along the row.

    Tap by tap over the whole run, each tap over the columns whose input
    column lies inside the row (the others skip it): contiguous loops that
    LLVM vectorises, where :func:`_border_column` walks one column's taps in
    a scalar chain.  Every output gets the same terms in the same order, so
    the sums are bitwise those of :func:`_border_column`.  (Not for the
    constant border: LLVM would hoist the loop-invariant ``w * cval`` out of
    the loop, and the add would then not fuse with it into one FMA.)
    """
    o = orow[ja:jb]
    n = jb - ja
    for j in range(n):
        o[j] = init
    for kr in range(KR):
        r = rows[kr]
        if r < 0:
            continue
        for c in range(KW):
            wv = wb[kr, c]
            off = c * d - p  # output column J reads input column J + off
            lo = min(max(-off - ja, 0), n)
            hi = min(max(W - off - ja, lo), n)
            if hi > lo:
                inside = o[lo:hi]
                src = xb[r, ja + lo + off :]
                for j in range(hi - lo):
                    inside[j] += wv * src[j]


@_jit.serial
def _map_rows(ro, rows, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border, wb, cval, zero):
    """Input row of every kernel row for output row ``ro``; returns the row's start value.

    ``rows[kr]`` >= 0 is a row of the batch's input, -1 means the tap row is
    outside a zero border (skip it), -2 outside a constant border.  The
    start value, what every output of the row starts from, is the sum of
    the kernel rows on a constant border times ``cval``; it starts from +0
    (``zero``), so it is never -0.0.
    """
    last = in_dims.shape[0] - 1
    for kr in range(rows.shape[0]):
        rem_o = ro
        rem_k = kr
        flat = 0
        mult = 1
        state = 0
        for a in range(last - 1, -1, -1):
            yo = rem_o % out_dims[a]
            rem_o //= out_dims[a]
            tk = rem_k % k_dims[a]
            rem_k //= k_dims[a]
            n = in_dims[a]
            i = yo * stride[a] + tk * dilation[a] - pad_lo[a]
            if i < 0 or i >= n:
                if border[a] == ZERO:
                    state = -1
                elif border[a] == CONSTANT:
                    if state == 0:
                        state = -2
                else:
                    i = _map_index(i, n, border[a])
            flat += i * mult
            mult *= n
        rows[kr] = flat if state == 0 else state
    acc = zero
    KW = wb.shape[1]
    for kr in range(rows.shape[0]):
        if rows[kr] == -2:
            total = wb[kr, 0] * cval
            for c in range(1, KW):
                total += wb[kr, c] * cval
            acc += total
    return acc


@_jit.serial
def _collect_taps(rows, kr0, kr1, wb, d, p, tap_row, tap_off, tap_w):
    """Taps of kernel rows ``kr0 .. kr1`` that read an input row; returns their count."""
    n = 0
    for kr in range(kr0, kr1):
        if rows[kr] >= 0:
            for c in range(wb.shape[1]):
                tap_row[n] = rows[kr]
                tap_off[n] = c * d - p
                tap_w[n] = wb[kr, c]
                n += 1
    return n


@_jit.serial
def _rows_shifted(rows, rows2, KH):
    """True if output row B reads, for kernel row ``kr``, the row A reads for ``kr + 1``."""
    for kr in range(rows.shape[0]):
        if rows[kr] < 0 or rows2[kr] < 0:
            return False
        if kr % KH != KH - 1 and rows[kr + 1] != rows2[kr]:
            return False
    return True


@_jit.serial
def _task(x, w, out, t0, t1, npairs, nblk, col_block, in_dims, out_dims, k_dims, stride, dilation, pad_lo,
          border, cval, j_lo, j_hi, bcols, calls):
    """Tasks ``t0 .. t1`` of :func:`correlate`, one after the other.

    Task ``t`` is output columns ``c0 .. c1`` (block ``t % nblk`` of
    ``col_block`` columns) of the output row pair ``t // nblk`` (rows ``ro``
    and ``ro + 1`` of one batch item; one row at the end of an odd count).

    ``calls`` holds the addresses of the helpers this task calls (see
    :func:`_calls`): :func:`_interior`, then :func:`_pair_interior`,
    :func:`_border_run`, a window's fused interior (:func:`for_window`) and
    :func:`_map_column_taps`, each 0 where the call has none: the task then
    takes the path that does without (rows one at a time, borders column by
    column, the tap passes, the table of border columns).  With neither a
    table (``bcols`` empty) nor :func:`_map_column_taps`, the task leaves
    the border columns alone: the caller computes them
    (:func:`_edge_task`).  A fused interior returns False where it cannot
    compute a row (pair), which then goes tap pass by tap pass too.
    """
    KR = w.shape[1]
    KW = w.shape[2]
    W = x.shape[2]
    Ro = out.shape[1]
    Wo = out.shape[2]
    last = in_dims.shape[0] - 1
    s = stride[last]
    d = dilation[last]
    p = pad_lo[last]
    bcol = border[last]
    KH = k_dims[last - 1] if last >= 1 else 1
    operands = (x, w, out, cval)
    interior = _interior_at(calls[0], operands)
    pairs = calls[1] != 0 and s == 1 and KH >= 2 and KW >= _PAIR_MIN_WIDTH
    pair_interior = _pair_interior_at(calls[1], operands)
    runs = calls[2] != 0 and s == 1 and bcol == ZERO
    border_run = _border_run_at(calls[2], operands)
    fuses = calls[3] != 0 and s == 1 and d == 1
    fused = _fused_at(calls[3], operands)
    map_column_taps = _map_column_taps_at(calls[4], operands)
    # Scratch, once per chunk of tasks.
    rows = np.empty(KR, np.int64)
    rows2 = np.empty(KR, np.int64)
    tap_row = np.empty(KR * KW, np.int64)
    tap_off = np.empty(KR * KW, np.int64)
    tap_w = np.empty(KR * KW, w.dtype)
    tap_w2 = np.empty(KR * KW, w.dtype)
    zero = np.zeros(1, w.dtype)[0]
    mapped = bcols.shape[0] > 0
    # Neither a table nor the mapper: the caller computes the border columns
    # (:func:`_edge_task`).
    edges = mapped or calls[4] != 0
    for t in range(t0, t1):
        rp = t // nblk
        b = rp // npairs
        ro = 2 * (rp % npairs)
        pair = ro + 1 < Ro
        c0 = (t % nblk) * col_block
        c1 = min(c0 + col_block, Wo)
        xb = x[b if x.shape[0] > 1 else 0]
        wb = w[b if w.shape[0] > 1 else 0]

        init = _map_rows(ro, rows, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border, wb, cval, zero)
        init2 = init
        if pair:
            init2 = _map_rows(ro + 1, rows2, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border, wb, cval,
                              zero)

        ja = max(c0, j_lo)
        jb = min(c1, j_hi)
        n = jb - ja
        if n > 0 and fuses and fused(out[b, ro, ja:jb], out[b, ro + 1 if pair else ro, ja:jb], pair, xb,
                                     rows, rows2, ja - p, wb, init, init2, n):
            pass
        elif n > 0 and pair and pairs and _rows_shifted(rows, rows2, KH):
            oa = out[b, ro, ja:jb]
            ob = out[b, ro + 1, ja:jb]
            for j in range(n):
                ob[j] = init2
            for base in range(0, KR, KH):
                # Kernel row ``base`` reaches only row A, ``base + KH - 1`` only
                # row B, the rows between reach both (B one kernel row earlier).
                nt = _collect_taps(rows, base, base + 1, wb, d, p, tap_row, tap_off, tap_w)
                interior(oa, xb, tap_row, tap_off, tap_w, nt, ja, s, n, base == 0, init)
                nt = _collect_taps(rows, base + 1, base + KH, wb, d, p, tap_row, tap_off, tap_w)
                _collect_taps(rows2, base, base + KH - 1, wb, d, p, tap_row, tap_off, tap_w2)
                pair_interior(oa, ob, xb, tap_row, tap_off, tap_w, tap_w2, nt, ja, n)
                nt = _collect_taps(rows2, base + KH - 1, base + KH, wb, d, p, tap_row, tap_off, tap_w)
                interior(ob, xb, tap_row, tap_off, tap_w, nt, ja, s, n, False, init2)
        elif n > 0:
            nt = _collect_taps(rows, np.int64(0), KR, wb, d, p, tap_row, tap_off, tap_w)
            interior(out[b, ro, ja:jb], xb, tap_row, tap_off, tap_w, nt, ja, s, n, True, init)
            if pair:
                nt = _collect_taps(rows2, np.int64(0), KR, wb, d, p, tap_row, tap_off, tap_w)
                interior(out[b, ro + 1, ja:jb], xb, tap_row, tap_off, tap_w, nt, ja, s, n, True, init2)

        if not edges:
            continue
        # Border columns: their taps' columns come from the table
        # :func:`correlate` made (``bcols``), or, without one, are mapped
        # here into ``tap_off`` (free again once the interior is done).
        for r in range(2 if pair else 1):
            orow = out[b, ro + r]
            rr = rows2 if r == 1 else rows
            ii = init2 if r == 1 else init
            if runs and min(c1, j_lo) - c0 >= _BORDER_RUN_MIN:
                border_run(orow, c0, min(c1, j_lo), xb, wb, rr, KR, KW, W, d, p, ii)
                c_left = min(c1, j_lo)  # done
            else:
                c_left = c0
            if runs and c1 - max(c0, j_hi) >= _BORDER_RUN_MIN:
                border_run(orow, max(c0, j_hi), c1, xb, wb, rr, KR, KW, W, d, p, ii)
                c_right = c1
            else:
                c_right = max(c0, j_hi)
            # The columns left of the interior, then those right of it, in
            # one loop (its body is inlined once, not once per side).
            n_left = max(min(c1, j_lo) - c_left, 0)
            for k in range(n_left + max(c1 - c_right, 0)):
                j = c_left + k if k < n_left else c_right + k - n_left
                if mapped:
                    cols = bcols[j if k < n_left else j_lo + j - j_hi]
                else:
                    map_column_taps(tap_off, j, KW, W, s, d, p, bcol)
                    cols = tap_off
                _border_column(orow, j, xb, wb, rr, KR, KW, cols, cval, ii)


# The signatures of the task and of the helpers it calls by address, as
# functions of the types of :func:`correlate`'s operands ``(x, w, out,
# cval)``: exactly the types the caller passes, since a function called by
# address is never cast to.


def _types(x, w, out, cval):
    from numba.core import types

    return types, types.int64, types.int64[::1], out.dtype, out.copy(ndim=1), x.copy(ndim=2), w.copy(ndim=2)


def _task_signature(x, w, out, cval):
    types, i64, idx, value, _, _, _ = _types(x, w, out, cval)
    return types.none(x, w, out, i64, i64, i64, i64, i64, idx, idx, idx, idx, idx, idx, idx, cval,
                      i64, i64, types.Array(i64, 2, "C", readonly=True), types.UniTuple(i64, 5))


def _interior_signature(x, w, out, cval):
    types, i64, idx, value, o, xb, _ = _types(x, w, out, cval)
    return types.none(o, xb, idx, idx, value[::1], i64, i64, i64, i64, types.boolean, value)


def _pair_interior_signature(x, w, out, cval):
    types, i64, idx, value, o, xb, _ = _types(x, w, out, cval)
    return types.none(o, o, xb, idx, idx, value[::1], value[::1], i64, i64, i64)


def _border_run_signature(x, w, out, cval):
    types, i64, idx, value, o, xb, wb = _types(x, w, out, cval)
    return types.none(o, i64, i64, xb, wb, idx, i64, i64, i64, i64, i64, value)


def _fused_signature(x, w, out, cval):
    types, i64, idx, value, o, xb, wb = _types(x, w, out, cval)
    return types.boolean(o, o, types.boolean, xb, idx, idx, i64, wb, value, value, i64)


def _map_column_taps_signature(x, w, out, cval):
    types, i64, idx, _, _, _, _ = _types(x, w, out, cval)
    return types.none(idx, i64, i64, i64, i64, i64, i64, i64)


_task_at = _jit.function_at(_task_signature)
_interior_at = _jit.function_at(_interior_signature)
_pair_interior_at = _jit.function_at(_pair_interior_signature)
_border_run_at = _jit.function_at(_border_run_signature)
_fused_at = _jit.function_at(_fused_signature)
_map_column_taps_at = _jit.function_at(_map_column_taps_signature)


@functools.lru_cache(maxsize=_COLUMN_TABLES_REMEMBERED)
def columns(W: int, KW: int, Wo: int, s: int, d: int, p: int, border: int):
    """What every output row shares along its columns: ``(j_lo, j_hi, bcols, runs)``.

    Output columns ``j_lo .. j_hi`` are the interior: every tap's column
    ``j * s + c * d - p`` lies in ``[0, W)``.  ``bcols`` maps the taps of
    every border column (row ``b`` is output column ``b`` for ``b < j_lo``,
    and ``j_hi + b - j_lo`` after that) through the border rule: the input
    column, -1 to skip the tap (zero border), -2 for ``cval`` (constant
    border).  It is mapped once per call instead of once per tap and row;
    a very wide border (a kernel far longer than the input) gets an empty
    table, and the tasks map its columns as they go.  ``runs``: a border
    run is long enough for :func:`_border_run`.

    Remembered for the last :data:`_COLUMN_TABLES_REMEMBERED` geometries
    (the table is read-only, so calls share it): building a table of a few
    thousand entries costs 20-80 us, more than the whole sum of a small call.
    """
    reach = W - 1 - (KW - 1) * d + p
    j_hi = min(reach // s + 1 if reach >= 0 else 0, Wo)
    j_lo = min((p + s - 1) // s, j_hi)
    if (j_lo + Wo - j_hi) * KW <= _BORDER_TABLE_MAX:
        j = np.concatenate((np.arange(j_lo), np.arange(j_hi, Wo)))
        col = j[:, None] * s + np.arange(KW) * d - p
        outside = {ZERO: -1, CONSTANT: -2}.get(border)
        if outside is None:
            bcols = borders.map_indices(col, W, border)
        else:
            bcols = np.where((col >= 0) & (col < W), col, outside)
        bcols = np.ascontiguousarray(bcols, dtype=np.int64)
    else:
        bcols = np.empty((0, KW), np.int64)
    bcols.flags.writeable = False
    runs = s == 1 and border == ZERO and max(j_lo, Wo - j_hi) >= _BORDER_RUN_MIN
    return j_lo, j_hi, bcols, runs


def correlate(x, w, out, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border, cval, col_block, nchunks,
              window=None, cols=None):
    """Valid cross-correlation of ``x`` with ``w`` into ``out`` (see module docstring).

    ``window`` is the fused interior of the kernel's window
    (:func:`for_window`), or None for the tap passes alone; ``cols`` is
    :func:`columns` for this geometry, if the caller has it.  The geometry
    shared by every task is derived in Python; :func:`_launch` only hands
    out the tasks, so the parallel kernel stays small and quick to compile.
    """
    B, Ro, Wo = out.shape
    if cols is None:
        cols = columns(x.shape[2], w.shape[2], Wo, int(stride[-1]), int(dilation[-1]), int(pad_lo[-1]),
                       int(border[-1]))
    j_lo, j_hi, bcols, runs = cols
    edges = _edges_apart(x, w, out, in_dims, out_dims, stride, dilation, pad_lo, border, bcols, cval)
    table = bcols
    if edges is not None:  # the tasks leave the border columns to :func:`_edge_task`
        table, runs = _NO_TABLE, False
    # Helpers a task can reach (the others get address 0 and are never called).
    task, calls = _calls(x, w, out, cval, Ro > 1, runs, window, bcols.shape[0] == 0)

    # A task is a pair of consecutive output rows (or one, at the end) times a
    # block of columns.
    npairs = (Ro + 1) // 2
    nblk = (Wo + col_block - 1) // col_block
    ntasks = B * npairs * nblk
    # Contiguous chunks of tasks, a few per thread, so scratch is allocated
    # once per chunk.  Chunking changes nothing in the result: each task
    # computes its own output elements in a fixed order.
    nchunks = max(1, min(ntasks, nchunks))
    _jit.launch(_launch)(task, x, w, out, ntasks, nchunks, npairs, nblk, col_block, in_dims, out_dims, k_dims,
                         stride, dilation, pad_lo, border, cval, j_lo, j_hi, table, *calls)
    if edges is not None:
        xt, to_xt, y_lo, y_hi = edges
        count = B * to_xt.shape[0]
        edge_task = _jit.address_for(_edge_task, _task_signature, (xt, w, out, cval))
        _jit.launch(_launch)(edge_task, xt, w, out, count, max(1, min(count, nchunks)), y_lo, y_hi, 0, in_dims,
                             out_dims, k_dims, stride, dilation, pad_lo, border, cval, j_lo, j_hi, to_xt,
                             0, 0, 0, 0, 0)


# Border columns of a 2-D call go down the rows (:func:`_edge_task`)
# when the interior rows hold at least this many of their taps in all and
# are at least :data:`_EDGE_MIN_ROWS` long: the second launch and the
# transposed copy of the columns they read cost some 10-20 us, what about
# 30,000 taps cost column by column.
_EDGE_MIN_TAPS = 1 << 16
_EDGE_MIN_ROWS = 64

# A table without entries: the tasks then leave the border columns alone.
_NO_TABLE = np.empty((0, 0), np.int64)
_NO_TABLE.flags.writeable = False


def _edges_apart(x, w, out, in_dims, out_dims, stride, dilation, pad_lo, border, bcols, cval):
    """``(xt, to_xt, y_lo, y_hi)`` where :func:`_edge_task` pays for this call, else None.

    Column by column, each border output is a scalar chain of dependent
    multiply-adds (about 1.2 ns a tap): the 14 border columns of a 15 x 15
    kernel on a 2048 x 2048 image took a fifth of the call.  Down the rows
    they are contiguous loops that LLVM vectorises, over ``xt``, the input
    columns the border columns read, transposed (``to_xt`` maps ``bcols``'
    columns to rows of ``xt``), over the interior rows ``y_lo .. y_hi``
    (:func:`edge_rows`).  A tap on a constant border reads a last row
    of ``xt`` that holds ``cval``: a multiply-add of the loop-invariant
    ``w * cval`` would be hoisted out of the loop by LLVM, and the add would
    then no longer fuse with it into one FMA.  Only for 2-D calls of unit
    stride and real floating dtypes: there the sums are bitwise those the
    tasks would compute (the same taps in the same order, one FMA each).
    """
    if in_dims.shape[0] != 2 or bcols.shape[0] == 0:
        return None
    B, Ro, _ = out.shape
    rows = edge_rows(B, bcols.shape[0], w.shape[1], w.shape[2], int(in_dims[0]), Ro, tuple(int(s) for s in stride),
                     int(dilation[0]), int(pad_lo[0]), out.dtype)
    if rows is None:
        return None
    y_lo, y_hi = rows
    read, to_xt, fills = _edge_table(bcols)
    xt = np.empty((x.shape[0], read.size + fills, x.shape[1]), x.dtype)
    xt[:, :read.size] = np.take(x, read, axis=2).transpose(0, 2, 1)
    if fills:
        xt[:, read.size] = cval
    xt.flags.writeable = x.flags.writeable  # x's Numba type: no other compile of :func:`_launch`
    return xt, to_xt, y_lo, y_hi


def edge_rows(B: int, nb: int, KR: int, KW: int, H: int, Ro: int, stride: tuple, dr: int, pr: int, dtype):
    """``(y_lo, y_hi)`` where a 2-D call's ``nb`` border columns go down the rows (:func:`_edge_task`), else None.

    ``y_lo .. y_hi`` are the output rows whose every kernel row reads inside
    the ``H`` input rows.  Also the cost model's test (:mod:`fastconv._auto`).
    """
    if stride != (1, 1) or np.dtype(dtype).kind != "f":
        return None
    y_lo = min(pr, Ro)
    y_hi = max(min(H + pr - (KR - 1) * dr, Ro), y_lo)
    if y_hi - y_lo < _EDGE_MIN_ROWS or B * nb * (y_hi - y_lo) * KR * KW < _EDGE_MIN_TAPS:
        return None
    return y_lo, y_hi


_EDGE_TABLES: dict = {}


def _edge_table(bcols):
    """``(read, to_xt, fills)``: the input columns ``bcols`` reads, and ``bcols`` as rows of ``xt``.

    ``to_xt`` keeps -1 (a skipped tap) and maps -2 (``cval``) to row
    ``read.size``, the row of ``cval`` that ``xt`` then has (``fills``).
    Remembered per table (:func:`columns` returns the same read-only
    table for the same geometry).
    """
    found = _EDGE_TABLES.get(id(bcols))
    if found is None or found[0] is not bcols:
        read = np.unique(bcols[bcols >= 0])
        fills = bool((bcols == -2).any())
        to_xt = np.where(bcols >= 0, np.searchsorted(read, bcols), np.where(bcols == -2, read.size, -1))
        to_xt = to_xt.astype(np.int64)
        to_xt.flags.writeable = False
        if len(_EDGE_TABLES) >= _COLUMN_TABLES_REMEMBERED:
            _EDGE_TABLES.clear()
        found = _EDGE_TABLES[id(bcols)] = (bcols, read, to_xt, fills)
    return found[1:]


@_jit.serial
def _edge_task(xt, w, out, t0, t1, y_lo, y_hi, unused, in_dims, out_dims, k_dims, stride, dilation, pad_lo,
               border, cval, j_lo, j_hi, to_xt, calls):
    """Tasks ``t0 .. t1`` of the border columns of a 2-D call (see :func:`_edges_apart`).

    Task ``t`` is border column ``t % nb`` (of the ``nb`` rows of
    ``to_xt``) of batch item ``t // nb``.  Over the interior rows
    ``y_lo .. y_hi`` it goes tap by tap down the rows of ``xt``, over the
    other rows one output at a time; either way each output gets the taps
    :func:`_border_column` adds, in its order.  It has the signature of
    :func:`_task`, so :func:`_launch` runs it (``unused`` and ``calls``
    are not read): a parallel kernel of its own would cost about 2 s more
    to compile.
    """
    Ro = out.shape[1]
    KR = w.shape[1]
    KW = w.shape[2]
    nb = to_xt.shape[0]
    dr = dilation[0]
    pr = pad_lo[0]
    n = y_hi - y_lo
    zero = np.zeros(1, w.dtype)[0]
    col = np.empty(n, out.dtype)
    rows = np.empty(KR, np.int64)
    for t in range(t0, t1):
        b = t // nb
        k = t % nb
        j = k if k < j_lo else j_hi + k - j_lo
        xtb = xt[b if xt.shape[0] > 1 else 0]
        wb = w[b if w.shape[0] > 1 else 0]
        cols = to_xt[k]
        for i in range(n):
            col[i] = zero
        for kr in range(KR):
            for c in range(KW):
                u = cols[c]
                if u >= 0:
                    wv = wb[kr, c]
                    src = xtb[u, y_lo + kr * dr - pr:]
                    for i in range(n):
                        col[i] += wv * src[i]
        ob = out[b]
        for i in range(n):
            ob[y_lo + i, j] = col[i]
        # The other rows column by column, as the tasks do (``xtb.T[r, u]``
        # is input row ``r`` of the column ``u`` stands for, or ``cval``).
        for e in range(Ro - n):
            y = e if e < y_lo else y_hi + e - y_lo
            init = _map_rows(y, rows, in_dims, out_dims, k_dims, stride, dilation, pad_lo, border, wb, cval, zero)
            _border_column(ob[y], j, xtb.T, wb, rows, KR, KW, cols, cval, init)


@_jit.kernel
def _launch(task, x, w, out, ntasks, nchunks, npairs, nblk, col_block, in_dims, out_dims, k_dims, stride,
            dilation, pad_lo, border, cval, j_lo, j_hi, bcols, interior, pair_interior, border_run, fused,
            map_column_taps):
    """Run tasks ``0 .. ntasks`` of :func:`correlate` in ``nchunks`` contiguous chunks, in parallel."""
    calls = (interior, pair_interior, border_run, fused, map_column_taps)
    for chunk in prange(nchunks):
        run = _task_at(task, (x, w, out, cval))
        run(x, w, out, chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks, npairs, nblk, col_block,
            in_dims, out_dims, k_dims, stride, dilation, pad_lo, border, cval, j_lo, j_hi, bcols, calls)


_CALLS: dict = {}


def _calls(x, w, out, cval, pairs: bool, runs: bool, window, maps: bool):
    """The address of :func:`_task` and of the helpers it calls, compiled for these operands.

    The task calls its helpers by address, and :func:`_launch` calls the
    task by address (see :func:`._jit.address`): each compiles once, on its
    own, instead of once more inside every caller, and a call compiles only
    the helpers it can reach (a 1-D signal never pairs rows; a window
    without a fused interior, or a short kernel, needs none; only a
    border too wide for a table maps columns as it goes).  Remembered
    per operand types and helpers (one dictionary look-up a call).
    """
    operands = (x, w, out, cval)
    key = (pairs, runs, window, maps, *map(_jit.operand_key, operands))
    found = _CALLS.get(key)
    if found is None:
        def at(dispatcher, signature_of):
            return _jit.address_for(dispatcher, signature_of, operands)

        found = _CALLS[key] = (at(_task, _task_signature), (
            at(_interior, _interior_signature),
            at(_pair_interior, _pair_interior_signature) if pairs else 0,
            at(_border_run, _border_run_signature) if runs else 0,
            at(window, _fused_signature) if window is not None else 0,
            at(_map_column_taps, _map_column_taps_signature) if maps else 0,
        ))
    return found


# Fused interiors for small windows.  A window of ``KR`` kernel rows (the
# product of every kernel dim but the last) by ``KW`` columns gets a function
# whose loop over output columns carries every tap in straight-line code, so
# each output is written once per row instead of once per tap pass, and a
# pair of output rows whose kernel rows are one input row apart (2-D kernels)
# reads each input row once for both.  The taps are added in the same order
# as in the tap passes and the border code, so the fused kernels give
# bitwise the same results as the general one.  Rows that touch a border
# (any ``rows[r] < 0``) are left to the tap passes.
#
# The source is generated per window and compiled with this file as its file
# name, so Numba caches it on disk like any function of this module (and
# invalidates the cache when this file changes); a traceback inside a fused
# interior therefore shows line numbers of the generated source, not of this
# file.  3 x 3 x 3 windows take the two rows of a pair one after the other:
# their kernel rows come from three planes, so the rows of a pair are never
# one input row apart.

# Windows (KR, KW) that get a fused kernel: the common 2-D ones and 3 x 3 x 3.
# Each costs a compile of its own (once per machine and dtype), so the set is
# kept small; every other window goes tap pass by tap pass.
FUSED_WINDOWS = frozenset({(3, 3), (5, 5), (7, 7), (9, 3)})


def _fused_source(name: str, kr: int, kw: int) -> str:
    """Source of the fused interior for a ``kr`` x ``kw`` window (see above)."""
    taps = [(r, c) for r in range(kr) for c in range(kw)]
    out = [f"def {name}(oa, ob, pair, xb, rows, rows2, start, wb, init, init2, n):"]

    def emit(level, *text):
        out.extend("    " * level + t for t in text)

    def loop(level, sums):
        """Columns ``0 .. n`` of each ``(output, start value, input rows)`` in ``sums``."""
        emit(level, "for j in range(n):")
        emit(level + 1, *(f"s{k} = {init}" for k, (_, init, _) in enumerate(sums)))
        for r, c in taps:
            emit(level + 1, *(f"s{k} += w{r}_{c} * {xs[r]}[j + {c}]" for k, (_, _, xs) in enumerate(sums)))
        emit(level + 1, *(f"{o}[j] = s{k}" for k, (o, _, _) in enumerate(sums)))

    emit(1, "if " + " or ".join(f"rows[{r}] < 0" for r in range(kr)) + ":", "    return False")
    emit(1, *(f"w{r}_{c} = wb[{r}, {c}]" for r, c in taps))
    emit(1, *(f"x{r} = xb[rows[{r}], start:]" for r in range(kr)))
    # A pair whose second row reads the first's kernel rows one input row
    # down (a 2-D kernel away from the borders) reads kr + 1 input rows.
    shifted = [f"rows2[{r}] == rows[{r + 1}]" for r in range(kr - 1)] + [f"rows2[{kr - 1}] >= 0"]
    emit(1, "if pair and " + " and ".join(shifted) + ":")
    emit(2, f"x{kr} = xb[rows2[{kr - 1}], start:]")
    rows_a = [f"x{r}" for r in range(kr)]
    loop(2, [("oa", "init", rows_a), ("ob", "init2", [f"x{r + 1}" for r in range(kr)])])
    emit(2, "return True")
    # Otherwise each row of a pair goes alone (both, or neither: the tap
    # passes then take the pair), through one copy of the loop.
    emit(1, "if pair and (" + " or ".join(f"rows2[{r}] < 0" for r in range(kr)) + "):", "    return False")
    emit(1, "for k in range(2 if pair else 1):")
    emit(2, "o = oa if k == 0 else ob", "rr = rows if k == 0 else rows2", "start_value = init if k == 0 else init2")
    emit(2, *(f"x{r} = xb[rr[{r}], start:]" for r in range(kr)))
    loop(2, [("o", "start_value", rows_a)])
    emit(1, "return True")
    return "\n".join(out) + "\n"


_WINDOWS: dict = {}
_WINDOW_LOCK = threading.Lock()


def for_window(kr: int, kw: int):
    """The fused interior for a window of ``kr`` x ``kw`` taps, or None if the window has none.

    Built on first use (compiled once per machine, then loaded from the cache).
    """
    if (kr, kw) not in FUSED_WINDOWS:
        return None
    fused = _WINDOWS.get((kr, kw))
    if fused is not None:
        return fused
    with _WINDOW_LOCK:  # one build per window, also when threads call at once
        fused = _WINDOWS.get((kr, kw))
        if fused is not None:
            return fused
        name = f"_fused_{kr}x{kw}"
        scope = {"__name__": __name__}
        exec(compile(_fused_source(name, kr, kw), __file__, "exec"), scope)  # noqa: S102
        fused = _WINDOWS[(kr, kw)] = _jit.serial(scope[name])
    return fused


def warm_up() -> None:
    """Run the kernel once on a tiny 1-D float64 problem (compiles or loads it from the cache)."""
    one = np.ones((1, 1, 4))
    one.flags.writeable = False  # the executor hands engines read-only inputs
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    correlate(one, one[:, :, :2], np.empty((1, 1, 3)), i64(1, 4), i64(1, 3), i64(1, 2), i64(1, 1), i64(1, 1),
              i64(0, 0), i64(ZERO, ZERO), np.float64(0.0), 3, 1)

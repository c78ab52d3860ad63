"""Dask arrays: lazy, chunked, computed block by block by the same engines.

A Dask array given to a fastconv function gives a lazy Dask array back.  The
work is lowered as :func:`dask.array.map_overlap` would lower it, in fewer
tasks (two per chunk, see :func:`filter_same_shape`): every chunk is
extended by the reach of the kernel with its neighbours' samples (at the
edges of the whole array the border rule applies), filtered in memory by the
very function the caller asked for, and trimmed back.  So each output sample is
computed by the same engine, from the same samples, in the same order as in
memory: with the direct engine the result is bitwise the in-memory one.

* Shape-preserving operations (``fastconv.ndimage``, ``mode='same'``) run the
  in-memory function on each overlapped chunk.  At the array's edges the
  chunk's own border is the array's, so the engine's virtual border applies
  there unchanged; for ``wrap`` the chunks at the far end are the neighbours.
* ``'full'`` and ``'valid'`` change the shape: the input is padded lazily by
  the border rule (``dask.array.pad``), correlated chunk by chunk anchored at
  each output's first input sample, and sliced to the output shape.
* An axis whose kernel reach exceeds a chunk is rechunked, the thin chunk
  merged into its neighbour, so that every halo comes from the adjacent
  chunk alone; an axis held in one chunk needs no overlap at all.
* Inside a Dask task the engines run on one thread: Dask's workers already
  run one task per core, and nested thread pools would oversubscribe them.
  Compiled kernels load from Numba's on-disk cache in every worker process,
  so tasks never recompile them.

CNN layers (``fastconv.nn``) are lowered along the batch axis instead
(:func:`over_batch`): a layer reads every channel and pixel of a sample, and
the samples of a batch are independent, so each chunk of samples is one
task, computed by the in-memory layer.

Kernels (``in2`` / ``weights``) must fit in memory; a Dask kernel is
computed first.  This is the only module that imports Dask.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ._engines import _scratch


def is_dask(a) -> bool:
    module = type(a).__module__
    if not module.startswith("dask"):
        return False
    import array_api_compat

    return array_api_compat.is_dask_array(a)


def check_known_chunks(a, name: str, first_axis: int = 0) -> None:
    """Refuse a Dask array whose chunk sizes along ``first_axis`` and after are unknown (after boolean indexing)."""
    if any(math.isnan(n) for n in a.shape[first_axis:]):
        raise ValueError(
            f"{name} is a Dask array of unknown chunk sizes (shape {a.shape}); call "
            f"{name}.compute_chunk_sizes() first"
        )


def materialize(a, name: str) -> np.ndarray:
    """A small Dask argument (a kernel) computed to NumPy."""
    return np.asarray(a.compute()) if is_dask(a) else a


def single_thread(func):
    """``func`` run on one thread of fastconv's (Numba's), as inside a Dask task."""

    def run(*blocks):
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return func(*blocks)
        finally:
            numba.set_num_threads(before)

    return run


def _merged_chunks(chunks: tuple, depth: int) -> tuple:
    """``chunks`` with every chunk shorter than ``depth`` merged into a neighbour."""
    merged: list[int] = []
    for c in chunks:
        if merged and merged[-1] < depth:
            merged[-1] += c
        else:
            merged.append(c)
    if len(merged) > 1 and merged[-1] < depth:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)


def _fit_chunks(x, depth: dict):
    """Rechunk so every chunk along an overlapped axis holds at least its depth.

    A halo then always comes from the adjacent chunk alone.
    """
    new = {}
    for axis, d in depth.items():
        merged = _merged_chunks(x.chunks[axis], d)
        if merged != x.chunks[axis]:
            new[axis] = merged
    return x.rechunk(new) if new else x


def _edges(block: np.ndarray, depth: tuple) -> dict:
    """The samples of ``block`` its neighbours need, by side.

    Key ``s`` holds, along each axis ``a``, the first ``depth[a]`` samples
    (``s[a] == -1``), the last ones (``+1``) or all of them (``0``): what the
    neighbour at offset ``s`` reads.  Copies, so that a neighbour on another
    worker is sent the strips only.
    """
    sides = [(-1, 0, 1) if d else (0,) for d in depth]
    slabs = {}
    for s in itertools.product(*sides):
        if any(s):
            index = tuple(slice(None) if v == 0 else slice(0, d) if v < 0 else slice(n - d, n)
                          for v, d, n in zip(s, depth, block.shape))
            slabs[s] = np.ascontiguousarray(block[index])
    return slabs


def _filter_block(func, block: np.ndarray, offsets: list, halos: list, depth: tuple):
    """``func`` on ``block`` extended by its neighbours' strips, trimmed back to the block.

    ``halos[i]`` is the :func:`_edges` of the neighbour at ``offsets[i]``.
    Along each axis the extended block holds ``depth`` samples of the
    previous chunk, the chunk, and ``depth`` samples of the next one; sides
    without a neighbour (the array's own edges) are not extended, so the
    engine's border rule applies there, as in memory.

    The extended copy costs about a tenth of a 7x7 filter of the chunk.
    Filtering the chunk itself and recomputing only the bands along its
    sides from small boxes cost more: the bands along the last axis are a
    few samples wide, and narrow rows are the direct engine's slowest case.
    """
    nd = block.ndim
    lo, hi = [0] * nd, [0] * nd
    for o in offsets:
        for a, v in enumerate(o):
            if v:
                (lo if v < 0 else hi)[a] = depth[a]
    # The extended copy lives only during this task: it is kept per worker
    # thread (like the engines' scratch), so tasks do not fault in fresh pages
    # for it each time (a 2048 x 2048 float32 chunk, 7 x 7 kernel: 14 ms a
    # task with fresh memory, 10 ms with kept).
    ext = _scratch.empty("dask.extended", tuple(n + l + h for n, l, h in zip(block.shape, lo, hi)), block.dtype)

    def place(o):
        return tuple(slice(0, l) if v < 0 else slice(l, l + n) if v == 0 else slice(l + n, l + n + h)
                     for v, l, n, h in zip(o, lo, block.shape, hi))

    ext[place((0,) * nd)] = block
    for o, halo in zip(offsets, halos):
        ext[place(o)] = halo[tuple(-v for v in o)]
    out = single_thread(func)(ext)
    if np.may_share_memory(out, ext):  # never hand out the scratch itself
        out = out.copy()
    return out[place((0,) * nd)]


def filter_same_shape(x, func, reach, wrap_axes, dtype):
    """``func`` (NumPy in, NumPy out of the same shape) applied to a Dask ``x`` with overlap.

    ``reach[a]`` is the largest distance along axis ``a`` from an output
    sample to an input sample it reads; ``wrap_axes`` are the axes extended
    periodically.

    Two tasks per chunk, whatever the dimension: one cuts the strips its
    neighbours need (:func:`_edges`), one filters the chunk with its
    neighbours' strips and trims it (:func:`_filter_block`).
    ``map_overlap`` spends about ten tasks per chunk on the same (a slice per
    neighbour, a concatenation, a trim), and on a distributed cluster every
    task costs about 1.7 ms on a 2-core machine, a fifth of the 7x7 filter of
    a 2048x2048 chunk.
    """
    from dask.array.core import Array
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    meta = np.empty((0,) * x.ndim, dtype)
    depth = {a: int(r) for a, r in enumerate(reach) if r}
    x = _fit_chunks(x, depth)
    depth = tuple(depth.get(a, 0) if len(x.chunks[a]) > 1 else 0 for a in range(x.ndim))
    if not any(depth):
        return x.map_blocks(single_thread(func), dtype=dtype, meta=meta)

    token = tokenize(x, func, depth, sorted(wrap_axes), np.dtype(dtype).str)
    halo_name, out_name = f"fastconv-halo-{token}", f"fastconv-filter-{token}"
    grid = x.numblocks
    halo_tasks = {(halo_name, *i): (_edges, (x.name, *i), depth) for i in np.ndindex(*grid)}
    sides = [(-1, 0, 1) if d else (0,) for d in depth]
    out_tasks = {}
    for i in np.ndindex(*grid):
        offsets, halos = [], []
        for o in itertools.product(*sides):
            j = [b + v for b, v in zip(i, o)]
            if not any(o) or any(not 0 <= b < n and a not in wrap_axes for a, (b, n) in enumerate(zip(j, grid))):
                continue
            offsets.append(o)
            halos.append((halo_name, *(b % n for b, n in zip(j, grid))))
        out_tasks[(out_name, *i)] = (_filter_block, func, (x.name, *i), offsets, halos, depth)
    graph = HighLevelGraph.from_collections(halo_name, halo_tasks, dependencies=[x])
    layers = dict(graph.layers)
    layers[out_name] = out_tasks
    dependencies = dict(graph.dependencies)
    dependencies[out_name] = {halo_name, x.name}
    return Array(HighLevelGraph(layers, dependencies), out_name, x.chunks, meta=meta)


_PAD_MODES = {"zero": "constant", "constant": "constant", "symmetric": "symmetric", "reflect": "reflect",
              "edge": "edge", "wrap": "wrap"}


def _pad_in_one_chunk(x, axis: int, width: tuple, mode: str):
    """``x`` padded along ``axis`` by ``numpy.pad`` (any width), that axis in one chunk."""
    x = x.rechunk({axis: -1})
    chunks = list(x.chunks)
    chunks[axis] = (x.shape[axis] + width[0] + width[1],)
    pad = [(0, 0)] * x.ndim
    pad[axis] = width
    return x.map_blocks(np.pad, pad_width=pad, mode=mode, chunks=tuple(chunks), dtype=x.dtype)


def _padded(x, axes, kernel_shape, pad_lo, out_shape, border, cval, dtype):
    """:func:`correlate_padded`'s input padded and rechunked, and the reach per axis."""
    import dask.array as da

    nd = x.ndim
    widths = [(0, 0)] * nd
    for a, k, p, o in zip(axes, kernel_shape, pad_lo, out_shape):
        hi = o + k - 1 - x.shape[a] - p
        widths[a] = (p, max(hi, 0))
    if any(w != (0, 0) for w in widths):
        mode = _PAD_MODES[border]
        if mode == "constant":
            fill = cval if border == "constant" and cval != 0 else 0
            if fill != 0 and x.dtype != np.dtype(dtype):
                # The fill value is one of the result's dtype (2 for bool
                # input, a complex value for real input): pad in that dtype.
                x = x.astype(dtype)
            x = da.pad(x, widths, mode="constant", constant_values=fill)
        else:
            # ``da.pad`` extends by the samples next to each edge only: a pad
            # wider than the axis (a kernel longer than the input) would come
            # out wrong, so such an axis is padded by NumPy, in one chunk.
            for a in range(nd):
                if max(widths[a]) > x.shape[a] - (mode == "reflect"):
                    x = _pad_in_one_chunk(x, a, widths[a], mode)
                    widths[a] = (0, 0)
            if any(w != (0, 0) for w in widths):
                x = da.pad(x, widths, mode=mode)
    # ``da.pad`` adds the padding as chunks of their own, thinner than the
    # reach.  A regular rechunk to the largest chunk puts the output's chunk
    # boundaries where the input's are in 'same' mode (a thin remainder, if
    # any, is then merged by filter_same_shape).
    regular = {}
    for a, k in zip(axes, kernel_shape):
        chunks = x.chunks[a]
        if len(chunks) > 1 and min(chunks) < k - 1:
            regular[a] = min(max(k - 1, max(chunks)), x.shape[a])
    if regular:
        x = x.rechunk(regular)
    reach = [0] * nd
    for a, k in zip(axes, kernel_shape):
        reach[a] = k - 1
    return x, reach


def first_block(x, axes, kernel_shape, pad_lo, out_shape, border, cval, dtype):
    """The block the first task of :func:`correlate_padded` correlates (a lazy slice of ``x``).

    The first chunk of the padded input, extended at its far side by the
    kernel's reach where a neighbour follows (see :func:`filter_same_shape`).
    """
    x, reach = _padded(x, axes, kernel_shape, pad_lo, out_shape, border, cval, dtype)
    x = _fit_chunks(x, {a: int(r) for a, r in enumerate(reach) if r})
    extent = [c[0] + (r if len(c) > 1 else 0) for c, r in zip(x.chunks, reach)]
    return x[tuple(slice(0, e) for e in extent)]


def correlate_padded(x, anchored, axes, kernel_shape, pad_lo, out_shape, border, cval, dtype):
    """A valid correlation of ``x`` padded by ``pad_lo`` (and up to ``out_shape``) by ``border``.

    ``anchored(block)`` must return, for a NumPy block, the correlation whose
    output ``y`` reads block samples ``y .. y + K - 1`` along each axis in
    ``axes`` (zero beyond the block), of the block's shape.
    """
    x, reach = _padded(x, axes, kernel_shape, pad_lo, out_shape, border, cval, dtype)
    z = filter_same_shape(x, anchored, reach, (), dtype)
    index = [slice(None)] * x.ndim
    for a, o in zip(axes, out_shape):
        index[a] = slice(0, o)
    return z[tuple(index)]


def over_batch(func, arrays, probe, *, total=False):
    """``func(*blocks)`` over Dask ``arrays``, one task per chunk of their first (batch) axis.

    Every other axis is gathered into one chunk, and the arrays' batch
    chunks are aligned with those of the most finely chunked one.  ``probe`` is ``func`` on
    an empty batch: it gives the result's trailing shape and dtype (and has
    validated the arguments).  With ``total`` each task returns one array of
    ``probe``'s shape (a weight gradient's share of the batch) and the result
    is their sum, taken by Dask in a fixed order.  Otherwise the result has
    the batch chunks of the most finely chunked array.
    """
    import dask
    import dask.array as da

    # the batch chunks of the most finely chunked array (a NumPy array beside
    # a Dask one arrives as a single chunk)
    batch = max((a.chunks[0] for a in arrays), key=len)
    aligned = [a.rechunk((batch,) + tuple((n,) for n in a.shape[1:])) for a in arrays]
    run = single_thread(func)
    meta = np.empty((0,) * probe.ndim, probe.dtype)
    if not total:
        chunks = (batch,) + tuple((n,) for n in probe.shape[1:])
        return da.map_blocks(run, *aligned, chunks=chunks, dtype=probe.dtype, meta=meta)
    blocks = zip(*(a.to_delayed().ravel() for a in aligned))
    parts = [da.from_delayed(dask.delayed(run)(*b), probe.shape, dtype=probe.dtype, meta=meta) for b in blocks]
    # float16 partial sums add up in float32, as the in-memory engines sum
    total_dtype = np.promote_types(probe.dtype, np.float32)
    return da.stack(parts).sum(axis=0, dtype=total_dtype).astype(probe.dtype)

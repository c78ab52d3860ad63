"""Dask arrays: lazy, chunked, computed block by block by the same engines.

A Dask array given to a fastconv function gives a lazy Dask array back.  The
work is lowered to :func:`dask.array.map_overlap`: every chunk is extended by
the reach of the kernel with its neighbours' samples (and, at the edges of
the whole array, by the border rule), filtered in memory by the very
function the caller asked for, and trimmed back.  So each output sample is
computed by the same engine, from the same samples, in the same order as in
memory: with the direct engine the result is bitwise the in-memory one.

* Shape-preserving operations (``fastconv.ndimage``, ``mode='same'``) run the
  in-memory function on each overlapped chunk.  At the array's edges the
  chunk's own border is the array's, so the engine's virtual border applies
  there unchanged; for ``wrap`` Dask supplies the periodic neighbours.
* ``'full'`` and ``'valid'`` change the shape: the input is padded lazily by
  the border rule (``dask.array.pad``), correlated chunk by chunk anchored at
  each output's first input sample, and sliced to the output shape.
* An axis whose kernel reach exceeds its chunks is rechunked so that every
  chunk holds the reach (Dask needs that for the overlap); an axis held in
  one chunk needs no overlap at all.
* Inside a Dask task the engines run on one thread: Dask's workers already
  run one task per core, and nested thread pools would oversubscribe them.
  Compiled kernels load from Numba's on-disk cache in every worker process,
  so tasks never recompile them.

Kernels (``in2`` / ``weights``) must fit in memory; a Dask kernel is
computed first.  This is the only module that imports Dask.
"""

from __future__ import annotations

import numpy as np


def is_dask(a) -> bool:
    module = type(a).__module__
    if not module.startswith("dask"):
        return False
    import array_api_compat

    return array_api_compat.is_dask_array(a)


def materialize(a, name: str) -> np.ndarray:
    """A small Dask argument (a kernel) computed to NumPy."""
    return np.asarray(a.compute()) if is_dask(a) else a


def _single_thread(func):
    def run(block):
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return func(block)
        finally:
            numba.set_num_threads(before)

    return run


def _fit_chunks(x, depth: dict):
    """Rechunk so every chunk along an overlapped axis holds at least its depth."""
    new = {}
    for axis, d in depth.items():
        chunks = x.chunks[axis]
        if d and len(chunks) > 1 and min(chunks) < d:
            n = x.shape[axis]
            size = max(d, max(chunks))
            new[axis] = n if size >= n else size
    return x.rechunk(new) if new else x


def filter_same_shape(x, func, reach, wrap_axes, dtype):
    """``func`` (NumPy in, NumPy out of the same shape) applied to a Dask ``x`` with overlap.

    ``reach[a]`` is the largest distance along axis ``a`` from an output
    sample to an input sample it reads; ``wrap_axes`` are the axes extended
    periodically.
    """
    depth = {a: int(r) for a, r in enumerate(reach) if r}
    x = _fit_chunks(x, depth)
    depth = {a: (d if len(x.chunks[a]) > 1 else 0) for a, d in depth.items()}
    depth = {a: d for a, d in depth.items() if d}
    if not depth:
        return x.map_blocks(_single_thread(func), dtype=dtype, meta=np.empty((0,) * x.ndim, dtype))
    boundary = {a: ("periodic" if a in wrap_axes else "none") for a in depth}
    return x.map_overlap(
        _single_thread(func), depth=depth, boundary=boundary, trim=True, dtype=dtype,
        meta=np.empty((0,) * x.ndim, dtype),
    )


_PAD_MODES = {"zero": "constant", "constant": "constant", "symmetric": "symmetric", "reflect": "reflect",
              "edge": "edge", "wrap": "wrap"}


def correlate_padded(x, anchored, axes, kernel_shape, pad_lo, out_shape, border, cval, dtype):
    """A valid correlation of ``x`` padded by ``pad_lo`` (and up to ``out_shape``) by ``border``.

    ``anchored(block)`` must return, for a NumPy block, the correlation whose
    output ``y`` reads block samples ``y .. y + K - 1`` along each axis in
    ``axes`` (zero beyond the block), of the block's shape.
    """
    import dask.array as da

    nd = x.ndim
    widths = [(0, 0)] * nd
    for a, k, p, o in zip(axes, kernel_shape, pad_lo, out_shape):
        hi = o + k - 1 - x.shape[a] - p
        widths[a] = (p, max(hi, 0))
    if any(w != (0, 0) for w in widths):
        mode = _PAD_MODES[border]
        if mode == "constant":
            x = da.pad(x, widths, mode="constant", constant_values=cval if border == "constant" else 0)
        else:
            x = da.pad(x, widths, mode=mode)
    reach = [0] * nd
    for a, k in zip(axes, kernel_shape):
        reach[a] = k - 1
    z = filter_same_shape(x, anchored, reach, (), dtype)
    index = [slice(None)] * nd
    for a, o in zip(axes, out_shape):
        index[a] = slice(0, o)
    return z[tuple(index)]

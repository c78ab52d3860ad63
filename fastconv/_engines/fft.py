"""FFT and block-FFT (overlap) engines.

Both engines compute the plan's primitive restricted to what an FFT can do
cheaply: a *valid cross-correlation over a zero-padded input*, stride 1,
dilation 1, batched over a leading axis::

    out[b, y] = sum_t  x~[b, y + t - p_lo] * w[b, t]       (x~ = x, zero outside)

``fft``
    One transform of the whole (virtually padded) input per batch entry.
    Per axis the transform length ``M`` is the smallest fast length (only
    factors 2, 3, 5) for which the circular correlation does not alias into
    the outputs asked for: ``M >= max(n + k - 1 - s, s + o)`` with
    ``s = k - 1 - p_lo``, so ``'valid'`` needs only ``M >= n`` and ``'same'``
    ``M >= n + k // 2``, less than the ``n + k - 1`` of a full convolution.

``oa`` (block convolution)
    The output is cut into tiles of ``L`` samples along every convolved axis
    and each tile is computed from its own input window of ``M = L + k - 1``
    samples (*overlap-save*: the circular correlation of the window with the
    kernel is exact on its first ``L`` outputs).  This costs exactly what
    overlap-add costs, but every output tile is written by one task only: no
    two threads ever add into the same samples, there is no serial pass that
    sums overlapping tails, and only the outputs of the requested mode are
    computed.  ``M`` comes from a cost model (:func:`block_length`,
    :func:`block_shape`); in 1-D the tiles are processed in groups of at
    least 8 (so that pocketfft fills its SIMD lanes) and about 1 MiB of
    samples, one group per task, so peak memory is the
    output plus a few groups per thread, never a transform of the full
    padded size.  In N-D a task is a run of up to 8 tiles along the last
    axis, transformed in one call.

Choice of FFT implementation
----------------------------
Measured on a 2-core x86-64 host (batches of 256 real transforms of 8192
points, medians): ``scipy.fft`` (pocketfft C++) computes float32 natively and
is 3-4x faster than ``numpy.fft`` on float32 (NumPy 2.4's float32 path was
not faster than its float64 one); on float64 the two are within noise.  Both
release the GIL, so two Python threads running transforms on two halves of a
batch take about half the time of one.  rocket-fft (pocketfft inside Numba)
would add a runtime dependency and a compile step per transform kind and
dtype, for no gain on transforms this large.  So:

* ``scipy.fft`` when it is importable (it is a test/bench extra, not a runtime
  dependency), with ``workers=`` for the multi-axis transforms of ``fft``;
* ``numpy.fft`` otherwise, float32 kept in float32 where NumPy supports it;
* in both cases the block engine and batched transforms run their tiles on a
  pool of ``numba.get_num_threads()`` Python threads, one transform call per
  group of tiles.  A single long 1-D transform (``fft`` on one 1-D signal)
  cannot be split by either library, and runs about 1.7x (float64) to 2.4x
  (float32) slower per sample than a batch of transforms, whose lines
  pocketfft computes side by side in SIMD registers.  For a real signal the
  engine therefore computes it as batches of short transforms (the
  four-step FFT, see :func:`four_step_split`), which uses every worker and
  every SIMD lane (measured 1.6x faster on one core for 10**6 samples); for
  a complex one the kernel's transform runs in a second thread beside the
  input's.

Accuracy
--------
``eps`` is that of the compute dtype (float32 for float16 / float32 /
complex64 inputs, float64 otherwise), ``M`` the transform length (product
over axes; the block length for ``oa``).  Worst case, for any inputs
(Higham, *Accuracy and Stability of Numerical Algorithms*, Thm. 24.2, for the
two forward transforms, the product and the inverse)::

    max |error| <= (5 log2 M + 1) eps (||x||_2 ||w||_1 + ||x||_1 ||w||_2)

The error is spread evenly over the outputs: unlike the direct method, whose
error in each output is at most about ``k eps (|x| * |w|)[i]``, an output
much smaller than the others has a large *relative* error.  Measured against
an extended-precision (``longdouble``) direct sum, on random normal inputs
(1-D, n = 1e3 ... 1e6, k = 31 ... 4096, float64 and float32 alike), the
largest error was

* at most 0.021 (``fft``) and 0.032 (``oa``) times
  ``eps log2(M) ||x||_2 ||w||_2`` (the worst-case bound with the rounding
  errors adding like a random walk, which replaces the l1 norms by l2
  norms), and at most 2e-4 times the worst-case bound;
* 0.1 ... 1.5 times ``eps max(|x| * |w|)``, the scale of the direct
  method's error (the direct engine measured 0.8 ... 2.8 on the same inputs):
  on such data the FFT engines are as accurate as the direct one.

The tests assert ``eps log2(M) ||x||_2 ||w||_2`` for random inputs and the
worst-case bound for structured ones.  Integer and bool inputs are computed in
float64 and rounded: exact whenever the worst-case bound is below 1/2, which
is the rule ``method='auto'`` applies (:func:`fastconv._auto.int_fft_exact`).

Determinism: the tiles, groups and transform lengths depend only on the
shapes, never on the thread count, and each output sample is produced by one
transform, so results are bitwise identical at any thread count.

Layout contract (enforced by :mod:`fastconv._execute`): ``x`` has shape
``(Bx, *n)``, ``w`` ``(Bw, *k)`` with ``Bx`` and ``Bw`` equal or 1, both in
the compute dtype (float32, float64, complex64 or complex128); the result has
shape ``(B, *out_shape)`` in the same dtype.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ._threads import each, executor

# Tiles per transform call: at least _GROUP_ROWS, since pocketfft computes
# several transforms of one call side by side in SIMD registers (measured: 4
# or more rows run 1.7x (float64) to 2.4x (float32) faster per sample than
# one), and about _GROUP_BYTES of input samples in all.  Every group costs a
# few array operations in Python (window view or copy, two transform calls, a
# product, a store), so larger groups pay off: against groups of 2**15
# samples, 1 MiB groups took 0.6-0.9x the time for one signal of 10**6
# samples (k = 63 ... 1023, float32, float64 and complex64) and 0.25-0.7x for
# batches of signals, which then go whole to a task (2 threads, medians of
# 11 interleaved rounds); 2 MiB groups were no faster.  A group's working
# set (the samples, their spectrum, the inverse) is then a few MiB per thread.
_GROUP_ROWS = 8
_GROUP_BYTES = 1 << 20
# Tiles per transform call of the N-D block engine, in samples.
_ND_GROUP_ELEMENTS = 1 << 17


# Below this many transforms per call pocketfft cannot fill its SIMD lanes,
# and each transform costs about _LONE_ROW times more per sample.
_SIMD_ROWS = 4
_LONE_ROW = 1.7


def group_rows(m: int, itemsize: int) -> int:
    """Tiles of length ``m`` per transform call of the 1-D block engine, for samples of ``itemsize`` bytes."""
    return max(_GROUP_ROWS, _GROUP_BYTES // (m * itemsize))


# --------------------------------------------------------------------------
# backend
# --------------------------------------------------------------------------
@functools.cache
def backend_name() -> str:
    """The name of :func:`backend`'s module, found without importing it (``scipy.fft`` costs 0.1 s)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("scipy.fft") is not None
    except ImportError:  # pragma: no cover - exercised without scipy
        found = False
    return "scipy.fft" if found else "numpy.fft"


@functools.cache
def backend():
    """The FFT module in use: ``scipy.fft`` if importable, else ``numpy.fft``."""
    try:
        import scipy.fft as sfft
    except ImportError:  # pragma: no cover - exercised without scipy
        return _NumpyFFT()
    return _ScipyFFT(sfft)


class _ScipyFFT:
    name = "scipy.fft"

    def __init__(self, mod):
        self.mod = mod

    def rfftn(self, a, s, axes, workers=1):
        return self.mod.rfftn(a, s=s, axes=axes, workers=workers)

    def rfft(self, a, n):
        return self.mod.rfft(a, n=n, axis=-1)

    def irfft(self, a, n):
        return self.mod.irfft(a, n=n, axis=-1)

    def fft(self, a, n):
        return self.mod.fft(a, n=n, axis=-1)

    def ifft(self, a, n):
        return self.mod.ifft(a, n=n, axis=-1)

    def irfftn(self, a, s, axes, workers=1):
        return self.mod.irfftn(a, s=s, axes=axes, workers=workers)

    def fftn(self, a, s, axes, workers=1):
        return self.mod.fftn(a, s=s, axes=axes, workers=workers)

    def ifftn(self, a, s, axes, workers=1):
        return self.mod.ifftn(a, s=s, axes=axes, workers=workers)


class _NumpyFFT:
    """numpy.fft with a ``workers`` argument.

    Multi-axis transforms run axis by axis (as ``numpy.fft.rfftn`` does);
    each 1-D pass is split over threads along the longest other axis, so the
    work of one N-D transform, or of a batch, is shared by all threads.
    """

    name = "numpy.fft"

    @staticmethod
    def _pass(func, a, n, axis, workers):
        others = [i for i in range(a.ndim) if i != axis]
        split = max(others, key=lambda i: a.shape[i]) if others else None
        if workers <= 1 or split is None or a.shape[split] < 2:
            return func(a, n=n, axis=axis)
        edges = np.linspace(0, a.shape[split], min(workers, a.shape[split]) + 1).astype(int)

        def piece(i):
            index = [slice(None)] * a.ndim
            index[split] = slice(edges[i], edges[i + 1])
            return func(a[tuple(index)], n=n, axis=axis)

        return np.concatenate(list(executor(workers).map(piece, range(len(edges) - 1))), axis=split)

    def rfftn(self, a, s, axes, workers=1):
        out = self._pass(np.fft.rfft, a, s[-1], axes[-1], workers)
        for n, ax in zip(s[:-1][::-1], axes[:-1][::-1]):
            out = self._pass(np.fft.fft, out, n, ax, workers)
        return out

    def irfftn(self, a, s, axes, workers=1):
        out = a
        for n, ax in zip(s[:-1], axes[:-1]):
            out = self._pass(np.fft.ifft, out, n, ax, workers)
        return self._pass(np.fft.irfft, out, s[-1], axes[-1], workers)

    def fftn(self, a, s, axes, workers=1):
        out = a
        for n, ax in zip(s[::-1], axes[::-1]):
            out = self._pass(np.fft.fft, out, n, ax, workers)
        return out

    def ifftn(self, a, s, axes, workers=1):
        out = a
        for n, ax in zip(s, axes):
            out = self._pass(np.fft.ifft, out, n, ax, workers)
        return out

    def rfft(self, a, n):
        return np.fft.rfft(a, n=n, axis=-1)

    def irfft(self, a, n):
        return np.fft.irfft(a, n=n, axis=-1)

    def fft(self, a, n):
        return np.fft.fft(a, n=n, axis=-1)

    def ifft(self, a, n):
        return np.fft.ifft(a, n=n, axis=-1)


def _threads() -> int:
    from .._config import threads

    return threads()


# --------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def fast_length(n: int) -> int:
    """Smallest ``m >= n`` whose only prime factors are 2, 3 and 5."""
    if n <= 6:
        return max(n, 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            # smallest power of two times p35 that reaches n
            q = -(-n // p35)
            m = p35 * (1 << (q - 1).bit_length())
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def fft_lengths(in_shape, kernel_shape, out_shape, pad_lo) -> tuple:
    """Per-axis transform lengths for which the circular correlation is exact."""
    lengths = []
    for n, k, o, p in zip(in_shape, kernel_shape, out_shape, pad_lo):
        s = k - 1 - p
        need = max(n + k - 1 - s, s + o, o, k)
        lengths.append(fast_length(need))
    return tuple(lengths)


@functools.lru_cache(maxsize=1024)
def block_length(
    k: int, o: int, *, flat: float = 10.0, cache: int = 1 << 14, spill: float = 1.0
) -> int:
    """Transform length of one block along an axis with ``k`` taps and ``o`` outputs.

    Minimises the modelled cost per output sample of a block of length ``M``,

        M * (log2(M) + flat + spill * max(0, log2(M / cache))) / (M - k + 1)

    (two transforms and a spectrum product per block, spread over its
    ``M - k + 1`` outputs; ``flat`` is the per-sample work outside the
    butterflies in units of one butterfly stage, and ``spill`` the extra cost
    per doubling once a block no longer fits the cache), over the powers of
    two from ``2 k`` (pocketfft's fastest lengths: 3- and 5-smooth block
    lengths measured up to 1.4x slower per sample) and the single fast length
    that covers all ``o`` outputs in one block.  The defaults were fitted
    to single-thread timings of the engine on a 2-core x86-64 host (1-D,
    1e6 outputs, k = 15 ... 4095, float32 and float64: the chosen lengths
    are 2 % slower than the best on average).
    """

    def cost(m):
        return m * (math.log2(m) + flat + spill * max(0.0, math.log2(m / cache))) / (m - k + 1)

    whole = fast_length(o + k - 1)
    best_m, best_c = whole, cost(whole) * (whole - k + 1) / o * _LONE_ROW
    m = 1 << max(2 * k - 1, 15).bit_length()
    while m < whole:
        tiles = -(-o // (m - k + 1))
        c = cost(m) * tiles * (m - k + 1) / o  # the last tile is paid in full
        if tiles < _SIMD_ROWS:
            c *= _LONE_ROW
        if c < best_c:
            best_m, best_c = m, c
        m *= 2
    return best_m


# Python overhead of one tile of the N-D block engine (window copy and
# store; the transform calls are shared by a run of tiles), in units of one
# butterfly-sample: about 8 us against 0.3 ns per unit, measured on a 2-core
# x86-64 host.
_TILE_UNITS = 3.0e4


@functools.lru_cache(maxsize=1024)
def block_shape(kernel_shape: tuple, out_shape: tuple) -> tuple:
    """Block (transform) lengths per axis for the block engine.

    1-D: :func:`block_length`.  N-D: the combination of per-axis lengths
    (powers of two from ``2 k``, in 2-D also three and nine times a power of
    two, or the single block covering the axis) that minimises
    ``tiles * (2 M (log2 M + 10 + 4 log2(M / 2**16)) + tile overhead)`` with
    ``M`` the product of the lengths: every tile has a fixed cost in Python.
    In batches of 2-D transforms pocketfft's 3-smooth lengths cost what
    powers of two cost per sample (measured within 5 %, 128 ... 768, float32
    and float64), and they let the tiles fit the output more closely: a
    2048 x 2048 output with a 31 x 31 kernel takes 8 x 8 blocks of 288 x 288
    (2064 x 2064 outputs computed) rather than 10 x 10 of 256 x 256 (2260 x
    2260), measured 0.87x the time in float32 and 0.93x in float64; a
    1024 x 1024 output with a 63 x 63 kernel takes blocks of 576 x 576
    rather than one of 1125 x 1125 (0.6x).  (In 3-D the extra lengths would
    make the search too long for a first call.)
    """
    if len(kernel_shape) == 1:
        return (block_length(kernel_shape[0], out_shape[0]),)
    bases = (1, 3, 9) if len(kernel_shape) == 2 else (1,)
    options = []
    for k, o in zip(kernel_shape, out_shape):
        whole = fast_length(o + k - 1)
        cands = {whole}
        for base in bases:
            # the smallest base * 2**j of at least max(2 k, 8), then up to 6 doublings
            m = base << max(-(-max(2 * k, 8) // base) - 1, 0).bit_length()
            for _ in range(7):
                if m >= whole:
                    break
                cands.add(m)
                m *= 2
        options.append(sorted(cands))
    best, best_c = None, None
    for combo in itertools.product(*options):
        m = math.prod(combo)
        tiles = math.prod(-(-o // (b - k + 1)) for b, k, o in zip(combo, kernel_shape, out_shape))
        # an N-D transform streams the whole block once per axis: beyond the
        # cache each doubling costs more than in 1-D (measured)
        per = math.log2(m) + 10.0 + 4.0 * max(0.0, math.log2(m / (1 << 16)))
        c = tiles * (2.0 * m * per + _TILE_UNITS)
        if best_c is None or c < best_c:
            best, best_c = combo, c
    return tuple(best)


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------
def _check_dtype(x, w):
    if x.dtype != w.dtype or x.dtype.char not in "fdFD":
        raise TypeError(
            "FFT engines need float32/64 or complex64/128 inputs of one dtype; "
            f"got {x.dtype}, {w.dtype}"
        )


def _window(xb, starts, lengths):
    """``x~[starts : starts + lengths]`` of one batch entry, zero outside ``xb``."""
    buf = np.zeros(lengths, dtype=xb.dtype)
    src, dst = [], []
    for a, m, n in zip(starts, lengths, xb.shape):
        lo, hi = max(a, 0), min(a + m, n)
        if hi <= lo:
            return buf
        src.append(slice(lo, hi))
        dst.append(slice(lo - a, hi - a))
    buf[tuple(dst)] = xb[tuple(src)]
    return buf


# --------------------------------------------------------------------------
# fft engine
# --------------------------------------------------------------------------
def fft_correlate(x, w, out_shape, pad_lo, *, threads=None):
    """The primitive with one transform per batch entry; returns ``(B, *out_shape)``."""
    _check_dtype(x, w)
    threads = threads or _threads()
    fft = backend()
    nd = len(out_shape)
    in_shape, k_shape = x.shape[1:], w.shape[1:]
    lengths = fft_lengths(in_shape, k_shape, out_shape, pad_lo)
    if max(x.shape[0], w.shape[0]) * math.prod(lengths) < parallel_samples(nd):
        # scipy.fft's workers cost about 0.1 ms a call: 32 transforms of 135
        # points took 29 us on one worker and 141 us on two.
        threads = 1
    axes = tuple(range(1, nd + 1))
    real = x.dtype.kind == "f"
    wr = w[(slice(None),) + (slice(None, None, -1),) * nd]
    forward, inverse = (fft.rfftn, fft.irfftn) if real else (fft.fftn, fft.ifftn)
    single = nd == 1 and x.shape[0] == w.shape[0] == 1 and lengths[0] >= _PARALLEL_SAMPLES
    split = four_step_split(lengths[0]) if single and real else None
    if split is not None:
        m1, m2 = split
        twiddles = _four_step_twiddles(lengths[0], m1, m2, np.result_type(x.dtype, np.complex64).char)
        spec = _four_step_forward(x[0], lengths[0], m1, m2, twiddles, fft, threads)
        spec *= _four_step_forward(wr[0], lengths[0], m1, m2, twiddles, fft, threads)
        full = _four_step_inverse(spec, lengths[0], m1, m2, twiddles, fft, threads)[None]
        del twiddles
        del spec
        return _extract(full, lengths, k_shape, out_shape, pad_lo, x.dtype)
    if threads > 1 and single:
        # Neither library splits one 1-D transform over threads: transform the
        # kernel in a second thread while this one transforms the input.
        job = executor(threads).submit(forward, wr, lengths, axes, 1)
        spec = forward(x, lengths, axes, 1)
        wspec = job.result()
    else:
        spec = forward(x, lengths, axes, threads)
        wspec = forward(wr, lengths, axes, threads)
    if spec.shape == np.broadcast_shapes(spec.shape, wspec.shape):
        spec *= wspec
    else:  # one input per batch entry, the other broadcast
        spec = spec * wspec
    del wspec
    full = inverse(spec, lengths, axes, threads)
    del spec
    return _extract(full, lengths, k_shape, out_shape, pad_lo, x.dtype)


def _extract(full, lengths, k_shape, out_shape, pad_lo, dtype):
    """The requested outputs of the circular correlation ``full``: ``out[y] = conv[y + s]``."""
    # with the lengths of fft_lengths the indices never alias
    index = [slice(None)]
    for m, k, o, p in zip(lengths, k_shape, out_shape, pad_lo):
        s = k - 1 - p
        if 0 <= s and s + o <= m:
            index.append(slice(s, s + o))
        else:
            index.append((np.arange(o) + s) % m)
    out = full
    for d, i in enumerate(index[1:], start=1):
        if isinstance(i, slice):
            out = out[(slice(None),) * d + (i,)]
        else:
            out = np.take(out, i, axis=d)
    return np.ascontiguousarray(out, dtype=dtype)


# One long 1-D real transform as a batch of short ones (the "four-step" FFT):
# with M = M1 M2 and x viewed as an (M1, M2) array A[n1, n2] = x[M2 n1 + n2],
#
#   X[k1 + M1 k2] = sum_n2 W_M^(n2 k1) (sum_n1 A[n1, n2] W_M1^(n1 k1)) W_M2^(n2 k2)
#
# i.e. real transforms down the M2 columns, a twiddle factor, complex
# transforms along the M1/2 + 1 rows.  Both steps are batches, so pocketfft
# runs them in SIMD lanes and on all workers; for real x the rows
# k1 <= M1/2 carry the whole spectrum (the others are their conjugates).
# The spectrum comes out in that (k1, k2) layout, which is all a product of
# two spectra and the inverse (the same steps backwards) need.
_TWIDDLE_CACHE_MAX = 1 << 20  # samples (8 MiB of twiddles each); longer ones recompute


def four_step_split(m: int):
    """``(M1, M2)`` with ``M1 * M2 == m``, ``M1`` even and near ``sqrt(m)``; None if none."""
    for m1 in range(math.isqrt(m), 15, -1):
        if m % m1 == 0 and m1 % 2 == 0 and m // m1 >= 16:
            return m1, m // m1
    return None


@functools.lru_cache(maxsize=2)
def _cached_twiddles(m, m1, m2, char):
    return _twiddles(m, m1, m2, char)


def _unit(k1, n, m):
    """``exp(-2 pi i (k1 n mod m) / m)``, the angle reduced exactly in integers."""
    return np.exp(((k1 * n) % m).astype(np.float64) * (-2j * np.pi / m))


def _twiddles(m, m1, m2, char):
    """``t[k1, n2] = exp(-2 pi i k1 n2 / m)`` for ``k1 <= m1 / 2``, ``n2 < m2``.

    With ``n2 = q b + r`` and ``b = isqrt(m2)`` each entry is the product of
    two exponentials of exactly reduced angles, ``exp(.. k1 q b ..) *
    exp(.. k1 r ..)``: about ``2 sqrt(m2)`` exponentials per row instead of
    ``m2`` (for m = 2025000: 4 ms instead of 30).  Measured error against an
    extended-precision table: at most 3.5 eps in float64 (one exponential
    per entry: about 1 eps), 0.5 eps (the final rounding) in complex64; the
    transforms' own error is some ``5 log2(m)`` eps.
    """
    k1 = np.arange(m1 // 2 + 1, dtype=np.int64)[:, None]
    b = max(1, math.isqrt(m2))
    q = np.arange(-(-m2 // b), dtype=np.int64)[None, :] * b
    r = np.arange(b, dtype=np.int64)[None, :]
    t = np.empty((k1.shape[0], q.shape[1], b), dtype=char)
    np.multiply(_unit(k1, q, m)[:, :, None], _unit(k1, r, m)[:, None, :], out=t, casting="same_kind")
    return t.reshape(k1.shape[0], -1)[:, :m2]


def _four_step_twiddles(m, m1, m2, char):
    if m <= _TWIDDLE_CACHE_MAX:
        return _cached_twiddles(m, m1, m2, char)
    return _twiddles(m, m1, m2, char)


def _four_step_forward(v, m, m1, m2, twiddles, fft, workers):
    a = np.zeros(m, dtype=v.dtype)
    a[: v.size] = v
    b = fft.rfftn(a.reshape(m1, m2), (m1,), (0,), workers)
    del a
    b *= twiddles
    return fft.fftn(b, (m2,), (1,), workers)


def _four_step_inverse(c, m, m1, m2, twiddles, fft, workers):
    d = fft.ifftn(c, (m2,), (1,), workers)
    # d * conj(t) == conj(conj(d) * t), without a conjugated copy of t
    np.conjugate(d, out=d)
    d *= twiddles
    np.conjugate(d, out=d)
    return fft.irfftn(d, (m1,), (0,), workers).reshape(m)


# --------------------------------------------------------------------------
# block (overlap-save) engine
# --------------------------------------------------------------------------
def oa_correlate(x, w, out_shape, pad_lo, *, block=None, threads=None):
    """The primitive by blocks; returns ``(B, *out_shape)``.

    ``block`` (one transform length per axis) defaults to :func:`block_shape`.
    """
    _check_dtype(x, w)
    threads = threads or _threads()
    nd = len(out_shape)
    k_shape = w.shape[1:]
    if block is None:
        block = block_shape(tuple(k_shape), tuple(out_shape))
    block = tuple(int(m) for m in block)
    for m, k in zip(block, k_shape):
        if m < k:
            raise ValueError(f"block length {m} is shorter than the kernel ({k})")
    B = max(x.shape[0], w.shape[0])
    out = np.empty((B,) + tuple(out_shape), dtype=x.dtype)
    if nd == 1:
        _oa_1d(x, w, out, pad_lo[0], block[0], threads)
    else:
        _oa_nd(x, w, out, pad_lo, block, threads)
    return out


def _spectra(w, lengths, real, fft):
    nd = len(lengths)
    wr = w[(slice(None),) + (slice(None, None, -1),) * nd]
    axes = tuple(range(1, nd + 1))
    if real:
        return fft.rfftn(wr, lengths, axes)
    return fft.fftn(wr, lengths, axes)


def _oa_1d(x, w, out, p, m, threads):
    fft = backend()
    real = x.dtype.kind == "f"
    k = w.shape[1]
    n = x.shape[1]
    o = out.shape[1]
    step = m - k + 1  # outputs per tile
    tiles = -(-o // step)
    spec = _spectra(w, (m,), real, fft)  # (Bw, m//2+1) or (Bw, m)
    group = group_rows(m, x.dtype.itemsize)
    B = out.shape[0]
    from numpy.lib.stride_tricks import sliding_window_view

    # Tile j reads x~[j*step - p : j*step - p + m].  Groups of tiles whose
    # windows all lie inside x are read through a strided view (no copy);
    # the few groups at the ends are copied into zero-padded buffers.
    first_in = -(-p // step)  # smallest j with j*step - p >= 0
    last_in = (n - m + p) // step  # largest j with j*step - p + m <= n
    # Groups never mix the (copied) end tiles with the (viewed) interior ones.
    lo = min(max(first_in, 0), tiles)
    hi = min(max(last_in + 1, lo), tiles)
    spans = [(0, lo)] + [(j, min(j + group, hi)) for j in range(lo, hi, group)] + [(hi, tiles)]
    tasks = [(b, j0, j1) for b in range(B) for j0, j1 in spans if j1 > j0]
    forward = fft.rfft if real else fft.fft
    inverse = fft.irfft if real else fft.ifft
    # Row r of inner[b] is the window of tile first_in + r (a strided view).
    inner = (
        [sliding_window_view(x[b, first_in * step - p :], m)[::step] for b in range(x.shape[0])]
        if last_in >= first_in
        else None
    )

    def run(task):
        b, j0, j1 = task
        bx = b if x.shape[0] > 1 else 0
        sb = spec[b if spec.shape[0] > 1 else 0]
        if first_in <= j0 and j1 - 1 <= last_in:
            blocks = inner[bx][j0 - first_in : j1 - first_in]
        else:
            blocks = np.stack([_window(x[bx], (j * step - p,), (m,)) for j in range(j0, j1)])
        f = forward(blocks, m)
        f *= sb
        r = inverse(f, m)
        del f
        y0 = j0 * step
        full = min(j1, o // step) - j0  # tiles whose outputs all exist
        if full > 0:
            out[b, y0 : y0 + full * step].reshape(full, step)[...] = r[:full, k - 1 : k - 1 + step]
        if full < j1 - j0:
            y1 = y0 + full * step
            out[b, y1:o] = r[full, k - 1 : k - 1 + o - y1]

    if B > 1 and 2 * tiles <= group:
        # Many short signals: a task takes whole signals, all their tiles in
        # one transform call, instead of a few tiles of one signal.
        rows = batch_rows(tiles, m, x.dtype.itemsize)
        _run_tasks(
            lambda task: _oa_rows(x, spec, out, task, tiles, step, p, m, k, forward, inverse),
            [(b0, min(b0 + rows, B)) for b0 in range(0, B, rows)],
            threads,
            samples=B * tiles * m,
        )
        return
    _run_tasks(run, tasks, threads, samples=B * tiles * m)


def batch_rows(tiles: int, m: int, itemsize: int) -> int:
    """Signals per task of the 1-D block engine when each signal has only a few tiles."""
    return max(1, group_rows(m, itemsize) // tiles)


def _oa_rows(x, spec, out, task, tiles, step, p, m, k, forward, inverse):
    from numpy.lib.stride_tricks import sliding_window_view

    b0, b1 = task
    o = out.shape[1]
    n = x.shape[1]
    rows = x[b0:b1] if x.shape[0] > 1 else x[:1]
    # one zero-padded copy of these signals, then all their windows at once
    length = (tiles - 1) * step + m
    padded = np.zeros((rows.shape[0], length), dtype=x.dtype)
    take = min(n, length - p)
    padded[:, p : p + take] = rows[:, :take]
    blocks = sliding_window_view(padded, m, axis=1)[:, ::step][:, :tiles]
    if rows.shape[0] != b1 - b0:  # one signal, many kernels
        blocks = np.broadcast_to(blocks, (b1 - b0,) + blocks.shape[1:])
    blocks = blocks.reshape(-1, m)
    del padded
    f = forward(blocks, m)
    del blocks
    if spec.shape[0] > 1:
        f *= np.repeat(spec[b0:b1], tiles, axis=0)
    else:
        f *= spec[0]
    r = inverse(f, m)
    del f
    full = min(tiles, o // step)
    for i, b in enumerate(range(b0, b1)):
        rb = r[i * tiles : (i + 1) * tiles]
        if full > 0:
            out[b, : full * step].reshape(full, step)[...] = rb[:full, k - 1 : k - 1 + step]
        if full < tiles:
            y1 = full * step
            out[b, y1:o] = rb[full, k - 1 : k - 1 + o - y1]


def nd_group(block) -> int:
    """Tiles per transform call of the N-D block engine (consecutive along the last axis)."""
    return max(1, min(_GROUP_ROWS, _ND_GROUP_ELEMENTS // math.prod(block)))


def _oa_nd(x, w, out, pad_lo, block, threads):
    fft = backend()
    real = x.dtype.kind == "f"
    nd = len(block)
    k_shape = w.shape[1:]
    steps = tuple(m - k + 1 for m, k in zip(block, k_shape))
    counts = tuple(-(-o // s) for o, s in zip(out.shape[1:], steps))
    spec = _spectra(w, block, real, fft)
    axes = tuple(range(1, nd + 1))
    forward = fft.rfftn if real else fft.fftn
    inverse = fft.irfftn if real else fft.ifftn
    B = out.shape[0]
    g = nd_group(block)
    # A task is a run of up to g tiles along the last axis: one transform
    # call for all of them, which spreads its fixed cost.
    tasks = [
        (b, head, j0, min(j0 + g, counts[-1]))
        for b in range(B)
        for head in itertools.product(*map(range, counts[:-1]))
        for j0 in range(0, counts[-1], g)
    ]

    def run(task):
        b, head, j0, j1 = task
        xb = x[b if x.shape[0] > 1 else 0]
        sb = spec[b if spec.shape[0] > 1 else 0]
        tiles = [head + (j,) for j in range(j0, j1)]
        corners = [tuple(j * s for j, s in zip(tile, steps)) for tile in tiles]
        windows = np.stack(
            [_window(xb, tuple(y - p for y, p in zip(y0, pad_lo)), block) for y0 in corners]
        )
        f = forward(windows, block, axes)
        del windows
        f *= sb
        r = inverse(f, block, axes)
        del f
        for i, y0 in enumerate(corners):
            dst = tuple(slice(y, min(y + s, o)) for y, s, o in zip(y0, steps, out.shape[1:]))
            src = tuple(slice(k - 1, k - 1 + (d.stop - d.start)) for k, d in zip(k_shape, dst))
            out[(b,) + dst] = r[(i,) + src]

    _run_tasks(run, tasks, threads, samples=B * math.prod(counts) * math.prod(block))


# Below this many transformed samples in all, waking a second thread costs
# more than it saves.
_PARALLEL_SAMPLES = 1 << 16

# The same for scipy.fft's workers on multi-axis transforms: a forward and
# inverse real transform pair of 288 x 288 float32 took 0.52 ms on one worker
# and 0.82 ms on two, 4 x 256 x 256 1.7 and 2.8 ms; from about 768 x 768 on
# two workers were faster.  Whole 'same' convolutions, float32, this
# threshold against 2**16: 256**2 * 31**2 0.78x the time, 256**2 * 63**2
# 0.55x, 8 x 128**2 * 15**2 0.67x; above it (two workers as before) 512**2 *
# 31**2 and 64**3 * 5**3 (medians of 7 interleaved rounds, 2-core machine).
_PARALLEL_ND_SAMPLES = 1 << 18


def parallel_samples(nd: int) -> int:
    """Transformed samples in all from which the fft engine's ``nd``-axis transforms use several workers."""
    return _PARALLEL_SAMPLES if nd == 1 else _PARALLEL_ND_SAMPLES


def _run_tasks(run, tasks, threads, samples=None):
    small = samples is not None and samples < _PARALLEL_SAMPLES
    each(tasks, run, 1 if small else threads)

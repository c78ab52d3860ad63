"""``method='auto'``: a cost model of the actual engines, calibrated on the running machine.

Each engine's time is modelled as a fixed overhead plus a rate times a work
count that follows the engine's algorithm (all times in seconds):

``direct``
    ``t = o + (r * (I + 15 B + 8 E) + R (190 ns + 44 ns * KR)) / p`` with
    ``I`` the multiply-adds of interior output columns, ``B`` those of border
    columns (scalar code; counted 4 instead of 15 in the runs of at least 32
    columns along a zero border, computed tap by tap, and 5 where a 2-D
    call computes them down the rows), ``E`` the output
    elements (memory traffic), ``R``
    the output rows, ``KR`` the kernel rows (the fixed cost of a row: mapping
    its input rows, a pass per kernel row) and ``p`` the threads that have
    work (the engine's task count, capped by the thread count).
``fft``
    ``t = o + r * (T + 2 E) / p`` with ``T = sum over transforms of
    M log2 M`` (one forward transform per input batch entry, one inverse per
    output batch entry, doubled for complex data, plus a cache penalty of
    ``8 log2(L / 2**16)`` per sample once the longest axis ``L`` of the
    transform exceeds ``2**16``, ``2**17`` in float32) and ``E`` the samples
    of the products; ``T`` counts 0.6 for batched or N-D transforms, whose
    lines pocketfft computes side by side in SIMD registers (measured 1.7x
    to 2.4x faster per sample than one line).  ``p`` is the thread count
    for batched or N-D transforms, and for one long real 1-D signal, which
    the engine transforms as batches of short transforms (the four-step FFT:
    no cache penalty, counted 1.2 in float64 and 1.0 in float32 for its
    strided passes and fresh arrays, plus three passes for the twiddles); 1.5
    for one complex 1-D signal, whose transforms neither scipy.fft nor
    numpy.fft can split (the kernel's runs beside the input's); 1 below
    ``2**16`` samples, run in the calling thread.
``oa``
    As ``fft``, with the transforms of the blocks (counted 1.7 times when
    fewer than 4 blocks share a transform call) and ``p`` the number of
    groups of blocks (capped by the thread count), plus a per-task overhead.

``o`` and ``r`` are fitted per engine and dtype class (float32, float64,
integer for direct) from timings of the engines themselves by
:func:`calibrate`, which stores them in a per-user cache file keyed by CPU
model and library versions.  Without calibration the defaults below are
used.  On a grid of 54 shapes (1-D and 2-D, float32 and float64, 10 to 10**6
samples, kernels of 3 to 30000 taps) the default model's choice was at most
1.05x slower than the fastest engine, single-threaded.

Integer and bool inputs go to an FFT engine only when the rounded result is
provably exact (:func:`int_fft_exact`); otherwise ``auto`` uses ``direct``,
which is exact with NumPy's wrap-around.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time

import numpy as np

from ._config import threads as _thread_count

__all__ = ["calibrate", "choose_method", "int_fft_exact", "model_times"]

# seconds: (overhead, rate per work unit of one thread) per engine and dtype
# class.  Measured as :func:`calibrate` fits them, from the CPU time of one
# thread (so that other processes' load did not enter), on a 2-core x86-64
# host (AMD EPYC Zen 5, AVX-512; numba 0.68, numpy 2.4, scipy.fft 1.17).
DEFAULTS = {
    "direct": {
        "float64": (2.5e-5, 6.8e-11),
        "float32": (2.0e-5, 3.6e-11),
        "int": (2.5e-5, 6.6e-11),
    },
    "fft": {"float64": (5.0e-5, 4.1e-10), "float32": (5.0e-5, 2.6e-10)},
    "oa": {"float64": (6.0e-5, 2.75e-10), "float32": (6.0e-5, 1.5e-10)},
}
_TASK_SECONDS = 5.0e-5  # Python overhead per task of the block engine (measured)
_BATCHED = 1.0  # per M log2 M, transforms of a batch of 1-D signals (see _features)
# Fixed cost of one output row of the direct engine, plus one per kernel row
# (mapping the rows, collecting the taps, a pass per kernel row): least
# squares over 26 2-D and 3-D 'same' cases with rows of 16 to 4096 samples
# and kernels of 3x3x3 to 17x17 gave 186 ns and 44 ns; without it the model
# took 64^3 * 5^3 float32 for 0.3x of its measured time (rows of 64).
_ROW_SECONDS = 1.9e-7
_KERNEL_ROW_SECONDS = 4.4e-8

# N-D transforms cost more per ``M log2 M`` than the 1-D ones the constants
# are calibrated on (a pass per axis, strided lines).  The factors are the
# median of measured / modelled time over 46 2-D 'same' cases (images 256^2
# to 2048^2, kernels 5^2 to 63^2, float32 and float64); with them ``auto``
# came within 1.13x of the fastest engine on every one of those cases.
_ND_FACTOR = {"fft": 2.0, "oa": 1.9}

_CONSTANTS = None  # loaded lazily: the calibration for this machine, or DEFAULTS


# --------------------------------------------------------------------------
# the integer exactness rule
# --------------------------------------------------------------------------
def int_fft_exact(x: np.ndarray, w: np.ndarray, lengths) -> bool:
    """Whether an FFT convolution of integer arrays rounds to the exact result.

    The computed float64 FFT convolution ``z~`` of ``x`` and ``w`` with
    transforms of ``M = prod(lengths)`` points satisfies the normwise bound
    (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
    Thm. 24.2, applied to the two forward transforms, the product and the
    inverse transform)::

        max |z~ - z| <= ||z~ - z||_2
                     <= (5 log2 M + 1) eps (||x||_2 ||w||_1 + ||x||_1 ||w||_2)

    since each transform has relative normwise error at most about
    ``log2(M) * 3.4 eps`` and ``||x * w||_2 <= min(||x||_2 ||w||_1,
    ||x||_1 ||w||_2)``.  Rounding ``z~`` to the nearest integer gives ``z``
    exactly when this bound is below 1/2; a factor 2 of safety covers the
    mixed radices of pocketfft.  (The inputs then also convert to float64
    exactly: ``max|x| max|w|`` is below the bound's right-hand side.)
    """
    if x.size == 0 or w.size == 0:
        return True
    m = max(math.prod(lengths), 2)
    scale = 2.0 * (5.0 * math.log2(m) + 1.0) * float(np.finfo(np.float64).eps)
    # First the bound with the norms bounded by the largest magnitudes (no
    # pass over converted copies: cheap), then, only if that fails, the norms.
    ax = max(abs(int(x.max())), abs(int(x.min())))
    aw = max(abs(int(w.max())), abs(int(w.min())))
    n, k = x.size, w.size
    if scale * float(ax) * float(aw) * (math.sqrt(n) * k + n * math.sqrt(k)) < 0.5:
        return True
    xf = np.abs(x.astype(np.float64, copy=False))
    wf = np.abs(w.astype(np.float64, copy=False))
    x1, w1 = float(xf.sum()), float(wf.sum())
    x2, w2 = float(np.sqrt(np.vdot(xf, xf))), float(np.sqrt(np.vdot(wf, wf)))
    return scale * (x2 * w1 + x1 * w2) < 0.5


# --------------------------------------------------------------------------
# the cost model
# --------------------------------------------------------------------------
def _dtype_class(plan, method) -> str:
    from ._dtypes import compute_dtype

    dt = compute_dtype(plan.result_dtype, method)
    if dt.kind in "iub":
        return "int"
    return "float64" if dt in (np.float64, np.complex128) else "float32"


def _transform_cost(lengths, single=False) -> float:
    """Work of one real transform of shape ``lengths``: ``M log2 M`` plus a cache penalty.

    N-D transforms run axis by axis over lines of one axis, so the penalty
    (8 per doubling beyond 2**16 float64 or 2**17 float32 samples, about the
    L2 cache of one core) follows the longest axis, not the product.
    """
    m = math.prod(lengths)
    spill = max(0.0, math.log2(max(lengths) / (1 << (17 if single else 16))))
    return m * (math.log2(max(m, 2)) + 8.0 * spill)


def _features(plan, method, nx: int, nw: int, threads: int):
    """(work, parallel threads, fixed seconds) of ``method`` on ``plan`` with batches ``nx``, ``nw``."""
    from ._engines import fft as F

    B = max(nx, nw)
    complex_ = plan.result_dtype.kind == "c"
    single = _dtype_class(plan, method) == "float32"
    out = math.prod(plan.out_shape)
    if method == "direct":
        k = math.prod(plan.kernel_shape)
        rows = out // plan.out_shape[-1]
        cols = plan.out_shape[-1]
        from ._execute import column_block

        tasks = B * rows * -(-cols // column_block(cols, B * rows, threads))
        # Border columns cost 15x an interior one column by column, 4x in
        # the runs of at least 32 columns along a zero border that the
        # engine computes tap by tap (measured: 64 x 1000 * 255 and
        # 32 x 500 * 100 taps, full, float64).
        from ._engines import direct as D
        from ._engines.borders import ZERO

        runs = plan.stride[-1] == 1 and plan.border_codes[-1] == ZERO
        lo = min(cols, plan.pad_lo[-1])
        hi = min(cols - lo, max(plan.pad_hi[-1], 0))
        per_col = B * out * k / cols
        down_the_rows = len(plan.axes) == 2 and lo + hi and D.edge_rows(
            B, lo + hi, plan.kernel_shape[0], plan.kernel_shape[1], plan.in_shape[0], plan.out_shape[0],
            tuple(plan.stride), plan.dilation[0], plan.pad_lo[0], plan.compute_dtype) is not None
        if down_the_rows:
            # ... and 5x down the rows (direct._edge_task; measured 4.5-8x on
            # 256-2048 squared images with 9 to 31 taps a side).
            border = per_col * (lo + hi) * 5.0
        else:
            border = sum(per_col * side * (4.0 if runs and side >= D._BORDER_RUN_MIN else 15.0) for side in (lo, hi))
        work = per_col * (cols - lo - hi) + border + 8.0 * B * out
        if complex_:
            work *= 4.0
        kernel_rows = k // plan.kernel_shape[-1]
        fixed = B * rows * (_ROW_SECONDS + _KERNEL_ROW_SECONDS * kernel_rows)
        return work, min(threads, max(tasks, 1)), fixed
    if method == "fft":
        lengths = F.fft_lengths(plan.in_shape, plan.kernel_shape, plan.out_shape, plan.pad_lo)
        m = math.prod(lengths)
        t = (nx + nw + B) * _transform_cost(lengths, single) * (2.0 if complex_ else 1.0)
        four_step = (
            len(lengths) == 1
            and B == 1
            and not complex_
            and m >= F._PARALLEL_SAMPLES
            and F.four_step_split(m) is not None
        )
        if four_step:
            # Short transforms in batches (no cache penalty, SIMD lanes
            # filled), but two strided passes and several fresh spectrum-sized
            # arrays per transform: against the block engine on the same calls
            # (1-D, 7e4 to 2e6 samples, 500 to 20000 taps, medians of 5
            # interleaved rounds) it ran 2.0x (float64) and 1.4x (float32) the
            # time this factor modelled at 0.6, the batched rate; in float32
            # up to 2.1x on 10**5 samples * 2000 taps, so 1.0 there.
            t = (1.2 if not single else 1.0) * (nx + nw + B) * m * math.log2(m)
        elif len(lengths) > 1:
            # many lines per call: pocketfft runs them side by side in SIMD
            t *= 0.6
        elif B >= 4:
            # A batch of 1-D signals: 0.6 (the SIMD rate) was too cheap against
            # the direct engine: on 46 batched cases (4 to 256 signals of 500
            # to 8000 samples, 31 to 511 taps) 1.0 here and in the block
            # engine brought auto within 1.15x of the best on 42, against 38.
            t *= _BATCHED
        work = t + (5.0 if four_step else 2.0) * B * m  # four-step: twiddle passes
        if len(lengths) > 1:
            work *= _ND_FACTOR["fft"]
        if B > 1 or len(lengths) > 1 or four_step:
            par = threads if B * m >= F.parallel_samples(len(lengths)) else 1
        else:
            # one complex 1-D signal: the kernel's transform runs beside the
            # input's, the inverse alone (3 transforms in the time of 2)
            par = 1.5 if threads > 1 and m >= F._PARALLEL_SAMPLES else 1
        return work, par, 0.0
    # oa
    block = F.block_shape(tuple(plan.kernel_shape), tuple(plan.out_shape))
    tiles = math.prod(
        -(-o // (m - k + 1)) for m, k, o in zip(block, plan.kernel_shape, plan.out_shape)
    )
    m = math.prod(block)
    t = (2 * B * tiles + nw) * _transform_cost(block, single) * (2.0 if complex_ else 1.0)
    if len(block) == 1 and tiles < F._SIMD_ROWS:
        t *= F._LONE_ROW  # too few blocks per transform call to fill the SIMD lanes
    if len(block) == 1 and B > 1:
        t *= _BATCHED / 0.6  # batches of signals: see the fft engine's factor
    work = t + 2.0 * B * tiles * m
    if len(block) > 1:
        work *= _ND_FACTOR["oa"]
    itemsize = (4 if single else 8) * (2 if complex_ else 1)
    if len(block) == 1 and B > 1 and 2 * tiles <= F.group_rows(m, itemsize):
        tasks = -(-B // F.batch_rows(tiles, m, itemsize))  # whole signals per task
    elif len(block) == 1:
        tasks = B * -(-tiles // F.group_rows(m, itemsize))
    else:
        counts = [-(-o // (m - k + 1)) for m, k, o in zip(block, plan.kernel_shape, plan.out_shape)]
        tasks = B * math.prod(counts[:-1]) * -(-counts[-1] // F.nd_group(block))
    if B * tiles * m < F._PARALLEL_SAMPLES:  # run in the calling thread
        return work, 1, _TASK_SECONDS * tasks
    return work, min(threads, tasks), _TASK_SECONDS * tasks


def supported(plan) -> tuple:
    """The engines that can run ``plan``."""
    borders = (plan.border,) if isinstance(plan.border, str) else plan.border
    simple = (
        all(b == "zero" for b in borders) and set(plan.stride) == {1} and set(plan.dilation) == {1}
    )
    return ("direct", "fft", "oa") if simple else ("direct",)


def model_times(plan, nx: int = 1, nw: int = 1, threads: int | None = None) -> dict:
    """Modelled seconds of every engine that supports ``plan``."""
    if threads is None:
        threads = _thread_count()
    consts = constants()
    times = {}
    for method in supported(plan):
        work, par, fixed = _features(plan, method, nx, nw, threads)
        o, r = consts[method][_dtype_class(plan, method)]
        times[method] = o + (r * work + fixed) / max(par, 1)
    return times


# A layer with one input and one output channel per group (a depthwise layer
# of multiplier 1, or one channel) is a stack of independent plane
# correlations.  The signal face's engines run those faster than the
# depthwise engine where (measured, 2 threads, float32, zero padding):
# - 1-D planes of 4096 outputs or more, 2**18 outputs in all: 0.04-0.9x the
#   depthwise engine's time (shorter planes or less work: up to 1.5x, its
#   per-call cost is lower);
# - planes of 2**16 outputs or more in 2-D and 3-D, with kernels of more than
#   9 taps (0.14-0.96x on 512x512 and 2048x2048 planes, 0.73-0.93x on 128**3;
#   its fused 3x3 path keeps small kernels better, 1.4x at 512x512);
# - zero-padded planes the model puts on the FFT, with kernels of 200 taps or
#   more (0.16-0.81x on 56x56 to 224x224 planes with 15x15 to 31x31 kernels,
#   0.59x on 32**3 with 7**3; with fewer taps the depthwise engine wins, 1.5x
#   at 56x56 with 9x9).
_PLANES_1D_OUTPUTS = (4096, 1 << 18)  # per plane, in all
_PLANES_ND_OUTPUTS = 1 << 16  # per plane
_PLANES_FFT_MIN_TAPS = 200


def planes_method(plan, conv_plan) -> str | None:
    """The signal engine for a layer's planes (``plan``, see :func:`fastconv._execute.planes_plan`), or None.

    None keeps ``conv_plan`` on the depthwise engine (see the notes above).
    Remembered per layer, like the model's other choices.  The model is
    asked for the process's full thread count, not the calling thread's, so
    a layer takes the same engine, and gives the same bits, at any
    :func:`fastconv.set_num_threads`.
    """
    import numba

    threads = int(numba.config.NUMBA_NUM_THREADS)
    key = ("planes", conv_plan, threads)
    if key in _CHOICES:
        return _CHOICES[key]
    per_plane = math.prod(plan.out_shape)
    taps = math.prod(plan.kernel_shape)
    planes = conv_plan.batch * conv_plan.in_channels
    if len(plan.axes) == 1:
        pays = per_plane >= _PLANES_1D_OUTPUTS[0] and planes * per_plane >= _PLANES_1D_OUTPUTS[1]
    else:
        pays = per_plane >= _PLANES_ND_OUTPUTS and taps > 9
    times = model_times(plan, planes, conv_plan.in_channels, threads)
    best = min(times, key=times.get)
    pays = pays or (best == "fft" and taps >= _PLANES_FFT_MIN_TAPS)
    return _remember(key, best if pays else None)


def plan_for_auto(plan, x: np.ndarray, w: np.ndarray):
    """``plan`` with the engine ``auto`` runs it with (``x``, ``w`` are the face's arrays).

    Remembered with the model's choices for float and complex data (a small
    call spends microseconds otherwise); integer data is checked each call.
    """
    if plan.result_dtype.kind in "biu":
        return _with_method(plan, choose_for_plan(plan, x, w))
    nx, nw = _batch_counts(plan, x, w)
    key = ("plan", plan, nx, nw, _thread_count())
    found = _CHOICES.get(key)
    if found is None:
        found = _remember(key, _with_method(plan, _best_modelled(plan, nx, nw)))
    return found


def _with_method(plan, method):
    from ._plan import with_method

    return with_method(plan, method)


def choose_for_plan(plan, x: np.ndarray, w: np.ndarray) -> str:
    """The engine ``auto`` runs ``plan`` with (``x``, ``w`` are the face's arrays)."""
    nx, nw = _batch_counts(plan, x, w)
    best = _best_modelled(plan, nx, nw)
    if best != "direct" and plan.result_dtype.kind in "biu" and not int_fft_exact(x, w, transform_lengths(plan, best)):
        return "direct"
    return best


def transform_lengths(plan, method: str) -> tuple:
    """The transform shape engine ``method`` ('fft' or 'oa') uses for ``plan``."""
    from ._engines import fft as F

    if method == "fft":
        return tuple(F.fft_lengths(plan.in_shape, plan.kernel_shape, plan.out_shape, plan.pad_lo))
    return tuple(F.block_shape(tuple(plan.kernel_shape), tuple(plan.out_shape)))


def fft_rounds_exactly(plan, method: str, x: np.ndarray, w: np.ndarray) -> bool:
    """Whether ``method``'s FFT of ``x`` and ``w`` rounded to integers gives the exact sums.

    True only when both hold integer values (in any dtype) and
    :func:`int_fft_exact` bounds the error below 1/2.
    """
    for a in (x, w):
        if a.dtype.kind not in "biu" and not np.array_equal(a, np.rint(a)):
            return False
    return int_fft_exact(x, w, transform_lengths(plan, method))


# The model's choice per (plan, batch counts, threads): evaluating the model
# costs tens of microseconds of Python, as much as a small convolution.
# Cleared whenever the constants change.
_CHOICES = {}


def _remember(key, value):
    """Keep ``value`` among the model's choices under ``key`` (at most 4096 kept); returns it."""
    if len(_CHOICES) >= 4096:
        _CHOICES.clear()
    _CHOICES[key] = value
    return value


def _best_modelled(plan, nx: int, nw: int) -> str:
    threads = _thread_count()
    key = (plan, nx, nw, threads)
    best = _CHOICES.get(key)
    if best is None:
        times = model_times(plan, nx, nw, threads)
        best = _remember(key, min(times, key=times.get))
    return best


def _batch_counts(plan, x, w):
    if x.ndim == len(plan.axes):
        return 1, 1
    batch = [a for a in range(x.ndim) if a not in plan.axes]
    return math.prod(x.shape[a] for a in batch), math.prod(w.shape[a] for a in batch)


def choose_method(in1, in2, mode="full", axes=None, measure=False):
    """The method ``fastconv.convolve(in1, in2, mode, method='auto', axes=axes)`` uses.

    Like :func:`scipy.signal.choose_conv_method`, for fastconv's engines.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs, as for :func:`fastconv.convolve`.
    mode : {'full', 'valid', 'same'}, optional
        As for :func:`fastconv.convolve`.
    axes : int or sequence of int, optional
        As for :func:`fastconv.convolve`.
    measure : bool, optional
        If True, run every engine that supports the call (after one warm-up
        run each, the fastest of three runs) and return the fastest with the
        measured times.

    Returns
    -------
    method : {'direct', 'fft', 'oa'}
        The engine ``method='auto'`` chooses (``measure=False``), or the one
        that ran fastest (``measure=True``).
    times : dict
        Only with ``measure=True``: seconds per method.

    Raises
    ------
    ValueError, TypeError
        For the arguments :func:`fastconv.convolve` refuses.

    See Also
    --------
    calibrate : Fit the cost model to this machine.
    fastconv.convolve

    Notes
    -----
    The choice comes from the cost model described in
    :mod:`fastconv._auto`, with constants from :func:`calibrate` when this
    machine has been calibrated and measured defaults otherwise.  Integer and
    bool inputs get an FFT method only when its rounded result is provably
    exact (see :func:`fastconv.convolve`, Notes).

    With a Dask array, each task of the lazy convolution chooses for itself,
    on one thread, for its chunk extended by the kernel's reach; the method
    returned is that of the first task, for which one chunk is computed
    (not the whole array).  ``measure=True`` needs data in memory.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.choose_method(np.ones(1000), np.ones(3))
    'direct'
    >>> fastconv.choose_method(np.ones(1_000_000), np.ones(4095))
    'oa'
    """
    from . import _dask, signal

    if _dask.is_dask(in1) or _dask.is_dask(in2):
        if measure:
            raise NotImplementedError(
                "choose_method(measure=True) times the engines on data in memory; pass NumPy arrays "
                "(for example one chunk of the Dask array) instead"
            )
        return signal._lazy_choice(in1, in2, mode, axes)
    prep = signal._signal_plan(in1, in2, mode, "auto", axes, convolution=True)
    if prep is None or prep[3] is None:
        return ("direct", {}) if measure else "direct"
    _, a, b, plan, _ = prep
    if not measure:
        return plan.method
    from . import _execute
    from ._plan import with_method

    times = {}
    for method in supported(plan):
        p = with_method(plan, method)
        _execute.run(p, a, b)
        best = math.inf
        for _ in range(3):  # the fastest of three: other processes only add time
            t0 = time.perf_counter()
            _execute.run(p, a, b)
            best = min(best, time.perf_counter() - t0)
        times[method] = best
    return min(times, key=times.get), times


# --------------------------------------------------------------------------
# constants: defaults, cache file, calibration
# --------------------------------------------------------------------------
def _cache_key() -> str:
    import numba

    from . import __version__
    from ._config import _cpu_model
    from ._engines import fft as F

    fft_mod = F.backend_name()
    try:
        fft_ver = importlib.import_module(fft_mod.split(".")[0]).__version__
    except (ImportError, AttributeError):  # pragma: no cover
        fft_ver = "?"
    return (
        f"{_cpu_model()} | fastconv {__version__} | numba {numba.__version__} | "
        f"numpy {np.__version__} | {fft_mod} {fft_ver}"
    )


def cache_file() -> str:
    """The per-user calibration file (see ``FASTCONV_CACHE_DIR``)."""
    from ._config import user_cache_dir

    return os.path.join(user_cache_dir(), "calibration.json")


def _read_cache() -> dict:
    try:
        with open(cache_file()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _valid_constants(entry) -> dict | None:
    """``entry`` as constants if it has every engine and dtype class with finite numbers."""
    try:
        out = {}
        for method, classes in DEFAULTS.items():
            out[method] = {}
            for cls in classes:
                o, r = entry[method][cls]
                o, r = float(o), float(r)
                if not (math.isfinite(o) and math.isfinite(r) and o >= 0 and r > 0):
                    return None
                out[method][cls] = (o, r)
        return out
    except (KeyError, TypeError, ValueError):
        return None


def constants() -> dict:
    """The cost-model constants in use: this machine's calibration, or the defaults."""
    global _CONSTANTS
    if _CONSTANTS is None:
        found = _valid_constants(_read_cache().get(_cache_key()))
        _CONSTANTS = found if found is not None else DEFAULTS
        _CHOICES.clear()
    return _CONSTANTS


def reset() -> None:
    """Forget the loaded constants (the cache file is read again on next use)."""
    global _CONSTANTS
    _CONSTANTS = None
    _CHOICES.clear()


def _calibration_cases():
    """(engine, dtype class, dtype, n, k, mode) of every timing :func:`calibrate` takes."""
    cases = []
    for cls, dt in (("float64", np.float64), ("float32", np.float32)):
        for n, k in ((4096, 8), (1 << 17, 16), (1 << 18, 128), (1 << 17, 256)):
            cases.append(("direct", cls, dt, n, k))
        for n, k in ((2048, 64), (1 << 16, 512), (1 << 18, 1024), (1 << 19, 2048)):
            cases.append(("fft", cls, dt, n, k))
        for n, k in ((4096, 64), (1 << 17, 128), (1 << 18, 512), (1 << 19, 2048)):
            cases.append(("oa", cls, dt, n, k))
    for n, k in ((4096, 8), (1 << 17, 16), (1 << 17, 64)):
        cases.append(("direct", "int", np.int64, n, k))
    return cases


def _progress(i: int, total: int, label: str, stream) -> None:
    if stream is None:
        return
    width = 30
    done = int(width * i / total)
    stream.write(f"\rcalibrating [{'#' * done}{'.' * (width - done)}] {i}/{total} {label:<24}")
    if i == total:
        stream.write("\n")
    stream.flush()


def calibrate(*, repeat: int = 5, progress: bool = True, save: bool = True) -> dict:
    """Measure the cost-model constants of ``method='auto'`` on this machine.

    Times the engines themselves (not the faces) on a fixed set of 1-D cases
    (a few seconds in all), fits each engine's overhead (from its smallest
    case) and rate (the median over the larger ones) per dtype class, and
    stores them in the per-user cache file (``$FASTCONV_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/fastconv``), keyed by CPU model and library versions.
    Later processes load them on first use.  Run it on an otherwise idle
    machine: with more busy threads than cores, waking a parallel kernel's
    threads can take milliseconds, and those timings would teach ``'auto'``
    the wrong lesson.  A dtype class whose fitted rate is more than 10x off
    the defaults (or whose overhead is more than 100x theirs) keeps the
    defaults, with a note on standard error.

    Parameters
    ----------
    repeat : int, optional
        Timings per case; the fastest is used (default 5).
    progress : bool, optional
        Print a progress bar on standard error (default True).
    save : bool, optional
        Write the result to the cache file (default True).

    Returns
    -------
    constants : dict
        ``{engine: {dtype class: (overhead seconds, seconds per work unit)}}``.

    Raises
    ------
    ValueError
        If `repeat` is not a positive integer.

    See Also
    --------
    choose_method : The method ``method='auto'`` picks with these constants.

    Notes
    -----
    The constants only steer the choice of engine.  A poor calibration makes
    calls slower, or gives a floating-point result the rounding of another
    engine (see :func:`convolve`, Notes); integer results stay exact, since
    the integer rule does not depend on them.  Timings taken while other
    programs load the CPU give pessimistic constants; calibrate on an
    otherwise idle machine.  The cache
    entry is keyed by the CPU model and the versions of fastconv, Numba, NumPy
    and the FFT library, so after an upgrade the defaults are used until the
    next calibration.

    Examples
    --------
    Calibrating takes seconds (the first time, also the compilation of every
    engine) and rewrites the cache file, so the doctests do not run it:

    >>> import fastconv
    >>> constants = fastconv.calibrate(progress=False)  # doctest: +SKIP
    >>> sorted(constants)  # doctest: +SKIP
    ['direct', 'fft', 'oa']
    """
    import operator

    from . import _execute
    from ._plan import make_plan

    try:
        repeat = operator.index(repeat)
    except TypeError:
        raise ValueError(f"repeat must be a positive integer; got {repeat!r}") from None
    if repeat < 1:
        raise ValueError(f"repeat must be a positive integer; got {repeat!r}")
    threads = _thread_count()
    cases = _calibration_cases()
    stream = sys.stderr if progress else None
    rng = np.random.default_rng(0)
    samples: dict = {}
    for i, (method, cls, dt, n, k) in enumerate(cases):
        _progress(i, len(cases), f"{method} {cls} n={n} k={k}", stream)
        if dt is np.int64:
            x = rng.integers(-100, 100, n).astype(dt)
            w = rng.integers(-100, 100, k).astype(dt)
        else:
            x = rng.standard_normal(n).astype(dt)
            w = rng.standard_normal(k).astype(dt)
        plan = make_plan(
            x, w, axes=(0,), pad_lo=(k - 1,), out_shape=(n + k - 1,), result_dtype=dt, method=method
        )
        _execute.run(plan, x, w)  # compile / warm up
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            _execute.run(plan, x, w)
            ts.append(time.perf_counter() - t0)
        work, par, fixed = _features(plan, method, 1, 1, threads)
        # the fastest run: other processes only ever add time
        t = float(np.min(ts)) - fixed / max(par, 1)
        samples.setdefault((method, cls), []).append((work / max(par, 1), t))
    _progress(len(cases), len(cases), "done", stream)

    consts = {m: dict(c) for m, c in DEFAULTS.items()}
    for (method, cls), pts in samples.items():
        fitted = _fit(pts, DEFAULTS[method][cls])
        if _plausible(fitted, DEFAULTS[method][cls]):
            consts[method][cls] = fitted
        elif stream is not None:
            stream.write(
                f"calibrate: kept the default constants of {method} {cls}: the timings were "
                f"{fitted[1] / DEFAULTS[method][cls][1]:.0f}x the default rate, or the "
                "overhead over 100x (is the machine busy?)\n"
            )
    if save:
        _write_cache(consts)
    global _CONSTANTS
    _CONSTANTS = consts
    _CHOICES.clear()
    return consts


def _plausible(fitted, default) -> bool:
    """Whether fitted constants are within reach of the defaults (10x rate, 100x overhead).

    Machines differ by a few times, not by orders of magnitude; timings that
    far off mean other processes held the cores (waking the threads of a
    parallel kernel on a busy machine can take milliseconds).
    """
    (o, r), (o_def, r_def) = fitted, default
    return r_def / 10 <= r <= 10 * r_def and o <= 100 * o_def + 1e-4


def _fit(points, default):
    """Fit ``t = o + r * work`` (``o >= 0``, ``r > 0``) robustly to a few timings.

    The first point is the small, overhead-dominated case: ``o`` comes from
    it, ``r`` from the median over the larger ones of ``(t - o) / work``
    (two rounds).  A least-squares fit of four noisy timings can give a
    negative slope; this cannot.
    """
    points = sorted(points)
    (w0, t0), rest = points[0], points[1:] or points
    o = 0.0
    r = default[1]
    for _ in range(2):
        rates = [(t - o) / w for w, t in rest if t > o and w > 0]
        if rates:
            r = float(np.median(rates))
        o = max(0.0, t0 - r * w0)
    if not (r > 0 and math.isfinite(r) and math.isfinite(o)):
        return default
    return (float(o), float(r))


def _write_cache(consts) -> None:
    path = cache_file()
    data = _read_cache()
    data[_cache_key()] = {m: {c: list(v) for c, v in cl.items()} for m, cl in consts.items()}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)

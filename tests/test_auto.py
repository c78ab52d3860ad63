"""method='auto': the cost model, choose_method, calibrate and its cache file, the integer rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import fastconv
from fastconv import _auto
from fastconv._engines import fft as F

RNG = np.random.default_rng(7)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty per-user cache folder; the loaded constants are forgotten before and after."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    _auto.reset()
    yield tmp_path
    _auto.reset()


def test_choose_method_follows_the_obvious_cases():
    assert fastconv.choose_method(np.ones(1000), np.ones(3)) == "direct"
    assert fastconv.choose_method(np.ones(10), np.ones(10), mode="valid") == "direct"
    assert fastconv.choose_method(np.ones(1_000_000), np.ones(4095)) == "oa"
    assert fastconv.choose_method(np.ones((2000, 2000)), np.ones((201, 201)), mode="same") in (
        "fft",
        "oa",
    )
    assert fastconv.choose_method(2.0, 3.0) == "direct"


def test_auto_runs_the_method_choose_method_names():
    x = RNG.standard_normal(200_000)
    for k in (5, 4000):
        w = RNG.standard_normal(k)
        method = fastconv.choose_method(x, w)
        np.testing.assert_array_equal(
            fastconv.convolve(x, w), fastconv.convolve(x, w, method=method)
        )


def test_choose_method_measure_returns_times():
    method, times = fastconv.choose_method(np.ones(5000), np.ones(50), measure=True)
    assert set(times) == {"direct", "fft", "oa"}
    assert method == min(times, key=times.get)
    assert all(t > 0 for t in times.values())


def test_choose_method_validates_like_convolve():
    with pytest.raises(ValueError, match="mode must be one of"):
        fastconv.choose_method(np.ones(5), np.ones(2), mode="nope")
    with pytest.raises(ValueError, match="same dimensionality"):
        fastconv.choose_method(np.ones(5), np.ones((2, 2)))


def test_model_times_cover_every_engine_and_are_positive():
    from fastconv._plan import make_plan

    for n, k in ((10, 3), (10**6, 63), (10**6, 4095)):
        x, w = np.ones(n), np.ones(k)
        plan = make_plan(
            x, w, axes=(0,), pad_lo=(k - 1,), out_shape=(n + k - 1,), result_dtype=np.float64
        )
        times = _auto.model_times(plan, threads=2)
        assert set(times) == {"direct", "fft", "oa"} and all(t > 0 for t in times.values())
    plan = make_plan(
        x,
        w,
        axes=(0,),
        pad_lo=(k - 1,),
        out_shape=(n + k - 1,),
        result_dtype=np.float64,
        border="wrap",
    )
    assert set(_auto.model_times(plan, threads=2)) == {"direct"}


def test_model_counts_border_columns_down_the_rows_where_the_engine_does(monkeypatch):
    # The direct engine computes the border columns of large enough 2-D
    # calls down the rows (direct._edge_task): the model counts them 5x an
    # interior column there, 15x where they go column by column, by the
    # engine's own rule (direct.edge_rows).
    from fastconv._engines import direct
    from fastconv._plan import make_plan

    x, w = np.ones((512, 512), np.float32), np.ones((17, 17), np.float32)
    plan = make_plan(x, w, axes=(0, 1), pad_lo=(8, 8), out_shape=(512, 512), result_dtype=np.float32,
                     method="direct")
    assert direct.edge_rows(1, 16, 17, 17, 512, 512, (1, 1), 1, 8, np.float32) == (8, 504)
    down_the_rows = _auto.model_times(plan, threads=2)["direct"]
    monkeypatch.setattr(direct, "_EDGE_MIN_TAPS", math.inf)
    assert direct.edge_rows(1, 16, 17, 17, 512, 512, (1, 1), 1, 8, np.float32) is None
    column_by_column = _auto.model_times(plan, threads=2)["direct"]
    # The work grows by 10 units per border multiply-add; relative to the
    # whole work at 5 units (interior, border, 8 per output) that is the
    # share below, of which the model's fixed costs may take at most half.
    interior, border, outputs = 512 * 496 * 289, 512 * 16 * 289, 512 * 512
    share = 10 * border / (interior + 5 * border + 8 * outputs)
    assert column_by_column / down_the_rows - 1 > 0.5 * share


# --------------------------------------------------------------------------
# the integer rule
# --------------------------------------------------------------------------
def test_small_integers_may_use_the_fft_and_stay_exact():
    x = RNG.integers(-128, 128, 1_000_000).astype(np.int16)
    w = RNG.integers(-128, 128, 4095).astype(np.int16)
    assert fastconv.choose_method(x, w) == "oa"
    got = fastconv.convolve(x, w)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, fastconv.convolve(x, w, method="direct"))


def test_large_integers_fall_back_to_direct():
    # |values| ~ 2**40: the FFT error bound is far above 1/2
    x = RNG.integers(-(2**40), 2**40, 200_000)
    w = RNG.integers(-(2**40), 2**40, 4000)
    assert fastconv.choose_method(x, w) == "direct"
    assert fastconv.choose_method(x.astype(np.float64), w.astype(np.float64)) == "oa"


def test_the_exactness_bound_holds_at_its_edge():
    # Worst case for the bound's size: every value at the largest magnitude
    # the rule still accepts, with random signs.  Rounding must give the
    # exact result (computed with Python integers through int64 sums).
    n, k = 20000, 300
    m = F.fast_length(n + k - 1)
    for amp in (2**10, 2**14, 2**16, 2**18):
        x = RNG.choice([-amp, amp], n)
        w = RNG.choice([-amp, amp], k)
        exact = np.convolve(x, w)  # int64, no overflow at these sizes
        fft = np.rint(fastconv.fftconvolve(x, w)).astype(np.int64)
        if _auto.int_fft_exact(x, w, (m,)):
            np.testing.assert_array_equal(fft, exact)
    # the bound is meaningful: it accepts the small amplitudes
    assert _auto.int_fft_exact(
        RNG.choice([-(2**10), 2**10], n), RNG.choice([-(2**10), 2**10], k), (m,)
    )


def test_bool_inputs_are_exact():
    x = RNG.random(300_000) < 0.5
    w = RNG.random(3000) < 0.5
    got = fastconv.convolve(x, w)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, fastconv.convolve(x, w, method="direct"))


# --------------------------------------------------------------------------
# calibration and its cache file
# --------------------------------------------------------------------------
def test_calibrate_writes_the_cache_and_auto_uses_it(cache_dir, capsys):
    consts = fastconv.calibrate(repeat=1)
    assert "calibrating [" in capsys.readouterr().err
    assert set(consts) == {"direct", "fft", "oa"}
    for classes in consts.values():
        for o, r in classes.values():
            assert o >= 0 and r > 0 and math.isfinite(o + r)
    data = json.loads((cache_dir / "calibration.json").read_text())
    (key,) = data
    assert "fastconv" in key and "numba" in key and "numpy" in key
    _auto.reset()
    assert _auto.constants() == consts  # read back from the file


def test_calibrate_progress_off_and_no_save(cache_dir, capsys):
    fastconv.calibrate(repeat=1, progress=False, save=False)
    assert capsys.readouterr().err == ""
    assert not (cache_dir / "calibration.json").exists()


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"x": 1}', "", "\x00\x01"],
)
def test_a_corrupt_cache_file_means_defaults(cache_dir, content):
    (cache_dir / "calibration.json").write_text(content)
    assert _auto.constants() == _auto.DEFAULTS
    assert fastconv.choose_method(np.ones(1000), np.ones(3)) == "direct"


def test_a_cache_entry_with_bad_numbers_means_defaults(cache_dir):
    key = _auto._cache_key()
    bad = {m: {c: [float("nan"), -1.0] for c in cl} for m, cl in _auto.DEFAULTS.items()}
    (cache_dir / "calibration.json").write_text(json.dumps({key: bad}))
    assert _auto.constants() == _auto.DEFAULTS


def test_calibrate_rejects_bad_repeat():
    with pytest.raises(ValueError, match="repeat must be a positive integer; got 0"):
        fastconv.calibrate(repeat=0)


def test_calibration_rejects_implausible_timings(cache_dir, monkeypatch, capsys):
    # Timings 1000x the defaults (a machine busy with other work) are not
    # taken: the defaults stay, and the user is told.
    monkeypatch.setattr(_auto, "_fit", lambda pts, default: (default[0], default[1] * 1000))
    consts = fastconv.calibrate(repeat=1)
    assert consts == _auto.DEFAULTS
    assert "kept the default constants of direct float64" in capsys.readouterr().err

"""The command line (demo, info) and the thread-count settings."""

import platform
import subprocess
import sys

import numpy as np
import pytest

import fastconv


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "fastconv", *args], capture_output=True, text=True, timeout=600
    )


def test_demo_runs_and_shows_the_worked_example():
    result = _run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The background document's 1-D example, step by step, and its result.
    assert "c[3] = 0.5*0.25 + 1*0.5 + 1*1 = 1.625" in out
    assert "fastconv.convolve(a, b)   -> ['1', '1', '1.5', '1.625', '0.75', '0.25']" in out
    # The 2-D cross-correlation of the binary image with the 3x3 kernel.
    assert "[4, 3, 4]\n     [2, 4, 3]\n     [2, 3, 4]" in out
    assert "fastconv.convolve2d" in out and "ms" in out


def test_info_reports_threads_and_cache():
    result = _run("info")
    assert result.returncode == 0, result.stderr
    assert "threading layer:" in result.stdout
    assert f"fastconv: {fastconv.__version__}" in result.stdout


def test_unknown_command_is_refused():
    result = _run("nonsense")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_set_num_threads_round_trip():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        assert fastconv.get_num_threads() == 1
        x = np.arange(10.0)
        np.testing.assert_array_equal(fastconv.convolve(x, [1.0, 1.0]), np.convolve(x, [1.0, 1.0]))
    finally:
        fastconv.set_num_threads(before)
    assert fastconv.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 10**6])
def test_set_num_threads_out_of_range(bad):
    with pytest.raises(ValueError, match="n must be between 1 and"):
        fastconv.set_num_threads(bad)


def test_set_num_threads_needs_an_integer():
    with pytest.raises(TypeError, match="n must be an integer"):
        fastconv.set_num_threads(1.5)


def test_import_compiles_nothing():
    code = "import sys, fastconv; print('numba' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_bench_quick_prints_ratios_and_writes_json(tmp_path):
    import json

    path = tmp_path / "bench.json"
    result = _run("bench", "--quick", "--filter", "k=3 full", "--no-progress", "--json", str(path))
    assert result.returncode == 0, result.stderr
    assert "machine:" in result.stdout and "numpy.convolve" in result.stdout
    assert "(fastconv / floor)" in result.stdout
    data = json.loads(path.read_text())
    # The run kept freed memory in the process (glibc's allocator only).
    glibc = platform.libc_ver()[0] == "glibc"
    assert data["machine"]["freed memory"] == ("kept in the process (glibc)" if glibc else "allocator defaults")
    rows = data["rows"]
    assert {r["function"] for r in rows} >= {"fastconv", "numpy.convolve"}
    for r in rows:
        assert r["seconds"] > 0
        if r["function"] != "fastconv":
            ours = next(o for o in rows if o["case"] == r["case"] and o["function"] == "fastconv")
            assert abs(r["ratio"] - ours["seconds"] / r["seconds"]) < 1e-9 * r["ratio"]


def test_bench_refuses_a_filter_that_matches_nothing():
    result = _run("bench", "--quick", "--filter", "no such case")
    assert result.returncode != 0
    assert "matches no case" in result.stderr


def test_calibrate_command_writes_the_cache_file(tmp_path):
    import os

    env = dict(os.environ, FASTCONV_CACHE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "fastconv", "calibrate"], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert f"saved to {tmp_path / 'calibration.json'}" in result.stdout
    assert (tmp_path / "calibration.json").stat().st_size > 0


def test_bench_times_functions_in_blocks_over_shuffled_rounds():
    from fastconv._bench import median_times

    calls = []
    funcs = {name: (lambda name=name: calls.append(name)) for name in "abcd"}
    counts = {"a": 12, "b": 9, "c": 3, "d": 1}
    seconds = median_times(funcs, budget=0.0, min_repeat=counts, rounds=3)
    assert set(seconds) == set("abcd") and all(t >= 0 for t in seconds.values())
    # Two untimed calls each, then three rounds; in each round every function
    # with calls left runs one block: an untimed lead-in call (the functions
    # are short) then its third of the timed calls, back to back.
    assert calls[:8] == list("aabbccdd")
    blocks = []
    for name in calls[8:]:
        if blocks and blocks[-1][0] == name:
            blocks[-1][1] += 1
        else:
            blocks.append([name, 1])
    per_block = {"a": 4, "b": 3, "c": 1}
    assert len(blocks) == 10  # a, b, c in three rounds, d in the last
    assert all(n == 1 + per_block.get(name, 1) for name, n in blocks)
    assert {name for name, _ in blocks[:3]} == set("abc") and {name for name, _ in blocks[3:6]} == set("abc")
    assert sum(n - 1 for name, n in blocks if name == "d") == 1
    # The order changes from round to round (fixed seed: the same every run).
    assert [name for name, _ in blocks[:3]] != [name for name, _ in blocks[3:6]]

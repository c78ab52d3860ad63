"""Resources a user pays for: memory, start-up work and the kernel cache."""

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import fastconv

PACKAGE_DIR = Path(fastconv.__file__).parent


def _python(code, env=None, cwd=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def test_import_compiles_nothing_and_does_not_import_numba():
    # Kernels compile (or load from the cache) on first use, never at import:
    # importing numba alone costs about 0.4 s.
    result = _python(
        """
        import sys
        import fastconv
        heavy = [m for m in ("numba", "scipy", "torch", "dask", "jax") if m in sys.modules]
        print(heavy)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("shape", [(8192, 8192)])
def test_same_mode_filtering_allocates_only_the_output(shape):
    # The border is virtual: filtering a float32 image in 'same' mode must not
    # make a padded (or any other full-size) copy of it.  NumPy reports its
    # allocations to tracemalloc; the engine's per-thread scratch (a few
    # kernel-sized arrays) is allocated by Numba and is negligible.  Budget:
    # output + 20 % of (input + output), the robustness issue's bound.
    image = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    kernel = np.random.default_rng(1).standard_normal((5, 5), dtype=np.float32)
    fastconv.convolve2d(image[:64, :64], kernel, mode="same")  # compile outside the window
    nbytes = image.nbytes
    tracemalloc.start()
    try:
        out = fastconv.convolve2d(image, kernel, mode="same")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == shape and out.dtype == np.float32
    assert peak <= out.nbytes + 0.2 * (nbytes + out.nbytes), peak / nbytes


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="file permissions do not bind the root user, so no folder is read-only",
)
def test_read_only_installation_uses_the_user_cache(tmp_path):
    # A package installed into a read-only folder cannot write __pycache__
    # next to its sources; Numba then caches under the per-user cache folder.
    site = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, site / "fastconv", ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    (site).chmod(site.stat().st_mode & ~stat.S_IWUSR)
    cache_home = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(cache_home), FASTCONV_CACHE="1")
    code = """
        import numpy as np, fastconv
        from fastconv._config import info
        out = fastconv.convolve([1.0, 0.5, 1.0, 1.0], [1.0, 0.5, 0.25])
        assert np.allclose(out, [1, 1, 1.5, 1.625, 0.75, 0.25]), out
        print(fastconv.__file__)
        print(info()["cache location"])
    """
    try:
        result = _python(code, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        module_file, location = result.stdout.strip().splitlines()[-2:]
        assert module_file.startswith(str(site))
        assert location.startswith(str(cache_home / "numba"))
        assert any(p.suffix == ".nbi" for p in Path(location).glob("*")), "no cache index written"
        # A second process loads the kernels from that cache.
        again = _python(code, env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        for path in [site, *site.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.skipif(
    os.environ.get("FASTCONV_TEST_LARGE") != "1",
    reason="needs about 17 GiB of memory; set FASTCONV_TEST_LARGE=1 to run",
)
def test_more_than_2_to_the_31_elements_index_correctly():
    # Engines index with 64-bit integers.  A (2**16 + 1) x 2**15 float32 image
    # has more than 2**31 elements, so a 32-bit index would wrap in its last
    # rows; compare the last rows (and the first) against a direct NumPy sum.
    rows, cols = 2**16 + 1, 2**15
    image = np.empty((rows, cols), dtype=np.float32)
    image[:] = np.arange(cols, dtype=np.float32) % 251
    image[-8:] += np.arange(8, dtype=np.float32)[:, None]
    kernel = np.array([[1, 2, 1], [0, 1, 0], [1, 0, 3]], dtype=np.float32)
    out = fastconv.correlate2d(image, kernel, mode="valid")
    assert out.shape == (rows - 2, cols - 2)
    for r in (0, rows - 3):
        window = image[r : r + 3].astype(np.float64)
        expect = sum(
            kernel[i, j] * window[i, j : j + cols - 2] for i in range(3) for j in range(3)
        )
        # Values are integers below 2**24: float32 sums are exact.
        np.testing.assert_array_equal(out[r], expect.astype(np.float32))


# --- large results in recycled memory (fastconv._results) ----------------------------

def _large_case(kind="signal"):
    rng = np.random.default_rng(5)
    if kind == "nn":  # a 4 MiB float32 result of a CNN layer, just large enough
        x = rng.standard_normal((2, 32, 128, 128)).astype(np.float32)
        w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
        return x, w, lambda: fastconv.nn.conv2d(x, w, padding=1)
    x = rng.standard_normal((2048, 2048))  # a 32 MiB float64 result
    w = rng.standard_normal((3, 3))
    return x, w, lambda: fastconv.convolve(x, w, mode="same", method="direct")


@pytest.mark.parametrize("kind", ["signal", "nn"])
def test_a_large_result_reuses_memory_only_once_nothing_refers_to_it(kind):
    import gc

    from fastconv import _results

    _, _, call = _large_case(kind)
    _results.release()
    first = call()
    want = first.copy()
    assert _results.kept_bytes() == 0  # held by the caller
    view = first[..., 7:, 3:]
    del first
    gc.collect()
    assert _results.kept_bytes() == 0  # a view still uses the block
    second = call()
    assert not np.may_share_memory(second, view)
    np.testing.assert_array_equal(view, want[..., 7:, 3:])
    address = view.base.ctypes.data if view.base is not None else view.ctypes.data
    del view
    gc.collect()
    assert _results.kept_bytes() > 0  # nothing uses the first block now
    third = call()  # written into it
    assert _results.kept_bytes() == 0
    assert third.ctypes.data - address < 8192
    np.testing.assert_array_equal(third, want)
    np.testing.assert_array_equal(second, want)
    torch = pytest.importorskip("torch")
    tensor = torch.from_numpy(third)
    del third
    gc.collect()
    assert _results.kept_bytes() == 0  # the tensor uses the block
    fourth = call()
    assert not np.may_share_memory(fourth, tensor.numpy())
    np.testing.assert_array_equal(tensor.numpy(), want)


def test_large_results_of_concurrent_callers_never_share_memory():
    import threading

    _, _, call = _large_case()
    want = call()
    held, errors = [], []

    def worker():
        for _ in range(6):
            result = call()
            held.append(result)  # every result stays alive
            if not np.array_equal(result, want):
                errors.append("wrong values")

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, a in enumerate(held):
        for b in held[i + 1:]:
            assert not np.may_share_memory(a, b)
        np.testing.assert_array_equal(a, want)


def test_recycling_can_be_turned_off():
    result = _python(
        """
        import gc, numpy as np, fastconv
        from fastconv import _results
        x = np.ones((2048, 2048))
        fastconv.convolve(x, np.ones((3, 3)), mode="same", method="direct")
        gc.collect()
        from fastconv._config import info
        print(_results.kept_bytes(), info()["large results"])
        """,
        env=dict(os.environ, FASTCONV_RECYCLE="0"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "0"
    assert "FASTCONV_RECYCLE=0" in result.stdout

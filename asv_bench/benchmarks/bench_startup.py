"""Start-up costs, each measured in a fresh Python process.

* ``ImportTime.track_import``: ``import fastconv`` (numpy and numba included,
  as a user's script pays them).
* ``FirstCall.track_first_call``: the first call of a public function in a
  process, timed inside the child after the import.  ``cold``: with
  ``NUMBA_CACHE_DIR`` pointing at an empty folder, so every kernel compiles
  (the first run after an install); ``setup_cache`` measures it once per
  case, since it also fills the folder.  ``warm``: a fresh process on that
  filled folder, so kernels load from disk (every later run of a user's
  script).  One case per engine: ``convolve`` 1-D float64 and
  ``convolve2d`` float32 7x7 (the direct engine, general and fused
  window), ``fftconvolve`` 1-D float64 (FFT), and float32 ``nn.conv2d``
  layers: 3x3 (Winograd), 5x5 (channel contraction) and 5x5 depthwise
  (skipped on commits without ``fastconv.nn``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

IMPORT = """
import time
start = time.perf_counter()
import fastconv
print(time.perf_counter() - start)
"""

FIRST_CALL = """
import sys, time
import numpy as np
import fastconv
case = sys.argv[1]
rng = np.random.default_rng(0)
if case.startswith("nn-") and not hasattr(fastconv, "nn"):
    print("missing")  # a commit before the nn face
    raise SystemExit(0)
if case == "convolve-1d-float64":
    args, kwargs, func = (rng.standard_normal(10_000), rng.standard_normal(15)), {}, fastconv.convolve
elif case == "convolve2d-float32":
    args = (rng.standard_normal((256, 256)).astype("float32"),
            rng.standard_normal((7, 7)).astype("float32"))
    kwargs, func = {"mode": "same"}, fastconv.convolve2d
elif case == "nn-conv2d-float32":
    args = (rng.standard_normal((1, 16, 28, 28)).astype("float32"),
            rng.standard_normal((16, 16, 3, 3)).astype("float32"))
    kwargs, func = {"padding": 1}, fastconv.nn.conv2d
elif case == "fftconvolve-1d-float64":
    args, kwargs, func = (rng.standard_normal(100_000), rng.standard_normal(1000)), {}, fastconv.fftconvolve
elif case in ("nn-conv2d-5x5-float32", "nn-depthwise-float32"):
    depthwise = case == "nn-depthwise-float32"
    args = (rng.standard_normal((1, 32, 28, 28)).astype("float32"),
            rng.standard_normal((32, 1 if depthwise else 32, 5, 5)).astype("float32"))
    kwargs, func = {"padding": 2, "groups": 32 if depthwise else 1}, fastconv.nn.conv2d
else:
    raise SystemExit("unknown case " + case)
start = time.perf_counter()
func(*args, **kwargs)
print(time.perf_counter() - start)
"""

CASES = ["convolve-1d-float64", "convolve2d-float32", "nn-conv2d-float32", "fftconvolve-1d-float64",
         "nn-conv2d-5x5-float32", "nn-depthwise-float32"]


def _child_seconds(code: str, *args: str, cache_dir: str | None = None) -> float | None:
    """The seconds a fresh interpreter running ``code`` prints (None: the feature is missing)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    last = out.stdout.split()[-1]
    return None if last == "missing" else float(last)


class ImportTime:
    """Seconds to ``import fastconv`` in a fresh interpreter (median of three)."""

    unit = "seconds"
    timeout = 120

    def track_import(self):
        return statistics.median(_child_seconds(IMPORT) for _ in range(3))


class FirstCall:
    """Seconds of the first call in a fresh process: compile (cold) or load from cache (warm)."""

    params = [CASES, ["cold", "warm"]]
    param_names = ["case", "cache"]
    unit = "seconds"
    timeout = 120

    def setup_cache(self):
        # One folder of compiled kernels per case; the run that fills it is the cold measurement.
        root = os.path.abspath("numba-cache")
        cold = {
            case: _child_seconds(FIRST_CALL, case, cache_dir=os.path.join(root, case))
            for case in CASES
        }
        return root, cold

    setup_cache.timeout = 600

    def setup(self, prepared, case, cache):
        if prepared[1][case] is None:
            raise NotImplementedError(f"{case}: fastconv at this commit lacks the function")

    def track_first_call(self, prepared, case, cache):
        root, cold = prepared
        if cache == "cold":
            return cold[case]
        return _child_seconds(FIRST_CALL, case, cache_dir=os.path.join(root, case))

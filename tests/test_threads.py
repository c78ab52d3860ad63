"""Many Python threads calling fastconv at once get correct results and no crash."""

from __future__ import annotations

import threading
import time

import numpy as np

import fastconv
from fastconv import ndimage


def test_32_threads_call_concurrently(rng):
    # Numba's 'omp' and 'tbb' threading layers accept parallel kernels
    # launched from many threads at once ('workqueue' would abort the
    # process); fastconv never selects 'workqueue'.
    x = rng.standard_normal((64, 300))
    k = rng.standard_normal((3, 5))
    img = rng.standard_normal((40, 50)).astype(np.float32)
    expected = fastconv.convolve(x, k)
    expected_img = ndimage.correlate(img, k.astype(np.float32))
    errors = []
    calls = [0] * 32
    stop = time.monotonic() + 3.0

    def work(i):
        try:
            while time.monotonic() < stop:
                if not np.array_equal(fastconv.convolve(x, k), expected):
                    errors.append(f"thread {i}: convolve differs")
                if not np.array_equal(ndimage.correlate(img, k.astype(np.float32)), expected_img):
                    errors.append(f"thread {i}: ndimage.correlate differs")
                calls[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert all(c > 0 for c in calls)

"""Process-wide settings, read once from ``FASTCONV_*`` environment variables.

``FASTCONV_CACHE``
    ``0`` disables Numba's on-disk cache of compiled kernels (default ``1``).
"""

from __future__ import annotations

import os


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


CACHE = _flag("FASTCONV_CACHE", True)

"""Process-wide settings, read once from ``FASTCONV_*`` environment variables.

``FASTCONV_CACHE``
    ``0`` disables Numba's on-disk cache of compiled kernels (default ``1``).
``FASTCONV_WINOGRAD``
    ``0`` makes CNN layers use direct summation (im2col + BLAS) instead of
    Winograd's algorithm for 3x3 stride-1 layers (default ``1``); ``2``
    keeps Winograd to its small tile, F(2x2, 3x3), on every layer; see
    :mod:`fastconv.nn`.
``FASTCONV_RECYCLE``
    ``0`` gives every large result (32 MiB or more) fresh memory, instead of
    the memory of a large result the caller has dropped (default ``1``; see
    :mod:`fastconv._results`).
``FASTCONV_CACHE_DIR``
    Folder of fastconv's own per-user files (the calibration of
    ``method='auto'``); default ``$XDG_CACHE_HOME/fastconv`` or
    ``~/.cache/fastconv``.  Read when a file is needed, so tests can set it.
"""

from __future__ import annotations

import os


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


CACHE = _flag("FASTCONV_CACHE", True)
WINOGRAD = _flag("FASTCONV_WINOGRAD", True)
WINOGRAD_LARGE_TILES = WINOGRAD and os.environ.get("FASTCONV_WINOGRAD", "").strip() != "2"
RECYCLE = _flag("FASTCONV_RECYCLE", True)


def user_cache_dir() -> str:
    """fastconv's per-user cache folder (``FASTCONV_CACHE_DIR`` overrides it); not created here."""
    folder = os.environ.get("FASTCONV_CACHE_DIR")
    if folder:
        return folder
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastconv")


def get_num_threads() -> int:
    """Number of threads fastconv's parallel kernels use.

    Returns
    -------
    n : int
        The thread count for calls from the current Python thread.  It
        defaults to the number of CPU cores, or ``NUMBA_NUM_THREADS`` when
        set, until :func:`set_num_threads` lowers it.

    See Also
    --------
    set_num_threads : Change the thread count.

    Notes
    -----
    fastconv's kernels run on Numba's thread pool; this is
    :func:`numba.get_num_threads`.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.get_num_threads() >= 1
    True
    """
    return threads()


def threads() -> int:
    """:func:`get_num_threads`, without Numba's launch check once its threads run (a few microseconds a call).

    ``numba.get_num_threads`` takes two locks on every call to see whether the
    thread pool has started; fastconv asks for the count on every call, which
    on a 1000-sample convolution was a fifth of its time.  Once the pool runs
    the count is read directly from the threading layer (where this Numba
    has no such function, through ``numba.get_num_threads``).
    """
    if _read_count is not None:
        n = _read_count()
        if n > 0:
            return n
    import numba

    n = numba.get_num_threads()
    _fast_count()
    return n


_read_count = None


def _fast_count() -> None:
    global _read_count
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - another Numba layout
        return
    if getattr(parallel, "_is_initialized", False) and callable(getattr(parallel, "_get_num_threads", None)):
        _read_count = parallel._get_num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in fastconv's parallel kernels (1 <= n <= ``NUMBA_NUM_THREADS``).

    Parameters
    ----------
    n : int
        Number of threads, from 1 to ``NUMBA_NUM_THREADS`` (the size of
        Numba's thread pool: the number of CPU cores unless that environment
        variable was set before Numba started).

    Raises
    ------
    TypeError
        If `n` is not an integer.
    ValueError
        If `n` is less than 1 or more than ``NUMBA_NUM_THREADS``.

    See Also
    --------
    get_num_threads : The current thread count.

    Notes
    -----
    The setting is per Python thread, as in Numba.  With a given method,
    results do not depend on it: each output element is computed in the same
    order whatever the thread count.  ``method='auto'`` weighs the thread
    count when it picks an engine, so it may pick another one, whose result
    differs by rounding.

    Examples
    --------
    >>> import fastconv
    >>> n = fastconv.get_num_threads()
    >>> fastconv.set_num_threads(1)
    >>> fastconv.get_num_threads()
    1
    >>> fastconv.set_num_threads(n)  # back to the previous count
    """
    import operator

    import numba

    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer; got {n!r}") from None
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"n must be between 1 and {limit} (NUMBA_NUM_THREADS); got {n}")
    numba.set_num_threads(n)


def info() -> dict:
    """Versions, threading and cache facts, as printed by ``python -m fastconv info``."""
    import platform

    import numba
    import numpy

    from . import __version__

    facts = {
        "fastconv": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": get_num_threads(),
        "threading layer": _threading_layer(),
        "kernel cache": "on" if CACHE else "off (FASTCONV_CACHE=0)",
        "cache location": _cache_location(),
        "winograd": ("off (FASTCONV_WINOGRAD=0)" if not WINOGRAD
                     else "on (dense 3x3 CNN layers, F(4x4, 3x3) and F(2x2, 3x3))" if WINOGRAD_LARGE_TILES
                     else "on (dense 3x3 CNN layers, F(2x2, 3x3) only: FASTCONV_WINOGRAD=2)"),
        "large results": "in recycled memory" if RECYCLE else "in fresh memory (FASTCONV_RECYCLE=0)",
    }
    return facts


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _threading_layer() -> str:
    import numba

    from ._engines import direct

    # The layer is chosen when the first parallel kernel runs; run a tiny one.
    direct.warm_up()
    return numba.threading_layer()


def _cache_location() -> str:
    """Where Numba keeps fastconv's compiled kernels.

    Next to the engine sources (``__pycache__``) when that folder is writable;
    otherwise, for a read-only installation, Numba's per-user cache folder
    (``$XDG_CACHE_HOME/numba/...``); ``NUMBA_CACHE_DIR`` overrides both.
    Numba keys each entry on the source file's modification time and size and
    on its own version, so upgrading fastconv or Numba invalidates the cache.
    """
    import numba
    from numba.core.caching import UserWideCacheLocator
    from numba.misc.appdirs import AppDirs

    from ._engines import direct

    if not CACHE:
        return "-"
    override = numba.config.CACHE_DIR
    if override:
        return override
    folder = os.path.join(os.path.dirname(direct.__file__), "__pycache__")
    if os.access(os.path.dirname(folder), os.W_OK):
        return folder
    user_dir = AppDirs(appname="numba", appauthor=False).user_cache_dir
    return os.path.join(user_dir, UserWideCacheLocator.get_suitable_cache_subpath(direct.__file__))

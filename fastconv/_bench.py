"""``python -m fastconv bench``: fastconv against the libraries users would pick instead.

Every case times fastconv and each installed anchor (NumPy, SciPy, OpenCV,
...) in the same run, on the same data, and reports medians, the ratio
``fastconv time / anchor time`` (below 1 means fastconv is faster), GFLOP/s
and the *memory floor*: the time of one plain copy of the input into an
output-sized array, which no implementation can beat by much on
memory-bound cases.  Compile time is never measured as run time: each
function runs once before it is timed.

A case is a :class:`Case`; the grids below are the foundation issue's
targets.  Other modules may contribute cases through a ``CASES`` list (see
:func:`contributed_cases`).
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import signal

Timer = Callable[[], object]


@dataclass
class Case:
    """One workload: fastconv's call, the anchors' calls, the copy floor and the work done."""

    group: str
    name: str
    setup: Callable[[], dict]  # builds the data and returns {"fastconv": f, "anchors": {...}, "floor": f}
    flops: float
    target: str = ""  # the target, printed beside the case


@dataclass
class Row:
    group: str
    case: str
    function: str
    seconds: float
    ratio: float | None  # fastconv / this function; None for fastconv itself
    gflops: float
    floor: float | None
    target: str = ""


@dataclass
class Measurement:
    machine: dict
    rows: list = field(default_factory=list)


# --- timing -------------------------------------------------------------------------


def median_times(funcs: dict[object, Timer], *, budget: float = 0.4, min_repeat: dict | None = None,
                 max_repeat: int = 100, rounds: int = 5) -> dict:
    """Median wall time of each of ``funcs``, timed in blocks of back-to-back calls over a few rounds.

    Each function is called twice untimed: the first call may compile or
    load kernels; the second, warm, one sizes its number of timed calls to
    about ``budget`` seconds (at least ``min_repeat[name]``, default 3, at
    most ``max_repeat``: calls of a millisecond get a hundred, so that a
    slow spell of a few milliseconds cannot decide their median).
    Those calls are split into ``rounds`` blocks, one block per function per
    round, in an order shuffled from round to round (with a fixed seed): a
    slow spell of the machine falls on every function alike instead of on
    whichever was timed then.  Within a block the calls run back to back, as
    a user's repeated calls do, after one untimed call for functions under
    20 ms: the libraries' thread pools keep spinning for a while after a
    call (OpenMP, OpenBLAS, OpenCV), and on a machine with few cores the
    first call after another library's runs slower.
    """
    min_repeat = min_repeat or {}
    names = list(funcs)
    repeat, short = {}, {}
    for name in names:
        funcs[name]()
        start = time.perf_counter()
        funcs[name]()
        second = time.perf_counter() - start
        repeat[name] = int(min(max_repeat, max(min_repeat.get(name, 3), budget / max(second, 1e-9))))
        short[name] = second < 0.02
    times = {name: [] for name in names}
    order = np.random.default_rng(0)
    for r in range(rounds):
        for i in order.permutation(len(names)):
            name = names[i]
            n = repeat[name] * (r + 1) // rounds - repeat[name] * r // rounds
            if n and short[name] and len(names) > 1:
                funcs[name]()
            for _ in range(n):
                start = time.perf_counter()
                funcs[name]()
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


# Whether :func:`keep_freed_memory` set glibc up (reported with the machine).
_FREED_MEMORY_KEPT = False


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory in the process for the rest of the run; False where it cannot.

    With glibc's defaults, memory a library frees goes back to the OS
    (blocks of 32 MiB or more at once, the heap's top past a threshold), and
    the next call's large outputs and temporaries come back as fresh pages,
    a page fault each: PyTorch's 7x7 stride-2 first layer took 18 ms that
    way and 6.8 ms in memory it had written before, on a machine where
    faults are slow.  A long-running program mostly reaches that steady
    state anyway, and which library pays for fresh pages then depends on
    what ran before it in the process.  So the bench sets it up front, for
    every library alike: no memory is mapped for one block, and the heap
    is not given back while less than 1 GiB of it is free.
    """
    global _FREED_MEMORY_KEPT
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    _FREED_MEMORY_KEPT = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
    return _FREED_MEMORY_KEPT


# --- anchors ----------------------------------------------------------------------


def _optional(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


def _cv2(threads: int):
    cv2 = _optional("cv2")
    if cv2 is not None:
        cv2.setNumThreads(threads)
    return cv2


# --- the standard grid ----------------------------------------------------------------


def signal_1d_cases(quick: bool) -> list[Case]:
    n = 100_000 if quick else 1_000_000
    cases = []
    for dtype in (np.float64, np.float32):
        for k in (3, 15, 63):
            def setup(dtype=dtype, k=k):
                rng = np.random.default_rng(0)
                x = rng.standard_normal(n).astype(dtype)
                v = rng.standard_normal(k).astype(dtype)
                out = np.empty(n + k - 1, dtype)
                anchors = {"numpy.convolve": lambda: np.convolve(x, v)}
                sps = _optional("scipy.signal")
                if sps is not None:
                    anchors["scipy.signal.convolve(direct)"] = lambda: sps.convolve(x, v, method="direct")
                return {
                    "fastconv": lambda: signal.convolve(x, v),
                    "anchors": anchors,
                    "floor": lambda: np.copyto(out[:n], x),
                }

            target = ("<= 0.85x the faster anchor, or <= 1.15x the floor" if k == 3
                      else "<= 0.25x the faster anchor")
            cases.append(Case("1-D signal", f"{np.dtype(dtype).name} n={n:,} k={k} full", setup,
                              2.0 * n * k, target))
    return cases


def image_2d_cases(quick: bool, threads: int) -> list[Case]:
    size = 512 if quick else 2048
    cases = []
    for dtype in (np.float32, np.float64):
        for k in (3, 5, 7):
            def setup(dtype=dtype, k=k):
                rng = np.random.default_rng(1)
                img = rng.standard_normal((size, size)).astype(dtype)
                ker = rng.standard_normal((k, k)).astype(dtype)
                out = np.empty_like(img)
                anchors = {}
                cv2 = _cv2(threads)
                if cv2 is not None:
                    # filter2D correlates; flip the kernel for a convolution,
                    # and anchor its centre as scipy's 'same' does.
                    flipped = np.ascontiguousarray(ker[::-1, ::-1])
                    anchors["cv2.filter2D"] = lambda: cv2.filter2D(
                        img, -1, flipped, anchor=(k // 2, k // 2), borderType=cv2.BORDER_CONSTANT
                    )
                ndi = _optional("scipy.ndimage")
                sps = _optional("scipy.signal")
                if ndi is not None:
                    anchors["scipy.ndimage.convolve"] = lambda: ndi.convolve(img, ker, mode="constant")
                if sps is not None:
                    anchors["scipy.signal.convolve2d"] = lambda: sps.convolve2d(img, ker, mode="same")
                return {
                    "fastconv": lambda: signal.convolve2d(img, ker, mode="same"),
                    "anchors": anchors,
                    "floor": lambda: np.copyto(out, img),
                }

            target = ("<= 1.0x cv2.filter2D (or <= 1.15x the floor), <= 0.05x scipy"
                      if dtype == np.float32 else "<= 0.5x cv2.filter2D, <= 0.05x scipy")
            cases.append(Case("2-D image", f"{np.dtype(dtype).name} {size}x{size} {k}x{k} same", setup,
                              2.0 * size * size * k * k, target))
    return cases


def batched_cases(quick: bool, threads: int) -> list[Case]:
    rows = 64 if quick else 512
    cases = []
    for dtype in (np.float64, np.float32):
        def setup(dtype=dtype):
            rng = np.random.default_rng(2)
            x = rng.standard_normal((rows, 4096)).astype(dtype)
            v = rng.standard_normal((1, 63)).astype(dtype)
            out = np.empty((rows, 4096 + 62), dtype)
            anchors = {}
            sps = _optional("scipy.signal")
            if sps is not None:
                anchors["scipy.signal.fftconvolve(axes=-1)"] = lambda: sps.fftconvolve(x, v, axes=-1)
            fft = _optional("scipy.fft")
            if fft is not None and sps is not None:
                def workers():
                    with fft.set_workers(threads):
                        return sps.fftconvolve(x, v, axes=-1)

                anchors[f"scipy fftconvolve, {threads} workers"] = workers
            return {
                "fastconv": lambda: signal.convolve(x, v, axes=-1),
                "anchors": anchors,
                "floor": lambda: np.copyto(out[:, :4096], x),
            }

        cases.append(Case("batched 1-D", f"{np.dtype(dtype).name} {rows}x4096 k=63 axes=-1", setup,
                          2.0 * rows * 4096 * 63))
    return cases


def ndimage_cases(quick: bool, threads: int) -> list[Case]:
    """The ndimage issue's grid: 2-D reflect filters, a separable Gaussian, a 3-D volume."""
    from . import ndimage

    size = 512 if quick else 2048
    cases = []
    for k in (3, 5, 7, 15, 31):
        def setup(k=k):
            rng = np.random.default_rng(3)
            img = rng.standard_normal((size, size)).astype(np.float32)
            ker = rng.standard_normal((k, k)).astype(np.float32)
            out = np.empty_like(img)
            anchors = {}
            cv2 = _cv2(threads)
            if cv2 is not None:
                anchors["cv2.filter2D(BORDER_REFLECT)"] = lambda: cv2.filter2D(
                    img, -1, ker, borderType=cv2.BORDER_REFLECT)
            ndi = _optional("scipy.ndimage")
            if ndi is not None and (not quick or k <= 15):
                anchors["scipy.ndimage.correlate"] = lambda: ndi.correlate(img, ker, mode="reflect")
            return {"fastconv": lambda: ndimage.correlate(img, ker, mode="reflect"),
                    "anchors": anchors, "floor": lambda: np.copyto(out, img)}

        cases.append(Case("ndimage", f"float32 {size}x{size} {k}x{k} reflect", setup,
                          2.0 * size * size * k * k,
                          "<= 0.1x scipy.ndimage.correlate, <= 1.0x cv2.filter2D"))

    gsize = 1024 if quick else 4096

    def gaussian():
        rng = np.random.default_rng(4)
        img = rng.standard_normal((gsize, gsize)).astype(np.float32)
        t = np.arange(-15, 16)
        g = np.exp(-0.5 * (t / 5.0) ** 2)
        g /= g.sum()
        ker = np.outer(g, g).astype(np.float32)
        out = np.empty_like(img)
        anchors = {}
        ndi = _optional("scipy.ndimage")
        if ndi is not None:
            anchors["scipy.ndimage.gaussian_filter"] = lambda: ndi.gaussian_filter(
                img, 5.0, mode="reflect", truncate=3.0)
        cv2 = _cv2(threads)
        if cv2 is not None:
            anchors["cv2.sepFilter2D"] = lambda: cv2.sepFilter2D(
                img, -1, g.astype(np.float32), g.astype(np.float32), borderType=cv2.BORDER_REFLECT)
        return {"fastconv": lambda: ndimage.correlate(img, ker, mode="reflect"),
                "anchors": anchors, "floor": lambda: np.copyto(out, img)}

    cases.append(Case("ndimage", f"float32 {gsize}x{gsize} Gaussian 31x31 (separable)", gaussian,
                      2.0 * gsize * gsize * 62, "<= 0.5x scipy.ndimage.gaussian_filter"))

    vsize = 64 if quick else 256

    def volume():
        rng = np.random.default_rng(5)
        vol = rng.standard_normal((vsize,) * 3).astype(np.float32)
        ker = rng.standard_normal((5, 5, 5)).astype(np.float32)
        out = np.empty_like(vol)
        anchors = {}
        ndi = _optional("scipy.ndimage")
        if ndi is not None:
            anchors["scipy.ndimage.convolve"] = lambda: ndi.convolve(vol, ker)
        return {"fastconv": lambda: ndimage.convolve(vol, ker), "anchors": anchors,
                "floor": lambda: np.copyto(out, vol)}

    cases.append(Case("ndimage", f"float32 {vsize}^3 5x5x5 reflect", volume, 2.0 * vsize**3 * 125,
                      "<= 0.1x scipy.ndimage.convolve"))
    return cases


def contributed_cases() -> list[Case]:
    """Cases other fastconv modules contribute as a module-level ``CASES`` list.

    Each entry is a :class:`Case` or a dict with keys ``name``, ``fastconv``,
    ``anchors``, ``floor`` and ``flops`` (and optionally ``group`` and ``target``).
    """
    found = []
    for module in ("_bench_fft", "_bench_nn"):
        mod = _optional(f"{__package__}.{module}")
        for entry in getattr(mod, "CASES", []) if mod is not None else []:
            if isinstance(entry, Case):
                found.append(entry)
                continue
            parts = {key: entry[key] for key in ("fastconv", "anchors", "floor")}
            found.append(Case(entry.get("group", module.strip("_").replace("bench_", "")), entry["name"],
                              lambda parts=parts: parts, float(entry["flops"]), entry.get("target", "")))
    return found


def dask_cases(quick: bool) -> list[Case]:
    """A large image in chunks, on a local two-process Dask cluster and on Dask's threaded scheduler,
    against the same call in memory.

    On the cluster the input is persisted on the workers before timing, and
    the timed call persists the result there: the time is the computation,
    not transfers.  The threaded scheduler runs the same graph in this
    process, with as many threads as fastconv has.
    """
    size, chunk = (2048, 512) if quick else (16384, 2048)
    name = f"float32 {size}x{size} in {chunk}x{chunk} chunks, 7x7 reflect"

    def data():
        rng = np.random.default_rng(6)
        img = rng.standard_normal((size, size), dtype=np.float32)
        return img, rng.standard_normal((7, 7)).astype(np.float32)

    def modules():
        da = _optional("dask.array")
        distributed = _optional("distributed")
        if da is None or distributed is None:
            raise RuntimeError("the dask case needs dask[array] and distributed")
        return da, distributed

    def timed(lazy, ker, persist):
        from . import ndimage

        calls = itertools.count()

        def call():
            # Dask names results by their inputs: a kernel scaled by a new
            # factor makes every call compute (the same work), instead of
            # reusing a previous call's result still held in memory.
            scaled = ker * np.float32(1 + 2.0**-20 * next(calls))
            persist(ndimage.correlate(lazy, scaled, mode="reflect"))

        return call

    def parts(img, ker, call, **extra):
        from . import ndimage

        out = np.empty_like(img)
        return {"fastconv": call,
                "anchors": {"fastconv in memory": lambda: ndimage.correlate(img, ker, mode="reflect")},
                "floor": lambda: np.copyto(out, img), **extra}

    def on_cluster():
        da, distributed = modules()
        img, ker = data()
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
        lazy = client.persist(da.from_array(img, chunks=(chunk, chunk)))
        distributed.wait(lazy)
        call = timed(lazy, ker, lambda result: distributed.wait(client.persist(result)))
        return parts(img, ker, call, close=lambda: (client.close(), cluster.close()))

    def on_threads():
        da, _ = modules()
        img, ker = data()
        lazy = da.from_array(img, chunks=(chunk, chunk))
        call = timed(lazy, ker, lambda result: result.persist(scheduler="threads", num_workers=_threads()))
        return parts(img, ker, call)

    target = "<= 1.5x the in-memory time"
    return [Case("dask", f"{name}, 2 workers", on_cluster, 2.0 * size * size * 49, target),
            Case("dask", f"{name}, threaded scheduler", on_threads, 2.0 * size * size * 49, target)]


def standard_cases(quick: bool = False, threads: int | None = None) -> list[Case]:
    threads = threads or _threads()
    return (signal_1d_cases(quick) + image_2d_cases(quick, threads) + batched_cases(quick, threads)
            + ndimage_cases(quick, threads) + contributed_cases())


# --- running and reporting -------------------------------------------------------------


def _threads() -> int:
    import numba

    return numba.get_num_threads()


def machine() -> dict:
    from ._config import info

    facts = info()
    # Results are published (docs/benchmarks.json): no local paths in them.
    facts.pop("cache location", None)
    facts["cpu flags"] = " ".join(_vector_flags())
    facts["platform"] = f"{platform.system()} {platform.machine()}"
    facts["freed memory"] = "kept in the process (glibc)" if _FREED_MEMORY_KEPT else "allocator defaults"
    for module in ("scipy", "cv2", "torch"):
        mod = _optional(module)
        if mod is not None:
            facts[module] = getattr(mod, "__version__", "?")
    return facts


def _vector_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    keep = ("avx", "fma", "sse4_2", "neon", "asimd")
                    return sorted({f for f in flags if f.startswith(keep) and not f.endswith("_vnni")})
    except OSError:
        pass
    return [platform.machine()]


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r[{bar}] {done}/{total} {label[:50]:<50}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run_cases(cases: list[Case], *, budget: float = 0.4, progress: bool = True) -> Measurement:
    result = Measurement(machine=machine())
    for i, case in enumerate(cases):
        if progress:
            _progress(i, len(cases), case.name)
        parts = case.setup()
        funcs = {("fastconv",): parts["fastconv"]}
        if parts.get("floor"):
            funcs[("floor",)] = parts["floor"]
        funcs.update({("anchor", name): func for name, func in parts["anchors"].items()})
        # A slow anchor may be timed once; fastconv and the floor at least three times.
        seconds = median_times(funcs, budget=budget, min_repeat={key: 1 for key in funcs if key[0] == "anchor"})
        ours = seconds[("fastconv",)]
        floor = seconds.get(("floor",))
        result.rows.append(Row(case.group, case.name, "fastconv", ours, None, case.flops / ours / 1e9, floor,
                               case.target))
        for name in parts["anchors"]:
            t = seconds[("anchor", name)]
            result.rows.append(Row(case.group, case.name, name, t, ours / t, case.flops / t / 1e9, floor))
        if "close" in parts:
            parts["close"]()
        del parts
    if progress:
        _progress(len(cases), len(cases), "done")
    return result


def format_table(result: Measurement) -> str:
    lines = []
    m = result.machine
    lines.append(f"machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('threads')} threads, "
                 f"flags: {m.get('cpu flags')}")
    versions = ", ".join(f"{k} {m[k]}" for k in ("fastconv", "numpy", "numba", "scipy", "cv2", "torch") if k in m)
    lines.append(f"versions: {versions}")
    lines.append("ratio = fastconv time / anchor time (below 1: fastconv is faster); "
                 "floor = one copy of the input into an output-sized array")
    header = f"{'case':<34} {'function':<36} {'median':>10} {'ratio':>7} {'GFLOP/s':>8} {'floor':>9}"
    group = None
    for row in result.rows:
        if row.group != group:
            group = row.group
            lines.append("")
            lines.append(f"== {group} ==")
            lines.append(header)
        first = row.ratio is None
        case = row.case if first else ""
        ratio = "" if first else f"{row.ratio:.3f}"
        floor = f"{row.floor * 1e3:.3f}ms" if (first and row.floor) else ""
        lines.append(f"{case:<34} {row.function:<36} {_ms(row.seconds):>10} {ratio:>7} "
                     f"{row.gflops:>8.1f} {floor:>9}")
        if first and row.floor:
            lines.append(f"{'':<34} {'(fastconv / floor)':<36} {'':>10} {row.seconds / row.floor:>7.2f}")
        if first and row.target:
            lines.append(f"{'':<34} target: {row.target}")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}ms" if seconds < 10 else f"{seconds:.2f}s"


def to_json(result: Measurement) -> str:
    rows = [row.__dict__ for row in result.rows]
    return json.dumps({"machine": result.machine, "rows": rows}, indent=1, default=str)


def load(path: str) -> Measurement:
    """Measurements written by ``--json``."""
    with open(path) as f:
        data = json.load(f)
    return Measurement(machine=data["machine"], rows=[Row(**row) for row in data["rows"]])


def plot(result: Measurement, path: str | None = None, *, group: str | None = None):
    """A bar per anchor and case: how many times faster fastconv is (log scale).

    Draws the cases of ``group`` (default: all); saves to ``path`` if given,
    else returns the figure (for the documentation's plot directive).
    """
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit("--plot needs matplotlib: pip install 'fastconv[bench]'") from exc
    rows = [r for r in result.rows if group is None or r.group == group]
    cases = [r for r in rows if r.ratio is None]
    anchors = sorted({r.function for r in rows if r.ratio is not None})
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(cases) + 2))
    height = 0.8 / max(len(anchors), 1)
    for j, anchor in enumerate(anchors):
        ys, speedups = [], []
        for i, case in enumerate(cases):
            for r in rows:
                if r.case == case.case and r.function == anchor:
                    ys.append(i + j * height)
                    speedups.append(1.0 / r.ratio)
        ax.barh(ys, speedups, height=height, label=anchor)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cases))])
    ax.set_yticklabels([c.case for c in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("anchor time / fastconv time (right of 1: fastconv is faster)")
    m = result.machine
    title = f"{group}: " if group else ""
    ax.set_title(f"{title}fastconv {m.get('fastconv')} on {m.get('cpu')}, {m.get('threads')} threads",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fastconv bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and short timings (a smoke run)")
    parser.add_argument("--filter", default="", help="run only cases whose group or name contains this text")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timing per function (default 0.4)")
    parser.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the speed-ups (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--dask", action="store_true",
                        help="also time a large image on a local 2-process Dask cluster (needs 4 GB)")
    args = parser.parse_args(argv)

    cases = standard_cases(args.quick) + (dask_cases(args.quick) if args.dask else [])
    if args.filter:
        cases = [c for c in cases if args.filter.lower() in f"{c.group} {c.name}".lower()]
        if not cases:
            parser.error(f"--filter {args.filter!r} matches no case")
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 0.4)
    keep_freed_memory()
    result = run_cases(cases, budget=budget, progress=not args.no_progress)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            f.write(to_json(result))
    if args.plot:
        plot(result, args.plot)
        print(f"plot written to {os.path.abspath(args.plot)}")
    return 0

"""Open the published asv dashboard in headless Chromium and check that it renders.

Serves ``html/`` (what ``asv publish`` wrote) on 127.0.0.1, then asks
Chromium for the rendered DOM and a screenshot of two pages:

* the benchmark list (``#/summarylist``): a table that names every benchmark
  in ``index.json`` (those of the configuration shown, when there are several);
* one benchmark's graph (``#<benchmark>``): flot's canvas in ``#main-graph``
  with axis tick labels (flot draws them only around plotted data), and no
  error dialog.

The page's JavaScript libraries are first made local with
``offline_html.py`` (asv's page loads them from CDNs).  Run from
``asv_bench/`` after ``asv publish``::

    python check_dashboard.py --screenshots /tmp/dashboard

Exit status 0: both pages render; 1: a check failed; 2: Chromium (or npm, for a page
not yet made local) is missing.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import offline_html

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
PREFERRED = "bench_image2d.Convolve2D.time_convolve2d"


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path):
    """A threaded HTTP server for ``directory`` on a free port of 127.0.0.1; returns (server, base URL)."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def chromium(
    browser: str, url: str, *, screenshot: Path | None = None, budget_ms: int = 15000
) -> str:
    """The DOM of ``url`` after ``budget_ms`` of virtual time (and a screenshot when asked)."""
    with tempfile.TemporaryDirectory(prefix="fastconv-chromium-") as profile:
        base = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1400,900",
            f"--virtual-time-budget={budget_ms}",
        ]
        dom = subprocess.run(
            base + ["--dump-dom", url], capture_output=True, text=True, timeout=180, check=False
        )
        if dom.returncode != 0:
            raise RuntimeError(f"chromium failed on {url}: {dom.stderr[-2000:]}")
        if screenshot is not None:
            shot = subprocess.run(
                base + [f"--screenshot={screenshot}", url],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            if shot.returncode != 0 or not screenshot.is_file():
                raise RuntimeError(f"chromium screenshot of {url} failed: {shot.stderr[-2000:]}")
        return dom.stdout


def _section(dom: str, element_id: str) -> str:
    """The DOM text from the element with ``element_id`` on (enough to search inside it)."""
    start = dom.find(f'id="{element_id}"')
    return dom[start:] if start >= 0 else ""


def check_list(dom: str, names: list[str], *, complete: bool) -> list[str]:
    """The list is a table naming benchmarks; all of ``names`` when ``complete``.

    The list shows one configuration (machine, Python, requirements) at a
    time, so with several configurations only some benchmarks need be there.
    """
    body = _section(dom, "summarylist-body")
    problems = []
    if "<table" not in body:
        problems.append("the benchmark list has no table")
    missing = [name for name in names if name not in body]
    if len(missing) == len(names) or (complete and missing):
        problems.append(
            f"{len(missing)} of {len(names)} benchmarks missing from the list, e.g. {missing[:3]}"
        )
    return problems


def check_graph(dom: str, name: str) -> list[str]:
    graph = _section(dom, "main-graph")
    problems = []
    if 'class="flot-base"' not in graph:
        problems.append(f"no plot canvas for {name}")
    if len(re.findall(r"flot-tick-label", graph)) < 2:
        problems.append(f"no axis ticks for {name}: nothing was plotted")
    error = re.search(r'id="error-message"[^>]*>([^<]+)<', dom)
    if error and error.group(1).strip():
        problems.append(f"the page shows an error: {error.group(1).strip()}")
    if name not in dom:
        problems.append(f"the graph page does not name {name}")
    return problems


def graphed_benchmarks(html: Path) -> list[str]:
    """Benchmarks of ``index.json`` with at least one graph file."""
    index = json.loads((html / "index.json").read_text())
    graphs = html / "graphs"
    have = {p.stem for p in graphs.rglob("*.json")} if graphs.is_dir() else set()
    return [name for name in index["benchmarks"] if name in have]


def check(
    html: Path, browser: str, screenshots: Path | None, benchmark: str | None = None
) -> list[str]:
    """Run every check; returns the problems found (empty: the dashboard renders)."""
    if not (html / "index.json").is_file():
        return [f"{html} has no index.json: run 'asv publish' first"]
    offline_html.localize(html, HERE / ".asv" / "js")
    names = graphed_benchmarks(html)
    index = json.loads((html / "index.json").read_text())
    one_configuration = all(len(values) <= 1 for values in index["params"].values())
    if not names:
        return ["the dashboard has no benchmark with results"]
    if benchmark is None:
        benchmark = PREFERRED if PREFERRED in names else names[0]
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(html)
    try:
        listing = chromium(
            browser,
            base + "#/summarylist",
            screenshot=screenshots / "benchmark-list.png" if screenshots else None,
        )
        graph = chromium(
            browser,
            base + "#" + benchmark,
            screenshot=screenshots / "graph.png" if screenshots else None,
        )
    finally:
        server.shutdown()
        server.server_close()
    return check_list(listing, names, complete=one_configuration) + check_graph(graph, benchmark)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--html", default=str(HERE / "html"), help="the published dashboard (default: html/)"
    )
    parser.add_argument(
        "--screenshots", metavar="DIR", help="also save benchmark-list.png and graph.png here"
    )
    parser.add_argument(
        "--benchmark", help=f"the benchmark whose graph to open (default: {PREFERRED})"
    )
    parser.add_argument(
        "--chromium", help="the browser to use (default: the first of " + ", ".join(BROWSERS) + ")"
    )
    args = parser.parse_args(argv)
    browser = args.chromium or find_chromium()
    if browser is None:
        print(
            "check_dashboard: no Chromium found (Debian: apt-get install chromium)", file=sys.stderr
        )
        return 2
    html = Path(args.html)
    if (
        (html / "index.html").is_file()
        and offline_html.remote_resources(html)
        and not shutil.which("npm")
    ):
        print("check_dashboard: npm not found, needed for the page's JavaScript", file=sys.stderr)
        return 2
    shots = Path(args.screenshots) if args.screenshots else None
    try:
        problems = check(html, browser, shots, args.benchmark)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        problems = [str(exc)]
    for problem in problems:
        print(f"FAIL: {problem}")
    if problems:
        return 1
    print(f"dashboard OK: benchmark list and graph render ({args.html})")
    if shots:
        print(f"screenshots: {shots / 'benchmark-list.png'}, {shots / 'graph.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

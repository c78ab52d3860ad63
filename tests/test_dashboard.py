"""The benchmark dashboard renders: a small asv run here, ``asv publish``, then headless Chromium.

Skips unless asv, a Chromium browser and npm (which supplies the page's
JavaScript libraries, see ``asv_bench/offline_html.py``) are installed.  It
measures only the memory-floor copies, so it takes well under a minute; the
full suite is ``asv run`` in ``asv_bench/`` (see the README's Benchmarks).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASV_BENCH = ROOT / "asv_bench"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _asv(config: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "asv", *args, "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"asv {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


@pytest.fixture
def dashboard_tools():
    pytest.importorskip("asv")
    sys.path.insert(0, str(ASV_BENCH))
    try:
        import check_dashboard
    finally:
        sys.path.remove(str(ASV_BENCH))
    browser = check_dashboard.find_chromium()
    if browser is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    if shutil.which("npm") is None:
        pytest.skip("no npm: the dashboard's JavaScript libraries come from the npm registry")
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    return check_dashboard, browser


def test_published_dashboard_shows_benchmark_list_and_graph(tmp_path, dashboard_tools):
    check_dashboard, browser = dashboard_tools
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    config = tmp_path / "asv.conf.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "project": "fastconv",
                "repo": str(ROOT),
                "branches": [branch if branch != "HEAD" else "main"],
                "benchmark_dir": str(ASV_BENCH / "benchmarks"),
                "results_dir": str(tmp_path / "results"),
                "html_dir": str(tmp_path / "html"),
                "env_dir": str(tmp_path / "env"),
                "environment_type": "virtualenv",  # unused with --python=same, but asv wants one
                "launch_method": "forkserver",
            }
        )
    )
    _asv(config, "machine", "--yes")
    _asv(
        config,
        "run",
        "--python=same",
        "--quick",
        "--set-commit-hash",
        _git("rev-parse", "HEAD"),
        "-b",
        r"Floor1D|Floor2D",
    )
    _asv(config, "publish")
    problems = check_dashboard.check(
        tmp_path / "html", browser, tmp_path / "screenshots", "bench_image2d.Floor2D.time_copy"
    )
    assert problems == []
    assert (tmp_path / "screenshots" / "graph.png").stat().st_size > 10_000

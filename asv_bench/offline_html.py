"""Make the dashboard that ``asv publish`` wrote work without internet access.

asv's ``index.html`` loads jQuery, flot, Bootstrap and three small plugins
from public CDNs, so on a machine that reaches only package registries the
page stays blank.  This script takes the same libraries from the npm registry
(``npm pack``, once, into ``.asv/js/``, which git ignores), copies the files
the page uses into ``html/vendor/`` and points ``index.html`` at them.  Where
the copy is byte-identical to the CDN's file the ``integrity`` hash is kept;
otherwise (flot ships no minified files on npm, and stupidtable's 1.0.1 is
not there) the hash is dropped, since it describes a different file.

Run it after every ``asv publish``, from ``asv_bench/``::

    asv publish && python offline_html.py

It changes nothing when ``index.html`` already points at local copies.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# CDN address -> (npm package, version, file inside the package)
_RULES = [
    (
        r"https://code\.jquery\.com/jquery-(?P<v>[\d.]+)\.min\.js",
        lambda m: ("jquery", m["v"], "dist/jquery.min.js"),
    ),
    (
        r"https://cdnjs\.cloudflare\.com/ajax/libs/flot/(?P<v>[\d.]+)/(?P<f>[\w.]+)",
        lambda m: ("flot", m["v"], m["f"]),
    ),
    (
        r"https://cdnjs\.cloudflare\.com/ajax/libs/stupidtable/(?P<v>[\d.]+)/(?P<f>[\w.]+)",
        lambda m: ("stupid-table-plugin", m["v"], m["f"]),
    ),
    (
        r"https://cdnjs\.cloudflare\.com/ajax/libs/blueimp-md5/(?P<v>[\d.]+)/(?P<f>[\w./]+)",
        lambda m: ("blueimp-md5", m["v"], m["f"]),
    ),
    (
        r"https://cdn\.jsdelivr\.net/npm/(?P<p>[\w.-]+)@(?P<v>[\d.]+)/(?P<f>[\w./-]+)",
        lambda m: (m["p"], m["v"], m["f"]),
    ),
]

_TAG = re.compile(r"<(script|link)\b[^>]*?\b(?:src|href)=\"(https://[^\"]+)\"[^>]*>")


def _package_dir(cache: Path, name: str, version: str) -> Path:
    """The unpacked npm package ``name@version`` (the latest release if that version is not published)."""
    for spec in (f"{name}@{version}", name):
        target = cache / spec.replace("/", "_")
        if (target / "package").is_dir():
            return target / "package"
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "pack", "--silent", spec],
            cwd=target,
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(target.glob("*.tgz"))
        if done.returncode == 0 and tarballs:
            with tarfile.open(tarballs[0]) as tar:
                try:
                    tar.extractall(target, filter="data")
                except TypeError:  # Python without extraction filters
                    tar.extractall(target)
            return target / "package"
        shutil.rmtree(target, ignore_errors=True)
    raise RuntimeError(f"npm pack {name}@{version} failed: {done.stderr.strip()}")


def _local_file(package: Path, path: str) -> Path:
    found = package / path
    if not found.is_file() and ".min." in path:  # flot's npm package has only the plain files
        found = package / path.replace(".min.", ".")
    if not found.is_file():
        raise RuntimeError(f"{path} not in {package}")
    return found


def _sri(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def remote_resources(html_dir: Path) -> list[str]:
    """The CDN addresses ``html_dir/index.html`` still loads (empty once localized)."""
    text = (html_dir / "index.html").read_text()
    return [
        m.group(2)
        for m in _TAG.finditer(text)
        if any(re.fullmatch(pattern, m.group(2)) for pattern, _ in _RULES)
    ]


def localize(html_dir: Path, cache: Path) -> list[str]:
    """Rewrite ``html_dir/index.html`` to use local copies; returns one line per library handled."""
    if remote_resources(html_dir) and shutil.which("npm") is None:
        raise RuntimeError("npm is needed to fetch the dashboard's JavaScript libraries")
    index = html_dir / "index.html"
    text = index.read_text()
    vendor = html_dir / "vendor"
    notes = []

    def replace(match: re.Match) -> str:
        tag, url = match.group(0), match.group(2)
        for pattern, rule in _RULES:
            m = re.fullmatch(pattern, url)
            if m:
                break
        else:
            return tag  # a plain link (asv's home page, say), not a resource the page loads
        name, version, path = rule(m)
        package = _package_dir(cache, name, version)
        source = _local_file(package, path)
        got = json.loads((package / "package.json").read_text()).get("version", version)
        relative = Path(f"{name}-{got}") / source.relative_to(package)
        dest = vendor / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        if source.suffix == ".css" and (source.parent.parent / "fonts").is_dir():
            shutil.copytree(
                source.parent.parent / "fonts", dest.parent.parent / "fonts", dirs_exist_ok=True
            )
        new = tag.replace(url, f"vendor/{relative.as_posix()}")
        want = re.search(r'integrity="([^"]+)"', tag)
        same = want is not None and want.group(1) == _sri(source.read_bytes())
        if want is not None and not same:
            new = new.replace(want.group(0), "")
        notes.append(
            f"{url} -> vendor/{relative.as_posix()}"
            + ("" if want is None else (" (identical)" if same else " (a different build)"))
        )
        return new

    index.write_text(_TAG.sub(replace, text))
    return notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--html", default=str(HERE / "html"), help="the published dashboard (default: html/)"
    )
    parser.add_argument(
        "--cache", default=str(HERE / ".asv" / "js"), help="where npm packages are kept"
    )
    args = parser.parse_args(argv)
    html = Path(args.html)
    if not (html / "index.html").is_file():
        parser.error(f"{html / 'index.html'} not found: run 'asv publish' first")
    try:
        notes = localize(html, Path(args.cache))
    except RuntimeError as exc:
        print(f"offline_html: {exc}", file=sys.stderr)
        return 1
    for line in notes:
        print(line)
    print(f"{len(notes)} libraries served from {html / 'vendor'}" if notes else "already local")
    return 0


if __name__ == "__main__":
    sys.exit(main())

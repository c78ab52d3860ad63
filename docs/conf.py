"""Sphinx configuration for the fastconv documentation.

Build (from the repository root)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

The build is offline: intersphinx is not used, and every picture is drawn at
build time by matplotlib's plot directive from code in the pages.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import matplotlib

matplotlib.use("Agg")

# Document the checkout these docs live in, even without an editable install.
sys.path.insert(0, os.path.abspath(".."))

import fastconv  # noqa: E402

project = "fastconv"
author = "the fastconv developers"
copyright = "the fastconv developers"  # noqa: A001 - Sphinx's name for it
version = release = fastconv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
# MathJax from the docs extra's sphinx-mathjax-offline, copied into the built
# site, so the pages show their formulas without a network connection.
if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
    extensions.append("sphinx-mathjax-offline")

root_doc = "index"
exclude_patterns = ["_build"]
templates_path = []
default_role = "obj"

# -- API reference -----------------------------------------------------------
autosummary_generate = True  # writes docs/generated/ (kept out of git)
autodoc_typehints = "none"  # signatures as scipy shows them; types live in the docstrings
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Every public docstring must carry these numpydoc sections; a missing one is
# a warning, and the build treats warnings as errors.
numpydoc_validation_checks = {
    "GL08",  # the object has a docstring
    "SS01",  # a summary line
    "PR01",  # every parameter documented
    "PR02",  # no documented parameter that does not exist
    "RT01",  # a Returns section
    "SA01",  # a See Also section
    "EX01",  # an Examples section
}
# Private helpers and the re-exported dunder attributes are not API.
numpydoc_validation_exclude = {r"\._", r"\.__"}

# -- Doctests (sphinx-build -b doctest) ---------------------------------------
# The guide's and the docstrings' examples run here.  Examples that need an
# optional array library are skipped where it is not installed.
doctest_global_setup = """
import importlib.util
import numpy as np
import fastconv

def _missing(name):
    return importlib.util.find_spec(name) is None

no_torch = _missing("torch")
no_jax = _missing("jax")
no_dask = _missing("dask")
no_strict = _missing("array_api_strict")
no_cv2 = _missing("cv2")
"""
import doctest  # noqa: E402

doctest_default_flags = (
    doctest.ELLIPSIS
    | doctest.NORMALIZE_WHITESPACE
    | doctest.IGNORE_EXCEPTION_DETAIL
    | doctest.DONT_ACCEPT_TRUE_FOR_1
)

# -- Pictures ----------------------------------------------------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": True, "font.size": 10}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = ["_static"] if os.path.isdir(os.path.join(os.path.dirname(__file__), "_static")) else []
html_show_sourcelink = False


# -- Every public function in the API reference --------------------------------
# A name in the ``__all__`` of a public module that api.rst does not list is a
# warning, so the reference cannot silently fall behind the code.
def _check_api_complete(app):
    import inspect
    import re

    from sphinx.util import logging

    text = open(os.path.join(app.srcdir, "api.rst"), encoding="utf-8").read()
    listed, module = set(), "fastconv"
    for line in text.splitlines():
        m = re.match(r"\.\. currentmodule:: (\S+)", line)
        if m:
            module = m.group(1)
        elif re.match(r"   [A-Za-z_]\w*$", line):
            listed.add(f"{module}.{line.strip()}")
    log = logging.getLogger(__name__)
    for name in ("fastconv", "fastconv.ndimage", "fastconv.nn"):
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", ()):
            obj = getattr(mod, attr)
            if attr.startswith("_") or inspect.ismodule(obj):
                continue
            if f"{name}.{attr}" not in listed:
                log.warning(f"{name}.{attr} is public but docs/api.rst does not list it")


def setup(app):
    app.connect("builder-inited", _check_api_complete)

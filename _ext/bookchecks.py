"""Sphinx extension of the book: offline MathJax, and a strict check of committed notebook outputs.

* MathJax: the site serves MathJax 3 from the ``django-static-mathjax`` package (a pip-installed
  copy) instead of a CDN, so equations render on a machine without internet access.
* Stored outputs: the book renders the outputs committed with each notebook (they are checked by
  nbval in the test suite). A code cell that was never executed, or that stored an error, is
  reported as a warning, which the strict build (``-W``) turns into a failure.
"""

from __future__ import annotations

import json
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _mathjax_dir() -> Path:
    import mathjax  # provided by the django-static-mathjax distribution

    return Path(mathjax.__file__).parent / "static" / "mathjax"


def _use_local_mathjax(app: Sphinx, config) -> None:
    es5 = _mathjax_dir() / "es5"
    if not (es5 / "tex-svg.js").exists():
        raise RuntimeError(f"MathJax not found at {es5}; install the book extra: pip install -e '.[book]'")
    # Copied as _static/mathjax/..., and the page loads the self-contained TeX-to-SVG bundle.
    config.html_static_path = list(config.html_static_path) + [str(es5.parent)]
    config.mathjax_path = "mathjax/es5/tex-svg.js"


def _check_stored_outputs(app: Sphinx, env, docnames) -> None:
    for docname in docnames:
        path = Path(env.doc2path(docname))
        if path.suffix != ".ipynb":
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            source = "".join(cell.get("source", []))
            if source.strip() and cell.get("execution_count") is None:
                logger.warning(f"code cell {i} was never executed; run `make execute`", location=docname)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    logger.warning(f"code cell {i} stored an error: {out.get('ename')}: {out.get('evalue')}",
                                   location=docname)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local_mathjax)
    app.connect("env-before-read-docs", _check_stored_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

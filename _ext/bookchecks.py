"""Sphinx extension of the book: offline MathJax, and a strict check of committed notebook outputs.

* MathJax: the site serves MathJax 3 from the ``django-static-mathjax`` package (a pip-installed
  copy) instead of a CDN, so equations render on a machine without internet access.
* Solutions: the ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines that mark an answer for the
  student copies are removed from the rendered code, and so are the instructors' hidden tests
  (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``).
* Stored outputs: the book renders the outputs committed with each notebook (they are checked by
  nbval in the test suite). A code cell that was never executed, or that stored an error, is
  reported as a warning, which the strict build (``-W``) turns into a failure.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _mathjax_dir() -> Path:
    import mathjax  # provided by the django-static-mathjax distribution

    return Path(mathjax.__file__).parent / "static" / "mathjax"


MATHJAX_PATH = "mathjax/es5/tex-svg.js"  # relative to _static; the self-contained TeX-to-SVG bundle
MATHJAX_SHIPPED = ("tex-svg.js", "input/tex/extensions", "a11y", "sre", "ui")  # relative to es5/


def _use_local_mathjax(app: Sphinx, config) -> None:
    mathjax_dir = _mathjax_dir()
    if not (mathjax_dir / "es5" / "tex-svg.js").exists():
        raise RuntimeError(f"MathJax not found in {mathjax_dir}; install the book extra: pip install -e '.[book]'")
    # Sphinx copies the *contents* of each static directory into _static/ (following symlinks).
    # A staging directory holding mathjax/es5/<entry> -> the package's files ships only what the
    # site loads: the TeX-to-SVG bundle, the TeX extensions it autoloads on demand, and the files
    # its context menu loads (accessibility, speech, menu options) -- not the other 16 MB of bundles.
    staging = Path(app.outdir).parent / "mathjax-static"
    es5 = staging / "mathjax" / "es5"
    if es5.is_symlink():
        es5.unlink()
    es5.mkdir(parents=True, exist_ok=True)
    for old in es5.iterdir():
        if old.is_symlink() and old.name not in MATHJAX_SHIPPED:
            old.unlink()
    for entry in MATHJAX_SHIPPED:
        link = es5 / entry
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(mathjax_dir / "es5" / entry, target_is_directory=(mathjax_dir / "es5" / entry).is_dir())
    config.html_static_path = list(config.html_static_path) + [str(staging)]
    config.mathjax_path = MATHJAX_PATH


def _prune(directory: Path, keep: set[str]) -> None:
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _check_mathjax_copied(app: Sphinx, exception) -> None:
    if exception is None and app.builder.format == "html":
        es5 = Path(app.outdir) / "_static" / "mathjax" / "es5"
        # An earlier build (before the site shipped only these) may have left the whole tree.
        _prune(es5, {entry.split("/")[0] for entry in MATHJAX_SHIPPED})
        _prune(es5 / "input", {"tex"})
        _prune(es5 / "input" / "tex", {"extensions"})
        missing = [entry for entry in MATHJAX_SHIPPED if not (es5 / entry).exists()]
        if missing:
            raise RuntimeError(f"MathJax files missing from the built site ({missing}): equations would not render")


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


SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def _hide_solution_markers(app: Sphinx, doctree) -> None:
    """Drop the authoring markers of exercise solutions from the rendered code (they stay in the
    notebooks), and the instructors' hidden tests with their markers (for graded copies only)."""
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if not any(marker in text for marker in SOLUTION_MARKERS + HIDDEN_TESTS):
            continue
        kept, hidden = [], False
        for line in text.splitlines():
            stripped = line.strip()
            if stripped in HIDDEN_TESTS:
                hidden = stripped == HIDDEN_TESTS[0]
            elif not hidden and stripped not in SOLUTION_MARKERS:
                kept.append(line)
        block.children = [nodes.Text("\n".join(kept))]
        block.rawsource = "\n".join(kept)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _check_mathjax_copied)
    app.connect("doctree-read", _hide_solution_markers)
    app.connect("env-before-read-docs", _check_stored_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

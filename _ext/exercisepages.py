"""Sphinx extension of the book: what an exercise page offers students.

* Every exercise page (``exercises/NN_*``) opens with a download link to its student notebook
  (``exercises/student/NN_*.ipynb``, the copy with blanks that ``make student`` writes), which
  Sphinx publishes under ``_downloads/``.
* The page's download button offers the same student notebook first, and its own source, the
  solution notebook, only under the label "solution notebook".
* The print style sheet (``_static/book.css``, ``@media print``) hides the solutions.

After the build, each exercise page is checked for the student link and the style sheet for its
print rule; a missing one is a warning, which the strict build (``-W``) turns into a failure.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

EXERCISE_PAGE = re.compile(r"^exercises/(\d\d_[\w-]+)$")
STUDENT_DIR = "student"  # relative to the exercise pages' folder
PRINT_RULE = re.compile(r"@media\s+print\s*\{[^@]*div\.solution[^}]*display:\s*none", re.S)


def _student_notebook(app: Sphinx, docname: str) -> str | None:
    """The student notebook's path relative to the page's folder, or None for other pages."""
    match = EXERCISE_PAGE.match(docname)
    if not match:
        return None
    relative = f"{STUDENT_DIR}/{match.group(1)}.ipynb"
    if not (Path(app.srcdir) / "exercises" / relative).is_file():
        logger.warning(f"no student notebook exercises/{relative}; run `make student`", location=docname)
        return None
    return relative


def _add_student_link(app: Sphinx, doctree) -> None:
    """Put 'Student notebook: NN_x.ipynb' under the page title (before Sphinx collects the downloads)."""
    docname = app.env.docname
    relative = _student_notebook(app, docname)
    if relative is None:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        logger.warning("an exercise page without a title section", location=docname)
        return
    link = addnodes.download_reference("", "", refdoc=docname, reftarget=relative, refexplicit=True, refdomain="",
                                       reftype="download")
    link += nodes.literal(Path(relative).name, Path(relative).name)
    para = nodes.paragraph("", "", classes=["student-notebook"])
    para += nodes.strong("Student notebook:", "Student notebook:")
    para += nodes.Text(" download ")
    para += link
    para += nodes.Text(" (the exercises with blanks and their check cells) and open it with the kernel "
                       "“Python 3 (Dropout, Verified)”. This page is the solution notebook: the solutions "
                       "are hidden until you open them, and printing the page leaves them out.")
    titles = [i for i, child in enumerate(section.children) if isinstance(child, nodes.title)]
    section.insert(titles[0] + 1 if titles else 0, para)


def _download_url(app: Sphinx, docname: str, context) -> str | None:
    relative = _student_notebook(app, docname)
    if relative is None:
        return None
    filename = str(Path("exercises") / relative)
    entry = app.env.dlfiles.get(filename)
    if entry is None:
        return None
    return f"{context['pathto']('_downloads', 1)}/{entry[1]}"


def _relabel_download_button(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    """On exercise pages, offer the student notebook first and call the page's own .ipynb the solution."""
    url = _download_url(app, pagename, context)
    if url is None:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "download-buttons":
            continue
        for button in group["buttons"]:
            if button.get("url", "").endswith(".ipynb"):
                button["text"] = "solution notebook (.ipynb)"
                button["tooltip"] = "Download the solution notebook (answers included)"
        group["buttons"].insert(0, {"type": "link", "url": url, "text": "student notebook (.ipynb)",
                                    "icon": "fas fa-code", "label": "download-student-notebook-button",
                                    "tooltip": "Download the student notebook (exercises to fill in)"})


def _check_site(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.name != "html":  # the single-page build has no pages per document
        return
    outdir = Path(app.outdir)
    css = outdir / "_static" / "book.css"
    if not css.exists() or not PRINT_RULE.search(css.read_text(encoding="utf-8")):
        logger.warning("_static/book.css has no @media print rule that hides div.solution: printed pages would show solutions")
    for docname in sorted(app.env.found_docs):
        if not EXERCISE_PAGE.match(docname):
            continue
        html = (outdir / f"{docname}.html").read_text(encoding="utf-8")
        name = docname.split("/")[-1] + ".ipynb"
        links = re.findall(r'href="(\.\./_downloads/[0-9a-f]+/' + re.escape(name) + ')"', html)
        if len(links) < 2 or not all((outdir / docname).parent.joinpath(link).resolve().is_file() for link in links):
            logger.warning(f"the page does not link its student notebook {name} (text and download button)",
                           location=docname)


def setup(app: Sphinx) -> dict:
    app.connect("doctree-read", _add_student_link, priority=400)  # before the download collector (500)
    app.connect("html-page-context", _relabel_download_button, priority=502)  # after the theme's buttons (501)
    app.connect("build-finished", _check_site)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

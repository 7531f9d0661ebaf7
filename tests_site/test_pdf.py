"""The whole-book PDF (``make pdf``): every part of the book, typeset equations, figures, no solutions.

Run by ``make test-pdf`` after ``make pdf``. Reads ``_build/pdf/book.pdf`` (or ``BOOK_PDF``) with
pypdf, so no PDF tool has to be installed.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PDF = Path(os.environ.get("BOOK_PDF", ROOT / "_build" / "pdf" / "book.pdf"))
# Math delimiters that MathJax consumes: left in the text, they mark an equation it did not typeset
# (TeX commands such as \frac also stand in code cells that build LaTeX strings, so they prove nothing).
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\begin\{(equation|align|gather)")


@pytest.fixture(scope="module")
def book():
    from pypdf import PdfReader

    if not PDF.is_file():
        pytest.fail(f"no {PDF}: run `make pdf` first (or set BOOK_PDF)")
    reader = PdfReader(PDF)
    return reader, [unicodedata.normalize("NFKC", page.extract_text() or "") for page in reader.pages]


def _titles(folder: str) -> list[str]:
    """The first heading of every notebook in ``folder``."""
    titles = []
    for path in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        heading = next(line for c in cells if c["cell_type"] == "markdown"
                       for line in "".join(c["source"]).splitlines() if line.startswith("# "))
        titles.append(unicodedata.normalize("NFKC", re.sub(r"[`*_$]", "", heading[2:]).strip()))
    return titles


def test_every_chapter_is_in_the_pdf(book):
    reader, pages = book
    text = " ".join(" ".join(pages).split())
    missing = [title for title in _titles("chapters") if " ".join(title.split()) not in text]
    assert not missing, f"chapters missing from {PDF.name}: {missing}"
    assert len(reader.pages) >= 10 * len(_titles("chapters")), f"only {len(reader.pages)} pages"


def test_no_raw_tex(book):
    _, pages = book
    raw = [(i + 1, m.group(0), page[max(0, m.start() - 40):m.end() + 40].replace("\n", " "))
           for i, page in enumerate(pages) for m in RAW_TEX.finditer(page)]
    assert not raw, "raw TeX in the PDF (page, match, context):\n" + "\n".join(map(str, raw[:20]))


def test_figures_are_present(book):
    reader, _ = book
    figures = sum(1 for path in (ROOT / "chapters").glob("*.ipynb")
                  for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
                  if "figure" in cell.get("metadata", {}).get("mystnb", {}))
    images = sum(1 for page in reader.pages  # image objects drawn on each page (not decoded: fast)
                 for xobject in (page.get("/Resources", {}).get("/XObject", {}) or {}).values()
                 if xobject.get_object().get("/Subtype") == "/Image")
    assert figures > 20 and images >= figures, f"{images} images in the PDF for {figures} chapter figures"


def test_no_solutions(book):
    _, pages = book
    found = [i + 1 for i, page in enumerate(pages) if re.search(r"Solution\s+to\s+Exercise", page)]
    assert not found, f"solutions printed on pages {found[:20]}"
    exercises = len(re.findall(r"Exercise\s+\d+\s*\(", " ".join(pages)))
    assert exercises >= 3 * len(_titles("exercises")), f"only {exercises} exercise statements in the PDF"

"""One citation scheme across the book: author-year citations, a References section per chapter,
every cited key in references.bib, and a DOI or URL for every entry.

Chapters and pages cite with ``{cite:p}`` / ``{cite:t}`` (author-year, ``bibtex_reference_style``
in ``_config.yml``); each chapter ends with a ``{bibliography}`` filtered to the works cited on it,
and the Bibliography page lists them all. Docstrings cite with ``:cite:`` (rendered on the API page).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))
NOTEBOOKS = CHAPTERS + sorted((ROOT / "exercises").glob("[0-9]*.ipynb")) + [ROOT / "course.ipynb"]
PAGES = sorted(p for p in ROOT.glob("*.md") if p.name not in {"README.md", "CONTRIBUTING.md"})
MODULES = sorted((ROOT / "dropoutbook").rglob("*.py"))

# Entries that have neither a DOI nor a URL, each with the reason. None at present.
WITHOUT_LINK: dict[str, str] = {}

CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`|:cite(?::[a-z]+)?:`([^`]+)`")
LOCAL_BIBLIOGRAPHY = re.compile(r"```\{bibliography\}\n:filter: docname in docnames\n```")
ENTRY = re.compile(r"@(\w+)\{([^,\s]+),(.*?)\n\}", re.S)


def markdown(path: Path) -> str:
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def cited_keys(text: str) -> list[str]:
    return [k.strip() for m in CITE.finditer(text) for k in (m.group(1) or m.group(2)).split(",")]


def bib_entries() -> dict[str, str]:
    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    entries = {m.group(2): m.group(3) for m in ENTRY.finditer(text)}
    assert len(entries) == text.count("\n@") + text.startswith("@"), "an entry of references.bib does not parse"
    return entries


def test_the_regular_expressions_see_citations():
    assert cited_keys("a {cite:p}`x, y` b :cite:`z` c {cite:t}`w`") == ["x", "y", "z", "w"]
    assert LOCAL_BIBLIOGRAPHY.search("## References\n\n```{bibliography}\n:filter: docname in docnames\n```")
    assert not LOCAL_BIBLIOGRAPHY.search("```{bibliography}\n:all:\n```")


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_footnote_citations_remain(path):
    text = markdown(path)
    assert "{footcite" not in text and "{footbibliography}" not in text, (
        f"{path.name}: per-page footnote citations; convert them to the author-year scheme "
        "({cite:p} and a '{bibliography}' with ':filter: docname in docnames')"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_a_chapter_that_cites_lists_its_references(path):
    text = markdown(path)
    if not cited_keys(text):
        pytest.skip(f"{path.name} cites nothing")
    section = text.rfind("## References")
    assert section >= 0, f"{path.name}: cites works but has no '## References' section"
    assert LOCAL_BIBLIOGRAPHY.search(text, section), (
        f"{path.name}: its References section has no bibliography filtered to the chapter"
    )
    assert not cited_keys(text[section:]), f"{path.name}: a citation after the References section"


def test_the_bibliography_page_lists_every_entry():
    text = (ROOT / "bibliography.md").read_text(encoding="utf-8")
    assert re.search(r"```\{bibliography\}\n:all:\n```", text)


def test_every_cited_key_is_in_references_bib():
    entries = bib_entries()
    missing = {}
    for path in NOTEBOOKS + PAGES + MODULES:
        text = markdown(path) if path.suffix != ".py" else path.read_text(encoding="utf-8")
        for key in cited_keys(text):
            if key not in entries:
                missing.setdefault(key, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"cited but not in references.bib: {missing}"


def test_every_entry_has_a_doi_or_url():
    entries = bib_entries()
    assert set(WITHOUT_LINK) <= set(entries), "WITHOUT_LINK names an entry that no longer exists"
    for key, body in entries.items():
        doi = re.search(r"^\s*doi\s*=\s*\{([^}]*)\}", body, re.M)
        url = re.search(r"^\s*url\s*=\s*\{([^}]*)\}", body, re.M)
        if key in WITHOUT_LINK:
            assert not (doi or url), f"{key}: has a link now; remove it from WITHOUT_LINK"
            continue
        assert doi or url, f"{key}: neither a doi nor a url field in references.bib"
        if doi:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", doi.group(1)), f"{key}: doi {doi.group(1)!r} is not a DOI"
        if url:
            assert re.fullmatch(r"https?://\S+", url.group(1)), f"{key}: url {url.group(1)!r} is not a URL"


def test_reference_lists_label_every_work_uniquely_by_author_and_year():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bibstyle", ROOT / "_ext" / "bibstyle.py")
    bibstyle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bibstyle)
    labels = bibstyle.labels()
    assert set(labels) == set(bib_entries())
    assert len(set(labels.values())) == len(labels), "two works share a label"
    assert labels["srivastava2014dropout"] == "Srivastava et al., 2014"
    assert labels["baldi2013understanding"] == "Baldi and Sadowski, 2013"
    assert labels["osband2016risk"] == "Osband, 2016"
    assert {labels["gal2017concrete"], labels["gal2017deep"]} == {"Gal et al., 2017a", "Gal et al., 2017b"}
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "bibtex_default_style: authoryear" in config and "bibtex_reference_style: author_year" in config

"""The API page's links: chapter mentions in docstrings become links to the chapter, and the
shipped intersphinx inventories are the ones ``_ext/apilinks.py`` writes."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import yaml
from sphinx.util.inventory import InventoryFile

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("apilinks", ROOT / "_ext" / "apilinks.py")
apilinks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apilinks)

DOCS = apilinks.chapter_docs()


def test_every_chapter_of_the_toc_is_mapped_by_its_number():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]
    assert files and sorted(DOCS.values()) == sorted(files)
    for number, doc in DOCS.items():
        assert doc.startswith(f"chapters/{number:02d}_")


def test_chapter_mentions_become_links():
    assert apilinks.link_chapters('See chapter 7, "DropBlock".', DOCS) == (
        f'See :doc:`chapter 7 </{DOCS[7]}>`, "DropBlock".')
    assert apilinks.link_chapters("as in Chapter 10, section", DOCS) == f"as in :doc:`Chapter 10 </{DOCS[10]}>`, section"
    assert apilinks.link_chapters("chapters 11 and 12", DOCS) == (
        f":doc:`chapters 11 </{DOCS[11]}>` and :doc:`12 </{DOCS[12]}>`")
    assert apilinks.link_chapters("chapters 1, 8 and 9 report", DOCS) == (
        f":doc:`chapters 1 </{DOCS[1]}>`, :doc:`8 </{DOCS[8]}>` and :doc:`9 </{DOCS[9]}>` report")


def test_what_is_not_prose_or_not_a_chapter_stays_as_it_is():
    for line in (">>> chapter 3", "... chapter 3", "``chapter 3``", ":func:`chapter 3`", "chapter 99",
                 "the chapters of the book", "subchapter 3x"):
        assert apilinks.link_chapters(line, DOCS) == line, line


class _App:
    srcdir = ROOT

    class env:
        pass


def test_the_docstring_hook_skips_literal_blocks():
    lines = ["Sum over masks (chapter 4).", "", ".. math::", "", "   chapter 4", "", "Back: chapter 5."]
    apilinks._process_docstring(_App, "function", "f", None, {}, lines)
    assert lines[0] == f"Sum over masks (:doc:`chapter 4 </{DOCS[4]}>`)."
    assert lines[4] == "   chapter 4"
    assert lines[6] == f"Back: :doc:`chapter 5 </{DOCS[5]}>`."


def test_a_citation_after_its_authors_becomes_textual():
    lines = ["Concrete dropout, Gal et al. :cite:`gal2017concrete`, learns", "as in Baldi and Sadowski",
             "    :cite:`baldi2013understanding`.", "AlphaDropout :cite:`klambauer2017self`",
             "Gal :cite:`gal2016dropout,gal2017deep`", "Hinton et al. :cite:`srivastava2014dropout`"]
    apilinks.textual_citations(lines)
    assert lines == ["Concrete dropout, :cite:t:`gal2017concrete`, learns", "as in",
                     "    :cite:t:`baldi2013understanding`.", "AlphaDropout :cite:`klambauer2017self`",
                     "Gal :cite:`gal2016dropout,gal2017deep`", "Hinton et al. :cite:`srivastava2014dropout`"]


def test_shipped_inventories_are_what_the_tables_write(tmp_path):
    written = apilinks.write_inventories(tmp_path)
    for path in written:
        shipped = ROOT / "_inventories" / path.name
        assert shipped.read_bytes() == path.read_bytes(), f"{shipped}: stale; run python _ext/apilinks.py"


def test_inventories_load_and_point_at_the_real_documentation():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    mapping = config["sphinx"]["config"]["intersphinx_mapping"]
    assert set(mapping) == set(apilinks.INVENTORIES)
    for key, (project, _version, url, entries) in apilinks.INVENTORIES.items():
        assert mapping[key] == [url, f"_inventories/{key}.inv"]
        data = (ROOT / mapping[key][1]).read_bytes()
        inventory = InventoryFile.load(io.BytesIO(data), url, lambda base, uri: base + uri)
        names = {name: item[2] for role in inventory.values() for name, item in role.items()}
        assert len(names) == len({e[0] for e in entries})
        for name, location in names.items():
            assert location.startswith(url) and "#" in location, (name, location)
    torch = (ROOT / "_inventories" / "torch.inv").read_bytes()
    inventory = InventoryFile.load(io.BytesIO(torch), "https://docs.pytorch.org/docs/stable/", lambda b, u: b + u)
    assert inventory["py:class"]["torch.Tensor"][2] == "https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor"

"""Sphinx extension of the book: author-year labels for its reference lists.

The book cites author-year (``bibtex_reference_style: author_year``). Each chapter lists the works
it cites and the Bibliography page lists all of them, so one work appears in several lists; with
numeric labels two lists would give different works the same label ("[9]"). The ``authoryear``
pybtex style (``bibtex_default_style``) formats entries like pybtex's ``plain`` but labels each one
"Surname, 2014", "Surname and Other, 2014" or "Surname et al., 2014", the same in every list, with
"a", "b", ... appended where two works of ``references.bib`` would share a label.
"""

from __future__ import annotations

import codecs
from functools import lru_cache
from pathlib import Path

import latexcodec  # noqa: F401  (registers the "ulatex" codec)
from pybtex.database import parse_file
from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle

BIBFILE = Path(__file__).resolve().parents[1] / "references.bib"


def _plain(latex: str) -> str:
    return codecs.decode(latex, "ulatex").replace("{", "").replace("}", "")


def base_label(entry) -> str:
    """ "Surname, year", "Surname and Other, year" or "Surname et al., year" of one entry."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    surnames = [_plain(" ".join(p.prelast_names + p.last_names)) for p in people]
    if not surnames:
        who = _plain(entry.fields.get("organization", entry.fields.get("howpublished", entry.key)))
    elif len(surnames) == 1:
        who = surnames[0]
    elif len(surnames) == 2:
        who = f"{surnames[0]} and {surnames[1]}"
    else:
        who = f"{surnames[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


@lru_cache(maxsize=None)
def labels(bibfile: Path = BIBFILE) -> dict[str, str]:
    """Key -> label for every entry of the bib file; shared labels get a, b, ... in key order."""
    entries = parse_file(str(bibfile)).entries
    by_label: dict[str, list[str]] = {}
    for key, entry in entries.items():
        by_label.setdefault(base_label(entry), []).append(key)
    out = {}
    for label, keys in by_label.items():
        for i, key in enumerate(sorted(keys)):
            out[key] = label if len(keys) == 1 else f"{label}{chr(ord('a') + i)}"
    return out


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        table = labels()
        for entry in sorted_entries:
            yield table.get(entry.key) or base_label(entry)


class AuthorYearStyle(PlainStyle):
    default_label_style = AuthorYearLabels


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}

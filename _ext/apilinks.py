"""Sphinx extension of the book: links on the API page.

* Chapter references: a docstring that names a chapter in plain text ("chapter 7", "See chapter 3,
  section ...", "chapters 11 and 12") gets each chapter number turned into a ``:doc:`` link to that
  chapter's page (``autodoc-process-docstring``; the docstrings themselves stay plain text, as
  ``help()`` shows them). Chapter numbers map to ``chapters/NN_*`` files; a number without a chapter
  file stays text. Doctest lines (``>>>``, ``...``) and inline literals are left alone.
* Citations: "Gal et al. :cite:`gal2017concrete`" is rendered as the textual author-year citation
  "Gal et al. [2017]" rather than naming the authors twice (the docstrings stay as they are).
* Types of other projects: ``intersphinx_mapping`` in ``_config.yml`` reads the inventories in
  ``_inventories/`` from disk (no network at build time). They are written by
  ``python _ext/apilinks.py`` from the tables below, which hold the names the API's annotations
  refer to and their pages in the projects' real documentation; ``tests/test_apilinks.py`` checks
  that the committed files are what the tables give.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVENTORY_DIR = ROOT / "_inventories"

# A chapter mention: "chapter 7", "Chapter 10", "chapters 1, 8 and 9", "chapters 11 and 12".
MENTION = re.compile(r"\b([Cc]hapters?)\s+(\d{1,2})((?:(?:\s*,\s*|\s+and\s+|\s*,\s*and\s+)\d{1,2}\b)*)")
NUMBER = re.compile(r"\d{1,2}")
LITERAL = re.compile(r"``.*?``|`[^`]*`")  # inline literals and existing roles: never rewritten


def chapter_docs(srcdir: Path = ROOT) -> dict[int, str]:
    """Chapter number -> docname (``chapters/07_dropblock``) of every chapter notebook."""
    docs = {}
    for path in sorted((srcdir / "chapters").glob("[0-9][0-9]_*.ipynb")):
        docs[int(path.name[:2])] = f"chapters/{path.stem}"
    return docs


def _link(text: str, number: int, docs: dict[int, str]) -> str:
    return f":doc:`{text} </{docs[number]}>`" if number in docs else text


def _link_mention(match: re.Match, docs: dict[int, str]) -> str:
    word, first, rest = match.group(1), int(match.group(2)), match.group(3)
    out = _link(f"{word} {first}", first, docs)
    pos = 0
    tail = []
    for number in NUMBER.finditer(rest):
        tail.append(rest[pos:number.start()])
        tail.append(_link(number.group(), int(number.group()), docs))
        pos = number.end()
    tail.append(rest[pos:])
    return out + "".join(tail)


def link_chapters(line: str, docs: dict[int, str]) -> str:
    """One docstring line with every chapter mention outside literals turned into links."""
    stripped = line.lstrip()
    if stripped.startswith((">>>", "... ")) or stripped == "...":
        return line
    pieces, pos = [], 0
    for literal in LITERAL.finditer(line):
        pieces.append(MENTION.sub(lambda m: _link_mention(m, docs), line[pos:literal.start()]))
        pieces.append(literal.group())
        pos = literal.end()
    pieces.append(MENTION.sub(lambda m: _link_mention(m, docs), line[pos:]))
    return "".join(pieces)


# "Gal et al. :cite:`gal2017concrete`" would render the authors twice in the author-year scheme
# ("Gal et al. [Gal et al., 2017]"); a single-key citation right after the surname its key starts
# with is rendered as a textual citation instead ("Gal et al. [2017]").
NAMED = re.compile(r"\b([A-Z][A-Za-z'\-]+)((?: et al\.)|(?: and [A-Z][A-Za-z'\-]+))?(\s+):cite:`([^`,\s]+)`")
NAME_AT_END = re.compile(r"\b([A-Z][A-Za-z'\-]+)((?: et al\.)|(?: and [A-Z][A-Za-z'\-]+))?\s*$")
CITE_AT_START = re.compile(r"^(\s*):cite:`([^`,\s]+)`")


def _named(match: re.Match) -> str:
    if match.group(4).lower().startswith(match.group(1).lower()):
        return f":cite:t:`{match.group(4)}`"
    return match.group(0)


def textual_citations(lines: list[str]) -> None:
    """Turn "Surname et al. :cite:`key`" into ":cite:t:`key`", also across a line break."""
    for i, line in enumerate(lines):
        lines[i] = NAMED.sub(_named, line)
        start = CITE_AT_START.match(lines[i])
        end = NAME_AT_END.search(lines[i - 1]) if i and start else None
        if end and start.group(2).lower().startswith(end.group(1).lower()):
            lines[i - 1] = lines[i - 1][:end.start()].rstrip()
            lines[i] = f"{start.group(1)}:cite:t:`{start.group(2)}`{lines[i][start.end():]}"


def _process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    textual_citations(lines)
    docs = app.env.bookchapters if hasattr(app.env, "bookchapters") else chapter_docs(Path(app.srcdir))
    app.env.bookchapters = docs
    in_literal_block = False
    for i, line in enumerate(lines):
        # an indented block after "::" or a directive such as ".. math::" is not prose
        if in_literal_block:
            if line.strip() and not line.startswith((" ", "\t")):
                in_literal_block = False
            else:
                continue
        if line.rstrip().endswith("::"):
            in_literal_block = True
            lines[i] = link_chapters(line, docs) if not line.lstrip().startswith("..") else line
            continue
        lines[i] = link_chapters(line, docs)


# --- inventories of other projects -------------------------------------------------------------
# (name, domain:role, page relative to the project's documentation root); a page ending in "#"
# gets the name appended as its anchor. The roles are those by which Sphinx refers to the names from
# annotations (typing.Any is looked up as a class); private paths such as torch._C.Generator or
# torch.nn.modules.module.Module are the names annotations resolve to, linked to the public page.
INVENTORIES = {
    "python": ("Python", "3", "https://docs.python.org/3/", [
        ("None", "py:data", "library/constants.html#"),
        ("bool", "py:class", "library/functions.html#"),
        ("int", "py:class", "library/functions.html#"),
        ("float", "py:class", "library/functions.html#"),
        ("str", "py:class", "library/stdtypes.html#"),
        ("tuple", "py:class", "library/stdtypes.html#"),
        ("list", "py:class", "library/stdtypes.html#"),
        ("dict", "py:class", "library/stdtypes.html#"),
        ("set", "py:class", "library/stdtypes.html#"),
        ("object", "py:class", "library/functions.html#"),
        ("ValueError", "py:exception", "library/exceptions.html#"),
        ("TypeError", "py:exception", "library/exceptions.html#"),
        ("collections.abc.Callable", "py:class", "library/collections.abc.html#"),
        ("collections.abc.Iterator", "py:class", "library/collections.abc.html#"),
        ("collections.abc.Iterable", "py:class", "library/collections.abc.html#"),
        ("collections.abc.Mapping", "py:class", "library/collections.abc.html#"),
        ("collections.abc.Sequence", "py:class", "library/collections.abc.html#"),
        ("typing.Any", "py:class", "library/typing.html#"),
        ("typing.Callable", "py:class", "library/typing.html#"),
        ("typing.Optional", "py:class", "library/typing.html#"),
        ("typing.Union", "py:class", "library/typing.html#"),
        ("typing.Literal", "py:class", "library/typing.html#"),
        ("pathlib.Path", "py:class", "library/pathlib.html#"),
    ]),
    "numpy": ("NumPy", "stable", "https://numpy.org/doc/stable/", [
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#"),
        ("numpy.float64", "py:attr", "reference/arrays.scalars.html#"),
    ]),
    "torch": ("PyTorch", "stable", "https://docs.pytorch.org/docs/stable/", [
        ("torch.Tensor", "py:class", "tensors.html#"),
        ("torch.Generator", "py:class", "generated/torch.Generator.html#"),
        ("torch._C.Generator", "py:class", "generated/torch.Generator.html#torch.Generator"),
        ("torch.dtype", "py:class", "tensor_attributes.html#"),
        ("torch.device", "py:class", "tensor_attributes.html#"),
        ("torch.nn.Module", "py:class", "generated/torch.nn.Module.html#"),
        ("torch.nn.modules.module.Module", "py:class", "generated/torch.nn.Module.html#torch.nn.Module"),
        ("torch.nn.Sequential", "py:class", "generated/torch.nn.Sequential.html#"),
        ("torch.nn.modules.container.Sequential", "py:class",
         "generated/torch.nn.Sequential.html#torch.nn.Sequential"),
        ("torch.nn.Linear", "py:class", "generated/torch.nn.Linear.html#"),
        ("torch.nn.modules.linear.Linear", "py:class", "generated/torch.nn.Linear.html#torch.nn.Linear"),
        ("torch.nn.parameter.Parameter", "py:class", "generated/torch.nn.parameter.Parameter.html#"),
        ("torch.nn.Parameter", "py:class",
         "generated/torch.nn.parameter.Parameter.html#torch.nn.parameter.Parameter"),
        ("torch.nn.Dropout", "py:class", "generated/torch.nn.Dropout.html#"),
        ("torch.nn.functional.dropout", "py:function", "generated/torch.nn.functional.dropout.html#"),
    ]),
}


def inventory_bytes(project: str, version: str, entries) -> bytes:
    """An objects.inv (Sphinx inventory version 2) for ``entries``."""
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    body = "".join(f"{name} {role} 1 {page + name if page.endswith('#') else page} -\n"
                   for name, role, page in entries)
    return header + zlib.compress(body.encode(), 9)


def write_inventories(directory: Path = INVENTORY_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for key, (project, version, _url, entries) in INVENTORIES.items():
        path = directory / f"{key}.inv"
        path.write_bytes(inventory_bytes(project, version, entries))
        written.append(path)
    return written


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    for path in write_inventories():
        print(f"wrote {path.relative_to(ROOT)}")

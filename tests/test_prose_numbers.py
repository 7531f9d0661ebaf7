"""Numbers in the chapters' prose come from outputs.

Every experimental number a chapter quotes is glued from the cell that computes it (myst-nb
``glue`` and the ``{glue:text}`` role), so that nbval checks the number's source and a changed output
changes the text. This test flags decimals and percentages typed into chapter Markdown and figure
captions outside math and code. The few exceptions (a parameter of an experiment, a figure quoted
from a paper, a claim quoted to be corrected) are listed below, each with its reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))

# A decimal (0.96, .5, 1.7) or a percentage (20%, 95.9 %), not part of a word, a version or a label.
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?%|(?<![\w.\-−])[-−]?\d*\.\d+(?![\w%]|\.\d)")

# (chapter, a snippet of the prose around the number, why it is typed). The snippet is matched
# against the prose with math, code and roles removed (see `prose`), so it reads as the page does
# with the math left out.
EXCEPTIONS: list[tuple[str, str, str]] = [
    # chapter 01
    # chapter 02
    # chapter 03
    # chapter 04
    # chapter 05
    # chapter 06
    # chapter 07
    ("07", "scheduled from 0 to 0.1–0.3", "a claim quoted in order to correct it: the schedule is on p, not on gamma"),
    ("07", "outperforms dropout by 1–3% top-1", "a claim quoted in order to correct it (a figure for large ImageNet networks)"),
    ("07", "a ResNet-50 on ImageNet, 78.13% top-1 with DropBlock, more than 1.6 points",
     "figures quoted from Ghiasi et al. (their ResNet-50 headline), to correct a broader claim"),
    # chapter 08
    ("08", "with 30% of the training labels resampled at random", "a setting of the experiment (label noise 0.3)"),
    ("08", "Right: 30% of the training labels resampled", "a setting of the experiment, in the figure caption"),
    ("08", "(typically 0.5)", "a claim quoted in order to correct it (drop and survival mixed up)"),
    ("08", "Drop path rate 0.1\" is the rate of the last block", "a setting quoted from transformer code to explain it"),
    # chapter 09
    ("09", "trained on 1.0 to 1.4 trillion tokens", "figures quoted from the LLaMA paper"),
    ("09", "decay 0.1 and gradient clipping at 1.0", "training settings quoted from the LLaMA paper"),
    ("09", "20% of the *training* labels are flipped", "a setting of the experiment (label noise 0.2)"),
    ("09", "counting task with 20% flipped training labels", "a setting of the experiment, in the figure caption"),
    # chapter 10
    ("10", "They reported networks with more than 95% of the weights removed", "a figure quoted from Molchanov et al."),
    ("10", "Molchanov et al. report more than 95% on larger networks", "a figure quoted from Molchanov et al."),
]


def prose(text: str) -> str:
    """The Markdown text a reader sees, without math, code, roles, link targets and comments."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^(```|~~~).*?^\1\s*$", " ", text, flags=re.S | re.M)  # fenced blocks and directives
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", " ", text, flags=re.S)
    text = re.sub(r"(?<![\\$])\$(?!\$)[^$\n]+?(?<![\\$])\$", " ", text)  # inline math
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)  # roles: {glue:text}`...`, {numref}`...`, {math}`...`
    text = re.sub(r"``.*?``", " ", text)  # inline code
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"^\(\S+\)=\s*$", " ", text, flags=re.M)  # labels
    return text


def chapter_texts(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    texts = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    for cell in nb["cells"]:
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if figure.get("caption"):
            texts.append(figure["caption"])
    return texts


def typed_numbers(path: Path) -> list[tuple[str, str]]:
    """(number, its line) for every decimal or percentage typed in the chapter's prose."""
    found = []
    for text in chapter_texts(path):
        for line in prose(text).splitlines():
            line = " ".join(line.split())
            found += [(m.group(), line) for m in NUMBER.finditer(line)]
    return found


def excepted(chapter: str, number: str, line: str) -> bool:
    return any(ch == chapter and number in snippet and snippet in line for ch, snippet, _ in EXCEPTIONS)


def test_the_scanner_finds_typed_numbers_and_ignores_math_code_and_glue():
    text = ("Accuracy rose to 0.96 (20% of the labels); at $p = 0.5$ and ``p=0.3`` the\n"
            "rate {glue:text}`rate:.3f` stays; $$x = 0.25$$ and 2.5% of\n```python\ny = 0.7\n```\n"
            "version 3.11.7, [a link](http://x.org/0.5) and 1,024 rows, to about 0.7.")
    numbers = [m.group() for line in prose(text).splitlines() for m in NUMBER.finditer(" ".join(line.split()))]
    assert numbers == ["0.96", "20%", "2.5%", "0.7"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_experimental_number_is_typed_in_the_prose(path):
    chapter = path.name[:2]
    typed = [(n, line) for n, line in typed_numbers(path) if not excepted(chapter, n, line)]
    assert not typed, (
        f"{path.name}: numbers typed in the prose; glue them from the cell that computes them "
        "(`from myst_nb import glue; glue('name', value, display=False)` and {glue:text}`name:.3f`), "
        "or list them in EXCEPTIONS with a reason:\n" + "\n".join(f"  {n!r} in: {line}" for n, line in typed))


def test_every_exception_is_used_and_has_a_reason():
    for chapter, snippet, reason in EXCEPTIONS:
        path = next(p for p in CHAPTERS if p.name.startswith(chapter))
        assert any(snippet in line for _, line in typed_numbers(path)), f"stale exception {chapter}: {snippet!r}"
        assert len(reason) > 15, f"exception {chapter}: {snippet!r} gives no real reason"
    assert len(EXCEPTIONS) <= 40, "the exception list should stay short"


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([\w-]+)")
GLUE_CALL = re.compile(r"""glue\(\s*["']([\w-]+)["']""")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_glued_name_is_glued_by_a_cell_of_the_chapter(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    used = {name for text in chapter_texts(path) for name in GLUE_ROLE.findall(text)}
    stored = {o["metadata"]["scrapbook"]["name"] for c in nb["cells"] if c["cell_type"] == "code"
              for o in c["outputs"] if "scrapbook" in o.get("metadata", {})}
    assert used <= stored, f"{path.name}: glued in the text but not stored by an executed cell: {sorted(used - stored)}"

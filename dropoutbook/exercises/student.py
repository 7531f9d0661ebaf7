"""Make the student copy of a solution notebook.

Exercise notebooks are written solution-first. In the solution notebook, each solution is a
code cell tagged ``solution`` whose answer lies between the lines ``### BEGIN SOLUTION`` and
``### END SOLUTION``; the Markdown cells that open and close the book's hidden solution
(``{solution-start}`` / ``{solution-end}``) are tagged ``solution`` too. The student copy

* replaces each answer with ``raise NotImplementedError(...)`` at the same indentation, so the
  function signature stays and the check cell after it fails with "not written yet";
* drops the Markdown cells tagged ``solution``;
* turns the ``{exercise}`` directives into plain Markdown headings that Jupyter shows well, drops
  MyST label lines and keeps only the text of cross-reference roles;
* clears every output.

Only the standard library is used, so instructors can run it anywhere.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

__all__ = ["make_student_copy", "student_notebook"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STARTER = 'raise NotImplementedError("Exercise: write your solution here")'
_EXERCISE = re.compile(r"^(`{3,})\{exercise\}[ \t]*(.*)$")
_TARGET = re.compile(r"^\([\w.-]+\)=\s*$")  # a MyST label line such as (ex-inverted-dropout)=
_ROLE = re.compile(r"\{(?:ref|doc|numref|eq)\}`([^`<]*?)\s*(?:<[^`>]*>)?`")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _lines(text: str) -> list[str]:
    parts = text.splitlines(keepends=True)
    return parts


def _strip_solution(text: str, where: str) -> str:
    lines = text.splitlines()
    out, inside, found = [], False, False
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested {BEGIN}")
            inside, found = True, True
            out.append(line[: len(line) - len(line.lstrip())] + STARTER)
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    if not found:
        raise ValueError(f"{where}: a cell tagged 'solution' must mark its answer with {BEGIN} / {END}")
    return "\n".join(out)


def _plain_markdown(text: str) -> str:
    """Markdown that Jupyter shows well: ```{exercise} Title blocks become '**Exercise: Title**' and
    the body, MyST label lines are dropped, and cross-reference roles keep only their text."""
    lines = text.splitlines()
    out, fence = [], None
    for line in lines:
        if _TARGET.match(line):
            continue
        line = _ROLE.sub(lambda m: m.group(1), line)
        match = _EXERCISE.match(line.strip())
        if fence is None and match:
            fence = match.group(1)
            title = match.group(2).strip()
            out.append(f"**Exercise{': ' + title if title else ''}**")
            out.append("")
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
                continue
            if re.match(r"^:[\w-]+:", line.strip()):
                continue  # directive options such as :label:
        out.append(line)
    return "\n".join(out)


def student_notebook(notebook: dict, where: str = "notebook") -> dict:
    """Return the student version of a solution notebook given as a dict (nbformat 4 JSON)."""
    nb = copy.deepcopy(notebook)
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        tags = cell.get("metadata", {}).get("tags", [])
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            if "solution" in tags:
                continue
            text = _plain_markdown(text)
        elif cell["cell_type"] == "code":
            if "solution" not in tags and (BEGIN in text or END in text):
                raise ValueError(f"{where}, cell {i}: solution markers in a cell not tagged 'solution' would leak the answer")
            if "solution" in tags:
                text = _strip_solution(text, f"{where}, cell {i}")
                cell["metadata"]["tags"] = [t for t in tags if t != "solution"]
            cell["outputs"] = []
            cell["execution_count"] = None
        cell["source"] = _lines(text)
        cells.append(cell)
    nb["cells"] = cells
    return nb


def make_student_copy(solution_path, student_path) -> Path:
    """Write the student copy of the solution notebook ``solution_path`` to ``student_path``."""
    solution_path, student_path = Path(solution_path), Path(student_path)
    nb = json.loads(solution_path.read_text(encoding="utf-8"))
    out = student_notebook(nb, where=str(solution_path))
    student_path.parent.mkdir(parents=True, exist_ok=True)
    student_path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return student_path


def main(argv=None) -> int:
    """``python -m dropoutbook.exercises SOLUTIONS_DIR STUDENT_DIR``: copy every ``NN_*.ipynb``."""
    import argparse

    parser = argparse.ArgumentParser(description="Write the student copies of the exercise notebooks.")
    parser.add_argument("solutions", type=Path, help="folder of solution notebooks (NN_topic.ipynb)")
    parser.add_argument("students", type=Path, help="folder for the student copies")
    args = parser.parse_args(argv)
    sources = sorted(args.solutions.glob("[0-9]*.ipynb"))
    if not sources:
        parser.error(f"no solution notebooks (NN_*.ipynb) in {args.solutions}")
    for src in sources:
        print(make_student_copy(src, args.students / src.name))
    return 0



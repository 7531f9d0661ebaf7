"""Make the student copy, and the nbgrader version, of a solution notebook.

Exercise notebooks are written solution-first. In the solution notebook, each answer lies in a
code cell between the lines ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the cell is tagged
``solution``); the book's hidden solution is opened and closed by the Markdown directives
``{solution-start}`` / ``{solution-end}`` (or is one ``{solution}`` directive), and a check cell
calls a checker, ``check_x(answer)``. Lines between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` are tests that students do not see.

The **student copy** (:func:`~dropoutbook.exercises.make_student_copy`)

* replaces each answer with ``raise NotImplementedError(...)`` at the same indentation, so the
  function signature stays and the check cell after it fails with "not written yet";
* drops every hidden-test block, every solution directive (tagged or not) and every cell between
  ``{solution-start}`` and ``{solution-end}`` that is not an answer cell, and the Markdown cells
  tagged ``solution``;
* turns the ``{exercise}`` directives into plain Markdown headings that Jupyter shows well, drops
  MyST label lines and keeps only the text of cross-reference roles;
* clears every output.

The **instructor version** (:func:`~dropoutbook.exercises.make_instructor_copy`) is the nbgrader
"source" notebook of the exercise: the same Markdown as the student copy, the answers and hidden
tests kept between nbgrader's own markers, and nbgrader cell metadata: answer cells are
``solution`` cells, check cells ``autograded-test`` cells worth the ``points=`` of their first
check (1 by default), every other cell is locked. nbgrader's ``generate_assignment`` turns it into
the release version, and ``autograde`` grades the students' copies of that.

Only the standard library is used, so instructors can run it anywhere.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

__all__ = ["make_student_copy", "make_instructor_copy", "student_notebook", "instructor_notebook"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STARTER = 'raise NotImplementedError("Exercise: write your solution here")'
_EXERCISE = re.compile(r"^(`{3,})\{exercise\}[ \t]*(.*)$")
_TARGET = re.compile(r"^\([\w.-]+\)=\s*$")  # a MyST label line such as (ex-inverted-dropout)=
_ROLE = re.compile(r"\{(?:ref|doc|numref|eq)\}`([^`<]*?)\s*(?:<[^`>]*>)?`")
_FENCE = re.compile(r"^(`{3,}|:{3,})\{([\w-]+)\}")  # the opening line of a MyST directive
_SOLUTION_DIRECTIVES = {"solution", "solution-start", "solution-end"}
_CHECK_CELL = re.compile(r"\s*check_\w+\(")
NBGRADER_SCHEMA = 3


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _blocks(text: str, begin: str, end: str, where: str):
    """Yield ``(line, inside)`` for each line; the marker lines themselves are yielded as inside."""
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise ValueError(f"{where}: nested {begin}")
            inside = True
            yield line, True
        elif stripped == end:
            if not inside:
                raise ValueError(f"{where}: {end} without {begin}")
            yield line, True
            inside = False
        else:
            yield line, inside
    if inside:
        raise ValueError(f"{where}: {begin} without {end}")


def _strip_hidden_tests(text: str, where: str) -> str:
    return "\n".join(line for line, inside in _blocks(text, BEGIN_HIDDEN, END_HIDDEN, where) if not inside)


def _strip_solution(text: str, where: str) -> str:
    out = []
    for line, inside in _blocks(text, BEGIN, END, where):
        if line.strip() == BEGIN:
            out.append(line[: len(line) - len(line.lstrip())] + STARTER)
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _directives(text: str):
    """Split Markdown into ``(directive name or None, text)`` pieces; a directive piece is the whole fenced block."""
    pieces, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if not match:
            pieces.append((None, lines[i]))
            i += 1
            continue
        fence, name = match.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        pieces.append((name, "\n".join(lines[i:j + 1])))
        i = j + 1
    return pieces


def _without_solutions(text: str, gate: bool) -> tuple[str, bool, bool]:
    """Markdown without its solution directives and what lies between {solution-start} and {solution-end}.

    ``gate`` says whether a gated solution is open where the text begins. Returns the kept text,
    whether a gate is open where it ends, and whether anything was removed.
    """
    kept, removed = [], False
    for name, piece in _directives(text):
        if name in _SOLUTION_DIRECTIVES:
            gate = name == "solution-start"
            removed = True
        elif gate:
            removed = True
        else:
            kept.append(piece)
    return "\n".join(kept), gate, removed


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


def _classify(notebook: dict, where: str):
    """Yield ``(index, cell, kind, text)`` with kind 'markdown', 'answer', 'check', 'code' or None (drop).

    The text of Markdown has lost its solution directives; cells inside a {solution-start} ...
    {solution-end} gate other than answer cells are dropped.
    """
    gate = False
    for i, cell in enumerate(notebook.get("cells", [])):
        tags = cell.get("metadata", {}).get("tags", [])
        text = _source(cell)
        here = f"{where}, cell {i}"
        if cell["cell_type"] == "code":
            answer = BEGIN in text or END in text
            if "solution" in tags and not answer:
                raise ValueError(f"{here}: a cell tagged 'solution' must mark its answer with {BEGIN} / {END}")
            if gate and not answer:
                raise ValueError(f"{here}: a code cell inside a solution marks no answer with {BEGIN} / {END}; "
                                 "it would leak the solution")
            kind = "answer" if answer else "check" if _CHECK_CELL.match(text) else "code"
            yield i, cell, kind, text
            continue
        if cell["cell_type"] != "markdown":
            yield i, cell, "code" if cell["cell_type"] == "raw" else None, text
            continue
        text, gate, removed = _without_solutions(text, gate)
        if "solution" in tags or removed and not text.strip():
            yield i, cell, None, text
        else:
            yield i, cell, "markdown", text
    if gate:
        raise ValueError(f"{where}: {{solution-start}} without {{solution-end}}")


def _clear(cell) -> None:
    if cell["cell_type"] == "code":
        cell["outputs"] = []
        cell["execution_count"] = None


def student_notebook(notebook: dict, where: str = "notebook") -> dict:
    """Return the student version of a solution notebook given as a dict (nbformat 4 JSON)."""
    nb = copy.deepcopy(notebook)
    cells = []
    for i, cell, kind, text in _classify(nb, where):
        if kind is None:
            continue
        if kind == "markdown":
            text = _plain_markdown(text)
        elif cell["cell_type"] == "code":
            text = _strip_hidden_tests(text, f"{where}, cell {i}")
            if kind == "answer":
                text = _strip_solution(text, f"{where}, cell {i}")
                if "tags" in cell["metadata"]:
                    cell["metadata"]["tags"] = [t for t in cell["metadata"]["tags"] if t != "solution"]
            _clear(cell)
        cell["source"] = _lines(text)
        cells.append(cell)
    nb["cells"] = cells
    return nb


def _points(text: str, where: str) -> float:
    """The points of a check cell: the ``points=`` of its first checker call (1 by default); hidden tests add none."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("check_"):
            given = [k.value for k in node.keywords if k.arg == "points"]
            value = ast.literal_eval(given[0]) if given else 1
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{where}: points must be a number >= 0, got {value!r}")
            return float(value)
    raise ValueError(f"{where}: a check cell must call a checker check_x(...)")


def _grade_id(base: str, used: set) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-") or "cell"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name)
    return name


def instructor_notebook(notebook: dict, where: str = "notebook") -> dict:
    """Return the nbgrader source version of a solution notebook given as a dict (nbformat 4 JSON)."""
    nb = copy.deepcopy(notebook)
    cells, used = [], set()
    for i, cell, kind, text in _classify(nb, where):
        if kind is None:
            continue
        meta = {"grade": False, "locked": True, "solution": False, "schema_version": NBGRADER_SCHEMA}
        if kind == "markdown":
            text = _plain_markdown(text)
            meta["grade_id"] = _grade_id(f"text-{i}", used)
        elif kind == "answer":
            list(_blocks(text, BEGIN, END, f"{where}, cell {i}"))  # balanced markers
            defined = re.search(r"^def (\w+)", text, re.M)
            meta.update(locked=False, solution=True, grade_id=_grade_id(defined.group(1) if defined else f"answer-{i}", used))
            cell["metadata"]["tags"] = [t for t in cell["metadata"].get("tags", []) if t != "solution"]
            if not cell["metadata"]["tags"]:
                del cell["metadata"]["tags"]
        elif kind == "check":
            list(_blocks(text, BEGIN_HIDDEN, END_HIDDEN, f"{where}, cell {i}"))
            called = re.match(r"\s*(check_\w+)", text).group(1)
            meta.update(grade=True, points=_points(text, f"{where}, cell {i}"), grade_id=_grade_id(f"test-{called}", used))
        else:
            if BEGIN_HIDDEN in text:
                raise ValueError(f"{where}, cell {i}: hidden tests belong in a check cell (check_x(...))")
            meta["grade_id"] = _grade_id(f"code-{i}", used)
        cell["metadata"]["nbgrader"] = meta
        _clear(cell)
        cell["source"] = _lines(text)
        cells.append(cell)
    nb["cells"] = cells
    return nb


def _write(make, solution_path, out_path) -> Path:
    solution_path, out_path = Path(solution_path), Path(out_path)
    if out_path.exists() and out_path.resolve() == solution_path.resolve():
        raise ValueError(f"{out_path} is the solution notebook itself; write the copy elsewhere")
    nb = json.loads(solution_path.read_text(encoding="utf-8"))
    out = make(nb, where=str(solution_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_path


def make_student_copy(solution_path, student_path) -> Path:
    """Write the student copy of the solution notebook ``solution_path`` to ``student_path`` (chapter 1 onwards).

    Refuses (``ValueError``) to write over the solution notebook. See :mod:`dropoutbook.exercises.student`.
    """
    return _write(student_notebook, solution_path, student_path)


def make_instructor_copy(solution_path, instructor_path) -> Path:
    """Write the nbgrader source version of the solution notebook ``solution_path`` to ``instructor_path`` (chapter 1 onwards).

    Put it in nbgrader's ``source/<assignment>/`` folder; ``nbgrader generate_assignment`` then
    writes the release version. Refuses (``ValueError``) to write over the solution notebook.
    """
    return _write(instructor_notebook, solution_path, instructor_path)


def main(argv=None) -> int:
    """``python -m dropoutbook.exercises [--nbgrader] SOURCE... OUTPUT_DIR``.

    Student copies go to ``OUTPUT_DIR/NAME.ipynb``; nbgrader versions to ``OUTPUT_DIR/NAME/NAME.ipynb``,
    one assignment per notebook in nbgrader's ``source`` folder.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m dropoutbook.exercises",
        description="Write the student copies (or, with --nbgrader, the nbgrader source versions) of solution "
                    "notebooks. A SOURCE is a notebook or a folder, which stands for its NN_*.ipynb notebooks. "
                    "With --nbgrader, OUTPUT_DIR is nbgrader's source folder: each notebook becomes an "
                    "assignment named after it, OUTPUT_DIR/NAME/NAME.ipynb.")
    parser.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="solution notebooks or folders")
    parser.add_argument("output", type=Path, metavar="OUTPUT_DIR", help="folder for the copies (same file names)")
    parser.add_argument("--nbgrader", action="store_true", help="write nbgrader source versions, not student copies")
    args = parser.parse_args(argv)
    notebooks = []
    for source in args.sources:
        if source.is_dir():
            found = sorted(source.glob("[0-9]*.ipynb"))
            if not found:
                parser.error(f"no solution notebooks (NN_*.ipynb) in {source}")
            notebooks += found
        elif source.suffix == ".ipynb" and source.is_file():
            notebooks.append(source)
        else:
            parser.error(f"{source} is neither a notebook (.ipynb) nor a folder")
    targets = [args.output / nb.stem / nb.name if args.nbgrader else args.output / nb.name for nb in notebooks]
    for nb, target in zip(notebooks, targets):
        if target.resolve() in {n.resolve() for n in notebooks}:
            parser.error(f"writing {target} would overwrite a solution notebook; choose another OUTPUT_DIR")
    if len(set(targets)) != len(targets):
        parser.error("two sources have the same file name; copy them into different folders")
    make = make_instructor_copy if args.nbgrader else make_student_copy
    for nb, target in zip(notebooks, targets):
        print(make(nb, target))
    return 0

"""Guards on the committed notebooks that nbval alone does not give.

nbval compares the outputs of executed cells only: a cell that was never executed passes
silently. These tests also check the chapter template, figure captions, the exercise
notebooks' student copies, and that every notebook is on the site and re-executed by the Makefile.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dropoutbook.environment import KERNEL_NAME
from dropoutbook.exercises.student import BEGIN, END, student_notebook

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9]*.ipynb"))
PAGES = [ROOT / "course.ipynb"]  # "Using the exercises in a course"
NOTEBOOKS = CHAPTERS + EXERCISES + PAGES
IGNORE_MARKER = "NBVAL_IGNORE_OUTPUT"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell) -> str:
    return "".join(cell["source"])


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and source(c).strip()]


def test_there_are_notebooks():
    assert CHAPTERS and EXERCISES and all(p.exists() for p in PAGES)


def test_every_notebook_is_on_the_site_and_in_the_makefile():
    tracked = {p for p in ROOT.rglob("*.ipynb") if not {".venv", "_build", "student", ".ipynb_checkpoints"} & set(p.parts)}
    assert tracked == set(NOTEBOOKS), "a notebook these tests do not guard"
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"file:\s*(\S+)", toc))
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    patterns = re.search(r"^NOTEBOOKS\s*:=(.*)$", makefile, re.M).group(1).split()
    for path in NOTEBOOKS:
        relative = path.relative_to(ROOT)
        assert str(relative.with_suffix("")) in listed, f"{relative} is not in _toc.yml"
        assert any(relative.match(p.removeprefix("$(wildcard ").removesuffix(")")) for p in patterns), \
            f"{relative} is not in the Makefile's NOTEBOOKS (make execute, make test-notebooks)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_was_executed_in_order_without_error(path):
    cells = code_cells(load(path))
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, f"{path.name}: unexecuted cells; run `make execute`"
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: cells not executed top to bottom in one kernel"
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name}: stored errors {[(e['ename'], e['evalue']) for e in errors]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ignored_outputs_say_why(path):
    for cell in code_cells(load(path)):
        text = source(cell)
        tagged = "nbval-ignore-output" in cell["metadata"].get("tags", [])
        assert not tagged, f"{path.name}: use '# {IGNORE_MARKER}: reason' in the cell, not a bare tag"
        for line in text.splitlines():
            if IGNORE_MARKER in line:
                assert re.search(rf"#\s*{IGNORE_MARKER}:\s*\S{{10,}}", line), f"{path.name}: '{line}' gives no reason"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_a_caption_and_a_name(path):
    for cell in code_cells(load(path)):
        if any("image/png" in o.get("data", {}) for o in cell["outputs"]):
            figure = cell["metadata"].get("mystnb", {}).get("figure", {})
            assert len(figure.get("caption", "")) > 40, f"{path.name}: a figure without a real caption"
            assert figure.get("name", "").startswith("fig-"), f"{path.name}: a figure without a 'fig-' name"


TEMPLATE = ["The question", "The mechanism", "Derivation", "Check", "Experiment",
            "Pitfalls and errata", "Summary", "Exercises", "References"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_template(path):
    nb = load(path)
    headings = [line[3:].strip() for c in nb["cells"] if c["cell_type"] == "markdown"
                for line in source(c).splitlines() if line.startswith("## ")]
    positions = []
    for section in TEMPLATE:
        found = [i for i, h in enumerate(headings) if h.startswith(section)]
        assert found, f"{path.name}: no '## {section}' section (chapter template: CONTRIBUTING.md, 'Order of work', step 4)"
        positions.append(found[0])
    assert positions == sorted(positions), f"{path.name}: template sections out of order: {headings}"
    text = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "{cite:" in text and "{bibliography}" in text, f"{path.name}: cites nothing or lists no references"
    assert "../exercises/" in text, f"{path.name}: no link to its exercise notebook"


def check_cells(nb):
    return [c for c in code_cells(nb) if re.match(r"\s*check_\w+\(", source(c))]


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_solution_notebook_passes_every_check(path):
    nb = load(path)
    checks = check_cells(nb)
    minimum = 4 if int(path.name[:2]) <= 6 else 3  # Part I chapters have at least 4, Part II at least 3
    assert len(checks) >= minimum, f"{path.name}: fewer than {minimum} checked exercises"
    for cell in checks:
        text = "".join("".join(o.get("text", "")) for o in cell["outputs"] if o["output_type"] == "stream")
        assert text.startswith("Correct:"), f"{path.name}: the reference solution fails `{source(cell)}`"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_student_copy_is_committed_and_up_to_date(path):
    student = ROOT / "exercises" / "student" / path.name
    assert student.exists(), f"missing student copy {student}; run `make student`"
    assert load(student) == student_notebook(load(path), where=str(path)), f"{student} is stale; run `make student`"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_student_copy_hides_every_solution(path):
    nb = load(path)
    student = student_notebook(nb, where=str(path))
    student_text = "\n".join(source(c) for c in student["cells"])
    shown = "\n".join(source(c) for c in nb["cells"] if "solution" not in c["metadata"].get("tags", []))
    assert BEGIN not in student_text and END not in student_text and "{solution" not in student_text
    for cell in nb["cells"]:
        if "solution" in cell["metadata"].get("tags", []) and cell["cell_type"] == "code":
            answer = source(cell).split(BEGIN)[1].split(END)[0]
            for line in answer.splitlines():
                if len(line.strip()) > 12 and not line.strip().startswith("#") and line.strip() not in shown:
                    assert line.strip() not in student_text, f"solution line leaks into the student copy: {line.strip()}"


@pytest.fixture(scope="module")
def book_kernel(tmp_path_factory):
    """One kernel of the book's environment for all student copies run by this worker: each copy
    starts with `%reset -f` (an empty namespace), and the imports of torch and the library, which
    take most of a fresh kernel's time, are paid once."""
    manager = pytest.importorskip("jupyter_client.manager")
    km = manager.KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel(cwd=str(tmp_path_factory.mktemp("student-kernel")))
    try:
        yield km
    finally:
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_student_copy_fails_every_check_with_not_written_yet(path, book_kernel):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    student = nbformat.reads(json.dumps(student_notebook(load(path), where=str(path))), as_version=4)
    student.cells.insert(0, nbformat.v4.new_code_cell("%reset -f"))
    client = nbclient.NotebookClient(student, km=book_kernel, timeout=300, allow_errors=True)
    client.execute()
    assert not any(o["output_type"] == "error" for o in student.cells[0].outputs), "the namespace was not reset"
    checks = check_cells(student)
    assert checks
    for cell in checks:
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        assert errors and errors[0]["ename"] == "CheckFailed", f"`{source(cell)}` did not fail in the student copy"
        assert "not written yet" in errors[0]["evalue"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_figure_is_stored_at_twice_its_displayed_width(path):
    """High-density screens: each PNG figure has about twice the pixels of the width it is shown at
    (the book's plotting style saves retina PNGs; `make execute` after a change of style)."""
    import base64
    import struct

    figures = [o for c in code_cells(load(path)) for o in c.get("outputs", [])
               if "image/png" in o.get("data", {})]
    for output in figures:
        png = base64.b64decode(output["data"]["image/png"])
        pixels = struct.unpack(">I", png[16:20])[0]
        shown = output.get("metadata", {}).get("image/png", {}).get("width")
        assert shown, f"{path.name}: a figure has no display width (not a 2x PNG); run `make execute`"
        assert pixels >= 2 * shown - 1, f"{path.name}: a figure of {pixels} px is shown {shown} px wide (not 2x)"

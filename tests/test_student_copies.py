"""The copy generator: student copies and nbgrader versions of solution notebooks, and its command line.

The committed notebooks' own copies are tested in test_notebooks.py; here small notebooks built
in the test show each rule, and nbgrader itself takes an exercise notebook through its
``generate_assignment`` and ``autograde`` steps.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from dropoutbook.exercises import make_instructor_copy, make_student_copy
from dropoutbook.exercises.student import (BEGIN, BEGIN_HIDDEN, END, END_HIDDEN, STARTER, instructor_notebook, main,
                                           student_notebook)

ROOT = Path(__file__).resolve().parents[1]
CH01 = ROOT / "exercises" / "01_inverted_dropout.ipynb"


def code(source, tags=None):
    cell = {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}],
            "execution_count": 3, "source": source}
    if tags:
        cell["metadata"]["tags"] = tags
    return cell


def markdown(source, tags=None):
    cell = {"cell_type": "markdown", "metadata": {}, "source": source}
    if tags:
        cell["metadata"]["tags"] = tags
    return cell


def notebook(*cells):
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "dropoutbook"}}, "nbformat": 4, "nbformat_minor": 5}


def text(nb) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"])


ANSWER = code(f"def f(x):\n    {BEGIN}\n    return secret_formula(x)\n    {END}", tags=["solution"])
CHECK = code(f"check_inverted_dropout(f)\n{BEGIN_HIDDEN}\ncheck_inverted_dropout(f, p=0.7)\n{END_HIDDEN}")


def write(path: Path, nb: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


# --- student copies ----------------------------------------------------------------------------

def test_the_answer_becomes_a_starter_and_outputs_are_cleared():
    out = student_notebook(notebook(ANSWER))
    (cell,) = out["cells"]
    assert "".join(cell["source"]) == f"def f(x):\n    {STARTER}"
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert cell["metadata"]["tags"] == []


def test_hidden_tests_are_stripped_and_the_visible_check_stays():
    out = student_notebook(notebook(ANSWER, CHECK))
    assert "".join(out["cells"][1]["source"]) == "check_inverted_dropout(f)"
    assert "p=0.7" not in text(out) and "HIDDEN" not in text(out)


def test_untagged_answers_and_solution_directives_are_stripped():
    nb = notebook(
        markdown("Before.\n\n```{solution} ex-1\n:class: dropdown\nThe answer is secret_formula.\n```\n\nAfter."),
        markdown(":::{solution} ex-2\nAlso secret_formula.\n:::"),
        markdown("```{solution-start} ex-3\n:class: dropdown\n```"),
        markdown("Explanation of secret_formula, untagged, inside the gate."),
        code(f"def g(x):\n    {BEGIN}\n    return secret_formula(x)\n    {END}"),  # untagged answer
        markdown("```{solution-end}\n```\nVisible again."),
    )
    out = student_notebook(nb)
    assert "secret_formula" not in text(out) and "{solution" not in text(out)
    kept = [("".join(c["source"])) for c in out["cells"]]
    assert kept == ["Before.\n\n\nAfter.", f"def g(x):\n    {STARTER}", "Visible again."]


def test_code_without_an_answer_inside_a_solution_is_refused():
    nb = notebook(markdown("```{solution-start} ex\n```"), code("print(secret_formula)"), markdown("```{solution-end}\n```"))
    with pytest.raises(ValueError, match="inside a solution marks no answer"):
        student_notebook(nb)


@pytest.mark.parametrize("source, match", [
    (f"{BEGIN}\nx = 1", f"{BEGIN} without"),
    (f"x = 1\n{END}", f"{END} without"),
    (f"{BEGIN}\n{BEGIN}\n{END}", "nested"),
    ("x = 1", "must mark its answer"),
])
def test_unbalanced_markers_are_refused(source, match):
    with pytest.raises(ValueError, match=match):
        student_notebook(notebook(code(source, tags=["solution"])))


def test_an_unclosed_gate_is_refused():
    with pytest.raises(ValueError, match="solution-start"):
        student_notebook(notebook(markdown("```{solution-start} ex\n```"), markdown("more")))


def test_exercise_directives_become_plain_markdown():
    nb = notebook(markdown("(ex-a)=\n```{exercise} Do it\n:label: ex-a\n\nSee {ref}`the chapter <ch-a>`.\n```"))
    assert "".join(student_notebook(nb)["cells"][0]["source"]) == "**Exercise: Do it**\n\n\nSee the chapter."


def test_the_command_takes_notebooks_and_folders(tmp_path, capsys):
    a = write(tmp_path / "any name.ipynb", notebook(ANSWER))
    b = write(tmp_path / "folder" / "02_b.ipynb", notebook(ANSWER, CHECK))
    write(tmp_path / "folder" / "notes.ipynb", notebook(code("not an exercise")))  # a folder stands for NN_*.ipynb
    assert main([str(a), str(tmp_path / "folder"), str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["02_b.ipynb", "any name.ipynb"]
    written = json.loads((tmp_path / "out" / "02_b.ipynb").read_text())
    assert written == student_notebook(json.loads(b.read_text()))


def test_the_command_refuses_to_write_over_its_sources(tmp_path, capsys):
    a = write(tmp_path / "01_a.ipynb", notebook(ANSWER))
    before = a.read_text()
    for argv in ([str(tmp_path), str(tmp_path)], [str(a), str(tmp_path)], [str(a), str(tmp_path / "." / "")]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "overwrite a solution notebook" in capsys.readouterr().err
    assert a.read_text() == before
    with pytest.raises(ValueError, match="solution notebook itself"):
        make_student_copy(a, tmp_path / "01_a.ipynb")
    assert a.read_text() == before


def test_the_command_refuses_what_is_not_a_notebook(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("")
    (tmp_path / "empty").mkdir()
    for source in ("a.txt", "empty", "missing.ipynb"):
        with pytest.raises(SystemExit):
            main([str(tmp_path / source), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# --- the nbgrader version --------------------------------------------------------------------------

def test_the_instructor_version_carries_nbgrader_metadata():
    nb = notebook(markdown("```{exercise} Do it\n:label: ex\nText.\n```"), code("import torch"),
                  markdown("```{solution-start} ex\n```", tags=["solution"]), ANSWER,
                  markdown("```{solution-end}\n```", tags=["solution"]), CHECK,
                  code("check_inverted_dropout(f, points=2.5)"))
    out = instructor_notebook(nb)
    meta = [c["metadata"]["nbgrader"] for c in out["cells"]]
    assert [(m["solution"], m["grade"], m["locked"]) for m in meta] == [
        (False, False, True), (False, False, True), (True, False, False), (False, True, True), (False, True, True)]
    assert [m.get("points") for m in meta] == [None, None, None, 1.0, 2.5]  # the first check call's points=
    assert len({m["grade_id"] for m in meta}) == len(meta) and meta[2]["grade_id"] == "f"
    assert all(m["schema_version"] == 3 for m in meta)
    answer, check = "".join(out["cells"][2]["source"]), "".join(out["cells"][3]["source"])
    assert BEGIN in answer and END in answer and "secret_formula" in answer  # nbgrader clears it itself
    assert BEGIN_HIDDEN in check and END_HIDDEN in check
    assert "{solution" not in text(out) and all(c.get("outputs", []) == [] for c in out["cells"])


def test_the_command_writes_one_nbgrader_assignment_per_notebook(tmp_path, capsys):
    a = write(tmp_path / "sources" / "01_a.ipynb", notebook(ANSWER, CHECK))
    write(tmp_path / "sources" / "02_b.ipynb", notebook(ANSWER))
    assert main(["--nbgrader", str(tmp_path / "sources"), str(tmp_path / "source")]) == 0
    assert sorted(str(p.relative_to(tmp_path / "source")) for p in (tmp_path / "source").rglob("*.ipynb")) == [
        "01_a/01_a.ipynb", "02_b/02_b.ipynb"]
    written = json.loads((tmp_path / "source" / "01_a" / "01_a.ipynb").read_text())
    assert written == instructor_notebook(json.loads(a.read_text()))


def test_hidden_tests_outside_a_check_cell_are_refused_in_the_instructor_version():
    with pytest.raises(ValueError, match="hidden tests belong in a check cell"):
        instructor_notebook(notebook(code(f"{BEGIN_HIDDEN}\nx = 1\n{END_HIDDEN}")))


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # raised inside nbgrader's gradebook
def test_nbgrader_generates_and_autogrades_an_exercise_notebook(tmp_path, monkeypatch):
    """nbgrader's generate_assignment accepts the instructor version; autograde scores the solutions in full."""
    pytest.importorskip("nbgrader")
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    # nbgrader runs its database migrations with the `alembic` command of its environment
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    monkeypatch.chdir(tmp_path)
    source = make_instructor_copy(CH01, tmp_path / "source" / "ex01" / CH01.name)
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.Exchange.root = str(tmp_path / "exchange")
    api = NbGraderAPI(CourseDirectory(config=config), config=config)

    generated = api.generate_assignment("ex01", force=True)
    assert generated["success"], generated.get("error") or generated.get("log")
    release = json.loads((tmp_path / "release" / "ex01" / CH01.name).read_text())
    solution = json.loads(CH01.read_text())
    answers = ["".join(c["source"]).split(BEGIN)[1].split(END)[0] for c in solution["cells"]
               if c["cell_type"] == "code" and BEGIN in "".join(c["source"])]
    released = text(release)
    assert BEGIN not in released and "raise NotImplementedError()" in released
    for answer in answers:
        lines = [line.strip() for line in answer.splitlines() if len(line.strip()) > 12 and not line.strip().startswith("#")]
        assert lines and not any(line in released for line in lines if line not in text(student_notebook(solution)))
    checks = [c for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert checks and all(c["metadata"]["nbgrader"]["locked"] for c in checks)

    (tmp_path / "submitted" / "alice" / "ex01").mkdir(parents=True)
    shutil.copy(source, tmp_path / "submitted" / "alice" / "ex01" / CH01.name)  # a student who wrote the solutions
    graded = api.autograde("ex01", "alice", force=True, create=True)
    assert graded["success"], graded.get("error") or graded.get("log")
    with api.gradebook as gradebook:
        submission = gradebook.find_submission("ex01", "alice")
        assert submission.max_score == len(checks) and submission.score == submission.max_score

"""The instructor API of the exercises: checker results, points, and grading many submissions.

Each graded submission runs in its own process (a few seconds of start-up: torch and sympy), so
these tests grade few submissions, in one call where they can. The tampering variants are tested
in this process on the snapshot itself, which is what the grading process consults.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

import dropoutbook
import dropoutbook.exercises as ex
from dropoutbook.exercises import CheckFailed, CheckResult, Exercise, _core, ch01, grading

ROOT = Path(__file__).resolve().parents[1]
CH01 = ROOT / "exercises" / "01_inverted_dropout.ipynb"
CH01_STUDENT = ROOT / "exercises" / "student" / CH01.name


def inverted(x, p, training=True):
    """A correct inverted dropout written differently from the reference."""
    if not training:
        return x.clone()
    return torch.where(torch.rand_like(x) < p, torch.zeros_like(x), x / (1 - p))


def unscaled(x, p, training=True):
    """The typical mistake: survivors not divided by 1 - p."""
    return x * (torch.rand_like(x) >= p) if training else x.clone()


# --- results and points -----------------------------------------------------------------------

def test_a_pass_returns_a_result_with_its_points(capsys):
    result = ex.check_inverted_dropout(inverted, points=2.5)
    assert isinstance(result, CheckResult) and result
    assert (result.exercise, result.passed, result.points, result.max_points) == ("check_inverted_dropout", True, 2.5, 2.5)
    printed = capsys.readouterr().out
    assert printed == f"Correct: {result.message}\n" and result.message


def test_a_failure_raises_check_failed_carrying_the_result():
    with pytest.raises(CheckFailed, match="divide by 1 - p") as info:
        ex.check_inverted_dropout(unscaled, points=3)
    result = info.value.result
    assert isinstance(result, CheckResult) and not result
    assert (result.passed, result.points, result.max_points) == (False, 0.0, 3.0)
    assert result.message == str(info.value)


def test_every_public_checker_is_wrapped_once_in_both_namespaces():
    checks = [n for n in ex.__all__ if n.startswith("check_")]
    assert len(checks) >= 40
    for name in checks:
        fn = getattr(ex, name)
        module = next(m for m in ex._CHAPTERS if name in m.__all__)
        assert getattr(module, name) is fn, name
        assert "points" in __import__("inspect").signature(fn).parameters, name
        assert not hasattr(fn.__wrapped_checker__, "__wrapped_checker__"), name


@pytest.mark.parametrize("points, error", [(-1, ValueError), (float("nan"), ValueError), ("2", TypeError), (True, TypeError)])
def test_bad_points_are_refused(points, error):
    with pytest.raises(error, match="points"):
        ex.check_inverted_dropout(inverted, points=points)


def test_a_checker_that_neither_passes_nor_fails_is_an_error():
    quiet = _core.checker(lambda fn: None, "check_quiet")
    with pytest.raises(RuntimeError, match="without calling passed"):
        quiet(inverted)


def test_a_nested_checker_reports_through_the_outer_one(capsys):
    def outer(fn):
        ex.check_inverted_dropout(fn)
        _core.passed("outer done")

    result = _core.checker(outer, "check_outer")(inverted)
    assert result.passed and result.message == "outer done"


def test_a_result_displays_nothing_in_a_notebook():
    assert CheckResult("check_x", True, "m", 1.0, 1.0)._ipython_display_() is None


# --- the exercises of a notebook --------------------------------------------------------------

def test_exercises_from_the_chapter_1_notebook():
    exercises = ex.exercises_from_notebook(CH01)
    cells = ["".join(c["source"]) for c in json.loads(CH01.read_text())["cells"] if c["cell_type"] == "code"]
    checks = [c for c in cells if c.lstrip().startswith("check_")]
    assert len(exercises) == len(checks) >= 4
    assert [e.check for e in exercises] == [c.split("(")[0].strip() for c in checks]
    for e in exercises:
        assert any(f"def {e.answer}(" in c for c in cells), e.answer
        assert e.points == 1 and e.name == e.check


def test_exercises_from_a_notebook_read_points_and_arguments(tmp_path):
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": src}
             for src in ["x = 1", "check_inverted_dropout(a, p=0.2, points=3)", "check_inverted_dropout(b)"]]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    first, second = ex.exercises_from_notebook(path)
    assert (first.answer, first.points, dict(first.kwargs), first.name) == ("a", 3.0, {"p": 0.2}, "check_inverted_dropout")
    assert (second.answer, second.points, second.name) == ("b", 1.0, "check_inverted_dropout#2")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"check": "check_nothing", "answer": "f"}, ValueError, "check must be "),
    ({"check": "check_inverted_dropout", "answer": "not a name"}, ValueError, "identifier"),
    ({"check": "check_inverted_dropout", "answer": "f", "points": -2}, ValueError, "points"),
    ({"check": "check_inverted_dropout", "answer": "f", "kwargs": {"points": 2}}, ValueError, "points"),
])
def test_bad_exercises_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        Exercise(**kwargs)


def test_bad_grading_arguments_are_refused(tmp_path):
    one = [Exercise("check_inverted_dropout", "f")]
    (tmp_path / "a.txt").write_text("")
    with pytest.raises(ValueError, match="timeout"):
        ex.grade({"a": {"f": inverted}}, one, timeout=0)
    with pytest.raises(ValueError, match="workers"):
        ex.grade({"a": {"f": inverted}}, one, workers=0)
    with pytest.raises(ValueError, match=r"\.ipynb or \.py"):
        ex.grade({"a": tmp_path / "a.txt"}, one)
    with pytest.raises(ValueError, match="no file"):
        ex.grade({"a": tmp_path / "missing.py"}, one)
    with pytest.raises(ValueError, match="names must differ"):
        ex.grade({"a": {"f": inverted}}, one + one)
    with pytest.raises(TypeError, match="submissions"):
        ex.grade([("a", {"f": inverted})], one)


# --- grading submissions, each in its own process ---------------------------------------------

TAMPERING = '''
import torch
import dropoutbook.exercises.ch01 as ch01
ch01._survivor_scale_message = lambda ratio, p: None  # "every scale is right"

def my_inverted_dropout(x, p, training=True):
    return x * (torch.rand_like(x) >= p) if training else x.clone()
'''


def test_grading_four_submissions_gives_their_scores_and_voids_the_tampering_one(tmp_path):
    tampering = tmp_path / "tampering.py"
    tampering.write_text(TAMPERING)
    submissions = {
        "solution notebook": CH01,
        "untouched student copy": CH01_STUDENT,
        "functions": {"my_inverted_dropout": inverted, "fixed_dropout": unscaled},
        "tampering": tampering,
    }
    grades = ex.grade(submissions, CH01, timeout=300, workers=2)
    assert [g.submission for g in grades] == list(submissions)
    solution, student, functions, tamper = grades
    names = [e.name for e in ex.exercises_from_notebook(CH01)]
    assert names[0] == "check_inverted_dropout" and names[2] == "check_test_time_scaling"

    assert solution.problem is None and list(solution.scores) == names
    assert solution.score == solution.max_score == 4, [r.message for r in solution.results]

    assert student.problem is None and student.score == 0
    assert all("not written yet" in r.message for r in student.results)

    assert functions.problem is None
    assert functions.scores == dict(zip(names, [1.0, 0.0, 0.0, 0.0]))
    assert "the submission defines no" in functions.results[1].message
    assert functions.results[2].message and not functions.results[2].passed  # the unscaled "repair" fails

    assert tamper.score == 0 and "ch01._survivor_scale_message" in tamper.problem
    assert all("no points" in r.message for r in tamper.results)


RUNAWAY = '''
import os, subprocess, time, torch
with open("grandchild.pid", "w") as f:
    f.write(str(subprocess.Popen(["sleep", "600"]).pid))
with open("environment.json", "w") as f:
    f.write(__import__("json").dumps(dict(os.environ)))

def good(x, p, training=True):
    return x * (torch.rand_like(x) >= p) / (1 - p) if training else x.clone()

def runaway(x, p, training=True):
    time.sleep(3600)
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_runaway_submission_is_killed_with_its_children_and_keeps_the_checks_it_finished(tmp_path):
    """Also: the submission runs in the book's numerical environment, in its own folder."""
    runaway = tmp_path / "runaway.py"
    runaway.write_text(RUNAWAY)
    exercises = [Exercise("check_inverted_dropout", "good"),
                 Exercise("check_inverted_dropout", "runaway", label="runaway")]
    (grade,) = ex.grade({"runaway": runaway}, exercises, timeout=30)
    assert "time limit of 30 s" in grade.problem
    assert grade.scores == {"check_inverted_dropout": 1.0, "runaway": 0.0}
    assert "time limit" in grade.results[1].message
    environment = json.loads((tmp_path / "environment.json").read_text())
    assert all(environment.get(k) == v for k, v in dropoutbook.environment.BOOK_ENVIRONMENT.items())
    pid = int((tmp_path / "grandchild.pid").read_text())
    for _ in range(100):  # the killed process group disappears once the kernel has reaped it
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid), "the submission's own child process survived the time limit"


# --- tampering, seen by the snapshot -------------------------------------------------------------

@pytest.fixture(scope="module")
def snapshot():
    return grading._Snapshot(_core._ACTIVE_PATCHES)


def _rebind(target, name, value):
    """Set ``target.name = value``; return the function that undoes it (an inherited name is deleted again)."""
    missing = object()
    original = vars(target).get(name, missing)
    setattr(target, name, value)
    return lambda: delattr(target, name) if original is missing else setattr(target, name, original)


@pytest.mark.parametrize("tamper, named", [
    (lambda: _rebind(ch01, "_survivor_scale_message", lambda *a: None), "ch01._survivor_scale_message"),
    (lambda: _rebind(ch01, "passed", lambda message: None), "ch01.passed"),
    (lambda: _rebind(ch01, "CheckFailed", Exception), "ch01.CheckFailed"),
    (lambda: _rebind(_core, "passed", print), "_core.passed"),
    (lambda: _rebind(ex, "check_inverted_dropout", lambda fn, **k: None), "exercises.check_inverted_dropout"),
    (lambda: _rebind(torch, "equal", lambda a, b: False), "torch.equal"),
    (lambda: _rebind(torch.Tensor, "__ne__", lambda a, b: True), "Tensor.__ne__"),
    (lambda: _rebind(dropoutbook.derivations, "expectation", lambda *a, **k: 0), "derivations.expectation"),
])
def test_rebinding_what_a_checker_relies_on_is_seen(snapshot, tamper, named):
    assert snapshot.change() is None
    undo = tamper()
    try:
        assert named in (snapshot.change(full=False) or "")
    finally:
        undo()
    assert snapshot.change() is None


def test_new_names_that_shadow_builtins_are_seen(snapshot):
    ch01.abs = lambda v: 0
    try:
        assert "ch01.abs" in snapshot.change(full=False)
    finally:
        del ch01.abs


def test_changed_code_defaults_or_closures_are_seen(snapshot):
    fn = ch01._survivor_scale_message
    code = fn.__code__
    fn.__code__ = (lambda ratio, p: None).__code__
    try:
        assert snapshot.change(full=False) is None  # the fast check compares namespaces only
        assert "_survivor_scale_message (its code" in snapshot.change(full=True)
    finally:
        fn.__code__ = code
    assert snapshot.change() is None


def test_changed_module_level_contents_are_seen(snapshot):
    env = dropoutbook.environment.BOOK_ENVIRONMENT
    was = env["OMP_NUM_THREADS"]
    env["OMP_NUM_THREADS"] = "8"
    try:
        assert "BOOK_ENVIRONMENT (its contents)" in snapshot.change(full=False)
    finally:
        env["OMP_NUM_THREADS"] = was
    assert snapshot.change() is None


def test_a_checkers_own_patch_is_expected_but_undoing_it_is_not(snapshot):
    real = torch.nn.functional.dropout
    with _core._patched(torch.nn.functional, "dropout", _core._forbidden("F.dropout")):
        assert snapshot.change() is None
        with pytest.raises(CheckFailed, match="F.dropout, which the statement forbids"):
            torch.nn.functional.dropout(torch.ones(3), 0.5)
        torch.nn.functional.dropout = real  # a submission that puts the forbidden function back
        assert "functional.dropout" in snapshot.change()
    assert torch.nn.functional.dropout is real and snapshot.change() is None


def test_recorded_calls_see_a_computed_answer():
    import sympy as sp

    from dropoutbook import derivations

    real = derivations.expectation
    m, q = sp.Symbol("m"), sp.Symbol("q")
    with _core._recorded_calls(derivations, "expectation") as calls:
        assert derivations.expectation(m**2, {m: derivations.Bernoulli(q)}) == q
    assert len(calls) == 1 and calls[0][2] == q
    assert derivations.expectation is real


def test_a_change_made_during_a_call_stops_the_check_at_once(snapshot):
    found = []

    def verify(full=False):
        change = snapshot.change(full)
        if change:
            found.append(change)
            raise grading._Tampered(change)

    def self_restoring(x, p, training=True):  # patches a helper that would undo itself when used
        original = ch01._survivor_scale_message

        def once(*args):
            ch01._survivor_scale_message = original
            return None
        ch01._survivor_scale_message = once
        return unscaled(x, p, training)

    original = ch01._survivor_scale_message
    _core._INTEGRITY_HOOKS.append(verify)
    try:
        with pytest.raises(grading._Tampered, match="_survivor_scale_message"):
            ex.check_inverted_dropout(self_restoring)
    finally:
        _core._INTEGRITY_HOOKS.remove(verify)
        ch01._survivor_scale_message = original
    assert found and snapshot.change() is None


def test_a_correct_check_changes_nothing(snapshot):
    ex.check_inverted_dropout(inverted)
    assert snapshot.change(full=True) is None


def test_the_instructor_api_is_on_the_api_page():
    page = (ROOT / "api.md").read_text(encoding="utf-8")
    for name in ("CheckResult", "CheckFailed", "grade", "Exercise", "SubmissionGrade", "exercises_from_notebook",
                 "checker", "call_student", "passed", "make_student_copy", "make_instructor_copy"):
        assert name in ex.__all__ and f":: dropoutbook.exercises.{name}\n" in page, name
    for name in ex.__all__:
        if name.startswith("check_"):
            assert f":: dropoutbook.exercises.{name}\n" in page, f"{name} is missing from api.md"

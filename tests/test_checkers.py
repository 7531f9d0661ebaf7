"""Checker layer: every exercise checker passes the reference, fails the blank starter, and fails
typical wrong answers with a message that says what is wrong. Also the student-copy generator.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import sympy as sp
import torch

from dropoutbook import inverted_dropout, standard_dropout
from dropoutbook.exercises import (
    NAIVE_PREDICTOR_EXERCISE,
    CheckFailed,
    call_student,
    check_dropout_variance,
    check_inverted_dropout,
    check_naive_predictor_terms,
    check_test_time_scaling,
    make_student_copy,
    passed,
)
from dropoutbook.exercises.student import STARTER, student_notebook
from helpers import assert_fails, assert_passes, starter


def test_check_failed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


# --------------------------------------------------------------------------------------------
# implementations of inverted dropout: reference and typical mistakes


def ref_dropout(x, p, training=True):
    if not training or p == 0:
        return x.clone()
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep / (1 - p)


def ref_dropout_with_torch(x, p, training=True):
    return torch.nn.functional.dropout(x, p, training=training)


def no_scaling(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p).to(x.dtype)


def keep_with_p(x, p, training=True):  # drop and keep probabilities swapped
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) < p).to(x.dtype) / (1 - p)


def multiply_by_keep(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p).to(x.dtype) * (1 - p)


def divide_by_p(x, p, training=True):
    if not training:
        return x.clone()
    return x * (torch.rand_like(x) >= p).to(x.dtype) / p


def in_place(x, p, training=True):
    if not training:
        return x
    x.mul_((torch.rand_like(x) >= p).to(x.dtype) / (1 - p))
    return x


def same_mask_every_call(x, p, training=True):
    if not training:
        return x.clone()
    g = torch.Generator().manual_seed(0)
    keep = (torch.rand(x.shape, generator=g, dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1 - p)


def scales_at_test_time(x, p, training=True):
    if not training:
        return x * (1 - p)
    return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)


def random_scales(x, p, training=True):
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep * (1 + torch.rand_like(x)) if training else x.clone()


def returns_numpy(x, p, training=True):
    return ref_dropout(x, p, training).numpy()


def returns_wrong_shape(x, p, training=True):
    return ref_dropout(x, p, training)[:-1]


def crashes(x, p, training=True):
    return x @ torch.ones(3, 3)


def p_zero_not_identity(x, p, training=True):
    if p == 0:
        return torch.zeros_like(x)
    return ref_dropout(x, p, training)


@pytest.mark.parametrize("fn", [ref_dropout, ref_dropout_with_torch, inverted_dropout])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.8])
def test_check_inverted_dropout_passes_reference(capsys, fn, p):
    assert_passes(capsys, check_inverted_dropout, fn, p)


def test_check_inverted_dropout_starter_not_written_yet():
    assert_fails(check_inverted_dropout, starter, "not written yet", "NotImplementedError")


@pytest.mark.parametrize("fn, hints", [
    (no_scaling, ["divide by 1 - p", "(1-p)·x"]),
    (keep_with_p, ["probability 1 - p", "dropped with probability p"]),
    (multiply_by_keep, ["multiplied by 1 - p", "divides them by 1 - p"]),
    (divide_by_p, ["divided by p", "keep probability 1 - p"]),
    (in_place, ["changed its input x in place"]),
    (same_mask_every_call, ["dropped exactly the same units", "new random mask"]),
    (scales_at_test_time, ["training=False", "should equal the input"]),
    (random_scales, ["different factors"]),
    (returns_numpy, ["should return a torch.Tensor", "ndarray"]),
    (returns_wrong_shape, ["input's shape (200000,)"]),
    (crashes, ["raised RuntimeError"]),
    (p_zero_not_identity, ["p = 0"]),
], ids=lambda v: getattr(v, "__name__", "hints"))
def test_check_inverted_dropout_rejects_typical_mistakes(fn, hints):
    assert_fails(check_inverted_dropout, fn, *hints)


def test_check_inverted_dropout_reports_swapped_probability_with_the_actual_fraction():
    message = assert_fails(check_inverted_dropout, keep_with_p, "with p = 0.3")
    assert "70." in message  # about 70% zeros


@pytest.mark.parametrize("p", [0.0, 1.0, 0.5, -0.2, 1.3])
def test_check_inverted_dropout_rejects_unusable_p(p):
    with pytest.raises(ValueError, match=r"^p must be in \(0, 1\) and not 0.5"):
        check_inverted_dropout(ref_dropout, p)


# --------------------------------------------------------------------------------------------
# derive: Var of inverted dropout


P, H = sp.symbols("p h")  # what a student typically writes: symbols without assumptions


@pytest.mark.parametrize("answer", [
    P * H**2 / (1 - P),
    -P * H**2 / (P - 1),
    H**2 / (1 - P) - H**2,                     # E[h~²] - E[h~]², not simplified
    sp.Symbol("p", positive=True) * sp.Symbol("h", real=True) ** 2 / (1 - sp.Symbol("p", positive=True)),
])
def test_check_dropout_variance_passes_reference(capsys, answer):
    assert_passes(capsys, check_dropout_variance, lambda: answer)


def test_check_dropout_variance_passes_derived_value(capsys):
    from dropoutbook.derivations import dropout_unit_moments
    assert_passes(capsys, check_dropout_variance, lambda: dropout_unit_moments("inverted").variance)


def test_check_dropout_variance_starter_not_written_yet():
    assert_fails(check_dropout_variance, starter, "not written yet")


@pytest.mark.parametrize("answer, hint", [
    (P * (1 - P) * H**2, "standard dropout"),
    (H**2 / (1 - P), "E[h~²]"),
    ((1 - P) / P * H**2, "p is the drop probability"),
    (P * H**2 / (1 - P) ** 2, "one factor 1-p cancels"),
    (P * H**2, "missing the 1/(1-p) factor"),
    (P**2 * H**2, "at p = 0.5, h = 1 your expression gives 0.25, but Var[h~] is 1 there"),
    (P * sp.Symbol("x") ** 2 / (1 - P), "uses the symbols ['x']"),
    ("p*h**2/(1-p)", "got str"),
    (None, "got NoneType"),
    (0.5, "your expression gives 0.5"),
])
def test_check_dropout_variance_rejects_typical_mistakes(answer, hint):
    assert_fails(check_dropout_variance, lambda: answer, hint)


@pytest.mark.parametrize("answer", [sp.true, sp.Eq(P * H**2 / (1 - P), H), P * H**2 / (1 - P) > 0],
                         ids=["true", "Eq", "inequality"])
def test_check_dropout_variance_reports_non_expression_sympy_objects(answer):
    # A checker says what is wrong; it must not crash with sympy's internal TypeError.
    assert_fails(check_dropout_variance, lambda: answer, "not an equation or a truth value")


# --------------------------------------------------------------------------------------------
# find the bug: test-time scaling


def buggy_original(x, p, training=True):
    """The function of the exercise: scales by 1/(1-p) in training AND by (1-p) at test time."""
    if training:
        keep = (torch.rand_like(x) >= p).to(x.dtype)
        return x * keep / (1 - p)
    return x * (1 - p)


def fix_removes_training_scale(x, p, training=True):
    """Removes the training-time division instead (this is standard dropout)."""
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype)
    return x * (1 - p)


def fix_removes_both(x, p, training=True):
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype)
    return x.clone()


def fix_inconsistent(x, p, training=True):
    if training:
        return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)
    return 2 * x


@pytest.mark.parametrize("fn", [ref_dropout, inverted_dropout])
def test_check_test_time_scaling_passes_reference(capsys, fn):
    assert_passes(capsys, check_test_time_scaling, fn)


def test_check_test_time_scaling_starter_not_written_yet():
    assert_fails(check_test_time_scaling, starter, "not written yet")


def test_check_test_time_scaling_rejects_the_original_bug():
    assert_fails(check_test_time_scaling, buggy_original, "(1-p)·x", "the test-time scaling by 1-p must go",
                 "already divided by 1-p in training")


def test_check_test_time_scaling_rejects_removing_the_training_scale():
    # Train and test now agree ((1-p)·x both): that is standard dropout, and the checker names it.
    assert_fails(check_test_time_scaling, fix_removes_training_scale, "this is standard dropout",
                 "make the test-time output equal to x")
    assert_fails(check_test_time_scaling, standard_dropout, "this is standard dropout")


def test_check_test_time_scaling_rejects_removing_both_scales():
    assert_fails(check_test_time_scaling, fix_removes_both, "you removed the training-time scaling",
                 "remove the test-time factor instead")


def test_check_test_time_scaling_rejects_inconsistent_train_and_test():
    assert_fails(check_test_time_scaling, fix_inconsistent, "must agree in expectation")


def test_check_test_time_scaling_messages_differ():
    a = assert_fails(check_test_time_scaling, buggy_original)
    b = assert_fails(check_test_time_scaling, fix_removes_training_scale)
    c = assert_fails(check_test_time_scaling, fix_removes_both)
    assert len({a, b, c}) == 3


# --------------------------------------------------------------------------------------------
# predict: the naive predictor's error terms (stated closed forms at the exercise's numbers)


def stated_terms():
    ex = NAIVE_PREDICTOR_EXERCISE
    w, xs, p, s2 = ex["w"], ex["x"], ex["p"], ex["noise_variance"]
    wx = sum(a * b for a, b in zip(w, xs))
    sum_sq = sum((a * b) ** 2 for a, b in zip(w, xs))
    bias2 = p**2 * wx**2
    var = p * (1 - p) * sum_sq
    return {"squared_bias": bias2, "variance": var, "expected_squared_error": bias2 + var + s2}, wx, sum_sq


def test_check_naive_predictor_passes_reference(capsys):
    truth, _, _ = stated_terms()
    assert_passes(capsys, check_naive_predictor_terms, lambda: dict(truth))


def test_check_naive_predictor_accepts_numpy_floats_and_ints(capsys):
    truth, _, _ = stated_terms()
    assert_passes(capsys, check_naive_predictor_terms, lambda: {k: np.float64(v) for k, v in truth.items()})


def test_check_naive_predictor_starter_not_written_yet():
    assert_fails(check_naive_predictor_terms, starter, "not written yet")


def _with(**changes):
    truth, wx, sum_sq = stated_terms()
    answer = dict(truth)
    p = NAIVE_PREDICTOR_EXERCISE["p"]
    values = {
        "bias_keep": (1 - p) ** 2 * wx**2,
        "bias_unsquared_p": p * wx**2,
        "var_square_of_sum": p * (1 - p) * wx**2,
        "var_inverted": p / (1 - p) * sum_sq,
        "ese_no_noise": truth["squared_bias"] + truth["variance"],
    }
    for key, name in changes.items():
        answer[key] = values.get(name, name) if isinstance(name, str) else name
    return answer


@pytest.mark.parametrize("answer, hints", [
    (_with(squared_bias="bias_keep"), ["squared_bias", "square p·wᵀx, not (1-p)·wᵀx"]),
    (_with(squared_bias="bias_unsquared_p"), ["squared_bias", "squared as a whole"]),
    (_with(variance="var_square_of_sum"), ["variance", "Σ(w_i x_i)², not (Σ w_i x_i)²"]),
    (_with(variance="var_inverted"), ["variance", "does not scale by 1/(1-p)"]),
    (_with(expected_squared_error="ese_no_noise"), ["expected_squared_error", "noise σ²"]),
    (_with(variance=1.0), ["variance = 1 is not right; recompute it"]),
    (_with(variance="2.24"), ["variance should be a number, got str"]),
    (_with(squared_bias=True), ["squared_bias should be a number, got bool"]),
    ({"squared_bias": 0.16, "variance": 2.24}, ["exactly the keys"]),
    ([0.16, 2.24, 2.65], ["should be a dict"]),
], ids=["bias-keep", "bias-p", "var-square-of-sum", "var-inverted", "no-noise", "other", "str", "bool",
        "missing-key", "list"])
def test_check_naive_predictor_rejects_typical_mistakes(answer, hints):
    assert_fails(check_naive_predictor_terms, lambda: answer, *hints)


def test_naive_predictor_wrong_values_are_distinct_from_truth():
    # The mistakes above are only informative if they differ from the right numbers.
    truth, _, _ = stated_terms()
    wrong = _with(squared_bias="bias_keep", variance="var_square_of_sum", expected_squared_error="ese_no_noise")
    for key in truth:
        assert abs(wrong[key] - truth[key]) > 0.05


# --------------------------------------------------------------------------------------------
# shared helpers


def test_call_student_passes_through_results_and_arguments():
    assert call_student(lambda a, b=0: a + b, 1, b=2) == 3


def test_call_student_wraps_errors():
    with pytest.raises(CheckFailed, match="my thing should be a function, got int"):
        call_student(3, what="my thing")
    with pytest.raises(CheckFailed, match="not written yet"):
        call_student(starter)
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError: division by zero"):
        call_student(lambda: 1 / 0)
    with pytest.raises(CheckFailed, match="^inner$"):
        call_student(lambda: (_ for _ in ()).throw(CheckFailed("inner")))


def test_passed_prints_correct_line(capsys):
    assert passed("well done") is None
    assert capsys.readouterr().out == "Correct: well done\n"


# --------------------------------------------------------------------------------------------
# student copies


SOLUTION_CODE = (
    "import torch\n"
    "\n"
    "def my_dropout(x, p, training=True):\n"
    "    \"\"\"Inverted dropout.\"\"\"\n"
    "    ### BEGIN SOLUTION\n"
    "    if not training or p == 0:\n"
    "        return x.clone()\n"
    "    keep = (torch.rand_like(x) >= p).to(x.dtype)\n"
    "    return x * keep / (1 - p)\n"
    "    ### END SOLUTION\n"
)

PREDICT_CODE = (
    "def my_prediction():\n"
    "    ### BEGIN SOLUTION\n"
    "    return {'squared_bias': 0.16, 'variance': 2.24, 'expected_squared_error': 2.65}\n"
    "    ### END SOLUTION\n"
    "\n"
    "### BEGIN SOLUTION\n"
    "answer = my_prediction()\n"
    "### END SOLUTION\n"
)


def solution_nb():
    def md(text, tags=()):
        return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": text}

    def code(text, tags=(), outputs=None, count=1):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": text,
                "outputs": outputs or [{"output_type": "stream", "name": "stdout", "text": ["Correct: ...\n"]}],
                "execution_count": count}

    return {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            md("# Exercises 1"),
            md("```{exercise} Implement inverted dropout\n:label: ex-inverted\n\nWrite `my_dropout`.\n```"),
            md("```{solution-start} ex-inverted\n:class: dropdown\n```", tags=["solution"]),
            code(SOLUTION_CODE, tags=["solution"], count=1),
            md("```{solution-end}\n```", tags=["solution"]),
            code("check_inverted_dropout(my_dropout)", count=2),
            md("````{exercise}\nPredict the terms.\n```python\nw = (1, -2)\n```\n````"),
            # source given as a list of lines, as Jupyter stores it
            code(PREDICT_CODE.splitlines(keepends=True), tags=["solution", "keep-me"], count=3),
            code("check_naive_predictor_terms(my_prediction)", count=4),
        ],
    }


def _text(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_student_notebook_structure():
    nb = solution_nb()
    original = copy.deepcopy(nb)
    st = student_notebook(nb)
    assert nb == original  # the solution notebook is not modified
    kinds = [c["cell_type"] for c in st["cells"]]
    assert kinds == ["markdown", "markdown", "code", "code", "markdown", "code", "code"]  # 2 markdown cells dropped
    texts = [_text(c) for c in st["cells"]]
    assert not any("solution-start" in t or "solution-end" in t for t in texts)
    assert st["metadata"] == nb["metadata"] and st["nbformat"] == 4


def test_student_notebook_replaces_solutions_with_starter_at_indentation():
    st = student_notebook(solution_nb())
    code = _text(st["cells"][2])
    assert code.splitlines() == [
        "import torch",
        "",
        "def my_dropout(x, p, training=True):",
        "    \"\"\"Inverted dropout.\"\"\"",
        "    " + STARTER,
    ]
    predict = _text(st["cells"][5])
    assert predict.splitlines() == ["def my_prediction():", "    " + STARTER, "", STARTER]
    for text in (code, predict):
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        assert "rand_like" not in text and "2.24" not in text
        compile(text, "<student>", "exec")  # still valid Python


def test_student_notebook_tags_outputs_and_counts():
    st = student_notebook(solution_nb())
    for cell in st["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None
            assert "solution" not in cell["metadata"]["tags"]
    assert st["cells"][5]["metadata"]["tags"] == ["keep-me"]
    assert isinstance(st["cells"][0]["source"], list)  # nbformat-style list of lines


def test_student_notebook_exercise_directives_become_headings():
    st = student_notebook(solution_nb())
    first = _text(st["cells"][1])
    assert first.splitlines() == ["**Exercise: Implement inverted dropout**", "", "", "Write `my_dropout`."]
    assert ":label:" not in first and "```" not in first
    second = _text(st["cells"][4]).splitlines()
    assert second[0] == "**Exercise**"
    assert "Predict the terms." in second
    assert second[-3:] == ["```python", "w = (1, -2)", "```"]  # the inner code fence is kept
    assert "````" not in _text(st["cells"][4])
    assert _text(st["cells"][0]) == "# Exercises 1"


def test_student_code_fails_its_check_with_not_written_yet():
    import dropoutbook.exercises as ex

    st = student_notebook(solution_nb())
    namespace = {"check_inverted_dropout": ex.check_inverted_dropout,
                 "check_naive_predictor_terms": ex.check_naive_predictor_terms}
    exec(_text(st["cells"][2]), namespace)
    with pytest.raises(CheckFailed, match="not written yet"):
        exec(_text(st["cells"][3]), namespace)  # the check cell as the student runs it
    with pytest.raises(CheckFailed, match="not written yet"):
        check_inverted_dropout(namespace["my_dropout"])
    # the predict cell's top-level starter raises as soon as the cell runs
    with pytest.raises(NotImplementedError, match="Exercise: write your solution here"):
        exec(_text(st["cells"][5]), namespace)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_naive_predictor_terms(namespace["my_prediction"])


def test_solution_code_passes_its_check(capsys):
    namespace = {}
    nb = solution_nb()
    exec(_text(nb["cells"][3]), namespace)
    exec("".join(nb["cells"][7]["source"]), namespace)
    assert check_inverted_dropout(namespace["my_dropout"]) is None
    assert check_naive_predictor_terms(namespace["my_prediction"]) is None
    assert capsys.readouterr().out.count("Correct:") == 2


@pytest.mark.parametrize("code, match", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "### BEGIN SOLUTION without ### END SOLUTION"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "### END SOLUTION without ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "nested ### BEGIN SOLUTION"),
    ("x = 1\n", "must mark its answer with ### BEGIN SOLUTION / ### END SOLUTION"),
])
def test_student_notebook_marker_errors(code, match):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "intro"},
        {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": code, "outputs": [], "execution_count": 1},
    ]}
    with pytest.raises(ValueError, match=match) as info:
        student_notebook(nb, where="ex01.ipynb")
    assert str(info.value).startswith("ex01.ipynb, cell 1: ")


def test_student_notebook_keeps_untagged_markdown_and_code():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "Some *text*\n\n$x^2$"},
        {"cell_type": "code", "metadata": {}, "source": "y = 2\nprint(y)", "outputs": [{"x": 1}], "execution_count": 7},
    ]}
    st = student_notebook(nb)
    assert _text(st["cells"][0]) == "Some *text*\n\n$x^2$"
    assert _text(st["cells"][1]) == "y = 2\nprint(y)"
    assert st["cells"][1]["outputs"] == [] and st["cells"][1]["execution_count"] is None


def test_make_student_copy_writes_file(tmp_path):
    src = tmp_path / "01_inverted_dropout.ipynb"
    src.write_text(json.dumps(solution_nb()), encoding="utf-8")
    before = src.read_text(encoding="utf-8")
    dst = tmp_path / "student" / "01_inverted_dropout.ipynb"
    result = make_student_copy(src, dst)
    assert result == dst and dst.exists()
    assert src.read_text(encoding="utf-8") == before
    written = json.loads(dst.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(student_notebook(solution_nb())))
    assert "BEGIN SOLUTION" not in dst.read_text(encoding="utf-8")


def test_make_student_copy_error_names_the_file(tmp_path):
    nb = solution_nb()
    nb["cells"][3]["source"] = "x = 1\n"  # tagged solution, no markers
    src = tmp_path / "bad.ipynb"
    src.write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.ipynb, cell 3: a cell tagged 'solution' must mark"):
        make_student_copy(src, tmp_path / "out.ipynb")
    assert not (tmp_path / "out.ipynb").exists()


def test_checkers_leave_the_callers_random_state_unchanged():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_inverted_dropout(ref_dropout)
    check_test_time_scaling(ref_dropout)
    assert torch.equal(torch.rand(3), expected)


def test_student_copy_turns_myst_labels_and_roles_into_plain_markdown():
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
        "(ex-label)=\n", "# Title\n", "See {ref}`the chapter <ch-x>`, {doc}`../chapters/01`, {numref}`fig-a`.\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = "".join(student_notebook(nb)["cells"][0]["source"])
    assert text == "# Title\nSee the chapter, ../chapters/01, fig-a."

"""Assertion helpers shared by the test modules (import with ``from helpers import ...``).

pytest puts this directory on ``sys.path`` (the tests are not a package), so every test module
can use them; keep them here rather than copying them into a new test file.
"""

from __future__ import annotations

import pytest
import sympy as sp

from dropoutbook.exercises import CheckFailed
from dropoutbook.montecarlo import Estimate, agrees, z_score

#: Monte-Carlo tolerance of every test, in standard errors (DEVELOPERS.md: at least 5).
Z = 5.0


def same(a, b) -> bool:
    """Symbolic equality, the comparison every derivation test uses: ``simplify(a - b) == 0``."""
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


def check_agrees_and_rejects(est: Estimate, truth: float, wrong: dict[str, float]) -> None:
    """Assert that ``est`` agrees with ``truth`` within Z standard errors, and that the test has
    power: every plausible wrong formula in ``wrong`` lies more than Z standard errors away."""
    z = z_score(est, truth)
    assert agrees(est, truth, z=Z), f"estimate {est} is {z:.2f} standard errors from the exact value {truth:.6g}"
    assert est.stderr > 0
    for name, value in wrong.items():
        zw = z_score(est, value)
        assert not agrees(est, value, z=Z), (
            f"the check has no power: the wrong formula '{name}' = {value:.6g} lies only {zw:.2f} "
            f"standard errors from the estimate {est}"
        )


def starter(*args, **kwargs):
    """What a student copy's blank exercise does: the starter every checker must reject."""
    raise NotImplementedError("Exercise: write your solution here")


def assert_passes(capsys, check, fn, *args):
    """The checker accepts ``fn``, returns a passed result, and prints exactly one line starting with "Correct:"."""
    result = check(fn, *args)
    assert result.passed and result.points == result.max_points, result
    out = capsys.readouterr().out
    assert out.startswith("Correct:"), out
    assert out.count("\n") == 1  # one line


def assert_fails(check, fn, *hints, args=()):
    """The checker rejects ``fn`` with CheckFailed, and its message contains every hint."""
    with pytest.raises(CheckFailed) as info:
        check(fn, *args)
    message = str(info.value)
    for hint in hints:
        assert hint in message, f"expected the hint {hint!r} in the message {message!r}"
    return message

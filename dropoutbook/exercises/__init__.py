"""Checkers for the book's exercises, and the tool that makes student copies.

Every checker takes the student's function, prints one "Correct: ..." line when the answer is
right, and otherwise raises :class:`CheckFailed` whose message says what is wrong.
"""

from ._core import CheckFailed, call_student, passed
from .ch01 import (
    NAIVE_PREDICTOR_EXERCISE,
    check_dropout_variance,
    check_inverted_dropout,
    check_naive_predictor_terms,
    check_test_time_scaling,
)
from .student import make_student_copy

__all__ = [
    "CheckFailed", "call_student", "passed", "make_student_copy",
    "check_inverted_dropout", "check_dropout_variance", "check_test_time_scaling",
    "check_naive_predictor_terms", "NAIVE_PREDICTOR_EXERCISE",
]

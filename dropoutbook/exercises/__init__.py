"""Checkers for the book's exercises, the grader, and the tool that makes student copies.

Every checker takes the student's function, prints one "Correct: ..." line and returns a
:class:`CheckResult` when the answer is right, and otherwise raises :class:`CheckFailed`, whose
message says what is wrong and whose ``result`` is the failed :class:`CheckResult`. Every checker
takes ``points=`` (what the exercise is worth, 1 by default). :func:`grade` runs many submissions,
each in a fresh process with a time limit; :func:`make_student_copy` and
:func:`make_instructor_copy` write the student copy and the nbgrader version of an exercise
notebook (``python -m dropoutbook.exercises``). See the page "Using the exercises in a course".
"""

from ._core import CheckFailed, CheckResult, call_student, checker, passed
from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12, ch13, ch14, ch15

_CHAPTERS = (ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12, ch13, ch14, ch15)

# Every public checker returns a CheckResult and takes points=: wrap it once, in its chapter module
# too, so that dropoutbook.exercises.check_x and dropoutbook.exercises.chNN.check_x are one function.
for _module in _CHAPTERS:
    for _name in _module.__all__:
        if _name.startswith("check_"):
            setattr(_module, _name, checker(getattr(_module, _name), _name))
    globals().update({_name: getattr(_module, _name) for _name in _module.__all__})
del _module, _name

from .grading import Exercise, SubmissionGrade, exercises_from_notebook, grade  # noqa: E402
from .student import make_instructor_copy, make_student_copy  # noqa: E402

__all__ = [
    "CheckFailed", "CheckResult", "call_student", "passed", "checker",
    "grade", "Exercise", "SubmissionGrade", "exercises_from_notebook",
    "make_student_copy", "make_instructor_copy",
    *(name for module in _CHAPTERS for name in module.__all__),
]

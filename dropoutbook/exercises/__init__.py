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

from . import ch02
from .ch02 import *  # noqa: F403
from . import ch03
from .ch03 import *  # noqa: F403
from . import ch04
from .ch04 import *  # noqa: F403
from . import ch05
from .ch05 import *  # noqa: F403
from . import ch06
from .ch06 import *  # noqa: F403
from . import ch07
from .ch07 import *  # noqa: F403
from . import ch08
from .ch08 import *  # noqa: F403
from . import ch09
from .ch09 import *  # noqa: F403
from . import ch10
from .ch10 import *  # noqa: F403
from . import ch11
from .ch11 import *  # noqa: F403
from . import ch12
from .ch12 import *  # noqa: F403

__all__ = [
    "CheckFailed", "call_student", "passed", "make_student_copy",
    "check_inverted_dropout", "check_dropout_variance", "check_test_time_scaling",
    "check_naive_predictor_terms", "NAIVE_PREDICTOR_EXERCISE",
    *ch02.__all__,
    *ch03.__all__,
    *ch04.__all__,
    *ch05.__all__,
    *ch06.__all__,
    *ch07.__all__,
    *ch08.__all__,
    *ch09.__all__,
    *ch10.__all__,
    *ch11.__all__,
    *ch12.__all__,
]

"""What every checker shares: the failure type, calling the student's code, and the success line."""

from __future__ import annotations

__all__ = ["CheckFailed", "call_student", "passed"]


class CheckFailed(AssertionError):
    """Raised by a checker when an answer is wrong; the message says what is wrong and how to look for it."""


def call_student(fn, *args, what: str = "your function", **kwargs):
    """Call the student's ``fn``; turn a missing or crashing solution into a :class:`CheckFailed`."""
    if not callable(fn):
        raise CheckFailed(f"{what} should be a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise CheckFailed(
            f"{what} is not written yet (it raised NotImplementedError): replace the "
            "`raise NotImplementedError` line with your solution"
        ) from exc
    except CheckFailed:
        raise
    except Exception as exc:  # the student's code crashed: report it, do not hide it
        raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc


def passed(message: str) -> None:
    """Print the success line ``Correct: <message>``."""
    print(f"Correct: {message}")

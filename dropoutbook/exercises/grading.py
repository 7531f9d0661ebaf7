"""Grade many submissions of the book's exercises, each in a fresh process with a time limit.

A submission is a student's notebook (``.ipynb``: its code cells are run in order, except the
check cells), a Python file (``.py``), or a mapping from names to the student's functions. For
each submission :func:`grade` starts a new Python process that

1. imports the checkers and takes a snapshot of the library (every attribute of the modules of
   ``dropoutbook``, torch, sympy, numpy and the standard modules the checkers use, the attributes
   of their classes, the code, defaults and closures of their functions, module-level containers
   and tensors);
2. runs the submission's code, then verifies the snapshot;
3. runs each :class:`Exercise`'s checker on the submission's function, and verifies the snapshot
   again after every call into the submission's code and after every check.

A submission that changed anything (say, rebound ``dropoutbook.exercises.ch01._survivor_scale_message``,
``passed``, ``CheckFailed`` or ``torch.equal``) gets no points, and its grade names the attribute.
A process that runs past the time limit is killed with its process group; the checks it finished
keep their points. The snapshot guards against a submission that rebinds or edits the library, not
against code written to attack the grader itself: run untrusted code in an operating-system
sandbox too (a container without network, as nbgrader advises).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import types
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .._validation import check_choice, check_nonnegative, check_positive, check_positive_int
from ._core import CheckFailed, CheckResult

__all__ = ["Exercise", "SubmissionGrade", "grade", "exercises_from_notebook"]

_CHECK_CELL = re.compile(r"\s*check_\w+\(")  # a cell that calls a checker (the book's check cells)


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One graded exercise: which checker runs on which of the submission's functions (chapter 1 onwards).

    Args:
        check: the name of a checker in :mod:`dropoutbook.exercises`, e.g. ``"check_inverted_dropout"``.
        answer: the name of the submission's function that the checker is given, e.g.
            ``"my_inverted_dropout"``.
        points: what the exercise is worth (default 1).
        kwargs: further keyword arguments of the checker, e.g. the inputs of a "predict" exercise.
        label: the exercise's name in the grades (default: the checker's name).

    Examples:
        >>> Exercise("check_naive_predictor_terms", "predicted_terms", points=2, kwargs={"p": 0.3}).name
        'check_naive_predictor_terms'
    """

    check: str
    answer: str
    points: float = 1.0
    kwargs: Mapping = dataclasses.field(default_factory=dict)
    label: str | None = None

    def __post_init__(self):
        from . import __all__ as public

        check_choice(self.check, "check", {n for n in public if n.startswith("check_")})
        if not isinstance(self.answer, str) or not self.answer.isidentifier():
            raise ValueError(f"answer must be the name of a function (an identifier), got {self.answer!r}")
        object.__setattr__(self, "points", check_nonnegative(self.points, "points"))
        object.__setattr__(self, "kwargs", types.MappingProxyType(dict(self.kwargs)))
        if "points" in self.kwargs:
            raise ValueError("give the points as Exercise(points=...), not in kwargs")

    @property
    def name(self) -> str:
        """The exercise's name in the grades (``label``, or the checker's name)."""
        return self.label or self.check


@dataclasses.dataclass(frozen=True)
class SubmissionGrade:
    """The grade of one submission: one :class:`CheckResult` per exercise (chapter 1 onwards).

    Attributes:
        submission: the submission's name (its key in the mapping given to :func:`grade`).
        results: one :class:`~dropoutbook.exercises.CheckResult` per exercise, in the order of the
            exercises; their ``exercise`` is the exercise's :attr:`Exercise.name`.
        problem: what stopped the grading early or voided it: the time limit, a change to the
            library (the submission then gets no points), a process that died; None when all went
            through.
    """

    submission: str
    results: tuple[CheckResult, ...]
    problem: str | None = None

    @property
    def scores(self) -> dict[str, float]:
        """Points per exercise."""
        return {r.exercise: r.points for r in self.results}

    @property
    def score(self) -> float:
        """Total points."""
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> float:
        """Total points available."""
        return sum(r.max_points for r in self.results)


def exercises_from_notebook(path) -> list[Exercise]:
    """The exercises of a solution notebook: one per check cell ``check_x(answer, ...)`` (chapter 1 onwards).

    A check cell's keyword arguments become the exercise's ``kwargs`` (they must be literals), and
    ``points=`` its points (1 by default). A checker that appears twice is labelled ``check_x#2``.

    Args:
        path: a solution notebook, e.g. ``"exercises/01_inverted_dropout.ipynb"``.

    Returns:
        One :class:`Exercise` per checker call, in the order of the notebook.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    exercises: list[Exercise] = []
    for cell in nb.get("cells", []):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") != "code" or not _CHECK_CELL.match(source):
            continue
        for statement in ast.parse(source).body:
            call = statement.value if isinstance(statement, ast.Expr) else None
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id.startswith("check_")
                    and call.args and isinstance(call.args[0], ast.Name)):
                raise ValueError(f"{path}: a check cell must call check_x(answer_function, ...); got {source!r}")
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            points = kwargs.pop("points", 1)
            seen = sum(e.check == call.func.id for e in exercises)
            label = f"{call.func.id}#{seen + 1}" if seen else None
            exercises.append(Exercise(call.func.id, call.args[0].id, points, kwargs, label))
    if not exercises:
        raise ValueError(f"{path}: no check cells (cells that call check_x(answer_function))")
    return exercises


def grade(submissions: Mapping, exercises, *, timeout: float = 60.0, workers: int = 1) -> list[SubmissionGrade]:
    """Grade each submission on the exercises, each in a fresh process with a time limit (chapter 1 onwards).

    Args:
        submissions: a mapping from each submission's name to a notebook or Python file (a path),
            or to a mapping from function names to the student's functions (sent to the grading
            process with ``cloudpickle``).
        exercises: a sequence of :class:`Exercise`, or a path to a solution notebook, which stands
            for its :func:`exercises_from_notebook`.
        timeout: seconds one submission may take in all (default 60): the grading process's start-up
            (importing torch and sympy takes a few seconds), the submission's code and all its checks.
        workers: how many submissions are graded at the same time (default 1).

    Returns:
        One :class:`SubmissionGrade` per submission, in the order of ``submissions``.

    Examples:
        >>> import dropoutbook.exercises as ex
        >>> grades = ex.grade({"alice": "exercises/01_inverted_dropout.ipynb"},
        ...                   "exercises/01_inverted_dropout.ipynb")  # doctest: +SKIP
        >>> grades[0].scores  # doctest: +SKIP
        {'check_inverted_dropout': 1.0, 'check_dropout_variance': 1.0, ...}
    """
    if isinstance(exercises, (str, os.PathLike)):
        exercises = exercises_from_notebook(exercises)
    exercises = list(exercises)
    for i, e in enumerate(exercises):
        if not isinstance(e, Exercise):
            raise TypeError(f"exercises[{i}] must be an Exercise, got {type(e).__name__}")
    names = [e.name for e in exercises]
    if len(set(names)) != len(names):
        raise ValueError(f"exercise names must differ (give a label to a checker used twice), got {names}")
    if not exercises:
        raise ValueError("exercises must not be empty")
    if not isinstance(submissions, Mapping) or not submissions:
        raise TypeError("submissions must be a non-empty mapping from names to paths or to mappings of functions")
    timeout = check_positive(timeout, "timeout")
    workers = check_positive_int(workers, "workers")
    jobs = [(str(name), _payload(name, sub)) for name, sub in submissions.items()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: _grade_one(job[0], job[1], exercises, timeout), jobs))


def _payload(name, submission) -> dict:
    if isinstance(submission, (str, os.PathLike)):
        path = Path(submission).resolve()
        if path.suffix not in (".ipynb", ".py"):
            raise ValueError(f"submission {name!r} must be a .ipynb or .py file, got {path.name}")
        if not path.is_file():
            raise ValueError(f"submission {name!r}: no file {path}")
        return {"kind": path.suffix[1:], "path": str(path)}
    if isinstance(submission, Mapping):
        import cloudpickle

        modules = {getattr(f, "__module__", None) for f in submission.values()}
        by_value = [sys.modules[m] for m in modules
                    if m in sys.modules and m != "__main__" and not m.startswith(("dropoutbook", "torch", "sympy", "numpy"))]
        for module in by_value:  # a test module or a script is not importable in the grading process
            cloudpickle.register_pickle_by_value(module)
        try:
            data = cloudpickle.dumps({str(k): v for k, v in submission.items()})
        finally:
            for module in by_value:
                cloudpickle.unregister_pickle_by_value(module)
        return {"kind": "functions", "data": data}
    raise TypeError(f"submission {name!r} must be a path or a mapping of functions, got {type(submission).__name__}")


def _grade_one(name: str, payload: dict, exercises: list[Exercise], timeout: float) -> SubmissionGrade:
    import dropoutbook
    from ..environment import BOOK_ENVIRONMENT

    with tempfile.TemporaryDirectory(prefix="dropoutbook-grade-") as tmp:
        tmp = Path(tmp)
        job, results = tmp / "job.pickle", tmp / "results.jsonl"
        fields = [{"check": e.check, "answer": e.answer, "points": e.points, "kwargs": dict(e.kwargs), "label": e.label}
                  for e in exercises]
        job.write_bytes(pickle.dumps({"payload": payload, "exercises": fields}))
        env = {**os.environ, **BOOK_ENVIRONMENT}
        root = str(Path(dropoutbook.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        cwd = Path(payload["path"]).parent if "path" in payload else tmp
        # Output goes to files, not pipes: a killed process's children cannot hold the grader up.
        with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(job), str(results)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=env,
                                    start_new_session=True)
            try:
                code = proc.wait(timeout=timeout)
                problem = None if code == 0 else f"the grading process exited with code {code}"
            except subprocess.TimeoutExpired:
                problem = f"the time limit of {timeout:g} s was exceeded"
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the process and anything it started
                proc.wait()
        lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
        if problem and "exited" in problem:
            tail = (tmp / "stderr").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            problem += f" ({tail[0]})" if tail else ""
    done: dict[str, CheckResult] = {}
    void = False
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        if "problem" in record:
            problem, void = record["problem"], record.get("void", False)
        else:
            done[record["exercise"]] = CheckResult(**record)
    results_ = []
    for e in exercises:
        result = done.get(e.name)
        if result is None or void:
            reason = problem or "not graded"
            result = CheckResult(e.name, False, f"no points: {reason}", 0.0, e.points)
        results_.append(result)
    return SubmissionGrade(name, tuple(results_), problem)


# ----------------------------------------------------------------------------------------------
# The grading process.

class _Tampered(BaseException):
    """The submission changed the library (a BaseException, so that no `except Exception` hides it)."""


_WATCHED = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.random", "torch.functional",
            "torch.linalg", "torch.special", "torch.fft", "torch.autograd", "torch.distributions", "sympy",
            "numpy", "numpy.random", "math", "cmath", "builtins", "functools", "contextlib", "contextvars",
            "operator", "itertools", "copy", "json", "numbers", "dataclasses", "inspect", "random", "re")
_OWN = ("dropoutbook", "torch", "sympy", "numpy")


class _Snapshot:
    """What the checkers rely on, taken before the submission runs, and its verification."""

    def __init__(self, active_patches: list, grader: tuple = ()):
        self.active = active_patches
        names = sorted(n for n in sys.modules if n in _WATCHED or n.startswith(("dropoutbook", "torch.nn.modules")))
        owners: dict[int, tuple[str, object]] = {id(sys.modules[n]): (n, sys.modules[n]) for n in names}
        for name, module in list(owners.values()):
            for value in list(vars(module).values()):
                if isinstance(value, type):
                    for cls in value.__mro__:
                        if (cls.__module__ or "").startswith(_OWN) and id(cls) not in owners:
                            owners[id(cls)] = (f"{cls.__module__}.{cls.__qualname__}", cls)
        self.namespaces = [(label, obj, vars(obj), dict(vars(obj))) for label, obj in owners.values()]
        self.functions: list = []   # (label, function, its state)
        self.containers: list = []  # (label, container or tensor, its state)
        # The checkers' record of their patches changes during a check; the grader's own hook is its state.
        seen = {id(active_patches), *map(id, grader)}
        for label, obj, space, _ in self.namespaces:
            own = label.startswith("dropoutbook")
            for key, value in space.items():
                self._watch(f"{label}.{key}", value, seen, own)

    def _watch(self, label, value, seen, own: bool) -> None:
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            for part in (value.fget, value.fset, value.fdel):
                self._watch(label, part, seen, own)
            return
        if id(value) in seen:
            return
        wrapped = getattr(value, "__wrapped__", None) if callable(value) else None
        if isinstance(value, types.FunctionType):
            seen.add(id(value))
            self.functions.append((label, value, _function_state(value)))
            for item in _function_state(value)[3]:
                if item is not _MISSING:
                    self._watch(f"{label} (closure)", item, seen, own)
        elif own and isinstance(value, (list, dict, set, tuple, types.MappingProxyType)):
            seen.add(id(value))
            self.containers.append((label, value, _container_state(value)))
            for item in (value.values() if isinstance(value, (dict, types.MappingProxyType)) else value):
                self._watch(f"{label}[...]", item, seen, own)
        elif own and _is_tensor(value):
            seen.add(id(value))
            self.containers.append((label, value, _container_state(value)))
        if wrapped is not None:
            self._watch(f"{label}.__wrapped__", wrapped, seen, own)

    def change(self, full: bool = True) -> str | None:
        """The first attribute that differs from the snapshot (active checker patches expected), or None.

        ``full=False`` compares the namespaces and containers only (fast enough to run after every
        call into the submission's code); ``full=True`` also the code, defaults and closures of functions.
        """
        expected = {(id(target), name): value for target, name, value in self.active}
        for label, obj, space, before in self.namespaces:
            patched = {name: value for (target, name), value in expected.items() if target == id(obj)}
            if not patched and _equal(space, before):
                continue
            counters = isinstance(obj, type) and not label.startswith("dropoutbook")
            for key in before.keys() | space.keys():
                now, was = space.get(key, _MISSING), before.get(key, _MISSING)
                want = patched.get(key, was)
                if now is want:
                    continue
                if was is _MISSING and isinstance(now, types.ModuleType):
                    continue  # a new submodule attribute (a lazy import)
                if counters and type(was) is int and type(now) is int:
                    continue  # a counter of a class of torch or sympy (sympy's Dummy._count, hooks' next_id)
                return f"{label}.{key}"
        for label, value, state in self.containers:
            if not _same_container(value, state):
                return f"{label} (its contents)"
        if full:
            for label, fn, state in self.functions:
                if not _equal(_function_state(fn), state):
                    return f"{label} (its code, defaults or closure)"
        return None


def _equal(a, b) -> bool:
    """``a == b`` with the identity shortcut of C containers; False where an element's comparison fails."""
    try:
        return bool(a == b)
    except Exception:  # e.g. a tensor compared with another tensor
        return False


_MISSING = object()


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and type(value) is torch.Tensor


def _function_state(fn) -> tuple:
    closure = []
    for cell in fn.__closure__ or ():
        try:
            closure.append(cell.cell_contents)
        except ValueError:  # an empty cell
            closure.append(_MISSING)
    kwdefaults = tuple((fn.__kwdefaults__ or {}).items())
    return (fn.__code__, tuple(fn.__defaults__ or ()), kwdefaults, tuple(closure))


def _container_state(value):
    if _is_tensor(value):
        return (value._version, value.data_ptr())
    if isinstance(value, (dict, types.MappingProxyType)):
        return dict(value)
    return tuple(value)


def _same_container(value, state) -> bool:
    if _is_tensor(value):
        return (value._version, value.data_ptr()) == state
    if isinstance(value, (dict, types.MappingProxyType)):  # a cache may grow; no entry may change
        return all(value.get(k, _MISSING) is v for k, v in state.items())
    now = tuple(value)
    return len(now) == len(state) and all(a is b for a, b in zip(now, state))


def _run_submission(payload: dict, notes: list) -> dict:
    # A notebook's display() is IPython's; outside IPython the submission's cells get a silent one.
    namespace = {"__name__": "__main__", "__builtins__": __builtins__, "display": lambda *args, **kwargs: None}
    if payload["kind"] == "functions":
        import cloudpickle

        namespace.update(cloudpickle.loads(payload["data"]))
        return namespace
    path = Path(payload["path"])
    if payload["kind"] == "py":
        cells = [path.read_text(encoding="utf-8")]
    else:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = ["".join(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        cells = [c for c in cells if not _CHECK_CELL.match(c)]
    for i, source in enumerate(cells):
        # Jupyter's magics and shell escapes are not Python: skip those lines
        source = "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        try:
            exec(compile(source, f"<{path.name}, code cell {i}>", "exec"), namespace)
        except Exception as exc:  # a broken cell costs the exercises that need it, not the others
            notes.append(f"code cell {i} raised {type(exc).__name__}: {exc}")
    return namespace


def _worker(job_path: str, results_path: str) -> int:
    import dropoutbook.exercises as ex
    from . import _core

    job = pickle.loads(Path(job_path).read_bytes())
    exercises = [Exercise(**e) for e in job["exercises"]]
    out = open(results_path, "w", encoding="utf-8", buffering=1)
    dumps, asdict, Result, Failed = json.dumps, dataclasses.asdict, CheckResult, CheckFailed
    checks = {e.check: getattr(ex, e.check) for e in exercises}  # taken before the submission runs
    found: list[str] = []

    def verify(full: bool = False) -> None:
        if not found:
            change = snapshot.change(full)
            if change:
                found.append(change)
        if found:
            raise _Tampered(found[0])

    _core._INTEGRITY_HOOKS.append(verify)
    snapshot = _Snapshot(_core._ACTIVE_PATCHES, grader=(verify,))

    def stop(what: str) -> int:
        out.write(dumps({"problem": f"the submission changed {what}; it gets no points", "void": True}) + "\n")
        out.close()
        return 0

    notes: list[str] = []
    try:
        namespace = _run_submission(job["payload"], notes)
        verify(full=True)
    except _Tampered as exc:
        return stop(str(exc))
    except BaseException as exc:  # SystemExit, a failed unpickling: nothing to grade
        out.write(dumps({"problem": f"the submission's code raised {type(exc).__name__}: {exc}"}) + "\n")
        return 0
    for e in exercises:
        fn = namespace.get(e.answer, _MISSING)
        try:
            if fn is _MISSING:
                note = f"; {notes[0]}" if notes else ""
                result = Result(e.name, False, f"the submission defines no {e.answer}{note}", 0.0, e.points)
            else:
                try:
                    result = checks[e.check](fn, points=e.points, **e.kwargs)
                except Failed as exc:
                    result = exc.result if type(exc.result) is Result else Result(e.name, False, str(exc), 0.0, e.points)
                if type(result) is not Result:
                    result = Result(e.name, False, f"the checker returned {type(result).__name__}", 0.0, e.points)
                result = Result(e.name, result.passed is True, str(result.message),
                                e.points if result.passed is True else 0.0, e.points)
            verify(full=True)
        except _Tampered as exc:
            return stop(str(exc))
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            with contextlib.suppress(_Tampered):
                verify(full=True)
            if found:
                return stop(found[0])
            result = Result(e.name, False, f"grading raised {type(exc).__name__}: {exc}", 0.0, e.points)
        out.write(dumps(asdict(result)) + "\n")
    out.close()
    return 0


_WORKER = "import sys; from dropoutbook.exercises.grading import _worker; raise SystemExit(_worker(*sys.argv[1:3]))"

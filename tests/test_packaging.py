"""The package as an instructor installs it: a wheel that declares a torch range, ships its
licenses and type marker, and installs next to a torch that is already there.

The wheel is built from a copy of the sources (the work tree stays clean) without build
isolation and without an index, installed with ``--no-deps`` into an empty virtual environment
that sees the book's own torch (and NumPy, sympy, matplotlib) and nothing of the book's
``dropoutbook``, and imported there. A dry run of a plain ``pip install`` of the wheel shows that
pip's resolver is satisfied by that torch: nothing else would be installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "LICENSE-text.md", "dropoutbook"]


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    # without the caller's PYTHONPATH, so that the new environment sees only what it holds
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, timeout=240, env=env,
                          **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", src, "-w", out)
    (built,) = out.glob("dropoutbook-*.whl")
    return built


def _metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return zf.read(name).decode()


def _torch_requirement(metadata: str) -> str:
    (line,) = [line for line in metadata.splitlines() if re.match(r"Requires-Dist: torch(?![\w.-])", line)]
    return line.removeprefix("Requires-Dist: ")


def test_wheel_declares_a_torch_range_licenses_and_the_type_marker(wheel):
    metadata = _metadata(wheel)
    requirement = _torch_requirement(metadata)
    assert "==" not in requirement, "the exact pin belongs in constraints.txt, not in the package"
    assert re.fullmatch(r"torch<3,>=\d+\.\d+", requirement), requirement
    assert "License-Expression: MIT" in metadata
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "dropoutbook/py.typed" in names
    assert {n.rsplit("/", 1)[-1] for n in names if "/licenses/" in n} == {"LICENSE", "LICENSE-text.md"}
    assert {"dropoutbook/derivations/__init__.py", "dropoutbook/exercises/__init__.py"} <= names
    constraints = (REPO / "constraints.txt").read_text().splitlines()
    assert f"torch=={torch.__version__.split('+')[0]}" in constraints  # the book's own environment keeps the pin


def test_the_lower_bound_of_the_range_is_the_torch_these_tests_run_on(wheel):
    """The range's lower bound is a release the tests have run on: the book's torch. Lowering it
    needs a run of this file next to that older torch first."""
    lower = re.search(r">=(\d+\.\d+)", _torch_requirement(_metadata(wheel))).group(1)
    running = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    assert lower == running, f"the declared lower bound torch>={lower} is not the tested torch {torch.__version__}"


def _empty_venv_next_to_the_books_torch(root: Path) -> Path:
    """An empty virtual environment (no pip, no packages) whose ``sys.path`` ends with the book's
    installed packages, the book's own ``dropoutbook`` (an editable install) left out."""
    _run(sys.executable, "-m", "venv", "--without-pip", root / "venv")
    python = root / "venv" / "bin" / "python"
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    shared = root / "book-packages"
    shared.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("dropoutbook", "__editable__")):
            (shared / entry.name).symlink_to(entry)
    (purelib / "book-packages.pth").write_text(f"{shared}\n")
    return python


def test_wheel_installs_with_no_deps_next_to_the_books_torch_and_imports(wheel, tmp_path):
    python = _empty_venv_next_to_the_books_torch(tmp_path)
    pip = [sys.executable, "-m", "pip", "--python", python]
    # a plain install would take nothing but the wheel: the torch there satisfies the range
    report = json.loads(_run(*pip, "install", "--dry-run", "--no-index", "--quiet", "--report", "-", wheel).stdout)
    assert [item["metadata"]["name"] for item in report["install"]] == ["dropoutbook"]
    _run(*pip, "install", "--no-deps", "--no-index", "-q", wheel)
    check = (
        "import importlib.metadata as md, pathlib, torch, dropoutbook as db\n"
        "g = torch.Generator().manual_seed(0)\n"
        "y = db.inverted_dropout(torch.ones(1000), 0.5, generator=g)\n"
        "print(db.__file__); print(torch.__version__); print(md.version('dropoutbook'))\n"
        "print(sorted(set(y.tolist()))); print((pathlib.Path(db.__file__).parent / 'py.typed').exists())\n"
    )
    lines = _run(python, "-c", check, cwd=tmp_path).stdout.splitlines()
    assert Path(lines[0]).is_relative_to(tmp_path / "venv"), f"imported {lines[0]}, not the installed wheel"
    assert lines[1] == torch.__version__
    assert lines[2] == "0.1.0"
    assert lines[3] == "[0.0, 2.0]"
    assert lines[4] == "True"

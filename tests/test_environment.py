"""The book's numerical environment: defined once, installed as a kernel, named by every notebook.

A notebook executed outside the environment (another kernel, or the right kernel without its
variables) is caught twice: its first cell prints what differs, which nbval compares with the
committed "inside" line, and the committed first-cell output is checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dropoutbook import environment
from dropoutbook.environment import BOOK_ENVIRONMENT, KERNEL_NAME

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted((ROOT / "chapters").glob("[0-9]*.ipynb")) + sorted((ROOT / "exercises").glob("[0-9]*.ipynb"))
NOTEBOOKS = EXECUTED + sorted((ROOT / "exercises" / "student").glob("[0-9]*.ipynb"))  # student copies: no outputs
FIX = "run `make execute` (it uses the kernel 'dropoutbook', see dropoutbook/environment.py)"


def inside_line() -> str:
    return str(environment.EnvironmentReport("x86_64", "AVX2", 1, []))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def first_code_cell(nb):
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_names_the_book_kernel(path):
    spec = load(path)["metadata"].get("kernelspec", {})
    assert spec.get("name") == KERNEL_NAME, (
        f"{path.name} names the kernel {spec.get('name')!r}: set its kernel to '{KERNEL_NAME}' "
        f"({environment.KERNEL_DISPLAY_NAME}) and {FIX}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_reports_the_environment(path):
    assert "db.environment.report()" in "".join(first_code_cell(load(path))["source"]), (
        f"{path.name}: its first code cell must call db.environment.report()")


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_outputs_were_written_inside_the_environment(path):
    cell = first_code_cell(load(path))
    printed = "".join("".join(o.get("text", "")) for o in cell["outputs"] if o["output_type"] == "stream")
    assert printed.strip() == inside_line(), (
        f"{path.name} was executed outside the book's numerical environment; its first cell printed\n"
        f"  {printed.strip()!r}\nTo fix: {FIX}.")


def test_installed_kernel_is_the_book_environment():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        pytest.fail(f"the kernel '{KERNEL_NAME}' is not installed: run `make install` "
                    "or `python -m dropoutbook install-kernel`")
    assert spec.env == BOOK_ENVIRONMENT, "the installed kernel is stale: run `python -m dropoutbook install-kernel`"
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve(), (
        f"the kernel '{KERNEL_NAME}' runs {spec.argv[0]}, not this interpreter: "
        "run `python -m dropoutbook install-kernel`")


def test_the_book_kernel_runs_inside_the_environment():
    """Start the installed kernel, as nbval and `jupyter execute` do, and ask it."""
    from jupyter_client.manager import start_new_kernel

    printed = []
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME)
    try:
        code = "import dropoutbook as db; r = db.environment.describe(); print(r.inside, r.differences)"
        kc.execute_interactive(code, timeout=120, output_hook=lambda msg: printed.append(msg))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(m["content"].get("text", "") for m in printed if m["msg_type"] == "stream")
    assert text.strip() == "True []", f"the kernel '{KERNEL_NAME}' runs outside the book's environment: {text}"


def run_describe(env: dict[str, str]) -> list[str]:
    """`environment.describe()` in a new process started with `env` (torch reads the variables when
    it starts). The module is loaded on its own, not through the package: it needs only torch, and
    the package's other imports (sympy among them) would triple the cost of each process."""
    code = ("import importlib.util as u; s = u.spec_from_file_location('environment', "
            f"{environment.__file__!r}); m = u.module_from_spec(s); import sys; sys.modules['environment'] = m; "
            "s.loader.exec_module(m); "
            "print('\\n'.join(m.describe().differences))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def test_a_process_with_the_book_variables_is_inside():
    env = {k: v for k, v in os.environ.items() if k not in BOOK_ENVIRONMENT} | BOOK_ENVIRONMENT
    assert run_describe(env) == []


@pytest.mark.parametrize("name, value, expected", [
    ("ATEN_CPU_CAPABILITY", "default", "ATen runs DEFAULT kernels, not AVX2"),
    ("MKL_CBWR", "AVX2,STRICT", "MKL_CBWR is 'AVX2,STRICT', not 'COMPATIBLE'"),
    ("OPENBLAS_CORETYPE", None, "OPENBLAS_CORETYPE is unset, not 'Haswell'"),
    ("ONEDNN_MAX_CPU_ISA", None, "ONEDNN_MAX_CPU_ISA is unset, not 'AVX2'"),
    ("OMP_NUM_THREADS", "2", "OMP_NUM_THREADS is '2', not '1'"),
])
def test_each_setting_outside_the_environment_is_named(name, value, expected):
    env = {k: v for k, v in os.environ.items() if k not in BOOK_ENVIRONMENT} | BOOK_ENVIRONMENT
    if value is None:
        del env[name]
    else:
        env[name] = value
    assert run_describe(env) == [expected]


def test_more_threads_are_named():
    env = {k: v for k, v in os.environ.items() if k not in BOOK_ENVIRONMENT} | BOOK_ENVIRONMENT
    env |= {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert "torch uses 2 threads, not 1" in run_describe(env)


def test_the_outside_message_names_the_fix():
    text = str(environment.describe({}))
    assert text.startswith("Outside the book's numerical environment")
    assert KERNEL_NAME in text and "make execute" in text and "install-kernel" in text


def test_kernel_spec_carries_the_environment():
    spec = environment.kernel_spec("/opt/python")
    assert spec["argv"][:3] == ["/opt/python", "-m", "ipykernel_launcher"]
    assert spec["env"] == BOOK_ENVIRONMENT and spec["env"] is not BOOK_ENVIRONMENT
    assert BOOK_ENVIRONMENT["ATEN_CPU_CAPABILITY"] == "avx2" and BOOK_ENVIRONMENT["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("bad", [None, "", 3])
def test_kernel_spec_rejects_a_bad_interpreter(bad):
    if bad is None:
        assert environment.kernel_spec(None)["argv"][0] == sys.executable
        return
    with pytest.raises(TypeError, match="python"):
        environment.kernel_spec(bad)


def test_install_kernel_writes_the_spec_under_a_prefix(tmp_path):
    where = Path(environment.install_kernel(prefix=str(tmp_path)))
    assert where == tmp_path / "share" / "jupyter" / "kernels" / KERNEL_NAME
    assert json.loads((where / "kernel.json").read_text())["env"] == BOOK_ENVIRONMENT
    with pytest.raises(ValueError, match="user"):
        environment.install_kernel(user=True, prefix=str(tmp_path))
    with pytest.raises(TypeError, match="user"):
        environment.install_kernel(user="yes")
    with pytest.raises(TypeError, match="environ"):
        environment.describe(["ATEN_CPU_CAPABILITY"])

"""The book's numerical environment: where its printed outputs are reproduced bit for bit.

PyTorch (ATen), MKL (matrix products, linear algebra), oneDNN (convolutions), NumPy (elementwise
math) and OpenBLAS (NumPy's matrix products) choose their CPU kernels by instruction set, and MKL
also by processor, when they start. Kernels for different instruction sets round differently in the
last bit, and training amplifies those bits into other printed digits. The book's outputs are
therefore written and checked with ATen, oneDNN, NumPy and OpenBLAS pinned to AVX2, which every
x86-64 CPU of the last ten years has, with MKL on its vendor-neutral code path (``COMPATIBLE``: the
same results on Intel and AMD processors of any generation; its AVX2 path was seen to round
differently on two Intel processors), and with one intra-op thread (the order of a sum then never
depends on how it is split between threads).

This module is the one place where that environment is defined. It is used by

* the Jupyter kernel ``dropoutbook`` ("Python 3 (Dropout, Verified)"), which carries the
  variables in its ``env`` and which every notebook of the book names in its metadata, so that
  ``make execute`` (``jupyter execute``), ``make test`` (nbval) and a reader's JupyterLab all start
  it;
* the first code cell of every notebook, which calls :func:`report`: inside the environment it
  prints one line that nbval compares; outside it, it says what differs and how to run the
  notebook inside it.

See the book's page "Running the notebooks".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BOOK_ENVIRONMENT", "KERNEL_NAME", "KERNEL_DISPLAY_NAME", "EnvironmentReport", "describe",
           "report", "kernel_spec", "install_kernel"]

#: Environment variables of the book's kernel. They must be set before torch is imported,
#: which is why they live in the kernel spec and not in a notebook cell.
BOOK_ENVIRONMENT: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",   # PyTorch's own vectorized kernels
    "MKL_CBWR": "COMPATIBLE",        # MKL conditional numerical reproducibility: the vendor-neutral path
    "ONEDNN_MAX_CPU_ISA": "AVX2",    # oneDNN (convolutions, some matrix products)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's AVX-512 exp, log, ...
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (NumPy, SciPy): its AVX2 kernels
    "OMP_NUM_THREADS": "1",          # one intra-op thread: sums are split the same way everywhere
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",           # set and dict-of-str iteration order
}
KERNEL_NAME = "dropoutbook"
KERNEL_DISPLAY_NAME = "Python 3 (Dropout, Verified)"
_ATEN_EXPECTED = "AVX2"  # what torch.backends.cpu.get_cpu_capability() reports inside


@dataclass(frozen=True)
class EnvironmentReport:
    """What the running process uses, compared with :data:`BOOK_ENVIRONMENT` (page "Running the notebooks").

    Attributes
    ----------
    machine : str
        ``platform.machine()``, e.g. ``"x86_64"`` or ``"arm64"``.
    aten_capability : str
        The instruction set of PyTorch's CPU kernels in this process.
    threads : int
        ``torch.get_num_threads()``.
    differences : list of str
        One sentence per setting that is not the book's; empty inside the environment.
    """

    machine: str
    aten_capability: str
    threads: int
    differences: list[str] = field(default_factory=list)

    @property
    def inside(self) -> bool:
        """True when every setting is the book's."""
        return not self.differences

    def __str__(self) -> str:
        if self.inside:
            return ("Numerical environment: the book's (x86-64; ATen, oneDNN, NumPy and OpenBLAS kernels "
                    "AVX2, MKL vendor-neutral; 1 thread). Outputs below are reproduced bit for bit.")
        return ("Outside the book's numerical environment: " + "; ".join(self.differences) + ". "
                "Derivations and Monte Carlo checks agree everywhere, but the last digits of trained "
                f"models may differ from the book's. To reproduce them, run this notebook with the kernel "
                f"'{KERNEL_DISPLAY_NAME}' (name '{KERNEL_NAME}'): `make execute` or `make test` in the "
                "book's repository, or choose it in JupyterLab after "
                "`python -m dropoutbook install-kernel`.")


def describe(environ: dict[str, str] | None = None) -> EnvironmentReport:
    """Compare the running process with the book's numerical environment (page "Running the notebooks").

    Parameters
    ----------
    environ : dict, optional
        The environment variables to compare; default ``os.environ``. The instruction set and the
        thread count are always read from the running torch.

    Returns
    -------
    EnvironmentReport

    Examples
    --------
    >>> r = describe({})
    >>> r.inside
    False
    >>> any("MKL_CBWR" in d for d in r.differences)
    True
    """
    import torch

    if environ is not None and not isinstance(environ, dict):
        raise TypeError(f"environ must be a dict of str to str or None, got {type(environ).__name__}")
    environ = dict(os.environ if environ is None else environ)
    machine = platform.machine()
    capability = torch.backends.cpu.get_cpu_capability()
    threads = torch.get_num_threads()
    differences = []
    if machine.lower() not in ("x86_64", "amd64"):
        differences.append(f"the CPU is {machine}, not x86-64")
    if capability != _ATEN_EXPECTED:
        differences.append(f"ATen runs {capability} kernels, not {_ATEN_EXPECTED}")
    for name, value in BOOK_ENVIRONMENT.items():
        if name == "ATEN_CPU_CAPABILITY":
            continue  # measured directly above
        if environ.get(name) != value:
            now = "unset" if name not in environ else f"{environ[name]!r}"
            differences.append(f"{name} is {now}, not {value!r}")
    if threads != 1:
        differences.append(f"torch uses {threads} threads, not 1")
    return EnvironmentReport(machine, capability, threads, differences)


def report() -> None:
    """Print whether this process runs in the book's numerical environment.

    Every notebook of the book calls it in its first code cell. Inside the environment it prints
    one fixed line, which nbval compares; outside it, it names what differs and how to run the
    notebook in the environment, so that a notebook run or checked elsewhere fails with that
    message (page "Running the notebooks"). :func:`describe` returns the same comparison as an object.
    """
    print(describe())


def kernel_spec(python: str | None = None) -> dict:
    """The Jupyter kernel spec (``kernel.json``) of the book's kernel (page "Running the notebooks").

    Parameters
    ----------
    python : str, optional
        The interpreter the kernel runs; default the running one (``sys.executable``).

    Examples
    --------
    >>> spec = kernel_spec("/usr/bin/python3")
    >>> spec["env"]["ATEN_CPU_CAPABILITY"], spec["argv"][0]
    ('avx2', '/usr/bin/python3')
    """
    python = sys.executable if python is None else python
    if not isinstance(python, str) or not python:
        raise TypeError(f"python must be the path of an interpreter (a non-empty str), got {python!r}")
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
        "env": dict(BOOK_ENVIRONMENT),
        "metadata": {"debugger": True},
    }


def install_kernel(*, user: bool = False, prefix: str | None = None) -> str:
    """Install the book's kernel for the running interpreter and return where (page "Running the notebooks").

    Parameters
    ----------
    user : bool
        Install for the current user (``~/.local/share/jupyter``) instead of this environment.
    prefix : str, optional
        Install under this prefix (``PREFIX/share/jupyter/kernels``); default ``sys.prefix``, the
        virtual environment, which is where ``make install`` puts it.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    from ._validation import check_bool

    user = check_bool(user, "user")
    if user and prefix is not None:
        raise ValueError("give either user=True or a prefix, not both")
    if prefix is None and not user:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / KERNEL_NAME
        folder.mkdir()
        (folder / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n", encoding="utf-8")
        return KernelSpecManager().install_kernel_spec(str(folder), KERNEL_NAME, user=user, prefix=prefix)


def main(argv: list[str] | None = None) -> int:
    """``python -m dropoutbook install-kernel [--user | --prefix P]`` or ``python -m dropoutbook check``."""
    parser = argparse.ArgumentParser(prog="python -m dropoutbook",
                                     description="The book's numerical environment and its Jupyter kernel.")
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install-kernel", help=f"install the kernel '{KERNEL_NAME}' for this interpreter")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user")
    where.add_argument("--prefix", help="under PREFIX/share/jupyter (default: this environment, sys.prefix)")
    sub.add_parser("check", help="say whether this process runs in the book's environment (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.command == "install-kernel":
        print(f"installed the kernel '{KERNEL_NAME}' in {install_kernel(user=args.user, prefix=args.prefix)}")
        return 0
    result = describe()
    print(result)
    return 0 if result.inside else 1

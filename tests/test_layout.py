"""The package's layers: ``bench.core`` is the torch-free vocabulary every process can import
cheaply, and ``bench/`` keeps a handful of top-level modules beside its subpackages."""

import subprocess
import sys

from conftest import REPO

CORE = ("axes", "backbones", "errors", "paths", "registry", "spec", "tasks", "textsafe")


def test_importing_bench_core_loads_neither_torch_nor_mlflow():
    script = ("import sys, importlib; "
              + "; ".join(f"importlib.import_module('bench.core.{m}')" for m in CORE)
              + "; print(sorted(m for m in ('torch', 'mlflow', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bench_has_at_most_ten_top_level_modules():
    modules = sorted(p.name for p in (REPO / "bench").glob("*.py"))
    assert modules == ["__init__.py", "api.py", "check.py", "plugins.py"]


def test_every_subpackage_says_what_it_owns():
    for package in sorted(p for p in (REPO / "bench").iterdir() if (p / "__init__.py").is_file()):
        text = (package / "__init__.py").read_text()
        assert text.startswith('"""'), package.name

"""A non-editable install (a wheel) carries the built-in methods (they list and load from
``bench/methods`` with the same sources as in a checkout; no top-level ``methods`` package is
installed) and the leaderboard's templates and static files (it renders a reports folder)."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import REPO

from bench import plugins


def _wheel_venv(tmp_path: Path) -> Path:
    """A fresh venv with this checkout's wheel and, by a .pth, this environment's dependencies."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(REPO)], check=True, capture_output=True)
    (wheel,) = dist.glob("xprune_bench-*.whl")
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    # torch & co. from this environment; bench only from the wheel (this .pth does not run
    # the editable install's own .pth hook, which lives in a directory it merely adds).
    (site / "_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    return env_dir


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> Path:
    return _wheel_venv(tmp_path_factory.mktemp("wheel"))


def test_a_wheel_install_lists_every_builtin_method(wheel_env, tmp_path):
    env_dir = wheel_env
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    script = ("import bench, importlib.util; from bench import plugins; "
              "cat = plugins.catalogue(); print(bench.__file__); "
              "print(sorted((n, cat.get(n).source) for n in cat.methods)); "
              "print(importlib.util.find_spec('methods'))")
    out = subprocess.run([str(env_dir / "bin" / "python"), "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                              "XPRUNE_META_CACHE": str(tmp_path / "meta.json")})
    assert out.returncode == 0, out.stderr
    location, listed, top_level = out.stdout.strip().splitlines()
    assert location.startswith(str(site))
    checkout = plugins.catalogue()  # this process: the editable install, methods/ by path
    builtins = sorted((n, checkout.get(n).source) for n in checkout.builtins())
    assert len(builtins) >= 13 and ("lrp-epsilon", "methods/lrp.py") in builtins
    assert eval(listed) == builtins
    assert top_level == "None"


def test_a_wheel_install_renders_the_leaderboard(wheel_env, tmp_path):
    reports = tmp_path / "reports" / "breastmnist" / "smallcnn"
    for method in ("random", "magnitude"):  # two published methods' records
        shutil.copytree(REPO / "reports" / "breastmnist" / "smallcnn" / method, reports / method)
    site = tmp_path / "site"
    out = subprocess.run([str(wheel_env / "bin" / "python"), "-m", "bench.cli", "leaderboard",
                          "--reports", str(tmp_path / "reports"), "--out", str(site)],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "XPRUNE_META_CACHE": str(tmp_path / "m.json"),
                              "MPLCONFIGDIR": str(tmp_path / "mpl")})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rendered" in out.stdout
    assert (site / "index.html").is_file() and (site / "static" / "style.css").is_file()
    assert "smallcnn" in (site / "index.html").read_text()

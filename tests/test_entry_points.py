"""A third-party plugin package installed with pip is discovered through the entry point,
listed with its distribution name and version, and named on every record it produces."""

import subprocess
import sys

import pytest
from conftest import REPO, xprune

from bench.results import records

EXAMPLE = REPO / "examples" / "xprune-example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
                   check=True, capture_output=True, env={"PIP_CONFIG_FILE": "/dev/null",
                                                        "PATH": "/usr/bin:/bin"})
    return {"PYTHONPATH": str(target)}


def test_listed_with_distribution_and_version(workdir, installed):
    result = xprune("list", "methods", cwd=workdir, env={**installed, "COLUMNS": "250"})
    assert result.returncode == 0
    line = next(link for link in result.stdout.splitlines() if "example-l2" in link)
    assert "entry-point:xprune-example-plugin==0.1.0:example-l2" in line


def test_passes_check_and_records_its_source(workdir, installed):
    assert xprune("check", "example-l2", cwd=workdir, env=installed).returncode == 0
    run = xprune("run", "--preset", "synthetic", "--methods", "example-l2", "--granularities",
                 "channel", "--workers", "0", cwd=workdir, env=installed)
    assert run.returncode == 0, run.stderr
    (record,) = records.iter_records(workdir / "runs/synthetic/records")
    assert record["method"]["source"] == "entry-point:xprune-example-plugin==0.1.0:example-l2"
    assert record["status"] == "ok"

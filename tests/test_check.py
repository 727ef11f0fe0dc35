"""`xprune check`: the built-ins pass; five broken fixtures each fail with their own message."""

import pytest
from conftest import BROKEN_PLUGINS

from bench import plugins
from bench.check import check


@pytest.mark.parametrize("name", plugins.catalogue().methods.names())
def test_every_builtin_passes(name):
    results = check(name, budget=60)
    failed = [f"{r.check}: {r.message}" for r in results if not r.ok]
    assert not failed


@pytest.mark.parametrize("fixture, failing_check, message", [
    ("raises.py", "channel: contract", "score() raised ValueError: deliberate failure"),
    ("nan.py", "channel: contract", "scores contain NaN or infinity"),
    ("shape.py", "channel: contract", "expected shape (16,), got (15,)"),
    ("nondeterministic.py", "channel: deterministic", "two runs with seed 0 differ at site '0'"),
    ("slow.py", "channel: budget", "still running after 2 s (budget 1 s): stopped"),
])
def test_broken_fixture_fails_with_its_own_message(fixture, failing_check, message):
    results = check(str(BROKEN_PLUGINS / fixture), budget=1)
    failed = [r for r in results if not r.ok]
    assert [r.check for r in failed] == [failing_check]
    assert message in failed[0].message


def test_cli_exit_codes(workdir, cli):
    assert cli("check", "magnitude")[0] == 0
    code, out, _ = cli("check", str(BROKEN_PLUGINS / "nan.py"))
    assert code == 1 and "FAIL" in out


def test_metadata_problems_are_reported(tmp_path):
    plugin = tmp_path / "incomplete.py"
    plugin.write_text(
        "from bench.api import Method\n"
        "class Incomplete(Method):\n"
        "    name = 'incomplete'\n"
        "    granularities = ('channel', 'neuron')\n"
        "    def score(self, model, sites, batch):\n"
        "        return {}\n")
    results = check(str(plugin))
    assert results[0].check == "metadata" and not results[0].ok
    assert "family is empty" in results[0].message
    assert "granularities ('channel', 'neuron')" in results[0].message

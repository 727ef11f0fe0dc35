"""Plugin discovery without importing plugins: the metadata cache, its freshness, and the
backbone names read from source (each checked against the imported truth)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from bench import plugins

PROBE = ("import sys; from bench import plugins; c = plugins.declarations(); "
         "print('torch' in sys.modules, ' '.join(f'{n}={c.get(n).version}' for n in c.methods))")


def _probe(tmp_path: Path, **env: str) -> tuple[bool, list[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={
                                **os.environ, "XPRUNE_META_CACHE": str(tmp_path / "meta.json"),
                                **env})
    assert result.returncode == 0, result.stderr
    imported, names = result.stdout.split(" ", 1)
    return imported == "True", names.split()


def test_metadata_matches_the_imported_plugins():
    """What metadata processes declare is what importing the plugins here gives, plus the
    digest of each file (read by the engine itself)."""
    import dataclasses
    import hashlib

    imported = plugins.catalogue()
    cached = plugins.declarations()
    assert list(cached.methods) == list(imported.methods)
    for name in imported.methods:
        label = cached.get(name).label
        file = plugins.BUILTIN_DIR / Path(label.source).name
        assert label.source_sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
        assert dataclasses.replace(label, source_sha256=None) == imported.get(name).label


def test_a_fresh_cache_lists_methods_without_importing_torch(tmp_path: Path):
    """Even a cold cache is filled by metadata processes: this process never imports torch
    (nor any plugin)."""
    first, names = _probe(tmp_path)
    second, again = _probe(tmp_path)
    assert (first, second) == (False, False)
    assert again == names and "magnitude=1" in names


def test_an_edited_plugin_file_is_read_again(tmp_path: Path):
    plugin = tmp_path / "mine.py"
    body = ("from bench.api import Method\nclass Mine(Method):\n    name = 'mine'\n"
            "    family = 'x'\n    description = 'd'\n    reference = 'r'\n    version = '{v}'\n"
            "    def score(self, model, sites, batch):\n        return {{}}\n")
    plugin.write_text(body.format(v="1"))
    assert "mine=1" in _probe(tmp_path, XPRUNE_PLUGIN_PATH=str(plugin))[1]
    plugin.write_text(body.format(v="22"))
    imported, names = _probe(tmp_path, XPRUNE_PLUGIN_PATH=str(plugin))
    assert not imported and "mine=22" in names


def test_backbone_names_read_from_source_match_the_registry():
    from bench.compute.models import BACKBONES
    from bench.core import backbones

    module = sys.modules.pop("bench.compute.models")  # force the source-reading path
    try:
        assert backbones.names() == list(BACKBONES)
    finally:
        sys.modules["bench.compute.models"] = module


def test_a_method_label_is_parsed_from_its_text_form_and_written_back_unchanged():
    """The metadata cache and the metadata process's pipe carry the text form; a label read
    from it is typed (tuples, None for any architecture, a bool) and writes the same text."""
    from bench.core.method import MethodLabel

    text = {"name": "lrp-x", "family": "lrp", "description": "d", "reference": "r",
            "version": "2", "source": "methods/lrp.py", "granularities": "channel,weight",
            "architectures": "cnn", "zero_effect": "no", "source_sha256": "ab"}
    label = MethodLabel.from_dict(text)
    assert (label.granularities, label.architectures, label.zero_effect) == (
        ("channel", "weight"), ("cnn",), False)
    assert label.to_dict() == text
    assert MethodLabel.from_dict({**text, "architectures": "any"}).architectures is None
    assert label.record_block() == {k: v for k, v in text.items()
                                    if k not in ("granularities", "zero_effect")}

"""Backbone names without importing torch: read from ``bench/compute/models.py``'s source (its
``@BACKBONES.register("name")`` decorators), registered in a :class:`Registry`.

``bench.compute.models`` builds the backbones (and imports torch); planning, listing and shell
completion only need their names.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from bench.core.registry import Registry

MODELS = Path(__file__).resolve().parent.parent / "compute" / "models.py"


def names() -> list[str]:
    """The registered backbones, sorted (``bench.compute.models.BACKBONES`` itself once imported)."""
    if "bench.compute.models" in sys.modules:
        return list(sys.modules["bench.compute.models"].BACKBONES)
    tree = ast.parse(MODELS.read_text())
    return sorted(d.args[0].value for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                  for d in node.decorator_list
                  if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                  and d.func.attr == "register" and d.args and isinstance(d.args[0], ast.Constant))


def registry() -> Registry[str]:
    """The backbone names as a registry (for its messages and wildcards)."""
    found: Registry[str] = Registry("backbone")
    for name in names():
        found.add(name, name)
    return found

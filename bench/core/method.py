"""A method's declarations as one typed value, read without importing the plugin.

``MethodLabel`` is what listing, planning, scoring, records and verify know of a plugin: its
name, version and source, what it scores (granularities, architectures) and its free text.
It crosses the metadata process's pipe and the plugin metadata cache as its text form
(:meth:`MethodLabel.to_dict`: every value a string, lists comma-joined, ``architectures``
"any" for None), which is parsed here and nowhere else; a record's ``method`` block is
:meth:`MethodLabel.record_block` of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

# The declarations a record's ``method`` block carries (schema: ``name`` .. ``source`` are
# required), in the order the text form lists them.
TEXT_FIELDS = ("name", "family", "description", "reference", "version", "source")


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


@dataclass(frozen=True)
class MethodLabel:
    """A plugin's declarations: ``architectures`` None = any; ``zero_effect``: the soundness
    check's zero-effect test applies (the method reads data and is effect-based);
    ``source_sha256`` None = not read (an imported class), "" = no file to digest."""

    name: str
    family: str
    description: str
    reference: str
    version: str
    source: str
    granularities: tuple[str, ...]
    architectures: tuple[str, ...] | None = None
    zero_effect: bool = True
    source_sha256: str | None = None

    @classmethod
    def from_class(cls, plugin: Any, source: str) -> "MethodLabel":
        """The declarations of a loaded ``bench.api.Method`` subclass found at ``source``."""
        archs = getattr(plugin, "architectures", None)
        return cls(plugin.name, plugin.family, plugin.description, plugin.reference,
                   str(plugin.version), source, tuple(plugin.granularities),
                   None if archs is None else tuple(archs),
                   bool(getattr(plugin, "needs_data", True))
                   and bool(getattr(plugin, "effect_based", True)))

    @classmethod
    def from_dict(cls, meta: Mapping[str, str]) -> "MethodLabel":
        """The text form (:meth:`to_dict`) parsed back."""
        archs = meta.get("architectures", "any")
        return cls(*(meta[k] for k in TEXT_FIELDS), _split(meta["granularities"]),
                   None if archs == "any" else _split(archs),
                   meta.get("zero_effect", "yes") == "yes", meta.get("source_sha256"))

    def to_dict(self) -> dict[str, str]:
        """The text form: what the metadata cache stores and ``xprune list methods`` prints."""
        text = {k: getattr(self, k) for k in TEXT_FIELDS}
        text |= {"granularities": ",".join(self.granularities),
                 "architectures": "any" if self.architectures is None
                 else ",".join(self.architectures),
                 "zero_effect": "yes" if self.zero_effect else "no"}
        if self.source_sha256 is not None:
            text["source_sha256"] = self.source_sha256
        return text

    def record_block(self) -> dict[str, str]:
        """The declarations a record's ``method`` block states (not what it scores at, which
        the cell says, nor how soundness is checked)."""
        text = self.to_dict()
        del text["granularities"], text["zero_effect"]
        return text

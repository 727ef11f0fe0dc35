"""The matrix's axis values as types, parsed once at the spec boundary.

Every type here is a ``str`` (``enum.StrEnum`` members, or :class:`Recovery`, a ``str``
subclass), so a value compares, hashes, formats, serialises and even prints with ``repr``
as its text: canonical JSON, cell hashes, labels, records, MLflow parameters and messages are
those of the plain strings. The record schema's enums (``bench.results.records.CELL_FIELDS``) are
built from these types.
"""

from __future__ import annotations

import enum
import re
from typing import Any, TypeVar

from bench.core.errors import SpecError

A = TypeVar("A", bound="Axis")


class Text(enum.StrEnum):
    """A closed set of ``str`` values that also ``repr`` as their text (messages quote
    values with ``!r``: ``'head'``, never ``<Granularity.HEAD: 'head'>``)."""

    def __repr__(self) -> str:
        return repr(self.value)


class Axis(Text):
    """A closed set of axis values; :meth:`parse` refuses others with a one-line SpecError."""

    @classmethod
    def parse(cls: type[A], value: Any) -> A:
        """The member whose text is ``value`` (a member is returned as is)."""
        try:
            return cls(value)
        except ValueError:
            raise SpecError(f"unknown {cls.__name__.lower()} {value!r} "
                            f"(known: {', '.join(cls)})") from None


class Granularity(Axis):
    """What a unit is: an output channel / neuron, a single weight, or an attention head."""

    CHANNEL = "channel"
    WEIGHT = "weight"
    HEAD = "head"


class Scope(Axis):
    """How units are ranked: within each layer, or all layers together (L1-normalised)."""

    LAYER = "layer"
    GLOBAL = "global"


class TaskType(Text):
    """A dataset's task, as MedMNIST's ``INFO`` names it."""

    MULTI_CLASS = "multi-class"
    BINARY = "binary-class"
    MULTI_LABEL = "multi-label, binary-class"
    ORDINAL = "ordinal-regression"


class RecoveryKind(Text):
    """What happens after pruning: nothing, BatchNorm re-calibration, or fine-tuning."""

    NONE = "none"
    BNRECAL = "bnrecal"
    FINETUNE = "finetune"


# The text of a recovery: a kind, and for fine-tuning its epochs (K >= 1). Also the pattern
# of ``cell.recovery`` in the record schema.
RECOVERY_PATTERN = (f"^({'|'.join(k for k in RecoveryKind if k is not RecoveryKind.FINETUNE)}"
                    f"|{RecoveryKind.FINETUNE}:[1-9][0-9]*)$")
_RECOVERY = re.compile(RECOVERY_PATTERN)


class Recovery(str):
    """A parsed recovery, ``none`` | ``bnrecal`` | ``finetune:K``: an immutable ``str`` whose
    text is the canonical form, with its :attr:`kind` and :attr:`epochs`."""

    __slots__ = ()

    def __new__(cls, text: Any) -> Recovery:
        if isinstance(text, Recovery):
            return text
        if not isinstance(text, str) or not _RECOVERY.match(text):
            raise SpecError(f"unknown recovery {text!r} (none, bnrecal or finetune:K)")
        return super().__new__(cls, text)

    @property
    def kind(self) -> RecoveryKind:
        """The strategy without its parameter."""
        return RecoveryKind(self.partition(":")[0])

    @property
    def epochs(self) -> int:
        """Fine-tuning epochs (0 for ``none`` and ``bnrecal``)."""
        return int(self.partition(":")[2] or 0)

    def __repr__(self) -> str:
        return repr(str(self))


def plain(value: Any) -> Any:
    """``value`` with every axis type turned back into a plain ``str`` (for YAML, which
    refuses ``str`` subclasses), tuples into lists, recursively."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value

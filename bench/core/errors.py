"""The error hierarchy: every user-facing failure is an XPruneError with a one-line message."""

from __future__ import annotations


class XPruneError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits non-zero, no traceback."""


class SpecError(XPruneError):
    """A matrix spec, preset or command-line value is invalid."""


class UnknownNameError(SpecError):
    """A registry lookup failed (dataset, backbone, method, preset)."""


class DataError(XPruneError):
    """A dataset file is missing, unreadable, corrupt or fails its md5 check."""


class PluginError(XPruneError):
    """A method plugin failed to load, raised, or broke the scoring contract."""


class RecordError(XPruneError):
    """A result record is malformed, from an unknown schema, or conflicts with another."""


def one_line(exc: BaseException, typed: bool | None = None) -> str:
    """An exception as one line: the first line of its message, after its type name.

    ``typed`` None names the type unless the exception is an :class:`XPruneError` (whose
    messages are written for users); True / False always / never name it. An empty message
    gives the type name alone.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if typed is None:
        typed = not isinstance(exc, XPruneError)
    name = type(exc).__name__
    if not first:
        return name
    return f"{name}: {first}" if typed else first

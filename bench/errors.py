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

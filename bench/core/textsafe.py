"""Neutralising text that comes from outside (plugins, records, specs) before it reaches a
terminal or a page: control characters and bidirectional overrides become visible escapes,
rich markup is escaped, and free text is clipped to a stated size."""

from __future__ import annotations

import re

# C0 and C1 controls (tab and newline kept only where a caller allows them), DEL, and the
# Unicode bidirectional embeddings, overrides and isolates (the "Trojan Source" characters).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")

# The most characters a record's free-text field may hold (a method's description, an error).
TEXT_MAX = 20_000


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutral(text: object, newlines: bool = True) -> str:
    """``text`` with control and bidi-override characters shown as ``\\x1b`` / ``\\u202e``
    (tab and newline kept when ``newlines``)."""
    return (_UNSAFE if newlines else _UNSAFE_LINE).sub(_escape, str(text))


def terminal(text: object, newlines: bool = False) -> str:
    """Text from outside, safe to print with rich: neutralised and markup-escaped."""
    from rich.markup import escape

    return escape(neutral(text, newlines))


def clip(text: str, limit: int = TEXT_MAX) -> str:
    """At most ``limit`` characters: longer text is cut and says so."""
    if len(text) <= limit:
        return text
    note = f"… [clipped: {len(text)} characters]"
    return text[: max(0, limit - len(note))] + note

"""One small registry type for every named thing (methods, backbones, datasets, presets).

Modelled on timm's ``register_model``: registering is one call, duplicates are an error,
lookups of unknown names suggest close matches, and listing filters with shell wildcards.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from .errors import SpecError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping with helpful errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise SpecError(f"duplicate {self.kind} name {name!r}: it is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell wildcard (``lrp-*``)."""
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def expand(self, patterns: list[str]) -> list[str]:
        """Resolve a list of names and wildcards to registered names, in order, without repeats."""
        out: list[str] = []
        for pattern in patterns:
            matched = self.names(pattern) if any(c in pattern for c in "*?[") else [pattern]
            if not matched:
                raise UnknownNameError(f"no {self.kind} matches {pattern!r}")
            for name in matched:
                self.get(name)
                if name not in out:
                    out.append(name)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

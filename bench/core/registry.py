"""One small registry type for every named thing: methods, backbones, datasets, presets (and
the reference explainers).

Modelled on timm's ``register_model``: registering is one call, duplicates are an error,
lookups of unknown names suggest close matches, and listing filters with shell wildcards.
Where the names come from stays with their owner (medmnist's ``info.py`` for datasets,
``bench/compute/models.py``'s source for backbones, the plugin metadata cache for methods, the
``bench/core/presets`` folder for presets); each registers what it finds here.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any, Callable, Generic, Iterator, TypeVar

from bench.core.errors import SpecError, UnknownNameError

T = TypeVar("T")
WILDCARDS = "*?["


def is_pattern(name: str) -> bool:
    """Whether ``name`` is a shell wildcard (``lrp-*``) rather than a name."""
    return any(c in name for c in WILDCARDS)


class Registry(Generic[T]):
    """A name -> object mapping with helpful errors; names list sorted, or in registration
    order when ``ordered``."""

    def __init__(self, kind: str, ordered: bool = False) -> None:
        self.kind = kind
        self.ordered = ordered
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
            known = ", ".join(self._listing()) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def names(self, pattern: str = "*") -> list[str]:
        """Names matching a shell wildcard (``lrp-*``)."""
        return [n for n in self._listing() if fnmatch.fnmatchcase(n, pattern)]

    def expand(self, patterns: list[str], lookup: Callable[[str], Any] | None = None) -> list[str]:
        """Resolve names and wildcards to registered names, in order, without repeats.

        A plain name is checked with ``lookup`` (default :meth:`get`: an unknown name is an
        error with close matches); a wildcard that matches nothing is an error.
        """
        out: list[str] = []
        for pattern in patterns:
            if is_pattern(pattern):
                matched = self.names(pattern)
                if not matched:
                    raise UnknownNameError(f"no {self.kind} matches {pattern!r}")
            else:
                (lookup or self.get)(pattern)
                matched = [pattern]
            out += [name for name in matched if name not in out]
        return out

    def _listing(self) -> list[str]:
        return list(self._items) if self.ordered else sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._listing())

    def __len__(self) -> int:
        return len(self._items)

"""Name -> builder tables for backbones, necks and heads.

Entries name their implementation as ``"module:attribute"`` and are imported only when
built, so importing the library imports no network code (and no torch). Variants of one
class differ only in the default keyword arguments of their entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple

from .errors import UnknownNameError


@dataclass(frozen=True)
class Entry:
    """One registry line: where the builder lives and the defaults of this variant."""

    target: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


class Registry:
    """A read-only table of named builders of one kind (``"backbone"``, ``"head"``...)."""

    def __init__(self, kind: str, entries: Mapping[str, Entry]) -> None:
        self.kind = kind
        self._entries: Dict[str, Entry] = dict(entries)

    def names(self) -> Tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            ) from None

    def build(self, name: str, **kwargs: Any) -> Any:
        """Build variant ``name``; ``kwargs`` override the entry's defaults."""
        entry = self.entry(name)
        return entry.resolve()(**{**entry.defaults, **kwargs})

"""PromQL's regular expressions: RE2 syntax and semantics, fully anchored, as Prometheus 2.42 has them.

Prometheus compiles every label-matcher and ``label_replace`` regex with Go's ``regexp`` as
``^(?:<re>)$``. Go's regexp *is* RE2 (same syntax, same linear-time semantics), so the
``google-re2`` package gives Prometheus' answers where Python's ``re`` does not: flags such as
``(?i)`` may appear anywhere, ``\\d`` and ``\\w`` are ASCII only, ``.`` does not match a newline,
and lookarounds and backreferences are refused. A hand translation to ``re`` was the other option;
it would be a second regex dialect to keep in step, so the library wins.

RE2's Python wrapper costs a few microseconds per match (UTF-8 conversion, match objects), about
25 times ``re``. Selection matches one label value per series, and a TSDB has few distinct values
per label, so :meth:`Regex.matches` remembers its answers per value.
"""

from __future__ import annotations

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every syntax error to stderr as well
_MEMO_LIMIT = 10_000


class RegexError(ValueError):
    """A regex RE2 (so Prometheus) refuses; the message is RE2's reason."""


class Regex:
    """One compiled, anchored PromQL regex."""

    __slots__ = ("source", "_pattern", "_memo")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            # the unanchored text must parse by itself too, as Prometheus' syntax.Parse(v) checks
            re2.compile(source, _OPTIONS)
            self._pattern = re2.compile(f"^(?:{source})$", _OPTIONS)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RegexError(reason) from None
        self._memo: dict[str, bool] = {}

    def matches(self, value: str) -> bool:
        """Whether the whole of ``value`` matches."""
        hit = self._memo.get(value)
        if hit is None:
            hit = self._pattern.match(value) is not None
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[value] = hit
        return hit

    def match(self, value: str) -> re2._Match | None:
        """The match object (for group expansion), or None."""
        return self._pattern.match(value)


@lru_cache(maxsize=1024)
def compile_regex(source: str) -> Regex:
    """The anchored regex for ``source`` (compiled once); raises :class:`RegexError`."""
    return Regex(source)


__all__ = ["Regex", "RegexError", "compile_regex"]

"""Label-manipulating functions: ``label_replace``, ``label_join``, ``absent``'s labels, ``sort``.

``label_replace`` uses Go's regexp template expansion (``$1``, ``${1}``, ``$name``, ``$$``); the
regex is anchored (``^(?:re)$``) and RE2's, like every PromQL regex (:mod:`simkit.tsdb.regex`). Label names are validated like
Prometheus' ``model.LabelNameRE``.
"""

from __future__ import annotations

import math
import re
from typing import Protocol

from simkit.errors import QueryError
from simkit.promql.ast import Expr, MatrixSelector, VectorSelector
from simkit.promql.types import Labels, Vector, get_label, with_label
from simkit.tsdb import RegexError, compile_regex


class _Match(Protocol):
    """What a regex match (RE2's) offers template expansion."""

    def group(self, index: int | str, /) -> str | None: ...


_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TEMPLATE_NAME_RE = re.compile(r"[a-zA-Z0-9_]+")


def absent_labels(expr: Expr) -> Labels:
    """Labels of absent()'s output: the selector's equality matchers, each name used once."""
    if isinstance(expr, MatrixSelector):
        expr = expr.selector
    if not isinstance(expr, VectorSelector):
        return ()
    out: dict[str, str] = {}
    seen: set[str] = set()
    for m in expr.matchers:
        if m.name == "__name__":
            continue
        if m.op == "=" and m.name not in seen:
            if m.value:
                out[m.name] = m.value
            seen.add(m.name)
        else:
            out.pop(m.name, None)
    return tuple(sorted(out.items()))


def expand_template(template: str, match: _Match) -> str:
    """Go's ``Regexp.ExpandString``: unknown or unmatched groups become empty."""
    out: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end >= 0 else ""
            if end < 0 or not _TEMPLATE_NAME_RE.fullmatch(name):
                out.append("$")
                i += 1
                continue
            i = end + 1
        else:
            m = _TEMPLATE_NAME_RE.match(template, i + 1)
            if not m:
                out.append("$")
                i += 1
                continue
            name = m.group(0)
            i = m.end()
        out.append(_group(match, name))
    return "".join(out)


def _group(match: _Match, name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # no such group: Go expands it to nothing
        return ""
    return value or ""


def label_replace(vec: Vector, args: list[str], pos: int) -> Vector:
    dst, replacement, src, regex = args
    try:
        pattern = compile_regex(regex)
    except RegexError as exc:
        raise QueryError(f"invalid regular expression in label_replace(): {regex}: {exc}", pos) from None
    if not _LABEL_NAME_RE.fullmatch(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}", pos)
    out: Vector = []
    cache: dict[Labels, Labels] = {}
    for labels, value in vec:
        new = cache.get(labels)
        if new is None:
            m = pattern.match(get_label(labels, src))
            new = with_label(labels, dst, expand_template(replacement, m)) if m else labels
            cache[labels] = new
        out.append((new, value))
    return out


def label_join(vec: Vector, args: list[str], pos: int) -> Vector:
    dst, sep, *srcs = args
    for name in srcs:
        if not _LABEL_NAME_RE.fullmatch(name):
            raise QueryError(f"invalid source label name in label_join(): {name}", pos)
    if not _LABEL_NAME_RE.fullmatch(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}", pos)
    return [
        (with_label(labels, dst, sep.join(get_label(labels, s) for s in srcs)), value)
        for labels, value in vec
    ]


def sort_vector(vec: Vector, descending: bool) -> Vector:
    """sort()/sort_desc(): by value, NaN last in both, as 2.42 sorts.

    Prometheus runs Go's (unstable) sort.Sort with a reversed heap order whose Less puts NaN
    first. For up to 12 elements that is an insertion sort, replayed here so that ties and NaNs
    land where Prometheus puts them; longer vectors are sorted stably (ties may then be ordered
    differently from Prometheus, values never are).
    """
    if descending:

        def less(a: float, b: float) -> bool:  # sort.Reverse(vectorByValueHeap)
            return math.isnan(b) or b < a
    else:

        def less(a: float, b: float) -> bool:  # sort.Reverse(vectorByReverseValueHeap)
            return math.isnan(b) or b > a

    out = list(vec)
    if len(out) <= 12:
        for i in range(1, len(out)):
            j = i
            while j > 0 and less(out[j][1], out[j - 1][1]):
                out[j], out[j - 1] = out[j - 1], out[j]
                j -= 1
        return out
    rest = sorted((s for s in out if not math.isnan(s[1])), key=lambda s: s[1], reverse=descending)
    return rest + [s for s in out if math.isnan(s[1])]

"""PromQL tokenizer with 0-based character positions, following Prometheus 2.42's lexer.

Only what the parser needs: identifiers (metric names may contain ``:``), keywords (aggregators,
``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``/``bool``/``offset``, set
operators), numbers (decimal, hex, ``Inf``/``NaN``), durations (``1h30m``, ``250ms``), strings in
double, single or back quotes with Go escapes, operators and brackets. Every error is a
:class:`~simkit.errors.QueryError` carrying the position of the offending character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simkit.errors import QueryError

AGGREGATORS = frozenset(
    ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"]
)
KEYWORDS = frozenset(
    ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "atan2"]
) | AGGREGATORS

_DURATION_RE = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_DURATION_PART_RE = re.compile(r"([0-9]+)(ms|[smhdwy])")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
                "w": 7 * 86_400_000, "y": 365 * 86_400_000}
_UNIT_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_NUMBER_RE = re.compile(
    r"0[xX][0-9a-fA-F]+"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_OPERATORS = ["==", "!=", "=~", "!~", ">=", "<=", "+", "-", "*", "/", "%", "^", ">", "<", "=",
              "(", ")", "{", "}", "[", "]", ",", "@", ":"]
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class Token:
    """One lexeme. ``kind`` is IDENT, KEYWORD, NUMBER, DURATION, STRING, OP or EOF."""

    kind: str
    text: str  # raw source text (keywords lower-cased)
    pos: int
    value: object = None  # float for NUMBER, int milliseconds for DURATION, str for STRING


def parse_duration_ms(text: str, pos: int = 0, query: str | None = None) -> int:
    """Prometheus' model.ParseDuration: units y w d h m s ms, each at most once, in that order."""
    if not _DURATION_RE.fullmatch(text):
        raise QueryError(f"bad duration {text!r}", pos, query)
    total = 0
    last = -1
    for m in _DURATION_PART_RE.finditer(text):
        rank = _UNIT_ORDER.index(m.group(2))
        if rank <= last:
            raise QueryError(f"bad duration {text!r} (units out of order or repeated)", pos, query)
        last = rank
        total += int(m.group(1)) * _DURATION_MS[m.group(2)]
    return total


def parse_number(text: str) -> float:
    """Go's ``strconv.ParseInt(s, 0, 64)`` then ``ParseFloat``, as Prometheus' parseNumber does."""
    low = text.lower()
    if low in ("inf", "+inf"):
        return float("inf")
    if low == "nan":
        return float("nan")
    if low.startswith("0x"):
        return float(int(low, 16))
    if re.fullmatch(r"0[0-7]+", text):
        return float(int(text, 8))  # ParseInt with base 0 reads a leading zero as octal
    return float(text)


def _unquote(body: str, quote: str, pos: int, query: str) -> str:
    if quote == "`":
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(body):
            raise QueryError("unterminated escape sequence in string", pos + 1 + i, query)
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + n]
            if len(digits) != n or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise QueryError(f"invalid escape sequence '\\{e}{digits}' in string", pos + 1 + i, query)
            out.append(chr(int(digits, 16)))
            i += 2 + n
        elif e in "01234567":
            digits = body[i + 1 : i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits):
                raise QueryError("invalid octal escape in string", pos + 1 + i, query)
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise QueryError(f"unknown escape sequence '\\{e}' in string", pos + 1 + i, query)
    return "".join(out)


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens, ending with an EOF token at ``len(query)``."""
    tokens: list[Token] = []
    in_brackets = False
    i = 0
    n = len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
            continue
        if c == "#":  # comment to end of line
            while i < n and query[i] != "\n":
                i += 1
            continue
        if c in "\"'`":
            j = i + 1
            while j < n and query[j] != c:
                if query[j] == "\\" and c != "`":
                    j += 1
                elif query[j] == "\n" and c != "`":
                    raise QueryError("unterminated quoted string", i, query)
                j += 1
            if j >= n:
                raise QueryError("unterminated quoted string", i, query)
            tokens.append(Token("STRING", query[i : j + 1], i, _unquote(query[i + 1 : j], c, i, query)))
            i = j + 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and query[i + 1].isdigit()):
            d = _DURATION_RE.match(query, i)
            m = _NUMBER_RE.match(query, i)
            assert m is not None
            if d and d.end() >= m.end():
                end = d.end()
                if end < n and (query[end].isalnum() or query[end] in "_."):
                    raise QueryError(f"bad number or duration syntax {query[i:end + 1]!r}", i, query)
                tokens.append(Token("DURATION", d.group(0), i, parse_duration_ms(d.group(0), i, query)))
                i = end
                continue
            end = m.end()
            if end < n and (query[end].isalnum() or query[end] in "_."):
                raise QueryError(f"bad number or duration syntax {query[i:end + 1]!r}", i, query)
            tokens.append(Token("NUMBER", m.group(0), i, parse_number(m.group(0))))
            i = end
            continue
        m = None if (c == ":" and in_brackets) else _IDENT_RE.match(query, i)
        if m:
            word = m.group(0)
            low = word.lower()
            if low in ("inf", "nan"):
                tokens.append(Token("NUMBER", word, i, parse_number(low)))
            elif low in KEYWORDS and ":" not in word:
                tokens.append(Token("KEYWORD", low, i, word))
            else:
                tokens.append(Token("IDENT", word, i, word))
            i = m.end()
            continue
        for op in _OPERATORS:
            if query.startswith(op, i):
                if op in "[]":
                    in_brackets = op == "["  # inside [..], ':' separates a subquery step
                tokens.append(Token("OP", op, i))
                i += len(op)
                break
        else:
            raise QueryError(f"unexpected character {c!r}", i, query)
    tokens.append(Token("EOF", "", n))
    return tokens

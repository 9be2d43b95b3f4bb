"""PromQL tokenizer with 0-based character positions, following Prometheus 2.42's lexer.

Only what the parser needs: identifiers (metric names may contain ``:``), keywords (aggregators,
``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``/``bool``/``offset``, set
operators), numbers (decimal, hex, ``Inf``/``NaN``), durations (``1h30m``, ``250ms``), strings in
double, single or back quotes with Go escapes, operators and brackets. Every error is a
:class:`~simkit.errors.QueryError` carrying the position of the offending character.
"""

from __future__ import annotations

import re
from typing import Final

from simkit.errors import QueryError

AGGREGATORS = frozenset(
    [
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ]
)
KEYWORDS = (
    frozenset(
        [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
            "bool",
            "offset",
            "and",
            "or",
            "unless",
            "atan2",
        ]
    )
    | AGGREGATORS
)

_DURATION_RE = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_DURATION_PART_RE = re.compile(r"([0-9]+)(ms|[smhdwy])")
_DURATION_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 365 * 86_400_000,
}
_UNIT_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_ONE_LETTER_UNITS = frozenset("ywdhms")
_PLAIN_DECIMAL_START = frozenset("123456789.")
_OCTAL_RE = re.compile(r"0[0-7]+")
_NUMBER_RE = re.compile(
    r"0[xX][0-9a-fA-F]+"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


Token = tuple[str, str, int, object]
"""One lexeme: ``(kind, text, pos, value)``, read with the indexes below.

``kind`` is IDENT, KEYWORD, NUMBER, DURATION, STRING, OP or EOF; ``text`` the raw source text
(keywords lower-cased); ``pos`` its 0-based offset; ``value`` a float for NUMBER, int milliseconds
for DURATION, the decoded str for STRING, the word as written for IDENT and KEYWORD, else None.
A plain tuple because a query has dozens of tokens: building one is far cheaper than calling any
class' constructor (even a NamedTuple's ``__new__`` is a Python function call).
"""
KIND: Final = 0
TEXT: Final = 1
POS: Final = 2
VALUE: Final = 3


def parse_duration_ms(text: str, pos: int = 0, query: str | None = None) -> int:
    """Prometheus' model.ParseDuration: units y w d h m s ms, each at most once, in that order."""
    number, unit = text[:-1], text[-1:]
    if unit in _ONE_LETTER_UNITS and number.isdecimal() and number.isascii():  # the usual "300s"
        return int(number) * _DURATION_MS[unit]
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
    if text[:1] in _PLAIN_DECIMAL_START:  # not hex, octal, Inf or NaN
        return float(text)
    low = text.lower()
    if low in ("inf", "+inf"):
        return float("inf")
    if low == "nan":
        return float("nan")
    if low.startswith("0x"):
        return float(int(low, 16))
    if _OCTAL_RE.fullmatch(text):
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


# Lexemes, as Prometheus' lexer takes them: the alternatives are ordered so that the first that
# matches at a position is the right one. A duration is listed before a number: wherever both match,
# the duration is at least as long (a unit letter stops a number). Numbers and durations must not
# run into a letter, digit, ``_`` or ``.`` (``\w`` is exactly ``isalnum() or "_"``); where no
# alternative matches, :func:`_error` says why.
_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_OP = r"==|!=|=~|!~|>=|<=|[-+*/%^><=(){}\[\],@:]"
_STRING = r""""[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|`[^`]*`"""
_DURATION = r"(?:[0-9]+(?:ms|[smhdwy]))+(?![\w.])"
_NUMBER = r"(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![\w.])"
_COMMENT = r"\#(?:[^\n]*\S)?"  # up to the line's end, less whitespace (see tokenize)
_LEXEMES_RE = re.compile(  # (whitespace before, lexeme)
    r"(\s*)(" + "|".join([_IDENT, _OP, _STRING, _DURATION, _NUMBER, _COMMENT]) + ")", re.DOTALL
)
_LEXEME_RE = re.compile(  # the same, one at a time with its kind and the whitespace after it
    f"(?:(?P<IDENT>{_IDENT})|(?P<OP>{_OP})|(?P<STRING>{_STRING})|(?P<DURATION>{_DURATION})"
    rf"|(?P<NUMBER>{_NUMBER})|(?P<comment>{_COMMENT}))\s*",
    re.DOTALL,
)
_SPECIAL_WORDS = KEYWORDS | {"inf", "nan"}
_ASCII_DIGITS = tuple("0123456789")
_OP_START = frozenset("=!><+-*/%^(){}[],@")
_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_LONGEST_WORD = max(len(w) for w in _SPECIAL_WORDS)


def _error(query: str, i: int) -> QueryError:
    """The error for position ``i``, where no lexeme matches."""
    c = query[i]
    if c in "\"'`":
        return QueryError("unterminated quoted string", i, query)
    if c in _ASCII_DIGITS or c == ".":
        if c == "." and query[i + 1 : i + 2] not in _ASCII_DIGITS:
            return QueryError(f"unexpected character {c!r}", i, query)
        d = _DURATION_RE.match(query, i)
        m = _NUMBER_RE.match(query, i)
        assert m is not None
        end = d.end() if d and d.end() >= m.end() else m.end()
        return QueryError(f"bad number or duration syntax {query[i : end + 1]!r}", i, query)
    return QueryError(f"unexpected character {c!r}", i, query)


def _token(kind: str, text: str, pos: int, query: str) -> Token:
    """The token for one lexeme (not a comment): its kind refined and its value decoded."""
    if kind == "IDENT":
        low = text.lower()
        if low not in _SPECIAL_WORDS:
            return ("IDENT", text, pos, text)
        if low in ("inf", "nan"):
            return ("NUMBER", text, pos, parse_number(low))
        if ":" in text:
            return ("IDENT", text, pos, text)
        return ("KEYWORD", low, pos, text)
    if kind == "OP":
        return ("OP", text, pos, None)
    if kind == "STRING":
        body = text[1:-1]
        value = _unquote(body, text[0], pos, query) if "\\" in body else body
        return ("STRING", text, pos, value)
    if kind == "DURATION":
        return ("DURATION", text, pos, parse_duration_ms(text, pos, query))
    return ("NUMBER", text, pos, parse_number(text))


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens, ending with an EOF token at ``len(query)``.

    The common case is one ``findall`` giving (whitespace, lexeme) pairs, whose lengths add up to
    the positions. That is only right if ``findall`` skipped nothing. Every lexeme ends with a
    non-space character, so if something was skipped, the lengths add up to less than the end of
    the last lexeme and what follows that sum is not all whitespace. In that case (an error), or
    when an identifier starts with ``:`` (inside ``[...]`` that is a subquery's ``:`` instead),
    :func:`_tokenize_stepwise` takes over; it tracks brackets and names the error.
    """
    try:
        return _tokenize_all_at_once(query)
    except (_Skipped, QueryError):  # an error here may be at a wrong position, or not the first
        return _tokenize_stepwise(query)


class _Skipped(Exception):
    """The fast path met something it leaves to :func:`_tokenize_stepwise`."""


def _tokenize_all_at_once(query: str) -> list[Token]:
    """The fast path of :func:`tokenize`; raises :class:`_Skipped` where it cannot be trusted."""
    tokens: list[Token] = []
    append = tokens.append
    i = 0
    for space, text in _LEXEMES_RE.findall(query):
        pos = i + len(space)
        i = pos + len(text)
        c = text[0]
        if c in _OP_START:
            append(("OP", text, pos, None))
        elif c in _WORD_START and (len(text) > _LONGEST_WORD or text.lower() not in _SPECIAL_WORDS):
            append(("IDENT", text, pos, text))
        elif c == ":":
            raise _Skipped
        elif c != "#":
            kind = (
                "STRING"
                if c in "\"'`"
                else "IDENT"
                if c in _WORD_START
                else "DURATION"
                if text[-1] in "smhdwy" and text[1:2] not in ("x", "X")
                else "NUMBER"
            )
            append(_token(kind, text, pos, query))
    n = len(query)
    if i != n and not query[i:].isspace():
        raise _Skipped
    append(("EOF", "", n, None))
    return tokens


def _tokenize_stepwise(query: str) -> list[Token]:
    """:func:`tokenize` one lexeme at a time, knowing whether it is inside ``[...]``."""
    n = len(query)
    i = n - len(query.lstrip())
    tokens: list[Token] = []
    in_brackets = False
    while i < n:
        m = _LEXEME_RE.match(query, i)
        if m is None:
            raise _error(query, i)
        kind = m.lastgroup
        assert kind is not None
        text = m.group(kind)
        if kind == "IDENT" and text[0] == ":" and in_brackets:  # a subquery's step separator
            tokens.append(("OP", ":", i, None))
            i = n - len(query[i + 1 :].lstrip())  # past the ':' and the whitespace after it
            continue
        if kind == "OP" and text in ("[", "]"):
            in_brackets = text == "["
        if kind != "comment":
            tokens.append(_token(kind, text, i, query))
        i = m.end()
    tokens.append(("EOF", "", n, None))
    return tokens

"""Recursive-descent / precedence-climbing PromQL parser with Prometheus 2.42's type checks.

Written by hand (rather than on the ``promql-parser`` package) so that every error names the
construct and its 0-based position, and so that what simkit leaves out (native-histogram
functions) is rejected up front instead of failing during evaluation.

Precedence, lowest first: ``or``; ``and``/``unless``; comparisons; ``+ -``; ``* / % atan2``;
``^`` (right-associative). Unary minus binds like ``*`` (so ``-a^b`` is ``-(a^b)``), as in
Prometheus' grammar.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from simkit.errors import QueryError
from simkit.promql.ast import (
    COMPARISON_OPS,
    SET_OPS,
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
)
from simkit.promql.lexer import AGGREGATORS, KIND, POS, TEXT, VALUE, Token, tokenize
from simkit.promql.signatures import FUNCTIONS, UNSUPPORTED_FUNCTIONS
from simkit.tsdb import Matcher, RegexError, compile_regex

_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    ">": 3,
    "<": 3,
    ">=": 3,
    "<=": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_POSTFIX = frozenset(["[", "offset", "@"])  # texts of the tokens parse_postfix acts on
_TYPE_NAMES = {"scalar": "scalar", "vector": "instant vector", "matrix": "range vector", "string": "string"}


def parse(query: str) -> Expr:
    """Parse a PromQL expression; raises QueryError(message, position, query) on any problem."""
    try:
        return _Parser(query).parse()
    except RecursionError:  # the parser recurses per nesting level; bound it here, not in every rule
        raise QueryError(
            "the expression is nested too deeply to parse (parentheses, unary operators "
            "or function calls thousands of levels deep)"
        ) from None


@lru_cache(maxsize=4096)
def parse_cached(query: str) -> Expr:
    """:func:`parse`, shared: trees are immutable and evaluation state lives in the evaluator.
    A sweep sends the same query texts run after run (iterations fall at the same elapsed times),
    so the HTTP API and the engine both parse through here. Errors are not cached."""
    return parse(query)


class _Parser:
    """One parse. The token helpers are called for every token, so they are kept minimal: ``i``
    never passes the final EOF token, and an operator's or keyword's text alone identifies it
    (no other kind of token can have the text ``(`` or ``by``), so texts are compared first."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0
        self.last = len(self.tokens) - 1  # the EOF token

    # -- token helpers -------------------------------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        i = self.i
        if i < self.last:
            self.i = i + 1
        return self.tokens[i]

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, pos, self.query)

    def unexpected(self, tok: Token, context: str = "") -> QueryError:
        what = "end of input" if tok[KIND] == "EOF" else repr(tok[TEXT])
        return self.error(f"unexpected {what}{context}", tok[POS])

    def expect_op(self, op: str, context: str = "") -> Token:
        tok = self.next()
        if tok[KIND] != "OP" or tok[TEXT] != op:
            raise self.unexpected(tok, context or f", expected {op!r}")
        return tok

    def is_op(self, op: str) -> bool:
        tok = self.tokens[self.i]
        return tok[TEXT] == op and tok[KIND] == "OP"

    def is_kw(self, kw: str) -> bool:
        tok = self.tokens[self.i]
        return tok[TEXT] == kw and tok[KIND] == "KEYWORD"

    # -- grammar --------------------------------------------------------------------------------

    def parse(self) -> Expr:
        if self.peek()[KIND] == "EOF":
            raise self.error("no expression found in input", 0)
        expr = self.parse_expr(0)
        tok = self.peek()
        if tok[KIND] != "EOF":
            raise self.unexpected(tok)
        return expr

    def parse_expr(self, min_prec: int) -> Expr:
        tokens = self.tokens
        tok = tokens[self.i]
        if tok[TEXT] in ("-", "+") and tok[KIND] == "OP":
            lhs = self.parse_unary()
        else:  # parse_unary's other branch, inlined: this runs for every operand
            lhs = self.parse_primary()
            if tokens[self.i][TEXT] in _POSTFIX:
                lhs = self.parse_postfix(lhs)
        while True:
            op_tok = tokens[self.i]
            op = op_tok[TEXT]  # an operator symbol (OP) or and/or/unless/atan2 (KEYWORD)
            if op not in _PRECEDENCE or _PRECEDENCE[op] < min_prec or op_tok[KIND] not in ("OP", "KEYWORD"):
                return lhs
            self.next()
            return_bool = False
            if self.is_kw("bool"):
                self.next()
                return_bool = True
            matching = self.parse_matching(op)
            prec = _PRECEDENCE[op]
            rhs = self.parse_expr(prec if op == "^" else prec + 1)
            lhs = self.check_binary(op_tok, lhs, rhs, return_bool, matching)

    def parse_matching(self, op: str) -> VectorMatching | None:
        if not (self.is_kw("on") or self.is_kw("ignoring")):
            if self.is_kw("group_left") or self.is_kw("group_right"):
                raise self.unexpected(self.peek(), " (group modifiers need on() or ignoring() first)")
            return None
        on = self.next()[TEXT] == "on"
        labels = self.parse_label_list()
        card = "many-to-many" if op in SET_OPS else "one-to-one"
        include: tuple[str, ...] = ()
        if self.is_kw("group_left") or self.is_kw("group_right"):
            tok = self.next()
            if op in SET_OPS:
                raise self.error(f"no grouping allowed for {op!r} operation", tok[POS])
            card = "many-to-one" if tok[TEXT] == "group_left" else "one-to-many"
            if self.is_op("("):
                include = self.parse_label_list()
            for name in include:
                if on and name in labels:
                    raise self.error(
                        f"label {name!r} must not occur in ON and GROUP clause at once", tok[POS]
                    )
        return VectorMatching(card=card, on=on, labels=labels, include=include)

    def parse_label_list(self) -> tuple[str, ...]:
        self.expect_op("(")
        names: list[str] = []
        while not self.is_op(")"):
            tok = self.next()
            if tok[KIND] not in ("IDENT", "KEYWORD") or not _LABEL_NAME_RE.fullmatch(str(tok[VALUE])):
                raise self.unexpected(tok, " in label list, expected a label name")
            names.append(str(tok[VALUE]))
            if not self.is_op(")"):
                self.expect_op(",", " in label list, expected ',' or ')'")
        self.next()
        return tuple(names)

    def check_binary(
        self, op_tok: Token, lhs: Expr, rhs: Expr, return_bool: bool, matching: VectorMatching | None
    ) -> BinaryExpr:
        op = op_tok[TEXT]
        for side in (lhs, rhs):
            if side.type not in ("scalar", "vector"):
                raise self.error(
                    "binary expression must contain only scalar and instant vector types, "
                    f"got {_TYPE_NAMES[side.type]}",
                    side.pos,
                )
        both_vectors = lhs.type == "vector" and rhs.type == "vector"
        if return_bool and op not in COMPARISON_OPS:
            raise self.error("bool modifier can only be used on comparison operators", op_tok[POS])
        if op in COMPARISON_OPS and not return_bool and lhs.type == "scalar" and rhs.type == "scalar":
            raise self.error("comparisons between scalars must use BOOL modifier", op_tok[POS])
        if op in SET_OPS and not both_vectors:
            raise self.error(f"set operator {op!r} not allowed in binary scalar expression", op_tok[POS])
        if matching is not None and not both_vectors:
            # Prometheus only objects when labels are listed; a bare on()/group_x is dropped
            if matching.labels:
                raise self.error("vector matching only allowed between instant vectors", op_tok[POS])
            matching = None
        if both_vectors and matching is None:
            matching = VectorMatching(card="many-to-many" if op in SET_OPS else "one-to-one")
        return BinaryExpr(lhs.pos, op, lhs, rhs, return_bool, matching)

    def parse_unary(self) -> Expr:
        tok = self.tokens[self.i]
        if tok[TEXT] in ("-", "+") and tok[KIND] == "OP":
            self.next()
            operand = self.parse_expr(_PRECEDENCE["^"])
            if operand.type not in ("scalar", "vector"):
                raise self.error(
                    "unary expression only allowed on expressions of type scalar or "
                    f"instant vector, got {_TYPE_NAMES[operand.type]}",
                    tok[POS],
                )
            if isinstance(operand, NumberLiteral):
                value = -operand.value if tok[TEXT] == "-" else operand.value
                return NumberLiteral(tok[POS], value)
            return UnaryExpr(tok[POS], tok[TEXT], operand)
        return self.parse_postfix(self.parse_primary())

    def parse_primary(self) -> Expr:
        tok = self.next()
        kind = tok[KIND]
        if kind == "IDENT":
            if self.is_op("("):
                return self.parse_call(tok)
            return self.parse_selector(tok[TEXT], tok[POS])
        if kind == "KEYWORD" and tok[TEXT] in AGGREGATORS:
            return self.parse_aggregate(tok)
        if kind == "NUMBER":
            assert isinstance(tok[VALUE], float)
            return NumberLiteral(tok[POS], tok[VALUE])
        if kind == "STRING":
            return StringLiteral(tok[POS], str(tok[VALUE]))
        if kind == "OP" and tok[TEXT] == "(":
            inner = self.parse_expr(0)
            self.expect_op(")", ", expected ')'")
            return ParenExpr(tok[POS], inner)
        if kind == "OP" and tok[TEXT] == "{":
            return self.parse_selector(None, tok[POS])
        raise self.unexpected(tok)

    def parse_selector(self, name: str | None, pos: int) -> VectorSelector:
        matchers: list[Matcher] = []
        if name is not None:
            matchers.append(Matcher("__name__", "=", name))
            if not self.is_op("{"):
                return VectorSelector(pos, name, tuple(matchers))
            self.next()
        tokens = self.tokens
        while not self.is_op("}"):
            # label, operator and value; an error is raised before the EOF token would be passed
            i, last = self.i, self.last
            label, op, value = tokens[i], tokens[min(i + 1, last)], tokens[min(i + 2, last)]
            # an IDENT or KEYWORD is a label name unless it has a ':' (the lexer allows those)
            if label[KIND] not in ("IDENT", "KEYWORD") or ":" in label[TEXT]:
                raise self.unexpected(label, " in label matching, expected label name")
            if op[TEXT] not in ("=", "!=", "=~", "!~") or op[KIND] != "OP":
                raise self.unexpected(op, " in label matching, expected one of '=', '!=', '=~', '!~'")
            if value[KIND] != "STRING":
                raise self.unexpected(value, " in label matching, expected string")
            self.i += 3
            text = str(value[VALUE])
            if op[TEXT] in ("=~", "!~"):
                try:
                    compile_regex(text)
                except RegexError as exc:
                    raise self.error(f"invalid regular expression {text!r}: {exc}", value[POS]) from None
            if label[VALUE] == "__name__" and name is not None:
                raise self.error(f"metric name must not be set twice: {name!r} or {text!r}", label[POS])
            matchers.append(Matcher(str(label[VALUE]), op[TEXT], text))  # type: ignore[arg-type]
            if not self.is_op("}"):
                self.expect_op(",", " in label matching, expected ',' or '}'")
        self.next()
        # a metric name never matches "": only nameless selectors need the check
        if name is None and not any(not m.matches("") for m in matchers):
            raise self.error("vector selector must contain at least one non-empty matcher", pos)
        return VectorSelector(pos, name, tuple(matchers))

    def parse_postfix(self, expr: Expr) -> Expr:
        while True:
            tok = self.tokens[self.i]
            if tok[TEXT] not in _POSTFIX:
                return expr
            if tok[KIND] == "OP" and tok[TEXT] == "[":
                self.next()
                dur = self.next()
                if dur[KIND] != "DURATION":
                    raise self.unexpected(dur, " in range, expected a duration")
                assert isinstance(dur[VALUE], int)
                if self.is_op(":"):
                    expr = self.parse_subquery(expr, tok, dur)
                    continue
                self.expect_op("]", ", expected ']'")
                if not isinstance(expr, VectorSelector):
                    raise self.error("ranges only allowed for vector selectors", tok[POS])
                if expr.offset_ms or expr.at_ms is not None or expr.at_edge is not None:
                    raise self.error("no offset or @ modifiers allowed before range", tok[POS])
                if dur[VALUE] <= 0:
                    raise self.error("range must be greater than 0", dur[POS])
                expr = MatrixSelector(expr.pos, expr, dur[VALUE])
            elif tok[KIND] == "KEYWORD" and tok[TEXT] == "offset":
                self.next()
                sign = 1
                if self.is_op("-") or self.is_op("+"):
                    sign = -1 if self.next()[TEXT] == "-" else 1
                dur = self.next()
                if dur[KIND] != "DURATION":
                    raise self.unexpected(dur, " after offset, expected a duration")
                assert isinstance(dur[VALUE], int)
                expr = self._modify(expr, tok, offset_ms=sign * dur[VALUE])
            elif tok[KIND] == "OP" and tok[TEXT] == "@":
                self.next()
                arg = self.next()
                if arg[KIND] == "IDENT" and arg[TEXT] in ("start", "end") and self.is_op("("):
                    self.next()
                    self.expect_op(")")
                    expr = self._modify(expr, tok, at_edge=arg[TEXT])
                elif arg[KIND] == "NUMBER" or (
                    arg[KIND] == "OP" and arg[TEXT] == "-" and self.peek()[KIND] == "NUMBER"
                ):
                    value = float(self.next()[VALUE]) * -1 if arg[KIND] == "OP" else float(arg[VALUE])  # type: ignore[arg-type]
                    if value != value or value in (float("inf"), float("-inf")):
                        raise self.error("timestamp out of bounds for @ modifier", arg[POS])
                    expr = self._modify(expr, tok, at_ms=round(value * 1000))
                else:
                    raise self.unexpected(arg, " after @, expected a timestamp, start() or end()")
            else:
                return expr

    def parse_subquery(self, expr: Expr, bracket: Token, dur: Token) -> SubqueryExpr:
        """``expr[range:step]`` after ``[range``; the step may be left out (default resolution)."""
        self.expect_op(":")
        step = 0
        if self.peek()[KIND] == "DURATION":
            step_tok = self.next()
            assert isinstance(step_tok[VALUE], int)
            step = step_tok[VALUE]
            if step <= 0:
                raise self.error("step must be greater than 0", step_tok[POS])
        self.expect_op("]", ", expected ']' after the subquery's step")
        if expr.type != "vector":
            raise self.error(
                f"subquery is only allowed on instant vector, got {_TYPE_NAMES[expr.type]}", bracket[POS]
            )
        assert isinstance(dur[VALUE], int)
        if dur[VALUE] <= 0:
            raise self.error("range must be greater than 0", dur[POS])
        return SubqueryExpr(expr.pos, expr, dur[VALUE], step)

    def _modify(
        self,
        expr: Expr,
        tok: Token,
        offset_ms: int | None = None,
        at_ms: int | None = None,
        at_edge: str | None = None,
    ) -> Expr:
        what = "offset" if offset_ms is not None else "@"
        sel = expr.selector if isinstance(expr, MatrixSelector) else expr
        if not isinstance(sel, VectorSelector | SubqueryExpr):
            raise self.error(
                f"{what} modifier must be preceded by an instant vector selector or range "
                "vector selector or a subquery",
                tok[POS],
            )
        if offset_ms is not None:
            if sel.offset_ms:
                raise self.error("offset may not be set multiple times", tok[POS])
            new = dataclasses.replace(sel, offset_ms=offset_ms)
        else:
            if sel.at_ms is not None or sel.at_edge is not None:
                raise self.error("@ <timestamp> may not be set multiple times", tok[POS])
            new = dataclasses.replace(sel, at_ms=at_ms, at_edge=at_edge)
        if isinstance(expr, MatrixSelector):
            assert isinstance(new, VectorSelector)
            return MatrixSelector(expr.pos, new, expr.range_ms)
        return new

    def parse_args(self) -> list[Expr]:
        self.expect_op("(")
        args: list[Expr] = []
        while not self.is_op(")"):
            args.append(self.parse_expr(0))
            if not self.is_op(")"):
                self.expect_op(",", ", expected ',' or ')'")
        self.next()
        return args

    def parse_call(self, tok: Token) -> Call:
        name = tok[TEXT]
        if name in UNSUPPORTED_FUNCTIONS:
            raise self.error(f"unsupported function {name!r}", tok[POS])
        if name not in FUNCTIONS:
            raise self.error(f"unknown function with name {name!r}", tok[POS])
        arg_types, optional, ret = FUNCTIONS[name]
        args = self.parse_args()
        if optional >= 0:
            ok = len(arg_types) - optional <= len(args) <= len(arg_types)
        else:
            ok = len(args) >= len(arg_types) - 1
        if not ok:
            least = len(arg_types) - (1 if optional < 0 else 0)
            raise self.error(
                f"wrong number of arguments in call to {name!r}: got {len(args)}, "
                f"expected {least}{' or fewer' if optional > 0 else ''}"
                f"{' or more' if optional < 0 else ''}",
                tok[POS],
            )
        for i, arg in enumerate(args):
            want = arg_types[min(i, len(arg_types) - 1)]
            if arg.type != want:
                raise self.error(
                    f"expected type {_TYPE_NAMES[want]} in call to function {name!r}, "
                    f"got {_TYPE_NAMES[arg.type]}",
                    arg.pos,
                )
        return Call(tok[POS], name, tuple(args), ret)

    def parse_aggregate(self, tok: Token) -> AggregateExpr:
        op = tok[TEXT]
        grouping: tuple[str, ...] = ()
        without = False
        modifier_seen = False
        if self.is_kw("by") or self.is_kw("without"):
            without = self.next()[TEXT] == "without"
            grouping = self.parse_label_list()
            modifier_seen = True
        if not self.is_op("("):
            raise self.unexpected(self.peek(), f" in aggregation {op!r}, expected '('")
        args_pos = self.peek()[POS]
        args = self.parse_args()
        if not modifier_seen and (self.is_kw("by") or self.is_kw("without")):
            without = self.next()[TEXT] == "without"
            grouping = self.parse_label_list()
        needs_param = op in ("topk", "bottomk", "quantile", "count_values")
        if len(args) != (2 if needs_param else 1):
            raise self.error(
                f"wrong number of arguments for aggregate expression provided, expected "
                f"{2 if needs_param else 1}, got {len(args)}",
                args_pos,
            )
        param = args[0] if needs_param else None
        expr = args[-1]
        if param is not None:
            want = "string" if op == "count_values" else "scalar"
            if param.type != want:
                raise self.error(
                    f"expected type {_TYPE_NAMES[want]} in aggregation parameter, "
                    f"got {_TYPE_NAMES[param.type]}",
                    param.pos,
                )
        if expr.type != "vector":
            raise self.error(
                f"expected type instant vector in aggregation expression, got {_TYPE_NAMES[expr.type]}",
                expr.pos,
            )
        return AggregateExpr(tok[POS], op, expr, param, grouping, without)

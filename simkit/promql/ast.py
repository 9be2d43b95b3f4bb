"""PromQL syntax tree: immutable nodes that know their value type and source position.

Value types are Prometheus' four: ``scalar``, ``vector`` (instant vector), ``matrix`` (range
vector) and ``string``. Durations are kept as integer milliseconds, like Prometheus' int64 time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simkit.tsdb import Matcher

ValueType = str  # "scalar" | "vector" | "matrix" | "string"


@dataclass(frozen=True, eq=False)
class Expr:
    """Base of every node; ``pos`` is the 0-based offset of the node's first character."""

    pos: int

    @property
    def type(self) -> ValueType:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class NumberLiteral(Expr):
    value: float

    @property
    def type(self) -> ValueType:
        return "scalar"


@dataclass(frozen=True, eq=False)
class StringLiteral(Expr):
    value: str

    @property
    def type(self) -> ValueType:
        return "string"


@dataclass(frozen=True, eq=False)
class VectorSelector(Expr):
    """``name{matchers} offset X @ T``; ``matchers`` includes the ``__name__`` matcher if any."""

    name: str | None
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    at_ms: int | None = None  # @ <timestamp>
    at_edge: str | None = None  # "start" or "end" for @ start() / @ end()

    @property
    def type(self) -> ValueType:
        return "vector"


@dataclass(frozen=True, eq=False)
class MatrixSelector(Expr):
    """``selector[range]``: the vector selector carries offset and @."""

    selector: VectorSelector
    range_ms: int

    @property
    def type(self) -> ValueType:
        return "matrix"


@dataclass(frozen=True, eq=False)
class SubqueryExpr(Expr):
    """``expr[range:step] offset X @ T``: ``expr`` evaluated at every multiple of the step in the
    window, giving a range vector. ``step_ms`` 0 means the default resolution (Prometheus' global
    evaluation interval, 1m unless configured)."""

    expr: Expr
    range_ms: int
    step_ms: int = 0
    offset_ms: int = 0
    at_ms: int | None = None
    at_edge: str | None = None

    @property
    def type(self) -> ValueType:
        return "matrix"


@dataclass(frozen=True, eq=False)
class ParenExpr(Expr):
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass(frozen=True, eq=False)
class UnaryExpr(Expr):
    op: str  # "-" or "+"
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass(frozen=True, eq=False)
class VectorMatching:
    """``on``/``ignoring`` and ``group_left``/``group_right`` of a vector-vector binary operation."""

    card: str = "one-to-one"  # "one-to-one" | "many-to-one" | "one-to-many" | "many-to-many"
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()  # extra labels copied from the "one" side


@dataclass(frozen=True, eq=False)
class BinaryExpr(Expr):
    op: str  # + - * / % ^ == != > < >= <= and or unless atan2
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None  # only when both sides are instant vectors

    @property
    def type(self) -> ValueType:
        if self.lhs.type == "scalar" and self.rhs.type == "scalar":
            return "scalar"
        return "vector"


@dataclass(frozen=True, eq=False)
class Call(Expr):
    func: str
    args: tuple[Expr, ...]
    return_type: ValueType = "vector"

    @property
    def type(self) -> ValueType:
        return self.return_type


@dataclass(frozen=True, eq=False)
class AggregateExpr(Expr):
    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = field(default=())
    without: bool = False

    @property
    def type(self) -> ValueType:
        return "vector"


COMPARISON_OPS = frozenset(["==", "!=", ">", "<", ">=", "<="])
SET_OPS = frozenset(["and", "or", "unless"])
ARITHMETIC_OPS = frozenset(["+", "-", "*", "/", "%", "^", "atan2"])
# operators whose result drops __name__ (2.42's shouldDropMetricName): atan2 keeps it
DROP_NAME_OPS = ARITHMETIC_OPS - {"atan2"}


def unwrap_parens(expr: Expr) -> Expr:
    while isinstance(expr, ParenExpr):
        expr = expr.expr
    return expr

"""Binary operators: arithmetic, comparisons (with and without ``bool``) and set operators.

Follows Prometheus 2.42's VectorBinop / VectorscalarBinop / VectorAnd / VectorOr / VectorUnless:
matching signatures (``on`` keeps only the listed labels, ``ignoring`` drops them and
``__name__``), the "one" side hashed first with a many-to-many error on duplicates, the
one-to-one and group_left/group_right uniqueness errors, and the result label rules (arithmetic
and ``bool`` drop ``__name__``; one-to-one ``on`` keeps only the ``on`` labels; ``group_x`` extra
labels come from the "one" side). Element arithmetic runs in numpy for IEEE results (x/0 = Inf,
Go-style ``%`` and ``^``) without Python's exceptions; short vectors (a Metric query's usual one
or two samples) use Python floats for ``+ - * /`` and comparisons, which are the same IEEE ops.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from simkit.errors import QueryError
from simkit.promql.ast import ARITHMETIC_OPS, COMPARISON_OPS, DROP_NAME_OPS, BinaryExpr, VectorMatching
from simkit.promql.types import Labels, Value, Vector, check_unique, drop_name, format_labels_short

if TYPE_CHECKING:
    from simkit.promql.engine import Evaluator

F64 = npt.NDArray[np.float64]
_ARITH: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
_CMP: dict[str, Callable[[F64, F64], npt.NDArray[np.bool_]]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


def apply(op: str, a: F64, b: F64) -> tuple[F64, npt.NDArray[np.bool_] | None]:
    """Element-wise ``a op b``: (values, keep mask) — the mask is None for arithmetic."""
    with np.errstate(all="ignore"):
        if op in _ARITH:
            return _ARITH[op](a, b), None
        return a, _CMP[op](a, b)


def _ieee_div(a: float, b: float) -> float:
    """``a / b`` as IEEE 754 (numpy, Go) gives it: x/±0 is ±Inf, 0/0 and NaN/0 are NaN."""
    if b == 0.0:
        if a != a or a == 0.0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


# Python's float + - * / and comparisons are IEEE 754 double operations, like numpy's, except
# that x/0 raises (hence _ieee_div); % and ^ differ (floored modulo, exceptions) and stay numpy.
_PY_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _ieee_div,
}
_PY_CMP: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
_SMALL = 32  # below this many elements a Python loop beats numpy's per-call overhead


def apply_lists(op: str, a: list[float], b: list[float]) -> tuple[list[float], list[bool] | None]:
    """:func:`apply` on lists of equal length, without numpy for short ones."""
    if len(a) <= _SMALL:
        if op in _PY_ARITH:
            fn = _PY_ARITH[op]
            return [fn(x, y) for x, y in zip(a, b, strict=True)], None
        if op in _PY_CMP:
            cmp = _PY_CMP[op]
            return a, [cmp(x, y) for x, y in zip(a, b, strict=True)]
    values, keep = apply(op, np.array(a, dtype=np.float64), np.array(b, dtype=np.float64))
    return values.tolist(), None if keep is None else keep.tolist()


def scalar_binop(op: str, a: float, b: float) -> float:
    values, keep = apply_lists(op, [a], [b])
    if keep is not None:  # scalar comparisons always carry bool (the parser insists)
        return 1.0 if keep[0] else 0.0
    return values[0]


def vector_scalar(op: str, vec: Vector, scalar: float, swap: bool, return_bool: bool) -> Vector:
    if not vec:
        return []
    vals = [v for _, v in vec]
    sc = [scalar] * len(vals)
    values, keep = apply_lists(op, sc, vals) if swap else apply_lists(op, vals, sc)
    if keep is not None:
        values = vals  # comparisons keep the vector element's value, whichever side it is on
    drop = op in DROP_NAME_OPS or return_bool
    out: Vector = []
    for i, (labels, _) in enumerate(vec):
        if return_bool:
            value = 1.0 if keep is not None and keep[i] else 0.0
        elif keep is not None and not keep[i]:
            continue
        else:
            value = float(values[i])
        out.append((drop_name(labels) if drop else labels, value))
    return out


def signature_fn(matching: VectorMatching) -> Callable[[Labels], Labels]:
    names = frozenset(matching.labels)
    if matching.on:
        return lambda lb: tuple(p for p in lb if p[0] in names)
    return lambda lb: tuple(p for p in lb if p[0] not in names and p[0] != "__name__")


def _result_labels(lhs: Labels, rhs: Labels, op: str, matching: VectorMatching) -> Labels:
    labels = dict(lhs)
    if op in DROP_NAME_OPS:
        labels.pop("__name__", None)
    if matching.card == "one-to-one":
        names = set(matching.labels)
        labels = {k: v for k, v in labels.items() if (k in names) == matching.on}
    if matching.include:
        rhs_map = dict(rhs)
        for name in matching.include:
            value = rhs_map.get(name, "")
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
    return tuple(sorted(labels.items()))


def vector_vector(op: str, lhs: Vector, rhs: Vector, matching: VectorMatching, return_bool: bool) -> Vector:
    if not lhs or not rhs:
        return []
    sig = signature_fn(matching)
    one_to_many = matching.card == "one-to-many"
    if one_to_many:
        lhs, rhs = rhs, lhs
    right: dict[Labels, tuple[Labels, float]] = {}
    for labels, value in rhs:
        key = sig(labels)
        if key in right:
            side = "left" if one_to_many else "right"
            raise QueryError(
                f"found duplicate series for the match group {format_labels_short(key)} on the {side} "
                f"hand-side of the operation: [{format_labels_short(labels)}, "
                f"{format_labels_short(right[key][0])}];many-to-many matching not allowed: matching labels "
                "must be unique on one side"
            )
        right[key] = (labels, value)
    pairs: list[tuple[Labels, Labels, Labels, float, float]] = []
    for labels, value in lhs:
        key = sig(labels)
        hit = right.get(key)
        if hit is not None:
            vl, vr = (hit[1], value) if one_to_many else (value, hit[1])
            pairs.append((key, labels, hit[0], vl, vr))
    if not pairs:
        return []
    values, keep = apply_lists(op, [p[3] for p in pairs], [p[4] for p in pairs])
    matched: dict[Labels, set[Labels] | None] = {}
    out: Vector = []
    for i, (key, ls, rs, _, _) in enumerate(pairs):
        if return_bool:
            value = 1.0 if keep is not None and keep[i] else 0.0
        elif keep is not None and not keep[i]:
            continue
        else:
            value = float(values[i])
        metric = _result_labels(ls, rs, op, matching)
        if return_bool:
            metric = drop_name(metric)
        if matching.card == "one-to-one":
            if key in matched:
                raise QueryError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            matched[key] = None
        else:
            seen = matched.setdefault(key, set())
            assert seen is not None
            if metric in seen:
                raise QueryError("multiple matches for labels: grouping labels must ensure unique matches")
            seen.add(metric)
        out.append((metric, value))
    return out


def set_operation(op: str, lhs: Vector, rhs: Vector, matching: VectorMatching) -> Vector:
    sig = signature_fn(matching)
    if op == "and":
        if not lhs or not rhs:
            return []
        right = {sig(lb) for lb, _ in rhs}
        return [s for s in lhs if sig(s[0]) in right]
    if op == "or":
        if not lhs:
            return list(rhs)
        if not rhs:
            return list(lhs)
        left = {sig(lb) for lb, _ in lhs}
        return list(lhs) + [s for s in rhs if sig(s[0]) not in left]
    if not lhs or not rhs:  # unless
        return list(lhs)
    right = {sig(lb) for lb, _ in rhs}
    return [s for s in lhs if sig(s[0]) not in right]


def evaluate(ev: Evaluator, node: BinaryExpr, k: int) -> Value:
    """Evaluate ``node`` at step ``k``."""
    lhs = ev.eval(node.lhs, k)
    rhs = ev.eval(node.rhs, k)
    op = node.op
    if isinstance(lhs, float) and isinstance(rhs, float):
        return scalar_binop(op, lhs, rhs)
    if isinstance(rhs, float):
        assert isinstance(lhs, list)
        return check_unique(vector_scalar(op, lhs, rhs, False, node.return_bool))  # type: ignore[arg-type]
    if isinstance(lhs, float):
        assert isinstance(rhs, list)
        return check_unique(vector_scalar(op, rhs, lhs, True, node.return_bool))  # type: ignore[arg-type]
    assert isinstance(lhs, list) and isinstance(rhs, list) and node.matching is not None
    if op in ("and", "or", "unless"):
        return check_unique(set_operation(op, lhs, rhs, node.matching))  # type: ignore[arg-type]
    if op not in COMPARISON_OPS and op not in ARITHMETIC_OPS:
        raise QueryError(f"unsupported operator {op!r}", node.pos)
    return check_unique(vector_vector(op, lhs, rhs, node.matching, node.return_bool))  # type: ignore[arg-type]

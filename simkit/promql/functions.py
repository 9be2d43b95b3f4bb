"""PromQL functions, each a transcription of Prometheus 2.42's ``promql/functions.go``.

Range-vector functions live in :mod:`simkit.promql.rangefuncs`, the calendar ones in
:mod:`simkit.promql.datefuncs`; this module dispatches and holds the instant-vector ones.
Output labels drop ``__name__`` except for ``sort``, ``label_replace`` and ``label_join``, as in
Prometheus. Element-wise maths (trigonometry included) goes through numpy with IEEE semantics
(``ln(0) = -Inf``, ``sqrt(-1) = NaN``, ``asin(2) = NaN``) because Python's ``math`` would raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from simkit.errors import QueryError
from simkit.promql import datefuncs, labelfuncs
from simkit.promql.aggregate import histogram_quantile
from simkit.promql.ast import Call, Expr, VectorSelector, unwrap_parens
from simkit.promql.datefuncs import DATE_FUNCTIONS, go_seconds
from simkit.promql.rangefuncs import RANGE_FUNCTIONS, eval_range_func
from simkit.promql.types import Value, Vector, check_unique, drop_name, go_max, go_min

if TYPE_CHECKING:
    from simkit.promql.engine import Evaluator

F64 = npt.NDArray[np.float64]

_MATH: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    # Go computes v*Pi/180 and v*180/Pi in that order; so does numpy here
    "rad": lambda a: a * math.pi / 180,
    "deg": lambda a: a * 180 / math.pi,
}


def _scalar_arg(ev: Evaluator, node: Expr, k: int) -> float:
    val = ev.eval(node, k)
    assert isinstance(val, float)
    return val


def _vector_arg(ev: Evaluator, node: Expr, k: int) -> Vector:
    val = ev.eval(node, k)
    assert isinstance(val, list)
    return val  # type: ignore[return-value]


def _timestamp(ev: Evaluator, node: Call, k: int) -> Vector:
    arg = unwrap_parens(node.args[0])
    if isinstance(arg, VectorSelector):
        labels, _values, present, times = ev.instant_table(arg)
        return check_unique(
            [(drop_name(labels[i]), int(times[i, k]) / 1000) for i in np.flatnonzero(present[:, k])]
        )
    ts = int(ev.steps[k]) / 1000
    return check_unique([(drop_name(lb), ts) for lb, _ in _vector_arg(ev, arg, k)])


def _elementwise(vec: Vector, fn: Callable[[F64], F64]) -> Vector:
    if not vec:
        return []
    with np.errstate(all="ignore"):
        out = fn(np.array([v for _, v in vec], dtype=np.float64))
    return check_unique([(drop_name(lb), float(x)) for (lb, _), x in zip(vec, out, strict=True)])


def evaluate(ev: Evaluator, node: Call, k: int) -> Value:
    """Value of the function call ``node`` at step ``k``."""
    name = node.func
    args = node.args
    if name in RANGE_FUNCTIONS:
        return eval_range_func(ev, node, k)
    if name == "time":
        return int(ev.steps[k]) / 1000
    if name == "pi":
        return math.pi
    if name in DATE_FUNCTIONS:
        if not args:  # the evaluation time, as a one-element vector
            now: Vector = [((), datefuncs.date_field(name, go_seconds(ev.step_list[k])))]
            return now
        return datefuncs.date_vector(name, _vector_arg(ev, args[0], k))
    if name == "vector":
        out: Vector = [((), _scalar_arg(ev, args[0], k))]
        return out
    if name == "scalar":
        vec = _vector_arg(ev, args[0], k)
        return vec[0][1] if len(vec) == 1 else math.nan
    if name == "timestamp":
        return _timestamp(ev, node, k)
    if name == "histogram_quantile":
        return check_unique(histogram_quantile(_scalar_arg(ev, args[0], k), _vector_arg(ev, args[1], k)))
    if name in ("label_replace", "label_join"):
        strings = [str(ev.eval(a, k)) for a in args[1:]]
        vec = _vector_arg(ev, args[0], k)
        fn = labelfuncs.label_replace if name == "label_replace" else labelfuncs.label_join
        return check_unique(fn(vec, strings, node.pos))
    vec = _vector_arg(ev, args[0], k)
    if name == "absent":
        return [] if vec else [(labelfuncs.absent_labels(unwrap_parens(args[0])), 1.0)]
    if name in ("sort", "sort_desc"):
        return labelfuncs.sort_vector(vec, descending=name == "sort_desc")
    if name in _MATH:
        return _elementwise(vec, _MATH[name])
    if name == "round":
        to_nearest = _scalar_arg(ev, args[1], k) if len(args) > 1 else 1.0
        with np.errstate(all="ignore"):
            inverse = np.float64(1.0) / np.float64(to_nearest)
        return _elementwise(vec, lambda a: np.floor(a * inverse + 0.5) / inverse)
    if name == "clamp":
        lo, hi = _scalar_arg(ev, args[1], k), _scalar_arg(ev, args[2], k)
        if hi < lo:
            return []
        return check_unique([(drop_name(lb), go_max(lo, go_min(hi, v))) for lb, v in vec])
    if name == "clamp_min":
        lo = _scalar_arg(ev, args[1], k)
        return check_unique([(drop_name(lb), go_max(v, lo)) for lb, v in vec])
    if name == "clamp_max":
        hi = _scalar_arg(ev, args[1], k)
        return check_unique([(drop_name(lb), go_min(v, hi)) for lb, v in vec])
    raise QueryError(f"unsupported function {name!r}", node.pos)

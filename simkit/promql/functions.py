"""PromQL functions, each a transcription of Prometheus 2.42's ``promql/functions.go``.

Range-vector functions (``rate``, ``*_over_time``, ...) get, per series and step, the window's
ms timestamps and values (staleness markers already removed) and return a float or None (no
output for that series). Output labels drop ``__name__`` except for ``last_over_time``, ``sort``,
``label_replace`` and ``label_join``, as in Prometheus. Element-wise maths goes through numpy with
IEEE semantics (``ln(0) = -Inf``, ``sqrt(-1) = NaN``) because Python's ``math`` would raise.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from simkit.errors import QueryError
from simkit.promql import labelfuncs
from simkit.promql.aggregate import histogram_quantile, quantile
from simkit.promql.ast import Call, Expr, MatrixSelector, VectorSelector, unwrap_parens
from simkit.promql.types import MatrixSeries, Value, Vector, check_unique, drop_name, go_max, go_min

if TYPE_CHECKING:
    from simkit.promql.engine import Evaluator

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
RangeFunc = Callable[[I64, F64, int, MatrixSelector, float], "float | None"]


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Neumaier-compensated summation (Prometheus' kahanSumInc)."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def extrapolated_rate(tms: I64, v: F64, ts: int, ms: MatrixSelector, is_counter: bool,
                      is_rate: bool) -> float | None:
    """rate/increase/delta: 2.42's extrapolatedRate, zero-point clamp before the threshold test."""
    n = len(v)
    if n < 2:
        return None
    offset = ms.selector.offset_ms
    first_v = float(v[0])
    result = float(v[-1]) - first_v
    if is_counter and (n <= 16 or bool((v[1:] < v[:-1]).any())):
        prev = first_v
        for cur in v[1:].tolist():
            if cur < prev:
                result += prev
            prev = cur
    return _extrapolate(int(tms[0]), int(tms[-1]), first_v, result, n, ts - (ms.range_ms + offset),
                        ts - offset, ms.range_ms, is_counter, is_rate)


def _extrapolate(first_t: int, last_t: int, first_v: float, result: float, n: int, range_start: int,
                 range_end: int, range_ms: int, is_counter: bool, is_rate: bool) -> float:
    """The extrapolation step of extrapolatedRate: ``result`` (last - first + resets) scaled up
    to the whole window ``[range_start, range_end]`` (ms) from the ``n`` samples' time span."""
    duration_to_start = (first_t - range_start) / 1000
    duration_to_end = (range_end - last_t) / 1000
    sampled_interval = (last_t - first_t) / 1000
    average = sampled_interval / (n - 1)
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled_interval * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average * 1.1
    interval = sampled_interval
    interval += duration_to_start if duration_to_start < threshold else average / 2
    interval += duration_to_end if duration_to_end < threshold else average / 2
    factor = interval / sampled_interval
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


_EXTRAPOLATED = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}


def extrapolated_from_buffers(ev: Evaluator, ms: MatrixSelector, k: int, is_counter: bool,
                              is_rate: bool) -> Vector | None:
    """rate/increase/delta read straight from the series' sample buffers: a binary search for the
    window and a few samples per series, no arrays. The metric pipeline's queries are mostly this.

    Same numbers as :func:`extrapolated_rate` (same ``_extrapolate``): timestamps are stored as
    whole-ms seconds and ``ms / 1000`` gives exactly the stored float, so the window bounds compare
    as in ms; counter resets come from the store's drop index. None (use the array path) when a
    series holds a NaN (staleness markers are dropped from windows there).
    """
    sel = ms.selector
    series = ev.selected(sel)
    for s in series:
        if s.has_nan:
            return None
    range_end = ev.ref_ms(sel, k)
    range_ms = ms.range_ms
    range_start = range_end - range_ms
    lo_t, hi_t = range_start / 1000, range_end / 1000
    out: Vector = []
    for s in series:
        t, v = s.buffers()
        a = bisect_left(t, lo_t)
        b = bisect_right(t, hi_t, a)
        n = b - a
        if n < 2:
            continue
        first_v = v[a]
        result = v[b - 1] - first_v
        drops = s.drops
        if is_counter and drops and drops[-1] > a:
            for r in drops[bisect_right(drops, a) : bisect_left(drops, b)]:
                result += v[r - 1]
        value = _extrapolate(round(t[a] * 1000.0), round(t[b - 1] * 1000.0), first_v, result, n,
                             range_start, range_end, range_ms, is_counter, is_rate)
        out.append((drop_name(s.labels), value))
    # one metric name (the selector's) means dropping it cannot make two label sets equal
    return out if sel.name is not None else check_unique(out)


def instant_value(tms: I64, v: F64, is_rate: bool) -> float | None:
    """irate/idelta: the last two samples only."""
    if len(v) < 2:
        return None
    last, prev = float(v[-1]), float(v[-2])
    result = last if is_rate and last < prev else last - prev
    interval = int(tms[-1]) - int(tms[-2])
    if interval == 0:
        return None
    if is_rate:
        result /= interval / 1000
    return result


def _avg(values: list[float]) -> float:
    mean = c = count = 0.0
    for x in values:
        count += 1
        if math.isinf(mean):
            if math.isinf(x) and (mean > 0) == (x > 0):
                continue
            if not math.isinf(x) and not math.isnan(x):
                continue
        mean, c = kahan_inc(x / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def _sum(values: list[float]) -> float:
    total = c = 0.0
    for x in values:
        total, c = kahan_inc(x, total, c)
    return total + c


def _stdvar(values: list[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for x in values:
        count += 1
        delta = x - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (x - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _extreme(values: list[float], better: Callable[[float, float], bool]) -> float:
    best = values[0]
    for x in values:
        if better(x, best) or math.isnan(best):
            best = x
    return best


def _changes(values: list[float], resets: bool) -> float:
    count = 0
    prev = values[0]
    for cur in values[1:]:
        if resets:
            count += cur < prev
        elif cur != prev and not (math.isnan(cur) and math.isnan(prev)):
            count += 1
        prev = cur
    return float(count)


def _deriv(tms: I64, v: F64) -> float | None:
    """Least-squares slope with x relative to the first sample (Prometheus' linearRegression)."""
    if len(v) < 2:
        return None
    values = v.tolist()
    if all(x == values[0] for x in values):
        return math.nan if math.isinf(values[0]) else 0.0
    x = (tms - tms[0]).astype(np.float64) / 1e3
    n = float(len(values))
    sum_x, sum_y = math.fsum(x.tolist()), math.fsum(values)
    sum_xy = math.fsum((x * v).tolist())
    sum_x2 = math.fsum((x * x).tolist())
    cov = sum_xy - sum_x * sum_y / n
    var = sum_x2 - sum_x * sum_x / n
    with np.errstate(all="ignore"):
        return float(np.float64(cov) / np.float64(var))


_RANGE_FUNCS: dict[str, RangeFunc] = {
    "rate": lambda t, v, ts, ms, p: extrapolated_rate(t, v, ts, ms, True, True),
    "increase": lambda t, v, ts, ms, p: extrapolated_rate(t, v, ts, ms, True, False),
    "delta": lambda t, v, ts, ms, p: extrapolated_rate(t, v, ts, ms, False, False),
    "irate": lambda t, v, ts, ms, p: instant_value(t, v, True),
    "idelta": lambda t, v, ts, ms, p: instant_value(t, v, False),
    "deriv": lambda t, v, ts, ms, p: _deriv(t, v),
    "changes": lambda t, v, ts, ms, p: _changes(v.tolist(), False),
    "resets": lambda t, v, ts, ms, p: _changes(v.tolist(), True),
    "avg_over_time": lambda t, v, ts, ms, p: _avg(v.tolist()),
    "sum_over_time": lambda t, v, ts, ms, p: _sum(v.tolist()),
    "count_over_time": lambda t, v, ts, ms, p: float(len(v)),
    "last_over_time": lambda t, v, ts, ms, p: float(v[-1]),
    "present_over_time": lambda t, v, ts, ms, p: 1.0,
    "min_over_time": lambda t, v, ts, ms, p: _extreme(v.tolist(), lambda a, b: a < b),
    "max_over_time": lambda t, v, ts, ms, p: _extreme(v.tolist(), lambda a, b: a > b),
    "stdvar_over_time": lambda t, v, ts, ms, p: _stdvar(v.tolist()),
    "stddev_over_time": lambda t, v, ts, ms, p: math.sqrt(_stdvar(v.tolist())),
    "quantile_over_time": lambda t, v, ts, ms, p: quantile(p, v.tolist()),
}

_MATH: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "exp": np.exp, "ln": np.log,
    "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt, "sgn": np.sign,
}


def _scalar_arg(ev: Evaluator, node: Expr, k: int) -> float:
    val = ev.eval(node, k)
    assert isinstance(val, float)
    return val


def _vector_arg(ev: Evaluator, node: Expr, k: int) -> Vector:
    val = ev.eval(node, k)
    assert isinstance(val, list)
    return val  # type: ignore[return-value]


def _eval_range_func(ev: Evaluator, node: Call, k: int) -> Vector:
    name = node.func
    param = _scalar_arg(ev, node.args[0], k) if name == "quantile_over_time" else 0.0
    ms = unwrap_parens(node.args[-1])
    if not isinstance(ms, MatrixSelector):
        raise QueryError(f"unsupported argument to {name!r}: only range selectors", node.args[-1].pos)
    if name in _EXTRAPOLATED:
        fast = extrapolated_from_buffers(ev, ms, k, *_EXTRAPOLATED[name])
        if fast is not None:
            return fast
    # the time the window ends at, before the offset: the step's, or the @ modifier's (Prometheus
    # folds @ into the offset, so its extrapolatedRate measures the window from the @ time too)
    ts = ev.ref_ms(ms.selector, k) + ms.selector.offset_ms
    matrix: list[MatrixSeries] = ev.eval_matrix(ms, k)
    if name == "absent_over_time":
        return [] if matrix else [(labelfuncs.absent_labels(ms.selector), 1.0)]
    fn = _RANGE_FUNCS[name]
    keep_name = name == "last_over_time"
    out: Vector = []
    for labels, tms, v in matrix:
        value = fn(tms, v, ts, ms, param)
        if value is not None:
            out.append((labels if keep_name else drop_name(labels), value))
    return check_unique(out)


def _timestamp(ev: Evaluator, node: Call, k: int) -> Vector:
    arg = unwrap_parens(node.args[0])
    if isinstance(arg, VectorSelector):
        labels, _values, present, times = ev.instant_table(arg)
        return check_unique([(drop_name(labels[i]), int(times[i, k]) / 1000)
                             for i in np.flatnonzero(present[:, k])])
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
    if name in _RANGE_FUNCS or name == "absent_over_time":
        return _eval_range_func(ev, node, k)
    if name == "time":
        return int(ev.steps[k]) / 1000
    if name == "vector":
        out: Vector = [((), _scalar_arg(ev, args[0], k))]
        return out
    if name == "scalar":
        vec = _vector_arg(ev, args[0], k)
        return vec[0][1] if len(vec) == 1 else math.nan
    if name == "timestamp":
        return _timestamp(ev, node, k)
    if name == "histogram_quantile":
        return check_unique(histogram_quantile(_scalar_arg(ev, args[0], k),
                                                         _vector_arg(ev, args[1], k)))
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

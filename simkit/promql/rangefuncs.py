"""Range-vector functions (``rate``, ``*_over_time``, ``predict_linear``, ...), as 2.42's functions.go.

Each gets, per series and step, the window's ms timestamps and values (staleness markers already
removed; a subquery's points likewise) and returns a float or None (no output for that series).
Output labels drop ``__name__`` except for ``last_over_time``. The window is a range selector's
or a subquery's (:meth:`simkit.promql.engine.Evaluator.eval_range_arg`); what a function needs of
it besides the samples (its end and length, the step's time, scalar parameters) comes in a
:class:`Window`.
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
from simkit.promql.aggregate import quantile
from simkit.promql.ast import Call, Expr, MatrixSelector, SubqueryExpr, unwrap_parens
from simkit.promql.types import MatrixSeries, Vector, check_unique, drop_name

if TYPE_CHECKING:
    from simkit.promql.engine import Evaluator

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class Window:
    """What a range function knows besides the samples: where the window ends (ms, after
    ``offset`` and ``@``), its length, the evaluation step's time, and the scalar arguments."""

    __slots__ = ("end_ms", "range_ms", "step_ms", "params")

    def __init__(self, end_ms: int, range_ms: int, step_ms: int, params: list[float]) -> None:
        self.end_ms = end_ms
        self.range_ms = range_ms
        self.step_ms = step_ms
        self.params = params


RangeFunc = Callable[[I64, F64, Window], "float | None"]


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Neumaier-compensated summation (Prometheus' kahanSumInc)."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def extrapolated_rate(tms: I64, v: F64, w: Window, is_counter: bool, is_rate: bool) -> float | None:
    """rate/increase/delta: 2.42's extrapolatedRate, zero-point clamp before the threshold test."""
    n = len(v)
    if n < 2:
        return None
    first_v = float(v[0])
    result = float(v[-1]) - first_v
    if is_counter and (n <= 16 or bool((v[1:] < v[:-1]).any())):
        prev = first_v
        for cur in v[1:].tolist():
            if cur < prev:
                result += prev
            prev = cur
    return _extrapolate(
        int(tms[0]),
        int(tms[-1]),
        first_v,
        result,
        n,
        w.end_ms - w.range_ms,
        w.end_ms,
        w.range_ms,
        is_counter,
        is_rate,
    )


def _extrapolate(
    first_t: int,
    last_t: int,
    first_v: float,
    result: float,
    n: int,
    range_start: int,
    range_end: int,
    range_ms: int,
    is_counter: bool,
    is_rate: bool,
) -> float:
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


def extrapolate_many(
    *,
    first_t: npt.ArrayLike,
    last_t: npt.ArrayLike,
    first_v: npt.ArrayLike,
    result: npt.ArrayLike,
    n: npt.ArrayLike,
    range_start: npt.ArrayLike,
    range_end: npt.ArrayLike,
    is_counter: bool = True,
    is_rate: bool = False,
) -> F64:
    """:func:`_extrapolate` over arrays, element for element (``simkit plan`` applies it to
    thousands of paths at once). The scalar form stays for the engine's hot path, where numpy's
    per-call overhead would cost more than the arithmetic; tests/unit/test_promql_array_forms.py
    checks that the two agree on random and edge-case inputs."""
    ft, lt = np.asarray(first_t, np.float64), np.asarray(last_t, np.float64)
    fv, res = np.asarray(first_v, np.float64), np.asarray(result, np.float64)
    rs, re_ = np.asarray(range_start, np.float64), np.asarray(range_end, np.float64)
    range_ms = re_ - rs
    duration_to_start = (ft - rs) / 1000
    duration_to_end = (re_ - lt) / 1000
    sampled_interval = (lt - ft) / 1000
    average = sampled_interval / (np.asarray(n, np.float64) - 1)
    if is_counter:
        with np.errstate(divide="ignore", invalid="ignore"):
            to_zero = sampled_interval * (fv / res)
        clamp = (res > 0) & (fv >= 0) & (to_zero < duration_to_start)
        duration_to_start = np.where(clamp, to_zero, duration_to_start)
    threshold = average * 1.1
    interval = (
        sampled_interval
        + np.where(duration_to_start < threshold, duration_to_start, average / 2)
        + np.where(duration_to_end < threshold, duration_to_end, average / 2)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = interval / sampled_interval
    if is_rate:
        factor = factor / (range_ms / 1000)
    return np.asarray(res * factor, np.float64)


_EXTRAPOLATED = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}


def extrapolated_from_buffers(
    ev: Evaluator, ms: MatrixSelector, k: int, is_counter: bool, is_rate: bool
) -> Vector | None:
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
        value = _extrapolate(
            round(t[a] * 1000.0),
            round(t[b - 1] * 1000.0),
            first_v,
            result,
            n,
            range_start,
            range_end,
            range_ms,
            is_counter,
            is_rate,
        )
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
    return total if math.isinf(total) else total + c  # Inf + the compensation's NaN would be NaN


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


def linear_regression(tms: I64, v: F64, intercept_ms: int) -> tuple[float, float]:
    """Least-squares (slope, intercept at ``intercept_ms``), Kahan-summed like 2.42's linearRegression."""
    values = v.tolist()
    init = values[0]
    if all(y == init for y in values):
        return (math.nan, math.nan) if math.isinf(init) else (0.0, init)
    n = sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    for t, y in zip(tms.tolist(), values, strict=True):
        n += 1.0
        x = (t - intercept_ms) / 1e3
        sum_x, c_x = kahan_inc(x, sum_x, c_x)
        sum_y, c_y = kahan_inc(y, sum_y, c_y)
        sum_xy, c_xy = kahan_inc(x * y, sum_xy, c_xy)
        sum_x2, c_x2 = kahan_inc(x * x, sum_x2, c_x2)
    sum_x, sum_y, sum_xy, sum_x2 = sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2
    cov = sum_xy - sum_x * sum_y / n
    var = sum_x2 - sum_x * sum_x / n
    with np.errstate(all="ignore"):  # var 0 (one timestamp twice cannot happen, but IEEE anyway)
        slope = float(np.float64(cov) / np.float64(var))
    return slope, sum_y / n - slope * sum_x / n


def _deriv(tms: I64, v: F64) -> float | None:
    if len(v) < 2:
        return None
    return linear_regression(tms, v, int(tms[0]))[0]  # x relative to the first sample: precision


def _predict_linear(tms: I64, v: F64, w: Window) -> float | None:
    if len(v) < 2:
        return None
    slope, intercept = linear_regression(tms, v, w.step_ms)  # at the step's time, not @'s
    return slope * w.params[0] + intercept


def _holt_winters(tms: I64, v: F64, w: Window) -> float | None:
    """Double exponential smoothing, 2.42's funcHoltWinters (factors checked by the caller)."""
    sf, tf = w.params
    values = v.tolist()
    if len(values) < 2:
        return None
    s0, s1, b = 0.0, values[0], values[1] - values[0]
    for i in range(1, len(values)):
        x = sf * values[i]
        if i > 1:  # calcTrendValue(i - 1, ...): the first trend is the raw difference
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


_RANGE_FUNCS: dict[str, RangeFunc] = {
    "rate": lambda t, v, w: extrapolated_rate(t, v, w, True, True),
    "increase": lambda t, v, w: extrapolated_rate(t, v, w, True, False),
    "delta": lambda t, v, w: extrapolated_rate(t, v, w, False, False),
    "irate": lambda t, v, w: instant_value(t, v, True),
    "idelta": lambda t, v, w: instant_value(t, v, False),
    "deriv": lambda t, v, w: _deriv(t, v),
    "predict_linear": _predict_linear,
    "holt_winters": _holt_winters,
    "changes": lambda t, v, w: _changes(v.tolist(), False),
    "resets": lambda t, v, w: _changes(v.tolist(), True),
    "avg_over_time": lambda t, v, w: _avg(v.tolist()),
    "sum_over_time": lambda t, v, w: _sum(v.tolist()),
    "count_over_time": lambda t, v, w: float(len(v)),
    "last_over_time": lambda t, v, w: float(v[-1]),
    "present_over_time": lambda t, v, w: 1.0,
    "min_over_time": lambda t, v, w: _extreme(v.tolist(), lambda a, b: a < b),
    "max_over_time": lambda t, v, w: _extreme(v.tolist(), lambda a, b: a > b),
    "stdvar_over_time": lambda t, v, w: _stdvar(v.tolist()),
    "stddev_over_time": lambda t, v, w: math.sqrt(_stdvar(v.tolist())),
    "quantile_over_time": lambda t, v, w: quantile(w.params[0], v.tolist()),
}
RANGE_FUNCTIONS = frozenset([*_RANGE_FUNCS, "absent_over_time"])


def _scalar(ev: Evaluator, node: Expr, k: int) -> float:
    val = ev.eval(node, k)
    assert isinstance(val, float)
    return val


def _check_factors(params: list[float]) -> None:
    sf, tf = params
    if sf <= 0 or sf >= 1:
        raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if tf <= 0 or tf >= 1:
        raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")


def eval_range_func(ev: Evaluator, node: Call, k: int) -> Vector:
    """A call of a range-vector function at step ``k``."""
    name = node.func
    if name in _EXTRAPOLATED:  # rate/increase/delta of a range selector: most Metric queries
        first = unwrap_parens(node.args[0])
        if type(first) is MatrixSelector:
            fast = extrapolated_from_buffers(ev, first, k, *_EXTRAPOLATED[name])
            if fast is not None:
                return fast
    arg: Expr | None = None
    params: list[float] = []
    for a in node.args:
        if a.type == "matrix":
            arg = unwrap_parens(a)
        else:
            params.append(_scalar(ev, a, k))
    if not isinstance(arg, MatrixSelector | SubqueryExpr):
        raise QueryError(
            f"unsupported argument to {name!r}: a range selector or subquery is needed", node.pos
        )
    sel = arg.selector if isinstance(arg, MatrixSelector) else arg
    matrix: list[MatrixSeries] = ev.eval_range_arg(arg, k)
    if name == "absent_over_time":
        return [] if matrix else [(labelfuncs.absent_labels(arg), 1.0)]
    if name == "holt_winters" and matrix:
        _check_factors(params)
    window = Window(ev.ref_ms(sel, k), arg.range_ms, ev.step_list[k], params)
    fn = _RANGE_FUNCS[name]
    keep_name = name == "last_over_time"
    out: Vector = []
    for labels, tms, v in matrix:
        value = fn(tms, v, window)
        if value is not None:
            out.append((labels if keep_name else drop_name(labels), value))
    return check_unique(out)

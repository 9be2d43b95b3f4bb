"""PromQL evaluation over a :class:`~simkit.tsdb.TSDB` with Prometheus 2.42's semantics.

Time is integer milliseconds throughout, like Prometheus, so that window boundaries and the
extrapolation arithmetic of ``rate`` give bit-identical durations. A query is evaluated step by
step (an instant query is a one-step range query), but every selector is resolved once per query:
its series are selected once and, for all steps at once, ``np.searchsorted`` finds the sample each
step sees (instant selectors) or the window bounds (range selectors). Per-step work is then slicing.
A subquery is evaluated once for all steps, by a child evaluator at the subquery's own steps
(:meth:`Evaluator.subquery_table`). ``rate``/``increase``/``delta`` (what Metric queries mostly
are) skip the arrays when they can: a binary search in each series' sample buffers and a few
samples per window suffice (:func:`simkit.promql.rangefuncs.extrapolated_from_buffers`).

Selection rules (2.42): an instant selector at time ``t`` takes the newest sample with
``t - offset - lookback <= ts <= t - offset`` unless it is a staleness marker; a range selector
``[r]`` takes every non-stale sample with ``t - offset - r <= ts <= t - offset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import simkit.promql.aggregate as aggregate
import simkit.promql.binary as binary
import simkit.promql.functions as functions
from simkit.errors import QueryError
from simkit.promql.ast import (
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
    VectorSelector,
    unwrap_parens,
)
from simkit.promql.parser import parse_cached
from simkit.promql.types import Labels, MatrixSeries, Value, Vector, check_unique, drop_name
from simkit.promql.values import InstantSample, QueryResult, RangeSeries
from simkit.tsdb import TSDB, Series

STALE_NAN_BITS = 0x7FF0000000000002
MAX_POINTS = 11_000
# A subquery without a step (``x[1h:]``) uses Prometheus' global evaluation_interval, 1m by default.
DEFAULT_SUBQUERY_STEP_MS = 60_000
MAX_SUBQUERY_STEPS = 1_000_000  # a few minutes of evaluation here; a bad step, not a query
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass
class _SeriesArrays:
    """A series as the engine reads it: ms timestamps, values, and the non-stale subset."""

    labels: Labels
    tms: I64
    v: F64
    stale: npt.NDArray[np.bool_] | None  # None when the series has no staleness marker
    range_tms: I64
    range_v: F64


_ARRAYS: dict[int, tuple[object, _SeriesArrays]] = {}


def series_arrays(series: Series) -> _SeriesArrays:
    """The engine's view of a series, cached until the series grows (its arrays change)."""
    t, v = series.arrays()
    hit = _ARRAYS.get(id(series))
    if hit is not None and hit[0] is t:
        return hit[1]
    tms = np.rint(t * 1000.0).astype(np.int64)
    stale_mask = v.view(np.uint64) == STALE_NAN_BITS
    if stale_mask.any():
        keep = ~stale_mask
        data = _SeriesArrays(series.labels, tms, v, stale_mask, tms[keep], v[keep])
    else:
        data = _SeriesArrays(series.labels, tms, v, None, tms, v)
    if len(_ARRAYS) > 50_000:  # bound memory across many short-lived TSDBs (bench sweeps)
        _ARRAYS.clear()
    _ARRAYS[id(series)] = (t, data)
    return data


_MAX_MS = 2**62  # timestamps beyond this (about 146 million years) overflow the int64 step grid


def _to_ms(t: float) -> int:
    if not -_MAX_MS <= t * 1000.0 <= _MAX_MS:  # also false for NaN
        raise QueryError(f"timestamp {t!r} is out of range")
    return int(round(t * 1000.0))


def range_problem(start: float, end: float, step: float) -> tuple[str, str] | None:
    """Prometheus' limits on a range query, as (parameter, message) or None: the one rule the
    engine and the HTTP API both enforce (the API prefixes ``invalid parameter``)."""
    start_ms, end_ms, step_ms = _to_ms(start), _to_ms(end), _to_ms(step)
    if end_ms < start_ms:
        return "end", "end timestamp must not be before start time"
    if step_ms <= 0:
        return (
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        )
    if (end_ms - start_ms) // step_ms > MAX_POINTS:  # Prometheus: end.Sub(start)/step > 11000
        return "", (
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    return None


class Evaluator:
    """Evaluates one parsed expression at the given steps (ms), caching selector resolution."""

    def __init__(self, db: TSDB, steps: I64, start_ms: int, end_ms: int, lookback_ms: int) -> None:
        self.db = db
        self.steps = steps
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.lookback_ms = lookback_ms
        self.step_list: list[int] = steps.tolist()
        self._selected: dict[int, list[Series]] = {}
        self._instant: dict[int, tuple[list[Labels], F64, npt.NDArray[np.bool_], I64]] = {}
        self._range: dict[int, tuple[list[_SeriesArrays], I64, I64]] = {}
        self._subqueries: dict[int, tuple[list[MatrixSeries], I64, I64]] = {}

    # -- selectors ------------------------------------------------------------------------------

    def _refs(self, sel: VectorSelector | SubqueryExpr) -> I64:
        if sel.at_edge is not None:
            at = self.start_ms if sel.at_edge == "start" else self.end_ms
            return np.full(len(self.steps), at - sel.offset_ms, dtype=np.int64)
        if sel.at_ms is not None:
            return np.full(len(self.steps), sel.at_ms - sel.offset_ms, dtype=np.int64)
        return self.steps - sel.offset_ms

    def selected(self, sel: VectorSelector) -> list[Series]:
        """The selector's series in label order (``TSDB.select``'s order), once per evaluation."""
        key = id(sel)
        hit = self._selected.get(key)
        if hit is None:
            hit = self._selected[key] = self.db.select(sel.matchers)
        return hit

    def ref_ms(self, sel: VectorSelector | SubqueryExpr, k: int) -> int:
        """The newest sample time the selector (or subquery) may see at step ``k``: ``_refs(sel)[k]``."""
        if sel.at_edge is not None:
            at = self.start_ms if sel.at_edge == "start" else self.end_ms
        elif sel.at_ms is not None:
            at = sel.at_ms
        else:
            at = self.step_list[k]
        return at - sel.offset_ms

    def _select(self, sel: VectorSelector) -> list[_SeriesArrays]:
        return [series_arrays(s) for s in self.selected(sel)]

    def instant_table(self, sel: VectorSelector) -> tuple[list[Labels], F64, npt.NDArray[np.bool_], I64]:
        """For every selected series and step: value, presence and the sample's timestamp."""
        key = id(sel)
        hit = self._instant.get(key)
        if hit is not None:
            return hit
        refs = self._refs(sel)
        series = self._select(sel)
        n, m = len(series), len(refs)
        values = np.zeros((n, m))
        present = np.zeros((n, m), dtype=bool)
        times = np.zeros((n, m), dtype=np.int64)
        for i, s in enumerate(series):
            if len(s.tms) == 0:
                continue
            idx = np.searchsorted(s.tms, refs, side="right") - 1
            safe = np.maximum(idx, 0)
            ts = s.tms[safe]
            ok = (idx >= 0) & (ts >= refs - self.lookback_ms)
            if s.stale is not None:
                ok &= ~s.stale[safe]
            values[i] = s.v[safe]
            present[i] = ok
            times[i] = ts
        table = ([s.labels for s in series], values, present, times)
        self._instant[key] = table
        return table

    def range_table(self, ms: MatrixSelector) -> tuple[list[_SeriesArrays], I64, I64]:
        """For every selected series and step: the [lo, hi) sample indexes of the window."""
        key = id(ms)
        hit = self._range.get(key)
        if hit is not None:
            return hit
        refs = self._refs(ms.selector)
        series = self._select(ms.selector)
        lo = np.zeros((len(series), len(refs)), dtype=np.int64)
        hi = np.zeros((len(series), len(refs)), dtype=np.int64)
        for i, s in enumerate(series):
            lo[i] = np.searchsorted(s.range_tms, refs - ms.range_ms, side="left")
            hi[i] = np.searchsorted(s.range_tms, refs, side="right")
        table = (series, lo, hi)
        self._range[key] = table
        return table

    def subquery_table(self, sq: SubqueryExpr) -> tuple[list[MatrixSeries], I64, I64]:
        """The subquery's points for all steps at once, and each step's [lo, hi) window indexes.

        Prometheus evaluates the inner expression once, as a range query over every multiple of
        the subquery's step from the earliest window start to the latest window end (``@`` and
        ``offset`` already applied), then cuts each step's window ``[end - range, end]`` out of
        that matrix. Same here, with a child evaluator that keeps the query's start and end (they
        are what ``@ start()`` and ``@ end()`` mean at any depth).
        """
        key = id(sq)
        hit = self._subqueries.get(key)
        if hit is not None:
            return hit
        refs = self._refs(sq)
        step = sq.step_ms or DEFAULT_SUBQUERY_STEP_MS
        first = -(-(int(refs.min()) - sq.range_ms) // step) * step  # first multiple of step in the window
        count = (int(refs.max()) - first) // step + 1
        if count > MAX_SUBQUERY_STEPS:  # Prometheus would grind on (up to its 50M-sample limit)
            raise QueryError(
                f"subquery would be evaluated at {count} steps, more than simkit's limit of "
                f"{MAX_SUBQUERY_STEPS:,}: use a coarser step or a shorter range",
                sq.pos,
            )
        inner = np.arange(first, int(refs.max()) + 1, step, dtype=np.int64)
        child = Evaluator(self.db, inner, self.start_ms, self.end_ms, self.lookback_ms)
        points: dict[Labels, tuple[list[int], list[float]]] = {}
        for j, t in enumerate(inner.tolist()):
            val = child.eval(sq.expr, j)
            assert isinstance(val, list)
            for lb, v in val:  # type: ignore[misc]
                entry = points.get(lb)
                if entry is None:
                    entry = points[lb] = ([], [])
                entry[0].append(t)
                entry[1].append(v)
        series: list[MatrixSeries] = [
            (lb, np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64))
            for lb, (ts, vs) in points.items()
        ]
        lo = np.zeros((len(series), len(refs)), dtype=np.int64)
        hi = np.zeros((len(series), len(refs)), dtype=np.int64)
        for i, (_, tms, _) in enumerate(series):
            lo[i] = np.searchsorted(tms, refs - sq.range_ms, side="left")
            hi[i] = np.searchsorted(tms, refs, side="right")
        table = (series, lo, hi)
        self._subqueries[key] = table
        return table

    def eval_subquery(self, sq: SubqueryExpr, k: int) -> list[MatrixSeries]:
        series, lo, hi = self.subquery_table(sq)
        out: list[MatrixSeries] = []
        for i, (labels, tms, v) in enumerate(series):
            a, b = int(lo[i, k]), int(hi[i, k])
            if b > a:
                out.append((labels, tms[a:b], v[a:b]))
        return out

    def eval_range_arg(self, node: MatrixSelector | SubqueryExpr, k: int) -> list[MatrixSeries]:
        """A range-vector argument's series at step ``k`` (a range selector's or a subquery's)."""
        if isinstance(node, MatrixSelector):
            return self.eval_matrix(node, k)
        return self.eval_subquery(node, k)

    def eval_vector_selector(self, sel: VectorSelector, k: int) -> Vector:
        labels, values, present, _ = self.instant_table(sel)
        col = present[:, k]
        vals = values[:, k]
        return [(labels[i], float(vals[i])) for i in np.flatnonzero(col)]

    def eval_matrix(self, ms: MatrixSelector, k: int) -> list[MatrixSeries]:
        series, lo, hi = self.range_table(ms)
        out: list[MatrixSeries] = []
        for i, s in enumerate(series):
            a, b = int(lo[i, k]), int(hi[i, k])
            if b > a:
                out.append((s.labels, s.range_tms[a:b], s.range_v[a:b]))
        return out

    # -- expressions ----------------------------------------------------------------------------

    def eval(self, node: Expr, k: int) -> Value:
        """Value of ``node`` at step ``k``: float (scalar), str, Vector or list of MatrixSeries."""
        # the usual node types first, by exact type (cheaper than a chain of isinstance)
        if type(node) is Call:
            return functions.evaluate(self, node, k)
        if type(node) is AggregateExpr:
            return aggregate.evaluate(self, node, k)
        if type(node) is BinaryExpr:
            return binary.evaluate(self, node, k)
        if isinstance(node, NumberLiteral):
            return node.value
        if isinstance(node, StringLiteral):
            return node.value
        if isinstance(node, ParenExpr):
            return self.eval(node.expr, k)
        if isinstance(node, VectorSelector):
            return self.eval_vector_selector(node, k)
        if isinstance(node, MatrixSelector):
            return self.eval_matrix(node, k)
        if isinstance(node, SubqueryExpr):
            return self.eval_subquery(node, k)
        if isinstance(node, UnaryExpr):
            val = self.eval(node.expr, k)
            if node.op == "+":
                return val
            if isinstance(val, float):
                return -val
            assert isinstance(val, list)
            return check_unique([(drop_name(lb), -v) for lb, v in val])  # type: ignore[misc]
        if isinstance(node, BinaryExpr):
            return binary.evaluate(self, node, k)
        if isinstance(node, AggregateExpr):
            return aggregate.evaluate(self, node, k)
        if isinstance(node, Call):
            return functions.evaluate(self, node, k)
        raise QueryError(f"unsupported expression {type(node).__name__}", node.pos)


def _prepare(query: str | Expr) -> tuple[Expr, str | None]:
    if isinstance(query, Expr):
        return query, None
    return parse_cached(query), query


def instant_query(db: TSDB, query: str | Expr, time: float, lookback: float = 300.0) -> QueryResult:
    """Evaluate ``query`` at ``time`` (Unix seconds) like ``/api/v1/query``."""
    expr, _text = _prepare(query)
    t = _to_ms(time)
    ev = Evaluator(db, np.array([t], dtype=np.int64), t, t, _to_ms(lookback))
    val = ev.eval(expr, 0)
    when = t / 1000.0
    if isinstance(val, float):
        return QueryResult("scalar", when, scalar=val)
    if isinstance(val, str):
        return QueryResult("string", when, string=val)
    if expr.type == "matrix":
        series: list[MatrixSeries] = val  # type: ignore[assignment]
        matrix = [RangeSeries(dict(lb), tms / 1000.0, np.array(v, dtype=np.float64)) for lb, tms, v in series]
        return QueryResult("matrix", when, matrix=matrix)
    return QueryResult("vector", when, vector=[InstantSample(dict(lb), v) for lb, v in val])  # type: ignore[misc]


def range_query(
    db: TSDB, query: str | Expr, start: float, end: float, step: float, lookback: float = 300.0
) -> QueryResult:
    """Evaluate ``query`` at ``start, start+step, ... <= end`` like ``/api/v1/query_range``."""
    expr, text = _prepare(query)
    problem = range_problem(start, end, step)
    if problem:
        raise QueryError(problem[1])
    start_ms, end_ms, step_ms = _to_ms(start), _to_ms(end), _to_ms(step)
    if expr.type not in ("scalar", "vector"):
        kind = "range vector" if expr.type == "matrix" else expr.type
        raise QueryError(
            f"invalid expression type {kind!r} for range query, must be scalar or instant vector", 0, text
        )
    steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    ev = Evaluator(db, steps, start_ms, end_ms, _to_ms(lookback))
    points: dict[Labels, tuple[list[int], list[float]]] = {}
    for k, ts in enumerate(steps.tolist()):
        val = ev.eval(expr, k)
        samples: Sequence[tuple[Labels, float]] = [((), val)] if isinstance(val, float) else val  # type: ignore[assignment]
        for lb, v in samples:
            entry = points.get(lb)
            if entry is None:
                entry = points[lb] = ([], [])
            entry[0].append(ts)
            entry[1].append(v)
    matrix = [
        RangeSeries(dict(lb), np.array(ts_list, dtype=np.float64) / 1000.0, np.array(vs, dtype=np.float64))
        for lb, (ts_list, vs) in sorted(points.items())
    ]
    return QueryResult("matrix", end_ms / 1000.0, matrix=matrix)


__all__ = ["Evaluator", "instant_query", "range_query", "series_arrays", "unwrap_parens"]

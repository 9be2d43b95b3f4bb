"""Aggregation operators (``sum by (le) (...)`` etc.), following Prometheus 2.42's aggregation().

Groups are formed in order of first appearance (that is also the output order). ``by`` keeps only
the listed labels; ``without`` drops them and ``__name__``. Running values are updated exactly as
Prometheus does (incremental mean for ``avg``, Welford for ``stddev``/``stdvar``, NaN-replacing
``min``/``max``), and ``topk``/``bottomk`` replay Go's container/heap so that ties pick the same
series. ``histogram_quantile`` lives here too: it groups buckets by labels like ``sum by``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from simkit.errors import QueryError
from simkit.promql.ast import AggregateExpr
from simkit.promql.types import (
    Labels,
    Sample,
    Vector,
    format_go_float,
    get_label,
    go_parse_float,
    nan_first_key,
    with_label,
)

if TYPE_CHECKING:
    from simkit.promql.engine import Evaluator

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def quantile(q: float, values: list[float]) -> float:
    """Prometheus' quantile(): linear interpolation between closest ranks, NaN sorted first."""
    if not values:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values, key=nan_first_key)
    n = float(len(ordered))
    rank = q * (n - 1)
    if math.isnan(rank):
        return math.nan
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


# -- Go's container/heap, so topk/bottomk keep the same series on ties ----------------------------


def _up(h: list[Sample], j: int, less: Callable[[float, float], bool]) -> None:
    while j > 0:
        i = (j - 1) // 2
        if i == j or not less(h[j][1], h[i][1]):
            break
        h[i], h[j] = h[j], h[i]
        j = i


def _down(h: list[Sample], i0: int, n: int, less: Callable[[float, float], bool]) -> None:
    i = i0
    while True:
        j1 = 2 * i + 1
        if j1 >= n or j1 < 0:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and less(h[j2][1], h[j1][1]):
            j = j2
        if not less(h[j][1], h[i][1]):
            break
        h[i], h[j] = h[j], h[i]
        i = j


def _heap_push(h: list[Sample], s: Sample, less: Callable[[float, float], bool]) -> None:
    h.append(s)
    _up(h, len(h) - 1, less)


def _heap_pop(h: list[Sample], less: Callable[[float, float], bool]) -> None:
    n = len(h) - 1
    h[0], h[n] = h[n], h[0]
    _down(h, 0, n, less)
    h.pop()


def _topk_less(a: float, b: float) -> bool:
    return math.isnan(a) or a < b


def _bottomk_less(a: float, b: float) -> bool:
    return math.isnan(a) or a > b


class _Group:
    __slots__ = ("labels", "value", "mean", "count", "heap", "values")

    def __init__(self, labels: Labels, value: float) -> None:
        self.labels = labels
        self.value = value
        self.mean = value
        self.count = 1
        self.heap: list[Sample] = []
        self.values: list[float] = []


def aggregate(
    op: str, vec: Vector, grouping: tuple[str, ...], without: bool, param: float | str | None
) -> Vector:
    """Apply aggregation ``op`` to one step's vector."""
    k = 0
    if op in ("topk", "bottomk"):
        assert isinstance(param, float)
        if math.isnan(param) or abs(param) >= 2.0**63:
            raise QueryError(f"Scalar value {param} overflows int64")
        k = int(param)
        if k < 1:
            return []
    if op == "count_values":
        assert isinstance(param, str)
        if not _LABEL_NAME_RE.fullmatch(param):
            raise QueryError(f"invalid label name {param!r}")
        vec = [(with_label(lb, param, format_go_float(v)), v) for lb, v in vec]
        if not without:
            grouping = (*grouping, param)
    less = _bottomk_less if op == "bottomk" else _topk_less
    groups: dict[Labels, _Group] = {}
    # a group's labels: ``by`` keeps only the listed ones, ``without`` drops them and __name__
    names = set(grouping) | {"__name__"} if without else set(grouping)
    for sample in vec:
        labels, v = sample
        if without:
            key = tuple([p for p in labels if p[0] not in names])
        else:
            key = tuple([p for p in labels if p[0] in names]) if names else ()
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(key, v)
            if op in ("stddev", "stdvar"):
                group.value = 0.0
            elif op in ("topk", "bottomk"):
                group.heap = [sample]
            elif op == "quantile":
                group.values = [v]
            elif op == "group":
                group.value = 1.0
            continue
        if op == "sum":
            group.value += v
        elif op == "avg":
            group.count += 1
            if math.isinf(group.mean):
                if math.isinf(v) and (group.mean > 0) == (v > 0):
                    continue
                if not math.isinf(v) and not math.isnan(v):
                    continue
            group.mean += v / group.count - group.mean / group.count
        elif op == "max":
            if group.value < v or math.isnan(group.value):
                group.value = v
        elif op == "min":
            if group.value > v or math.isnan(group.value):
                group.value = v
        elif op in ("count", "count_values"):
            group.count += 1
        elif op in ("stddev", "stdvar"):
            group.count += 1
            delta = v - group.mean
            group.mean += delta / group.count
            group.value += delta * (v - group.mean)
        elif op in ("topk", "bottomk"):
            top = group.heap[0][1]
            better = top < v if op == "topk" else top > v
            if len(group.heap) < k or better or math.isnan(top):
                if len(group.heap) == k:
                    if k == 1:
                        group.heap[0] = sample
                        continue
                    _heap_pop(group.heap, less)
                _heap_push(group.heap, sample, less)
        elif op == "quantile":
            group.values.append(v)
    out: Vector = []
    for group in groups.values():
        if op in ("topk", "bottomk"):
            rest = [s for s in group.heap if not math.isnan(s[1])]
            rest.sort(key=lambda s: s[1], reverse=op == "topk")
            out.extend(rest + [s for s in group.heap if math.isnan(s[1])])
            continue
        value = group.value
        if op == "avg":
            value = group.mean
        elif op in ("count", "count_values"):
            value = float(group.count)
        elif op == "stdvar":
            value = group.value / group.count
        elif op == "stddev":
            value = math.sqrt(group.value / group.count)
        elif op == "quantile":
            assert isinstance(param, float)
            value = quantile(param, group.values)
        out.append((group.labels, value))
    return out


def evaluate(ev: Evaluator, node: AggregateExpr, k: int) -> Vector:
    """Evaluate ``node`` at step ``k``."""
    param: float | str | None = None
    if node.param is not None:
        p = ev.eval(node.param, k)
        assert isinstance(p, (float, str))
        param = p
    vec = ev.eval(node.expr, k)
    assert isinstance(vec, list)
    return aggregate(node.op, vec, node.grouping, node.without, param)  # type: ignore[arg-type]


# -- histogram_quantile over classic ``le`` buckets, as Prometheus 2.42's bucketQuantile.
#
# Buckets are grouped by all labels except ``le`` (``__name__`` included in the grouping, dropped
# from the output). Per group: sort by upper bound, require a ``+Inf`` bucket (else NaN), merge
# buckets with equal bounds, force cumulative counts to be monotonic, need at least two buckets and
# a non-zero count, then interpolate linearly inside the bucket holding the rank; the first
# bucket's lower bound is 0 (or the answer is its upper bound if that is <= 0).


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """``buckets`` are (upper bound, cumulative count) pairs, in any order."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for upper, count in buckets:
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    highest = -math.inf
    for bucket in merged:  # ensureMonotonic
        if bucket[1] > highest:
            highest = bucket[1]
        elif bucket[1] < highest:
            bucket[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over all but the last bucket: first index with count >= rank
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    bucket_start = 0.0
    bucket_end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        bucket_start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def bucket_quantile_many(q: float, bounds: Sequence[float], cumulative: np.ndarray) -> np.ndarray:
    """:func:`bucket_quantile` for many histograms with the same bounds at once (``simkit plan``'s
    paths): ``bounds`` ascending and ending in ``+Inf``, ``cumulative`` of shape (rows, bounds),
    monotonic. NaN for a row with no observations. The scalar form stays for the engine (one
    histogram per group; numpy would cost more than it saves); tests/unit/test_promql_array_forms.py
    checks the two agree."""
    c = np.asarray(cumulative, np.float64)
    ub = np.asarray(bounds, np.float64)
    if not 0 <= q <= 1 or len(ub) < 2 or not math.isinf(ub[-1]):
        return np.array([bucket_quantile(q, list(zip(ub.tolist(), row.tolist(), strict=True))) for row in c])
    observations = c[:, -1]
    rank = q * observations
    hit = c[:, :-1] >= rank[:, None]
    b = np.where(hit.any(axis=1), hit.argmax(axis=1), len(ub) - 1)
    rows = np.arange(len(c))
    prev = np.where(b > 0, c[rows, np.maximum(b - 1, 0)], 0.0)
    start = np.where(b > 0, ub[np.maximum(b - 1, 0)], 0.0)
    end = ub[np.minimum(b, len(ub) - 2)]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = start + (end - start) * ((rank - prev) / (c[rows, np.minimum(b, len(ub) - 2)] - prev))
    out = np.where(b == len(ub) - 1, ub[-2], inside)
    out = np.where((b == 0) & (ub[0] <= 0), ub[0], out)
    return np.where(observations == 0, np.nan, out)


_LE_BOUNDS: dict[str, float] = {}  # le label value -> its bound: a histogram has few distinct ones


def histogram_quantile(q: float, vec: Vector) -> Vector:
    """Group ``vec`` by its labels without ``le`` and take the bucket quantile of each group."""
    groups: dict[Labels, tuple[Labels, list[tuple[float, float]]]] = {}
    for labels, value in vec:
        le = get_label(labels, "le")
        upper = _LE_BOUNDS.get(le)
        if upper is None:
            upper = go_parse_float(le)
            if upper is None:
                continue  # no or malformed le label: skipped, as in Prometheus
            if len(_LE_BOUNDS) < 10_000:
                _LE_BOUNDS[le] = upper
        key = tuple([p for p in labels if p[0] != "le"])
        group = groups.get(key)
        if group is None:
            out_labels = tuple(p for p in key if p[0] != "__name__")
            group = groups[key] = (out_labels, [])
        group[1].append((upper, value))
    return [(out_labels, bucket_quantile(q, buckets)) for out_labels, buckets in groups.values()]


__all__ = ["aggregate", "bucket_quantile", "evaluate", "get_label", "histogram_quantile", "quantile"]

"""Subqueries, RE2 regexes and the 2.42 functions and edge cases, with values worked out by hand.

Prometheus' own files (test_promql_conformance.py) cover these too; these tests do not depend on
fetching them, and name the rule each answer comes from.
"""

from __future__ import annotations

import math

import pytest

from simkit.errors import QueryError
from simkit.promql import instant_query, range_query
from simkit.tsdb import TSDB

T0 = 1_623_769_200.0  # a whole hour (2021-06-15 15:00 UTC): subquery steps line up with T0 + k min


def _db(values: dict[str, list[float]], step: float = 60.0, extra: dict[str, str] | None = None) -> TSDB:
    db = TSDB()
    for name, vs in values.items():
        for i, v in enumerate(vs):
            db.append({"__name__": name, **(extra or {})}, T0 + i * step, v)
    return db


def _vec(db: TSDB, query: str, t: float) -> dict[tuple[tuple[str, str], ...], float]:
    res = instant_query(db, query, T0 + t)
    assert res.result_type == "vector", res.result_type
    return {tuple(sorted(s.metric.items())): s.value for s in res.vector}


def _one(db: TSDB, query: str, t: float) -> float:
    vec = _vec(db, query, t)
    assert len(vec) == 1, vec
    return next(iter(vec.values()))


RAMP = _db({"x": [0, 10, 20, 30, 40, 50, 60]})  # one sample a minute at T0 + 0..6 min


def test_subquery_points_are_multiples_of_the_step_inside_the_window() -> None:
    # x[3m:1m] at T0+6m: steps at 3, 4, 5, 6 min (the window [3m, 6m] is closed at both ends)
    res = instant_query(RAMP, "x[3m:1m]", T0 + 360)
    assert res.result_type == "matrix"
    (series,) = res.matrix
    assert list(series.timestamps - T0) == [180, 240, 300, 360]
    assert list(series.values) == [30, 40, 50, 60]
    # the default step is 1m; steps are multiples of the step in Unix time, not from the window
    # start: T0 is a multiple of 90 s, T0+200 s is not, so [T0+20 s, T0+200 s] holds T0+90, T0+180
    assert _one(RAMP, "count_over_time(x[3m:])", 360) == 4
    assert _one(RAMP, "count_over_time(x[3m:90s])", 200) == 2


def test_subquery_offset_and_at_move_the_window() -> None:
    assert _one(RAMP, "max_over_time(x[2m:1m] offset 3m)", 360) == 30
    assert _one(RAMP, f"max_over_time(x[2m:1m] @ {T0 + 120:.0f})", 360) == 20
    # @ start() inside a range query is the query's start at every step
    res = range_query(RAMP, "max_over_time(x[1m:1m] @ start())", T0 + 120, T0 + 300, 60)
    assert list(res.matrix[0].values) == [20, 20, 20, 20]


def test_nested_subquery_of_rate() -> None:
    # rate(x[2m]) is 10/60 everywhere after T0+2m; its max over 5 minutes is the same
    assert _one(RAMP, "max_over_time(rate(x[2m])[5m:1m])", 360) == pytest.approx(10 / 60, rel=1e-12)


def test_subquery_step_limit_names_the_subquery() -> None:
    with pytest.raises(QueryError) as info:
        instant_query(RAMP, "max_over_time(x[30d:1s])", T0)
    assert "2592001 steps" in info.value.message and info.value.position == 14


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("x[5m:1m][5m:1m]", "subquery is only allowed on instant vector", 8),
        ('x{a=~"(?=b)"}', "invalid regular expression", 5),  # lookahead: RE2 refuses it, so does 2.42
        ('x{a=~"(b)\\\\1"}', "invalid regular expression", 5),  # backreference
    ],
)
def test_refused_like_prometheus(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as info:
        instant_query(RAMP, query, T0)
    assert message in info.value.message and info.value.position == position


def _labelled(values: list[str]) -> TSDB:
    db = TSDB()
    for v in values:
        db.append({"__name__": "m", "v": v}, T0, 1.0)
    return db


def test_re2_semantics() -> None:
    db = _labelled(["production", "PROD", "12", "\u0663", "a\nb", "ab"])
    names = lambda q: sorted(dict(k)["v"] for k in _vec(db, q, 0))  # noqa: E731
    assert names('m{v=~"((?i)PRO).*"}') == ["PROD", "production"]  # (?i) after the start
    assert names('m{v=~"\\\\d+"}') == ["12"]  # ASCII digits only
    assert names('m{v=~"a.b"}') == []  # . does not match a newline
    assert names('m{v!~"a.*"}') == ["12", "PROD", "a\nb", "production", "\u0663"]
    res = _vec(db, 'label_replace(m{v="production"}, "w", "$x-$2", "v", "(?P<x>pro)(d)?.*")', 0)
    assert [dict(k)["w"] for k in res] == ["pro-d"]


def test_new_functions() -> None:
    # predict_linear: slope 10/60 per s through (T0+6m, 60); 600 s later 160
    assert _one(RAMP, "predict_linear(x[6m], 600)", 360) == pytest.approx(160.0, rel=1e-12)
    assert _one(RAMP, "deriv(x[6m])", 360) == pytest.approx(10 / 60, rel=1e-12)
    # holt_winters on a straight line keeps the line: 60 at the last point
    assert _one(RAMP, "holt_winters(x[6m], 0.5, 0.5)", 360) == pytest.approx(60.0, rel=1e-12)
    with pytest.raises(QueryError, match="invalid smoothing factor"):
        instant_query(RAMP, "holt_winters(x[6m], 1, 0.5)", T0 + 360)
    # 2016-02-29 12:34:56 UTC, a Monday
    t = 1456749296
    vals = {
        f: _one(RAMP, f"{f}(vector({t}))", 0)
        for f in (
            "year",
            "month",
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "hour",
            "minute",
        )
    }
    assert vals == {
        "year": 2016,
        "month": 2,
        "day_of_month": 29,
        "day_of_week": 1,
        "day_of_year": 60,
        "days_in_month": 29,
        "hour": 12,
        "minute": 34,
    }
    assert _one(RAMP, "minute()", 360 + 59) == 6 and _one(RAMP, "hour()", 0) == 15
    assert _one(RAMP, "deg(vector(pi()))", 0) == 180 and _one(RAMP, "rad(vector(180))", 0) == math.pi
    assert _one(RAMP, "sin(vector(0)) + cos(vector(0))", 0) == 1
    assert math.isnan(_one(RAMP, "asin(vector(2))", 0))


def test_atan2_keeps_the_metric_name_like_2_42() -> None:
    db = _db({"y": [1.0], "z": [1.0]})
    assert _vec(db, "y atan2 z", 0) == {(("__name__", "y"),): math.pi / 4}  # y * z would drop it
    assert _vec(db, "y atan2 1", 0) == {(("__name__", "y"),): math.pi / 4}
    assert instant_query(db, "1 atan2 -1", T0).scalar == pytest.approx(3 * math.pi / 4, rel=1e-15)


def test_edge_cases_of_the_issue() -> None:
    db = TSDB()
    for name, v in (("a", 1.0), ("b", math.nan), ("c", 3.0), ("d", math.nan)):
        db.append({"__name__": "e", "n": name}, T0, v)
    order = lambda q: [dict(s.metric)["n"] for s in instant_query(db, q, T0).vector]  # noqa: E731
    assert order("sort(e)")[:2] == ["a", "c"] and order("sort_desc(e)")[:2] == ["c", "a"]  # NaN last
    inf = _db({"p": [1.0, math.inf], "n": [-math.inf, 1.0]})
    assert _one(inf, "sum_over_time(p[1m])", 60) == math.inf  # not Inf + (-Inf) compensation = NaN
    assert _one(inf, "sum_over_time(n[1m])", 60) == -math.inf
    h = TSDB()
    for le, v in (("1", 5.0), ("+Inf", 10.0)):
        h.append({"__name__": "h_bucket", "le": le}, T0, v)
    assert math.isnan(_one(h, "histogram_quantile(NaN, h_bucket)", 0))
    assert _vec(_db({"j": [1.0]}, extra={"a": "x"}), 'label_join(j, "dst", ", ")', 0) == {
        (("__name__", "j"), ("a", "x")): 1.0
    }

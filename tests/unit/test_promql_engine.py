"""Engine semantics with expected values computed by hand from Prometheus 2.42's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simkit.errors import QueryError
from simkit.promql import instant_query, range_query
from simkit.tsdb import TSDB

STALE = float(np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0])
T0 = 1_623_770_000.0  # a realistic Unix epoch, so float rounding at 1.6e9 is exercised


def _db(series: dict[str, list[tuple[float, float]]]) -> TSDB:
    db = TSDB()
    for spec, samples in series.items():
        name, _, rest = spec.partition("{")
        labels = dict(p.split("=") for p in rest.rstrip("}").split(",") if p) if rest else {}
        labels["__name__"] = name
        for t, v in samples:
            db.append(labels, T0 + t, v)
    return db


def _vec(db: TSDB, query: str, t: float) -> dict[tuple[tuple[str, str], ...], float]:
    res = instant_query(db, query, T0 + t)
    assert res.result_type == "vector"
    return {tuple(sorted(s.metric.items())): s.value for s in res.vector}


def _one(db: TSDB, query: str, t: float) -> float:
    res = instant_query(db, query, T0 + t)
    value = res.first_value()
    assert value is not None, f"{query} gave no value"
    return value


LINEAR = _db({"x{j=a}": [(t, t) for t in (0, 15, 30, 45, 60)]})


def test_rate_window_covering_all_samples() -> None:
    # window [0, 60] holds 5 samples, no extrapolation needed: increase 60, rate 60/60
    assert _one(LINEAR, "increase(x[1m])", 60) == pytest.approx(60.0, rel=1e-12)
    assert _one(LINEAR, "rate(x[1m])", 60) == pytest.approx(1.0, rel=1e-12)


def test_rate_extrapolates_to_both_edges() -> None:
    # at t=70 the window [10, 70] holds 15..60: result 45 over 45 s, 5 s to start, 10 s to end
    # (both below 1.1 * 15 s), so it is extrapolated to 60 s: 45 * 60 / 45 = 60
    assert _one(LINEAR, "increase(x[1m])", 70) == pytest.approx(60.0, rel=1e-12)
    assert _one(LINEAR, "delta(x[1m])", 70) == pytest.approx(60.0, rel=1e-12)


def test_counter_reset_adds_previous_value() -> None:
    db = _db({"c": [(0, 10), (15, 20), (30, 5), (45, 15)]})
    # 15 - 10 + 20 (reset) = 25; first sample on the window start, last on its end: factor 1
    assert _one(db, "increase(c[45s])", 45) == pytest.approx(25.0, rel=1e-12)
    assert _one(db, "resets(c[45s])", 45) == 1
    # delta ignores resets: 15 - 10
    assert _one(db, "delta(c[45s])", 45) == pytest.approx(5.0, rel=1e-12)


def test_counter_zero_point_clamps_extrapolation_2_42_order() -> None:
    # samples 1,2,3 at 60,75,90; window [15, 105]: 45 s to start, but the counter would hit 0
    # after 30 * (1/2) = 15 s, which is below 1.1 * 15, so 2.42 extrapolates by 15 s on both
    # sides: 2 * (30 + 15 + 15) / 30 = 4 (Prometheus 2.42 gives 4; 3.x gives 3.5)
    db = _db({"c": [(60, 1), (75, 2), (90, 3)]})
    assert _one(db, "increase(c[90s])", 105) == pytest.approx(4.0, rel=1e-12)


def test_gauge_far_from_window_start_extrapolates_half_interval() -> None:
    # delta: -4 over 30 s; 45 s to start (>= 16.5, so +7.5 s), 15 s to end: -4 * 52.5 / 30 = -7
    db = _db({"g": [(60, 5), (75, 3), (90, 1)]})
    assert _one(db, "delta(g[90s])", 105) == pytest.approx(-7.0, rel=1e-12)
    # rate treats it as a counter: 1 - 5 + 5 + 3 (two resets) = 4; zero point 30 * 5/4 = 37.5 s
    # before the first sample is still beyond 16.5 s, so +7.5 s: 4 * 52.5 / 30 / 90
    assert _one(db, "rate(g[90s])", 105) == pytest.approx(4 * 52.5 / 30 / 90, rel=1e-12)


def test_rate_needs_two_samples() -> None:
    db = _db({"c": [(0, 1), (100, 2)]})
    assert _vec(db, "rate(c[1m])", 50) == {}
    assert _vec(db, "irate(c[1m])", 110) == {}


def test_range_window_is_closed_on_both_ends() -> None:
    # at t=60 a [45s] window is [15, 60]: 15, 30, 45, 60 -> 4 samples
    assert _one(LINEAR, "count_over_time(x[45s])", 60) == 4
    assert _one(LINEAR, "count_over_time(x[44999ms])", 60) == 3


def test_irate_and_idelta_use_last_two_samples() -> None:
    db = _db({"c": [(0, 10), (15, 20), (30, 5)]})
    assert _one(db, "irate(c[1m])", 30) == pytest.approx(5 / 15, rel=1e-12)  # reset: last value / 15 s
    assert _one(db, "idelta(c[1m])", 30) == pytest.approx(-15.0, rel=1e-12)


def test_lookback_is_inclusive_and_staleness_hides_series() -> None:
    db = _db({"g": [(0, 7.0)], "s": [(0, 1.0), (15, STALE), (30, 3.0)]})
    assert _one(db, "g", 300) == 7.0
    assert _vec(db, "g", 300.001) == {}
    assert _vec(
        db,
        "g",
        100,
    ) == {(("__name__", "g"),): 7.0}
    assert _vec(db, "s", 20) == {}
    assert _one(db, "s", 14) == 1.0
    assert _one(db, "s", 30) == 3.0
    assert _one(db, "count_over_time(s[1m])", 30) == 2  # markers are not samples of a range
    assert _vec(db, "g", 100.0 - 300.0 - 1) == {}


def test_normal_nan_is_a_value() -> None:
    db = _db({"n": [(0, math.nan)]})
    assert math.isnan(_one(db, "n", 10))


def test_offset_and_at() -> None:
    assert _one(LINEAR, "x offset 30s", 60) == 30
    assert _one(LINEAR, "x offset -30s", 20) == 45
    assert _one(LINEAR, f"x @ {T0 + 15}", 1000) == 15


def _hist(counts: dict[str, float]) -> TSDB:
    return _db({f"h{{le={le}}}": [(0, c)] for le, c in counts.items()})


def test_histogram_quantile_interpolates_inside_bucket() -> None:
    db = _hist({"0.1": 10, "0.5": 30, "+Inf": 40})
    assert _one(db, "histogram_quantile(0.5, h)", 0) == pytest.approx(0.3, rel=1e-12)  # 0.1 + 0.4 * 10/20
    assert _one(db, "histogram_quantile(0.1, h)", 0) == pytest.approx(0.04, rel=1e-12)  # 0 + 0.1 * 4/10
    assert _one(db, "histogram_quantile(0.95, h)", 0) == 0.5  # rank in +Inf bucket: highest finite bound
    assert _one(db, "histogram_quantile(-1, h)", 0) == -math.inf
    assert _one(db, "histogram_quantile(1.5, h)", 0) == math.inf
    assert _vec(db, "histogram_quantile(0.5, h)", 0) == {(): pytest.approx(0.3)}  # le and name dropped


def test_histogram_quantile_degenerate_inputs() -> None:
    assert math.isnan(_one(_hist({"0.1": 10, "0.5": 30}), "histogram_quantile(0.5, h)", 0))  # no +Inf
    assert math.isnan(_one(_hist({"+Inf": 30}), "histogram_quantile(0.5, h)", 0))  # < 2 buckets
    assert math.isnan(_one(_hist({"0.1": 0, "+Inf": 0}), "histogram_quantile(0.5, h)", 0))  # no observations
    # non-monotonic counts are raised to the running maximum: 0.1:10, 0.5:10, +Inf:40 -> rank 20 in +Inf
    assert _one(_hist({"0.1": 10, "0.5": 8, "+Inf": 40}), "histogram_quantile(0.5, h)", 0) == 0.5
    # first bucket with a negative bound answers its bound
    assert _one(_hist({"-1": 10, "+Inf": 20}), "histogram_quantile(0.1, h)", 0) == -1


AGG = _db({"m{g=a,i=1}": [(0, 1.0)], "m{g=a,i=2}": [(0, 3.0)], "m{g=b,i=3}": [(0, 10.0)]})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum by (g) (m)", {(("g", "a"),): 4.0, (("g", "b"),): 10.0}),
        ("avg(m) by (g)", {(("g", "a"),): 2.0, (("g", "b"),): 10.0}),
        ("count without (i) (m)", {(("g", "a"),): 2.0, (("g", "b"),): 1.0}),
        ("max(m)", {(): 10.0}),
        ("min(m)", {(): 1.0}),
        ("group(m)", {(): 1.0}),
        ("stdvar by (g) (m)", {(("g", "a"),): 1.0, (("g", "b"),): 0.0}),
        (
            "stddev(m)",
            {(): pytest.approx(math.sqrt(((1 - 14 / 3) ** 2 + (3 - 14 / 3) ** 2 + (10 - 14 / 3) ** 2) / 3))},
        ),
        ("quantile(0.5, m)", {(): 3.0}),
        ("quantile(0.75, m)", {(): 6.5}),
        ("topk(1, m)", {(("__name__", "m"), ("g", "b"), ("i", "3")): 10.0}),
        (
            "bottomk by (g) (1, m)",
            {
                (("__name__", "m"), ("g", "a"), ("i", "1")): 1.0,
                (("__name__", "m"), ("g", "b"), ("i", "3")): 10.0,
            },
        ),
        ("count_values('v', m)", {(("v", "1"),): 1.0, (("v", "3"),): 1.0, (("v", "10"),): 1.0}),
        ("sum by (__name__) (m)", {(("__name__", "m"),): 14.0}),
    ],
)
def test_aggregations(query: str, expected: dict[object, float]) -> None:
    assert _vec(AGG, query, 0) == expected


BIN = _db(
    {
        "a{k=1,x=p}": [(0, 2.0)],
        "a{k=2,x=q}": [(0, 5.0)],
        "b{k=1}": [(0, 4.0)],
        "b{k=2}": [(0, 1.0)],
        "one": [(0, 10.0)],
    }
)


def test_binary_label_rules() -> None:
    assert _vec(BIN, "a * on(k) b", 0) == {(("k", "1"),): 8.0, (("k", "2"),): 5.0}
    assert _vec(BIN, "a / ignoring(x) b", 0) == {(("k", "1"),): 0.5, (("k", "2"),): 5.0}
    # one-to-one ignoring() drops the ignored labels; comparisons keep the name unless bool
    assert _vec(BIN, "a > ignoring(x) b", 0) == {(("__name__", "a"), ("k", "2")): 5.0}
    assert _vec(BIN, "a > bool ignoring(x) b", 0) == {(("k", "1"),): 0.0, (("k", "2"),): 1.0}
    assert _vec(BIN, "a - on() group_left one", 0) == {
        (("k", "1"), ("x", "p")): -8.0,
        (("k", "2"), ("x", "q")): -5.0,
    }
    assert _vec(BIN, "b * on(k) group_left(x) a", 0) == {
        (("k", "1"), ("x", "p")): 8.0,
        (("k", "2"), ("x", "q")): 5.0,
    }
    assert _vec(BIN, "3 < a", 0) == {
        (("__name__", "a"), ("k", "2"), ("x", "q")): 5.0
    }  # keeps the vector value
    assert _vec(BIN, "a % 3 ^ 2", 0) == {(("k", "1"), ("x", "p")): 2.0, (("k", "2"), ("x", "q")): 5.0}
    assert _vec(BIN, "-a / 0", 0) == {
        (("k", "1"), ("x", "p")): -math.inf,
        (("k", "2"), ("x", "q")): -math.inf,
    }


def test_set_operators() -> None:
    assert set(_vec(BIN, "a and on(k) b{k='1'}", 0)) == {(("__name__", "a"), ("k", "1"), ("x", "p"))}
    assert set(_vec(BIN, "a unless on(k) b{k='1'}", 0)) == {(("__name__", "a"), ("k", "2"), ("x", "q"))}
    assert _vec(BIN, "sum(nothing) or on() vector(0)", 0) == {(): 0.0}
    assert _vec(BIN, "sum(a) or on() vector(0)", 0) == {(): 7.0}


def test_matching_errors() -> None:
    with pytest.raises(QueryError, match="many-to-many matching not allowed"):
        instant_query(BIN, "a + on() b", T0)
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        instant_query(BIN, "a + on() one", T0)
    with pytest.raises(QueryError, match="grouping labels must ensure unique matches"):
        instant_query(
            _db({"l{u=1}": [(0, 1.0)], "m{u=1}": [(0, 1.0)], "r{u=1}": [(0, 1.0)]}),
            "{__name__=~'l|m'} * on(u) group_left r",
            T0,
        )


def test_scalar_results_and_functions() -> None:
    res = instant_query(BIN, "2 ^ 3 ^ 2", T0)
    assert res.result_type == "scalar" and res.scalar == 512
    assert instant_query(BIN, "-2 ^ 2", T0).scalar == -4
    assert instant_query(BIN, "time()", T0 + 1.5).scalar == pytest.approx(T0 + 1.5)
    assert math.isnan(instant_query(BIN, "scalar(a)", T0).scalar or 0.0)
    assert instant_query(BIN, "scalar(one)", T0).scalar == 10
    assert _vec(BIN, "clamp(a, 3, 4)", 0) == {(("k", "1"), ("x", "p")): 3.0, (("k", "2"), ("x", "q")): 4.0}
    assert _vec(BIN, "round(a / 4, 0.5)", 0) == {(("k", "1"), ("x", "p")): 0.5, (("k", "2"), ("x", "q")): 1.5}
    assert _vec(BIN, "absent(nope{j='x', k=~'y'})", 0) == {(("j", "x"),): 1.0}
    assert _vec(BIN, "absent(one)", 0) == {}
    assert _vec(BIN, "label_replace(one, 'd', 'v-$1', '__name__', 'o(.*)')", 0) == {
        (("__name__", "one"), ("d", "v-ne")): 10.0
    }
    assert _vec(BIN, "label_join(a{k='1'}, 'y', '/', 'k', 'x')", 0) == {
        (("__name__", "a"), ("k", "1"), ("x", "p"), ("y", "1/p")): 2.0
    }
    assert [s.value for s in instant_query(BIN, "sort_desc(a)", T0).vector] == [5.0, 2.0]
    assert _one(BIN, "timestamp(one)", 100) == pytest.approx(T0)


def test_duplicate_labelsets_are_refused() -> None:
    with pytest.raises(QueryError, match="same labelset"):
        instant_query(_db({"p{r=1}": [(0, 1.0)], "q{r=1}": [(0, 2.0)]}), "abs({r='1'})", T0)


def test_seed_queries_with_trailing_whitespace() -> None:
    db = _db(
        {
            "s_sum{p=base}": [(t, 0.01 * t) for t in range(0, 301, 15)],
            "s_count{p=base}": [(t, 2.0 * t) for t in range(0, 301, 15)],
        }
    )
    q = "(sum(increase(s_sum{p='base'}[31s])) or on() vector(0)) / (sum(increase(s_count{p='base'}[31s])) or on() vector(0))\n"
    assert _one(db, q, 300) == pytest.approx(0.005, rel=1e-12)
    assert _one(db, "sum(increase(s_sum{p='other'}[31s])) or on() vector(0)\n", 300) == 0.0


def test_range_query_steps_sorting_and_absent_series() -> None:
    db = _db({"z{n=2}": [(t, t) for t in range(0, 61, 15)], "z{n=1}": [(0, 5.0)], "w": [(1000, 1.0)]})
    res = range_query(db, "z", T0 + 1, T0 + 50, 20)  # steps 1, 21, 41 (start is not aligned)
    assert res.result_type == "matrix"
    assert [s.metric for s in res.matrix] == [{"__name__": "z", "n": "1"}, {"__name__": "z", "n": "2"}]
    np.testing.assert_allclose(res.matrix[1].timestamps - T0, [1, 21, 41])
    np.testing.assert_array_equal(res.matrix[1].values, [0, 15, 30])
    res = range_query(db, "rate(z[30s])", T0, T0 + 60, 30)
    assert [s.metric for s in res.matrix] == [{"n": "2"}]  # z{n=1} has < 2 samples: dropped
    assert range_query(db, "time()", T0, T0 + 2, 1).matrix[0].values.tolist() == pytest.approx(
        [T0, T0 + 1, T0 + 2]
    )
    with pytest.raises(QueryError, match="range vector"):
        range_query(db, "z[1m]", T0, T0 + 60, 30)
    with pytest.raises(QueryError, match="step"):
        range_query(db, "z", T0, T0 + 60, 0)


def test_instant_range_selector_returns_matrix() -> None:
    res = instant_query(LINEAR, "x[30s]", T0 + 60)
    assert res.result_type == "matrix"
    np.testing.assert_allclose(res.matrix[0].timestamps - T0, [30, 45, 60])
    assert res.matrix[0].metric == {"__name__": "x", "j": "a"}

"""The promqltest runner itself: it parses the format, runs every variant test.go runs, and fails.

A conformance runner that cannot fail proves nothing, so each check here feeds it a small
hand-written file with a wrong expectation, or an engine answer corrupted in one variant only,
and requires the failure; and counts the queries it sends.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import tests.support.promqltest as pt
from simkit.promql import parse
from simkit.promql.ast import Call, MatrixSelector, SubqueryExpr, VectorSelector

FILE = """
# a comment
load 5m
  foo{a="x"} 1+1x10
  bar 0 _ stale 3x2 -1-1x1 Inf NaN

eval instant at 50m foo
  foo{a="x"} 11

eval instant at 5m sum(bar)
  {} 0

eval instant at 0m bar
  bar 0
"""


def _evals(tmp_path: Path, text: str) -> list[tuple[pt.Eval, pt.TSDB]]:
    path = tmp_path / "t.test"
    path.write_text(text)
    return [(cmd, db()) for cmd, db in pt.evals_with_data(pt.parse_file(path))]


def test_series_descriptions() -> None:
    labels, values = pt.parse_series_desc('m{b="2", a="1"} 1+2x2 _x2 stale -1-1x1 Inf _ NaN')
    assert labels == (("__name__", "m"), ("a", "1"), ("b", "2"))
    assert values[:3] == [1, 3, 5] and values[3:5] == [None, None]
    assert math.isnan(values[5]) and values[6:8] == [-1, -2] and values[8] == math.inf  # type: ignore[arg-type]
    assert values[9] is None and math.isnan(values[10])  # type: ignore[arg-type]
    with pytest.raises(pt.FormatError):
        pt.parse_series_desc("m 1+2")  # a step needs x<count>


def test_a_right_file_passes_and_a_wrong_value_fails(tmp_path: Path) -> None:
    for cmd, db in _evals(tmp_path, FILE):
        pt.run_eval(cmd, db)  # no error: the expectations are right
    (cmd, db), *_ = _evals(tmp_path, FILE.replace('foo{a="x"} 11', 'foo{a="x"} 11.001'))
    with pytest.raises(AssertionError, match="expected 11.001"):
        pt.run_eval(cmd, db)
    (cmd, db), *_ = _evals(tmp_path, FILE.replace('foo{a="x"} 11', 'foo{a="y"} 11'))
    with pytest.raises(AssertionError, match="unexpected metric"):
        pt.run_eval(cmd, db)
    (cmd, db), *_ = _evals(tmp_path, FILE.replace("eval instant at 50m foo", "eval_fail instant at 50m foo"))
    with pytest.raises(AssertionError, match="expected an evaluation error"):
        pt.run_eval(cmd, db)


def test_relative_tolerance_is_1e6() -> None:
    assert pt.almost_equal(1.0, 1.0 + 1e-7) and not pt.almost_equal(1.0, 1.00001)
    assert pt.almost_equal(math.nan, math.nan) and not pt.almost_equal(0.0, 1e-300)


def test_ordered_checks_positions(tmp_path: Path) -> None:
    text = 'load 1m\n  m{i="1"} 2\n  m{i="2"} 1\n\neval_ordered instant at 0m sort(m)\n  m{i="1"} 2\n  m{i="2"} 1\n'
    ((cmd, db),) = _evals(tmp_path, text)
    with pytest.raises(AssertionError, match="at position 2 but was at 1"):
        pt.run_eval(cmd, db)


def test_at_and_range_variants_are_run_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cmd, db), _, (cmd0, db0) = _evals(tmp_path, FILE)
    calls: list[tuple[str, object]] = []
    instant, ranged = pt.instant_query, pt.range_query
    monkeypatch.setattr(pt, "instant_query", lambda d, e, t: calls.append(("i", e)) or instant(d, e, t))
    monkeypatch.setattr(
        pt, "range_query", lambda d, e, a, b, s: calls.append(("r", e)) or ranged(d, e, a, b, s)
    )
    pt.run_eval(cmd, db)
    assert [c[0] for c in calls] == ["i", "r"] * 6  # as written, then @ at -10t, 0, t/5, t, 10t
    at = [e for _, e in calls[2:]]
    assert all(isinstance(e, VectorSelector) and e.at_ms == 3_000_000 for e in at)
    calls.clear()
    pt.run_eval(cmd0, db0)
    assert len(calls) == 2 * 4  # at time 0 the extra times are -1s, 0, 1s

    # an engine that gets the @ variant wrong at one of the extra times only is caught
    def bad_instant(d: pt.TSDB, e: object, t: float) -> object:
        res = instant(d, e, t)  # type: ignore[arg-type]
        if isinstance(e, VectorSelector) and e.at_ms is not None and t < 0:
            return instant(d, "foo * 2", 3000)
        return res

    monkeypatch.setattr(pt, "instant_query", bad_instant)
    with pytest.raises(AssertionError, match=r"at -30000000 ms \(with @\)"):
        pt.run_eval(cmd, db)

    # and so is a range query whose middle step differs from the instant answer
    monkeypatch.setattr(pt, "instant_query", instant)
    monkeypatch.setattr(pt, "range_query", lambda d, e, a, b, s: ranged(d, "foo + 1", a, b, s))
    with pytest.raises(AssertionError, match="range mode"):
        pt.run_eval(cmd, db)


def test_at_rewriting_follows_test_go() -> None:
    expr, unsafe = pt.with_at(parse("rate(a[5m]) + max_over_time(b[1m:] @ 10) + c @ start()"), 7000)
    assert not unsafe
    nodes = []

    def walk(n: object) -> None:
        nodes.append(n)
        for _, v in pt._children(n):  # type: ignore[arg-type]
            for c in v if isinstance(v, tuple) else (v,):
                walk(c)

    walk(expr)
    sels = {n.name: n for n in nodes if isinstance(n, VectorSelector)}
    assert sels["a"].at_ms == 7000 and sels["c"].at_ms == 7000 and sels["c"].at_edge is None
    assert sels["b"].at_ms is None  # inside an @ subquery: left alone
    assert [n.at_ms for n in nodes if isinstance(n, SubqueryExpr)] == [10_000]
    assert any(isinstance(n, MatrixSelector) for n in nodes)
    # a plain subquery gets the @ itself, and what it holds stays as written
    sub, _ = pt.with_at(parse("max_over_time(d[1m:])"), 5000)
    assert isinstance(sub, Call) and isinstance(sub.args[0], SubqueryExpr) and sub.args[0].at_ms == 5000
    assert isinstance(sub.args[0].expr, VectorSelector) and sub.args[0].expr.at_ms is None
    # functions of the evaluation time make test.go skip the variants
    assert pt.with_at(parse("predict_linear(a[5m], 60)"), 1)[1] and pt.with_at(parse("time()"), 1)[1]

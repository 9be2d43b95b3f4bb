"""Cross-check simkit's PromQL engine against a real Prometheus 2.42 engine (Debian's promtool).

``promtool test rules`` evaluates expressions offline over ``input_series``; given an empty
expectation, every non-empty result is reported as "got: {labels} value, ...", which we parse
and compare with simkit's answer over the same samples (1e-9 relative). One promtool run covers
every expression, so the test stays fast. Skipped where promtool is not installed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simkit.errors import QueryError
from simkit.promql import instant_query
from simkit.tsdb import TSDB

PROMTOOL = shutil.which("promtool")
# outside CI a machine without Debian's prometheus package skips these; in CI they must run
pytestmark = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"), reason="promtool (Debian prometheus) not installed"
)

STALE_NAN = float(np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0])
INTERVAL = 15
N = 241
SEL = "seldon_deployment_id='iris',kubernetes_namespace='ns-production'"
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "+Inf"]


def _dataset() -> dict[str, list[float | None]]:
    """Deterministic series in promtool notation: label string -> value per 15 s slot (None = gap)."""
    rng = np.random.default_rng(7)
    data: dict[str, list[float | None]] = {}
    for pred, qps in (("baseline", 5.0), ("candidate", 3.0)):
        base = f'seldon_deployment_id="iris",kubernetes_namespace="ns-production",predictor_name="{pred}"'
        reqs = np.cumsum(rng.poisson(qps * INTERVAL, N)).astype(float)
        fractions = np.sort(rng.uniform(0.2, 1.0, len(BUCKETS) - 1))
        for le, frac in zip(BUCKETS, [*fractions, 1.0], strict=True):
            data[f'seldon_api_executor_client_requests_seconds_bucket{{{base},le="{le}"}}'] = list(
                np.floor(reqs * frac)
            )
        data[f"seldon_api_executor_client_requests_seconds_count{{{base}}}"] = list(reqs)
        data[f"seldon_api_executor_client_requests_seconds_sum{{{base}}}"] = list(
            np.round(reqs * 0.0123 + rng.uniform(0, 0.01, N), 6)
        )
        for code, share in (("200", 0.97), ("500", 0.03)):
            vals = np.floor(reqs * share)
            if pred == "candidate" and code == "200":
                vals[120:] -= vals[119]  # a counter reset half-way
            data[
                f'seldon_api_executor_server_requests_seconds_count{{{base},code="{code}",service="predictions"}}'
            ] = list(vals)
    gauge: list[float | None] = list(np.round(rng.normal(0, 5, N), 3))
    for i in list(range(40, 47)) + [100, 101, 150]:
        gauge[i] = None  # gaps: extrapolation thresholds, lookback
    data['temp{room="a"}'] = gauge
    data['temp{room="b"}'] = list(np.round(rng.normal(20, 1, N), 2))
    data['late{room="a"}'] = [None] * 200 + list(np.arange(41, dtype=float) * 2 + 5)
    data['ctr{a="x"}'] = [float(v) for v in [0, 3, 7, 2, 5, 9, 1, 1, 4, 8] * 24 + [8]]
    data['ctr{a="y"}'] = [float(v) for v in np.cumsum(np.arange(N) % 7)]
    nan_series: list[float | str | None] = [float(i % 5) for i in range(N)]
    for i in range(3, N, 11):
        nan_series[i] = "NaN"
    for i in range(50, 60):
        nan_series[i] = "stale"
    data['odd{k="n"}'] = nan_series  # type: ignore[assignment]
    return data


EXPRESSIONS: list[tuple[str, float]] = [
    (
        f"sum(increase(seldon_api_executor_client_requests_seconds_sum{{{SEL},predictor_name='baseline'}}[31s])) or on() vector(0)",
        1800,
    ),
    (
        f"(sum(increase(seldon_api_executor_client_requests_seconds_sum{{{SEL},predictor_name='baseline'}}[31s])) or on() vector(0)) / (sum(increase(seldon_api_executor_client_requests_seconds_count{{{SEL},predictor_name='baseline'}}[31s])) or on() vector(0))\n",
        1807.5,
    ),
    (
        f"histogram_quantile(0.95, sum(rate(seldon_api_executor_client_requests_seconds_bucket{{{SEL},predictor_name='candidate'}}[61s])) by (le))",
        2000,
    ),
    (
        f"histogram_quantile(0.5, sum(rate(seldon_api_executor_client_requests_seconds_bucket{{{SEL}}}[5m])) by (le, predictor_name))",
        3000.123,
    ),
    ("histogram_quantile(0.99, rate(seldon_api_executor_client_requests_seconds_bucket[2m]))", 1000),
    (
        f"sum(increase(seldon_api_executor_server_requests_seconds_count{{code!='200',{SEL},predictor_name='candidate'}}[600s])) or on() vector(0)",
        2400,
    ),
    (
        f"sum(increase(seldon_api_executor_server_requests_seconds_count{{code!='500',{SEL}}}[600s])) by (predictor_name)",
        2100,
    ),
    ("increase(seldon_api_executor_server_requests_seconds_count[17m])", 1900.5),
    ("rate(seldon_api_executor_server_requests_seconds_count[1m] offset 2m)", 3000),
    ("irate(seldon_api_executor_server_requests_seconds_count[1m])", 1805),
    ("idelta(temp[5m])", 1234.567),
    ("delta(temp[10m])", 1600),
    ("delta(temp[2m])", 700),
    ("rate(late[10m])", 3600),
    ("increase(late[3m])", 3100),
    ("resets(seldon_api_executor_server_requests_seconds_count[1h])", 3600),
    ("changes(temp[10m])", 900),
    ("deriv(temp[10m])", 2500),
    ("avg_over_time(temp[10m])", 2500),
    ("sum_over_time(temp[7m])", 2222),
    ("min_over_time(temp[10m])", 1000),
    ("max_over_time(temp[10m])", 1000),
    ("count_over_time(temp[10m])", 1000),
    ("last_over_time(temp[10m])", 1000),
    ("stddev_over_time(temp[10m])", 1000),
    ("stdvar_over_time(temp[30m])", 3000),
    ("quantile_over_time(0.3, temp[10m])", 1000),
    ("present_over_time(temp[1m])", 1510),
    ("absent_over_time(nonexistent{a='b'}[1m])", 100),
    ("absent(nonexistent{a='b',c=~'x'})", 100),
    ("temp", 1510),
    ("temp", 2260),
    ("temp offset -5m", 1000),
    ("temp @ 1500", 3000),
    ("timestamp(temp)", 2262),
    ("sum by (room) (temp) * 2 - 1", 500),
    ("avg(temp)", 1200),
    ("count(temp)", 1200),
    ("stddev(temp)", 1200),
    ("stdvar(temp)", 1200),
    ("min(temp)", 1200),
    ("max(temp)", 1200),
    ("quantile(0.25, temp)", 1200),
    ("topk(1, temp)", 1200),
    ("bottomk(1, temp)", 1200),
    ("count_values('v', round(temp))", 1200),
    ("group(temp) by (room)", 1200),
    ("sum without (le) (seldon_api_executor_client_requests_seconds_bucket)", 1800),
    ("temp > 0", 1200),
    ("temp > bool 0", 1200),
    ("0 < temp", 1300),
    ("temp == bool temp", 1200),
    ("temp{room='a'} - on() temp{room='b'}", 1200),
    ("temp - ignoring(room) group_left temp{room='b'}", 1200),
    ("abs(temp) ^ 0.5 % 3", 1200),
    ("-temp / 0", 1200),
    ("2 ^ 3 ^ 2", 0),
    ("-2 ^ 2", 0),
    ("1 + 2 * 3 > bool 6", 0),
    ("clamp(temp, -1, 1)", 1200),
    ("clamp_min(temp, 0)", 1200),
    ("clamp_max(temp, 0)", 1200),
    ("ln(temp) + log2(temp) + log10(temp) + exp(temp/10) + sqrt(temp)", 1200),
    ("ceil(temp) + floor(temp)", 1200),
    ("round(temp, 0.5)", 1200),
    ("scalar(temp{room='b'}) * vector(2)", 1200),
    ("time()", 1234.5),
    ("label_replace(temp, 'x', '$1-${1}y', 'room', '(.*)')", 1200),
    ("label_join(temp, 'x', ',', 'room', '__name__')", 1200),
    ("temp and temp{room='a'}", 1200),
    ("temp unless temp{room='a'}", 1200),
    ("temp or late", 3100),
    ("sort_desc(temp)", 1200),
    ("sum(temp) by (room) or vector(1)", 1200),
    ("temp + temp", 1200),
    ("rate(ctr[1m])", 1000),
    ("rate(ctr[100s])", 1010),
    ("increase(ctr[5m])", 2000),
    ("irate(ctr[1m])", 1020),
    ("irate(ctr[1m])", 1005),
    ("resets(ctr[10m])", 3000),
    ("changes(ctr[10m])", 3000),
    ("delta(ctr[3m])", 1500),
    ("rate(ctr[20s])", 1507),
    ("increase(ctr{a='y'}[45s])", 1000),
    ("deriv(ctr[5m])", 3000),
    ("rate(temp[2m])", 700),
    ("rate(temp[2m])", 720),
    ("increase(temp[3m])", 1590),
    ("odd", 700),
    ("odd", 751),
    ("odd", 880),
    ("odd", 1000),
    ("count_over_time(odd[2m])", 900),
    ("sum_over_time(odd[2m])", 1000),
    ("max_over_time(odd[5m])", 1000),
    ("min_over_time(odd[5m])", 1000),
    ("avg_over_time(odd[5m])", 1000),
    ("changes(odd[5m])", 1000),
    ("rate(odd[5m])", 1000),
    ("odd > 2", 1000),
    ("sum(odd)", 1000),
    ("max(odd)", 1005),
    ("topk(2, ctr)", 1000),
    ("bottomk(1, ctr)", 1000),
    ("quantile(0.5, odd)", 1005),
    ("sort(odd)", 1005),
    ("timestamp(odd offset 1m)", 1003),
    ("temp + on() temp", 1200),
    ("rate({__name__=~'temp|late'}[5m])", 3100),
    ("ctr / on() group_left temp{room='a'}", 1000),
    ("sum(ctr) by (a) / ignoring(a) group_left sum(ctr)", 1000),
    ("ctr{a='x'} + on(a) ctr", 1000),
    ("odd", 375),
    ("max(odd) + min(odd)", 375),
    ("odd == bool odd", 375),
    (
        "seldon_api_executor_server_requests_seconds_count{code='200'} > bool ignoring(code, service) "
        "seldon_api_executor_client_requests_seconds_count",
        1000,
    ),
    (
        "seldon_api_executor_server_requests_seconds_count{code='200'} <= ignoring(code, service) "
        "seldon_api_executor_client_requests_seconds_count",
        1000,
    ),
    ("ctr == on() group_left(room) temp{room='b'}", 1000),
    ("temp * on(room) group_right late", 3200),
    ("count(temp > 100)", 1200),
    # subqueries (evaluation_interval 1m is the default step), the other 2.42 functions, atan2, RE2
    ("max_over_time(rate(ctr[1m])[10m:])", 1500),
    ("sum_over_time(odd[5m:15s])", 1000),
    ("avg_over_time(temp[10m:1m] offset 3m)", 2000),
    ("min_over_time(temp[5m:30s] @ 1500)", 3000),
    ("rate(ctr[5m:20s])", 2000),
    ("deriv(temp[10m:30s])", 2500),
    ("count_over_time(late[10m:1m])", 3050),
    ("max_over_time(deriv(rate(ctr[2m])[5m:15s])[10m:])", 3000),
    ("last_over_time(odd[3m:10s])", 880),
    ("predict_linear(temp[10m], 300)", 2500),
    ("predict_linear(odd[5m], 60)", 1000),
    ("holt_winters(temp[10m], 0.4, 0.7)", 2500),
    ("holt_winters(odd[5m], 0.1, 0.9)", 1000),
    ("minute(timestamp(temp)) + hour(timestamp(temp))", 1200),
    ("hour() + day_of_week() + day_of_month() + days_in_month() + month() + year() + day_of_year()", 1234.5),
    (
        "sin(temp) + cos(temp) + tan(temp) + asinh(temp) + atan(temp) + sinh(temp/10) + cosh(temp/10) + tanh(temp)",
        1200,
    ),
    ("asin(temp/10) + acos(temp/10) + acosh(abs(temp)) + atanh(temp/10)", 1200),
    ("deg(temp) - rad(temp) * pi()", 1200),
    ("temp{room='a'} atan2 on() temp{room='b'}", 1200),
    ("temp atan2 0.5", 1200),
    ("0.5 atan2 temp", 1200),
    ("sort_desc(rate(ctr[1m]) / rate(ctr[1m]))", 1000),
    ("label_join(temp, 'x', '-')", 1200),
    ("sum_over_time(odd[5m:1m])", 1000),
    ("histogram_quantile(NaN, rate(seldon_api_executor_client_requests_seconds_bucket[2m]))", 1000),
    ("temp{room=~'(?i)A'}", 1200),
    ("temp{room=~'x|((?i)B)'}", 1200),
    ("ctr{a=~`\\w`}", 1000),
]


def _promtool_results(tmp: Path) -> dict[int, dict[str, float] | str]:
    lines = ["evaluation_interval: 1m", "tests:", f"  - interval: {INTERVAL}s", "    input_series:"]
    for series, values in _dataset().items():
        text = " ".join("_" if v is None else v if isinstance(v, str) else repr(float(v)) for v in values)
        lines += [f"      - series: {json.dumps(series)}", f"        values: '{text}'"]
    lines.append("    promql_expr_test:")
    for i, (expr, t) in enumerate(EXPRESSIONS):
        lines += [
            f"      - expr: {json.dumps(expr + ' ' * (i + 1))}",
            f"        eval_time: {round(t * 1000)}ms",
            "        exp_samples: []",
        ]
    (tmp / "t.yml").write_text("\n".join(lines) + "\n")
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", "t.yml"], cwd=tmp, capture_output=True, text=True, timeout=60
    )
    out: dict[int, dict[str, float] | str] = {}
    current: int | None = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r'\s*expr: (".*"), time: [^,]*,(?: err: (.*))?$', line)
        if m:
            expr = json.loads(m.group(1))
            current = len(expr) - len(expr.rstrip(" ")) - 1
            if m.group(2):
                out[current] = m.group(2)
            continue
        m = re.match(r"\s*got: (.*)$", line)
        if m and current is not None:
            got: dict[str, float] = {}
            for part in re.finditer(r"(\{[^}]*\}) (\S+?)(?:, |$)", m.group(1)):
                got[part.group(1)] = float(part.group(2))
            out[current] = got
    return out


def _simkit_db() -> TSDB:
    db = TSDB()
    for series, values in _dataset().items():
        name, _, rest = series.partition("{")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        labels["__name__"] = name
        for i, v in enumerate(values):
            if v == "stale":
                db.append(labels, i * INTERVAL, STALE_NAN)
            elif v is not None:
                db.append(labels, i * INTERVAL, float(v))
    return db


def _key(metric: dict[str, str]) -> str:
    items = sorted(metric.items())
    return "{" + ", ".join(f'{k}="{v}"' for k, v in items) + "}"


def test_matches_prometheus_2_42(tmp_path: Path) -> None:
    oracle = _promtool_results(tmp_path)
    db = _simkit_db()
    mismatches: list[str] = []
    for i, (expr, t) in enumerate(EXPRESSIONS):
        want = oracle.get(i, {})
        try:
            res = instant_query(db, expr, t)
        except QueryError as exc:
            if not isinstance(want, str):
                mismatches.append(f"{expr!r}@{t}: simkit error {exc}, prometheus {want}")
            continue
        if isinstance(want, str):
            mismatches.append(f"{expr!r}@{t}: prometheus error {want}, simkit {res}")
            continue
        got = (
            {"{}": res.scalar}
            if res.result_type == "scalar"
            else {_key(s.metric): s.value for s in res.vector}
        )
        if set(got) != set(want):
            mismatches.append(f"{expr!r}@{t}: labels {sorted(got)} != {sorted(want)}")
            continue
        for k, v in want.items():
            g = got[k]
            assert g is not None
            ok = (math.isnan(v) and math.isnan(g)) or g == v or abs(g - v) <= 1e-9 * max(abs(v), abs(g))
            if not ok:
                mismatches.append(f"{expr!r}@{t}: {k} simkit {g!r} prometheus {v!r}")
    assert not mismatches, "\n".join(mismatches)


def test_oracle_reports_values(tmp_path: Path) -> None:
    """Guard against a silently empty oracle (every comparison above would trivially pass)."""
    oracle = _promtool_results(tmp_path)
    assert sum(1 for v in oracle.values() if isinstance(v, dict) and v) > len(EXPRESSIONS) // 2

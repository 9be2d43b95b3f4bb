"""simkit's PromQL answers against a real Prometheus 2.42 holding the same samples.

Each data set (``tests/support/datasets.py``) is backfilled into its own Prometheus. Every query
of the battery is sent, at several evaluation times, to both the real server (HTTP on loopback)
and simkit (``PrometheusAPITransport`` behind an ``httpx.Client``, the metric pipeline's path).
The two JSON answers must agree: status, resultType, the label sets, timestamps exactly and values
within 1e-9 relative (NaN equals NaN). A mismatch prints the query, the time and both answers.

Constructs simkit rejects on purpose are not in the battery; see the engine's own tests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from simkit.promql.api import PrometheusAPITransport
from tests.support.datasets import Dataset
from tests.support.prometheus import PrometheusServer

SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
SEL = "seldon_deployment_id='iris',predictor_name='{p}',kubernetes_namespace='ns-production'"

# The seed's six Iter8 metrics (examples/iter8/metrics.yaml), ${elapsedTime} left as {w}.
SEED = {
    "p95": "histogram_quantile(0.95, sum(rate(" + CLIENT + "_bucket{" + SEL + "}[{w}s])) by (le))",
    "error-count": "sum(increase(" + SERVER + "_count{code!='200'," + SEL + "}[{w}s])) or on() vector(0)",
    "error-rate": "(sum(increase(" + SERVER + "_count{code!='200'," + SEL + "}[{w}s])) or on() vector(0)) / "
    "(sum(increase(" + SERVER + "_count{" + SEL + "}[{w}s])) or on() vector(0))",
    "mean-latency": "(sum(increase(" + CLIENT + "_sum{" + SEL + "}[{w}s])) or on() vector(0)) / "
    "(sum(increase(" + CLIENT + "_count{" + SEL + "}[{w}s])) or on() vector(0))",
    "request-count": "sum(increase(" + CLIENT + "_sum{" + SEL + "}[{w}s])) or on() vector(0)",
    "user-engagement": "sum(increase("
    + SERVER
    + "_count{service='feedback',"
    + SEL
    + "}[{w}s])) or on() vector(0)",
}
SEED_WINDOWS = {
    "p95": (1, 10, 30, 600),
    "error-count": (10, 120, 1800),
    "error-rate": (1, 30, 900),
    "mean-latency": (10, 60, 3600),
    "request-count": (15, 300),
    "user-engagement": (10, 45, 1200),
}


def _seed_queries() -> list[str]:
    out = []
    for name, template in SEED.items():
        for p in ("baseline", "candidate"):
            for w in SEED_WINDOWS[name]:
                out.append(template.replace("{p}", p).replace("{w}", str(w)))
    return out


S, C = f"{SERVER}_count", f"{CLIENT}_count"
GENERAL = [
    S,
    f'{S}{{code="500"}}',
    f'{C}{{service=~"/.*",code!="200"}}',
    f'{SERVER}_sum{{predictor_name!~"base.*"}}',
    f"rate({S}[1m])",
    f"rate({S}[10s])",
    f"increase({S}[5m])",
    f"increase({C}[20m])",
    f"irate({S}[1m])",
    f"delta({SERVER}_sum[2m])",
    f"idelta({C}[1m])",
    f"resets({S}[30m])",
    f"changes({C}[10m])",
    f"histogram_quantile(0.5, sum by (le, predictor_name) (rate({SERVER}_bucket[2m])))",
    f'histogram_quantile(0.99, rate({CLIENT}_bucket{{service="/predict"}}[30s]))',
    f'histogram_quantile(0.9, sum by (le) (rate({SERVER}_bucket{{code="500"}}[20s])))',
    f"histogram_quantile(0.25, sum without (code, service) (increase({CLIENT}_bucket[15m])))",
    f"sum by (predictor_name) (rate({S}[5m]))",
    f"sum without (le, code) (rate({SERVER}_bucket[5m]))",
    f"count by (service) ({S})",
    f"avg(rate({SERVER}_sum[5m]))",
    f"max by (kubernetes_namespace) ({S})",
    f"min without (service, code) ({C})",
    f"topk(3, rate({S}[5m]))",
    f"bottomk(2, {C})",
    f"quantile(0.9, rate({S}[5m]))",
    f"stddev(rate({S}[5m]))",
    f"stdvar by (predictor_name) (rate({C}[5m]))",
    f"group by (code) ({S})",
    f"count({S} > 100)",
    f"avg_over_time({S}[5m])",
    f"max_over_time({CLIENT}_sum[10m])",
    f"min_over_time({S}[1m])",
    f"sum_over_time({C}[2m])",
    f"count_over_time({S}[7m])",
    f"last_over_time({S}[10m])",
    f"quantile_over_time(0.5, {C}[15m])",
    f"stddev_over_time({S}[5m])",
    f"rate({CLIENT}_sum[5m]) / rate({CLIENT}_count[5m])",
    f"{S} * 2 + 1",
    f"-{S}",
    "2 ^ 3 - 10 % 3",
    f"rate({S}[5m]) > 1",
    f"rate({S}[5m]) > bool 1",
    f"{S} == 0",
    "1 < bool 2",
    f"{S} >= {S} offset 5m",
    f'rate({S}[5m]) and on(predictor_name) rate({S}{{code="500"}}[5m])',
    f'{S} unless on(predictor_name, kubernetes_namespace) {S}{{code="500"}}',
    f'{S}{{service="feedback"}} or {S}{{code="500"}}',
    f"rate({S}[5m]) / on(predictor_name, kubernetes_namespace) group_left "
    f"sum by (predictor_name, kubernetes_namespace) (rate({S}[5m]))",
    f"sum by (predictor_name, code) (rate({S}[5m])) / ignoring(code) group_left "
    f"sum by (predictor_name) (rate({S}[5m]))",
    f"rate({S}[5m] offset 10m)",
    f"{S} offset 1m",
    f"scalar(sum(rate({S}[5m])))",
    "vector(1)",
    "time()",
    f"scalar(count({S})) * 2",
    f"time() - timestamp({S})",
    f'sum(rate({S}{{predictor_name="nope"}}[5m])) or on() vector(0)',
    "absent(nonexistent_metric)",
    f'absent({S}{{code="404"}})',
    f"round(rate({S}[5m]) * 100)",
    f"clamp_min(delta({SERVER}_sum[5m]), 0)",
    f"abs(-{S})",
    f"sqrt(sum({S}))",
    f'{S}{{predictor_name="candidate"}}[2m]',
    f"{C}[1m] offset 30s",
    f'label_replace(rate({S}[5m]), "version", "v-$1", "predictor_name", "(.*)")',
    f'count_values("total", round({S}, 1000))',
    f"sort_desc(sum by (service) (rate({S}[5m])))",
    f"sum by (code) (increase({S}[10m])) / on() group_left() sum(increase({S}[10m]))",
    f"(rate({CLIENT}_sum[5m]) / rate({CLIENT}_count[5m])) > bool 0.02 * 1",
    # subqueries, the functions and operator 2.42 added over the first battery, RE2 regexes
    f"max_over_time(rate({S}[1m])[30m:])",
    f"avg_over_time(sum by (predictor_name) (rate({S}[5m]))[20m:45s])",
    f"rate({S}[5m:30s] offset 2m)",
    f"min_over_time(rate({S}[1m])[10m:1m] @ end())",
    f"max_over_time(deriv(rate({C}[2m])[10m:20s])[15m:1m])",
    f"{S}[3m:1m]",
    f"predict_linear({S}[10m], 600)",
    f"holt_winters({SERVER}_sum[10m], 0.3, 0.6)",
    f"deriv({SERVER}_sum[5m])",
    f"hour(timestamp({S}))",
    "day_of_week()",
    "minute()",
    "days_in_month()",
    f"year({S} * 0 + 1.6e9)",
    f"sum({S}) atan2 sum({C})",
    f"cos(rate({S}[5m]))",
    f"asinh({C})",
    "deg(vector(pi())) + rad(vector(90))",
    f'{S}{{predictor_name=~"(?i)BASE.*"}}',
    f'{S}{{predictor_name=~"((?i)CAND).*"}}',
    f"{C}{{service=~`\\d*|/pre.*`}}",
    f"{S}{{service=~`[\\w/]+`}}",
    f'label_join({S}, "x", "-")',
    f"sort(rate({S}[10s]) / rate({S}[10s]))",
]
RANGE = [
    (f"rate({S}[1m])", 15.0),
    (f"sum by (predictor_name) (increase({S}[2m]))", 60.0),
    (f"histogram_quantile(0.95, sum by (le) (rate({CLIENT}_bucket[30s])))", 7.0),
    (f"{S}", 90.0),
    (SEED["error-rate"].replace("{p}", "candidate").replace("{w}", "120"), 30.0),
    ("time()", 45.0),
    (f"{S} > 1000", 20.0),
    (f"sum(rate({S}[5m])) or on() vector(0)", 300.0),
    (f"max_over_time(rate({S}[1m])[10m:])", 60.0),
    (f"rate({S}[2m:15s])", 37.0),
    (f"predict_linear({S}[5m], 300)", 30.0),
    ("sum_over_time(minute()[5m:1m])", 90.0),
]


def eval_times(ds: Dataset) -> list[float]:
    """Before data, early windows, the data set's marks (and 45 s after), the end, after the end."""
    times = {
        ds.start - 60.0,
        ds.start + 20.5,
        ds.start + 400.0,
        ds.end - 0.001,
        ds.end + 200.0,
        ds.end + 400.0,
    }
    for mark in ds.marks.values():
        times |= {mark, mark + 45.0}
    return sorted(round(t, 3) for t in times)


def _key(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _points(data: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], list[list[Any]]] | list[Any]:
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return list(result)
    if kind == "vector":
        return {_key(r["metric"]): [r["value"]] for r in result}
    return {_key(r["metric"]): r["values"] for r in result}


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """What differs between simkit's and Prometheus' decoded JSON answers (empty when they agree)."""
    if ours.get("status") != theirs.get("status"):
        return [f"status {ours.get('status')} != {theirs.get('status')}"]
    if theirs["status"] != "success":
        return [] if ours.get("errorType") == theirs.get("errorType") else ["errorType differs"]
    if ours["data"]["resultType"] != theirs["data"]["resultType"]:
        return [f"resultType {ours['data']['resultType']} != {theirs['data']['resultType']}"]
    a, b = _points(ours["data"]), _points(theirs["data"])
    if isinstance(a, list) or isinstance(b, list):
        ok = (
            isinstance(a, list)
            and isinstance(b, list)
            and a[0] == b[0]
            and (a[1] == b[1] if ours["data"]["resultType"] == "string" else _close(a[1], b[1]))
        )
        return [] if ok else [f"{a} != {b}"]
    out = [f"only in simkit: {dict(k)}" for k in a.keys() - b.keys()]
    out += [f"only in Prometheus: {dict(k)}" for k in b.keys() - a.keys()]
    for k in a.keys() & b.keys():
        pa, pb = a[k], b[k]
        if [p[0] for p in pa] != [p[0] for p in pb]:
            out.append(f"{dict(k)}: timestamps {[p[0] for p in pa][:8]} != {[p[0] for p in pb][:8]}")
        elif not all(_close(x[1], y[1]) for x, y in zip(pa, pb, strict=True)):
            bad = [(x[0], x[1], y[1]) for x, y in zip(pa, pb, strict=True) if not _close(x[1], y[1])]
            out.append(f"{dict(k)}: (t, simkit, prometheus) {bad[:5]}")
    return out


Answer = Callable[[str, dict[str, str]], tuple[int, dict[str, Any]]]


def _answerers(ds: Dataset, server: PrometheusServer) -> tuple[Answer, Answer]:
    ours = httpx.Client(transport=PrometheusAPITransport(ds.db, clock=lambda: ds.end), timeout=30)
    real = server.client(timeout=30)

    def ask(client: httpx.Client) -> Answer:
        def get(path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
            r = client.get(
                f"http://prometheus.example/api/v1/{path}" if client is ours else f"/api/v1/{path}",
                params=params,
            )
            return r.status_code, r.json()

        return get

    return ask(ours), ask(real)


def _compare(ds: Dataset, server: PrometheusServer, path: str, cases: list[dict[str, str]]) -> None:
    ours, real = _answerers(ds, server)
    failures = []
    for params in cases:
        (s1, a), (s2, b) = ours(path, params), real(path, params)
        assert s2 == 200, f"the battery must hold valid queries; Prometheus says {b} for {params}"
        diff = ([f"HTTP {s1} != {s2}"] if s1 != s2 else []) + differences(a, b)
        if diff:
            failures.append(
                f"\n--- {ds.name} {path} {params}\n  "
                + "\n  ".join(diff[:10])
                + f"\n  simkit:     {json.dumps(a)[:1500]}\n  prometheus: {json.dumps(b)[:1500]}"
            )
    assert not failures, "".join(failures[:5]) + (
        f"\n... {len(failures)} mismatches" if len(failures) > 5 else ""
    )


DATASET_NAMES = ("steady", "restart", "jitter")
QUERIES = _seed_queries() + GENERAL


def test_battery_size() -> None:
    assert len(set(QUERIES)) >= 50 and len(set(QUERIES)) == len(QUERIES)


@pytest.mark.parametrize("name", DATASET_NAMES)
@pytest.mark.parametrize("query", QUERIES)
def test_instant_query_matches_prometheus(
    name: str,
    query: str,
    datasets: dict[str, Dataset],
    backfilled_prometheus: Callable[[str], PrometheusServer],
) -> None:
    ds = datasets[name]
    _compare(
        ds,
        backfilled_prometheus(name),
        "query",
        [{"query": query, "time": f"{t:.3f}"} for t in eval_times(ds)],
    )


@pytest.mark.parametrize("name", DATASET_NAMES)
@pytest.mark.parametrize(("query", "step"), RANGE)
def test_range_query_matches_prometheus(
    name: str,
    query: str,
    step: float,
    datasets: dict[str, Dataset],
    backfilled_prometheus: Callable[[str], PrometheusServer],
) -> None:
    ds = datasets[name]
    spans = [(ds.start - 120.0, ds.end + 120.0), (ds.start + 600.25, ds.start + 1500.0)]
    cases = [{"query": query, "start": f"{a:.3f}", "end": f"{b:.3f}", "step": f"{step:g}"} for a, b in spans]
    cases.append(
        {"query": query, "start": f"{ds.start + 300:.3f}", "end": f"{ds.start + 900:.3f}", "step": "1m30s"}
    )
    _compare(ds, backfilled_prometheus(name), "query_range", cases)


MALFORMED = [
    "sum(rate(x[5m])",
    "rate(x)",
    "x[5m][5m]",
    "1 +",
    "sum by (le x)",
    "x{a=}",
    "histogram_quantile(0.9)",
    "x offset",
    "",
    "foo bar",
    "sum(x) by",
    "x{a='b'",
    "x[5x]",
    "topk(x, y)",
    "foo{",
    "()",
]


@pytest.mark.parametrize("query", MALFORMED)
def test_malformed_queries_are_bad_data_in_both(
    query: str, datasets: dict[str, Dataset], backfilled_prometheus: Callable[[str], PrometheusServer]
) -> None:
    ds = datasets["steady"]
    ours, real = _answerers(ds, backfilled_prometheus("steady"))
    for path, params in (
        ("query", {"query": query, "time": "1623771000"}),
        ("query_range", {"query": query, "start": "1623771000", "end": "1623771100", "step": "10"}),
    ):
        (s1, a), (s2, b) = ours(path, params), real(path, params)
        assert (
            (s1, a["status"], a["errorType"])
            == (s2, b["status"], b["errorType"])
            == (400, "error", "bad_data")
        ), (a, b)
        prefix = 'invalid parameter "query": ' if path == "query" else ""
        assert a["error"].startswith(prefix) and b["error"].startswith(prefix)
        # same "L:C: parse error:" head; the wording after it may differ
        assert a["error"].split(" parse error: ")[0] == b["error"].split(" parse error: ")[0], (a, b)


def test_execution_error_is_422_in_both(
    datasets: dict[str, Dataset], backfilled_prometheus: Callable[[str], PrometheusServer]
) -> None:
    ds = datasets["steady"]
    ours, real = _answerers(ds, backfilled_prometheus("steady"))
    params = {"query": f'{{__name__=~"{SERVER}_sum|{SERVER}_count"}} * 2', "time": f"{ds.end:.3f}"}
    (s1, a), (s2, b) = ours("query", params), real("query", params)
    assert s1 == s2 == 422 and a == b, (a, b)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_metadata_endpoints_match_prometheus(
    name: str, datasets: dict[str, Dataset], backfilled_prometheus: Callable[[str], PrometheusServer]
) -> None:
    ds = datasets[name]
    ours, real = _answerers(ds, backfilled_prometheus(name))
    cases: list[tuple[str, dict[str, str]]] = [
        ("labels", {}),
        ("label/predictor_name/values", {}),
        ("label/le/values", {}),
        ("label/code/values", {"match[]": f'{S}{{predictor_name="candidate"}}'}),
        ("series", {"match[]": f'{S}{{service="feedback"}}'}),
        ("series", {"match[]": f'{CLIENT}_sum{{code="500"}}'}),
    ]
    for path, params in cases:
        (s1, a), (s2, b) = ours(path, params), real(path, params)
        if path == "series":  # Prometheus does not promise an order for series
            a["data"], b["data"] = sorted(a["data"], key=_key), sorted(b["data"], key=_key)
        assert (s1, a) == (s2, b), f"{path} {params}\nsimkit:     {a}\nprometheus: {b}"


def test_harness_scrape_config_and_stop_by_pid(
    prometheus_binaries: Any, start_prometheus: Callable[..., PrometheusServer]
) -> None:
    import os
    import subprocess

    from tests.support.prometheus import ScrapeJob, render_config

    jobs = [ScrapeJob(["127.0.0.1:9"], interval="200ms", metrics_path="/prometheus", labels={"team": "a"})]
    config = render_config(jobs)
    check = subprocess.run(
        [prometheus_binaries.promtool, "check", "config", "/dev/stdin"],
        input=config,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    server = start_prometheus(jobs)
    with server.client() as c:
        assert c.get("/-/ready").status_code == 200
        assert c.get("/api/v1/status/config").json()["data"]["yaml"].count("127.0.0.1:9") == 1
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "Failed"), ("", "Skipped")])
def test_missing_prometheus_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    from tests.support import prometheus as harness

    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    monkeypatch.setattr(harness.os, "access", lambda path, mode: False)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException) as info:
        harness.require_prometheus()
    assert type(info.value).__name__ == outcome
    assert "prometheus and promtool not found" in str(info.value)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_datasets_are_deterministic_and_shaped_like_seldon(name: str, datasets: dict[str, Dataset]) -> None:
    import io

    import numpy as np

    from simkit.tsdb import write_openmetrics
    from tests.support.datasets import DATASETS

    first, again = io.StringIO(), io.StringIO()
    write_openmetrics(datasets[name].db, first)
    write_openmetrics(DATASETS[name]().db, again)
    assert first.getvalue() == again.getvalue()
    les = {dict(s.labels).get("le") for s in datasets[name].db if s.name.endswith("_bucket")}
    assert les == {
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.075",
        "0.1",
        "0.25",
        "0.5",
        "0.75",
        "1",
        "2.5",
        "5",
        "7.5",
        "10",
        "+Inf",
    }
    for s in datasets[name].db:
        t, _ = s.arrays()
        assert np.array_equal(np.round(t * 1000) / 1000, t)  # whole milliseconds

"""PromQL speed: simkit's in-process Prometheus API against a real Prometheus 2.42, same run.

The workload is what the Iter8 loop sends: the seed's six Metric queries for both versions
(12 queries), with ``${elapsedTime}`` growing as an experiment ages, evaluated every 5 minutes
over one hour of Seldon-executor series: by default ``scenarios/iris-abtest`` simulated for one
hour (``simkit.sim``), or ``--source steady|restart|jitter`` from ``tests/support/datasets.py``.

- simkit answers through ``httpx.Client(transport=PrometheusAPITransport(...))`` with the seed's
  ``urlTemplate`` host, the exact path the metric pipeline uses in sim;
- Prometheus answers over HTTP on 127.0.0.1, with the same samples backfilled by promtool.

Each side runs ``--reps`` passes of the whole workload after one warm-up, alternating with the
other side so that machine noise hits both; the score is the median queries/s. The last output line is one JSON object:
``{"simkit_queries_per_s": ..., "prometheus_queries_per_s": ..., "ratio": simkit/prometheus}``.
``--profile`` prints where simkit's time goes (cProfile, top functions by cumulative time).

Run: ``python benchmarks/promql.py [--reps 5] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support

from simkit.promql.api import PrometheusAPITransport  # noqa: E402
from tests.support.datasets import Dataset, load  # noqa: E402
from tests.support.prometheus import PrometheusUnavailable, find_binaries, run_prometheus  # noqa: E402

SEED_URL = "http://seldon-core-analytics-prometheus-seldon.seldon-system/api/v1/query"
SEL = "seldon_deployment_id='iris',predictor_name='$predictor',kubernetes_namespace='ns-production'"
SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
SEED_QUERIES = [
    f"histogram_quantile(0.95, sum(rate({CLIENT}_bucket{{{SEL}}}[${{elapsedTime}}s])) by (le))",
    f"sum(increase({SERVER}_count{{code!='200',{SEL}}}[${{elapsedTime}}s])) or on() vector(0)",
    f"(sum(increase({SERVER}_count{{code!='200',{SEL}}}[${{elapsedTime}}s])) or on() vector(0)) / "
    f"(sum(increase({SERVER}_count{{{SEL}}}[${{elapsedTime}}s])) or on() vector(0))",
    f"(sum(increase({CLIENT}_sum{{{SEL}}}[${{elapsedTime}}s])) or on() vector(0)) / "
    f"(sum(increase({CLIENT}_count{{{SEL}}}[${{elapsedTime}}s])) or on() vector(0))",
    f"sum(increase({CLIENT}_sum{{{SEL}}}[${{elapsedTime}}s])) or on() vector(0)",
    f"sum(increase({SERVER}_count{{service='feedback',{SEL}}}[${{elapsedTime}}s])) or on() vector(0)",
]


def load_source(source: str) -> Dataset:
    """One hour of series: the simulated seed scenario, or a synthetic data set."""
    if source != "sim":
        return load(source)
    from simkit.sim.world import simulate

    world = simulate(str(ROOT / "scenarios" / "iris-abtest"), 3600.0)
    db = world.tsdb
    assert db.min_time is not None and db.max_time is not None
    return Dataset("iris-abtest (sim)", db, db.min_time, db.max_time, "scenarios/iris-abtest, 1 h")


def workload(ds: Dataset, variant: int = 0) -> list[dict[str, str]]:
    """(query, time) pairs: 12 queries at every 5 minutes of the experiment's life.

    ``variant`` shifts the experiment's start by that many seconds, so that each pass sends query
    strings never seen before (as the real loop does: ``elapsedTime`` changes every iteration) and
    no parse or result cache on either side can make a repeated pass cheaper.
    """
    start = ds.start + 60.0 + variant
    out = []
    for k in range(1, 13):
        t = start + 300.0 * k
        if t > ds.end:
            break
        elapsed = str(int(t - start))
        for template in SEED_QUERIES:
            for predictor in ("baseline", "candidate"):
                q = template.replace("$predictor", predictor).replace("${elapsedTime}", elapsed)
                out.append({"query": q, "time": f"{t:.3f}"})
    return out


def run_once(client: httpx.Client, url: str, cases: list[dict[str, str]]) -> tuple[float, list[str]]:
    """Queries per second for one pass, and the first values (to check both sides agree)."""
    values = []
    t0 = time.perf_counter()
    for params in cases:
        r = client.get(url, params=params)
        r.raise_for_status()
        result = r.json()["data"]["result"]
        values.append(result[0]["value"][1] if result else "")
    return len(cases) / (time.perf_counter() - t0), values


def measure(sides: list[tuple[httpx.Client, str]], ds: Dataset,
            reps: int) -> list[tuple[float, list[str]]]:
    """Median queries/s per side; passes alternate between the sides so load noise hits both."""
    values = [run_once(client, url, workload(ds))[1] for client, url in sides]  # warm-up: connections
    rates: list[list[float]] = [[] for _ in sides]
    for rep in range(1, reps + 1):
        cases = workload(ds, variant=rep)
        for i, (client, url) in enumerate(sides):
            rates[i].append(run_once(client, url, cases)[0])
    return [(statistics.median(r), v) for r, v in zip(rates, values, strict=True)]


def profile(client: httpx.Client, cases: list[dict[str, str]]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    run_once(client, SEED_URL, cases)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--source", default="sim", choices=["sim", "steady", "restart", "jitter"])
    parser.add_argument("--profile", action="store_true", help="print a cProfile of simkit's side")
    args = parser.parse_args(argv)
    try:
        binaries = find_binaries()
    except PrometheusUnavailable as err:
        print(f"benchmarks/promql.py: {err}", file=sys.stderr)
        return 2
    ds = load_source(args.source)
    cases = workload(ds)
    print(f"{ds.name}: {len(ds.db)} series, {ds.db.sample_count()} samples; "
          f"{len(cases)} queries per pass, {args.reps} passes each")
    ours = httpx.Client(transport=PrometheusAPITransport(ds.db, clock=lambda: ds.end))
    with run_prometheus(ds.db, binaries=binaries) as server, server.client() as real:
        (simkit_qps, simkit_values), (prom_qps, prom_values) = measure(
            [(ours, SEED_URL), (real, "/api/v1/query")], ds, args.reps)
    agree = sum(a == b for a, b in zip(simkit_values, prom_values, strict=True))
    print(f"simkit:     {simkit_qps:10.1f} queries/s (median of {args.reps})")
    print(f"prometheus: {prom_qps:10.1f} queries/s (median of {args.reps})")
    print(f"identical first values: {agree}/{len(cases)}")
    if args.profile:
        print(profile(ours, workload(ds, variant=-1)))
    print(json.dumps({"simkit_queries_per_s": round(simkit_qps, 1), "prometheus_queries_per_s": round(prom_qps, 1),
                      "ratio": round(simkit_qps / prom_qps, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

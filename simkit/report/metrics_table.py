"""``simkit metrics``: every Metric of a scenario's experiment, evaluated in simulation, checked
against the simulation's ground truth.

A Metric object's PromQL is the user's; simkit answers it exactly as Prometheus would, bugs
included. Because the simulation also knows what really happened (requests served, latencies,
feedback), it can say when a query cannot be measuring what its name and units claim: a
"count" that is nowhere near the number of requests served, a "milliseconds" metric whose values
are seconds. That is how the seed's ``request-count`` (a sum of latency seconds) gets caught
before it reaches production.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from simkit.metrics import MetricFetcher
from simkit.prepare import prepare
from simkit.promql.api import PrometheusAPITransport
from simkit.sim.deployment import Truth
from simkit.sim.engine import AnyWorld, make_world
from simkit.spec.bundle import Bundle, load_scenario, resolve_service
from simkit.spec.experiment import Experiment, weight_refs
from simkit.spec.metric import Metric
from simkit.spec.quantity import duration_option
from simkit.spec.streams import child_rng


@dataclass(frozen=True)
class Row:
    metric: str
    version: str
    value: float | None
    units: str
    query: str
    message: str | None


@dataclass(frozen=True)
class GroundTruth:
    """What the simulation served to one version's predictor during the metric window."""

    predictions: int
    feedback: int
    errors: int
    latency_sum: float  # predictions only
    all_latency_sum: float  # predictions and feedback calls, as the unfiltered histograms hold them

    @property
    def calls(self) -> int:
        return self.predictions + self.feedback


def version_predictors(bundle: Bundle, world: AnyWorld, exp: Experiment) -> dict[str, str]:
    """Which simulated predictor serves each version, found through its weightObjRef."""
    out: dict[str, str] = {}
    for ref in weight_refs(exp):
        obj = world.store.get(ref.obj.kind, ref.obj.namespace, ref.obj.name) or {}
        parts = ref.pointer.strip("/").split("/")
        if ref.obj.kind == "SeldonDeployment" and len(parts) >= 3 and parts[1] == "predictors":
            preds = obj.get("spec", {}).get("predictors", [])
            i = int(parts[2])
            if i < len(preds):
                out[ref.version] = f"{ref.obj.namespace}/{ref.obj.name}/{preds[i]['name']}"
        elif ref.obj.kind == "VirtualService" and len(parts) >= 5 and parts[3] == "route":
            routes = obj.get("spec", {}).get("http", [{}])[int(parts[2])].get("route", [])
            i = int(parts[4])
            if i < len(routes):
                host = str(routes[i].get("destination", {}).get("host", ""))
                ns, _, rest = host.partition(".")
                svc_ns = rest.split(".")[0] if rest else ref.obj.namespace
                key = resolve_service(bundle, svc_ns, ns)
                if key:
                    out[ref.version] = key
    return out


def _snapshot(t: Truth) -> tuple[int, int, int, float, float]:
    return (t.predictions, t.feedback, t.errors, t.latency_sum, t.latency_sum + t.feedback_latency_sum)


def warnings_for(
    metric: Metric, ref: str, version: str, value: float | None, truth: GroundTruth | None
) -> list[str]:
    """Signs that a metric's query does not measure what its name and units say."""
    out: list[str] = []
    name = ref.split("/")[-1].lower()
    description = (metric.spec.description or "").lower()
    units = (metric.spec.units or "").lower()
    if value is None or math.isnan(value):
        return out
    if truth is None or truth.calls == 0:
        return out
    counts_requests = "request" in name and "count" in name or "number of requests" in description
    if counts_requests and abs(value - truth.calls) > max(0.1 * truth.calls, 2):
        hint = ""
        total = truth.all_latency_sum
        if total > 0 and abs(value - total) <= 0.2 * total:
            hint = f"; it matches the total latency of those calls ({total:.3f} s): the query sums _sum (seconds), use _count"
        out.append(
            f"{ref} for {version} is {value:g}, but the simulation served {truth.calls} calls in the window "
            f"({truth.predictions} predictions, {truth.feedback} feedback){hint}"
        )
    if units in ("milliseconds", "ms") and truth.predictions:
        mean_ms = 1000.0 * truth.latency_sum / truth.predictions
        if value > 0 and value * 200 < mean_ms:
            out.append(
                f"{ref} for {version} is {value:g} {metric.spec.units}, but true latencies average "
                f"{mean_ms:.1f} ms: the values are in seconds (the executor histograms are in seconds)"
            )
    return out


def evaluate(
    bundle: Bundle, at: float, seed: int | None, engine: str | None = None
) -> tuple[list[Row], list[str]]:
    world, _ = make_world(bundle, seed, engine)
    prepared = prepare(bundle.experiment_document(), bundle.documents)
    world.run_until(0.0)
    before = {k: _snapshot(p.truth) for k, p in world.predictors.items()}
    world.run_until(at)
    after = {k: _snapshot(p.truth) for k, p in world.predictors.items()}
    predictors = version_predictors(bundle, world, prepared.experiment)
    elapsed = max(1, math.floor(at))
    client = httpx.Client(transport=PrometheusAPITransport(world.tsdb, world.unix))
    fetcher = MetricFetcher(client, rng=child_rng(world.seed, "mock-metrics"))
    rows: list[Row] = []
    warnings: list[str] = []
    with client:
        for ref, metric in prepared.metrics:
            for version in prepared.plan.versions:
                got = fetcher.fetch(metric, version, prepared.metric_variables[version], elapsed, name=ref)
                rows.append(
                    Row(
                        ref,
                        version,
                        got.value,
                        metric.spec.units or "",
                        (got.query or "").strip(),
                        got.message,
                    )
                )
                key = predictors.get(version)
                truth = None
                if key in after:
                    b, a = before.get(key, (0, 0, 0, 0.0, 0.0)), after[key]
                    truth = GroundTruth(a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4])
                warnings += warnings_for(metric, ref, version, got.value, truth)
    return rows, warnings


def render(rows: list[Row], at: float) -> str:
    header = ("METRIC", "VERSION", "VALUE", "UNITS", "QUERY")
    table = [header] + [
        (
            r.metric,
            r.version,
            "unavailable" if r.value is None else f"{r.value:.6g}",
            r.units,
            r.query.replace("\n", " "),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [f"metrics at sim time {at:g}s (elapsedTime {max(1, math.floor(at))}s)"]
    for row in table:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    return "\n".join(lines)


def as_document(rows: list[Row], warnings: list[str], at: float) -> dict[str, Any]:
    """The ``-o json|yaml`` shape: ``{at, elapsedTime, metrics: [{metric, version, value, units,
    query, message}], warnings: [...]}``; an unavailable value is null with its message."""
    return {
        "at": at,
        "elapsedTime": max(1, math.floor(at)),
        "metrics": [
            {
                "metric": r.metric,
                "version": r.version,
                "value": r.value,
                "units": r.units,
                "query": r.query,
                "message": r.message,
            }
            for r in rows
        ],
        "warnings": list(warnings),
    }


def cmd_metrics(args: argparse.Namespace) -> int:
    at = duration_option("--at", args.at)  # after the experiment starts
    bundle = load_scenario(args.scenario)
    rows, warnings = evaluate(bundle, at, args.seed, getattr(args, "engine", None))
    fmt = getattr(args, "output", "table")
    if fmt != "table":
        from simkit.formats import render as render_as

        sys.stdout.write(render_as(as_document(rows, warnings, at), fmt))
        return 0
    print(render(rows, at))
    for r in rows:
        if r.value is None and r.message:
            print(f"note: {r.metric} for {r.version}: {r.message}")
    for w in warnings:
        print(f"warning: {w}")
    return 0

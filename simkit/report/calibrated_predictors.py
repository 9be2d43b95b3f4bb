"""The predictors of a calibrated scenario: each version's latency, errors and workers, and the
loads of a version whose traffic starts mid-recording (:mod:`simkit.report.calibration` writes
them into ``scenario.yaml``)."""

from __future__ import annotations

import math
from typing import Any

from simkit.replay.calibrate import Calibration, VersionFit

DEFAULT_CONCURRENCY = 4  # the Scenario's default workers per replica
# workers per call in flight: with 8x the mean in flight, an M/M/c queue's wait is negligible
# (Erlang C below 1e-6 at 4.5 in flight and 36 workers)
QUEUE_HEADROOM = 8.0
ASSUMED_CV = 0.65  # latency spread when only a mean is recorded: the default latency's (10 ms, p99 40 ms)


def six_digits(x: float) -> float:
    return float(f"{x:.6g}")


def arrivals_per_completion(latency: float, span: float | None) -> float:
    """Calls that must arrive per call recorded, for a version whose load starts at its onset and
    ran ``span`` seconds to the last scrape: a call is recorded when it completes, so one of
    ``latency`` seconds arriving in the last ``latency`` seconds is not (a 6-s call in a 60-s span
    is recorded with probability 0.9, a 10-ms one with 0.9998). A load that ran before the window
    (``span`` None) loses at the end what it gains at the start."""
    if span is None or span <= 0:
        return 1.0
    return span / max(span - latency, span / 2)


def latency_spec(f: VersionFit, span: float | None = None) -> dict[str, Any]:
    """The recorded bucket counts; with the recorded mean, each bucket's draws sit where they make
    that mean (``histogram_quantile`` sees only bucket counts, so quantiles stay exact), as a
    mixture of one uniform per bucket at a common relative position ``theta`` inside it. With a
    ``span`` (a load from its onset), each bucket's weight is its arrivals, not its completions
    (:func:`arrivals_per_completion`), so the calls the simulation records are the recorded ones."""
    n = sum(f.counts)
    lows = [0.0, *f.bounds[:-1]]
    widths = [b - a for a, b in zip(lows, f.bounds, strict=True)]
    arrived = [
        c * arrivals_per_completion(a + w / 2, span) for c, a, w in zip(f.counts, lows, widths, strict=True)
    ]
    hist = {
        "distribution": "empirical",
        "histogram": {
            "bounds": [six_digits(b) for b in f.bounds],
            "counts": [six_digits(c) for c in arrived],
        },
    }
    spread = sum(c * w for c, w in zip(f.counts, widths, strict=True))
    if not f.mean_latency or spread <= 0:
        return hist
    theta = (f.mean_latency * n - sum(c * a for c, a in zip(f.counts, lows, strict=True))) / spread
    theta = min(max(theta, 0.02), 0.98)
    comps = []
    for c, a, w in zip(f.counts, lows, widths, strict=True):
        if c > 0:
            lo, hi = (a, a + 2 * theta * w) if theta <= 0.5 else (a + (2 * theta - 1) * w, a + w)
            weight = c * arrivals_per_completion((lo + hi) / 2, span)
            comps.append(
                {
                    "distribution": "uniform",
                    "low": six_digits(lo),
                    "high": six_digits(hi),
                    "weight": six_digits(weight),
                }
            )
    return {"distribution": "mixture", "components": comps}


def concurrency_for(f: VersionFit, calls_per_second: float) -> int:
    """Workers enough that the calibrated world adds no queueing: the recorded latency already
    holds whatever queueing there was, so the simulated one must not add its own. Calls in flight
    by Little's law (every call of the deployment on this version: its share can reach 100 %),
    times QUEUE_HEADROOM; never below the Scenario default (4), which it was at any traffic the
    suites use (20 qps x 22 ms = 0.45 calls in flight)."""
    in_flight = calls_per_second * (f.mean_latency or 0.0)
    return max(DEFAULT_CONCURRENCY, math.ceil(QUEUE_HEADROOM * in_flight))


def arrival_span(f: VersionFit, cal: Calibration) -> float | None:
    """Seconds over which a version's own load sent its predictions at its final rate
    (:attr:`~simkit.replay.own_traffic.OwnTraffic.tail_span`); None when the ingress load carries
    it (a load that ran before the window loses at the end what it gains at the start) or when
    its traffic stopped before the last scrape."""
    return f.traffic.tail_span if f.traffic is not None and f.predictions > 0 else None


def in_flight_at_the_end(f: VersionFit, cal: Calibration) -> float:
    """Calls of a version's own load that must arrive on top of those recorded: those still in
    flight at the last scrape, with the very weights its latency law (:func:`latency_spec`)
    gives each bucket, so load and latency agree on the arrivals."""
    span = arrival_span(f, cal)
    if span is None:
        return 0.0
    if sum(f.counts) > 0:
        spec = latency_spec(f, span)
        arrived = (
            sum(c["weight"] for c in spec["components"])
            if spec["distribution"] == "mixture"
            else sum(spec["histogram"]["counts"])
        )
        factor = arrived / sum(f.counts)
    else:
        factor = arrivals_per_completion(f.mean_latency or 0.0, span)
    return f.predictions * (factor - 1.0)


def own_loads(f: VersionFit, cal: Calibration, epoch: float) -> list[dict[str, Any]]:
    """The Scenario loads of a version's own traffic, a Poisson load per segment
    (:mod:`simkit.replay.own_traffic`) at its recorded rate, straight to its predictor; the last
    segment raised by the calls in flight at the last scrape, and left open when its traffic ran
    to the end (a longer run keeps that rate)."""
    if f.traffic is None or f.predictions <= 0:
        return []
    segments = f.traffic.segments
    out = []
    for k, seg in enumerate(segments):
        final = k == len(segments) - 1
        extra = in_flight_at_the_end(f, cal) if final else 0.0
        load: dict[str, Any] = {
            "name": f"{f.identity.predictor}-traffic" + (f"-{k + 1}" if len(segments) > 1 else ""),
            "to": f"predictor:{f.identity.key}",
            "qps": six_digits((seg.predictions + extra) / max(seg.end - seg.start, 1e-9)),
            "pattern": "poisson",
            "start": six_digits(seg.start - epoch),
        }
        if not (final and f.traffic.runs_to_the_end):
            load["end"] = six_digits(seg.end - epoch)
        out.append(load)
    return out


def behaviour(f: VersionFit, calls_per_second: float, cal: Calibration) -> dict[str, Any]:
    behaviour: dict[str, Any] = {"concurrency": concurrency_for(f, calls_per_second)}
    if sum(f.counts) > 0:
        behaviour["latency"] = latency_spec(f, arrival_span(f, cal))
    elif f.mean_latency:
        behaviour["latency"] = {
            "distribution": "lognormal",
            "mean": six_digits(f.mean_latency),
            "cv": ASSUMED_CV,
        }
    base = {c: six_digits(r) for c, r in f.errors.items() if c not in f.onsets}
    if base:
        behaviour["errors"] = {"codes": base}
    return behaviour


def error_events(f: VersionFit, epoch: float) -> list[dict[str, Any]]:
    """One event per error code that began mid-recording, at its onset, adding it to the table."""
    table = {c: six_digits(r) for c, r in f.errors.items() if c not in f.onsets}
    out = []
    for code, at in sorted(f.onsets.items(), key=lambda x: (x[1], x[0])):
        table = {**table, code: six_digits(f.errors[code])}
        out.append(
            {
                "name": f"{f.identity.predictor}-errors-{code}-begin",
                "at": six_digits(at - epoch),
                "predictor": f.identity.key,
                "set": {"errors": {"codes": dict(table)}},
            }
        )
    return out

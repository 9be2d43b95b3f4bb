"""The figures a calibration is judged by, measured with PromQL on any TSDB, recorded or simulated.

Both sides are measured by the same queries over the same window (``increase`` and
``histogram_quantile`` at the recording's end over its whole span), so a difference in the report
is a difference in the data, not in the arithmetic. A recording holds only the series its Metrics
read: :func:`families` finds, from the recording, which histogram carries the predictions (the
executor's client histogram, else its server histogram), whether latency buckets and sums exist,
and where feedback calls are counted; the simulated side is then measured from the same families.
A figure the recording cannot give is ``None`` and reported as not calibrated.

A simulated side may pool several seeds: their series sit in one TSDB with a ``seed`` label
(:func:`pool`), sums add up over seeds, and rates are divided by the number of seeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from simkit.promql import instant_query
from simkit.tsdb import TSDB, Matcher

SERVER = "seldon_api_executor_server_requests_seconds"  # seldon-v1.md §1
CLIENT = "seldon_api_executor_client_requests_seconds"
PREDICT = {"/predict", "predictions"}
FEEDBACK = {"/send-feedback", "feedback"}
QUANTILES = (0.5, 0.95, 0.99)
POOL_LABEL = "simkit_calibration_seed"
EDGE = 0.001  # seconds the measured window reaches past the first and last recorded scrapes
_PREDICT_RE = "/predict|predictions"
_FEEDBACK_RE = "feedback|/send-feedback"


@dataclass(frozen=True)
class Families:
    """Which recorded series carry each figure (None / False: the recording lacks them)."""

    requests: str | None  # histogram whose _count{service=predict} counts predictions (and codes)
    buckets: bool  # client _bucket series of predictions: latency quantiles
    latency_sum: bool  # client _sum series of predictions: mean latency
    feedback: str | None  # histogram whose _count counts feedback calls


def _has(db: TSDB, name: str, matchers: tuple[Matcher, ...], services: set[str]) -> bool:
    return any(
        s.label_map.get("service", "") in services
        for s in db.select([Matcher("__name__", "=", name), *matchers])
    )


def families(db: TSDB, matchers: tuple[Matcher, ...]) -> Families:
    requests = next((h for h in (CLIENT, SERVER) if _has(db, f"{h}_count", matchers, PREDICT)), None)
    feedback = next((h for h in (SERVER, CLIENT) if _has(db, f"{h}_count", matchers, FEEDBACK)), None)
    return Families(
        requests,
        _has(db, f"{CLIENT}_bucket", matchers, PREDICT),
        _has(db, f"{CLIENT}_sum", matchers, PREDICT),
        feedback,
    )


def _values(db: TSDB, query: str, t: float) -> list[tuple[dict[str, str], float]]:
    res = instant_query(db, query, t)
    if res.result_type == "scalar":
        return [] if res.scalar is None or math.isnan(res.scalar) else [({}, float(res.scalar))]
    return [(s.metric, float(s.value)) for s in res.vector if not math.isnan(s.value)]


def _one(db: TSDB, query: str, t: float) -> float | None:
    got = _values(db, query, t)
    return got[0][1] if got else None


def measure(
    db: TSDB, matchers: tuple[Matcher, ...], fam: Families, lo: float, hi: float, seeds: int = 1
) -> dict[str, float | None]:
    """Figure name -> value over (lo, hi]; ``seeds`` > 1 when ``db`` pools that many runs."""
    sel = ",".join(f'{m.name}="{m.value}"' for m in matchers)
    # evaluated EDGE after hi over a window from EDGE before lo, to the ms: a window rounded to
    # whole seconds can miss the first scrape (at lo), and increase() then extrapolates from the
    # second one; a simulated scrape placed a float rounding after hi (Unix times at 2e-7 s
    # resolution) stays inside. No recorded sample (ms timestamps) moves across either edge.
    w = f"{max(1, int(round((hi - lo + 2 * EDGE) * 1000.0)))}ms"
    span = (hi - lo) * seeds
    hi += EDGE
    out: dict[str, float | None] = {}
    total = None
    if fam.requests is not None:
        pred = f'{fam.requests}_count{{{sel},service=~"{_PREDICT_RE}"}}'
        total = _one(db, f"sum(increase({pred}[{w}]))", hi)
        out["request rate (1/s)"] = None if total is None else total / span
        errors = _values(db, f'sum by (code) (increase({pred[:-1]},code!="200"}}[{w}]))', hi)
        for labels, n in sorted(errors, key=lambda x: x[0].get("code", "")):
            out[f"error rate {labels.get('code', '?')}"] = n / total if total else None
    if fam.latency_sum and fam.requests is not None:
        lat = _one(db, f'sum(increase({CLIENT}_sum{{{sel},service=~"{_PREDICT_RE}"}}[{w}]))', hi)
        calls = _one(db, f'sum(increase({CLIENT}_count{{{sel},service=~"{_PREDICT_RE}"}}[{w}]))', hi)
        out["mean latency (s)"] = lat / calls if lat is not None and calls else None
    if fam.buckets:
        for q in QUANTILES:
            out[f"p{int(q * 100)} latency (s)"] = _one(
                db,
                f"histogram_quantile({q}, sum by (le) (increase({CLIENT}_bucket{{{sel},"
                f'service=~"{_PREDICT_RE}"}}[{w}])))',
                hi,
            )
    if fam.feedback is not None:
        fb = _one(db, f'sum(increase({fam.feedback}_count{{{sel},service=~"{_FEEDBACK_RE}"}}[{w}]))', hi)
        out["feedback rate (1/s)"] = None if fb is None else fb / span
    return out


def pool(dbs: Iterable[TSDB]) -> tuple[TSDB, int]:
    """One TSDB holding every run's series, told apart by a ``seed`` label; and how many runs."""
    out = TSDB()
    n = 0
    for k, db in enumerate(dbs):
        n += 1
        out.types.update(db.types)
        for s in db:
            t, v = s.arrays()
            target = out.get_or_create({**s.label_map, POOL_LABEL: str(k)})
            for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
                target.append(ti, vi)
            if t.size:
                out.note_time(float(t[-1]))
    return out, n

"""``simkit calibrate``: fit per-version generators from a recording of Seldon executor series.

Per version (the predictor its series belong to):

- **latency**: the empirical histogram of the client histogram's bucket increments over the
  recording (``distribution: empirical`` with a ``histogram``; the sim draws uniformly inside a
  bucket). ``histogram_quantile`` interpolates linearly inside a bucket too, so p50/p95/p99
  computed the same way on simulated series match the recorded ones up to sampling noise: exact
  up to bucket resolution, which a fitted lognormal is not. The ``+Inf`` overflow, if any, gets a
  last bucket twice as wide as the largest finite bound.
- **errors**: the fraction of predictions per non-200 code.
- **feedback**: the rate of feedback calls, as a fixed-rate stream per predictor (the seed's
  fortio jobs), with the mean reward when the reward counters are recorded.
- **load**: total predictions per scrape interval. A stationary rate (index of dispersion
  consistent with Poisson or smoother) becomes one Poisson load at the mean rate; otherwise the
  shape is kept as a trace file (arrivals spread evenly inside each interval). The split between
  versions is the recorded mean share, written as the SeldonDeployment's ``traffic``.
- **executor overhead**: mean server minus mean client latency.

:func:`version_stats` measures the same figures with PromQL on any TSDB (recorded or simulated),
which is what the calibration report compares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from simkit.errors import DataError
from simkit.promql import instant_query
from simkit.replay.recording import Recording
from simkit.replay.selectors import MetricSelectors
from simkit.replay.traffic import cumulative, increase
from simkit.spec.pointers import split_pointer
from simkit.tsdb import TSDB, Matcher, Series

SERVER = "seldon_api_executor_server_requests_seconds"  # seldon-v1.md §1
CLIENT = "seldon_api_executor_client_requests_seconds"
FEEDBACK_TOTAL = "seldon_api_model_feedback_total"
REWARD_TOTAL = "seldon_api_model_feedback_reward_total"
PREDICT = {"/predict", "predictions"}
FEEDBACK = {"/send-feedback", "feedback"}
IDENTITY_LABELS = (("kubernetes_namespace", "namespace"), ("seldon_deployment_id", "deployment_name"),
                   ("predictor_name",))
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Identity:
    """The predictor a version's series belong to, and the matchers that select them."""

    namespace: str
    deployment: str
    predictor: str
    matchers: tuple[Matcher, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.deployment}/{self.predictor}"


@dataclass
class VersionFit:
    version: str
    identity: Identity
    predictions: float
    bounds: list[float]
    counts: list[float]
    errors: dict[str, float]
    feedback_qps: float
    reward: float
    share: float = 0.0


@dataclass
class Calibration:
    start: float
    end: float
    step: float
    versions: list[VersionFit]
    total_qps: float
    dispersion: float  # variance / mean of predictions per scrape interval
    stationary: bool
    window_counts: list[tuple[float, float, float]] = field(default_factory=list)  # (lo, hi, predictions)
    overhead: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start


def identify(db: TSDB, found: Sequence[MetricSelectors], versions: Sequence[str],
             source: str = "calibrate") -> dict[str, Identity]:
    """Each version's predictor, from the labels of the series its Metric selectors match."""
    out: dict[str, Identity] = {}
    for version in versions:
        tally: dict[tuple[tuple[str, str], ...], int] = {}
        for ms in found:
            if ms.version != version:
                continue
            for sel in ms.selectors:
                for s in db.select(sel):
                    labels = dict(s.labels)
                    ident = []
                    for names in IDENTITY_LABELS:
                        name = next((n for n in names if n in labels), None)
                        if name is not None:
                            ident.append((name, labels[name]))
                    if len(ident) == len(IDENTITY_LABELS):
                        tally[tuple(ident)] = tally.get(tuple(ident), 0) + 1
        if not tally:
            raise DataError(f"{source}: no Seldon executor series (with namespace, deployment and predictor_name "
                            f"labels) for version {version} in the recording")
        best = max(sorted(tally), key=lambda k: tally[k])
        out[version] = Identity(best[0][1], best[1][1], best[2][1], tuple(Matcher(k, "=", v) for k, v in best))
    return out


def _select(db: TSDB, name: str, ident: Identity) -> list[Series]:
    return db.select([Matcher("__name__", "=", name), *ident.matchers])


def _inc(s: Series, lo: float, hi: float) -> float:
    t, c = cumulative(s)
    return increase(t, c, lo, hi) if t.size else 0.0


def _service(s: Series) -> str:
    return dict(s.labels).get("service", "")


def fit_version(db: TSDB, version: str, ident: Identity, lo: float, hi: float) -> VersionFit:
    by_le: dict[float, float] = {}
    by_code: dict[str, float] = {}
    for s in _select(db, f"{CLIENT}_bucket", ident):
        if _service(s) in PREDICT:
            le = dict(s.labels).get("le", "+Inf")
            key = math.inf if le in ("+Inf", "Inf") else float(le)
            by_le[key] = by_le.get(key, 0.0) + _inc(s, lo, hi)
    for s in _select(db, f"{CLIENT}_count", ident):
        if _service(s) in PREDICT:
            code = dict(s.labels).get("code", "200")
            by_code[code] = by_code.get(code, 0.0) + _inc(s, lo, hi)
    total = sum(by_code.values())
    finite = sorted(k for k in by_le if math.isfinite(k))
    cum = [by_le[k] for k in finite]
    counts = [max(0.0, c - p) for c, p in zip(cum, [0.0, *cum[:-1]], strict=True)]
    bounds = list(finite)
    overflow = max(0.0, by_le.get(math.inf, total) - (cum[-1] if cum else 0.0))
    if overflow > 0 and bounds:
        bounds.append(2 * bounds[-1])
        counts.append(overflow)
    feedback = sum(_inc(s, lo, hi) for s in _select(db, f"{SERVER}_count", ident) if _service(s) in FEEDBACK)
    fb_total = sum(_inc(s, lo, hi) for s in _select(db, FEEDBACK_TOTAL, ident))
    rw_total = sum(_inc(s, lo, hi) for s in _select(db, REWARD_TOTAL, ident))
    errors = {c: n / total for c, n in sorted(by_code.items()) if c != "200" and total > 0 and n > 0}
    return VersionFit(version, ident, total, bounds, counts, errors, feedback / (hi - lo),
                      rw_total / fb_total if fb_total > 0 else 1.0)


def fit(recording: Recording, found: Sequence[MetricSelectors], versions: Sequence[str]) -> Calibration:
    db, h = recording.db, recording.header
    ids = identify(db, found, versions, str(recording.path))
    fits = [fit_version(db, v, ids[v], h.start, h.end) for v in versions]
    if not any(f.predictions > 0 and sum(f.counts) > 0 for f in fits):
        raise DataError(f"{recording.path}: no predictions recorded between {h.start:.3f} and {h.end:.3f}; nothing to calibrate")
    total = sum(f.predictions for f in fits)
    for f in fits:
        f.share = f.predictions / total if total else 0.0
    step = h.step or 15.0
    edges = np.arange(h.start, h.end + 1e-9, step)
    windows = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        n = sum(_inc(s, float(a), float(b)) for f in fits for s in _select(db, f"{CLIENT}_count", f.identity)
                if _service(s) in PREDICT)
        windows.append((float(a), float(b), n))
    # the first interval can miss requests of series that appeared inside it: judge the rest
    counts = np.array([w[2] for w in windows[1:]]) if len(windows) > 2 else np.zeros(1)
    mean = float(counts.mean()) if counts.size else 0.0
    dispersion = float(counts.var(ddof=1) / mean) if counts.size > 1 and mean > 0 else 0.0
    k = max(len(windows) - 1, 1)
    stationary = dispersion <= 1.0 + 4.0 * math.sqrt(2.0 / k)
    overheads = []
    for f in fits:
        sums = [s for s in _select(db, f"{SERVER}_sum", f.identity) if _service(s) in PREDICT]
        if not sums:  # the Metrics never read the server histogram's _sum: keep the default
            continue
        s_sum = sum(_inc(s, h.start, h.end) for s in sums)
        s_cnt = sum(_inc(s, h.start, h.end) for s in _select(db, f"{SERVER}_count", f.identity) if _service(s) in PREDICT)
        c_sum = sum(_inc(s, h.start, h.end) for s in _select(db, f"{CLIENT}_sum", f.identity) if _service(s) in PREDICT)
        if s_cnt > 0 and f.predictions > 0:
            overheads.append(s_sum / s_cnt - c_sum / f.predictions)
    overhead = max(0.0, float(np.mean(overheads))) if overheads else 0.0005
    return Calibration(h.start, h.end, step, fits, total / (h.end - h.start), dispersion, stationary, windows,
                       round(overhead, 6))


def weight_index(pointer: str) -> int | None:
    """The predictor index of a SeldonDeployment weight pointer (``/spec/predictors/1/traffic``)."""
    tokens = split_pointer(pointer)
    if len(tokens) == 4 and tokens[:2] == ["spec", "predictors"] and tokens[3] == "traffic" and tokens[2].isdigit():
        return int(tokens[2])
    return None


@dataclass(frozen=True)
class VersionStats:
    rate: float | None  # predictions per second
    error_rate: float | None
    quantiles: Mapping[float, float | None]
    feedback_rate: float | None


def _scalar(db: TSDB, query: str, t: float) -> float | None:
    res = instant_query(db, query, t)
    if res.result_type == "vector":
        if not res.vector:
            return None
        v = float(res.vector[0].value)
    else:
        v = float(res.scalar) if res.scalar is not None else math.nan
    return None if math.isnan(v) else v


def version_stats(db: TSDB, ident: Identity, lo: float, hi: float) -> VersionStats:
    """Rate, error rate, p50/p95/p99 and feedback rate over (lo, hi] with PromQL, so recorded and
    simulated series are measured the same way (``increase`` and ``histogram_quantile``)."""
    sel = ",".join(f'{m.name}="{m.value}"' for m in ident.matchers)
    w = f"{int(round(hi - lo))}s"
    pred = f'{CLIENT}_count{{{sel},service=~"/predict|predictions"}}'
    total = _scalar(db, f"sum(increase({pred}[{w}]))", hi)
    errors = _scalar(db, f'sum(increase({pred[:-1]},code!="200"}}[{w}])) or on() vector(0)', hi)
    quantiles = {
        q: _scalar(db, f'histogram_quantile({q}, sum(increase({CLIENT}_bucket{{{sel},service=~"/predict|predictions"}}'
                       f"[{w}])) by (le))", hi)
        for q in QUANTILES
    }
    fb = _scalar(db, f'sum(increase({SERVER}_count{{{sel},service=~"feedback|/send-feedback"}}[{w}])) or on() vector(0)', hi)
    span = hi - lo
    return VersionStats(
        rate=None if total is None else total / span,
        error_rate=None if not total or errors is None else errors / total,
        quantiles=quantiles,
        feedback_rate=None if fb is None else fb / span,
    )

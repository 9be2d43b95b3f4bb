"""``simkit calibrate``: fit per-version generators from a recording of Seldon executor series.

Per version (the predictor its series belong to), from whatever the recording holds (it holds
only the series the Experiment's Metrics read; :mod:`simkit.replay.measure` says which):

- **requests**: predictions counted from the client histogram's ``_count`` (else the server's),
  over the recording's scrape span; the split between versions is kept exactly (not rounded to
  whole percents: the scenario writer routes the remainder directly).
- **latency**: the empirical histogram of the client ``_bucket`` increments (``distribution:
  empirical``; the sim draws uniformly inside a bucket, as ``histogram_quantile`` interpolates),
  the ``+Inf`` overflow in a last bucket twice as wide as the largest bound. Without buckets but
  with ``_sum``, a lognormal with the recorded mean (its spread is not calibrated); without
  either, the default latency. Each gap is a :attr:`VersionFit.notes` line for the report.
- **errors**: the fraction of predictions per non-200 code.
- **feedback**: the rate of feedback calls as a fixed-rate stream per predictor (the seed's fortio
  jobs), with the mean reward when the reward counters are recorded.
- **own traffic**: a version whose prediction series appear mid-recording (a candidate at
  weight 0 until the first iteration), with at least ONSET_MIN_PREDICTIONS, gets a load of its own
  that keeps each scrape interval's recorded count (:mod:`simkit.replay.own_traffic`: from where
  its next interval's rate puts the start of its first scrape's count, to where it stopped growing).
- **scrape grid**: the mean recorded interval (not the median gap rounded to the ms), so that a
  simulated grid anchored at the first recorded scrape lands on the last one.
- **load**: total predictions per scrape interval. A stationary rate (index of dispersion
  consistent with Poisson or smoother) becomes one Poisson load; otherwise a trace file.
- **executor overhead**: mean server minus mean client latency, when both sums are recorded.

Counting follows the raw counters, not ``increase()``: a series present at the first scrape
counts from its value there, and a series that first appears later started from zero, so its
first scrape's count is kept (``increase()`` would drop it). A version whose series never appear
(a candidate that never served) is identified from its Metric selectors and left uncalibrated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simkit.errors import DataError
from simkit.replay.counting import Counter, Identity, identify, scrape_grid, scrape_span
from simkit.replay.measure import CLIENT, FEEDBACK, PREDICT, SERVER, Families, families
from simkit.replay.own_traffic import OwnTraffic, own_traffic
from simkit.replay.recording import Recording
from simkit.replay.selectors import MetricSelectors
from simkit.spec.pointers import split_pointer
from simkit.tsdb import Series

FEEDBACK_TOTAL = "seldon_api_model_feedback_total"
REWARD_TOTAL = "seldon_api_model_feedback_reward_total"
DEFAULT_OVERHEAD = 0.0005
ONSET_EVIDENCE = 3.0  # errors a steady rate would have made before a series appeared: P(none) = 5 %
# predictions a version must have served for its traffic onset to be placed from its first scrape's
# count; below (the 5-qps rollback's candidate: 8), that placement is noise, and the version is
# served from the start instead, which keeps increase()'s expectation at the raw count
ONSET_MIN_PREDICTIONS = 100
NEVER_SERVED = "never served a prediction in the recording: latency and errors keep the scenario defaults"


@dataclass
class VersionFit:
    version: str
    identity: Identity
    families: Families
    predictions: float  # counted over the span
    bounds: list[float]
    counts: list[float]  # per bucket; empty without buckets
    mean_latency: float | None  # from _sum / _count
    errors: dict[str, float]
    feedback_qps: float
    reward: float
    share: float = 0.0
    feedback_regular: bool = False  # feedback calls evenly spaced (fortio -qps), not Poisson
    # code -> Unix time its errors begin, for codes whose series appear mid-recording: the scenario
    # starts them then (an event), so that simulated series appear mid-way too and PromQL's
    # increase() treats both sides alike; after a real onset, the rate is per prediction after it
    onsets: dict[str, float] = field(default_factory=dict)
    # per-second rates of the counts (predictions by code, feedback) whose series exist at the
    # first scrape: the simulated load starts early enough for theirs to exist there too
    present_rates: list[float] = field(default_factory=list)
    feedback_present: bool = True  # False: feedback series appear after the first scrape
    # when its prediction series appear mid-recording and a steady share would have served more
    # than ONSET_EVIDENCE predictions before (a candidate at weight 0 until the first iteration):
    # the first scrape holding them, and the load of its own the scenario sends it directly
    born: float | None = None
    traffic: OwnTraffic | None = None
    notes: list[str] = field(default_factory=list)  # what could not be calibrated, and why

    @property
    def served(self) -> bool:
        return self.predictions > 0

    @property
    def traffic_onset(self) -> float | None:
        """Unix time its own load begins (None: the ingress load carries it)."""
        return self.traffic.onset if self.traffic is not None else None


@dataclass
class Calibration:
    start: float  # the recording's range
    end: float
    step: float
    first: float  # first and last scrape instants inside it: the span counts are taken over
    last: float
    versions: list[VersionFit]
    total_qps: float
    dispersion: float  # variance / mean of predictions per scrape interval
    stationary: bool
    window_counts: list[tuple[float, float, float]] = field(default_factory=list)  # (lo, hi, predictions)
    overhead: float = DEFAULT_OVERHEAD
    # predictions per window of the versions the ingress load carries (those without a traffic onset)
    routed_counts: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def span(self) -> float:
        return self.last - self.first


def fit_version(cnt: Counter, version: str, ident: Identity, lo: float, hi: float) -> VersionFit:
    fam = families(cnt.db, ident.matchers)
    notes: list[str] = []
    by_code: dict[str, float] = {}
    born: dict[str, float] = {}  # code -> first sample of its series inside the span
    predictions: list[Series] = []
    if fam.requests is not None:
        predictions = cnt.select(f"{fam.requests}_count", ident, PREDICT)
        for s in predictions:
            code = s.label_map.get("code", "200")
            by_code[code] = by_code.get(code, 0.0) + cnt.inc(s, lo, hi)
            t, _ = s.arrays()
            inside = t[(t >= lo) & (t <= hi)]
            if inside.size:
                born[code] = min(born.get(code, math.inf), float(inside[0]))
    total = sum(by_code.values())
    bounds: list[float] = []
    counts: list[float] = []
    mean = None
    if fam.buckets:
        by_le: dict[float, float] = {}
        for s in cnt.select(f"{CLIENT}_bucket", ident, PREDICT):
            le = s.label_map.get("le", "+Inf")
            key = math.inf if le in ("+Inf", "Inf") else float(le)
            by_le[key] = by_le.get(key, 0.0) + cnt.inc(s, lo, hi)
        bounds = sorted(k for k in by_le if math.isfinite(k))
        cum = [by_le[k] for k in bounds]
        counts = [max(0.0, c - p) for c, p in zip(cum, [0.0, *cum[:-1]], strict=True)]
        overflow = max(0.0, by_le.get(math.inf, total) - (cum[-1] if cum else 0.0))
        if overflow > 0 and bounds:
            bounds.append(2 * bounds[-1])
            counts.append(overflow)
    if fam.latency_sum:
        n = cnt.total(cnt.select(f"{CLIENT}_count", ident, PREDICT), lo, hi)
        s_sum = cnt.total(cnt.select(f"{CLIENT}_sum", ident, PREDICT), lo, hi)
        mean = s_sum / n if n > 0 else None
    if fam.requests is None:
        notes.append(
            "requests: no executor _count series of predictions recorded (its Metrics do not read them); "
            "its traffic share is taken as 0"
        )
    elif total <= 0:
        notes.append(NEVER_SERVED)
    if total > 0 and not (fam.buckets and sum(counts) > 0):
        notes.append(
            "latency quantiles (p50/p95/p99): no client _bucket series recorded; "
            + (
                "a lognormal with the recorded mean latency, its spread assumed"
                if mean
                else "no _sum either, default latency"
            )
        )
    span = max(hi - lo, 1e-9)
    present: list[float] = []
    feedback = 0.0
    fb_present = True
    if fam.feedback is not None:
        fb_series = cnt.select(f"{fam.feedback}_count", ident, FEEDBACK)
        feedback = cnt.total(fb_series, lo, hi)
        fb_present = any(s.arrays()[0].size and s.arrays()[0][0] <= lo + 0.5 * cnt.step for s in fb_series)
        if feedback > 0 and fb_present:
            present.append(feedback / span)
    else:
        notes.append("feedback rate: no feedback series recorded; no feedback generated")
    fb_total = cnt.total(cnt.select(FEEDBACK_TOTAL, ident), lo, hi)
    rw_total = cnt.total(cnt.select(REWARD_TOTAL, ident), lo, hi)
    birth = min(born.values(), default=lo)
    # its own load (simkit.replay.own_traffic) is built by fit() from its per-interval counts
    own = (
        total >= ONSET_MIN_PREDICTIONS
        and birth > lo + 0.5 * cnt.step
        and total * (birth - lo) / span > ONSET_EVIDENCE
    )
    seen = birth if own else lo  # the first scrape holding its predictions
    errors: dict[str, float] = {}
    onsets: dict[str, float] = {}  # error codes whose series appear after the version's traffic does
    for c, n in sorted(by_code.items()):
        if c == "200" or total <= 0 or n <= 0:
            continue
        errors[c] = n / total
        if born.get(c, lo) <= seen + 0.5 * cnt.step:
            continue  # present at the first scrape, or from the first of the version's traffic
        # its series appeared mid-recording: a late first error of a steady rate (then the errors
        # run from the span's start) or errors that began then (expected errors before > 3)
        onsets[c] = lo
        before = cnt.total(predictions, lo, born[c] - cnt.step)
        if before * n / total > ONSET_EVIDENCE:
            onsets[c] = born[c] - cnt.step  # the scrape interval its first error fell in
            exposed = cnt.total(predictions, onsets[c], hi)
            errors[c] = n / exposed if exposed > 0 else n / total
    # predictions by code there at the first scrape
    present += [n / span for c, n in by_code.items() if n > 0 and born.get(c, lo) <= lo + 0.5 * cnt.step]
    return VersionFit(
        version,
        ident,
        fam,
        total,
        bounds,
        counts,
        mean,
        errors,
        feedback / span,
        rw_total / fb_total if fb_total > 0 else 1.0,
        notes=notes,
        onsets=onsets,
        present_rates=present,
        feedback_present=fb_present,
        born=birth if own else None,
    )


def fit(recording: Recording, found: Sequence[MetricSelectors], versions: Sequence[str]) -> Calibration:
    db, h = recording.db, recording.header
    step = h.step or 15.0
    first, last = scrape_span(db, h.start, h.end)
    if last - first < step * 0.999:
        raise DataError(
            f"{recording.path}: the recording spans {last - first:g}s of scrapes, less than one scrape "
            f"interval ({step:g}s); nothing to calibrate"
        )
    # the mean recorded interval, not the median gap rounded to the ms (live scrapes jitter): the
    # simulated scrape grid, anchored at the first recorded scrape, then lands on the last one too
    # rather than drifting past it (the comparison window ends there)
    intervals = round((last - first) / step)
    if intervals >= 1:
        step = (last - first) / intervals
    cnt = Counter(db, first, step)
    ids = identify(db, found, versions, str(recording.path))
    fits = [fit_version(cnt, v, ids[v], first, last) for v in versions]
    family = next((f.families.requests for f in fits if f.families.requests is not None), None)
    for f in fits:  # the Metrics do read prediction counters, this version just has none: it never served
        if f.families.requests is None and family is not None:
            f.families = dataclasses.replace(f.families, requests=family)
            f.notes = [NEVER_SERVED, *(n for n in f.notes if not n.startswith("requests:"))]
    total = sum(f.predictions for f in fits)
    edges = scrape_grid(
        [
            s
            for f in fits
            if f.families.requests is not None
            for s in cnt.select(f"{f.families.requests}_count", f.identity, PREDICT)
        ],
        first,
        last,
        step,
    )
    if total <= 0:
        raise DataError(
            f"{recording.path}: no predictions recorded between {h.start:.3f} and {h.end:.3f} "
            "(or the Metrics read no executor _count series); nothing to calibrate"
        )
    for f in fits:
        f.share = f.predictions / total
        if f.families.feedback is not None and f.feedback_qps > 0:
            series = cnt.select(f"{f.families.feedback}_count", f.identity, FEEDBACK)
            per = [
                cnt.total(series, a, b)
                for a, b in zip(edges[:-1], edges[1:], strict=True)
                if b - a >= step * 0.75
            ]
            f.feedback_regular = len(per) > 2 and float(np.var(per, ddof=1)) < 0.5 * float(np.mean(per))
    counted = [f for f in fits if f.families.requests is not None]
    per_window: dict[str, list[float]] = {}
    for f in counted:
        predictions = cnt.select(f"{f.families.requests}_count", f.identity, PREDICT)
        per_window[f.version] = [
            cnt.total(predictions, a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        if f.born is not None:
            intervals_seen = list(zip(edges[:-1], edges[1:], per_window[f.version], strict=True))
            f.traffic = own_traffic(intervals_seen, f.born, step)
    windows = [
        (a, b, sum(per_window[f.version][i] for f in counted))
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]
    routed = [
        sum(per_window[f.version][i] for f in counted if f.traffic is None) for i in range(len(windows))
    ]
    full = [n for a, b, n in windows if b - a >= step * 0.75]
    counts = np.array(full) if len(full) > 1 else np.zeros(1)
    mean = float(counts.mean())
    dispersion = float(counts.var(ddof=1) / mean) if counts.size > 1 and mean > 0 else 0.0
    k = max(len(full) - 1, 1)
    stationary = dispersion <= 1.0 + 4.0 * math.sqrt(2.0 / k)
    return Calibration(
        h.start,
        h.end,
        step,
        first,
        last,
        fits,
        total / (last - first),
        dispersion,
        stationary,
        windows,
        _overhead(cnt, fits, first, last),
        routed,
    )


def _overhead(cnt: Counter, fits: Sequence[VersionFit], lo: float, hi: float) -> float:
    overheads = []
    for f in fits:
        s_sum = cnt.total(cnt.select(f"{SERVER}_sum", f.identity, PREDICT), lo, hi)
        s_cnt = cnt.total(cnt.select(f"{SERVER}_count", f.identity, PREDICT), lo, hi)
        c_sum = cnt.total(cnt.select(f"{CLIENT}_sum", f.identity, PREDICT), lo, hi)
        c_cnt = cnt.total(cnt.select(f"{CLIENT}_count", f.identity, PREDICT), lo, hi)
        if s_sum > 0 and s_cnt > 0 and c_cnt > 0:  # both histograms' sums recorded
            overheads.append(s_sum / s_cnt - c_sum / c_cnt)
    return round(max(0.0, float(np.mean(overheads))), 6) if overheads else DEFAULT_OVERHEAD


def weight_index(pointer: str) -> int | None:
    """The predictor index of a SeldonDeployment weight pointer (``/spec/predictors/1/traffic``)."""
    tokens = split_pointer(pointer)
    if (
        len(tokens) == 4
        and tokens[:2] == ["spec", "predictors"]
        and tokens[3] == "traffic"
        and tokens[2].isdigit()
    ):
        return int(tokens[2])
    return None

"""Deterministic synthetic Seldon-executor series, for differential tests and benchmarks.

Each data set is a :class:`~simkit.tsdb.TSDB` shaped like what the seldon-core-analytics
Prometheus scrapes from a v1 executor (``seldon-v1.md`` §1): the server and client latency
histograms with the 14 executor buckets plus ``+Inf`` (``le`` written like Go's ``%g``), their
``_sum``/``_count``, the executor labels plus ``seldon_deployment_id``/``kubernetes_namespace``
from relabelling, and feedback traffic (``service="feedback"`` on the server,
``service="/send-feedback"`` on the client).

The data sets differ in the awkward cases PromQL must get right:

- ``steady``: regular 15 s scrapes; 500s appear mid-way on the candidate (new series); the
  baseline's ``/send-feedback`` client series stops at 40 min (goes stale after 5 m).
- ``restart``: the candidate pod restarts at 30 min (counter reset plus a 30 s scrape gap); the
  baseline target is unreachable for 7 min (a gap longer than the 5 m lookback); a second
  deployment ``iris`` in ``ns-staging`` with the same predictor names (only the namespace differs).
- ``jitter``: irregular scrape times (±2.5 s jitter, different phases per target) and low
  traffic, so short windows often see no increase (``histogram_quantile`` gives NaN).

Everything is drawn from a seeded ``numpy.random.Generator``; timestamps are whole milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simkit.tsdb import TSDB, Series

EPOCH = 1623770418.0  # 2021-06-15T15:20:18Z, the seed experiment's era
EPOCH_MS = int(EPOCH * 1000)
SCRAPE_MS = 15_000
DURATION_MS = 3_600_000
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LE = tuple(f"{b:g}" for b in BUCKETS) + ("+Inf",)
SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
HIST_TYPES = {
    SERVER: ("histogram", "A histogram of latencies for executor server"),
    CLIENT: ("histogram", "A histogram of latencies for client calls from executor"),
}
MODEL_LABELS = {
    "model_name": "classifier",
    "model_image": "seldonio/sklearnserver",
    "model_version": "1.18.2",
}


@dataclass(frozen=True)
class Predictor:
    """How one predictor pod behaves: traffic, latency, errors, feedback, and its scrape target."""

    name: str
    namespace: str = "ns-production"
    deployment: str = "iris"
    rps: float = 5.0
    median_s: float = 0.012
    sigma: float = 0.6
    error_rate: float = 0.0
    errors_from_ms: int = 0  # offset from the start when errors begin (500 series appear then)
    feedback_rps: float = 0.7
    phase_ms: int = 0  # scrape phase relative to the epoch
    jitter_ms: int = 0  # uniform +- jitter of every scrape time
    restart_at_ms: int | None = None  # pod restart: counters reset, a 30 s gap in scrapes
    gap_ms: tuple[int, int] | None = None  # target down (no scrapes) in [from, to)
    feedback_client_stop_ms: int | None = None  # the /send-feedback client series stops here


@dataclass(frozen=True)
class Dataset:
    """A TSDB plus what a test needs to pick interesting evaluation times (Unix seconds)."""

    name: str
    db: TSDB
    start: float
    end: float
    description: str
    marks: dict[str, float] = field(default_factory=dict)


class _Hist:
    """Cumulative bucket counts, sum and count of one histogram child, like client_golang's."""

    __slots__ = ("buckets", "total", "count")

    def __init__(self) -> None:
        self.buckets = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
        self.total = 0.0
        self.count = 0

    def observe(self, values: npt.NDArray[np.float64]) -> None:
        if values.size == 0:
            return
        idx = np.searchsorted(np.asarray(BUCKETS), values, side="left")  # le is inclusive
        self.buckets += np.cumsum(np.bincount(idx, minlength=len(BUCKETS) + 1))
        self.total += float(np.sum(values))
        self.count += int(values.size)


def _scrape_times(rng: np.random.Generator, p: Predictor) -> npt.NDArray[np.int64]:
    nominal = np.arange(p.phase_ms, DURATION_MS + 1, SCRAPE_MS, dtype=np.int64)
    if p.jitter_ms:
        nominal = nominal + rng.integers(-p.jitter_ms, p.jitter_ms + 1, size=nominal.size)
    keep = nominal >= 0
    if p.gap_ms is not None:
        keep &= (nominal < p.gap_ms[0]) | (nominal >= p.gap_ms[1])
    if p.restart_at_ms is not None:
        keep &= (nominal < p.restart_at_ms) | (nominal >= p.restart_at_ms + 30_000)
    return np.unique(nominal[keep]) + EPOCH_MS


def _labels(metric: str, p: Predictor, service: str, code: str) -> dict[str, str]:
    labels = {
        "deployment_name": p.deployment,
        "predictor_name": p.name,
        "predictor_version": "",
        "service": service,
        "method": "post",
        "code": code,
        "seldon_deployment_id": p.deployment,
        "kubernetes_namespace": p.namespace,
        "job": "kubernetes-pods",
    }
    if metric == CLIENT:
        labels.update(MODEL_LABELS)
    return labels


def _emit(
    db: TSDB,
    cache: dict[tuple[str, ...], list[Series]],
    key: tuple[str, str, str],
    p: Predictor,
    hist: _Hist,
    t_ms: int,
) -> None:
    metric, service, code = key
    ckey = (p.namespace, p.deployment, p.name, *key)
    series = cache.get(ckey)
    if series is None:
        base = _labels(metric, p, service, code)
        series = [db.get_or_create({**base, "__name__": f"{metric}_bucket", "le": le}) for le in LE]
        series += [
            db.get_or_create({**base, "__name__": f"{metric}_sum"}),
            db.get_or_create({**base, "__name__": f"{metric}_count"}),
        ]
        cache[ckey] = series
    t = t_ms / 1000.0
    for s, v in zip(series[: len(LE)], hist.buckets, strict=True):
        s.append(t, float(v))
    series[-2].append(t, hist.total)
    series[-1].append(t, float(hist.count))
    db.note_time(t)


def _simulate(db: TSDB, rng: np.random.Generator, p: Predictor) -> None:
    """Draw every request between scrapes and write what each scrape would have seen."""
    cache: dict[tuple[str, ...], list[Series]] = {}
    hists: dict[tuple[str, str, str], _Hist] = {}
    times = _scrape_times(rng, p)
    prev = int(times[0]) - SCRAPE_MS
    restarted = False
    for t_ms in (int(t) for t in times):
        if p.restart_at_ms is not None and not restarted and t_ms - EPOCH_MS >= p.restart_at_ms:
            hists = {}  # new process: every child starts from zero and appears on first use
            restarted = True
        dt = (t_ms - prev) / 1000.0
        prev = t_ms
        erring = p.error_rate > 0 and t_ms - EPOCH_MS >= p.errors_from_ms
        n_ok = int(rng.poisson(p.rps * dt * (1.0 - (p.error_rate if erring else 0.0))))
        n_err = int(rng.poisson(p.rps * dt * p.error_rate)) if erring else 0
        n_fb = int(rng.poisson(p.feedback_rps * dt))
        for code, n in (("200", n_ok), ("500", n_err)):
            if n == 0 and code == "500":
                continue
            client = rng.lognormal(np.log(p.median_s), p.sigma, size=n)
            server = client + 0.0005 + rng.exponential(0.002, size=n)
            hists.setdefault((CLIENT, "/predict", code), _Hist()).observe(client)
            hists.setdefault((SERVER, "predictions", code), _Hist()).observe(server)
        fb_client = rng.lognormal(np.log(0.003), 0.4, size=n_fb)
        hists.setdefault((CLIENT, "/send-feedback", "200"), _Hist()).observe(fb_client)
        hists.setdefault((SERVER, "feedback", "200"), _Hist()).observe(fb_client + 0.0004)
        for key, hist in sorted(hists.items()):
            stop = p.feedback_client_stop_ms
            if key[1] == "/send-feedback" and stop is not None and t_ms - EPOCH_MS >= stop:
                continue
            _emit(db, cache, key, p, hist, t_ms)


def _build(
    name: str, seed: int, predictors: list[Predictor], description: str, marks: dict[str, float]
) -> Dataset:
    db = TSDB()
    db.types.update(HIST_TYPES)
    root = np.random.default_rng(seed)
    for p, child in zip(predictors, root.spawn(len(predictors)), strict=True):
        _simulate(db, child, p)
    assert db.min_time is not None and db.max_time is not None
    return Dataset(name, db, db.min_time, db.max_time, description, {k: EPOCH + v for k, v in marks.items()})


def steady() -> Dataset:
    return _build(
        "steady",
        101,
        [
            Predictor(
                "baseline",
                rps=5.0,
                median_s=0.012,
                feedback_rps=0.7,
                phase_ms=3_217,
                feedback_client_stop_ms=2_400_000,
            ),
            Predictor(
                "candidate",
                rps=5.0,
                median_s=0.009,
                sigma=0.5,
                error_rate=0.03,
                errors_from_ms=1_500_000,
                feedback_rps=1.0,
                phase_ms=9_481,
            ),
        ],
        "regular scrapes; candidate 500s from 25 min; baseline /send-feedback stops at 40 min",
        {"errors_start": 1_500, "feedback_stop": 2_400, "stale": 2_700},
    )


def restart() -> Dataset:
    return _build(
        "restart",
        202,
        [
            Predictor(
                "baseline",
                rps=4.0,
                median_s=0.04,
                sigma=0.8,
                error_rate=0.01,
                phase_ms=1_000,
                gap_ms=(1_200_000, 1_620_000),
            ),
            Predictor(
                "candidate",
                rps=6.0,
                median_s=0.12,
                sigma=0.7,
                error_rate=0.02,
                errors_from_ms=600_000,
                phase_ms=7_500,
                restart_at_ms=1_800_000,
                feedback_rps=1.0,
            ),
            Predictor("baseline", namespace="ns-staging", rps=1.0, median_s=0.02, phase_ms=12_345),
        ],
        "candidate restarts at 30 min (counter reset); baseline target down 20-27 min; a staging twin",
        {"gap_start": 1_200, "gap_end": 1_620, "restart": 1_800, "errors_start": 600},
    )


def jitter() -> Dataset:
    return _build(
        "jitter",
        303,
        [
            Predictor(
                "baseline",
                rps=0.4,
                median_s=0.2,
                sigma=1.0,
                phase_ms=2_000,
                jitter_ms=2_500,
                feedback_rps=0.05,
            ),
            Predictor(
                "candidate",
                rps=0.15,
                median_s=0.6,
                sigma=1.2,
                error_rate=0.2,
                errors_from_ms=900_000,
                phase_ms=10_250,
                jitter_ms=2_500,
                feedback_rps=0.02,
            ),
        ],
        "jittered scrape times, sparse traffic: short windows often have no increase",
        {"errors_start": 900},
    )


DATASETS: dict[str, Callable[[], Dataset]] = {"steady": steady, "restart": restart, "jitter": jitter}


def load(name: str) -> Dataset:
    return DATASETS[name]()

"""The Seldon v1 executor's Prometheus histograms, recorded per request and scraped into a TSDB.

Names, label names, buckets and label values follow seldon-v1.md §1 exactly:

- ``seldon_api_executor_server_requests_seconds``: one sample per incoming call, labels
  ``deployment_name, predictor_name, predictor_version, service, method, code``; ``service`` is
  ``predictions`` or ``feedback``.
- ``seldon_api_executor_client_requests_seconds``: one sample per call from the executor to the
  model, labels add ``model_name, model_image, model_version``; ``service`` is ``/predict`` or
  ``/send-feedback``.
- 14 buckets (``DefBuckets``) plus ``+Inf``, seconds, ``le`` written as Go's ``%g`` would
  (``"1"``, ``"2.5"``), codes as strings, ``method="post"``.

Prometheus' relabelling adds ``seldon_deployment_id`` and ``kubernetes_namespace`` (names
configurable), plus ``app``, ``seldon_app``, ``kubernetes_pod_name``, ``job`` and ``instance``.
Empty label values (``predictor_version=""``) are dropped, as Prometheus stores them.
A child series exists only after its first observation, like client_golang's HistogramVec.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate

from simkit.tsdb.store import TSDB, Series, canonical_labels

SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
FEEDBACK_TOTAL = "seldon_api_model_feedback_total"
REWARD_TOTAL = "seldon_api_model_feedback_reward_total"
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LE = tuple(f"{b:g}" for b in BOUNDS) + ("+Inf",)
TYPES = {
    SERVER: ("histogram", "A histogram of latencies for executor server"),
    CLIENT: ("histogram", "A histogram of latencies for client calls from executor"),
    FEEDBACK_TOTAL: ("counter", "Feedback received by the model"),
    REWARD_TOTAL: ("counter", "Sum of feedback rewards received by the model"),
}
SERVER_SERVICE = {"predict": "predictions", "feedback": "feedback"}
CLIENT_SERVICE = {"predict": "/predict", "feedback": "/send-feedback"}


@dataclass(frozen=True)
class PodIdentity:
    """The labels of one predictor pod (one replica), before and after relabelling."""

    namespace: str
    deployment: str
    predictor: str
    predictor_version: str
    model_name: str
    model_image: str
    model_version: str
    replica: int
    target_labels: tuple[tuple[str, str], ...]  # Prometheus label -> template

    @property
    def pod_name(self) -> str:
        # deterministic stand-in for the ReplicaSet hash and pod suffix
        digest = hashlib.sha256(
            f"{self.namespace}/{self.deployment}/{self.predictor}/{self.replica}".encode()
        ).hexdigest()
        return f"{self.deployment}-{self.predictor}-0-{self.model_name}-{digest[:9]}-{digest[9:14]}"

    def scrape_labels(self) -> dict[str, str]:
        ctx = {
            "deployment": self.deployment,
            "namespace": self.namespace,
            "predictor": self.predictor,
            "pod": self.pod_name,
        }
        labels = {name: tmpl.format(**ctx) for name, tmpl in self.target_labels}
        digest = int(hashlib.sha256(self.pod_name.encode()).hexdigest()[:6], 16)
        labels.update(
            {
                "app": f"{self.deployment}-{self.predictor}-0-{self.model_name}",
                "seldon_app": f"{self.deployment}-{self.predictor}",
                "kubernetes_pod_name": self.pod_name,
                "job": "kubernetes-pods",
                "instance": f"10.244.{digest % 250 + 1}.{digest // 250 % 250 + 2}:8000",
            }
        )
        return labels


def histogram_labels(pod: PodIdentity, family: str, kind: str, code: str) -> dict[str, str]:
    """The executor's own labels on one histogram child (no scrape labels)."""
    labels = {
        "deployment_name": pod.deployment,
        "predictor_name": pod.predictor,
        "predictor_version": pod.predictor_version,
        "method": "post",
        "code": code,
    }
    if family == SERVER:
        labels["service"] = SERVER_SERVICE[kind]
    else:
        labels.update(
            service=CLIENT_SERVICE[kind],
            model_name=pod.model_name,
            model_image=pod.model_image,
            model_version=pod.model_version,
        )
    return labels


def counter_labels(pod: PodIdentity) -> dict[str, str]:
    """The Python wrapper's labels on its feedback counters (seldon-v1.md §1.6)."""
    return {
        "deployment_name": pod.deployment,
        "predictor_name": pod.predictor,
        "predictor_version": pod.predictor_version,
        "model_name": pod.model_name,
        "model_image": pod.model_image,
        "model_version": pod.model_version,
        "seldon_deployment_name": pod.deployment,
        "method": "feedback",
        "worker_id": "1",
    }


class Cell:
    """One histogram child: non-cumulative bucket counts, sum and count."""

    __slots__ = ("counts", "sum", "count", "series")

    def __init__(self, series: list[Series]) -> None:
        self.counts = [0] * len(LE)
        self.sum = 0.0
        self.count = 0
        self.series = series  # buckets (len(LE)), then _sum, then _count

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BOUNDS, value)] += 1
        self.sum += value
        self.count += 1

    def scrape(self, t: float) -> None:
        Series.append_column(
            self.series, t, [*map(float, accumulate(self.counts)), self.sum, float(self.count)]
        )


class Counter:
    __slots__ = ("value", "series")

    def __init__(self, series: Series) -> None:
        self.value = 0.0
        self.series = series


class PodMetrics:
    """All executor (and model feedback) series of one pod; creates children on first use."""

    def __init__(self, pod: PodIdentity, db: TSDB) -> None:
        self.pod = pod
        self.db = db
        self._scrape_labels = pod.scrape_labels()
        self.cells: dict[tuple[str, str, str], Cell] = {}  # (family, kind, code) -> cell
        self.counters: dict[str, Counter] = {}

    def _base(self, family: str, kind: str, code: str) -> dict[str, str]:
        return {**self._scrape_labels, **histogram_labels(self.pod, family, kind, code)}

    def cell(self, family: str, kind: str, code: str) -> Cell:
        key = (family, kind, code)
        c = self.cells.get(key)
        if c is None:
            base = self._base(family, kind, code)
            series = [
                self.db.get_or_create(canonical_labels({**base, "__name__": family + "_bucket", "le": le}))
                for le in LE
            ]
            series.append(self.db.get_or_create(canonical_labels({**base, "__name__": family + "_sum"})))
            series.append(self.db.get_or_create(canonical_labels({**base, "__name__": family + "_count"})))
            c = self.cells[key] = Cell(series)
        return c

    def counter(self, name: str) -> Counter:
        c = self.counters.get(name)
        if c is None:
            labels = {**self._scrape_labels, "__name__": name, **counter_labels(self.pod)}
            c = self.counters[name] = Counter(self.db.get_or_create(canonical_labels(labels)))
        return c

    def scrape(self, t: float) -> None:
        for c in self.cells.values():
            c.scrape(t)
        for k in self.counters.values():
            k.series.append(t, k.value)

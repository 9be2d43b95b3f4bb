"""The simulated executors' *current* counters in Prometheus text format 0.0.4.

What a real Prometheus scraping ``simkit serve`` must see, so that the seed's Metric queries work
unchanged (seldon-v1.md §1):

- the two executor histograms, ``seldon_api_executor_server_requests_seconds`` and
  ``seldon_api_executor_client_requests_seconds``, 14 buckets plus ``+Inf``, ``_sum`` and
  ``_count``, with the executor's labels as :mod:`simkit.sim.executor_metrics` makes them
  (``predictor_version=""`` included: the executor exposes it, Prometheus drops it on ingestion);
- the model container's feedback counters (``seldon_api_model_feedback_total``, ``..._reward_total``);
- the labels seldon-core-analytics' relabelling would add (``seldon_deployment_id``,
  ``kubernetes_namespace`` or the scenario's ``targetLabels``, ``seldon_app``, ``app``,
  ``kubernetes_pod_name``), because the scrape here is one static target, not a pod discovery.
  ``job`` and ``instance`` are left out: Prometheus adds them, and exposing them would turn into
  ``exported_job``/``exported_instance``.

Counters are copied under the driver's lock (:func:`snapshot`) and formatted outside it, so a
scrape never sees a half-updated histogram (``_count`` always equals the ``+Inf`` bucket) and never
holds up the simulation for long. No timestamps: Prometheus stamps samples with its scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

from simkit.sim.engine import AnyPredictor
from simkit.sim.executor_metrics import (
    CLIENT,
    LE,
    SERVER,
    TYPES,
    PodMetrics,
    counter_labels,
    histogram_labels,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPER_LABELS = ("job", "instance")  # what Prometheus itself attaches to every scraped series
FAMILIES = (CLIENT, SERVER)


@dataclass(frozen=True)
class HistogramSample:
    family: str
    labels: tuple[tuple[str, str], ...]  # sorted, without ``le``
    cumulative: tuple[int, ...]  # one per LE entry, ``+Inf`` last
    sum: float
    count: int


@dataclass(frozen=True)
class CounterSample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class Snapshot:
    histograms: tuple[HistogramSample, ...]
    counters: tuple[CounterSample, ...]


def pod_labels(pod: PodMetrics) -> dict[str, str]:
    """The labels a seldon-core-analytics scrape attaches to this pod, minus ``job``/``instance``."""
    return {k: v for k, v in pod.pod.scrape_labels().items() if k not in SCRAPER_LABELS}


def _histogram_labels(pod: PodMetrics, family: str, kind: str, code: str) -> dict[str, str]:
    return {**pod_labels(pod), **histogram_labels(pod.pod, family, kind, code)}


def _counter_labels(pod: PodMetrics) -> dict[str, str]:
    return {**pod_labels(pod), **counter_labels(pod.pod)}


def snapshot(
    predictors: Iterable[AnyPredictor], namespace: str | None = None, pod_name: str | None = None
) -> Snapshot:
    """Copy the current counters (call under the driver's lock); optionally of one pod only."""
    hists: list[HistogramSample] = []
    counters: list[CounterSample] = []
    for sim in predictors:
        for pod in sim.pods:
            ident = pod.pod
            if pod_name is not None and (ident.pod_name != pod_name or ident.namespace != namespace):
                continue
            for (family, kind, code), cell in pod.cells.items():
                labels = tuple(sorted(_histogram_labels(pod, family, kind, code).items()))
                hists.append(
                    HistogramSample(family, labels, tuple(accumulate(cell.counts)), cell.sum, cell.count)
                )
            for name, counter in pod.counters.items():
                counters.append(
                    CounterSample(name, tuple(sorted(_counter_labels(pod).items())), counter.value)
                )
    return Snapshot(tuple(hists), tuple(counters))


def pod_exists(predictors: Iterable[AnyPredictor], namespace: str, pod_name: str) -> bool:
    return any(
        p.pod.namespace == namespace and p.pod.pod_name == pod_name for sim in predictors for p in sim.pods
    )


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Like Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` closely enough for Prometheus' parser."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels_text(labels: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)


def _header(name: str) -> list[str]:
    kind, help_text = TYPES[name]
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def render(snap: Snapshot) -> str:
    """Prometheus text format 0.0.4: each family once, series in label order, ``le`` last."""
    lines: list[str] = []
    for family in FAMILIES:
        samples = sorted((h for h in snap.histograms if h.family == family), key=lambda h: h.labels)
        if not samples:
            continue
        lines.extend(_header(family))
        for h in samples:
            base = _labels_text(h.labels)
            for le, cum in zip(LE, h.cumulative, strict=True):
                lines.append(f'{family}_bucket{{{base},le="{le}"}} {cum}')
            lines.append(f"{family}_sum{{{base}}} {format_value(h.sum)}")
            lines.append(f"{family}_count{{{base}}} {h.count}")
    for name in sorted({c.name for c in snap.counters}):
        lines.extend(_header(name))
        for c in sorted((c for c in snap.counters if c.name == name), key=lambda c: c.labels):
            lines.append(f"{name}{{{_labels_text(c.labels)}}} {format_value(c.value)}")
    return "\n".join(lines) + "\n" if lines else ""

"""Resolving an Experiment's metric references to Metric objects (iter8-v2.md §2.3 step 8).

etc3 copies every metric named in ``requestCount``, ``rewards[].metric``, ``indicators[]`` and
``objectives[].metric`` into ``status.metrics`` as ``{name: <reference as written>, metricObj}``,
and follows each metric's ``sampleSize`` reference recursively. Lookup rules:

* ``ns/name`` is looked up in ``ns``;
* a plain ``name`` in the experiment's namespace, except a plain ``sampleSize`` reference, which
  is looked up in the namespace of the metric that refers to it.

etc3 fails the experiment at run time ("Unable to find metric ...") and orders ``status.metrics``
by Go map iteration. simkit reports a missing metric up front as a SpecError naming the field
that holds the reference, and orders the result deterministically: the criteria references in
the order given (requestCount, rewards, indicators, objectives), then sampleSize references in
breadth-first order, each reference-as-written once.

This module takes plain inputs (field paths and strings) so it does not depend on the
Experiment model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from simkit.errors import Location, SpecError
from simkit.metrics.template import split_reference
from simkit.spec.metric import Metric

MAX_KNOWN_SHOWN = 20


def index_metrics(metrics: Sequence[Metric], default_namespace: str) -> dict[str, Metric]:
    """``{"ns/name": Metric}``; a Metric without a namespace lives in ``default_namespace``.

    Two Metric objects with the same key cannot both exist in a cluster, so that is an error
    naming the second one's file and document.
    """
    index: dict[str, Metric] = {}
    for metric in metrics:
        key = metric.key(default_namespace)
        if key in index:
            raise metric.error(
                "metadata.name", f"duplicate Metric {key} (also defined in {index[key].where.describe()})"
            )
        index[key] = metric
    return index


def _known(index: dict[str, Metric]) -> str:
    keys = sorted(index)
    if not keys:
        return "none"
    shown = ", ".join(keys[:MAX_KNOWN_SHOWN])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > MAX_KNOWN_SHOWN else "")


def resolve_metric_refs(
    refs: Sequence[tuple[str, str]],
    experiment_namespace: str,
    metrics: Sequence[Metric],
    where: Location,
    *,
    default_metric_namespace: str | None = None,
) -> list[tuple[str, Metric]]:
    """Resolve ``refs`` — ``(field path, reference)`` pairs in criteria order — to Metrics.

    ``where`` is the Experiment's location, used for errors in its fields; a broken
    ``sampleSize`` reference is reported against the Metric that holds it. Metrics without a
    namespace are placed in ``default_metric_namespace`` (default: the experiment's namespace,
    which is what ``kubectl apply`` of both files with one context does).
    """
    index = index_metrics(metrics, default_metric_namespace or experiment_namespace)
    resolved: list[tuple[str, Metric]] = []
    seen: dict[str, tuple[str, str]] = {}  # reference as written -> (key it resolved to, field)

    def add(ref: str, namespace: str, field: str, err_where: Location) -> Metric | None:
        ns, name = split_reference(ref, namespace)
        key = f"{ns}/{name}"
        if ref in seen:
            earlier_key, earlier_field = seen[ref]
            if earlier_key != key:
                raise SpecError(
                    err_where,
                    field,
                    f"reference {ref} means {key} here but {earlier_key} in {earlier_field}; write it as namespace/name",
                )
            return None
        metric = index.get(key)
        if metric is None:
            raise SpecError(err_where, field, f"unknown metric {key} (known: {_known(index)})")
        seen[ref] = (key, field)
        resolved.append((ref, metric))
        return metric

    queue: deque[Metric] = deque()
    for field, criteria_ref in refs:
        metric = add(criteria_ref, experiment_namespace, field, where)
        if metric is not None:
            queue.append(metric)
    while queue:
        referrer = queue.popleft()
        size_ref = referrer.spec.sample_size
        if size_ref is None:
            continue
        referrer_ns = referrer.namespace or default_metric_namespace or experiment_namespace
        metric = add(size_ref, referrer_ns, "spec.sampleSize", referrer.where)
        if metric is not None:
            queue.append(metric)
    return resolved

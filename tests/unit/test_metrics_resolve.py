"""Metric reference resolution (iter8-v2.md §2.3 step 8) with deterministic order."""

from __future__ import annotations

from pathlib import Path

import pytest

from simkit.errors import Location, SpecError
from simkit.metrics import resolve_metric_refs
from simkit.spec.documents import parse_yaml_documents
from simkit.spec.metric import Metric, load_metrics, parse_metric

SEED_METRICS = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest" / "metrics.yaml"
EXP = Location("experiment.yaml", 0, "Experiment", "quickstart-exp")


def make(name: str, namespace: str | None, sample_size: str | None = None, index: int = 0) -> Metric:
    spec: dict[str, object] = {"mock": [{"name": "v1", "level": 1}]}
    if sample_size is not None:
        spec["sampleSize"] = sample_size
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    raw = {"apiVersion": "iter8.tools/v2alpha2", "kind": "Metric", "metadata": metadata, "spec": spec}
    return parse_metric(raw, Location("metrics.yaml", index, "Metric", name))


def seed_metrics() -> list[Metric]:
    return load_metrics(parse_yaml_documents(SEED_METRICS.read_text(), "metrics.yaml"))


def test_seed_experiment_references_resolve_in_criteria_order() -> None:
    refs = [
        ("spec.criteria.requestCount", "iter8-seldon/request-count"),
        ("spec.criteria.rewards[0].metric", "iter8-seldon/user-engagement"),
        ("spec.criteria.objectives[0].metric", "iter8-seldon/mean-latency"),
        ("spec.criteria.objectives[1].metric", "iter8-seldon/95th-percentile-tail-latency"),
        ("spec.criteria.objectives[2].metric", "iter8-seldon/error-rate"),
    ]
    resolved = resolve_metric_refs(refs, "seldon", seed_metrics(), EXP)
    # The seed's recorded status.metrics holds exactly these five (sampleSize dedups to requestCount).
    assert [ref for ref, _ in resolved] == [ref for _, ref in refs]
    assert [(m.namespace, m.name) for _, m in resolved] == [tuple(ref.split("/")) for _, ref in refs]


def test_plain_name_is_looked_up_in_the_experiment_namespace() -> None:
    metrics = [make("latency", "other"), make("latency", "exp-ns")]
    ((ref, metric),) = resolve_metric_refs(
        [("spec.criteria.indicators[0]", "latency")], "exp-ns", metrics, EXP
    )
    assert ref == "latency" and metric.namespace == "exp-ns"


def test_plain_sample_size_is_looked_up_in_the_referring_metric_namespace() -> None:
    metrics = [
        make("latency", "mns", sample_size="count"),
        make("count", "mns", sample_size="base/total"),
        make("count", "exp-ns"),
        make("total", "base"),
    ]
    resolved = resolve_metric_refs(
        [("spec.criteria.objectives[0].metric", "mns/latency")], "exp-ns", metrics, EXP
    )
    assert [(ref, m.namespace, m.name) for ref, m in resolved] == [
        ("mns/latency", "mns", "latency"),
        ("count", "mns", "count"),
        ("base/total", "base", "total"),
    ]


def test_sample_size_refs_come_after_all_criteria_refs_and_duplicates_collapse() -> None:
    metrics = [make("a", "ns", sample_size="ns/n"), make("b", "ns", sample_size="n"), make("n", "ns")]
    refs = [
        ("spec.criteria.requestCount", "ns/a"),
        ("spec.criteria.indicators[0]", "ns/b"),
        ("spec.criteria.indicators[1]", "ns/a"),
    ]
    resolved = resolve_metric_refs(refs, "exp", metrics, EXP)
    # "ns/n" and "n" are different references (status.metrics keys) to the same Metric.
    assert [ref for ref, _ in resolved] == ["ns/a", "ns/b", "ns/n", "n"]
    assert resolved[2][1] is resolved[3][1]


def test_sample_size_cycle_terminates() -> None:
    metrics = [make("a", "ns", sample_size="b"), make("b", "ns", sample_size="a")]
    resolved = resolve_metric_refs([("spec.criteria.indicators[0]", "ns/a")], "ns", metrics, EXP)
    assert [ref for ref, _ in resolved] == ["ns/a", "b", "a"]


def test_missing_metric_error_names_experiment_field_and_known_metrics() -> None:
    refs = [
        ("spec.criteria.objectives[0].metric", "iter8-seldon/mean-latency"),
        ("spec.criteria.objectives[1].metric", "iter8-seldon/error-rate"),
        ("spec.criteria.objectives[2].metric", "iter8-seldon/foo"),
    ]
    with pytest.raises(SpecError) as info:
        resolve_metric_refs(refs, "seldon", seed_metrics(), EXP)
    assert str(info.value) == (
        "experiment.yaml: document 1 (Experiment quickstart-exp): field spec.criteria.objectives[2].metric: "
        "unknown metric iter8-seldon/foo (known: iter8-seldon/95th-percentile-tail-latency, "
        "iter8-seldon/error-count, iter8-seldon/error-rate, iter8-seldon/mean-latency, "
        "iter8-seldon/request-count, iter8-seldon/user-engagement)"
    )


def test_missing_sample_size_metric_is_reported_against_the_referring_metric() -> None:
    metrics = [make("lat", "ns", sample_size="count", index=3)]
    with pytest.raises(SpecError) as info:
        resolve_metric_refs([("spec.criteria.indicators[0]", "ns/lat")], "exp", metrics, EXP)
    err = info.value
    assert err.where == Location("metrics.yaml", 3, "Metric", "lat")
    assert err.field == "spec.sampleSize" and err.message == "unknown metric ns/count (known: ns/lat)"


def test_metric_without_namespace_lives_in_the_experiment_namespace_by_default() -> None:
    metrics = [make("m", None)]
    ((_, metric),) = resolve_metric_refs([("spec.criteria.indicators[0]", "exp/m")], "exp", metrics, EXP)
    assert metric.name == "m"
    with pytest.raises(SpecError):
        resolve_metric_refs(
            [("spec.criteria.indicators[0]", "exp/m")],
            "exp",
            metrics,
            EXP,
            default_metric_namespace="default",
        )


def test_duplicate_metric_objects_are_an_error() -> None:
    metrics = [make("m", "ns", index=0), make("m", "ns", index=5)]
    with pytest.raises(SpecError) as info:
        resolve_metric_refs([], "ns", metrics, EXP)
    assert info.value.where.index == 5 and "duplicate Metric ns/m" in info.value.message


def test_same_written_reference_meaning_two_metrics_is_an_error() -> None:
    metrics = [make("count", "exp"), make("count", "mns"), make("lat", "mns", sample_size="count")]
    refs = [("spec.criteria.requestCount", "count"), ("spec.criteria.indicators[0]", "mns/lat")]
    with pytest.raises(SpecError) as info:
        resolve_metric_refs(refs, "exp", metrics, EXP)
    assert info.value.field == "spec.sampleSize"
    assert "means mns/count here but exp/count in spec.criteria.requestCount" in info.value.message

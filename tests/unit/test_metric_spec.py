"""The Metric model: seed manifests parse, strict spec, jq compiled at load, quantities, refs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simkit.errors import Location, SpecError
from simkit.spec.documents import parse_yaml_documents
from simkit.spec.metric import load_metric, load_metrics, parse_metric

SEED_METRICS = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest" / "metrics.yaml"
WHERE = Location("metrics.yaml", 4, "Metric", "m")


def raw_metric(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "iter8.tools/v2alpha2",
        "kind": "Metric",
        "metadata": {"name": "m", "namespace": "ns1"},
        "spec": spec,
    }


HTTP = {"urlTemplate": "http://prom/api/v1/query", "jqExpression": ".data.result[0].value[1] | tonumber"}


def test_all_six_seed_metrics_parse_with_crd_defaults() -> None:
    docs = parse_yaml_documents(SEED_METRICS.read_text(), "metrics.yaml")
    metrics = load_metrics(docs)
    assert [m.name for m in metrics] == [
        "95th-percentile-tail-latency",
        "error-count",
        "error-rate",
        "mean-latency",
        "request-count",
        "user-engagement",
    ]
    assert {m.namespace for m in metrics} == {"iter8-seldon"}
    by_name = {m.name: m for m in metrics}
    assert by_name["error-count"].spec.type == "Counter"
    assert by_name["user-engagement"].spec.type == "Gauge"
    assert all(m.spec.method == "GET" for m in metrics)  # kubebuilder default
    assert by_name["mean-latency"].spec.sample_size == "iter8-seldon/request-count"
    assert by_name["mean-latency"].spec.units == "milliseconds"
    assert "${elapsedTime}s" in by_name["request-count"].spec.params[0].value
    # The Namespace document is skipped; each Metric remembers its document.
    assert by_name["95th-percentile-tail-latency"].where == Location(
        "metrics.yaml", 1, "Metric", "95th-percentile-tail-latency"
    )
    assert by_name["user-engagement"].where.index == 6


def test_unknown_spec_field_is_an_error_naming_file_document_field() -> None:
    with pytest.raises(SpecError) as info:
        parse_metric(raw_metric(**HTTP, jqExpresion="."), WHERE)
    assert str(info.value) == "metrics.yaml: document 5 (Metric m): field spec.jqExpresion: unknown field"


def test_other_metadata_is_allowed() -> None:
    raw = raw_metric(**HTTP)
    raw["metadata"].update({"labels": {"a": "b"}, "uid": "123"})
    assert parse_metric(raw, WHERE).name == "m"


def test_jq_expression_that_does_not_compile_is_a_spec_error_with_jq_message() -> None:
    with pytest.raises(SpecError) as info:
        parse_metric(raw_metric(urlTemplate="http://p", jqExpression=".data.result[0"), WHERE)
    err = info.value
    assert err.where == WHERE and err.field == "spec.jqExpression"
    assert "'.data.result[0' does not compile" in err.message
    assert "syntax error" in err.message and "column 14" in err.message
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"jqExpression": "."}, "spec.urlTemplate"),
        ({"urlTemplate": "http://p"}, "spec.jqExpression"),
        ({**HTTP, "type": "Histogram"}, "spec.type"),
        ({**HTTP, "method": "PUT"}, "spec.method"),
        ({**HTTP, "authType": "Digest"}, "spec.authType"),
        ({**HTTP, "authType": "Basic"}, "spec.secret"),
        ({**HTTP, "secret": "a/b/c"}, "spec.secret"),
        ({**HTTP, "sampleSize": "/x"}, "spec.sampleSize"),
        ({**HTTP, "params": [{"name": "query"}]}, "spec.params[0].value"),
        ({"mock": [{"name": "v1", "level": "fast"}]}, "spec.mock[0].level"),
        ({"mock": [{"name": "v1", "level": 1}, {"name": "v1", "level": 2}]}, "spec.mock[1].name"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_metric(raw_metric(**spec), WHERE)
    assert info.value.field == field


def test_mock_and_builtin_metrics_need_no_url_or_jq() -> None:
    mocked = parse_metric(
        raw_metric(mock=[{"name": "v1", "level": "200m"}, {"name": "v2", "level": 15}]), WHERE
    )
    assert mocked.spec.is_mocked and mocked.spec.url_template is None
    builtin = parse_metric(raw_metric(provider="iter8"), WHERE)
    assert builtin.spec.is_builtin and not builtin.spec.is_mocked


@pytest.mark.parametrize(
    ("level", "expected"), [("200m", 0.2), ("1k", 1000.0), (15, 15.0), ("0.5", 0.5), ("2Ki", 2048.0)]
)
def test_mock_levels_are_kubernetes_quantities(level: Any, expected: float) -> None:
    metric = parse_metric(raw_metric(mock=[{"name": "v1", "level": level}]), WHERE)
    assert metric.spec.mock is not None
    assert metric.spec.mock[0].level == pytest.approx(expected)


def test_full_spec_fields_and_aliases() -> None:
    metric = parse_metric(
        raw_metric(
            **HTTP,
            description="d",
            units="ms",
            provider="newrelic",
            params=[{"name": "nrql", "value": "SELECT 1"}],
            body='{"q": "$name"}',
            type="Counter",
            method="POST",
            authType="APIKey",
            secret="ns/sec",
            headerTemplates=[{"name": "X-Query-Key", "value": "${mykey}"}],
        ),
        WHERE,
    )
    spec = metric.spec
    assert (spec.method, spec.auth_type, spec.secret, spec.type) == ("POST", "APIKey", "ns/sec", "Counter")
    assert spec.header_templates[0].name == "X-Query-Key"
    dumped = metric.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["spec"]["headerTemplates"] == [{"name": "X-Query-Key", "value": "${mykey}"}]
    assert dumped["apiVersion"] == "iter8.tools/v2alpha2"


def test_load_metric_checks_kind_and_api_version() -> None:
    docs = parse_yaml_documents(
        "apiVersion: iter8.tools/v2alpha1\nkind: Metric\nmetadata: {name: a}\nspec: {}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
        "f.yaml",
    )
    with pytest.raises(SpecError) as info:
        load_metric(docs[0])
    assert info.value.field == "apiVersion" and "iter8.tools/v2alpha2" in info.value.message
    with pytest.raises(SpecError) as info:
        load_metric(docs[1])
    assert info.value.field == "kind"


def test_missing_name_is_reported() -> None:
    raw = raw_metric(**HTTP)
    raw["metadata"] = {"namespace": "x"}
    with pytest.raises(SpecError) as info:
        parse_metric(raw, WHERE)
    assert info.value.field == "metadata.name" and info.value.message == "required field is missing"

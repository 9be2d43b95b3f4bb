"""MetricFetcher over httpx.MockTransport: templating, request shape, jq, errors, mocks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from simkit.errors import Location
from simkit.metrics import MetricFetcher, iter8_error_text, override_base_url, substitute, version_arguments
from simkit.spec.documents import parse_yaml_documents
from simkit.spec.metric import Metric, load_metrics, parse_metric

SEED_METRICS = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest" / "metrics.yaml"
BASELINE_VARS = {"ns": "ns-production", "sid": "iris", "predictor": "baseline", "promote": "https://x/p.yaml"}
WHERE = Location("m.yaml", 0, "Metric", "m")

# Hand-written: the seed's mean-latency query for iris-v1 after 600.9 s.
MEAN_LATENCY_V1_600 = (
    "(sum(increase(seldon_api_executor_client_requests_seconds_sum{seldon_deployment_id='iris',"
    "predictor_name='baseline',kubernetes_namespace='ns-production'}[600s])) or on() vector(0)) / "
    "(sum(increase(seldon_api_executor_client_requests_seconds_count{seldon_deployment_id='iris',"
    "predictor_name='baseline',kubernetes_namespace='ns-production'}[600s])) or on() vector(0))\n"
)


def prom_vector(value: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1623770418.0, value]}]},
    }


EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


def seed_metric(name: str) -> Metric:
    docs = parse_yaml_documents(SEED_METRICS.read_text(), "metrics.yaml")
    return next(m for m in load_metrics(docs) if m.name == name)


def metric(**spec: Any) -> Metric:
    raw = {
        "apiVersion": "iter8.tools/v2alpha2",
        "kind": "Metric",
        "metadata": {"name": "m", "namespace": "ns1"},
        "spec": spec,
    }
    return parse_metric(raw, WHERE)


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed response."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def fetcher_for(
    answer: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[MetricFetcher, Recorder]:
    recorder = Recorder(answer)
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    return MetricFetcher(client, **kwargs), recorder


def json_answer(payload: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=payload)


def secrets_from(table: Mapping[tuple[str, str], Mapping[str, str]], calls: list[tuple[str, str]]) -> Any:
    def read(namespace: str, name: str) -> Mapping[str, str] | None:
        calls.append((namespace, name))
        return table.get((namespace, name))

    return read


# -- the seed metric, GET --------------------------------------------------------------------


def test_seed_metric_get_request_is_templated_and_value_extracted() -> None:
    fetcher, rec = fetcher_for(json_answer(prom_vector("0.0134")))
    result = fetcher.fetch(seed_metric("mean-latency"), "iris-v1", BASELINE_VARS, 600.9)
    assert result.value == pytest.approx(0.0134) and result.message is None
    (req,) = rec.requests
    assert req.method == "GET"
    assert req.url.host == "seldon-core-analytics-prometheus-seldon.seldon-system"
    assert req.url.path == "/api/v1/query"
    assert dict(req.url.params) == {"query": MEAN_LATENCY_V1_600}
    assert req.content == b""
    assert req.extensions["timeout"]["read"] == 5.0
    assert result.query == MEAN_LATENCY_V1_600
    assert result.url == str(req.url)
    assert result.raw == prom_vector("0.0134")


def test_the_loop_instant_is_sent_as_prometheus_time_to_the_ms() -> None:
    fetcher, rec = fetcher_for(json_answer(prom_vector("0.0134")))
    fetcher.fetch(seed_metric("mean-latency"), "iris-v1", BASELINE_VARS, 600.9, at=1623770418.12345)
    assert dict(rec.requests[0].url.params) == {"query": MEAN_LATENCY_V1_600, "time": "1623770418.123"}
    # a Metric's own time parameter wins
    own = metric(
        provider="prometheus",
        jqExpression=".data.result[0].value[1] | tonumber",
        urlTemplate="http://prom/api/v1/query",
        params=[{"name": "query", "value": "up"}, {"name": "time", "value": "5"}],
    )
    fetcher.fetch(own, "v", {}, 1.0, at=1623770418.0)
    assert dict(rec.requests[1].url.params) == {"query": "up", "time": "5"}


def test_candidate_variables_and_error_rate_query() -> None:
    fetcher, rec = fetcher_for(json_answer(prom_vector("0")))
    variables = {**BASELINE_VARS, "predictor": "candidate"}
    result = fetcher.fetch(seed_metric("error-count"), "iris-v2", variables, 30)
    assert result.value == 0.0
    query = rec.requests[0].url.params["query"]
    assert query == (
        "sum(increase(seldon_api_executor_server_requests_seconds_count{code!='200',seldon_deployment_id='iris',"
        "predictor_name='candidate',kubernetes_namespace='ns-production'}[30s])) or on() vector(0)\n"
    )


def test_url_override_replaces_scheme_host_port_and_keeps_path() -> None:
    fetcher, rec = fetcher_for(json_answer(prom_vector("1")), url_override="http://127.0.0.1:9090")
    fetcher.fetch(seed_metric("request-count"), "iris-v1", BASELINE_VARS, 10)
    url = rec.requests[0].url
    assert (url.scheme, url.host, url.port, url.path) == ("http", "127.0.0.1", 9090, "/api/v1/query")
    assert (
        override_base_url("http://prom.svc/api/v1/query?x=1", "https://h:1/prefix/")
        == "https://h:1/prefix/api/v1/query?x=1"
    )


def test_timeout_is_configurable() -> None:
    fetcher, rec = fetcher_for(json_answer(prom_vector("1")), timeout=0.5)
    fetcher.fetch(seed_metric("request-count"), "iris-v1", BASELINE_VARS, 10)
    assert rec.requests[0].extensions["timeout"]["connect"] == 0.5


# -- failures give None plus Iter8's message and a reason -----------------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (json_answer(EMPTY), "cannot be parsed as a number"),
        (json_answer(prom_vector("NaN")), "not a number"),
        (lambda r: httpx.Response(200, text="<html>oops</html>"), "is not JSON: '<html>oops</html>'"),
        (
            json_answer({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}, 400),
            "(HTTP 400; backend error bad_data: parse error at char 3)",
        ),
        (lambda r: httpx.Response(500, text="Internal Server Error"), "(HTTP 500) is not JSON"),
        (json_answer({"data": {"result": [{"value": [1, "fast"]}]}}), 'string ("fast") cannot be parsed'),
    ],
)
def test_bad_answers_give_none_and_a_message(
    answer: Callable[[httpx.Request], httpx.Response], reason: str
) -> None:
    fetcher, _ = fetcher_for(answer)
    result = fetcher.fetch(
        seed_metric("mean-latency"), "iris-v1", BASELINE_VARS, 60, name="iter8-seldon/mean-latency"
    )
    assert result.value is None
    assert result.message is not None
    assert result.message.startswith(
        "Error from metrics backend for metric: iter8-seldon/mean-latency and version: iris-v1: "
    )
    assert reason in result.message


def test_http_status_is_not_checked_when_the_body_has_a_value() -> None:
    fetcher, _ = fetcher_for(json_answer(prom_vector("2.5"), status=500))
    assert fetcher.fetch(seed_metric("mean-latency"), "iris-v1", BASELINE_VARS, 60).value == 2.5


@pytest.mark.parametrize(
    ("payload", "shown"), [({"v": True}, "true"), ({"v": "3"}, '"3"'), ({"v": [1]}, "[1]")]
)
def test_jq_result_must_be_a_number(payload: dict[str, Any], shown: str) -> None:
    fetcher, _ = fetcher_for(json_answer(payload))
    result = fetcher.fetch(metric(urlTemplate="http://p/q", jqExpression=".v"), "v1", {}, 5)
    assert result.value is None and result.message is not None
    assert f"gave {shown}, not a number" in result.message


def test_jq_first_output_is_used_and_empty_output_is_an_error() -> None:
    fetcher, _ = fetcher_for(json_answer({"xs": [7, 8]}))
    assert fetcher.fetch(metric(urlTemplate="http://p", jqExpression=".xs[]"), "v1", {}, 5).value == 7.0
    result = fetcher.fetch(metric(urlTemplate="http://p", jqExpression="empty"), "v1", {}, 5)
    assert result.value is None and result.message is not None and "produced no output" in result.message


def test_connect_error_and_timeout_never_raise() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fetcher, _ = fetcher_for(refuse)
    result = fetcher.fetch(seed_metric("request-count"), "iris-v1", BASELINE_VARS, 60)
    assert result.value is None and result.message is not None
    assert "ConnectError: [Errno 111] Connection refused" in result.message
    assert result.url.startswith(
        "http://seldon-core-analytics-prometheus-seldon.seldon-system/api/v1/query?query="
    )
    fetcher, _ = fetcher_for(slow)
    result = fetcher.fetch(seed_metric("request-count"), "iris-v1", BASELINE_VARS, 60)
    assert result.message is not None and "timed out after 5 s" in result.message


def test_iter8_error_text_faithful_spacing() -> None:
    assert iter8_error_text("a/b", "v1") == "Error from metrics backend for metric: a/b and version: v1"
    faithful = iter8_error_text("a/b", "v1", faithful_spacing=True)
    assert faithful == "Error from metrics backend for metric: a/b" + " " * 29 + "and version: v1"


# -- POST, body, headers, secrets, auth -------------------------------------------------------


def test_post_sends_params_in_query_string_and_templated_json_body() -> None:
    fetcher, rec = fetcher_for(json_answer({"results": [{"count": 42}]}))
    m = metric(
        urlTemplate="http://nr/api/query",
        jqExpression=".results[0].count",
        method="POST",
        params=[{"name": "from", "value": "${elapsedTime}s ago"}],
        body='{"query": "count by $name", "window": $elapsedTime, "sid": "${sid}", "cost": "$$5"}',
        headerTemplates=[{"name": "X-Tenant", "value": "t-$sid"}],
    )
    result = fetcher.fetch(m, "iris-v2", {"sid": "iris"}, 125.2)
    assert result.value == 42.0
    (req,) = rec.requests
    assert req.method == "POST"
    assert dict(req.url.params) == {"from": "125s ago"}
    assert json.loads(req.content) == {
        "query": "count by iris-v2",
        "window": 125,
        "sid": "iris",
        "cost": "$5",
    }
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-tenant"] == "t-$sid"  # headers never see version variables
    assert result.query == json.dumps(
        {"cost": "$5", "query": "count by iris-v2", "sid": "iris", "window": 125}, sort_keys=True
    )


def test_body_that_is_not_json_after_templating_gives_none_without_a_request() -> None:
    fetcher, rec = fetcher_for(json_answer(prom_vector("1")))
    m = metric(urlTemplate="http://p", jqExpression=".", method="POST", body='{"sid": $sid}')
    result = fetcher.fetch(m, "v1", {"sid": "iris"}, 5)
    assert result.value is None and result.message is not None
    assert "spec.body is not valid JSON after templating" in result.message
    assert rec.requests == []


def test_basic_auth_uses_secret_username_password_and_plain_name_is_in_iter8_system() -> None:
    calls: list[tuple[str, str]] = []
    secrets = secrets_from(
        {("iter8-system", "prom-creds"): {"username": "produser", "password": "t0p-secret"}}, calls
    )
    fetcher, rec = fetcher_for(json_answer(prom_vector("3")), secrets=secrets)
    m = metric(
        urlTemplate="https://prom/api/v1/query",
        jqExpression=".data.result[0].value[1] | tonumber",
        authType="Basic",
        secret="prom-creds",
        headerTemplates=[{"name": "X-User", "value": "$username"}],
    )
    assert fetcher.fetch(m, "v1", {}, 5).value == 3.0
    assert calls == [("iter8-system", "prom-creds")]
    req = rec.requests[0]
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"produser:t0p-secret").decode()
    assert req.headers["x-user"] == "$username"  # Basic: headers are not interpolated


def test_bearer_interpolates_url_and_headers_with_secret_but_params_with_version_only() -> None:
    calls: list[tuple[str, str]] = []
    secrets = secrets_from({("sec-ns", "tok"): {"token": "abc123", "host": "metrics.example"}}, calls)
    fetcher, rec = fetcher_for(json_answer({"v": 1.5}), secrets=secrets)
    m = metric(
        urlTemplate="https://${host}/q",
        jqExpression=".v",
        authType="Bearer",
        secret="sec-ns/tok",
        headerTemplates=[{"name": "Authorization", "value": "Bearer ${token}"}],
        params=[{"name": "q", "value": "$token/$name"}],
    )
    assert fetcher.fetch(m, "v1", {}, 5).value == 1.5
    req = rec.requests[0]
    assert req.url.host == "metrics.example"
    assert req.headers["authorization"] == "Bearer abc123"
    assert req.url.params["q"] == "$token/v1"
    assert calls[0] == ("sec-ns", "tok")


def test_headers_stay_raw_without_secret_and_url_stays_raw_without_secret() -> None:
    fetcher, rec = fetcher_for(json_answer({"v": 1}))
    m = metric(
        urlTemplate="http://p/$path",
        jqExpression=".v",
        authType="APIKey",
        headerTemplates=[{"name": "X-Key", "value": "${apikey}"}],
    )
    fetcher.fetch(m, "v1", {"path": "x", "apikey": "no"}, 5)
    req = rec.requests[0]
    assert req.headers["x-key"] == "${apikey}"
    assert req.url.raw_path.startswith(b"/$path")


def test_missing_secret_or_missing_keys_give_none_without_a_request() -> None:
    calls: list[tuple[str, str]] = []
    secrets = secrets_from({("ns", "partial"): {"username": "u"}}, calls)
    fetcher, rec = fetcher_for(json_answer({"v": 1}), secrets=secrets)
    m = metric(urlTemplate="http://p", jqExpression=".v", authType="Bearer", secret="ns/absent")
    result = fetcher.fetch(m, "v1", {}, 5)
    assert (
        result.value is None and result.message is not None and "secret ns/absent not found" in result.message
    )
    m = metric(urlTemplate="http://p", jqExpression=".v", authType="Basic", secret="ns/partial")
    result = fetcher.fetch(m, "v1", {}, 5)
    assert result.message is not None and "username and password keys missing" in result.message
    assert rec.requests == []
    no_reader, _ = fetcher_for(json_answer({"v": 1}))
    result = no_reader.fetch(m, "v1", {}, 5)
    assert result.message is not None and "no secret reader" in result.message


# -- mocks and builtins -----------------------------------------------------------------------


def test_mock_counter_is_elapsed_times_level() -> None:
    fetcher, rec = fetcher_for(json_answer({}))
    m = metric(type="Counter", mock=[{"name": "v1", "level": "200m"}, {"name": "v2", "level": "1k"}])
    assert fetcher.fetch(m, "v1", {}, 600.7).value == pytest.approx(120.0)
    assert fetcher.fetch(m, "v2", {}, 0.2).value == pytest.approx(1000.0)  # at least one second
    assert rec.requests == []


def test_mock_gauge_is_two_level_beta_from_the_injected_rng() -> None:
    fetcher, _ = fetcher_for(json_answer({}), rng=np.random.default_rng(42))
    m = metric(mock=[{"name": "v1", "level": 20}])
    got = [fetcher.fetch(m, "v1", {}, e).value for e in (1, 50, 50)]
    reference = np.random.default_rng(42)
    expected = [40.0 * reference.beta(1, 1), 40.0 * reference.beta(50, 50), 40.0 * reference.beta(50, 50)]
    assert got == pytest.approx(expected, rel=1e-12)
    assert got[1] != got[2]


def test_mock_version_without_level_and_builtin_give_none() -> None:
    fetcher, _ = fetcher_for(json_answer({}))
    result = fetcher.fetch(metric(mock=[{"name": "v1", "level": 1}]), "v2", {}, 5, name="ns1/m")
    assert result.value is None and result.message is not None
    assert result.message.startswith("Error from metrics backend for metric: ns1/m and version: v2: ")
    assert "no level for version v2" in result.message
    result = fetcher.fetch(metric(provider="iter8"), "v1", {}, 5)
    assert result.value is None and result.message is not None and "builtin" in result.message


# -- safe_substitute semantics ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("[$elapsedTime]", "[600]"),
        ("[${elapsedTime}s]", "[600s]"),
        ("cost $$5 and $$sid", "cost $5 and $sid"),
        ("${unknown} $unknown", "${unknown} $unknown"),
        ("$sid-canary", "iris-canary"),
        ("{$name}", "{iris-v1}"),
        ("lone $ and $1", "lone $ and $1"),
        ("${sid", "${sid"),
    ],
)
def test_safe_substitute_edge_cases(template: str, expected: str) -> None:
    args = version_arguments("iris-v1", {"sid": "iris"}, 600.99)
    assert substitute(template, args) == expected


def test_substitution_order_name_then_variables_then_elapsed_time() -> None:
    args = version_arguments("iris-v1", {"name": "override", "elapsedTime": "9999"}, 0.4)
    assert args == {"name": "override", "elapsedTime": "1"}

"""The in-process Prometheus API: JSON bytes, parameters, routing and errors, without Prometheus.

Expected strings are what a real Prometheus 2.42 answered for the same data (recorded by hand
with curl against the Debian package), not outputs of the code under test.
"""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pytest

from simkit.errors import QueryError, SpecError
from simkit.promql.api import (
    AsyncPrometheusAPITransport,
    PrometheusAPITransport,
    format_value,
    parse_duration_param,
    parse_error_text,
    parse_timestamp,
    render_result,
)
from simkit.promql.values import InstantSample, QueryResult, RangeSeries
from simkit.tsdb import TSDB

T0 = 1623770418.015
SEED_URL = "http://seldon-core-analytics-prometheus-seldon.seldon-system/api/v1/query"


@pytest.fixture
def db() -> TSDB:
    d = TSDB()
    for t, v in ((T0, 1.0), (1623770433.010, 2.5), (1623770448.0, 1e-7), (1623770463.0, 1e22)):
        d.append({"__name__": "foo_total", "a": "x"}, t, v)
    d.append({"__name__": "bar", "pod": "p<1>&"}, 1623770463.0, 4.0)
    return d


@pytest.fixture
def client(db: TSDB) -> httpx.Client:
    return httpx.Client(transport=PrometheusAPITransport(db, clock=lambda: 1623770463.0))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (1e-7, "1e-07"),
        (1e22, "1e+22"),
        (1e21, "1e+21"),
        (1e-6, "0.000001"),
        (1.5e-6, "0.0000015"),
        (9.99e20, "999000000000000000000"),
        (1.234e17, "123400000000000000"),
        (0.0, "0"),
        (-0.0, "-0"),
        (-3.25, "-3.25"),
        (1 / 3, "0.3333333333333333"),
        (100.0, "100"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (1623770418.5, "1623770418.5"),
    ],
)
def test_value_formatting_matches_go(value: float, text: str) -> None:
    assert format_value(value) == text


def test_vector_point_timestamps_keep_three_digits() -> None:
    r = QueryResult("vector", 1623770433.01, vector=[InstantSample({"a": "x", "__name__": "m"}, 2.5)])
    assert render_result(r) == (
        b'{"status":"success","data":{"resultType":"vector","result":'
        b'[{"metric":{"__name__":"m","a":"x"},"value":[1623770433.010,"2.5"]}]}}'
    )


def test_scalar_and_string_use_json_float_timestamps() -> None:
    scalar = QueryResult("scalar", 1623770418.5, scalar=1623770418.5)
    assert render_result(scalar) == (
        b'{"status":"success","data":{"resultType":"scalar","result":[1623770418.5,"1623770418.5"]}}'
    )
    string = QueryResult("string", 1.0, string='a"b')
    assert (
        render_result(string) == b'{"status":"success","data":{"resultType":"string","result":[1,"a\\"b"]}}'
    )


def test_matrix_and_empty_results() -> None:
    series = RangeSeries({"a": "x"}, np.array([T0, 1623770448.0]), np.array([1.0, math.nan]))
    body = render_result(QueryResult("matrix", 1623770448.0, matrix=[series]))
    assert body == (
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"x"},'
        b'"values":[[1623770418.015,"1"],[1623770448,"NaN"]]}]}}'
    )
    assert (
        render_result(QueryResult("vector", 1.0))
        == b'{"status":"success","data":{"resultType":"vector","result":[]}}'
    )


def test_label_values_are_html_escaped_like_go() -> None:
    r = QueryResult("vector", 1.0, vector=[InstantSample({"pod": "p<1>&\n"}, 1.0)])
    assert b'"pod":"p\\u003c1\\u003e\\u0026\\n"' in render_result(r)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1623770418.015", 1623770418.015),
        ("1623770418.0154", 1623770418.015),
        ("1e3", 1000.0),
        ("2021-06-15T15:20:48Z", 1623770448.0),
        ("2021-06-15T15:20:48.5+00:00", 1623770448.5),
        ("2021-06-15T17:20:48.123456+02:00", 1623770448.123),
    ],
)
def test_time_parameters(text: str, seconds: float) -> None:
    assert parse_timestamp(text) == seconds


@pytest.mark.parametrize("text", ["abc", "", "2021-06-15", "2021-13-15T15:20:48Z", "NaN", "1_000"])
def test_bad_time_parameters(text: str) -> None:
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15", 15.0), ("15s", 15.0), ("1h30m", 5400.0), ("0.0155", 0.015), ("1d", 86400.0), ("250ms", 0.25)],
)
def test_step_parameters(text: str, seconds: float) -> None:
    assert parse_duration_param(text, "step") == seconds


def test_parse_error_position_is_line_and_column() -> None:
    assert (
        parse_error_text(QueryError("unexpected end of input", 2, "1+"))
        == "1:3: parse error: unexpected end of input"
    )
    assert parse_error_text(QueryError("bad", 4, "a\n+ )")) == "2:3: parse error: bad"


def test_instant_query_over_any_host(client: httpx.Client) -> None:
    r = client.get(SEED_URL, params={"query": "foo_total", "time": "1623770433.01"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.text == (
        '{"status":"success","data":{"resultType":"vector","result":[{"metric":'
        '{"__name__":"foo_total","a":"x"},"value":[1623770433.010,"2.5"]}]}}'
    )


def test_default_time_is_the_clock_and_post_forms_work(client: httpx.Client) -> None:
    r = client.post("http://prometheus:9090/api/v1/query", data={"query": "foo_total"})
    assert r.json()["data"]["result"] == [
        {"metric": {"__name__": "foo_total", "a": "x"}, "value": [1623770463, "1e+22"]}
    ]


def test_range_selector_gives_raw_samples(client: httpx.Client) -> None:
    r = client.get("http://p/api/v1/query", params={"query": "foo_total[1m]", "time": "1623770463"})
    assert r.text.endswith(
        '"values":[[1623770418.015,"1"],[1623770433.010,"2.5"],[1623770448,"1e-07"],[1623770463,"1e+22"]]}]}}'
    )


def test_scalar_results(client: httpx.Client) -> None:
    assert (
        client.get("http://p/api/v1/query", params={"query": "1/0", "time": "1"}).text
        == '{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}'
    )
    assert client.get("http://p/api/v1/query", params={"query": "time()", "time": "1623770418.5"}).json()[
        "data"
    ]["result"] == [1623770418.5, "1623770418.5"]


def test_query_range_matrix(client: httpx.Client) -> None:
    r = client.get(
        "http://p/api/v1/query_range",
        params={"query": "foo_total", "start": "1623770433", "end": "1623770463", "step": "15s"},
    )
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    assert data["result"][0]["values"] == [[1623770433, "1"], [1623770448, "1e-07"], [1623770463, "1e+22"]]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("query", {"query": "1+", "time": "1"}, 'invalid parameter "query": 1:3: parse error: '),
        (
            "query",
            {"query": "foo_total", "time": "abc"},
            'invalid parameter "time": Invalid time value for \'time\': cannot parse "abc" to a valid timestamp',
        ),
        ("query_range", {"query": "1+", "start": "1", "end": "2", "step": "1"}, "1:3: parse error: "),
        (
            "query_range",
            {"query": "up", "start": "5", "end": "1", "step": "1"},
            'invalid parameter "end": end timestamp must not be before start time',
        ),
        (
            "query_range",
            {"query": "up", "start": "x", "end": "1", "step": "1"},
            'invalid parameter "start": cannot parse "x" to a valid timestamp',
        ),
        (
            "query_range",
            {"query": "up", "start": "1", "end": "1", "step": "0"},
            'invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer',
        ),
        (
            "query_range",
            {"query": "up", "start": "1", "end": "1", "step": "x"},
            'invalid parameter "step": cannot parse "x" to a valid duration',
        ),
        (
            "query_range",
            {"query": "up", "start": "0", "end": "100000", "step": "1"},
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        ("series", {}, "no match[] parameter provided"),
    ],
)
def test_bad_data_errors(client: httpx.Client, path: str, params: dict[str, str], message: str) -> None:
    r = client.get(f"http://p/api/v1/{path}", params=params)
    assert r.status_code == 400
    body = r.json()
    assert list(body) == ["status", "errorType", "error"]
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert body["error"].startswith(message)


def test_execution_errors_are_422() -> None:
    d = TSDB()
    d.append({"__name__": "foo_total", "a": "x"}, T0, 1.0)
    d.append({"__name__": "baz_total", "a": "x"}, T0, 2.0)
    c = httpx.Client(transport=PrometheusAPITransport(d, clock=lambda: T0))
    ok = c.get("http://p/api/v1/query", params={"query": '{__name__=~"foo_total|baz_total"}'})
    assert ok.status_code == 200 and len(ok.json()["data"]["result"]) == 2
    # both lose __name__ in the multiplication and then share the label set {a="x"}
    r = c.get("http://p/api/v1/query", params={"query": '{__name__=~"foo_total|baz_total"} * 2'})
    assert r.status_code == 422
    assert r.json() == {
        "status": "error",
        "errorType": "execution",
        "error": "vector cannot contain metrics with the same labelset",
    }


def test_unknown_paths_and_ready(client: httpx.Client) -> None:
    assert client.get("http://p/api/v1/nothere").status_code == 404
    assert client.get("http://p/metrics").text == "404 page not found\n"
    ready = client.get("http://p/-/ready")
    assert ready.status_code == 200 and ready.text == "Prometheus Server is Ready.\n"


def test_metadata_endpoints(client: httpx.Client) -> None:
    assert client.get("http://p/api/v1/labels").json() == {
        "status": "success",
        "data": ["__name__", "a", "pod"],
    }
    assert client.get("http://p/api/v1/label/__name__/values").json()["data"] == ["bar", "foo_total"]
    series = client.get("http://p/api/v1/series", params={"match[]": "foo_total"}).json()
    assert series == {"status": "success", "data": [{"__name__": "foo_total", "a": "x"}]}
    late = client.get("http://p/api/v1/series", params={"match[]": '{__name__=~".+"}', "start": "1623770450"})
    assert len(late.json()["data"]) == 2
    early = client.get("http://p/api/v1/series", params={"match[]": '{__name__=~".+"}', "end": "1623770450"})
    assert early.json()["data"] == [{"__name__": "foo_total", "a": "x"}]


def test_async_transport(db: TSDB) -> None:
    import asyncio

    async def run() -> dict[str, object]:
        async with httpx.AsyncClient(transport=AsyncPrometheusAPITransport(db, lambda: 1623770463.0)) as c:
            r = await c.get("http://p/api/v1/query", params={"query": "bar"})
            return dict(r.json())

    body = asyncio.run(run())
    assert json.dumps(body["data"]) == (
        '{"resultType": "vector", "result": [{"metric": {"__name__": "bar", '
        '"pod": "p<1>&"}, "value": [1623770463, "4"]}]}'
    )


def test_cli_command(tmp_path: object, db: TSDB, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from simkit.cli import main
    from simkit.tsdb import save_openmetrics

    path = Path(str(tmp_path)) / "d.om"
    save_openmetrics(db, path)
    assert main(["promql", "--data", str(path), "foo_total"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"]["result"][0]["value"] == [1623770463, "1e+22"]  # newest sample time by default
    assert (
        main(
            [
                "promql",
                "--data",
                str(path),
                "--start",
                "2021-06-15T15:20:33Z",
                "--end",
                "1623770463",
                "--step",
                "15s",
                "foo_total",
            ]
        )
        == 0
    )
    assert [p[0] for p in json.loads(capsys.readouterr().out)["data"]["result"][0]["values"]] == [
        1623770433,
        1623770448,
        1623770463,
    ]
    assert main(["promql", "--data", str(path), "sum(foo_total"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simkit promql: error: ") and err.count("\n") == 1 and "position" in err
    assert main(["promql", "--data", str(path), "--time", "yesterday", "foo_total"]) == 2
    assert "--time" in capsys.readouterr().err


def test_cli_evaluate_rejects_partial_ranges(db: TSDB) -> None:
    from simkit.promql.commands import evaluate

    with pytest.raises(SpecError, match="--end"):
        evaluate(db, "foo_total", start="1", step="15s")

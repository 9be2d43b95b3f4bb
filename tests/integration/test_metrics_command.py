"""`simkit metrics`: the seed's Metric objects evaluated in sim, and the warnings about broken queries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simkit.cli import main
from simkit.report.metrics_table import evaluate
from simkit.spec.bundle import load_scenario

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"


def test_every_seed_query_evaluates_for_both_versions() -> None:
    rows, _ = evaluate(load_scenario(SEED), 150.0, None)
    assert {(r.metric.split("/")[-1], r.version) for r in rows} == {
        (m, v)
        for m in (
            "request-count",
            "user-engagement",
            "mean-latency",
            "95th-percentile-tail-latency",
            "error-rate",
        )
        for v in ("iris-v1", "iris-v2")
    }
    # the candidate gets no predictions at 0% traffic, but its feedback calls still land in the histograms
    assert all(r.value is not None for r in rows), [r for r in rows if r.value is None]
    assert all("$" not in r.query and "[150s]" in r.query for r in rows)


def test_request_count_is_the_sum_of_latency_seconds_and_is_flagged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows, warnings = evaluate(load_scenario(SEED), 150.0, None)
    by = {(r.metric.split("/")[-1], r.version): r.value for r in rows}
    # request-count ~ mean latency x calls: tens of seconds at most, never the ~850 calls served
    assert by[("request-count", "iris-v1")] is not None and by[("request-count", "iris-v1")] < 20
    assert any("request-count for iris-v1" in w and "sums _sum (seconds), use _count" in w for w in warnings)
    assert any("mean-latency for iris-v1" in w and "values are in seconds" in w for w in warnings)
    assert main(["metrics", str(SEED), "--at", "150s"]) == 0
    out = capsys.readouterr().out
    assert "warning: iter8-seldon/request-count for iris-v1" in out


def test_a_correct_count_metric_is_not_flagged(tmp_path: Path) -> None:
    dst = tmp_path / "s"
    shutil.copytree(SEED, dst)
    metrics = dst / "metrics.yaml"
    docs = metrics.read_text().split("---\n")
    (i,) = [n for n, d in enumerate(docs) if "name: request-count" in d]
    assert "client_requests_seconds_sum" in docs[i]
    docs[i] = docs[i].replace("client_requests_seconds_sum", "client_requests_seconds_count")
    metrics.write_text("---\n".join(docs))
    rows, warnings = evaluate(load_scenario(dst), 150.0, None)
    assert not [w for w in warnings if "request-count" in w]
    count = next(r.value for r in rows if r.metric.endswith("request-count") and r.version == "iris-v1")
    assert count is not None and 800 < count < 900  # predictions + feedback calls, extrapolated


def test_bad_at_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", str(SEED), "--at=-5s"]) == 2
    assert "--at" in capsys.readouterr().err


def test_unsupported_promql_exits_2_naming_construct_and_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "m.om"
    assert main(["sim", str(SEED), "--duration", "60s", "--out", str(data)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "promql",
                "--data",
                str(data),
                "histogram_sum(seldon_api_executor_server_requests_seconds_count)",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "histogram_sum" in err and "position 0" in err
    assert main(["promql", "--data", str(data), "sum(rate(x[5m])"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "position" in err

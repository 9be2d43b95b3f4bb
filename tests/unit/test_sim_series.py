"""`simkit sim` on the seed scenario writes the executor series exactly as Seldon exposes them."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest

from simkit.cli import main
from simkit.tsdb import load_openmetrics

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"
SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
LE = [
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.075",
    "0.1",
    "0.25",
    "0.5",
    "0.75",
    "1",
    "2.5",
    "5",
    "7.5",
    "10",
    "+Inf",
]
EXECUTOR_SERVER_LABELS = {
    "deployment_name",
    "predictor_name",
    "predictor_version",
    "service",
    "method",
    "code",
}
EXECUTOR_CLIENT_LABELS = EXECUTOR_SERVER_LABELS | {"model_name", "model_image", "model_version"}
SCRAPE_LABELS = {
    "seldon_deployment_id",
    "kubernetes_namespace",
    "app",
    "seldon_app",
    "kubernetes_pod_name",
    "job",
    "instance",
}


@pytest.fixture(scope="module")
def seed_series(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sim") / "m.om"
    assert main(["sim", str(SEED), "--duration", "600s", "--out", str(out)]) == 0
    return load_openmetrics(out)


def test_names_labels_and_buckets_match_seldon(seed_series) -> None:
    names = {s.name for s in seed_series}
    executor = {n for n in names if n.startswith("seldon_api_executor")}
    assert executor == {f"{f}_{suffix}" for f in (SERVER, CLIENT) for suffix in ("bucket", "sum", "count")}
    for s in seed_series:
        labels = s.label_dict()
        if not s.name.startswith("seldon_api_executor"):
            continue
        family = SERVER if s.name.startswith(SERVER) else CLIENT
        expected = (EXECUTOR_SERVER_LABELS if family == SERVER else EXECUTOR_CLIENT_LABELS) | SCRAPE_LABELS
        expected -= {"predictor_version"}  # empty in the seed: Prometheus does not store empty labels
        if s.name.endswith("_bucket"):
            expected = expected | {"le"}
        assert set(labels) - {"__name__"} == expected, s.name
        assert labels["method"] == "post"
        assert labels["code"] == "200"
        assert labels["seldon_deployment_id"] == "iris" and labels["kubernetes_namespace"] == "ns-production"
        service = labels["service"]
        assert service in (
            {"predictions", "feedback"} if family == SERVER else {"/predict", "/send-feedback"}
        )
    les = defaultdict(list)
    for s in seed_series:
        if s.name.endswith("_bucket"):
            key = tuple((k, v) for k, v in s.labels if k not in ("le", "__name__")) + (s.name,)
            les[key].append(s.label_dict()["le"])
    assert les and all(
        sorted(v, key=lambda x: math.inf if x == "+Inf" else float(x)) == LE for v in les.values()
    )


def _last(db, name: str, **match: str) -> float:
    total = 0.0
    for s in db:
        labels = s.label_dict()
        if s.name == name and all(labels.get(k) == v for k, v in match.items()):
            total += float(s.arrays()[1][-1])
    return total


def test_counts_match_qps_times_duration(seed_series) -> None:
    predictions = _last(seed_series, f"{SERVER}_count", service="predictions")
    assert abs(predictions - 5 * 600) <= 0.02 * 5 * 600
    v1 = _last(seed_series, f"{SERVER}_count", service="feedback", predictor_name="baseline")
    v2 = _last(seed_series, f"{SERVER}_count", service="feedback", predictor_name="candidate")
    assert abs(v1 - 0.7 * 600) <= 0.02 * 0.7 * 600
    assert abs(v2 - 1.0 * 600) <= 0.02 * 1.0 * 600
    # every feedback call is forwarded to the model: one client sample per server sample
    assert _last(seed_series, f"{CLIENT}_count", service="/send-feedback") == v1 + v2


def test_count_equals_inf_bucket_and_buckets_are_monotone(seed_series) -> None:
    by_child = defaultdict(dict)
    for s in seed_series:
        if not s.name.startswith("seldon_api_executor"):
            continue
        labels = s.label_dict()
        le = labels.pop("le", None)
        family = s.name.rsplit("_", 1)[0]
        key = (family, tuple(sorted((k, v) for k, v in labels.items() if k != "__name__")))
        by_child[key][le or s.name.rsplit("_", 1)[1]] = s.arrays()[1]
    assert by_child
    for key, parts in by_child.items():
        assert (parts["count"] == parts["+Inf"]).all(), key
        stacked = [parts[le] for le in LE]
        for lower, upper in zip(stacked, stacked[1:], strict=False):
            assert (lower <= upper).all(), key
        assert (parts["sum"] >= 0).all()


def test_timestamps_are_scrape_times_from_the_sim_epoch(seed_series) -> None:
    start = 1623770418.0  # spec.start 2021-06-15T15:20:18Z
    times = {float(t) for s in seed_series for t in s.arrays()[0]}
    assert min(times) >= start - 30 and max(times) <= start + 570
    assert all((t - start) % 15 == 0 for t in times)

"""``simkit serve``'s pieces without HTTP: exposition text, model outputs, data-plane paths."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest

from simkit.serve import exposition, models
from simkit.serve.dataplane import Target, error_body, parse_path
from simkit.sim.executor_metrics import BOUNDS, CLIENT, SERVER
from simkit.sim.world import World
from simkit.spec.bundle import load_scenario
from simkit.tsdb.openmetrics import read_openmetrics

LE_VALUES = [f"{b:g}" for b in BOUNDS] + ["+Inf"]


@pytest.fixture(scope="module")
def world() -> World:
    w = World(load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"))
    w.run_until(20.0)
    return w


def render(world: World, namespace: str | None = None, pod: str | None = None) -> str:
    return exposition.render(exposition.snapshot(world.predictors.values(), namespace, pod))


def test_exposition_parses_and_has_types_and_help(world: World) -> None:
    text = render(world)
    assert f"# TYPE {SERVER} histogram" in text and f"# TYPE {CLIENT} histogram" in text
    assert f"# HELP {SERVER} A histogram of latencies for executor server" in text
    assert text.count(f"# TYPE {SERVER} ") == 1  # one header per family, samples grouped under it
    db = read_openmetrics(text.splitlines(), default_time=1_700_000_000.0)
    assert db.types[SERVER][0] == "histogram"
    names = {s.name for s in db}
    assert {f"{SERVER}_bucket", f"{SERVER}_sum", f"{SERVER}_count", f"{CLIENT}_bucket"} <= names
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples and all(len(line.split(" ")) == 2 for line in samples)  # "name{...} value": no timestamps


def test_labels_are_the_executor_ones_plus_relabelling_without_job_instance(world: World) -> None:
    db = read_openmetrics(render(world).splitlines(), default_time=0.0)
    for s in db:
        labels = dict(s.labels)
        if not s.name.startswith("seldon_api_executor"):
            continue
        assert "job" not in labels and "instance" not in labels
        assert labels["seldon_deployment_id"] == "iris" and labels["kubernetes_namespace"] == "ns-production"
        assert labels["seldon_app"] == f"iris-{labels['predictor_name']}"
        assert labels["kubernetes_pod_name"].startswith(f"iris-{labels['predictor_name']}-0-classifier-")
        assert labels["method"] == "post" and labels["deployment_name"] == "iris"
        if s.name.startswith(CLIENT):
            assert labels["service"] in ("/predict", "/send-feedback")
            assert labels["model_name"] == "classifier" and labels["model_version"] == "1.18.2"
        else:
            assert labels["service"] in ("predictions", "feedback") and "model_name" not in labels
    assert 'predictor_version=""' in render(world)  # the executor exposes it; Prometheus drops it


def test_buckets_are_cumulative_and_count_equals_inf(world: World) -> None:
    db = read_openmetrics(render(world).splitlines(), default_time=0.0)
    buckets: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]] = defaultdict(dict)
    counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for s in db:
        labels = s.label_dict()
        labels.pop("__name__")
        value = float(s.arrays()[1][-1])
        if s.name.endswith("_bucket"):
            le = labels.pop("le")
            buckets[(s.name[:-7], tuple(sorted(labels.items())))][le] = value
        elif s.name.endswith("_count"):
            counts[(s.name[:-6], tuple(sorted(labels.items())))] = value
    assert buckets and len(buckets) == len(counts)
    for key, by_le in buckets.items():
        assert sorted(by_le, key=lambda x: math.inf if x == "+Inf" else float(x)) == LE_VALUES
        values = [by_le[le] for le in LE_VALUES]
        assert values == sorted(values)
        assert counts[key] == by_le["+Inf"]


def test_exposed_counts_match_the_simulated_truth(world: World) -> None:
    db = read_openmetrics(render(world).splitlines(), default_time=0.0)
    served: dict[tuple[str, str], float] = defaultdict(float)
    for s in db:
        labels = dict(s.labels)
        if s.name == f"{SERVER}_count":
            served[(labels["predictor_name"], labels["service"])] += float(s.arrays()[1][-1])
    for key, sim in world.predictors.items():
        name = key.split("/")[2]
        assert served[(name, "predictions")] == sim.truth.predictions
        assert served[(name, "feedback")] == sim.truth.feedback
    assert served[("baseline", "predictions")] > 0 and served[("candidate", "feedback")] > 0


def test_per_pod_exposition_filters_one_pod(world: World) -> None:
    pod = world.predictors["ns-production/iris/candidate"].pods[0].pod
    text = render(world, pod.namespace, pod.pod_name)
    assert text and 'predictor_name="candidate"' in text and 'predictor_name="baseline"' not in text
    assert exposition.pod_exists(world.predictors.values(), pod.namespace, pod.pod_name)
    assert not exposition.pod_exists(world.predictors.values(), pod.namespace, "nope")


def test_value_formatting_and_escaping() -> None:
    assert exposition.format_value(3.0) == "3"
    assert exposition.format_value(0.25) == "0.25"
    assert exposition.format_value(math.inf) == "+Inf"
    assert exposition.format_value(math.nan) == "NaN"
    assert exposition.escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_documented_iris_outputs_and_shapes() -> None:
    seed_row = (6.8, 2.8, 4.8, 1.4)
    sk = models.predict("SKLEARN_SERVER", "ndarray", [seed_row])
    assert sk == {
        "names": ["t:0", "t:1", "t:2"],
        "ndarray": [[0.008074020139121783, 0.7781601484222704, 0.21376583143860778]],
    }
    assert models.predict("XGBOOST_SERVER", "ndarray", [seed_row]) == {"names": [], "ndarray": [1.0]}
    assert models.predict("XGBOOST_SERVER", "ndarray", [(1.0, 2.0, 5.0, 6.0)])["ndarray"] == [2.0]
    t = models.predict("SKLEARN_SERVER", "tensor", [seed_row, (5.0, 3.4, 1.5, 0.2)])
    assert t["tensor"]["shape"] == [2, 3] and len(t["tensor"]["values"]) == 6
    p = models.probabilities((5.0, 3.4, 1.5, 0.2))  # a setosa-like row: surrogate, sums to 1
    assert abs(sum(p) - 1) < 1e-12 and p.index(max(p)) == 0
    assert models.label((6.7, 3.0, 5.6, 2.2)) == 2.0


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"ndarray": []},
        {"ndarray": [[1, 2, 3]]},
        {"ndarray": [["a", 1, 2, 3]]},
        {"tensor": {"shape": [1, 4], "values": [1, 2]}},
        {"jsonData": {"x": 1}},
    ],
)
def test_bad_inputs_are_rejected(data: object) -> None:
    with pytest.raises(models.BadInput):
        models.input_rows(data)


def test_input_rows_accepts_ndarray_row_and_tensor() -> None:
    assert models.input_rows({"ndarray": [6.8, 2.8, 4.8, 1.4]}) == ("ndarray", [(6.8, 2.8, 4.8, 1.4)])
    assert models.input_rows({"tensor": {"shape": [1, 4], "values": [1, 2, 3, 4]}}) == (
        "tensor",
        [(1.0, 2.0, 3.0, 4.0)],
    )


def test_paths() -> None:
    assert parse_path("/seldon/ns/iris/api/v1.0/predictions") == Target(
        "ingress", "ns", "iris", None, "predictions"
    )
    assert parse_path("/seldon/ns/iris/api/v0.1/feedback") == Target(
        "ingress", "ns", "iris", None, "feedback"
    )
    assert parse_path("/direct/ns/iris/baseline/api/v1.0/feedback") == Target(
        "direct", "ns", "iris", "baseline", "feedback"
    )
    assert parse_path("/service/ns/iris-baseline/api/v1.0/predictions") == Target(
        "service", "ns", "iris-baseline", None, "predictions"
    )
    assert parse_path("/vs/default/routing-rule/api/v1.0/health/status") == Target(
        "vs", "default", "routing-rule", None, "health"
    )
    for bad in (
        "/seldon/ns/iris/api/v2.0/predictions",
        "/seldon/ns/api/v1.0/predictions",
        "/seldon/ns/iris/api/v0.1/status",
        "/seldon/ns/iris/api/v1.0/predictions/x",
        "/prometheus",
    ):
        assert parse_path(bad) is None


def test_error_body_shapes() -> None:
    import json

    assert json.loads(error_body(400, "x")) == {
        "status": {"status": 1, "info": "x", "code": -1, "reason": "MICROSERVICE_BAD_DATA"}
    }
    assert json.loads(error_body(503, "y"))["status"]["reason"] == "MICROSERVICE_INTERNAL_ERROR"

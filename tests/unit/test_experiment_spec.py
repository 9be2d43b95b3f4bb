"""The v2alpha2 Experiment: schema, etc3's checks, defaults and the views the loop needs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from simkit.errors import Location, SpecError
from simkit.ports import ObjectRef
from simkit.spec.documents import load_yaml_documents
from simkit.spec.experiment import (
    field_path_to_pointer,
    load_experiment,
    metric_references,
    parse_experiment,
    unused_actions,
    version_names,
    version_variables,
    weight_refs,
    weights_given,
    with_defaults,
)
from simkit.strategies.planning import to_plan

DATA = Path(__file__).resolve().parents[1] / "data" / "iter8"
WHERE = Location("exp.yaml", 0, "Experiment", "quickstart-exp")


def seed_raw() -> dict[str, Any]:
    return yaml.safe_load((DATA / "seed_experiment.yaml").read_text())


def error_of(raw: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_experiment(raw, WHERE)
    return info.value


def test_seed_experiment_loads_unmodified() -> None:
    (doc,) = load_yaml_documents(DATA / "seed_experiment.yaml")
    exp = load_experiment(doc)
    assert exp.name == "quickstart-exp" and exp.namespace == "default"
    assert exp.spec.strategy.testing_pattern == "A/B"
    assert version_names(exp) == ["iris-v1", "iris-v2"]
    assert exp.spec.criteria is not None and exp.spec.criteria.objectives[2].upper_limit == 0.01
    assert exp.spec.strategy.actions["finish"][0].with_ == {
        "cmd": "/bin/bash",
        "args": ["-c", "kubectl apply -f {{ .promote }}"],
    }
    assert not weights_given(exp)
    assert unused_actions(exp) == []


def test_recorded_cluster_object_with_status_loads() -> None:
    (doc,) = load_yaml_documents(DATA / "seed_status.yaml")
    exp = load_experiment(doc)
    assert exp.status is not None
    assert exp.status.completed_iterations == 15
    assert exp.status.metric_values()["iter8-seldon/mean-latency"]["iris-v1"] == pytest.approx(0.013352538)
    assert exp.status.weight_pairs() == (("iris-v1", 5), ("iris-v2", 95))
    assert exp.status.metrics[2].units == "milliseconds"
    assert exp.status.analysis is not None and exp.status.analysis.winner_assessment is not None
    assert exp.status.analysis.winner_assessment.data.winner == "iris-v2"


def test_defaults_are_etc3s() -> None:
    raw = seed_raw()
    del raw["spec"]["duration"]
    del raw["spec"]["strategy"]["deploymentPattern"]
    full = with_defaults(parse_experiment(raw, WHERE))
    d, s = full.spec.duration, full.spec.strategy
    assert d is not None and (d.interval_seconds, d.iterations_per_loop, d.max_loops) == (20, 15, 1)
    assert s.deployment_pattern == "Progressive"
    assert s.weights is not None and (
        s.weights.max_candidate_weight,
        s.weights.max_candidate_weight_increment,
    ) == (100, 10)
    assert (
        full.spec.criteria is not None
        and [o.rollback_on_failure for o in full.spec.criteria.objectives] == [False] * 3
    )
    assert not weights_given(full)  # remembered across with_defaults


def test_rollback_on_failure_defaults_true_only_for_bluegreen() -> None:
    raw = seed_raw()
    raw["spec"]["strategy"]["deploymentPattern"] = "BlueGreen"
    raw["spec"]["criteria"]["objectives"][1]["rollback_on_failure"] = False
    plan = to_plan(parse_experiment(raw, WHERE), weights_given=True)
    assert [o.rollback_on_failure for o in plan.objectives] == [True, False, True]


def test_plan_weight_limits_only_when_given() -> None:
    raw = seed_raw()
    exp = parse_experiment(raw, WHERE)
    plan = to_plan(exp, weights_given=weights_given(exp))
    assert plan.max_candidate_weight is None and plan.max_candidate_weight_increment is None
    assert plan.iterations == 15 and plan.interval_seconds == 10.0
    assert (
        plan.versions == ("iris-v1", "iris-v2") and plan.rewards[0].metric == "iter8-seldon/user-engagement"
    )
    raw["spec"]["strategy"]["weights"] = {"maxCandidateWeight": 60}
    raw["spec"]["duration"]["maxLoops"] = 2
    exp = parse_experiment(raw, WHERE)
    assert weights_given(exp)
    plan = to_plan(exp, weights_given=True)
    assert (plan.max_candidate_weight, plan.max_candidate_weight_increment) == (60.0, 10.0)
    assert plan.iterations == 30


def test_weight_refs_and_variables() -> None:
    raw = seed_raw()
    del raw["spec"]["versionInfo"]["candidates"][0]["weightObjRef"]["namespace"]
    raw["metadata"]["namespace"] = "seldon"
    exp = parse_experiment(raw, WHERE)
    base, cand = weight_refs(exp)
    assert base.version == "iris-v1" and base.pointer == "/spec/predictors/0/traffic"
    assert base.obj == ObjectRef("machinelearning.seldon.io/v1", "SeldonDeployment", "ns-production", "iris")
    assert cand.obj.namespace == "seldon"  # defaults to the experiment's namespace
    assert cand.field_path == ".spec.predictors[1].traffic"
    variables = version_variables(exp, "iris-v2")
    assert variables["name"] == "iris-v2" and variables["predictor"] == "candidate"
    assert variables["promote"].endswith("promote-v2.yaml")
    with pytest.raises(KeyError):
        version_variables(exp, "iris-v3")


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        (".spec.predictors[1].traffic", "/spec/predictors/1/traffic"),
        (".spec.http[0].route[1].weight", "/spec/http/0/route/1/weight"),
        (".spec.traffic", "/spec/traffic"),
    ],
)
def test_field_path_to_pointer(path: str, pointer: str) -> None:
    assert field_path_to_pointer(path) == pointer


@pytest.mark.parametrize(
    "path", ["spec.traffic", ".spec.x[0]", ".spec.x[0][1].y", ".spec..x", ".spec.x[a].y", ".a/b"]
)
def test_bad_field_paths(path: str) -> None:
    with pytest.raises(ValueError):
        field_path_to_pointer(path)


def _set(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    keys = path.split(".")
    cur = raw
    for k in keys[:-1]:
        cur = cur[int(k)] if isinstance(cur, list) else cur[k]
    if value is _DELETE:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("spec.strategy.testingPattern", "A/B/n", "spec.strategy.testingPattern", "'A/B/N'"),
        ("spec.strategy.testingPattern", "Bandit", "spec.strategy.testingPattern", "unknown testing pattern"),
        ("spec.strategy.deploymentPattern", "Canary", "spec.strategy.deploymentPattern", "FixedSplit"),
        (
            "spec.strategy.weights",
            {"maxCandidateWeight": 101},
            "spec.strategy.weights.maxCandidateWeight",
            "100",
        ),
        ("spec.duration.intervalSeconds", 0, "spec.duration.intervalSeconds", "1"),
        ("spec.bogus", 1, "spec.bogus", "unknown field"),
        ("spec.criteria.rewards", [], "spec.criteria.rewards", "exactly 1 reward, found 0"),
        (
            "spec.criteria.objectives.0.metric",
            "a/b/c",
            "spec.criteria.objectives[0].metric",
            "namespace/name",
        ),
        (
            "spec.criteria.objectives.0.upperLimit",
            "lots",
            "spec.criteria.objectives[0].upperLimit",
            "quantity",
        ),
        ("spec.versionInfo", _DELETE, "spec.versionInfo", "required"),
        ("spec.versionInfo.candidates", [], "spec.versionInfo.candidates", "exactly 1 candidate, found 0"),
        ("spec.versionInfo.candidates.0.name", "iris-v1", "spec.versionInfo.candidates[0].name", "duplicate"),
        (
            "spec.versionInfo.candidates.0.weightObjRef.fieldPath",
            "spec.predictors[1].traffic",
            "spec.versionInfo.candidates[0].weightObjRef.fieldPath",
            "must start with '.'",
        ),
        (
            "spec.versionInfo.baseline.weightObjRef.fieldPath",
            ".spec.predictors[0]",
            "spec.versionInfo.baseline.weightObjRef.fieldPath",
            "cannot be converted",
        ),
        (
            "spec.versionInfo.baseline.variables.0.value",
            3,
            "spec.versionInfo.baseline.variables[0].value",
            "string",
        ),
        ("spec.strategy.actions.finish.0.run", "x", "spec.strategy.actions.finish[0].run", "unknown field"),
    ],
)
def test_invalid_experiments_name_the_field(path: str, value: Any, field: str, words: str) -> None:
    err = error_of(_set(seed_raw(), path, value))
    assert err.field == field
    assert words in err.message
    assert str(err).startswith("exp.yaml: document 1 (Experiment quickstart-exp): field ")


@pytest.mark.parametrize(
    ("pattern", "candidates", "rewards", "ok"),
    [
        ("Conformance", 0, 0, True),
        ("Conformance", 1, 0, False),
        ("Conformance", 0, 1, False),
        ("Canary", 1, 0, True),
        ("Canary", 2, 0, False),
        ("Canary", 1, 1, False),
        ("A/B", 1, 1, True),
        ("A/B", 2, 1, False),
        ("A/B", 1, 0, False),
        ("A/B/N", 1, 1, True),
        ("A/B/N", 3, 1, True),
        ("A/B/N", 0, 1, False),
    ],
)
def test_candidate_and_reward_counts_per_pattern(
    pattern: str, candidates: int, rewards: int, ok: bool
) -> None:
    raw = seed_raw()
    raw["spec"]["strategy"]["testingPattern"] = pattern
    raw["spec"]["versionInfo"]["candidates"] = [{"name": f"v{i + 2}"} for i in range(candidates)]
    raw["spec"]["criteria"]["rewards"] = raw["spec"]["criteria"]["rewards"][:1] * rewards
    if ok:
        assert len(version_names(parse_experiment(raw, WHERE))) == candidates + 1
    else:
        assert error_of(raw).field in ("spec.versionInfo.candidates", "spec.criteria.rewards")


def test_metric_references_and_unused_actions() -> None:
    raw = seed_raw()
    raw["spec"]["criteria"]["indicators"] = ["error-count"]
    raw["spec"]["strategy"]["actions"]["rollback"] = [{"task": "common/exec", "with": {"cmd": "true"}}]
    exp = parse_experiment(raw, WHERE)
    refs = metric_references(exp)
    assert refs[0] == ("spec.criteria.requestCount", "iter8-seldon/request-count")
    assert ("spec.criteria.indicators[0]", "error-count") in refs
    assert refs[-1] == ("spec.criteria.objectives[2].metric", "iter8-seldon/error-rate")
    assert unused_actions(exp) == ["rollback"]


def test_status_is_lenient_but_typed() -> None:
    raw = yaml.safe_load((DATA / "seed_status.yaml").read_text())
    raw["status"]["somethingNew"] = {"from": "a later etc3"}
    assert parse_experiment(raw, WHERE).status is not None
    raw["status"]["analysis"]["aggregatedMetrics"]["data"]["iter8-seldon/error-rate"]["data"]["iris-v1"][
        "value"
    ] = "fast"
    err = error_of(raw)
    assert err.field is not None and err.field.endswith("iris-v1.value")


def test_load_experiment_rejects_other_kinds() -> None:
    raw = seed_raw()
    raw["kind"] = "Metric"
    from simkit.spec.documents import Document

    with pytest.raises(SpecError) as info:
        load_experiment(Document(raw, WHERE))
    assert info.value.field == "kind"

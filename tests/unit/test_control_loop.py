"""The experiment loop's etc3 semantics, pinned with fake ports and mock metrics (no sim, no HTTP)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np
import pytest

from simkit.control import LoopHooks, Ports, Prepared, Resume, run_experiment
from simkit.errors import BackendError, Location
from simkit.metrics import MetricFetcher
from simkit.metrics.resolve import resolve_metric_refs
from simkit.ports import ActionOutcome, ObjectPatch, WeightRef
from simkit.spec.experiment import metric_references, parse_experiment, with_defaults
from simkit.spec.metric import parse_metric
from simkit.strategies.base import Decision, Observation, create
from simkit.strategies.planning import to_plan

WHERE = Location("test.yaml", 0, "Experiment", "exp")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class FakeActuator:
    def __init__(self, weights: dict[str, int]) -> None:
        self.weights = dict(weights)
        self.applied: list[tuple[ObjectPatch, ...]] = []
        self.by_pointer: dict[str, str] = {}

    def read(self, refs: Sequence[WeightRef]) -> dict[str, int]:
        return {r.version: self.weights[r.version] for r in refs}

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        self.applied.append(tuple(patches))
        for p in patches:
            for op in p.ops:
                version = "v1" if op["path"].endswith("/0/traffic") else "v2"
                self.weights[version] = int(op["value"])


class FakeActions:
    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, str]]] = []
        self.fail: set[str] = set()

    def run(
        self, action: str, tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]
    ) -> ActionOutcome:
        self.runs.append((action, dict(variables)))
        return ActionOutcome(action, tuple(tasks), ok=action not in self.fail)


def metric(name: str, levels: dict[str, float]) -> Any:
    raw = {
        "apiVersion": "iter8.tools/v2alpha2",
        "kind": "Metric",
        "metadata": {"name": name, "namespace": "m"},
        "spec": {
            "type": "Counter",
            "mock": [{"name": v, "level": str(level)} for v, level in levels.items()],
        },
    }
    return parse_metric(raw, Location("metrics.yaml", 0, "Metric", name))


def experiment(
    testing: str = "A/B",
    deployment: str = "Progressive",
    rollback: bool = False,
    iterations: int = 5,
    loops: int = 1,
    actions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ref = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "name": "iris",
        "namespace": "prod",
    }
    crit: dict[str, Any] = {
        "objectives": [{"metric": "m/latency", "upperLimit": 100, "rollback_on_failure": rollback}]
    }
    if testing in ("A/B", "A/B/N"):
        crit["rewards"] = [{"metric": "m/reward", "preferredDirection": "High"}]
    version_info: dict[str, Any] = {
        "baseline": {
            "name": "v1",
            "variables": [{"name": "promote", "value": "p1"}],
            "weightObjRef": {**ref, "fieldPath": ".spec.predictors[0].traffic"},
        }
    }
    if testing != "Conformance":
        version_info["candidates"] = [
            {
                "name": "v2",
                "variables": [{"name": "promote", "value": "p2"}],
                "weightObjRef": {**ref, "fieldPath": ".spec.predictors[1].traffic"},
            }
        ]
    return {
        "apiVersion": "iter8.tools/v2alpha2",
        "kind": "Experiment",
        "metadata": {"name": "exp", "namespace": "ns"},
        "spec": {
            "target": "iris",
            "strategy": {
                "testingPattern": testing,
                "deploymentPattern": deployment,
                "actions": actions
                if actions is not None
                else {
                    "finish": [
                        {
                            "task": "common/exec",
                            "with": {"cmd": "kubectl", "args": ["apply", "-f", "{{ .promote }}"]},
                        }
                    ]
                },
            },
            "criteria": crit,
            "duration": {"intervalSeconds": 10, "iterationsPerLoop": iterations, "maxLoops": loops},
            "versionInfo": version_info,
        },
    }


def prepared(raw: dict[str, Any], latency: dict[str, float], reward: dict[str, float]) -> Prepared:
    exp = parse_experiment(raw, WHERE)
    metrics = [metric("latency", latency), metric("reward", reward)]
    resolved = resolve_metric_refs(metric_references(exp), exp.namespace, metrics, WHERE)
    return Prepared(with_defaults(exp), raw, tuple(resolved), to_plan(exp, weights_given=True))


def ports(weights: dict[str, int] | None = None) -> tuple[Ports, FakeClock, FakeActuator, FakeActions]:
    clock, act, actions = FakeClock(), FakeActuator(weights or {"v1": 100, "v2": 0}), FakeActions()
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    return (
        Ports(clock, act, actions, MetricFetcher(client, rng=np.random.default_rng(0))),
        clock,
        act,
        actions,
    )


def run(p: Prepared, strategy: str = "iter8", **kw: Any) -> tuple[Any, FakeActuator, FakeActions, FakeClock]:
    prt, clock, act, actions = ports(kw.pop("weights", None))
    result = run_experiment(p, create(strategy, p.plan), prt, np.random.default_rng(1), **kw)
    return result, act, actions, clock


def test_progressive_ab_moves_weights_by_increments_and_finishes() -> None:
    # latency e*level stays under 100 for 5 iterations (e <= 40); v2 has the larger reward
    p = prepared(experiment(), {"v1": 1, "v2": 2}, {"v1": 1, "v2": 3})
    result, act, actions, clock = run(p)
    assert [r.decision.winner for r in result.iterations] == ["v2"] * 5
    assert [dict(r.weights_after)["v2"] for r in result.iterations] == [10, 20, 30, 40, 50]
    assert all(len(a) == 1 and len(a[0].ops) == 2 for a in act.applied)  # one patch per object, both fields
    assert result.completed and not result.failed and result.vrfp == "v2"
    assert actions.runs == [("finish", {"name": "v2", "promote": "p2"})]
    assert result.status["completedIterations"] == 5
    assert [r.elapsed for r in result.iterations] == [1, 10, 20, 30, 40]  # first iteration at once
    assert clock.t == 1_000_000.0 + 50  # four gaps plus the reconcile before finishing


def test_rollback_keeps_previous_recommendation_and_skips_weights() -> None:
    # v2's latency e*3 passes the limit at e=40 (120 > 100): rollback at iteration 5
    p = prepared(experiment(rollback=True), {"v1": 1, "v2": 3}, {"v1": 1, "v2": 3})
    result, act, actions, _ = run(p)
    assert result.rolled_back and result.completed and not result.failed
    assert len(result.iterations) == 5 and result.status["completedIterations"] == 4
    assert result.iterations[-1].decision.verdict == "rollback"
    assert len(act.applied) == 4  # nothing applied on the rollback iteration
    assert result.vrfp == "v2"  # iter8-v2.md §2.8: the previous winner, although it just failed
    assert actions.runs == [("finish", {"name": "v2", "promote": "p2"})]
    assert result.status["message"] == "ExperimentCompleted: Experiment Completed"


class RollbackAt2:
    """A strategy whose name says nothing; only its Decision tells the loop what a rollback does."""

    def __init__(self, name: str, on_rollback: str) -> None:
        self.name, self.on_rollback = name, on_rollback

    def decide(self, obs: Observation, rng: np.random.Generator) -> Decision:
        if obs.iteration < 2:
            return Decision(weights={"v1": 70, "v2": 30})
        return Decision(weights=None, verdict="rollback", reason="test", weights_on_rollback=self.on_rollback)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "on_rollback", "after"),
    [
        ("iter8-lookalike", "apply", 0),
        ("flagger-lookalike", "keep", 30),
        ("iter8", "keep", 30),
        ("x", "apply", 0),
    ],
)
def test_the_decision_not_the_name_says_what_rollback_does_to_weights(
    name: str, on_rollback: str, after: int
) -> None:
    p = prepared(experiment(rollback=True), {"v1": 1, "v2": 1}, {"v1": 1, "v2": 1})
    prt, _, act, _ = ports()
    result = run_experiment(p, RollbackAt2(name, on_rollback), prt, np.random.default_rng(1))  # type: ignore[arg-type]
    assert result.rolled_back
    assert dict(result.iterations[-1].weights_after)["v2"] == after


def test_rollback_without_finish_action_says_rolled_back() -> None:
    p = prepared(experiment(rollback=True, actions={}), {"v1": 1, "v2": 3}, {"v1": 1, "v2": 3})
    result, _, actions, _ = run(p)
    assert actions.runs == [] and result.status["message"] == "ExperimentCompleted: Experiment rolled back"


def test_fixed_split_and_conformance_never_patch() -> None:
    p = prepared(experiment(deployment="FixedSplit"), {"v1": 1, "v2": 2}, {"v1": 1, "v2": 3})
    result, act, _, _ = run(p, weights={"v1": 50, "v2": 50})
    assert act.applied == [] and result.final_weights == {"v1": 50, "v2": 50} and result.winner == "v2"
    assert result.status["analysis"]["weights"]["data"]  # the analysis still carries weights
    c = prepared(experiment(testing="Conformance"), {"v1": 1}, {"v1": 1})
    result, act, _, _ = run(c, weights={"v1": 100})
    assert act.applied == [] and result.winner == "v1" and result.completed


def test_loop_actions_and_failed_action() -> None:
    actions = {
        "loop": [{"task": "common/exec", "with": {"cmd": "true"}}],
        "finish": [{"task": "common/exec", "with": {"cmd": "true"}}],
    }
    p = prepared(experiment(iterations=2, loops=2, actions=actions), {"v1": 0, "v2": 0}, {"v1": 1, "v2": 3})
    result, _, runs, _ = run(p)
    assert [a for a, _ in runs.runs] == ["loop-1", "loop-2", "finish"]
    assert len(result.iterations) == 4
    prt, _, _, fake_actions = ports()
    fake_actions.fail.add("finish")
    result = run_experiment(p, create("iter8", p.plan), prt, np.random.default_rng(1))
    assert result.failed and result.completed
    assert result.status["message"] == "ExperimentCompleted: Finish actions failed"


class Broken:
    name = "broken"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        raise BackendError("analytics answered HTTP 500")


def test_analytics_failure_fails_without_finish_action() -> None:
    p = prepared(experiment(), {"v1": 1, "v2": 2}, {"v1": 1, "v2": 3})
    prt, _, act, actions = ports()
    result = run_experiment(p, Broken(), prt, np.random.default_rng(1))
    assert result.failed and result.completed and actions.runs == [] and act.applied == []
    conditions = {c["type"]: c for c in result.status["conditions"]}
    assert conditions["Failed"]["reason"] == "AnalyticsServiceError"
    assert result.status["message"] == "ExperimentCompleted: Experiment failed"


class Crash(Exception):
    pass


class Recorder(LoopHooks):
    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.events: list[tuple[str, int]] = []
        self.decisions: dict[int, Decision] = {}
        self.completed: dict[int, dict[str, Any]] = {}

    def decided(self, n: int, decision: Decision) -> None:
        self.events.append(("decided", n))
        self.decisions[n] = decision

    def patch_intent(self, n: int, patches: Sequence[ObjectPatch], weights: Mapping[str, int]) -> None:
        self.events.append(("patch_intent", n))

    def patch_applied(self, n: int, read_back: Mapping[str, int], resent: bool) -> None:
        self.events.append(("patch_applied", n))
        if n == self.crash_at:
            raise Crash()

    def iteration_completed(
        self,
        n: int,
        state: Mapping[str, Any],
        start_time: float | None,
        vrfp: str,
        weights: Sequence[tuple[str, int]] | None,
        status: Mapping[str, Any],
    ) -> None:
        self.events.append(("completed", n))
        self.completed[n] = {
            "state": state,
            "start": start_time,
            "vrfp": vrfp,
            "status": copy.deepcopy(dict(status)),
        }


def test_resume_after_a_crash_repeats_nothing_and_skips_nothing() -> None:
    p = prepared(experiment(), {"v1": 1, "v2": 2}, {"v1": 1, "v2": 3})
    prt, clock, act, _ = ports()
    hooks = Recorder(crash_at=3)
    with pytest.raises(Crash):  # the process dies right after iteration 3's patch landed
        run_experiment(p, create("iter8", p.plan), prt, np.random.default_rng(1), hooks=hooks)
    assert act.weights == {"v1": 70, "v2": 30} and len(act.applied) == 3
    last = hooks.completed[2]
    resume = Resume(
        completed=2,
        start_time=last["start"],
        vrfp=last["vrfp"],
        state=last["state"],
        status=last["status"],
        last_update=clock.t,
        pending_decision=hooks.decisions[3],
    )
    prt2 = Ports(clock, act, prt.actions, prt.fetcher)
    hooks2 = Recorder()
    strategy = create("iter8", p.plan)
    calls: list[int] = []
    decide = strategy.decide

    def counting(obs: Observation, rng: np.random.Generator) -> Decision:
        calls.append(obs.iteration)
        return decide(obs, rng)

    strategy.decide = counting  # type: ignore[method-assign]
    result = run_experiment(p, strategy, prt2, np.random.default_rng(1), hooks=hooks2, resume=resume)
    assert [r.iteration for r in result.iterations] == [3, 4, 5]
    assert calls == [4, 5]  # iteration 3's journaled decision is reused, not decided again
    assert hooks2.decisions[3] == hooks.decisions[3]
    assert len(act.applied) == 3 + 2  # iteration 3's patch is not sent again
    assert result.status["completedIterations"] == 5 and result.final_weights == {"v1": 50, "v2": 50}

"""The loop itself (:class:`Loop`, :func:`run_experiment`); its semantics are described in
:mod:`simkit.control`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from simkit.actions import render_tasks
from simkit.control.wiring import (
    PROVENANCE,
    LoopFailure,
    LoopHooks,
    Ports,
    Prepared,
    Resume,
    read_weights,
    weight_patches,
)
from simkit.errors import SimkitError
from simkit.ports import ActionOutcome, ObjectPatch
from simkit.records import IterationRecord, Reading, RunResult, StatusBook, rfc3339, to_status_analysis
from simkit.spec.experiment import version_variables
from simkit.strategies.base import Decision, Observation, Strategy


class Loop:
    """One run of one experiment. Construct, then ``run()``; see the module docstring."""

    def __init__(
        self,
        prepared: Prepared,
        strategy: Strategy,
        ports: Ports,
        rng: np.random.Generator,
        observer: Callable[[IterationRecord], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        hooks: LoopHooks | None = None,
        resume: Resume | None = None,
    ) -> None:
        self.p = prepared
        self.hooks = hooks or LoopHooks()
        self.resume = resume
        self.strategy = strategy
        self.ports = ports
        self.rng = rng
        self.observer = observer
        self.should_stop = should_stop or (lambda: False)
        self.book = StatusBook(ports.clock.now())
        self.records: list[IterationRecord] = []
        self.outcomes: list[ActionOutcome] = []
        self.vrfp = prepared.plan.baseline
        self.weights: tuple[tuple[str, int], ...] | None = None
        self.state: Mapping[str, Any] = {}
        self.start: float | None = None
        self.rolled_back = False

    # ---------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        clock, book = self.ports.clock, self.book
        first = 1
        try:
            if self.resume is None or not self.resume.status:
                # a fresh run, or one killed during its first iteration (no status journaled yet:
                # the start action ran, since an iteration had started)
                book.condition("TargetAcquired", True, "TargetAcquired", "", clock.now())
                book.stage("Initializing")
                if self.resume is None and not self._action("start"):
                    return self._result()
                book.status["metrics"] = [
                    {"name": ref, "metricObj": m.model_dump(mode="json", by_alias=True, exclude_none=True)}
                    for ref, m in self.p.metrics
                ]
                book.stage("Running")
            if self.resume is not None:
                r = self.resume
                book.status = {**book.status, **r.status}
                self.start, self.vrfp, self.state, first = (
                    r.start_time,
                    r.vrfp or self.vrfp,
                    r.state,
                    r.completed + 1,
                )
                if self.start is not None:
                    book.status.setdefault("startTime", rfc3339(self.start))
            self.weights = read_weights(self.ports.actuator, self.p.experiment, self.p.plan)
            book.status["currentWeightDistribution"] = [{"name": n, "value": w} for n, w in self.weights]
            book.status["versionRecommendedForPromotion"] = self.vrfp
            total = self.p.plan.iterations
            per_loop = total // max(self._max_loops(), 1)
            for i in range(first, total + 1):
                if i > first or (self.resume is not None and self.resume.completed > 0):
                    self._wait_for_next(i)
                if self.should_stop():
                    return self._fail("Interrupted", "stopped by a signal between iterations")
                if i > first:
                    self._check_drift(i)
                verdict = self._iteration(i)
                if verdict == "rollback":
                    return self._finish(rollback=True)
                if i % per_loop == 0 and not self._action("loop", loop=i // per_loop):
                    return self._result()
                if verdict == "promote":
                    break
            clock.sleep(
                self.p.plan.interval_seconds
            )  # etc3 finishes on the reconcile after the last iteration
            self._check_drift(total + 1)
            return self._finish(rollback=False)
        except LoopFailure as exc:
            return self._fail(exc.reason, exc.message)

    def _wait_for_next(self, i: int) -> None:
        """Iterations are intervalSeconds apart; after a restart, only what is left of it."""
        clock = self.ports.clock
        last = (
            self.resume.last_update if (self.resume is not None and i == self.resume.completed + 1) else None
        )
        if last is None:
            clock.sleep(self.p.plan.interval_seconds)
        else:
            left = last + self.p.plan.interval_seconds - clock.now()
            if left > 0:
                clock.sleep(left)

    def _check_drift(self, i: int) -> None:
        """Weights someone else changed since the last read-back: adopted, or the run stops."""
        if self.ports.drift == "ignore" or self.weights is None:
            return
        found = read_weights(self.ports.actuator, self.p.experiment, self.p.plan)
        if found == self.weights:
            return
        expected, got = dict(self.weights), dict(found)
        adopted = self.ports.drift == "adopt"
        self.hooks.drift(i, expected, got, adopted)
        if not adopted:
            raise LoopFailure(
                "WeightDrift",
                f"before iteration {i} the weights are {got}, not {expected} as simkit "
                "left them: another writer changed them (adopt them with --adopt-drift)",
            )
        self.weights = found
        self.book.status["currentWeightDistribution"] = [{"name": n, "value": w} for n, w in found]

    def _max_loops(self) -> int:
        d = self.p.experiment.spec.duration
        return int(d.max_loops or 1) if d is not None else 1

    def _iteration(self, i: int) -> str:
        clock, book, plan = self.ports.clock, self.book, self.p.plan
        now = clock.now()
        if self.start is None:
            self.start = now
            book.status["startTime"] = rfc3339(now)
        elapsed = max(1, math.floor(now - self.start))
        readings: dict[str, dict[str, Reading]] = {}
        pending = (
            self.resume.pending_decision
            if (self.resume is not None and i == self.resume.completed + 1)
            else None
        )
        for ref, metric in self.p.metrics if pending is None else ():
            readings[ref] = {}
            for version in plan.versions:
                got = self.ports.fetcher.fetch(
                    metric, version, self.p.metric_variables[version], elapsed, name=ref, at=now
                )
                readings[ref][version] = Reading(got.value, got.message, got.query)
        missing = {
            ref: {v: r.message or "no value" for v, r in by_v.items() if r.value is None}
            for ref, by_v in readings.items()
        }
        if any(missing.values()):
            self.hooks.metrics_unavailable(i, {ref: why for ref, why in missing.items() if why})
        obs = Observation(
            iteration=i,
            elapsed=float(elapsed),
            metrics={m: {v: r.value for v, r in by_v.items()} for m, by_v in readings.items()},
            current_weights=self.weights,
            state=self.state,
            messages={
                f"{m}/{v}": r.message for m, by_v in readings.items() for v, r in by_v.items() if r.message
            },
        )
        self.hooks.iteration_started(i, now, obs.metrics, self.weights)
        if pending is not None:
            decision = pending  # decided before a crash: applied as journaled, never decided twice
        else:
            try:
                decision = self.strategy.decide(obs, self.rng)
            except SimkitError as exc:
                raise LoopFailure(
                    "AnalyticsServiceError", f"Call to analytics engine failed: {exc}"
                ) from None
        self.hooks.decided(i, decision)
        self.state = decision.state
        if decision.analysis:
            book.status["analysis"] = to_status_analysis(decision.analysis, PROVENANCE, rfc3339(now))
        before = self.weights
        patches: tuple[ObjectPatch, ...] = ()
        error = None
        target = self._target_weights(decision)
        if target is not None:
            patches = weight_patches(self.p.refs, target, self.weights)
            if patches:
                self.hooks.patch_intent(i, patches, target)
                try:
                    self.ports.actuator.apply(patches)
                except SimkitError as exc:  # etc3 only logs patch errors; the read-back tells the truth
                    if self.ports.strict_patches:
                        raise LoopFailure("WeightRedistributionFailed", str(exc)) from None
                    error = str(exc)
            self.weights = read_weights(self.ports.actuator, self.p.experiment, plan)
            if patches:
                self.hooks.patch_applied(i, dict(self.weights), resent=True)
            book.status["currentWeightDistribution"] = [{"name": n, "value": w} for n, w in self.weights]
        if decision.verdict != "rollback":
            self.vrfp = decision.winner or plan.baseline
            book.status["versionRecommendedForPromotion"] = self.vrfp
            book.status["completedIterations"] = i
            book.status["lastUpdateTime"] = rfc3339(now)
            book.condition("Completed", False, "IterationUpdate", f"Completed Iteration {i}", now)
        record = IterationRecord(
            i, now, elapsed, readings, decision, before, self.weights, patches, error, self.vrfp
        )
        self.records.append(record)
        if decision.verdict != "rollback":
            self.hooks.iteration_completed(
                i, self.state, self.start, self.vrfp, self.weights, book.snapshot()
            )
        if self.observer is not None:
            self.observer(record)
        return decision.verdict

    def _target_weights(self, d: Decision) -> Mapping[str, int] | None:
        plan = self.p.plan
        if plan.testing_pattern == "Conformance" or plan.deployment_pattern == "FixedSplit":
            return None
        if d.verdict == "rollback":
            if d.weights_on_rollback == "keep":
                return None
            return d.weights or {v: (100 if v == plan.baseline else 0) for v in plan.versions}
        return d.weights

    def _action(self, name: str, loop: int | None = None) -> bool:
        """Run one action if the experiment has it; False (and Failed) when it fails."""
        tasks = self.p.experiment.spec.strategy.actions.get(name)
        if not tasks:
            return True
        raw = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tasks]
        variables = version_variables(self.p.experiment, self.vrfp)
        label = f"{name}-{loop}" if loop is not None else name
        outcome = self.ports.actions.run(label, render_tasks(raw, variables), variables)
        self.outcomes.append(outcome)
        self.hooks.action(outcome)
        if not outcome.ok:
            self._fail("HandlerFailed", f"{name.capitalize()} actions failed", ended=True)
            return False
        return True

    def _finish(self, rollback: bool) -> RunResult:
        book, now = self.book, self.ports.clock.now()
        self.rolled_back = rollback
        has_finish = bool(self.p.experiment.spec.strategy.actions.get("finish"))
        if has_finish:
            book.stage("Finishing")
            book.condition("Completed", False, "HandlerLaunched", "Finish handler 'finish' launched", now)
            if not self._action("finish"):
                return self._result()
            message = "Experiment Completed"
        else:
            message = "Experiment rolled back" if rollback else "Experiment completed successfully"
        book.condition("Completed", True, "ExperimentCompleted", message, self.ports.clock.now())
        book.stage("Completed")
        return self._result()

    def _fail(self, reason: str, message: str, ended: bool = False) -> RunResult:
        book, now = self.book, self.ports.clock.now()
        book.condition("Failed", True, reason, message, now)
        book.condition(
            "Completed", True, "ExperimentCompleted", "Experiment failed" if not ended else message, now
        )
        book.status["stage"] = "Completed"
        return self._result()

    def _result(self) -> RunResult:
        exp = self.p.experiment
        meta = {k: v for k, v in (self.p.raw.get("metadata") or {}).items() if k != "status"}
        meta.setdefault("namespace", exp.namespace)
        meta.setdefault("creationTimestamp", self.book.status["initTime"])
        obj = {
            "apiVersion": self.p.raw.get("apiVersion", "iter8.tools/v2alpha2"),
            "kind": "Experiment",
            "metadata": meta,
            "spec": self.p.raw.get("spec", {}),
            "status": self.book.snapshot(),
        }
        status = obj["status"]
        return RunResult(
            name=exp.name,
            namespace=exp.namespace,
            strategy=self.strategy.name,
            versions=self.p.plan.versions,
            experiment_object=obj,
            iterations=tuple(self.records),
            actions=tuple(self.outcomes),
            completed=self.book.is_true("Completed"),
            failed=self.book.is_true("Failed"),
            rolled_back=self.rolled_back,
            stage=str(status.get("stage")),
            message=str(status.get("message", "")),
            vrfp=self.vrfp,
            final_weights=dict(self.weights) if self.weights is not None else None,
            start_time=self.start,
            end_time=self.ports.clock.now(),
        )


def run_experiment(
    prepared: Prepared,
    strategy: Strategy,
    ports: Ports,
    rng: np.random.Generator,
    observer: Callable[[IterationRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    hooks: LoopHooks | None = None,
    resume: Resume | None = None,
) -> RunResult:
    """Run one experiment to its end (completed, rolled back, or failed) and return its records."""
    return Loop(prepared, strategy, ports, rng, observer, should_stop, hooks, resume).run()

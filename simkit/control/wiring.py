"""How the loop is wired to a world: the ports it drives (:class:`Ports`), the prepared
experiment (:class:`Prepared`), the hooks live mode journals through (:class:`LoopHooks`), the
point a journal resumes from (:class:`Resume`), the failure etc3 marks Failed
(:class:`LoopFailure`), and the two weight rules the loop and live's ``--rollback-on-error``
share: reading the weights (etc3's updateObservedWeights) and turning target weights into one
JSON patch per object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from simkit.errors import SimkitError
from simkit.metrics import MetricFetcher
from simkit.ports import ActionOutcome, ActionRunner, Clock, ObjectPatch, WeightActuator, WeightRef
from simkit.spec.experiment import Experiment, version_variables, weight_refs
from simkit.spec.metric import Metric
from simkit.strategies.base import Decision, Plan

PROVENANCE = "simkit"


@dataclass(frozen=True)
class Ports:
    clock: Clock
    actuator: WeightActuator
    actions: ActionRunner
    fetcher: MetricFetcher
    # etc3 only logs a failed weight patch; live mode fails loudly instead (traffic must never be
    # left in a state nobody asked for without someone knowing)
    strict_patches: bool = False
    # weights that differ at the start of an iteration from what the loop last read back were
    # changed by another writer: "ignore" (the sim: nobody else writes), "adopt" (carry on from
    # them, as etc3 does), or "stop" (fail WeightDrift; live mode's default)
    drift: Literal["ignore", "adopt", "stop"] = "ignore"


@dataclass(frozen=True)
class Prepared:
    """A validated experiment with defaults, its resolved metrics (status.metrics order), its plan."""

    experiment: Experiment
    raw: Mapping[str, Any]  # the document as the user wrote it (spec without defaults)
    metrics: tuple[tuple[str, Metric], ...]
    plan: Plan

    @property
    def refs(self) -> list[WeightRef]:
        return weight_refs(self.experiment)

    @cached_property
    def metric_variables(self) -> dict[str, dict[str, str]]:
        """Per version, the variables a Metric is templated with (``name`` is added by the fetcher)."""
        out = {}
        for version in self.plan.versions:
            variables = version_variables(self.experiment, version)
            variables.pop("name", None)
            out[version] = variables
        return out


class LoopHooks:
    """Called at each step of the loop; live mode journals them (fsync'd) before going on.
    The default does nothing. Each method runs *before* the step it announces has effects
    (``patch_intent`` before the patch is sent) or right after it is confirmed."""

    def iteration_started(
        self,
        n: int,
        time: float,
        metrics: Mapping[str, Mapping[str, float | None]],
        weights: Sequence[tuple[str, int]] | None,
    ) -> None: ...

    def decided(self, n: int, decision: Decision) -> None: ...

    def patch_intent(self, n: int, patches: Sequence[ObjectPatch], weights: Mapping[str, int]) -> None: ...

    def patch_applied(self, n: int, read_back: Mapping[str, int], resent: bool) -> None: ...

    def iteration_completed(
        self,
        n: int,
        state: Mapping[str, Any],
        start_time: float | None,
        vrfp: str,
        weights: Sequence[tuple[str, int]] | None,
        status: Mapping[str, Any],
    ) -> None: ...

    def action(self, outcome: ActionOutcome) -> None: ...

    def metrics_unavailable(self, n: int, missing: Mapping[str, Mapping[str, str]]) -> None:
        """Metric -> version -> why, for the values this iteration could not read."""

    def drift(self, n: int, expected: Mapping[str, int], found: Mapping[str, int], adopted: bool) -> None: ...


@dataclass(frozen=True)
class Resume:
    """Where a restarted run picks up: after ``completed`` iterations, with the state they left.

    ``pending_decision`` is the decision of an iteration that was decided (and journaled) but not
    completed: it is applied as it was, not decided again, and its patch is sent only if the
    weights read back differ from its target."""

    completed: int
    start_time: float | None
    vrfp: str
    state: Mapping[str, Any]
    status: Mapping[str, Any]
    last_update: float | None = None
    pending_decision: Decision | None = None


class LoopFailure(SimkitError):
    """A condition etc3 marks Failed (InvalidExperiment, WeightRedistributionFailed, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")
        self.message = message


def read_weights(actuator: WeightActuator, exp: Experiment, plan: Plan) -> tuple[tuple[str, int], ...]:
    """etc3's updateObservedWeights: versions with refs in version order; a single version
    without a ref gets 100 - sum(others), appended last; two or more without refs fail unless
    FixedSplit (then they are left out)."""
    refs = weight_refs(exp)
    try:
        got = actuator.read(refs)
    except SimkitError as exc:
        raise LoopFailure(
            "InvalidExperiment", f"Specification of version weightObjectRef invalid: {exc}"
        ) from None
    with_ref = {r.version for r in refs}
    out = [(v, int(got[v])) for v in plan.versions if v in with_ref]
    missing = [v for v in plan.versions if v not in with_ref]
    if len(missing) == 1:
        out.append((missing[0], 100 - sum(w for _, w in out)))
    elif len(missing) > 1 and plan.deployment_pattern != "FixedSplit":
        raise LoopFailure("InvalidExperiment", f"versions {', '.join(missing)} have no weightObjRef")
    return tuple(out)


def weight_patches(
    refs: Sequence[WeightRef], target: Mapping[str, int], current: Sequence[tuple[str, int]] | None
) -> tuple[ObjectPatch, ...]:
    """One JSON patch per object for the versions whose weight changes (etc3 §2.5); with
    ``current`` None (weights unknown, e.g. a restore after a failure) every field is written."""
    now: dict[str, int | None] = dict(current) if current is not None else {}
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for ref in refs:
        if ref.version not in target:
            raise LoopFailure(
                "WeightRedistributionFailed", f"No weight recommendation provided for version {ref.version}"
            )
        value = int(target[ref.version])
        if current is not None and value == now.get(ref.version, 0):
            continue
        grouped.setdefault(ref.obj, []).append({"op": "add", "path": ref.pointer, "value": value})
    return tuple(ObjectPatch(obj, tuple(ops)) for obj, ops in grouped.items())

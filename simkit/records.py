"""What one experiment run yields: flat, immutable records, and the Iter8-shaped status.

Reports (describe text, status.yaml, trace.csv, plots, benchmark tables) are views of these
records; nothing downstream re-runs anything. :class:`StatusBook` keeps the Experiment's
``status`` exactly as etc3 would write it (conditions with transition times, stage,
``status.message`` = "<Reason>: <message>"), so ``simkit describe`` and ``iter8ctl`` read it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simkit.ports import ActionOutcome, ObjectPatch
from simkit.spec.quantity import format_quantity
from simkit.strategies.base import Decision

STAGES = ("Waiting", "Initializing", "Running", "Finishing", "Completed")


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(round(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Reading:
    """One metric value for one version at one iteration, with how it was obtained."""

    value: float | None
    message: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class IterationRecord:
    iteration: int
    time: float  # Unix seconds when the iteration ran
    elapsed: int  # Iter8's elapsedTime (seconds since startTime, at least 1)
    readings: Mapping[str, Mapping[str, Reading]]  # metric ref -> version -> reading
    decision: Decision
    weights_before: tuple[tuple[str, int], ...] | None
    weights_after: tuple[tuple[str, int], ...] | None
    patches: tuple[ObjectPatch, ...] = ()
    patch_error: str | None = None
    vrfp: str = ""

    def values(self) -> dict[str, dict[str, float | None]]:
        return {m: {v: r.value for v, r in by_v.items()} for m, by_v in self.readings.items()}


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced. ``experiment_object`` is the Experiment as the cluster would show it."""

    name: str
    namespace: str
    strategy: str
    versions: tuple[str, ...]
    experiment_object: Mapping[str, Any]
    iterations: tuple[IterationRecord, ...]
    actions: tuple[ActionOutcome, ...]
    completed: bool
    failed: bool
    rolled_back: bool
    stage: str
    message: str
    vrfp: str
    final_weights: Mapping[str, int] | None
    start_time: float | None = None
    end_time: float | None = None
    engine: str | None = None  # the simulation engine that produced it (None: live or replay)

    @property
    def winner(self) -> str | None:
        return self.iterations[-1].decision.winner if self.iterations else None

    @property
    def status(self) -> Mapping[str, Any]:
        return self.experiment_object.get("status", {})


@dataclass
class StatusBook:
    """The mutable status of a running experiment, written the way etc3 writes it."""

    now: float
    status: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = rfc3339(self.now)
        self.status = {
            "completedIterations": 0,
            "conditions": [
                {"lastTransitionTime": t, "status": "False", "type": kind}
                for kind in ("Completed", "Failed", "TargetAcquired")
            ],
            "initTime": t,
            "lastUpdateTime": t,
            "stage": "Waiting",
        }

    def condition(self, kind: str, value: bool, reason: str, message: str, now: float) -> None:
        """etc3's MarkCondition: flips the condition (transition time only on change) and sets
        ``status.message`` to "<Reason>: <message>" (just "<Reason>" when the message is empty)."""
        for c in self.status["conditions"]:
            if c["type"] == kind:
                new = "True" if value else "False"
                if c["status"] != new:
                    c["lastTransitionTime"] = rfc3339(now)
                c.update(status=new, reason=reason, message=message)
        self.status["message"] = f"{reason}: {message}" if message else reason

    def stage(self, stage: str) -> None:
        if STAGES.index(stage) > STAGES.index(self.status.get("stage", "Waiting")):
            self.status["stage"] = stage

    def is_true(self, kind: str) -> bool:
        return any(c["type"] == kind and c["status"] == "True" for c in self.status["conditions"])

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.status)


def to_status_analysis(analysis: Mapping[str, Any], provenance: str, timestamp: str) -> dict[str, Any]:
    """What etc3 stores in ``status.analysis``: values as quantities, provenance and timestamp on
    every part, None fields omitted, ``bestVersions`` dropped (its Go struct has no such field)."""
    out: dict[str, Any] = {}
    for part in ("aggregatedMetrics", "versionAssessments", "weights", "winnerAssessment"):
        src = analysis.get(part)
        if src is None:
            continue
        data: Any = src.get("data")
        if part == "aggregatedMetrics":
            data = {
                m: {
                    "data": {
                        v: (
                            {"value": format_quantity(float(d["value"]))}
                            if d.get("value") is not None
                            else {}
                        )
                        for v, d in am.get("data", {}).items()
                    }
                }
                for m, am in (data or {}).items()
            }
        elif part == "winnerAssessment":
            w = data or {}
            data = (
                {"winner": w["winner"], "winnerFound": bool(w.get("winnerFound"))}
                if w.get("winner")
                else {"winnerFound": bool(w.get("winnerFound"))}
            )
        entry: dict[str, Any] = {"data": data}
        if src.get("message") is not None:
            entry["message"] = src["message"]
        entry["provenance"] = provenance
        entry["timestamp"] = timestamp
        out[part] = entry
    return out

"""`kill -9` at any point of a live run, then the same command again: every iteration exactly once.

The loop runs with live mode's journal hooks and a real journal file; a crash is a BaseException
raised right after a chosen journal record is durable (or right after the actuator changed the
weights, before the journal heard of it), which is what a SIGKILL leaves behind: the file and the
weights, nothing else. The restarted run resumes from the journal (``simkit.live.commands``' own
``_resume_from``) with a fresh strategy instance and a fresh rng, and must end as an uninterrupted
run does: the same weights after every iteration, each iteration completed once, the strategy
asked once per iteration, no patch sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simkit.control import run_experiment
from simkit.live.adapters import JournalHooks
from simkit.live.commands import _resume_from
from simkit.live.journal import ExperimentIdentity, Journal
from simkit.ports import ObjectPatch
from simkit.strategies.base import Decision, Observation
from tests.unit.test_control_loop import FakeActuator, experiment, ports, prepared

ID = ExperimentIdentity("ns", "exp")
ITERATIONS = 5


class Killed(BaseException):
    """What SIGKILL does to the process: nothing after this point runs."""


class Ramp:
    """Deterministic, stateful: +10 to the candidate per iteration, counting in its state."""

    name = "ramp"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def decide(self, obs: Observation, rng: np.random.Generator) -> Decision:
        self.calls.append(obs.iteration)
        k = int(obs.state.get("k", 0)) + 1
        return Decision(weights={"v1": 100 - 10 * k, "v2": 10 * k}, winner="v2", state={"k": k})


class CrashingHooks(JournalHooks):
    def __init__(self, journal: Journal, at: tuple[str, int] | None) -> None:
        super().__init__(journal, lambda _: None, ITERATIONS)
        self.at = at

    def _maybe(self, step: str, n: int) -> None:
        if self.at == (step, n):
            self.at = None
            raise Killed(step)

    def iteration_started(self, n: int, *args: Any, **kw: Any) -> None:
        super().iteration_started(n, *args, **kw)
        self._maybe("iteration_started", n)

    def decided(self, n: int, decision: Decision) -> None:
        super().decided(n, decision)
        self._maybe("decided", n)

    def patch_intent(self, n: int, *args: Any, **kw: Any) -> None:
        super().patch_intent(n, *args, **kw)
        self._maybe("patch_intent", n)

    def patch_applied(self, n: int, *args: Any, **kw: Any) -> None:
        super().patch_applied(n, *args, **kw)
        self._maybe("patch_applied", n)

    def iteration_completed(self, n: int, *args: Any, **kw: Any) -> None:
        super().iteration_completed(n, *args, **kw)
        self._maybe("iteration_completed", n)


class CrashingActuator(FakeActuator):
    """Applies the patch to the 'cluster', then dies before anyone hears of it."""

    def __init__(self, weights: dict[str, int], at: int | None) -> None:
        super().__init__(weights)
        self.at = at

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        super().apply(patches)
        if self.at is not None and len(self.applied) == self.at:
            self.at = None
            raise Killed("after the patch")


def run_once(journal_path: Path, act: FakeActuator, strategy: Ramp, hooks_at: tuple[str, int] | None) -> Any:
    p = prepared(experiment(iterations=ITERATIONS), {"v1": 1, "v2": 1}, {"v1": 1, "v2": 2})
    prt, _, _, _ = ports()
    prt = type(prt)(prt.clock, act, prt.actions, prt.fetcher, strict_patches=True, drift="stop")
    if journal_path.exists() and journal_path.stat().st_size:
        journal = Journal.open(journal_path, ID)
        resume = _resume_from(journal)
    else:
        journal, resume = Journal.create(journal_path, ID, "ramp", None), None
    try:
        return run_experiment(
            p, strategy, prt, np.random.default_rng(), hooks=CrashingHooks(journal, hooks_at), resume=resume
        )
    finally:
        journal.close()


def completed_iterations(path: Path) -> list[int]:
    return [
        r["n"] for r in map(json.loads, path.read_text().splitlines()) if r["type"] == "iteration_completed"
    ]


POINTS = [
    ("iteration_started", 1),
    ("decided", 1),
    ("patch_intent", 1),
    ("patch", 1),
    ("patch_applied", 1),
    ("iteration_completed", 1),
    ("iteration_started", 3),
    ("decided", 3),
    ("patch", 3),
    ("patch_intent", 4),
    ("iteration_completed", 5),
]


@pytest.mark.parametrize(("step", "n"), POINTS, ids=[f"{s}-{n}" for s, n in POINTS])
def test_kill_anywhere_then_rerun_completes_each_iteration_once(tmp_path: Path, step: str, n: int) -> None:
    reference_act, reference = FakeActuator({"v1": 100, "v2": 0}), Ramp()
    expected = run_once(tmp_path / "ref.journal", reference_act, reference, None)
    assert expected.completed and len(reference_act.applied) == ITERATIONS

    path = tmp_path / "live.journal"
    act = CrashingActuator({"v1": 100, "v2": 0}, n if step == "patch" else None)
    first = Ramp()
    with pytest.raises(Killed):
        run_once(path, act, first, None if step == "patch" else (step, n))
    second = Ramp()
    result = run_once(path, act, second, None)  # the same command again, a new process

    assert result.completed and not result.failed, result.message
    assert completed_iterations(path) == list(range(1, ITERATIONS + 1))
    redone = len(result.iterations)
    assert [dict(r.weights_after) for r in result.iterations] == [
        dict(r.weights_after) for r in expected.iterations[ITERATIONS - redone :]
    ]
    assert act.weights == reference_act.weights == {"v1": 50, "v2": 50}
    assert len(act.applied) == len(reference_act.applied)  # no patch sent twice
    # the strategy was asked once per iteration in all: a journaled decision is not asked again
    assert sorted(first.calls + second.calls) == list(range(1, ITERATIONS + 1))

"""The loop's ports in simulation: SimPy time, the in-memory object store, recorded actions.

- :class:`SimClock` — ``sleep`` advances the SimPy environment (every request, scrape and event in
  between happens), ``now`` is the scenario epoch plus sim time.
- :class:`SimWeightActuator` — reads weights with the shared fieldPath rule
  (:func:`simkit.spec.pointers.weight_at`) and applies JSON patches to the object store the routers read, with Seldon's admission rules.
- :class:`SimActionRunner` — records each rendered task, never starts a process; a
  ``kubectl apply -f <local file>`` is applied to the object store so a promotion changes routing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from simkit.actions import command_line, kubectl_apply_targets
from simkit.errors import BackendError, SimkitError
from simkit.ports import ActionOutcome, ObjectPatch, WeightRef
from simkit.sim.distributions import Sampler, make_draw
from simkit.sim.engine import AnyWorld
from simkit.spec.documents import load_yaml_documents
from simkit.spec.pointers import weight_at
from simkit.spec.streams import child_rng


class SimClock:
    """``delay`` (the scenario's ``spec.controller.iterationDelay``) is added to every sleep the
    loop asks for: a real controller requeues ``intervalSeconds`` after a reconcile that itself
    took time, so its iterations drift apart by that much. Without it sleeps are exact."""

    def __init__(self, world: AnyWorld, delay: Callable[[], float] | None = None) -> None:
        self.world = world
        self.delay = delay

    def now(self) -> float:
        return self.world.unix()

    def sleep(self, seconds: float) -> None:
        extra = self.delay() if self.delay is not None else 0.0
        self.world.run_until(self.world.now + seconds + extra)


def controller_delay(world: AnyWorld) -> Callable[[], float] | None:
    """The per-iteration controller delay of the world's scenario, drawn from its own stream."""
    spec = world.bundle.scenario.spec.controller.iterationDelay
    if spec is None:
        return None
    sampler = Sampler(make_draw(spec), child_rng(world.seed, "controller"))
    return sampler.next


class SimWeightActuator:
    def __init__(self, world: AnyWorld) -> None:
        self.store = world.store

    def read(self, refs: Sequence[WeightRef]) -> dict[str, int]:
        out: dict[str, int] = {}
        for ref in refs:
            obj = self.store.get(ref.obj.kind, ref.obj.namespace, ref.obj.name)
            if obj is None:
                raise BackendError(f"{ref.obj} not found (weightObjRef of version {ref.version})")
            try:
                value = weight_at(obj, ref.pointer)  # the rule the live actuator reads with
            except ValueError as exc:
                raise BackendError(
                    f"{ref.obj}: cannot read {ref.field_path}: {exc} (weightObjRef of version {ref.version})"
                ) from None
            out[ref.version] = value
        return out

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        for patch in patches:
            self.store.patch(
                patch.obj.kind, patch.obj.namespace, patch.obj.name, patch.ops, source="experiment"
            )


class SimActionRunner:
    """Records actions; mirrors ``kubectl apply -f <local file>`` into the object store."""

    def __init__(self, world: AnyWorld) -> None:
        self.world = world
        self.log: list[ActionOutcome] = []

    def run(
        self, action: str, tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]
    ) -> ActionOutcome:
        applied: list[str] = []
        skipped: list[str] = []
        ok, message = True, ""
        for task in tasks:
            for target in kubectl_apply_targets(task):
                path = Path(target) if Path(target).is_absolute() else self.world.bundle.base_dir / target
                if "://" in target or not path.is_file():
                    skipped.append(target)
                    continue
                try:
                    for doc in load_yaml_documents(path):
                        self.world.store.apply(doc.raw, source=f"action:{action}")
                    applied.append(str(target))
                except SimkitError as exc:
                    ok, message = False, f"kubectl apply -f {target} failed: {exc}"
        details = {"commands": [command_line(t) for t in tasks], "applied": applied, "not_applied": skipped}
        outcome = ActionOutcome(action, tuple(tasks), ok=ok, message=message, executed=False, details=details)
        self.log.append(outcome)
        return outcome

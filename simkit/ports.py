"""The ports the experiment loop talks through; sim, replay and live each plug in their own.

The loop (``simkit.control``) never imports simpy, httpx or kubernetes: time passes through a
:class:`Clock`, weights move through a :class:`WeightActuator`, and finish/loop actions go to an
:class:`ActionRunner`. Metric values arrive through ``simkit.metrics`` over an ``httpx.Client``
whose transport is the only other difference between worlds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ObjectRef:
    """A Kubernetes object, as a weightObjRef names it (namespace already defaulted)."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class WeightRef:
    """Where one version's weight lives: an object and a JSON pointer inside it."""

    version: str
    obj: ObjectRef
    field_path: str  # as written, e.g. ".spec.predictors[1].traffic"
    pointer: str  # RFC 6901, e.g. "/spec/predictors/1/traffic"


@dataclass(frozen=True)
class ObjectPatch:
    """All weight changes for one object, sent as one RFC 6902 JSON patch (Seldon's webhook
    rejects a split that does not sum to 100, so the ops of one object must travel together)."""

    obj: ObjectRef
    ops: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ActionOutcome:
    """What happened to one action (start/loop/finish): rendered commands and success."""

    action: str
    tasks: tuple[
        Mapping[str, Any], ...
    ]  # each rendered task, e.g. {"task": "common/exec", "cmd": ..., "args": [...]}
    ok: bool = True
    message: str = ""
    executed: bool = False  # False when only recorded/printed (sim, or live without --allow-exec)
    details: Mapping[str, Any] = field(default_factory=dict)


class Clock(Protocol):
    def now(self) -> float:
        """Current time as Unix seconds."""

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (advance the simulation, or wait on the wall clock)."""


class WeightActuator(Protocol):
    def read(self, refs: Sequence[WeightRef]) -> dict[str, int]:
        """Current weight per version; raises BackendError/SpecError when a field is unreadable."""

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        """Send each object's patch in one request; raises on failure."""


class ActionRunner(Protocol):
    def run(
        self, action: str, tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]
    ) -> ActionOutcome:
        """Run (or record) the tasks of one action with the promoted version's variables."""

"""The sim's copy of the cluster: manifests by (kind, namespace, name), changed by JSON patches.

The simulated router reads the SeldonDeployment's ``traffic`` fields (or a VirtualService's route
weights) from here on every request, so a weight patch from the experiment loop takes effect for
the next request, as it does through Istio. Writes go through the same admission rules a real
cluster applies (Seldon's webhook: non-shadow traffic sums to 100 in one patch), and a rejected
write leaves the object untouched. Patching and admission are the shared rules
(:mod:`simkit.spec.pointers`, :func:`simkit.spec.seldon.admission_problem`) that the Kubernetes
API fake applies too, so sim and fake cannot disagree about what a write does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simkit.spec.pointers import PatchError, apply_json_patch
from simkit.spec.seldon import admission_problem

__all__ = ["Change", "Key", "ObjectStore", "PatchError", "load_objects"]

Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True)
class Change:
    """One accepted write, for traces and for the router's cache invalidation."""

    time: float
    key: Key
    ops: tuple[Mapping[str, Any], ...]
    source: str


class ObjectStore:
    """Manifests by (kind, namespace, name); ``generation`` increases on every accepted write."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._clock = clock
        self.generation = 0
        self.changes: list[Change] = []

    @staticmethod
    def key_of(obj: Mapping[str, Any], default_namespace: str = "default") -> Key:
        meta = obj.get("metadata") or {}
        return (str(obj.get("kind")), str(meta.get("namespace") or default_namespace), str(meta.get("name")))

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (do not mutate it; use ``patch``/``apply``)."""
        return self._objects.get((kind, namespace, name))

    def apply(self, obj: Mapping[str, Any], source: str = "apply") -> Key:
        """``kubectl apply``: create, or replace the object's content, after admission."""
        key = self.key_of(obj)
        problem = admission_problem(obj)
        if problem:
            raise PatchError(f"{key[0]} {key[1]}/{key[2]} rejected: {problem}")
        self._objects[key] = copy.deepcopy(dict(obj))
        self._record(key, (), source)
        return key

    def patch(
        self, kind: str, namespace: str, name: str, ops: Sequence[Mapping[str, Any]], source: str = "patch"
    ) -> dict[str, Any]:
        """Apply one JSON patch atomically: all ops or none, then admission."""
        key = (kind, namespace, name)
        cur = self._objects.get(key)
        if cur is None:
            raise PatchError(f"{kind} {namespace}/{name} not found")
        new = apply_json_patch(cur, ops)
        problem = admission_problem(new)
        if problem:
            raise PatchError(f"{kind} {namespace}/{name} rejected: {problem}")
        self._objects[key] = new
        self._record(key, tuple(ops), source)
        return new

    def _record(self, key: Key, ops: tuple[Mapping[str, Any], ...], source: str) -> None:
        self.generation += 1
        self.changes.append(Change(self._clock(), key, ops, source))

    def keys(self) -> list[Key]:
        return sorted(self._objects)


def load_objects(store: ObjectStore, documents: Sequence[Mapping[str, Any]]) -> None:
    """Put manifests into the store as ``kubectl apply`` would (namespaced kinds default to 'default')."""
    for doc in documents:
        store.apply(doc, source="manifest")

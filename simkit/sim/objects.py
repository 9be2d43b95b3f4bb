"""The sim's copy of the cluster: manifests by (kind, namespace, name), changed by JSON patches.

The simulated router reads the SeldonDeployment's ``traffic`` fields (or a VirtualService's route
weights) from here on every request, so a weight patch from the experiment loop takes effect for
the next request, as it does through Istio. Writes go through the same admission rules a real
cluster applies (Seldon's webhook: non-shadow traffic sums to 100 in one patch), and a rejected
write leaves the object untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simkit.errors import BackendError
from simkit.spec.seldon import check_route_weights, check_traffic

Key = tuple[str, str, str]  # (kind, namespace, name)


class PatchError(BackendError):
    """A JSON patch that does not apply, or a write that admission rejects (HTTP 422 in a cluster)."""


@dataclass(frozen=True)
class Change:
    """One accepted write, for traces and for the router's cache invalidation."""

    time: float
    key: Key
    ops: tuple[Mapping[str, Any], ...]
    source: str


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _step(cur: Any, token: str, pointer: str) -> Any:
    if isinstance(cur, dict) and token in cur:
        return cur[token]
    if isinstance(cur, list) and token.isdigit() and int(token) < len(cur):
        return cur[int(token)]
    raise PatchError(f"path {pointer!r} does not exist")


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    cur = doc
    for t in tokens[:-1]:
        cur = _step(cur, t, pointer)
    return cur


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer; PatchError when it does not exist."""
    cur = doc
    for t in _split(pointer):
        cur = _step(cur, t, pointer)
    return cur


def apply_patch(doc: Any, ops: Sequence[Mapping[str, Any]]) -> Any:
    """RFC 6902 on a deep copy of ``doc``: add, remove, replace, move, copy, test."""
    out = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        path = str(op.get("path", ""))
        if kind not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(f"unknown op {kind!r}")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} at {path!r} needs a value")
        if kind == "test":
            if resolve_pointer(out, path) != op["value"]:
                raise PatchError(f"test failed at {path!r}")
            continue
        if kind in ("move", "copy"):
            value = copy.deepcopy(resolve_pointer(out, str(op.get("from", ""))))
            if kind == "move":
                out = apply_patch(out, [{"op": "remove", "path": op["from"]}])
            out = apply_patch(out, [{"op": "add", "path": path, "value": value}])
            continue
        tokens = _split(path)
        if not tokens:
            if kind == "remove":
                raise PatchError("cannot remove the whole document")
            out = copy.deepcopy(op["value"])
            continue
        parent = _parent(out, tokens, path)
        last = tokens[-1]
        if isinstance(parent, dict):
            if kind in ("remove", "replace") and last not in parent:
                raise PatchError(f"path {path!r} does not exist")
            if kind == "remove":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif isinstance(parent, list):
            if last == "-" and kind == "add":
                parent.append(copy.deepcopy(op["value"]))
                continue
            if not last.isdigit():
                raise PatchError(f"invalid array index in {path!r}")
            i = int(last)
            limit = len(parent) if kind == "add" else len(parent) - 1
            if i > limit:
                raise PatchError(f"array index out of range in {path!r}")
            if kind == "add":
                parent.insert(i, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[i]
            else:
                parent[i] = copy.deepcopy(op["value"])
        else:
            raise PatchError(f"path {path!r} does not exist")
    return out


def admission_problem(obj: Mapping[str, Any]) -> str | None:
    """What a real cluster's admission would say about this object (None = accepted)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "SeldonDeployment":
        preds = spec.get("predictors")
        if not isinstance(preds, list) or not preds:
            return "spec.predictors must be a non-empty list"
        return check_traffic(preds)
    if kind == "VirtualService":
        http = spec.get("http") or []
        if http and isinstance(http[0], dict) and http[0].get("route"):
            return check_route_weights(http[0]["route"])
    return None


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

    def patch(self, kind: str, namespace: str, name: str, ops: Sequence[Mapping[str, Any]],
              source: str = "patch") -> dict[str, Any]:
        """Apply one JSON patch atomically: all ops or none, then admission."""
        key = (kind, namespace, name)
        cur = self._objects.get(key)
        if cur is None:
            raise PatchError(f"{kind} {namespace}/{name} not found")
        new = apply_patch(cur, ops)
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

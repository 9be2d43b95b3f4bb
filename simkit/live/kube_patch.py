"""JSON Pointer (RFC 6901), JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7386) on plain dicts.

Both the Kubernetes API fake and the cluster weight actuator need them: the fake to apply what a
client sends exactly as kube-apiserver would, the actuator to check what it reads back. They are
written here (about 150 lines) rather than taken from ``jsonpatch`` so that the package's runtime
dependencies stay what pyproject declares; every function works on copies and never mutates its
input.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied (kube-apiserver answers these with 422)."""


class PointerError(LookupError):
    """A JSON pointer that does not resolve in a document."""


def split_pointer(pointer: str) -> list[str]:
    """``/spec/predictors/0/traffic`` -> ``["spec", "predictors", "0", "traffic"]`` (RFC 6901 escapes)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"JSON pointer {pointer!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, allow_end: bool = False) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PointerError(f"{pointer}: {token!r} is not an array index")
    idx = int(token)
    limit = len(container) + (1 if allow_end else 0)
    if idx >= limit:
        raise PointerError(f"{pointer}: index {idx} is out of range (array has {len(container)} items)")
    return idx


def resolve(doc: Any, pointer: str) -> Any:
    """The value at ``pointer``; raises PointerError naming the first part that is missing."""
    cur = doc
    walked = ""
    for token in split_pointer(pointer):
        walked += "/" + token
        if isinstance(cur, Mapping):
            if token not in cur:
                raise PointerError(f"{walked} does not exist")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, walked)]
        else:
            raise PointerError(f"{walked}: parent is a {type(cur).__name__}, not an object or array")
    return cur


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = split_pointer(pointer)
    if not tokens:
        raise PatchError("the root cannot be the target of this operation")
    parent_ptr = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])
    try:
        parent = resolve(doc, parent_ptr)
    except PointerError as exc:
        raise PatchError(f"path {pointer}: {exc}") from None
    if not isinstance(parent, dict | list):
        raise PatchError(f"path {pointer}: parent is a {type(parent).__name__}")
    return parent, tokens[-1]


def _add(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[token] = value
    else:
        try:
            parent.insert(_index(parent, token, pointer, allow_end=True), value)
        except PointerError as exc:
            raise PatchError(str(exc)) from None
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {pointer} does not exist")
        return doc, parent.pop(token)
    try:
        return doc, parent.pop(_index(parent, token, pointer))
    except PointerError as exc:
        raise PatchError(str(exc)) from None


def apply_json_patch(doc: Any, ops: Sequence[Any]) -> Any:
    """Apply RFC 6902 operations atomically: the result is a new document, ``doc`` is untouched."""
    out = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i} must be an object with 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if not isinstance(path, str):
            raise PatchError(f"operation {i}: 'path' must be a string")
        try:
            if kind in ("add", "replace", "test") and "value" not in op:
                raise PatchError(f"operation {i} ({kind}) has no 'value'")
            if kind == "add":
                out = _add(out, path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                out, _ = _remove(out, path)
            elif kind == "replace":
                resolve(out, path)  # must exist
                out, _ = _remove(out, path) if path else (out, None)
                out = _add(out, path, copy.deepcopy(op["value"]))
            elif kind in ("move", "copy"):
                src = op.get("from")
                if not isinstance(src, str):
                    raise PatchError(f"operation {i} ({kind}) needs a string 'from'")
                value = copy.deepcopy(resolve(out, src))
                if kind == "move":
                    out, _ = _remove(out, src)
                out = _add(out, path, value)
            elif kind == "test":
                if resolve(out, path) != op["value"]:
                    raise PatchError(f"test operation {i} failed at {path}")
            else:
                raise PatchError(f"operation {i}: unknown op {kind!r}")
        except PointerError as exc:
            raise PatchError(f"operation {i} ({kind}): {exc}") from None
    return out


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


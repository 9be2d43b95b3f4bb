"""JSON Pointer (RFC 6901), JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and weight fields.

One implementation for every place that reads or writes an object's fields: the sim's object
store, the Kubernetes API fake, the live weight actuator and the sim's. Pointer and patch come from
the ``jsonpointer``/``jsonpatch`` libraries (as kopf uses them) rather than from a hand-written
copy: two copies had already drifted apart (one accepted the array index ``01``, which RFC 6901
and kube-apiserver reject). The libraries are fast enough here: the loop applies one small patch
per iteration, never per request.

Reading a weight follows the API's serialisation, not the manifest's: Seldon stores ``traffic``
with ``omitempty``, so a predictor at 0% has no ``traffic`` key, and an omitted (or ``null``) weight
inside an existing object reads as 0. A pointer whose parent does not exist is an error.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import jsonpatch
import jsonpointer

from simkit.errors import BackendError

__all__ = [
    "INT32",
    "PatchError",
    "PointerError",
    "apply_json_patch",
    "apply_merge_patch",
    "field_of",
    "join_pointer",
    "resolve",
    "split_pointer",
    "weight_at",
]

INT32 = (-(2**31), 2**31 - 1)


class PatchError(BackendError):
    """A patch that cannot be applied (kube-apiserver answers these with 422), or a write that
    admission rejects."""


class PointerError(LookupError):
    """A JSON pointer that is malformed or does not resolve in a document."""


def split_pointer(pointer: str) -> list[str]:
    """``/spec/predictors/0/traffic`` -> ``["spec", "predictors", "0", "traffic"]`` (RFC 6901 escapes)."""
    try:
        return list(jsonpointer.JsonPointer(pointer).parts)
    except jsonpointer.JsonPointerException as exc:
        raise PointerError(f"invalid JSON pointer {pointer!r}: {exc}") from None


def join_pointer(tokens: Sequence[str]) -> str:
    return jsonpointer.JsonPointer.from_parts(list(tokens)).path


def field_of(pointer: str) -> str:
    """``/spec/predictors/1/traffic`` -> ``.spec.predictors[1].traffic``, for messages."""
    out = ""
    for token in split_pointer(pointer):
        out += f"[{token}]" if token.isdigit() else f".{token}"
    return out or "."


def resolve(doc: Any, pointer: str) -> Any:
    """The value at ``pointer``; PointerError naming what is missing otherwise."""
    try:
        return jsonpointer.JsonPointer(pointer).resolve(doc)
    except jsonpointer.JsonPointerException as exc:
        raise PointerError(f"{pointer}: {exc}") from None


def apply_json_patch(doc: Any, ops: Sequence[Any]) -> Any:
    """RFC 6902, atomically: a new document is returned, ``doc`` is never touched."""
    if not isinstance(ops, Sequence) or isinstance(ops, str | bytes):
        raise PatchError("a JSON patch is a list of operations")
    plain: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i} must be an object with 'op' and 'path'")
        plain.append(dict(op))
    try:
        return jsonpatch.JsonPatch(plain).apply(copy.deepcopy(doc), in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise PatchError(str(exc) or type(exc).__name__) from None
    except (TypeError, KeyError, IndexError, AttributeError) as exc:  # malformed op shapes in the library
        raise PatchError(f"malformed patch: {exc}") from None


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces (no library
    for it is a dependency; the rule is four lines)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


def weight_at(doc: Any, pointer: str) -> int:
    """The integer weight at ``pointer``; ValueError with a short reason otherwise.

    An omitted or ``null`` last member of an existing object is 0 (``omitempty``); a missing
    parent, a non-integer or a value outside int32 is an error."""
    tokens = split_pointer(pointer)
    if not tokens:
        raise ValueError("the whole object is not a weight")
    try:
        parent = resolve(doc, join_pointer(tokens[:-1]))
    except PointerError as exc:
        raise ValueError(f"no such field ({exc})") from None
    if isinstance(parent, Mapping):
        value = parent.get(tokens[-1])
    else:
        try:
            value = resolve(doc, pointer)
        except PointerError as exc:
            raise ValueError(f"no such field ({exc})") from None
    if value is None:
        return 0
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or value in (float("inf"), float("-inf"))
        or value != int(value)
    ):
        raise ValueError(f"the value {value!r} is not an integer weight")
    if not INT32[0] <= int(value) <= INT32[1]:
        raise ValueError(f"the value {value!r} does not fit an int32")
    return int(value)

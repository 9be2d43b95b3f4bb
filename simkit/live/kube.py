"""The cluster side of :class:`simkit.ports.WeightActuator`: read and move traffic weights.

etc3 reads each version's weight with a JSONPath on the live object and writes all the changes of
one object as one RFC 6902 patch (``iter8-v2.md`` §2.5–2.6). The one-request rule matters:
Seldon's webhook rejects any intermediate state whose traffic does not sum to 100
(``seldon-v1.md`` §3.2). This actuator does the same and adds what a live run needs to be safe:

* before patching it reads the object, so a missing object or a reference into nothing fails with
  one clear line and no request that could create junk fields (``add`` creates members);
* a patch whose values are already in place is not sent (resuming after a crash is idempotent);
* a 409 is retried after re-reading, with exponential backoff, a bounded number of times, then
  :class:`~simkit.errors.ConflictError`;
* after the patch it reads the object back and raises if the fields differ from what was written
  (another controller fought back, or a mutating webhook changed the values).

Weights are read with the rule the sim reads them with (:func:`simkit.spec.pointers.weight_at`):
a field absent inside an existing object reads as 0, because Seldon serialises ``traffic`` with
``omitempty``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes.client import ApiClient

from simkit.errors import BackendError, ConflictError
from simkit.live.kube_objects import DEFAULT_TIMEOUT, KubeObjects, NotFound, load_kube_client
from simkit.ports import ObjectPatch, ObjectRef, WeightRef
from simkit.spec.pointers import PointerError, field_of, join_pointer, resolve, split_pointer, weight_at

__all__ = ["KubeObjects", "KubeWeightActuator", "NotFound", "load_kube_client", "weight_at"]


def _who(versions: Sequence[str]) -> str:
    if not versions:
        return ""
    label = "version" if len(versions) == 1 else "versions"
    return f"weightObjRef of {label} {', '.join(versions)}"


class KubeWeightActuator:
    """WeightActuator over the Kubernetes API (official client, JSON patches)."""

    def __init__(
        self,
        api_client: ApiClient,
        default_namespace: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.objects = KubeObjects(api_client, default_namespace, timeout)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep

    def _ns(self, obj: ObjectRef) -> ObjectRef:
        return (
            obj
            if obj.namespace
            else ObjectRef(obj.api_version, obj.kind, self.objects.default_namespace, obj.name)
        )

    # ------------------------------------------------------------ read
    def read(self, refs: Sequence[WeightRef]) -> dict[str, int]:
        """Current weight per version, one GET per distinct object."""
        by_object: dict[ObjectRef, list[WeightRef]] = {}
        for ref in refs:
            by_object.setdefault(self._ns(ref.obj), []).append(ref)
        weights: dict[str, int] = {}
        for obj, obj_refs in by_object.items():
            doc = self.objects.get(obj, _who([r.version for r in obj_refs]))
            for ref in obj_refs:
                try:
                    weights[ref.version] = weight_at(doc, ref.pointer)
                except ValueError as exc:
                    raise BackendError(
                        f"{obj}: cannot read {ref.field_path or field_of(ref.pointer)}: {exc} "
                        f"({_who([ref.version])})"
                    ) from None
        return weights

    # ------------------------------------------------------------ apply
    @staticmethod
    def _targets(patch: ObjectPatch) -> dict[str, int]:
        targets: dict[str, int] = {}
        for op in patch.ops:
            value = op.get("value")
            path = op.get("path")
            if (
                op.get("op") not in ("add", "replace")
                or not isinstance(path, str)
                or not path.startswith("/")
            ):
                raise ValueError(
                    f"{patch.obj}: weight patches are 'add'/'replace' ops with a JSON pointer, got {op!r}"
                )
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{patch.obj}: weight for {path} must be an int, got {value!r}")
            targets[path] = value
        return targets

    @staticmethod
    def _current(obj: ObjectRef, doc: Mapping[str, Any], targets: Mapping[str, int]) -> dict[str, int | None]:
        """Current values at the target paths (None when the field is unreadable as a weight); a
        path whose parent does not exist is an error (the patch would fail or create junk)."""
        out: dict[str, int | None] = {}
        for path in targets:
            try:
                parent = resolve(doc, join_pointer(split_pointer(path)[:-1]))
                if isinstance(parent, list):
                    resolve(doc, path)
            except PointerError as exc:
                raise BackendError(f"{obj}: cannot patch {field_of(path)}: no such field ({exc})") from None
            try:
                out[path] = weight_at(doc, path)
            except ValueError:
                out[path] = None
        return out

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        """Send each object's ops as one JSON patch, retrying conflicts, then verify by reading back."""
        for patch in patches:
            obj = self._ns(patch.obj)
            targets = self._targets(patch)
            if not targets:
                continue
            attempt = 0
            while True:
                current = self._current(obj, self.objects.get(obj, "weight patch target"), targets)
                if all(current[p] == v for p, v in targets.items()):
                    break  # already in place: nothing to send
                try:
                    self.objects.json_patch(obj, patch.ops, "weight patch")
                    break
                except ConflictError:
                    attempt += 1
                    if attempt >= self.max_attempts:
                        raise ConflictError(
                            f"{obj}: the weight patch kept conflicting (HTTP 409) after {attempt} attempts; "
                            "another client is writing this object"
                        ) from None
                    self._sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            after = self._current(obj, self.objects.get(obj, "reading back the weight patch"), targets)
            wrong = [
                f"{field_of(p)} is {after[p]}, expected {v}" for p, v in targets.items() if after[p] != v
            ]
            if wrong:
                raise BackendError(
                    f"{obj}: after patching, {'; '.join(wrong)} (changed by another writer or a webhook?)"
                )

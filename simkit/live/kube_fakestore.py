"""The Kubernetes API fake's object store: CRUD with resourceVersion, admission, watch, faults.

The store is what a kube-apiserver + etcd pair does for simkit's purposes, without HTTP (the HTTP
layer is ``kubefake``): one global resourceVersion counter bumped on every effective write (a
no-op write changes nothing, as on a real apiserver), ``uid``/``creationTimestamp``/``generation``
stamping, optimistic concurrency (409 on a stale resourceVersion), Seldon's traffic webhook (422,
object unchanged), and an event log that watches replay from. Objects are stored once per
group/plural and served at every registered version, as the apiserver does for CRD versions.

Tests reach in through :meth:`FakeCluster.fail_next` (the next N writes to an object fail),
:meth:`FakeCluster.count` (requests by method/path, recorded by the HTTP layer) and
:meth:`FakeCluster.mutate` (change an object out of band, as another controller would).
"""

from __future__ import annotations

import base64
import copy
import datetime
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from simkit.live.kube_fakerules import (
    BUILTIN_TYPES,
    INITIAL_NAMESPACES,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    FakeApiError,
    RequestRecord,
    ResourceType,
    Selector,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from simkit.spec.pointers import PatchError, apply_json_patch, apply_merge_patch
from simkit.spec.seldon import admission_problem

Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name
EVENT_HISTORY = 4096


@dataclass(frozen=True)
class _Event:
    rv: int
    type: str
    key: Key
    obj: dict[str, Any]


class FakeCluster:
    """Thread-safe in-memory API state shared by every HTTP handler thread."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._objects: dict[Key, dict[str, Any]] = {}
        self._rv = 0
        self._events: deque[_Event] = deque(maxlen=EVENT_HISTORY)
        self._faults: dict[Key, list[int]] = {}  # key -> [remaining, status]
        self._requests: list[RequestRecord] = []
        self._uid_counter = 0
        self.closed = False
        for rtype in types:
            self.register(rtype)
        ns_type = self._types[("", "namespaces")]
        for ns in INITIAL_NAMESPACES:
            self.create(ns_type, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ---------------------------------------------------------------- resource types
    def register(self, rtype: ResourceType) -> None:
        with self._cond:
            self._types[(rtype.group, rtype.plural)] = rtype

    def types(self) -> list[ResourceType]:
        with self._cond:
            return list(self._types.values())

    def resource_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        rtype = self._types.get((group, plural))
        return rtype if rtype is not None and version in rtype.versions else None

    def type_for(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for rtype in self._types.values():
            if rtype.group == group and rtype.kind == kind and version in rtype.versions:
                return rtype
        raise bad_request(f'no matches for kind "{kind}" in version "{api_version}"')

    def _type_named(self, kind_or_plural: str) -> ResourceType:
        for rtype in self._types.values():
            if kind_or_plural in (rtype.kind, rtype.plural, *rtype.short_names):
                return rtype
        raise KeyError(f"the fake serves no resource called {kind_or_plural!r}")

    # ---------------------------------------------------------------- reads
    @staticmethod
    def _key(rtype: ResourceType, namespace: str, name: str) -> Key:
        return (rtype.group, rtype.plural, namespace if rtype.namespaced else "", name)

    @staticmethod
    def _at_version(obj: Mapping[str, Any], rtype: ResourceType, version: str | None) -> dict[str, Any]:
        out = copy.deepcopy(dict(obj))
        if version is not None:
            out["apiVersion"] = rtype.api_version(version)
        return out

    def get(
        self, rtype: ResourceType, namespace: str, name: str, version: str | None = None
    ) -> dict[str, Any]:
        with self._cond:
            obj = self._objects.get(self._key(rtype, namespace, name))
            if obj is None:
                raise not_found(rtype, name)
            return self._at_version(obj, rtype, version)

    def list_objects(
        self, rtype: ResourceType, namespace: str | None, selector: Selector, version: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        with self._cond:
            items = [
                self._at_version(obj, rtype, version)
                for key, obj in sorted(self._objects.items())
                if key[:2] == (rtype.group, rtype.plural)
                and (namespace is None or key[2] == namespace)
                and selector.matches(obj)
            ]
            return items, self._rv

    def object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Test helper: a copy of the stored object (kind, plural or short name), or None."""
        rtype = self._type_named(kind)
        with self._cond:
            obj = self._objects.get(self._key(rtype, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    # ---------------------------------------------------------------- writes
    def _commit(
        self, rtype: ResourceType, key: Key, new: dict[str, Any] | None, dry_run: bool
    ) -> dict[str, Any]:
        """Stamp and store ``new`` (None deletes); returns what the API answers. Caller holds the lock."""
        old = self._objects.get(key)
        if new is None:
            assert old is not None
            if not dry_run:
                del self._objects[key]
                self._rv += 1
                gone = copy.deepcopy(old)
                gone["metadata"]["resourceVersion"] = str(self._rv)
                self._emit("DELETED", key, gone)
                if rtype.plural == "namespaces" and not rtype.group:
                    self._delete_namespace_contents(key[3])
            return copy.deepcopy(old)
        problem = admission_problem(new)  # the same rule the sim's object store applies
        if problem is not None and rtype.kind == "SeldonDeployment":
            raise invalid(
                rtype,
                key[3],
                "spec.predictors",
                problem,
                group_label="machinelearing.seldon.io",
                webhook="v1.vseldondeployment.kb.io",
            )
        if problem is not None:
            raise invalid(rtype, key[3], "spec.http[0].route", problem, webhook="validation.istio.io")
        if rtype.kind == "Secret" and isinstance(new.get("stringData"), Mapping):
            data = dict(new.get("data") or {})
            for k, v in new.pop("stringData").items():
                data[str(k)] = base64.b64encode(str(v).encode()).decode()
            new["data"] = data
        meta = new.setdefault("metadata", {})
        if old is not None:
            old_meta = old["metadata"]
            for field in ("uid", "creationTimestamp", "name"):
                meta[field] = old_meta[field]
            if rtype.namespaced:
                meta["namespace"] = old_meta["namespace"]
            meta["resourceVersion"] = old_meta["resourceVersion"]
            meta["generation"] = old_meta.get("generation", 1)
            if new == old:
                return copy.deepcopy(old)  # no-op: no new resourceVersion, no event
            body = {k: v for k, v in new.items() if k not in ("metadata", "status")}
            if body != {k: v for k, v in old.items() if k not in ("metadata", "status")}:
                meta["generation"] = int(meta["generation"]) + 1
        else:
            self._uid_counter += 1
            meta["uid"] = str(uuid.UUID(int=self._uid_counter, version=4))
            meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["generation"] = 1
        if dry_run:
            return copy.deepcopy(new)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._objects[key] = new
        self._emit("MODIFIED" if old is not None else "ADDED", key, copy.deepcopy(new))
        return copy.deepcopy(new)

    def _emit(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        self._events.append(_Event(self._rv, kind, key, obj))
        self._cond.notify_all()

    def _delete_namespace_contents(self, namespace: str) -> None:
        for key in [k for k in self._objects if k[2] == namespace]:
            self._commit(self._types[key[:2]], key, None, dry_run=False)

    def _take_fault(self, key: Key, rtype: ResourceType) -> None:
        fault = self._faults.get(key)
        if fault and fault[0] > 0:
            fault[0] -= 1
            if fault[1] == 409:
                raise conflict(rtype, key[3])
            raise FakeApiError(
                fault[1], "InternalError", f'injected failure for {rtype.group_resource} "{key[3]}"'
            )

    def _existing(self, rtype: ResourceType, namespace: str, name: str) -> tuple[Key, dict[str, Any]]:
        key = self._key(rtype, namespace, name)
        obj = self._objects.get(key)
        if obj is None:
            raise not_found(rtype, name)
        return key, obj

    def create(self, rtype: ResourceType, namespace: str, body: Any, dry_run: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict) or not meta.get("name"):
            raise FakeApiError(
                422, "Invalid", f"{rtype.kind} is invalid: metadata.name: Required value: name is required"
            )
        if rtype.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for field in ("resourceVersion", "uid", "generation", "creationTimestamp"):
            meta.pop(field, None)
        with self._cond:
            if (
                rtype.namespaced
                and self._key(self._types[("", "namespaces")], "", namespace) not in self._objects
            ):
                raise not_found(self._types[("", "namespaces")], namespace)
            key = self._key(rtype, namespace, str(meta["name"]))
            if key in self._objects:
                raise already_exists(rtype, key[3])
            return self._commit(rtype, key, obj, dry_run)

    def replace(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        status_only: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        with self._cond:
            key, current = self._existing(rtype, namespace, name)
            self._take_fault(key, rtype)
            sent_rv = meta.get("resourceVersion")
            if sent_rv not in (None, "") and str(sent_rv) != current["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            new = copy.deepcopy(body)
            if status_only:  # PUT .../status changes the status and nothing else
                new = copy.deepcopy(current) | {"status": copy.deepcopy(body.get("status"))}
            else:
                new.setdefault("metadata", {})
                if "status" in current:  # a main-resource PUT keeps the stored status
                    new["status"] = copy.deepcopy(current["status"])
            return self._commit(rtype, key, new, dry_run)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        status_only: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == JSON_PATCH and not isinstance(body, list):
            raise bad_request(f"the body of a {JSON_PATCH} patch must be a JSON array of operations")
        if ctype in (MERGE_PATCH, STRATEGIC_PATCH) and not isinstance(body, dict):
            raise bad_request(
                f"the body of a {ctype} patch must be a JSON object, not a "
                f"{'JSON patch list' if isinstance(body, list) else type(body).__name__}"
            )
        if ctype == STRATEGIC_PATCH and rtype.custom:
            raise FakeApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}",
            )  # no apply-patch: the fake has no server-side apply
        if ctype not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
            raise FakeApiError(
                415,
                "UnsupportedMediaType",
                f"the simkit fake does not support patch type {ctype or '(none)'!r}; "
                f"use {JSON_PATCH} or {MERGE_PATCH}",
            )
        with self._cond:
            key, current = self._existing(rtype, namespace, name)
            self._take_fault(key, rtype)
            try:
                # strategic merge on a core type is approximated by a merge patch (lists replace)
                new = (
                    apply_json_patch(current, body)
                    if ctype == JSON_PATCH
                    else apply_merge_patch(current, body)
                )
            except PatchError as exc:
                raise FakeApiError(
                    422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
                ) from None
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise FakeApiError(422, "Invalid", "the patched object is not a Kubernetes object")
            if str(new["metadata"].get("resourceVersion")) != current["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)  # a patch carrying a stale resourceVersion is a precondition
            if status_only:
                new = copy.deepcopy(current) | {"status": new.get("status")}
            elif "status" in current or "status" in new:
                new["status"] = copy.deepcopy(current.get("status"))
                if new["status"] is None:
                    del new["status"]
            return self._commit(rtype, key, new, dry_run)

    def delete(self, rtype: ResourceType, namespace: str, name: str, dry_run: bool = False) -> dict[str, Any]:
        with self._cond:
            key, _ = self._existing(rtype, namespace, name)
            self._take_fault(key, rtype)
            return self._commit(rtype, key, None, dry_run)

    # ---------------------------------------------------------------- watch
    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        selector: Selector,
        resource_version: str | None,
        timeout: float,
        version: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Events as ``{"type", "object"}``: ADDED for what exists (no resourceVersion given) or a
        replay of the log after the given one, then live events until ``timeout`` or shutdown.
        A bad resourceVersion raises here, before the caller starts streaming."""
        with self._cond:
            if resource_version in (None, "", "0"):
                items = self.list_objects(rtype, namespace, selector, version)[0]
                return self._stream(
                    [{"type": "ADDED", "object": o} for o in items],
                    self._rv,
                    rtype,
                    namespace,
                    selector,
                    timeout,
                    version,
                )
            try:
                cursor = int(str(resource_version))
            except ValueError:
                raise bad_request(f"invalid resourceVersion {resource_version!r}") from None
            oldest = self._events[0].rv if self._events else self._rv + 1
            if len(self._events) == EVENT_HISTORY and cursor < oldest - 1:
                gone = FakeApiError(410, "Expired", f"too old resource version: {cursor} ({oldest - 1})")
                return iter([{"type": "ERROR", "object": gone.status()}])
            return self._stream([], cursor, rtype, namespace, selector, timeout, version)

    def _stream(
        self,
        initial: list[dict[str, Any]],
        cursor: int,
        rtype: ResourceType,
        namespace: str | None,
        selector: Selector,
        timeout: float,
        version: str | None,
    ) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        yield from initial
        while True:
            with self._cond:
                while not self.closed and self._rv <= cursor and time.monotonic() < deadline:
                    self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                if self.closed or self._rv <= cursor:
                    return
                batch = [
                    ev
                    for ev in self._events
                    if ev.rv > cursor
                    and ev.key[:2] == (rtype.group, rtype.plural)
                    and (namespace is None or ev.key[2] == namespace)
                    and selector.matches(ev.obj)
                ]
                cursor = self._rv
            for ev in batch:
                yield {"type": ev.type, "object": self._at_version(ev.obj, rtype, version)}

    def close(self) -> None:
        """Wake every watcher so it ends its stream (server shutdown)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # ---------------------------------------------------------------- test & admin API
    def load(self, documents: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create (or replace) each manifest, creating missing namespaces; returns ``kind ns/name``."""
        done: list[str] = []
        ns_type = self._types[("", "namespaces")]
        for doc in documents:
            rtype = self.type_for(str(doc.get("apiVersion", "")), str(doc.get("kind", "")))
            meta = doc.get("metadata") or {}
            namespace = str(meta.get("namespace") or "default") if rtype.namespaced else ""
            with self._cond:
                if rtype.namespaced and self._key(ns_type, "", namespace) not in self._objects:
                    self.create(
                        ns_type,
                        "",
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                    )
                try:
                    self.create(rtype, namespace, dict(doc))
                except FakeApiError as exc:
                    if exc.reason != "AlreadyExists":
                        raise
                    self.replace(rtype, namespace, str(meta.get("name")), dict(doc))
            done.append(
                f"{rtype.kind} {namespace}/{meta.get('name')}"
                if namespace
                else f"{rtype.kind} {meta.get('name')}"
            )
        return done

    def fail_next(self, kind: str, namespace: str, name: str, count: int = 1, status: int = 409) -> None:
        """Make the next ``count`` writes (PUT, PATCH, DELETE) to one object fail with ``status``."""
        rtype = self._type_named(kind)
        with self._cond:
            self._faults[self._key(rtype, namespace, name)] = [count, status]

    def mutate(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        json_patch: list[Any] | None = None,
        merge: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change an object out of band (as another controller would): new resourceVersion and a
        MODIFIED event, admission included, no request recorded and no injected fault consumed."""
        rtype = self._type_named(kind)
        with self._cond:
            key, current = self._existing(rtype, namespace, name)
            new = apply_json_patch(current, json_patch or [])
            if merge is not None:
                new = apply_merge_patch(new, merge)
            return self._commit(rtype, key, new, dry_run=False)

    def record(self, request: RequestRecord) -> None:
        with self._cond:
            self._requests.append(request)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._cond:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests had this method and/or exactly this path (query string excluded)."""
        with self._cond:
            return sum(
                1
                for r in self._requests
                if (method is None or r.method == method.upper()) and (path is None or r.path == path)
            )

    def clear_requests(self) -> None:
        with self._cond:
            self._requests.clear()

"""The live run's journal: what happened, durable line by line, and where to resume after a crash.

A live experiment moves production traffic, so a crash or a Ctrl-C must neither lose the
strategy's state nor move weights twice. Every step is one JSON line, written, flushed and
``fsync``'d before the step it announces goes ahead::

    header               experiment identity, strategy, run start
    iteration_started    n, metric values, current weights (the inputs)
    decision             the Decision's fields
    patch_intent         per object: ops and the values expected afterwards; per version: weights
    patch_applied        the weights read back after the patch (or found already in place)
    iteration_completed  n, strategy state, startTime, versionRecommendedForPromotion, weights
    finished             how the run ended
    drift, metrics_unavailable   observations (``note``), ignored on resume

:meth:`Journal.open` reads a journal back and offers :attr:`Journal.resume`: the last completed
iteration and the state to carry over, plus the interrupted iteration if there is one. When that
iteration has a ``patch_intent`` without ``patch_applied`` the caller reads the weights back and
re-sends the patch only if they differ from the intended ones. A torn last line (a crash in the
middle of a write) is dropped and cut off the file. Pure file I/O: no Kubernetes here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from simkit.errors import DataError
from simkit.ports import ObjectPatch, ObjectRef

FORMAT = 1


@dataclass(frozen=True)
class ExperimentIdentity:
    """Which experiment a journal belongs to (uid compared only when both sides know it)."""

    namespace: str
    name: str
    uid: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PatchIntent:
    """A journaled ``patch_intent``: the patches about to be sent and the weights they aim at."""

    iteration: int
    patches: tuple[ObjectPatch, ...]
    expected: tuple[Mapping[str, int], ...]  # per patch: JSON pointer -> value after the patch
    weights: Mapping[str, int]  # per version, the weights the patches establish


@dataclass(frozen=True)
class Interrupted:
    """An iteration that was started but never completed."""

    iteration: int
    inputs: Mapping[str, Any]  # the iteration_started record
    decision: Mapping[str, Any] | None
    intent: PatchIntent | None
    applied: Mapping[str, Any] | None  # the patch_applied record, if the patch was confirmed

    @property
    def patch_unconfirmed(self) -> bool:
        return self.intent is not None and self.applied is None


@dataclass(frozen=True)
class ResumePoint:
    completed_iterations: int
    start_time: float | None
    state: Mapping[str, Any]
    vrfp: str | None
    weights: Mapping[str, int] | None
    extra: Mapping[str, Any]
    interrupted: Interrupted | None
    finished: Mapping[str, Any] | None  # the finished record; None while the run is open

    @property
    def pending_patch(self) -> PatchIntent | None:
        """The intended-but-unconfirmed patch of the interrupted iteration, if any."""
        i = self.interrupted
        return i.intent if i is not None and i.patch_unconfirmed else None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} to the journal")


def _encode(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, default=_jsonable, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _ref_dict(obj: ObjectRef) -> dict[str, str]:
    return {"apiVersion": obj.api_version, "kind": obj.kind, "namespace": obj.namespace, "name": obj.name}


def _read_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parsed records and the byte length of the intact prefix (a torn last line is excluded)."""
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == b"")
        if not line.strip():
            if not last:
                good += len(line) + 1
            continue
        complete = number < len(lines)
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not complete:
                raise ValueError("not a complete record")
        except ValueError:
            if last:
                break  # torn by a crash mid-write: drop it
            raise DataError(f"journal {path}: line {number} is damaged (not a JSON record)") from None
        records.append(record)
        good += len(line) + 1
    return records, good


class Journal:
    """Append-only JSON-lines journal of one live run. Use :meth:`create`, :meth:`open` or
    :meth:`open_or_create`; every ``record``-writing method is durable when it returns."""

    def __init__(self, path: Path, fh: BinaryIO, records: list[dict[str, Any]]) -> None:
        self.path = path
        self._fh = fh
        self._records = records

    # ------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | Path,
        identity: ExperimentIdentity,
        strategy: str,
        start_time: float | None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> Journal:
        """Start a new journal; an existing non-empty file is an error (resume it with :meth:`open`)."""
        p = Path(path)
        if p.exists() and p.stat().st_size > 0:
            raise DataError(f"journal {p} already exists; resume it or choose another file")
        try:
            fh = p.open("wb")
        except OSError as exc:
            raise DataError(f"journal {p}: cannot create: {exc.strerror}") from None
        journal = cls(p, fh, [])
        journal._write(
            {
                "type": "header",
                "format": FORMAT,
                "experiment": {"namespace": identity.namespace, "name": identity.name, "uid": identity.uid},
                "strategy": strategy,
                "startTime": start_time,
                "extra": dict(extra or {}),
            }
        )
        try:  # make the new directory entry durable too
            dir_fd = os.open(p.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
        return journal

    @classmethod
    def open(cls, path: str | Path, identity: ExperimentIdentity | None = None) -> Journal:
        """Load an existing journal for appending; checks that it belongs to ``identity``."""
        p = Path(path)
        try:
            records, good = _read_records(p)
        except FileNotFoundError:
            raise DataError(f"journal {p} not found") from None
        except OSError as exc:
            raise DataError(f"journal {p}: cannot read: {exc.strerror}") from None
        if not records or records[0].get("type") != "header":
            raise DataError(f"journal {p} is not a simkit journal (no header record)")
        header = records[0]
        if header.get("format") != FORMAT:
            raise DataError(
                f"journal {p} has format {header.get('format')!r}; this simkit reads format {FORMAT}"
            )
        if identity is not None:
            exp = header.get("experiment") or {}
            theirs = ExperimentIdentity(str(exp.get("namespace")), str(exp.get("name")), exp.get("uid"))
            if (theirs.namespace, theirs.name) != (identity.namespace, identity.name) or (
                theirs.uid and identity.uid and theirs.uid != identity.uid
            ):
                which = f"{theirs} (uid {theirs.uid})" if theirs.uid and identity.uid else str(theirs)
                raise DataError(
                    f"journal {p} belongs to experiment {which}, not {identity}; "
                    "use another journal file for this experiment"
                )
        fh = p.open("r+b")
        fh.truncate(good)
        fh.seek(good)
        return cls(p, fh, records)

    @classmethod
    def open_or_create(
        cls,
        path: str | Path,
        identity: ExperimentIdentity,
        strategy: str,
        start_time: float | None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> Journal:
        p = Path(path)
        if p.exists() and p.stat().st_size > 0:
            if _read_records(p)[0]:
                return cls.open(p, identity)
            p.unlink()  # only a header torn by a crash during creation: start afresh
        return cls.create(p, identity, strategy, start_time, extra=extra)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ reading
    @property
    def header(self) -> Mapping[str, Any]:
        return self._records[0]

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    @property
    def resume(self) -> ResumePoint:
        header = self._records[0]
        completed: dict[str, Any] | None = None
        started: dict[str, Any] | None = None
        decision = intent = applied = finished = None
        for rec in self._records[1:]:
            kind, n = rec.get("type"), rec.get("n")
            if kind == "iteration_started":
                started, decision, intent, applied = rec, None, None, None
            elif kind == "decision" and started is not None and n == started["n"]:
                decision = rec.get("decision")
            elif kind == "patch_intent" and started is not None and n == started["n"]:
                intent, applied = rec, None
            elif kind == "patch_applied" and intent is not None and n == intent["n"]:
                applied = rec
            elif kind == "iteration_completed":
                completed, started = rec, None
            elif kind == "finished":
                finished = rec
        interrupted = None
        if started is not None:
            interrupted = Interrupted(started["n"], started, decision, self._intent(intent), applied)
        last = completed or {}
        return ResumePoint(
            completed_iterations=int(last.get("n", 0)),
            start_time=last.get("startTime", header.get("startTime")),
            state=dict(last.get("state") or {}),
            vrfp=last.get("vrfp"),
            weights=last.get("weights"),
            extra=dict(last.get("extra") or {}),
            interrupted=interrupted,
            finished=finished,
        )

    @staticmethod
    def _intent(rec: Mapping[str, Any] | None) -> PatchIntent | None:
        if rec is None:
            return None
        patches, expected = [], []
        for p in rec.get("patches", []):
            o = p["object"]
            patches.append(
                ObjectPatch(
                    ObjectRef(o["apiVersion"], o["kind"], o["namespace"], o["name"]),
                    tuple(dict(op) for op in p["ops"]),
                )
            )
            expected.append(dict(p.get("expected") or {}))
        return PatchIntent(int(rec["n"]), tuple(patches), tuple(expected), dict(rec.get("weights") or {}))

    # ------------------------------------------------------------ writing
    def _write(self, record: dict[str, Any]) -> None:
        line = _encode(record)
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._records.append(json.loads(line))

    def iteration_started(
        self, n: int, *, time: float, metrics: Mapping[str, Any], weights: Mapping[str, int] | None
    ) -> None:
        done = self.resume.completed_iterations
        if n != done + 1:
            raise ValueError(f"iteration {n} cannot start after {done} completed iterations")
        self._write(
            {"type": "iteration_started", "n": n, "time": time, "metrics": metrics, "weights": weights}
        )

    def decision(self, n: int, decision: Any) -> None:
        """Record a :class:`simkit.strategies.base.Decision` (or an equivalent mapping)."""
        self._write({"type": "decision", "n": n, "decision": _jsonable(decision)})

    def patch_intent(self, n: int, patches: Sequence[ObjectPatch], weights: Mapping[str, int]) -> None:
        entries = [
            {
                "object": _ref_dict(p.obj),
                "ops": [dict(op) for op in p.ops],
                "expected": {str(op["path"]): op["value"] for op in p.ops if "value" in op},
            }
            for p in patches
        ]
        self._write({"type": "patch_intent", "n": n, "patches": entries, "weights": dict(weights)})

    def patch_applied(self, n: int, read_back: Mapping[str, int], *, resent: bool = True) -> None:
        """``resent=False`` when the weights were found already in place after a crash."""
        self._write({"type": "patch_applied", "n": n, "readBack": dict(read_back), "resent": resent})

    def iteration_completed(
        self,
        n: int,
        *,
        state: Mapping[str, Any],
        start_time: float | None,
        vrfp: str | None,
        weights: Mapping[str, int] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._write(
            {
                "type": "iteration_completed",
                "n": n,
                "state": state,
                "startTime": start_time,
                "vrfp": vrfp,
                "weights": weights,
                "extra": dict(extra or {}),
            }
        )

    def note(self, n: int, kind: str, **fields: Any) -> None:
        """An observation that changes nothing on resume (drift, unavailable metrics)."""
        self._write({"type": kind, "n": n, **_jsonable(fields)})

    def finished(self, *, reason: str, outcome: Mapping[str, Any] | None = None) -> None:
        self._write({"type": "finished", "reason": reason, "outcome": dict(outcome or {})})

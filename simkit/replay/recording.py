"""The recording file: one self-describing OpenMetrics file with a small JSON header.

Layout (``simkit record`` writes it, ``simkit replay`` and ``simkit calibrate`` read it)::

    # simkit-recording {"formatVersion": 1, "start": ..., "end": ..., "manifests": [...], ...}
    # TYPE seldon_api_executor_client_requests_seconds histogram
    seldon_api_executor_client_requests_seconds_bucket{...,le="0.005"} 0 1623770403
    ...
    # EOF

Why this shape: the body is plain OpenMetrics (what ``simkit sim`` writes and ``simkit promql
--data`` reads), so the series stay inspectable with the tools that already exist; the header is
one comment line, which simkit's OpenMetrics reader skips, holding everything a replay needs and a
Prometheus does not know: the Experiment and Metric manifests as the user wrote them (byte for
byte), the recorded time range, the scrape step, the selectors that were pulled, and a format
version so that a file from another simkit is refused with one clear line instead of being
misread. Strip the first line and ``promtool tsdb create-blocks-from openmetrics`` backfills it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simkit.errors import DataError
from simkit.files import atomic_path
from simkit.spec.documents import Document, parse_yaml_documents
from simkit.spec.quantity import unix_time_problem
from simkit.tsdb import TSDB, Matcher, read_openmetrics, write_openmetrics

FORMAT_NAME = "simkit-recording"
FORMAT_VERSION = 1
HEADER_PREFIX = f"# {FORMAT_NAME} "


@dataclass(frozen=True)
class ManifestFile:
    """One manifest file as the user gave it (``name`` is the file's base name)."""

    name: str
    text: str


@dataclass(frozen=True)
class RecordingHeader:
    """What a recording says about itself (everything except the samples)."""

    start: float  # Unix seconds, first instant covered
    end: float  # Unix seconds, last instant covered
    step: float | None  # scrape interval (raw mode: inferred from the samples) or query_range step
    mode: str  # "raw": every stored sample; "step": query_range values at ``step``
    source: str  # the Prometheus URL the series came from
    experiment: str  # the Experiment's name
    manifests: tuple[ManifestFile, ...]
    selectors: tuple[str, ...]
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": FORMAT_NAME,
            "formatVersion": self.format_version,
            "start": self.start,
            "end": self.end,
            "step": self.step,
            "mode": self.mode,
            "source": self.source,
            "experiment": self.experiment,
            "selectors": list(self.selectors),
            "manifests": [{"name": m.name, "text": m.text} for m in self.manifests],
            **({"extra": self.extra} if self.extra else {}),
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, source: str) -> RecordingHeader:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{source}: the {FORMAT_NAME} header is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DataError(f"{source}: the {FORMAT_NAME} header is not a JSON object")
        version = data.get("formatVersion")
        if version != FORMAT_VERSION:
            raise DataError(
                f"{source}: recording format version {version!r}; this simkit reads version "
                f"{FORMAT_VERSION} (record it again with this simkit)"
            )
        try:
            header = cls(
                start=float(data["start"]),
                end=float(data["end"]),
                step=None if data.get("step") is None else float(data["step"]),
                mode=str(data["mode"]),
                source=str(data.get("source", "")),
                experiment=str(data["experiment"]),
                manifests=tuple(ManifestFile(str(m["name"]), str(m["text"])) for m in data["manifests"]),
                selectors=tuple(str(s) for s in data.get("selectors", [])),
                format_version=int(version),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: the {FORMAT_NAME} header lacks or mistypes {exc}") from None
        for name in ("start", "end"):
            problem = unix_time_problem(getattr(header, name))
            if problem:
                raise DataError(f"{source}: the {FORMAT_NAME} header's {name} {problem}")
        if header.end < header.start:
            raise DataError(f"{source}: the {FORMAT_NAME} header's end is before its start")
        if header.step is not None and not (math.isfinite(header.step) and header.step > 0):
            raise DataError(f"{source}: the {FORMAT_NAME} header's step must be a positive number of seconds")
        return header


@dataclass
class Recording:
    """A parsed recording: header, documents and the series in an in-memory TSDB."""

    path: Path
    header: RecordingHeader
    db: TSDB

    def documents(self) -> list[Document]:
        """Every manifest document; locations read ``FILE [manifest NAME]`` so errors say where."""
        docs: list[Document] = []
        for m in self.header.manifests:
            docs.extend(parse_yaml_documents(m.text, f"{self.path} [manifest {m.name}]"))
        return docs

    def experiment_document(self) -> Document:
        docs = [d for d in self.documents() if d.kind == "Experiment"]
        for d in docs:
            if d.name == self.header.experiment:
                return d
        raise DataError(f"{self.path}: the recording holds no Experiment named {self.header.experiment!r}")


def infer_types(db: TSDB) -> None:
    """Mark ``x`` as a histogram when ``x_bucket`` series with an ``le`` label exist (Prometheus'
    query API does not return metric types, and backfilled data has no metadata at all)."""
    for name in db.names():
        if name.endswith("_bucket") and name[: -len("_bucket")] not in db.types:
            if any("le" in dict(s.labels) for s in db.select([Matcher("__name__", "=", name)])):
                db.types[name[: -len("_bucket")]] = ("histogram", "")
        elif name.endswith("_total"):
            db.types.setdefault(name[: -len("_total")], ("counter", ""))


def write_recording(path: str | Path, header: RecordingHeader, db: TSDB) -> None:
    """Write atomically (temp file beside ``path``, then rename): never a half-written recording."""
    infer_types(db)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(HEADER_PREFIX + header.to_json() + "\n")
        write_openmetrics(db, fh)


def _lines(fh: Any) -> Iterator[str]:
    yield from fh


def read_recording(path: str | Path) -> Recording:
    """Parse a recording; a missing file, another format or another version is a DataError."""
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    with fh:
        try:
            first = fh.readline()
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file (expected a {FORMAT_NAME})") from None
        if not first.startswith(HEADER_PREFIX):
            raise DataError(
                f"{path}: not a {FORMAT_NAME} file (its first line should start with "
                f"{HEADER_PREFIX.strip()!r}; was it written by simkit record?)"
            )
        header = RecordingHeader.from_json(first[len(HEADER_PREFIX) :], str(p))
        try:
            db = read_openmetrics(_lines(fh), str(p))
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file") from None
    return Recording(p, header, db)

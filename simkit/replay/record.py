"""``simkit record``: pull the raw series an Experiment reads from a Prometheus, resumably.

For every vector selector inside every Metric query (see :mod:`simkit.replay.selectors`) the
recorder asks Prometheus' HTTP API, over an ``httpx.Client``:

1. ``/api/v1/series`` which series exist in the time range (a range without any is bad input);
2. per time chunk, the raw samples: an instant ``/api/v1/query`` of ``selector[chunk]`` at the
   chunk's end returns every stored sample in the chunk, so ``increase``/``rate`` over the
   recording reproduce Prometheus' exactly. With ``step`` set, ``/api/v1/query_range`` of the
   selector at that step is used instead (smaller, but lossy: values are resampled).

Each finished chunk is written, atomically, to ``OUT.parts/chunk-NNNNN.om`` beside the output
with the request in ``OUT.parts/meta.json``. Running the same command again after an interruption
skips the chunks already there; at the end the chunks are assembled into one recording, written
atomically, and the sidecar folder is removed. A sidecar made by different arguments is refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from simkit.control import Prepared
from simkit.errors import BackendError, DataError, SpecError
from simkit.promql.api import parse_timestamp
from simkit.replay.recording import ManifestFile, RecordingHeader, write_recording
from simkit.replay.selectors import metric_selectors, unique_selectors
from simkit.spec.quantity import unix_time_problem
from simkit.tsdb import TSDB, Labels, canonical_labels, read_openmetrics, save_openmetrics

DEFAULT_CHUNK = 3600.0
Progress = Callable[[int, int, str], None]  # (done, total, what) after each request


@dataclass(frozen=True)
class RecordRequest:
    url: str
    start: float
    end: float
    out: Path
    step: float | None = None  # None: raw samples; else query_range at this step
    chunk: float = DEFAULT_CHUNK


def parse_time(text: str, option: str) -> float:
    """Unix seconds or RFC 3339, as Prometheus' API parses them; bad input names the option."""
    t = parse_timestamp(str(text).strip())
    if t is None:
        raise SpecError.from_cli(
            option, f"not a time: {text!r} (give Unix seconds or RFC 3339, e.g. 2021-06-15T15:20:18Z)"
        )
    problem = unix_time_problem(t)
    if problem:
        raise SpecError.from_cli(option, problem)
    return t


def _fmt(t: float) -> str:
    return f"{t:.3f}"


class PrometheusReader:
    """The three API calls the recorder needs, with one clear BackendError line per failure."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url.rstrip("/")

    def _get(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        try:
            resp = self.client.get(self.url + path, params=list(params))
        except httpx.HTTPError as exc:
            raise BackendError(f"Prometheus at {self.url}: {type(exc).__name__}: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            raise BackendError(f"Prometheus at {self.url}{path}: HTTP {resp.status_code}, not JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error", "") if isinstance(body, dict) else ""
            raise BackendError(f"Prometheus at {self.url}{path}: HTTP {resp.status_code}: {err}")
        return body.get("data")

    def series(self, selector: str, start: float, end: float) -> list[dict[str, str]]:
        data = self._get(
            "/api/v1/series", [("match[]", selector), ("start", _fmt(start)), ("end", _fmt(end))]
        )
        return list(data or [])

    def raw(self, selector: str, lo: float, hi: float) -> list[tuple[dict[str, str], list[Any]]]:
        """Every stored sample with ``lo <= t <= hi`` (Prometheus 2.42 range selectors include both ends)."""
        ms = int(round((hi - lo) * 1000.0))
        if ms <= 0:
            return []
        data = self._get("/api/v1/query", [("query", f"{selector}[{ms}ms]"), ("time", _fmt(hi))])
        return [(r["metric"], r["values"]) for r in data["result"]]

    def stepped(
        self, selector: str, lo: float, hi: float, step: float
    ) -> list[tuple[dict[str, str], list[Any]]]:
        data = self._get(
            "/api/v1/query_range",
            [("query", selector), ("start", _fmt(lo)), ("end", _fmt(hi)), ("step", f"{step:g}")],
        )
        return [(r["metric"], r["values"]) for r in data["result"]]


def chunk_edges(start: float, end: float, chunk: float) -> list[float]:
    edges = [start]
    while edges[-1] + chunk < end:
        edges.append(round(edges[-1] + chunk, 3))
    edges.append(end)
    return edges


def _meta(req: RecordRequest, selectors: list[str]) -> dict[str, Any]:
    return {
        "url": req.url,
        "start": req.start,
        "end": req.end,
        "step": req.step,
        "chunk": req.chunk,
        "selectors": selectors,
    }


def _sidecar(req: RecordRequest, selectors: list[str]) -> Path:
    parts = req.out.with_name(req.out.name + ".parts")
    meta = _meta(req, selectors)
    meta_file = parts / "meta.json"
    if meta_file.exists():
        try:
            old = json.loads(meta_file.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != meta:
            raise DataError(
                f"{parts}: a partial recording made with other arguments is in the way; "
                "run the same command as before to resume it, or delete the folder"
            )
    else:
        parts.mkdir(parents=True, exist_ok=True)
        tmp = meta_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        tmp.replace(meta_file)
    return parts


def _pull_chunk(
    reader: PrometheusReader,
    selectors: list[str],
    lo: float,
    hi: float,
    first: bool,
    step: float | None,
    tick: Callable[[str], None],
) -> TSDB:
    """One chunk's samples for every selector; a series matched by two selectors is kept once."""
    got: dict[Labels, list[tuple[float, float]]] = {}
    for sel in selectors:
        rows = reader.stepped(sel, lo, hi, step) if step else reader.raw(sel, lo, hi)
        for metric, values in rows:
            key = canonical_labels(metric)
            if key in got:
                continue
            got[key] = [
                (float(t), float(v)) for t, v in values if float(t) > lo or (first and float(t) >= lo)
            ]
        tick(sel)
    db = TSDB()
    for key in sorted(got):
        series = db.get_or_create(key)
        for t, v in got[key]:
            series.append(t, v)
            db.note_time(t)
    return db


def infer_step(db: TSDB) -> float | None:
    """The scrape interval: the median spacing of samples over (up to) the first 50 series."""
    gaps: list[float] = []
    for i, s in enumerate(db):
        if i >= 50:
            break
        t, _ = s.arrays()
        if t.size > 1:
            gaps.extend(np.diff(t).tolist())
    return round(float(np.median(gaps)), 3) if gaps else None


def record(
    client: httpx.Client,
    prepared: Prepared,
    manifests: Sequence[ManifestFile],
    req: RecordRequest,
    progress: Progress | None = None,
) -> tuple[RecordingHeader, TSDB]:
    """Pull, assemble and write the recording at ``req.out``; returns what was written."""
    if req.end <= req.start:
        raise SpecError.from_cli("--end", "must be after --start")
    if req.step is not None and req.step <= 0:
        raise SpecError.from_cli("--step", "must be positive")
    selectors = unique_selectors(metric_selectors(prepared))
    if not selectors:
        raise SpecError(
            prepared.experiment.where, "spec.criteria", "no metric of this Experiment reads Prometheus series"
        )
    reader = PrometheusReader(client, req.url)
    edges = chunk_edges(req.start, req.end, req.chunk)
    total = len(selectors) * len(edges)  # one enumeration pass plus one pass per chunk
    done = 0

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    found = 0
    for sel in selectors:
        found += len(reader.series(sel, req.start, req.end))
        tick(f"series {sel}")
    if found == 0:
        raise DataError(
            f"no data: none of the {len(selectors)} selectors of Experiment {prepared.experiment.name} "
            f"has series at {req.url} between {_fmt(req.start)} and {_fmt(req.end)}"
        )
    parts = _sidecar(req, selectors)
    for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        path = parts / f"chunk-{i:05d}.om"
        if path.exists():  # pulled before an interruption
            done += len(selectors)
            if progress is not None:
                progress(done, total, f"chunk {i + 1} (already recorded)")
            continue
        save_openmetrics(_pull_chunk(reader, selectors, lo, hi, i == 0, req.step, tick), path)
    db = TSDB()
    for i in range(len(edges) - 1):
        with (parts / f"chunk-{i:05d}.om").open(encoding="utf-8") as fh:
            read_openmetrics(fh, str(parts / f"chunk-{i:05d}.om"), db=db)
    if db.sample_count() == 0:
        raise DataError(
            f"no data: the series of Experiment {prepared.experiment.name} have no samples "
            f"between {_fmt(req.start)} and {_fmt(req.end)} at {req.url}"
        )
    header = RecordingHeader(
        start=req.start,
        end=req.end,
        step=req.step if req.step else infer_step(db),
        mode="step" if req.step else "raw",
        source=req.url,
        experiment=prepared.experiment.name,
        manifests=tuple(manifests),
        selectors=tuple(selectors),
    )
    write_recording(req.out, header, db)
    shutil.rmtree(parts, ignore_errors=True)
    return header, db

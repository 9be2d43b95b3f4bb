"""Recordings made without a Prometheus, for fast tests: the series an Experiment's Metrics read,
taken from a simulated TSDB exactly as ``simkit record`` pulls them (raw samples, selector by
selector), written with :func:`~simkit.replay.recording.write_recording`. The integration tests
show that a recording pulled from a real Prometheus holds these very samples."""

from __future__ import annotations

from pathlib import Path

from simkit.prepare import prepare
from simkit.replay.commands import load_manifests
from simkit.replay.record import infer_step
from simkit.replay.recording import RecordingHeader, write_recording
from simkit.replay.selectors import metric_selectors, unique_selectors
from simkit.tsdb import TSDB


def recording_from_tsdb(
    db: TSDB,
    folder: Path,
    out: Path,
    start: float,
    end: float,
    experiment: str = "experiment.yaml",
    others: tuple[str, ...] = ("metrics.yaml",),
) -> Path:
    files, docs, exp_doc = load_manifests(str(folder / experiment), [str(folder / o) for o in others])
    prepared = prepare(exp_doc, docs)
    found = metric_selectors(prepared)
    got = TSDB()
    seen = set()
    for ms in found:
        for sel in ms.selectors:
            for s in db.select(sel):
                if s.labels in seen:
                    continue
                seen.add(s.labels)
                t, v = s.arrays()
                keep = (t >= start) & (t <= end)
                if keep.any():
                    target = got.get_or_create(s.labels)
                    for ti, vi in zip(t[keep].tolist(), v[keep].tolist(), strict=True):
                        target.append(ti, vi)
                        got.note_time(ti)
    header = RecordingHeader(
        start=start,
        end=end,
        step=infer_step(got),
        mode="raw",
        source="test",
        experiment=prepared.experiment.name,
        manifests=tuple(files),
        selectors=tuple(unique_selectors(found)),
    )
    write_recording(out, header, got)
    return out

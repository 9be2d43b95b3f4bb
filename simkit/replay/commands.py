"""CLI entry points: ``simkit record`` and ``simkit replay``.

Each ``cmd_*`` takes the parsed ``argparse`` namespace, prints its result and returns the exit
code; bad input raises a :class:`~simkit.errors.SimkitError` (one line, exit 2). Like every
``commands`` module it imports only its own package and the layers below: the run views
(status.yaml, trace.csv, rollout.png) come from :mod:`simkit.views`. ``simkit calibrate`` runs the
calibrated scenario in simulation to compare it with the recording, so it lives in
:mod:`simkit.report.commands`, above both ``replay`` and ``sim``.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from simkit.errors import SpecError
from simkit.files import write_text_atomic as write_text
from simkit.records import rfc3339
from simkit.replay.recording import ManifestFile, read_recording
from simkit.replay.replay import ReplayRun
from simkit.spec.documents import Document, load_yaml_documents
from simkit.spec.quantity import duration_option

STATEMENT = (
    "A replay shows what each policy would have DECIDED on the observed traffic. Iterations marked "
    "'beyond-record' are where the policy gave a version more traffic than the recording did: "
    "there its observations differ from what it would have CAUSED."
)


def _duration(text: str | None, option: str) -> float | None:
    return None if text is None else duration_option(option, text)


# --- record ---------------------------------------------------------------------------------------


def load_manifests(
    experiment: str, others: Sequence[str]
) -> tuple[list[ManifestFile], list[Document], Document]:
    """The files as given (kept byte for byte), their documents, and the one Experiment."""
    files: list[ManifestFile] = []
    docs: list[Document] = []
    for path in [experiment, *others]:
        p = Path(path)
        docs.extend(load_yaml_documents(p))  # a missing or malformed file is a SpecError here
        name = p.name if all(f.name != p.name for f in files) else f"{len(files)}-{p.name}"
        files.append(ManifestFile(name, p.read_text(encoding="utf-8")))
    exps = [d for d in load_yaml_documents(experiment) if d.kind == "Experiment"]
    if len(exps) != 1:
        raise SpecError.from_cli(
            "--experiment", f"{experiment} must hold exactly one Experiment (found {len(exps)})"
        )
    return files, docs, exps[0]


def cmd_record(args: argparse.Namespace) -> int:
    import httpx

    from simkit.prepare import prepare
    from simkit.replay.record import DEFAULT_CHUNK, RecordRequest, parse_time, record

    log = logging.getLogger("simkit.record")
    files, docs, exp_doc = load_manifests(args.experiment, args.metrics or [])
    prepared = prepare(exp_doc, docs)
    req = RecordRequest(
        url=args.prometheus_url,
        start=parse_time(args.start, "--start"),
        end=parse_time(args.end, "--end"),
        out=Path(args.out),
        step=_duration(args.step, "--step"),
        chunk=_duration(getattr(args, "chunk", None), "--chunk") or DEFAULT_CHUNK,
    )
    timeout = _duration(getattr(args, "timeout", None), "--timeout") or 30.0
    quiet = bool(getattr(args, "quiet", False))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True, highlight=False)
    log.info(
        f"recording Experiment {prepared.experiment.name} from {req.url}, {rfc3339(req.start)} to "
        f"{rfc3339(req.end)}, into {req.out}"
    )
    with (
        httpx.Client(timeout=timeout) as client,
        Progress(
            TextColumn("recording"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("record", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total)

        header, db = record(client, prepared, files, req, progress)
    fmt = getattr(args, "output", "table")
    if fmt != "table":
        from simkit.formats import render

        document = {
            "recording": str(req.out),
            "experiment": header.experiment,
            "source": req.url,
            "start": rfc3339(header.start),
            "end": rfc3339(header.end),
            "step": header.step,
            "mode": header.mode,
            "series": len(db),
            "samples": db.sample_count(),
        }
        sys.stdout.write(render(document, fmt))
        return 0
    print(
        f"recorded {len(db)} series, {db.sample_count()} samples of Experiment {header.experiment} "
        f"from {rfc3339(header.start)} to {rfc3339(header.end)} (step {header.step or 0:g}s, {header.mode}) "
        f"to {req.out}"
    )
    return 0


# --- replay ---------------------------------------------------------------------------------------


def _weights(w: object) -> str:
    return " ".join(f"{v}={n}" for v, n in dict(w or {}).items())  # type: ignore[call-overload]


def comparison_rows(runs: Sequence[ReplayRun]) -> list[list[str]]:
    """Side by side, per iteration: each strategy's winner, weights, verdict and basis."""
    head = ["iteration", "time"]
    for r in runs:
        head += [
            f"{r.strategy}.winner",
            f"{r.strategy}.weights",
            f"{r.strategy}.verdict",
            f"{r.strategy}.basis",
            f"{r.strategy}.note",
        ]
    rows = [head]
    longest = max(runs, key=lambda r: len(r.result.iterations))
    for i, ref in enumerate(longest.result.iterations):
        row = [str(ref.iteration), rfc3339(ref.time)]
        for r in runs:
            if i < len(r.result.iterations):
                rec, basis = r.result.iterations[i], r.basis[i]
                row += [
                    rec.decision.winner or "",
                    _weights(rec.weights_after),
                    rec.decision.verdict,
                    basis.basis,
                    basis.note,
                ]
            else:
                row += ["", "", "", "", ""]
        rows.append(row)
    return rows


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _summary(run: ReplayRun) -> str:
    r = run.result
    state = (
        "failed"
        if r.failed
        else "rolled back"
        if r.rolled_back
        else "completed"
        if r.completed
        else "stopped (no more data)"
    )
    beyond = sum(1 for b in run.basis if b.basis == "beyond-record")
    thinned = sum(1 for b in run.basis if b.basis == "thinned")
    return (
        f"{run.strategy}: {state} after {len(r.iterations)} iterations; winner {r.winner or 'none'}; "
        f"final weights {_weights(r.final_weights)}; beyond-record iterations {beyond}"
        + (f"; thinned (model-based) iterations {thinned}" if run.counterfactual else "")
    )


def _folder(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def write_run(run: ReplayRun, out: Path) -> list[Path]:
    """status.yaml, trace.csv, rollout.png exactly as ``simkit run`` writes them."""
    from simkit.views.plots import plot_rollout
    from simkit.views.trace import status_yaml, trace_csv

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "status.yaml", out / "trace.csv", out / "rollout.png"]
    write_text(files[0], status_yaml(run.result))
    write_text(files[1], trace_csv(run.result))
    plot_rollout(run.result, run.prepared.plan, files[2])
    return files


def cmd_replay(args: argparse.Namespace) -> int:
    from simkit.replay.record import parse_time
    from simkit.replay.replay import Replayer
    from simkit.strategies.base import create
    from simkit.strategies.options import strategy_options

    options = strategy_options(args.strategy, getattr(args, "strategy_params", None), default="iter8")
    recording = read_recording(args.file)
    delay = _duration(getattr(args, "iteration_delay", None), "--iteration-delay") or 0.0
    replayer = Replayer(recording, seed=args.seed if args.seed is not None else 1, iteration_delay=delay)
    at = parse_time(args.at, "--at") if args.at is not None else None
    until_text = getattr(args, "until", None)
    until = parse_time(until_text, "--until") if until_text is not None else None
    counterfactual = bool(getattr(args, "counterfactual", False))
    for option in options:  # every strategy checked before any replay, errors naming their option
        create(option.name, replayer.prepared.plan, option.params, option.where, option.field_prefix)
    runs = []
    for option in options:
        runs.append(
            replayer.run(
                option.name, at, counterfactual, params=option.params, label=option.label, until=until
            )
        )
    fmt = getattr(args, "output", "table")
    if fmt != "table":
        from simkit.formats import render

        sys.stdout.write(render(replay_document(runs), fmt))
        if args.out:
            _write_all(runs, Path(args.out), bool(getattr(args, "quiet", False)))
        return 0
    h = recording.header
    print(
        f"replay of {args.file}: recorded {rfc3339(h.start)} to {rfc3339(h.end)} from {h.source or '?'}; "
        f"{runs[0].notes[0] if runs and runs[0].notes else ''}"
    )
    print(STATEMENT)
    if counterfactual:
        print(
            "Counterfactual: where a policy's weight stayed under the recorded share, the version's counters "
            "were thinned binomially (basis 'thinned' = model-based; 'recorded' = exact)."
        )
    for run in runs:
        print(_summary(run))
        for note in run.notes[1:]:  # where a replay stopped early, and why
            print(f"{run.strategy}: {note}")
    print(render_table(runs))
    if args.out:
        _write_all(runs, Path(args.out), bool(getattr(args, "quiet", False)))
    return 0


def _write_all(runs: Sequence[ReplayRun], out: Path, quiet: bool) -> None:
    written: list[Path] = []
    for run in runs:
        written += write_run(run, out if len(runs) == 1 else out / _folder(run.strategy))
    write_text(out / "comparison.csv", _csv(comparison_rows(runs)))
    written.append(out / "comparison.csv")
    if not quiet:
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)


def replay_document(runs: Sequence[ReplayRun]) -> list[dict[str, object]]:
    """The ``-o json|yaml`` shape: per strategy (as given), the Experiment object it would have
    left (as ``simkit run -o json``) and each iteration's basis (recorded, thinned, beyond-record)."""
    return [
        {
            "strategy": run.strategy,
            "experiment": dict(run.result.experiment_object),
            "iterations": [
                {"iteration": b.iteration, "time": rfc3339(b.time), "basis": b.basis, "note": b.note}
                for b in run.basis
            ],
        }
        for run in runs
    ]


def render_table(runs: Sequence[ReplayRun]) -> str:
    """The side-by-side table as plain text: one column per strategy, one row per iteration;
    ``!`` marks beyond-record iterations, ``~`` thinned (model-based) ones."""
    rows = comparison_rows(runs)[1:]
    head = ["it", "time", *[r.strategy for r in runs]]
    body = []
    for row in rows:
        cells = [row[0], row[1][11:19]]
        for k in range(len(runs)):
            winner, weights, verdict, basis = row[2 + 5 * k : 6 + 5 * k]
            mark = {"beyond-record": " !", "thinned": " ~"}.get(basis, "")
            cells.append(f"{winner or '-'} [{weights}] {verdict}{mark}" if weights or verdict else "")
        body.append(cells)
    widths = [max(len(str(c[i])) for c in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [head, *body]
    )

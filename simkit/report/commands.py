"""CLI entry points of the report layer: ``describe``, ``analyze``, ``strategies``, ``calibrate``.

Each ``cmd_*`` takes the parsed ``argparse`` namespace (see :mod:`simkit.cli`), prints its result
on stdout (``-o json|yaml``: the Experiment object for ``describe``, the analytics answer for
``analyze``, ``[{name, description}]`` for ``strategies``) and returns the exit code. Bad input raises a :class:`~simkit.errors.SimkitError`,
which the CLI prints as one line (exit 2). ``run`` and ``metrics`` join this module later.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simkit.errors import Location, SpecError
from simkit.spec.documents import Document, load_yaml_documents, parse_yaml_documents
from simkit.spec.experiment import KIND, load_experiment

STDIN = "-"


def read_documents(path: str) -> list[Document]:
    """The YAML/JSON documents of a file, or of stdin when ``path`` is ``-``."""
    if path == STDIN:
        return parse_yaml_documents(sys.stdin.read(), "<stdin>")
    return load_yaml_documents(path)


def single_experiment(path: str, etc3_checks: bool = True) -> Document:
    """The one Experiment document of ``path``, validated (spec strict, status lenient; etc3's
    checks unless ``etc3_checks`` is False)."""
    docs = read_documents(path)
    file = "<stdin>" if path == STDIN else path
    if not docs:
        raise SpecError(Location(file), None, "no document found (expected one Experiment)")
    for doc in docs:
        if doc.kind != KIND:
            raise doc.error("kind", f"expected {KIND}, found {doc.kind or 'nothing'}")
    if len(docs) > 1:
        raise docs[1].error(None, f"expected one {KIND} document, found {len(docs)}")
    load_experiment(docs[0], etc3_checks=etc3_checks)
    return docs[0]


def cmd_describe(args: argparse.Namespace) -> int:
    from simkit.views.describe import describe

    doc = single_experiment(args.status)
    fmt = getattr(args, "output", "table")
    if fmt != "table":  # the Experiment object itself, validated
        from simkit.formats import render

        sys.stdout.write(render(doc.raw, fmt))
        return 0
    try:
        text = describe(doc.raw)
    except ValueError as exc:  # a value validation let through but iter8ctl cannot read
        raise doc.error(None, str(exc)) from None
    sys.stdout.write(text)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from simkit.report.analyze import DEFAULT_SEED, analyze_experiment, render_json

    doc = single_experiment(args.experiment, etc3_checks=False)  # the service's checks, not etc3's
    seed = DEFAULT_SEED if args.seed is None else args.seed
    answer = analyze_experiment(doc.raw, doc.where, seed)
    if getattr(args, "output", "json") == "yaml":
        from simkit.formats import render

        sys.stdout.write(render(answer, "yaml"))
    else:
        sys.stdout.write(render_json(answer))
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from simkit.strategies.base import available

    names = available()
    fmt = getattr(args, "output", "table")
    if fmt != "table":
        from simkit.formats import render

        sys.stdout.write(render([{"name": n, "description": d} for n, d in names.items()], fmt))
        return 0
    width = max((len(n) for n in names), default=0)
    for name, doc in names.items():
        sys.stdout.write(f"{name.ljust(width)}  {doc}\n")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``simkit calibrate``: fit a scenario from a recording and compare a run of it with the
    recording. It lives here, not in ``replay``, because the comparison runs the simulation."""
    from simkit.replay.recording import read_recording
    from simkit.report.calibration import calibrate_folder

    recording = read_recording(args.file)
    lines, document = calibrate_folder(
        recording,
        Path(args.out),
        seed=args.seed if args.seed is not None else 1,
        compare=not getattr(args, "no_compare", False),
        engine=getattr(args, "engine", None),
    )
    fmt = getattr(args, "output", "table")
    if fmt != "table":
        from simkit.formats import render

        sys.stdout.write(render(document, fmt))
        return 0
    print("\n".join(lines))
    return 0

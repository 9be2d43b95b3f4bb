"""The ``simkit`` command line: parses arguments, checks outputs, calls one layer function.

Each sub-command lives in a ``commands`` module of the layer that owns it and is imported only
when used, so ``simkit --help`` stays fast and ``simkit sim`` never imports kubernetes. The
options are declared in :mod:`simkit.cli_options`; the commands (:data:`COMMANDS`) and the parser
are assembled here. This module also owns what every command shares:
the exit codes (:data:`EXIT_CODES`), the error guard (a :class:`~simkit.errors.SimkitError` is one
line and its exit code; anything else is one line naming what was being done, exit 70, and the
traceback only with ``-v``), logging, and the check that every output can be written before any
work starts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from simkit import __version__
from simkit.cli_options import ARGUMENTS, common_options
from simkit.errors import SimkitError, SpecError

# logging, datetime and simkit.files are imported where used: `simkit --help` needs none of them

DESCRIPTION = """\
Test a progressive-rollout policy (Iter8, Flagger, Argo, Kayenta, bandits) on a simulated Seldon
deployment, then run the very same policy against your cluster."""

EPILOG = """\
examples:
  simkit run scenarios/iris-abtest --out out/iris       run the seed experiment, write its files
  simkit describe out/iris/status.yaml                  iter8ctl-style description of the result
  simkit run scenarios/iris-abtest --strategy flagger:stepWeight=20,maxWeight=60 -o json
  simkit metrics scenarios/iris-abtest --at 150s        every Metric, evaluated, with warnings
  simkit bench scenarios/suite --strategies iter8,thompson --seeds 30
  simkit tune scenarios/production --strategy flagger --space space.yaml --seeds 40 --out out/tune
  simkit live experiment.yaml metrics.yaml --prometheus-url http://127.0.0.1:9090 --dry-run
  simkit completion bash > ~/.local/share/bash-completion/completions/simkit

exit codes: 0 ok, 1 --check mismatch or failed experiment, 2 bad input, 3 Prometheus or the
Kubernetes API unreachable or failing, 70 unexpected error (a bug; -v shows the traceback),
130 interrupted. 'simkit COMMAND --help' describes each command."""


@dataclass(frozen=True)
class Command:
    module: str
    function: str
    help: str
    doing: str  # "while {doing}" in the one-line report of an unexpected error; {option} placeholders


COMMANDS: dict[str, Command] = {
    "sim": Command(
        "simkit.sim.commands",
        "cmd_sim",
        "run the simulated world (no experiment loop) and write its series",
        "simulating scenario {scenario}",
    ),
    "run": Command(
        "simkit.report.run",
        "cmd_run",
        "run a scenario's experiment in simulation",
        "running the experiment of scenario {scenario}",
    ),
    "describe": Command(
        "simkit.report.commands",
        "cmd_describe",
        "describe an Iter8 Experiment object (iter8ctl style)",
        "describing {status}",
    ),
    "analyze": Command(
        "simkit.report.commands",
        "cmd_analyze",
        "iter8-analytics drop-in: analyse one Experiment object",
        "analysing {experiment}",
    ),
    "promql": Command(
        "simkit.promql.commands",
        "cmd_promql",
        "evaluate a PromQL query over an OpenMetrics file",
        "evaluating a query over {data}",
    ),
    "metrics": Command(
        "simkit.report.metrics_table",
        "cmd_metrics",
        "evaluate a scenario's Metric objects at a sim time",
        "evaluating the metrics of scenario {scenario}",
    ),
    "live": Command(
        "simkit.live.commands",
        "cmd_live",
        "run an experiment against a real Prometheus and Kubernetes API",
        "running Experiment {experiment}{from_cluster} live",
    ),
    "serve": Command(
        "simkit.serve.commands",
        "cmd_serve",
        "serve the simulated world in real time over HTTP",
        "serving scenario {scenario}",
    ),
    "bench": Command(
        "simkit.bench.commands",
        "cmd_bench",
        "benchmark strategies over scenarios and seeds",
        "benchmarking {scenarios}",
    ),
    "tune": Command(
        "simkit.tune.commands",
        "cmd_tune",
        "tune a strategy's parameters: Pareto front over scenarios and seeds",
        "tuning {strategy} on {scenarios}",
    ),
    "plan": Command(
        "simkit.plan.commands",
        "cmd_plan",
        "plan a rollout's power: detection by step of an effect, and the step size to use",
        "planning {scenario}",
    ),
    "record": Command(
        "simkit.replay.commands",
        "cmd_record",
        "record the series an Experiment reads from a Prometheus",
        "recording Experiment {experiment} to {out}",
    ),
    "replay": Command(
        "simkit.replay.commands",
        "cmd_replay",
        "replay strategies over a recording (what each would have decided)",
        "replaying {file}",
    ),
    "calibrate": Command(
        "simkit.report.commands",
        "cmd_calibrate",
        "fit a scenario from a recording, with a comparison report",
        "calibrating from {file}",
    ),
    "strategies": Command(
        "simkit.report.commands", "cmd_strategies", "list the available strategies", "listing the strategies"
    ),
    "completion": Command(
        "simkit.cli",
        "cmd_completion",
        "print a shell completion script (bash, zsh, tcsh)",
        "writing the {shell} completion script",
    ),
}

# command -> output options checked writable before any work: (option, "file" | "dir")
OUTPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "sim": (("--out", "file"),),
    "run": (("--out", "dir"),),
    "live": (("--out", "dir"), ("--journal", "file")),
    "serve": (("--port-file", "file"),),
    "bench": (("--out", "dir"),),
    "tune": (("--out", "dir"),),
    "record": (("--out", "file"),),
    "replay": (("--out", "dir"),),
    "calibrate": (("--out", "dir"),),
}


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_BACKEND, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "--check found a mismatch with spec.expect, or the experiment failed",
    EXIT_BAD_INPUT: "bad input: a manifest, scenario, recording, option or output path (one line names it)",
    EXIT_BACKEND: "a backend is unreachable or failing: Prometheus or the Kubernetes API (retry later)",
    EXIT_INTERNAL: "an unexpected error, most likely a bug in simkit (-v prints the traceback)",
    EXIT_INTERRUPTED: "interrupted (SIGINT/SIGTERM), stopped between steps",
}
# commands that run for a long time log with timestamps (RFC 3339, UTC)
_TIMESTAMPED = {"live", "serve", "record"}


class _TopFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=16)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simkit", description=DESCRIPTION, epilog=EPILOG, formatter_class=_TopFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"simkit {__version__}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options()
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help, parents=[common])
        ARGUMENTS[name](p)
    return parser


def cmd_completion(args: argparse.Namespace) -> int:
    """The completion script for ``args.shell``, generated by shtab from :func:`build_parser`."""
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def rfc3339_millis(created: float) -> str:
    """A log record's time as RFC 3339 in UTC with milliseconds: 2021-06-15T15:20:18.123Z."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(command: str, verbose: int, quiet: bool) -> None:
    """Log records of ``simkit.*`` to stderr: INFO by default, DEBUG with -v, WARNING with -q."""
    import logging

    class _RFC3339Formatter(logging.Formatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return rfc3339_millis(record.created)

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s %(levelname)s %(message)s" if command in _TIMESTAMPED else "%(message)s"
    handler.setFormatter(_RFC3339Formatter(fmt))
    root = logging.getLogger("simkit")
    for old in list(root.handlers):
        if getattr(old, "_simkit_cli", False):
            root.removeHandler(old)
    handler._simkit_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def check_outputs(args: argparse.Namespace) -> None:
    """Every output option of the command must be writable: found before any work, not after it."""
    from simkit.files import check_writable

    for option, kind in OUTPUTS.get(args.command, ()):
        value = getattr(args, option.lstrip("-").replace("-", "_"), None)
        if value:
            problem = check_writable(value, kind)
            if problem:
                raise SpecError.from_cli(option, f"cannot write {value}: {problem}")


def doing(args: argparse.Namespace) -> str:
    """What the command was doing, for the one-line report of an unexpected error."""
    template = COMMANDS[args.command].doing
    try:
        values = {
            k: (" ".join(map(str, v)) if isinstance(v, list) else "" if v is None else v)
            for k, v in vars(args).items()
        }
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = int(getattr(args, "verbose", 0) or 0)
    configure_logging(args.command, verbose, bool(getattr(args, "quiet", False)))
    spec = COMMANDS[args.command]
    try:
        check_outputs(args)
        func = getattr(importlib.import_module(spec.module), spec.function)
        code = func(args)
    except SimkitError as err:
        print(f"simkit {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"simkit {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the guard: one line, not a traceback, unless -v
        if verbose:
            import traceback

            traceback.print_exc()
        text = " ".join(str(exc).split()) or "(no message)"
        hint = "" if verbose else "; run with -v for the traceback"
        print(
            f"simkit {args.command}: unexpected error while {doing(args)}: {type(exc).__name__}: {text}"
            f" (exit {EXIT_INTERNAL}{hint})",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Every command and option of the ``simkit`` command line, with its help (see :mod:`simkit.cli`).

Options that several commands share are declared once here: ``-v/-q`` on every command,
``--strategy``/``--strategy-params`` (parsed by :mod:`simkit.strategies.options`) and
``-o/--output``. ``tests/unit/test_cli.py`` fails on an option without help text.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from simkit import __version__

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
    "sim": Command("simkit.sim.commands", "cmd_sim", "run the simulated world (no experiment loop) and write its series",
                   "simulating scenario {scenario}"),
    "run": Command("simkit.report.run", "cmd_run", "run a scenario's experiment in simulation",
                   "running the experiment of scenario {scenario}"),
    "describe": Command("simkit.report.commands", "cmd_describe", "describe an Iter8 Experiment object (iter8ctl style)",
                        "describing {status}"),
    "analyze": Command("simkit.report.commands", "cmd_analyze", "iter8-analytics drop-in: analyse one Experiment object",
                       "analysing {experiment}"),
    "promql": Command("simkit.promql.commands", "cmd_promql", "evaluate a PromQL query over an OpenMetrics file",
                      "evaluating a query over {data}"),
    "metrics": Command("simkit.report.metrics_table", "cmd_metrics", "evaluate a scenario's Metric objects at a sim time",
                       "evaluating the metrics of scenario {scenario}"),
    "live": Command("simkit.live.commands", "cmd_live", "run an experiment against a real Prometheus and Kubernetes API",
                    "running Experiment {experiment}{from_cluster} live"),
    "serve": Command("simkit.serve.commands", "cmd_serve", "serve the simulated world in real time over HTTP",
                     "serving scenario {scenario}"),
    "bench": Command("simkit.bench.commands", "cmd_bench", "benchmark strategies over scenarios and seeds",
                     "benchmarking {scenarios}"),
    "record": Command("simkit.replay.commands", "cmd_record", "record the series an Experiment reads from a Prometheus",
                      "recording Experiment {experiment} to {out}"),
    "replay": Command("simkit.replay.commands", "cmd_replay",
                      "replay strategies over a recording (what each would have decided)", "replaying {file}"),
    "calibrate": Command("simkit.replay.commands", "cmd_calibrate",
                         "fit a scenario from a recording, with a comparison report", "calibrating from {file}"),
    "strategies": Command("simkit.report.commands", "cmd_strategies", "list the available strategies",
                          "listing the strategies"),
    "completion": Command("simkit.cli_options", "cmd_completion", "print a shell completion script (bash, zsh, tcsh)",
                          "writing the {shell} completion script"),
}

# command -> output options checked writable before any work: (option, "file" | "dir")
OUTPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "sim": (("--out", "file"),),
    "run": (("--out", "dir"),),
    "live": (("--out", "dir"), ("--journal", "file")),
    "serve": (("--port-file", "file"),),
    "bench": (("--out", "dir"),),
    "record": (("--out", "file"),),
    "replay": (("--out", "dir"),),
    "calibrate": (("--out", "dir"),),
}

FORMATS = ("table", "json", "yaml")


def add_output_format(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    default = formats[0]
    p.add_argument("-o", "--output", choices=formats, default=default, metavar="FORMAT",
                   help=f"{' | '.join(formats)} (default {default}); the JSON shapes are listed in the README")


def add_strategy(p: argparse.ArgumentParser, default_help: str, several: bool = False) -> None:
    """``--strategy NAME[:key=value,...]`` (repeatable where ``several``) and ``--strategy-params FILE``."""
    repeat = "; repeat for a side-by-side comparison" if several else ""
    p.add_argument("--strategy", action="append", default=None, metavar="NAME[:k=v,...]",
                   help=f"strategy and parameters, e.g. flagger:stepWeight=20,maxWeight=60 "
                        f"(values are YAML scalars); {default_help}{repeat}")
    p.add_argument("--strategy-params", default=None, metavar="FILE",
                   help="YAML file mapping strategy names to parameters, as scenarios/suite/strategies.yaml; "
                        "--strategy NAME:k=v overrides its entries")


def _add_sim(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--duration", default="600s", help="simulated time from the first load start (default 600s)")
    p.add_argument("--out", required=True, help="OpenMetrics file to write")
    p.add_argument("--seed", type=int, default=None, help="overrides the scenario's spec.seed")


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--seed", type=int, default=None, help="world seed; overrides the scenario's spec.seed")
    p.add_argument("--out", default=None, help="directory for status.yaml, trace.csv, metrics.om, rollout.png")
    add_strategy(p, "default: the scenario's spec.strategy, else iter8")
    p.add_argument("--check", action="store_true", help="compare with the scenario's expect block; exit 1 on mismatch")
    add_output_format(p)


def _add_describe(p: argparse.ArgumentParser) -> None:
    p.add_argument("status", help="Experiment YAML/JSON (status.yaml or kubectl get experiment -o yaml); '-' for stdin")
    add_output_format(p)


def _add_analyze(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="Experiment object (YAML or JSON) with status.analysis.aggregatedMetrics; '-' for stdin")
    p.add_argument("--seed", type=int, default=None, help="seed for Iter8's randomised rounding")
    add_output_format(p, ("json", "yaml"))


def _add_promql(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="PromQL expression (quote it for the shell)")
    p.add_argument("--data", required=True, help="OpenMetrics file")
    p.add_argument("--time", default=None, help="instant query time (Unix seconds or RFC 3339; default: newest sample)")
    p.add_argument("--start", default=None, help="range query start (Unix seconds or RFC 3339)")
    p.add_argument("--end", default=None, help="range query end (Unix seconds or RFC 3339)")
    p.add_argument("--step", default=None, help="range query step (seconds or a duration like 15s)")


def _add_metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--at", default="150s", help="sim time at which to evaluate (default 150s)")
    p.add_argument("--seed", type=int, default=None, help="world seed; overrides the scenario's spec.seed")
    add_output_format(p)


def _add_live(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="Experiment manifest file")
    p.add_argument("metrics", nargs="*", help="Metric manifest files")
    p.add_argument("--from-cluster", default=None, metavar="NAME", help="read the Experiment (and Metrics) from the cluster")
    p.add_argument("-n", "--namespace", default=None, help="namespace of the Experiment (default: its own, else default)")
    p.add_argument("--kubeconfig", default=None, metavar="FILE",
                   help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    p.add_argument("--prometheus-url", default=None, help="overrides the Metrics' urlTemplate host")
    add_strategy(p, "default iter8")
    p.add_argument("--dry-run", action="store_true", help="read and decide, but send no patch and run no action; "
                                                           "prints every patch it would send")
    p.add_argument("--journal", default=None, metavar="FILE",
                   help="record every step here (fsync'd); running again resumes after the last completed iteration")
    p.add_argument("--allow-exec", action="store_true", help="run common/exec finish and rollback actions "
                                                              "(otherwise they are printed)")
    p.add_argument("--interval-override", default=None, metavar="S",
                   help="iteration interval instead of the Experiment's (e.g. 1s to rehearse faster)")
    p.add_argument("--rollback-on-error", action="store_true",
                   help="when the run fails, restore the baseline to 100%% of the traffic")
    p.add_argument("--timeout", default="5s", help="per-request timeout for Prometheus (default 5s)")
    p.add_argument("--prometheus-ca", default=None, metavar="FILE", help="CA bundle for an https Prometheus")
    p.add_argument("--prometheus-insecure", action="store_true", help="do not verify Prometheus' TLS certificate")
    p.add_argument("--prometheus-token-file", default=None, metavar="FILE",
                   help="file holding the bearer token for Prometheus (default: $SIMKIT_PROMETHEUS_TOKEN)")
    p.add_argument("--prometheus-token", default=None, help=argparse.SUPPRESS)  # visible in ps: kept, not shown
    p.add_argument("--out", default=None, help="directory for status.yaml and trace.csv at the end")


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--kube-url", default=None, help="Kubernetes API to take traffic weights from")
    p.add_argument("--speed", type=float, default=1.0, help="sim seconds per wall second (default 1)")
    p.add_argument("--seed", type=int, default=None, help="world seed; overrides the scenario's spec.seed")
    p.add_argument("--no-load", action="store_true", help="do not run the scenario's load generators")
    p.add_argument("--port-file", default=None, help="write the port here (atomically) once listening")
    p.add_argument("--kube-interval", type=float, default=0.25, help="seconds between polls of the kube API (default 0.25)")


def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", help="scenario folders or files, or folders of scenario folders")
    p.add_argument("--strategies", default=None, metavar="A,B,...",
                   help="comma-separated strategy names (default iter8 when no --strategy is given)")
    add_strategy(p, "repeatable; adds to --strategies, its parameters override strategies.yaml")
    p.add_argument("--seeds", type=int, default=10, help="runs per scenario and strategy (default 10)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core; 1 = in-process)")
    p.add_argument("--dask-scheduler", default=None, metavar="ADDR", help="run on this Dask scheduler (tcp://host:port)")
    p.add_argument("--dask-local", action="store_true", help="run on a local Dask cluster of --workers processes")
    p.add_argument("--out", default=None, help="directory for runs/summary/trajectories (Parquet, CSV), truth.csv, PNGs")
    add_output_format(p)


def _add_record(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus-url", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--experiment", required=True, help="Experiment manifest file")
    p.add_argument("metrics", nargs="*", help="Metric manifest files (and any other manifests to keep)")
    p.add_argument("--start", required=True, help="Unix seconds or RFC 3339")
    p.add_argument("--end", required=True, help="Unix seconds or RFC 3339")
    p.add_argument("--step", default=None, help="resample with query_range at this step (default: raw samples)")
    p.add_argument("--chunk", default="1h", help="time per request; finished chunks survive an interruption (default 1h)")
    p.add_argument("--timeout", default="30s", help="per-request timeout (default 30s)")
    p.add_argument("--out", required=True, help="recording file to write")


def _add_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="recording written by simkit record")
    add_strategy(p, "default iter8", several=True)
    p.add_argument("--at", default=None, help="when the experiment starts (Unix seconds or RFC 3339; default: recording start)")
    p.add_argument("--out", default=None, help="directory for status.yaml, trace.csv, rollout.png, comparison.csv")
    p.add_argument("--seed", type=int, default=None, help="seed of the strategies' random draws (default 1)")
    p.add_argument("--counterfactual", action="store_true", help="thin recorded counters to each policy's weights")
    add_output_format(p)


def _add_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="recording written by simkit record")
    p.add_argument("--out", required=True, help="scenario folder to write")
    p.add_argument("--seed", type=int, default=None, help="seed of the comparison simulation (default 1)")
    p.add_argument("--no-compare", action="store_true", help="skip simulating the calibrated scenario for the report")


def _add_strategies(p: argparse.ArgumentParser) -> None:
    add_output_format(p)


def _add_completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete for")


_ARGS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "sim": _add_sim, "run": _add_run, "describe": _add_describe, "analyze": _add_analyze,
    "promql": _add_promql, "metrics": _add_metrics, "live": _add_live, "serve": _add_serve,
    "bench": _add_bench, "strategies": _add_strategies, "completion": _add_completion,
    "record": _add_record, "replay": _add_replay, "calibrate": _add_calibrate,
}


class _TopFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=16)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more detail in the log; an unexpected error prints its traceback")
    group.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only: no progress, no info lines")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simkit", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_TopFormatter)
    parser.add_argument("--version", action="version", version=f"simkit {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help, parents=[common])
        _ARGS[name](p)
    return parser


def cmd_completion(args: argparse.Namespace) -> int:
    """The completion script for ``args.shell``, generated by shtab from the parser above."""
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0

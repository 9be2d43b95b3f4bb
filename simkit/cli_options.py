"""Every option of every ``simkit`` command, with its help; :mod:`simkit.cli` assembles the parser.

Options that several commands share are declared once here: ``-v/-q`` on every command,
``--strategy``/``--strategy-params`` (parsed by :mod:`simkit.strategies.options`) and
``-o/--output``. ``tests/unit/test_cli.py`` fails on an option without help text.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

FORMATS = ("table", "json", "yaml")


def add_output_format(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    default = formats[0]
    p.add_argument(
        "-o",
        "--output",
        choices=formats,
        default=default,
        metavar="FORMAT",
        help=f"{' | '.join(formats)} (default {default}); the JSON shapes are listed in the README",
    )


def add_strategy(p: argparse.ArgumentParser, default_help: str, several: bool = False) -> None:
    """``--strategy NAME[:key=value,...]`` (repeatable where ``several``) and ``--strategy-params FILE``."""
    repeat = "; repeat for a side-by-side comparison" if several else ""
    p.add_argument(
        "--strategy",
        action="append",
        default=None,
        metavar="NAME[:k=v,...]",
        help=f"strategy and parameters, e.g. flagger:stepWeight=20,maxWeight=60 "
        f"(values are YAML scalars); {default_help}{repeat}",
    )
    p.add_argument(
        "--strategy-params",
        default=None,
        metavar="FILE",
        help="YAML file mapping strategy names to parameters, as scenarios/suite/strategies.yaml; "
        "--strategy NAME:k=v overrides its entries",
    )


def add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=("events", "counts", "auto"),
        default=None,
        help="simulation engine: events (per request), counts (per scrape, any traffic), auto "
        "(counts where equivalent; default: the scenario's spec.engine, else auto)",
    )


def _add_sim(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument(
        "--duration", default="600s", help="simulated time from the first load start (default 600s)"
    )
    p.add_argument("--out", required=True, help="OpenMetrics file to write")
    p.add_argument("--seed", type=int, default=None, help="overrides the scenario's spec.seed")
    add_output_format(p)
    add_engine(p)


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--seed", type=int, default=None, help="world seed; overrides the scenario's spec.seed")
    p.add_argument(
        "--out", default=None, help="directory for status.yaml, trace.csv, metrics.om, rollout.png"
    )
    add_strategy(p, "default: the scenario's spec.strategy, else iter8")
    p.add_argument(
        "--check", action="store_true", help="compare with the scenario's expect block; exit 1 on mismatch"
    )
    add_output_format(p)
    add_engine(p)


def _add_describe(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "status", help="Experiment YAML/JSON (status.yaml or kubectl get experiment -o yaml); '-' for stdin"
    )
    add_output_format(p)


def _add_analyze(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "experiment",
        help="Experiment object (YAML or JSON) with status.analysis.aggregatedMetrics; '-' for stdin",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for Iter8's randomised rounding")
    add_output_format(p, ("json", "yaml"))


def _add_promql(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="PromQL expression (quote it for the shell)")
    p.add_argument("--data", required=True, help="OpenMetrics file")
    p.add_argument(
        "--time", default=None, help="instant query time (Unix seconds or RFC 3339; default: newest sample)"
    )
    p.add_argument("--start", default=None, help="range query start (Unix seconds or RFC 3339)")
    p.add_argument("--end", default=None, help="range query end (Unix seconds or RFC 3339)")
    p.add_argument("--step", default=None, help="range query step (seconds or a duration like 15s)")


def _add_metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--at", default="150s", help="sim time at which to evaluate (default 150s)")
    p.add_argument("--seed", type=int, default=None, help="world seed; overrides the scenario's spec.seed")
    add_output_format(p)
    add_engine(p)


def _add_live(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="Experiment manifest file")
    p.add_argument("metrics", nargs="*", help="Metric manifest files")
    p.add_argument(
        "--from-cluster",
        default=None,
        metavar="NAME",
        help="read the Experiment (and Metrics) from the cluster",
    )
    p.add_argument(
        "-n", "--namespace", default=None, help="namespace of the Experiment (default: its own, else default)"
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)",
    )
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    p.add_argument("--prometheus-url", default=None, help="overrides the Metrics' urlTemplate host")
    add_strategy(p, "default iter8")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read and decide, but send no patch and run no action; prints every patch it would send",
    )
    p.add_argument(
        "--journal",
        default=None,
        metavar="FILE",
        help="record every step here (fsync'd); running again resumes after the last completed iteration",
    )
    p.add_argument(
        "--allow-exec",
        action="store_true",
        help="run common/exec finish and rollback actions (otherwise they are printed)",
    )
    p.add_argument(
        "--interval-override",
        default=None,
        metavar="S",
        help="iteration interval instead of the Experiment's (e.g. 1s to rehearse faster)",
    )
    p.add_argument(
        "--rollback-on-error",
        action="store_true",
        help="if the run fails for any reason, put all traffic back on the baseline",
    )
    p.add_argument(
        "--adopt-drift",
        action="store_true",
        help="carry on from weights another writer changed mid-run (default: report and stop)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the strategy's random draws (Iter8's randomised rounding), as `simkit run --seed`"
        " seeds them; default: fresh entropy",
    )
    p.add_argument("--timeout", default="5s", help="per-request timeout for Prometheus (default 5s)")
    p.add_argument("--prometheus-ca", default=None, metavar="FILE", help="CA bundle for an https Prometheus")
    p.add_argument(
        "--prometheus-insecure", action="store_true", help="do not verify Prometheus' TLS certificate"
    )
    p.add_argument(
        "--prometheus-token-file",
        default=None,
        metavar="FILE",
        help="file holding the bearer token for Prometheus (default: $SIMKIT_PROMETHEUS_TOKEN)",
    )
    p.add_argument(
        "--prometheus-token", default=None, help=argparse.SUPPRESS
    )  # visible in ps: kept, not shown
    p.add_argument("--out", default=None, help="directory for status.yaml and trace.csv at the end")
    add_output_format(p)


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--kube-url", default=None, help="Kubernetes API to take traffic weights from")
    p.add_argument("--speed", type=float, default=1.0, help="sim seconds per wall second (default 1)")
    p.add_argument("--seed", type=int, default=None, help="world seed; overrides the scenario's spec.seed")
    p.add_argument("--no-load", action="store_true", help="do not run the scenario's load generators")
    p.add_argument("--port-file", default=None, help="write the port here (atomically) once listening")
    p.add_argument(
        "--kube-interval",
        type=float,
        default=0.25,
        help="seconds between polls of the kube API (default 0.25)",
    )
    add_engine(p)
    add_output_format(p)


def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", help="scenario folders or files, or folders of scenario folders")
    p.add_argument(
        "--strategies",
        default=None,
        metavar="A,B,...",
        help="comma-separated strategy names (default iter8 when no --strategy is given)",
    )
    add_strategy(p, "repeatable; adds to --strategies, its parameters override strategies.yaml")
    p.add_argument("--seeds", type=int, default=10, help="runs per scenario and strategy (default 10)")
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core; 1 = in-process)"
    )
    p.add_argument(
        "--dask-scheduler", default=None, metavar="ADDR", help="run on this Dask scheduler (tcp://host:port)"
    )
    p.add_argument(
        "--dask-local", action="store_true", help="run on a local Dask cluster of --workers processes"
    )
    p.add_argument(
        "--out", default=None, help="directory for runs/summary/trajectories (Parquet, CSV), truth.csv, PNGs"
    )
    add_output_format(p)
    add_engine(p)


def _add_plan(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or file whose Experiment, policy and baseline to plan")
    p.add_argument(
        "--effect",
        action="append",
        metavar="METRIC=DELTA",
        help="the regression to detect in the candidate: error-rate=+0.003 (absolute), "
        "mean-latency=+3%% (relative), engagement-rate=-0.01; repeatable",
    )
    p.add_argument(
        "--traffic",
        type=float,
        default=None,
        metavar="QPS",
        help="total requests per second (default: the scenario's)",
    )
    add_strategy(p, "default: the scenario's strategy; parameters from strategies.yaml by the scenario")
    p.add_argument(
        "--alpha", type=float, default=0.05, help="level of the confidence-sequence look (default 0.05)"
    )
    p.add_argument("--power", type=float, default=0.8, help="detection probability wanted (default 0.8)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="time within which to detect (default: the Experiment's whole duration)",
    )
    p.add_argument(
        "--paths", type=int, default=2000, help="rollouts drawn from the count model (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the count model's rollouts (default 0)")
    p.add_argument(
        "--verify", type=int, default=0, metavar="N", help="simulate N seeds and compare (default 0: off)"
    )
    p.add_argument("--workers", type=int, default=None, help="processes for --verify (default 1)")
    add_engine(p)
    add_output_format(p)


def _add_tune(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", help="scenario folders or files, or folders of scenario folders")
    p.add_argument(
        "--strategy",
        required=True,
        metavar="NAME[:k=v,...]",
        help="the strategy to tune; its baseline parameters are strategies.yaml's (or these k=v)",
    )
    p.add_argument(
        "--strategy-params",
        default=None,
        metavar="FILE",
        help="YAML file of baseline parameters per strategy (default: strategies.yaml by the scenarios)",
    )
    p.add_argument(
        "--space",
        required=True,
        metavar="FILE",
        help="YAML search space: parameter -> [values] or {low, high, step} (see the README)",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=50,
        help="most candidates to score; a larger grid is sampled with --seed (default 50)",
    )
    p.add_argument(
        "--seeds", type=int, default=20, help="runs per scenario and candidate, the same for all (default 20)"
    )
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="K",
        help="first seed index (default 0); use fresh ones to confirm a choice on held-out seeds",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the grid sample and of the paired-difference bootstrap (default 0)",
    )
    p.add_argument(
        "--max-false-promotion",
        type=float,
        default=None,
        metavar="P",
        help="feasible candidates promote falsely at most this often "
        "(default: the baseline's rate plus its bootstrap margin)",
    )
    p.add_argument(
        "--choose",
        choices=("knee", "bad_requests", "time_to_decision", "false_rollback"),
        default="knee",
        help="which Pareto point to write: knee (closest to the ideal, default) or the best on one objective",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core; 1 = in-process)"
    )
    p.add_argument(
        "--dask-scheduler", default=None, metavar="ADDR", help="run on this Dask scheduler (tcp://host:port)"
    )
    p.add_argument(
        "--dask-local", action="store_true", help="run on a local Dask cluster of --workers processes"
    )
    p.add_argument(
        "--out",
        default=None,
        help="directory for candidates.csv, runs (Parquet, CSV), pareto.png, strategies.yaml",
    )
    add_output_format(p)
    add_engine(p)


def _add_record(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus-url", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--experiment", required=True, help="Experiment manifest file")
    p.add_argument("metrics", nargs="*", help="Metric manifest files (and any other manifests to keep)")
    p.add_argument("--start", required=True, help="Unix seconds or RFC 3339")
    p.add_argument("--end", required=True, help="Unix seconds or RFC 3339")
    p.add_argument(
        "--step", default=None, help="resample with query_range at this step (default: raw samples)"
    )
    p.add_argument(
        "--chunk", default="1h", help="time per request; finished chunks survive an interruption (default 1h)"
    )
    p.add_argument("--timeout", default="30s", help="per-request timeout (default 30s)")
    p.add_argument("--out", required=True, help="recording file to write")
    add_output_format(p)


def _add_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="recording written by simkit record")
    add_strategy(p, "default iter8", several=True)
    p.add_argument(
        "--at",
        default=None,
        help="when the experiment starts (Unix seconds or RFC 3339; default: recording start)",
    )
    p.add_argument(
        "--until", default=None, help="replay no iteration after this time (default: the recording's end)"
    )
    p.add_argument(
        "--iteration-delay",
        default=None,
        help="what the recorded controller added to each interval (e.g. 3.08s; default 0)",
    )
    p.add_argument(
        "--out", default=None, help="directory for status.yaml, trace.csv, rollout.png, comparison.csv"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the strategies' random draws (default 1)")
    p.add_argument(
        "--counterfactual", action="store_true", help="thin recorded counters to each policy's weights"
    )
    add_output_format(p)


def _add_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="recording written by simkit record")
    p.add_argument("--out", required=True, help="scenario folder to write")
    p.add_argument("--seed", type=int, default=None, help="seed of the comparison simulation (default 1)")
    p.add_argument(
        "--no-compare", action="store_true", help="skip simulating the calibrated scenario for the report"
    )
    p.add_argument(
        "--engine",
        choices=("events", "counts", "auto"),
        default=None,
        help="engine of the comparison runs: events (per request; the default, as the fit assumes), "
        "counts (per scrape, any traffic) or auto (counts where equivalent)",
    )
    add_output_format(p)


def _add_strategies(p: argparse.ArgumentParser) -> None:
    add_output_format(p)


def _add_completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete for")


ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "sim": _add_sim,
    "run": _add_run,
    "describe": _add_describe,
    "analyze": _add_analyze,
    "promql": _add_promql,
    "metrics": _add_metrics,
    "live": _add_live,
    "serve": _add_serve,
    "bench": _add_bench,
    "tune": _add_tune,
    "plan": _add_plan,
    "strategies": _add_strategies,
    "completion": _add_completion,
    "record": _add_record,
    "replay": _add_replay,
    "calibrate": _add_calibrate,
}


def common_options() -> argparse.ArgumentParser:
    """``-v/-q``, a parent parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail in the log; an unexpected error prints its traceback",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only: no progress, no info lines"
    )
    return common

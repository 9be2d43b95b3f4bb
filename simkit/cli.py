"""The ``simkit`` command line: parses arguments, calls one layer function, prints.

Each sub-command lives in a ``commands`` module of the layer that owns it and is imported only
when used, so ``simkit --help`` stays fast and ``simkit sim`` never imports kubernetes.
Every :class:`~simkit.errors.SimkitError` becomes one line on stderr and its exit code (2 for
bad input); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from simkit.errors import SimkitError

# command -> (module, function, help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "sim": ("simkit.sim.commands", "cmd_sim", "run the simulated world (no experiment loop) and write its series"),
    "run": ("simkit.report.run", "cmd_run", "run a scenario's experiment in simulation"),
    "describe": ("simkit.report.commands", "cmd_describe", "describe an Iter8 Experiment object (iter8ctl style)"),
    "analyze": ("simkit.report.commands", "cmd_analyze", "iter8-analytics drop-in: analyse one Experiment object"),
    "promql": ("simkit.promql.commands", "cmd_promql", "evaluate a PromQL query over an OpenMetrics file"),
    "metrics": ("simkit.report.metrics_table", "cmd_metrics", "evaluate a scenario's Metric objects at a sim time"),
    "live": ("simkit.live.commands", "cmd_live", "run an experiment against a real Prometheus and Kubernetes API"),
    "serve": ("simkit.serve.commands", "cmd_serve", "serve the simulated world in real time over HTTP"),
    "bench": ("simkit.bench.commands", "cmd_bench", "benchmark strategies over scenarios and seeds"),
    "record": ("simkit.replay.commands", "cmd_record", "record the series an Experiment reads from a Prometheus"),
    "replay": ("simkit.replay.commands", "cmd_replay", "replay strategies over a recording (what each would have decided)"),
    "calibrate": ("simkit.replay.commands", "cmd_calibrate", "fit a scenario from a recording, with a comparison report"),
    "strategies": ("simkit.report.commands", "cmd_strategies", "list the available strategies"),
}


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("events", "counts", "auto"), default=None,
                   help="simulation engine: events (per request), counts (per scrape, any traffic), auto "
                        "(counts where equivalent; default: the scenario's spec.engine, else auto)")


def _add_sim(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario folder or multi-document YAML file")
    p.add_argument("--duration", default="600s", help="simulated time from the first load start (default 600s)")
    p.add_argument("--out", required=True, help="OpenMetrics file to write")
    p.add_argument("--seed", type=int, default=None, help="overrides the scenario's spec.seed")
    _add_engine(p)


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="directory for status.yaml, trace.csv, metrics.om, rollout.png")
    p.add_argument("--strategy", default=None, help="strategy name (default: the scenario's, else iter8)")
    p.add_argument("--check", action="store_true", help="compare with the scenario's expect block; exit 1 on mismatch")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_engine(p)


def _add_describe(p: argparse.ArgumentParser) -> None:
    p.add_argument("status", help="Experiment YAML/JSON (status.yaml or kubectl get experiment -o yaml); '-' for stdin")


def _add_analyze(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="Experiment object (YAML or JSON) with status.analysis.aggregatedMetrics; '-' for stdin")
    p.add_argument("--seed", type=int, default=None, help="seed for Iter8's randomised rounding")


def _add_promql(p: argparse.ArgumentParser) -> None:
    p.add_argument("query")
    p.add_argument("--data", required=True, help="OpenMetrics file")
    p.add_argument("--time", default=None, help="instant query time (Unix seconds or RFC 3339)")
    p.add_argument("--start", default=None)
    p.add_argument("--end", default=None)
    p.add_argument("--step", default=None)


def _add_metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario")
    p.add_argument("--at", default="150s", help="sim time at which to evaluate (default 150s)")
    p.add_argument("--seed", type=int, default=None)
    _add_engine(p)


def _add_live(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="Experiment manifest file")
    p.add_argument("metrics", nargs="*", help="Metric manifest files")
    p.add_argument("--from-cluster", default=None, metavar="NAME", help="read the Experiment (and Metrics) from the cluster")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--context", default=None)
    p.add_argument("--prometheus-url", default=None, help="overrides the Metrics' urlTemplate host")
    p.add_argument("--strategy", default="iter8")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--journal", default=None)
    p.add_argument("--allow-exec", action="store_true")
    p.add_argument("--interval-override", default=None, metavar="S")
    p.add_argument("--rollback-on-error", action="store_true",
                   help="if the run fails for any reason, put all traffic back on the baseline")
    p.add_argument("--adopt-drift", action="store_true",
                   help="carry on from weights another writer changed mid-run (default: report and stop)")
    p.add_argument("--timeout", default="5s", help="per-request timeout for Prometheus")
    p.add_argument("--prometheus-ca", default=None, metavar="FILE", help="CA bundle for an https Prometheus")
    p.add_argument("--prometheus-insecure", action="store_true", help="do not verify Prometheus' TLS certificate")
    p.add_argument("--prometheus-token", default=None, help="bearer token for Prometheus")
    p.add_argument("--out", default=None, help="directory for status.yaml and trace.csv at the end")


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario")
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--kube-url", default=None, help="Kubernetes API to take traffic weights from")
    p.add_argument("--speed", type=float, default=1.0, help="sim seconds per wall second")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-load", action="store_true", help="do not run the scenario's load generators")
    p.add_argument("--port-file", default=None, help="write the port here (atomically) once listening")
    p.add_argument("--kube-interval", type=float, default=0.25, help="seconds between polls of the kube API")
    _add_engine(p)


def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+")
    p.add_argument("--strategies", default="iter8")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--dask-scheduler", default=None)
    p.add_argument("--dask-local", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--quiet", action="store_true")
    _add_engine(p)


def _add_record(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus-url", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--experiment", required=True, help="Experiment manifest file")
    p.add_argument("metrics", nargs="*", help="Metric manifest files (and any other manifests to keep)")
    p.add_argument("--start", required=True, help="Unix seconds or RFC 3339")
    p.add_argument("--end", required=True, help="Unix seconds or RFC 3339")
    p.add_argument("--step", default=None, help="resample with query_range at this step (default: raw samples)")
    p.add_argument("--chunk", default="1h", help="time per request; finished chunks survive an interruption")
    p.add_argument("--timeout", default="30s", help="per-request timeout")
    p.add_argument("--out", required=True, help="recording file to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="recording written by simkit record")
    p.add_argument("--strategy", action="append", default=None,
                   help="strategy NAME or NAME:key=value,...; repeat for a side-by-side replay")
    p.add_argument("--at", default=None, help="when the experiment starts (Unix seconds or RFC 3339; default: recording start)")
    p.add_argument("--until", default=None, help="replay no iteration after this time (default: the recording's end)")
    p.add_argument("--iteration-delay", default=None,
                   help="what the recorded controller added to each interval (e.g. 3.08s; default 0)")
    p.add_argument("--out", default=None, help="directory for status.yaml, trace.csv, rollout.png, comparison.csv")
    p.add_argument("--seed", type=int, default=None, help="seed of the strategies' random draws (default 1)")
    p.add_argument("--counterfactual", action="store_true", help="thin recorded counters to each policy's weights")
    p.add_argument("--quiet", action="store_true")


def _add_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="recording written by simkit record")
    p.add_argument("--out", required=True, help="scenario folder to write")
    p.add_argument("--seed", type=int, default=None, help="seed of the comparison simulation (default 1)")
    p.add_argument("--no-compare", action="store_true", help="skip simulating the calibrated scenario for the report")


_ARGS = {
    "sim": _add_sim, "run": _add_run, "describe": _add_describe, "analyze": _add_analyze,
    "promql": _add_promql, "metrics": _add_metrics, "live": _add_live, "serve": _add_serve,
    "bench": _add_bench, "strategies": lambda p: None,
    "record": _add_record, "replay": _add_replay, "calibrate": _add_calibrate,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simkit", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, help_text) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _ARGS[name](p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module_name, func_name, _ = _COMMANDS[args.command]
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        code = func(args)
    except SimkitError as err:
        print(f"simkit {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"simkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

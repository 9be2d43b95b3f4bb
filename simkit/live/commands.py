"""``simkit live``: the same loop and strategy as ``simkit run``, against a real Prometheus and a
real Kubernetes API.

Order of work, so that bad input never moves traffic: read the manifests (files, or the cluster
with ``--from-cluster``), prepare them (the same checks as in sim), connect to Kubernetes, read
every ``weightObjRef`` (a missing object stops here), check that Prometheus answers, open or
resume the journal, and only then start iterating. SIGINT/SIGTERM stop between steps; the journal
lets a restarted ``simkit live`` continue after the last completed iteration.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from simkit.control import Ports, Prepared, Resume, read_weights, run_experiment
from simkit.errors import BackendError, Location, SimkitError, SpecError
from simkit.live.adapters import (
    DryRunActuator,
    JournalHooks,
    LiveActionRunner,
    WallClock,
    decision_from_journal,
    prometheus_client,
)
from simkit.live.journal import ExperimentIdentity, Journal
from simkit.live.kube import KubeWeightActuator
from simkit.live.kube_objects import KubeObjects, NotFound, load_kube_client
from simkit.live.preflight import check_windows, preflight_prometheus
from simkit.metrics import MetricFetcher
from simkit.prepare import prepare
from simkit.records import RunResult
from simkit.spec.documents import Document, load_yaml_documents
from simkit.spec.experiment import metric_references, parse_experiment
from simkit.spec.quantity import duration_option
from simkit.spec.streams import child_rng
from simkit.strategies.base import create
from simkit.strategies.options import StrategyOption, single_strategy

log = logging.getLogger("simkit.live")
TOKEN_ENV = "SIMKIT_PROMETHEUS_TOKEN"


def say(message: str) -> None:
    """Progress of the run: one INFO record (RFC 3339 timestamp, -q hides it; see simkit.cli)."""
    log.info(message)


def prometheus_token(args: argparse.Namespace) -> str | None:
    """The bearer token: ``--prometheus-token-file``, else $SIMKIT_PROMETHEUS_TOKEN, else the hidden
    ``--prometheus-token`` (kept for old scripts; a token on the command line shows in ``ps``)."""
    path = getattr(args, "prometheus_token_file", None)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SpecError.from_cli(
                "--prometheus-token-file", f"cannot read {path}: {exc.strerror or exc}"
            ) from None
        if not token:
            raise SpecError.from_cli("--prometheus-token-file", f"{path} is empty")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or getattr(args, "prometheus_token", None)


def strategy_of(args: argparse.Namespace) -> StrategyOption:
    option = single_strategy(getattr(args, "strategy", None), getattr(args, "strategy_params", None), "iter8")
    assert option is not None  # a default is given
    return option


def _documents_from_files(args: argparse.Namespace) -> tuple[Document, list[Document]]:
    if not args.experiment:
        raise SpecError.from_cli("EXPERIMENT", "give an Experiment manifest file, or --from-cluster NAME")
    docs = load_yaml_documents(args.experiment)
    exps = [d for d in docs if d.kind == "Experiment"]
    if len(exps) != 1:
        raise SpecError(
            Location(args.experiment), None, f"expected exactly one Experiment document, found {len(exps)}"
        )
    others = [d for d in docs if d is not exps[0]]
    for path in args.metrics:
        others += load_yaml_documents(path)
    return exps[0], others


def _documents_from_cluster(
    args: argparse.Namespace, objects: KubeObjects
) -> tuple[Document, list[Document]]:
    ns = args.namespace or "default"
    raw = objects.read_experiment(args.from_cluster, ns)
    where = Location(f"cluster Experiment {ns}/{args.from_cluster}", 0, "Experiment", args.from_cluster)
    exp = parse_experiment(raw, where)
    metrics: list[Document] = []
    seen: set[str] = set()
    for field, ref in metric_references(exp):
        mns, _, name = ref.rpartition("/")
        key = f"{mns or exp.namespace}/{name}"
        if key in seen:
            continue
        seen.add(key)
        try:
            m = objects.read_metric(name, mns or exp.namespace)
        except BackendError as exc:
            raise SpecError(where, field, f"cannot read Metric {key} from the cluster: {exc}") from None
        metrics.append(Document(m, Location(f"cluster Metric {key}", 0, "Metric", name)))
    return Document(raw, where), metrics


def _resume_from(journal: Journal) -> Resume | None:
    point = journal.resume
    if point.completed_iterations == 0 and point.interrupted is None:
        return None
    pending = None
    if point.interrupted is not None and point.interrupted.decision is not None:
        pending = decision_from_journal(point.interrupted.decision)
    status = dict(point.extra.get("status") or {})
    start = point.start_time
    if start is None and point.interrupted is not None:  # killed during iteration 1: it started the clock
        start = point.interrupted.inputs.get("time")
    return Resume(
        completed=point.completed_iterations,
        start_time=start,
        vrfp=point.vrfp or "",
        state=point.state,
        status=status,
        last_update=point.extra.get("lastUpdate"),
        pending_decision=pending,
    )


def cmd_live(args: argparse.Namespace) -> int:
    timeout = duration_option("--timeout", args.timeout)  # options first: nothing is contacted yet
    interval = (
        duration_option("--interval-override", args.interval_override) if args.interval_override else None
    )
    option = strategy_of(args)
    # the same stream `simkit run` gives the strategy for world seed --seed (simkit.sim.experiment)
    seed = getattr(args, "seed", None)
    rng = np.random.default_rng() if seed is None else child_rng(seed, "strategy", option.name)
    token = prometheus_token(args)
    try:
        api = load_kube_client(args.kubeconfig, args.context)
    except BackendError as exc:  # a missing or broken kubeconfig is the user's to fix: bad input
        raise SpecError.from_cli("--kubeconfig", str(exc)) from None
    objects = KubeObjects(api, args.namespace or "default")
    exp_doc, metric_docs = (
        _documents_from_cluster(args, objects) if args.from_cluster else _documents_from_files(args)
    )
    if args.namespace and not (exp_doc.raw.get("metadata") or {}).get("namespace"):
        exp_doc = Document(
            {**exp_doc.raw, "metadata": {**exp_doc.raw.get("metadata", {}), "namespace": args.namespace}},
            exp_doc.where,
        )
    prepared = prepare(exp_doc, metric_docs)
    if interval is not None:
        prepared = dataclasses.replace(
            prepared, plan=dataclasses.replace(prepared.plan, interval_seconds=interval)
        )
    exp = prepared.experiment
    real = KubeWeightActuator(api, exp.namespace)
    # a weightObjRef pointing at a missing object or field stops the run here, before anything moves
    try:
        read_weights(real, exp, prepared.plan)
    except NotFound as exc:  # the Experiment names an object that is not there: bad input, exit 2
        raise SpecError(exp.where, "spec.versionInfo", f"weightObjRef: {exc}") from None
    strategy = create(option.name, prepared.plan, option.params, option.where, option.field_prefix)
    client = prometheus_client(timeout, args.prometheus_ca, args.prometheus_insecure, token)
    try:
        scrape = preflight_prometheus(client, prepared, args.prometheus_url)
        check_windows(prepared, scrape, say)
    except BaseException:
        client.close()
        raise
    dry = DryRunActuator(real, say) if args.dry_run else None
    actuator = dry or real
    identity = ExperimentIdentity(exp.namespace, exp.name, (exp_doc.raw.get("metadata") or {}).get("uid"))
    journal: Journal | None = None
    resume = None
    if args.journal:
        if Path(args.journal).exists() and Path(args.journal).stat().st_size > 0:
            journal = Journal.open(args.journal, identity)
            if journal.resume.finished is not None:
                say(
                    f"journal {args.journal}: this run already finished ({journal.resume.finished.get('reason')})"
                )
                return 0
            resume = _resume_from(journal)
            if resume is not None:
                say(f"resuming {identity} after iteration {resume.completed} from {args.journal}")
        else:
            journal = Journal.create(args.journal, identity, option.label, None)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        say(f"received {signal.Signals(signum).name}: stopping after the current step")
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    fetcher = MetricFetcher(
        client,
        secrets=objects.read_secret,
        url_override=args.prometheus_url,
        rng=np.random.default_rng(0),
        timeout=timeout,
    )
    ports = Ports(
        WallClock(stop),
        actuator,
        LiveActionRunner(
            args.allow_exec,
            args.dry_run,
            say,
            env={"EXPERIMENT_NAME": exp.name, "EXPERIMENT_NAMESPACE": exp.namespace},
        ),
        fetcher,
        strict_patches=True,
        drift="adopt" if args.adopt_drift else "stop",
    )
    publish = None
    if args.from_cluster and not args.dry_run:
        # the Experiment lives in the cluster: keep its status current, as etc3 would
        def publish(status: Mapping[str, Any]) -> None:
            objects.write_experiment_status(exp.name, exp.namespace, status)

    hooks = JournalHooks(journal, say, prepared.plan.iterations, dry, prepared.refs, publish)
    try:
        say(
            f"simkit live: {identity} with strategy {option.label} every {prepared.plan.interval_seconds:g}s"
            + (" (dry run: no patch, no action)" if args.dry_run else "")
        )
        result = run_experiment(
            prepared,
            strategy,
            ports,
            rng,
            hooks=hooks,
            resume=resume,
            should_stop=stop.is_set,
        )
    except Exception as exc:  # whatever failed: restore if asked, record how the run ended, then report
        outcome = _restore(args, real, prepared, f"{type(exc).__name__}: {exc}")
        if journal is not None:
            journal.finished(reason=f"error: {exc}", outcome=outcome)
            journal.close()
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        client.close()
    if not stop.is_set():
        hooks.publish_status(result.status)
    return _finish(args, result, real, prepared, journal, stop.is_set())


def _finish(
    args: argparse.Namespace,
    result: RunResult,
    real: KubeWeightActuator,
    prepared: Prepared,
    journal: Journal | None,
    stopped: bool,
) -> int:
    from simkit.views.describe import describe

    if stopped:
        done = result.status.get("completedIterations", 0)
        say(
            f"stopped between steps after iteration {done}; weights {dict(result.final_weights or {})}"
            + (f"; run again with --journal {args.journal} to resume" if args.journal else "")
        )
        if journal is not None:
            journal.close()
        return 130
    outcome: dict[str, Any] = {
        "completed": result.completed,
        "failed": result.failed,
        "rolledBack": result.rolled_back,
        "winner": result.winner,
        "vrfp": result.vrfp,
        "weights": dict(result.final_weights or {}),
    }
    why = failure_reason(result)
    if result.failed:
        outcome.update(_restore(args, real, prepared, why))
    if journal is not None:
        journal.finished(reason=why if result.failed else result.message, outcome=outcome)
        journal.close()
    if args.out:
        from simkit.files import write_text_atomic as write_text
        from simkit.views.trace import status_yaml, trace_csv

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "status.yaml", status_yaml(result))
        write_text(out / "trace.csv", trace_csv(result))
    fmt = getattr(args, "output", "table")
    if fmt == "table":
        print(describe(result.experiment_object))
    else:  # the Experiment object with its final status, as `simkit run -o json`
        from simkit.formats import render

        sys.stdout.write(render(result.experiment_object, fmt))
    if result.failed:
        log.error(f"experiment failed: {why}")
        return 1
    return 0


def failure_reason(result: RunResult) -> str:
    """The Failed condition's ``Reason: message`` (status.message only says "Experiment failed")."""
    for c in result.experiment_object.get("status", {}).get("conditions") or []:
        if c.get("type") == "Failed" and c.get("status") == "True":
            return f"{c.get('reason')}: {c.get('message')}" if c.get("message") else str(c.get("reason"))
    return result.message


def _restore(
    args: argparse.Namespace, real: KubeWeightActuator, prepared: Prepared, why: str
) -> dict[str, Any]:
    """--rollback-on-error: every weight field written (baseline 100, others 0), whatever failed;
    what happened goes into the journal's finished record."""
    if not args.rollback_on_error or args.dry_run:
        return {}
    from simkit.control import weight_patches

    restore = {v: (100 if v == prepared.plan.baseline else 0) for v in prepared.plan.versions}
    say(f"--rollback-on-error ({why}): restoring {prepared.plan.baseline} to 100")
    try:
        real.apply(weight_patches(prepared.refs, restore, None))
    except SimkitError as exc:
        say(f"--rollback-on-error: the restore failed too: {exc}")
        return {"restoreFailed": str(exc)}
    return {"restored": restore}

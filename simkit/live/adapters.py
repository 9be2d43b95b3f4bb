"""The loop's ports in live mode: the wall clock, actions, dry runs, Prometheus over httpx, the journal.

Safety rules (issue: live mode) live here:

- :class:`WallClock` sleeps on an event, so SIGINT/SIGTERM wake it at once; the loop only checks
  for a stop *between* steps, never in the middle of a patch.
- :class:`LiveActionRunner` runs ``common/exec`` tasks only with ``--allow-exec``, without a
  shell (``[cmd, *args]``; a shell runs only when the action's ``cmd`` *is* a shell), with nothing
  substituted but the version's variables; otherwise it prints what it would run.
- :class:`DryRunActuator` reads the real weights but never sends a patch; it prints each one and
  keeps the weights it would have set, so the decisions that follow are the ones a real run takes.
- :class:`RetryTransport` retries Prometheus on connection errors and 502/503/504 with bounded
  exponential backoff; every request has a timeout.
- :class:`JournalHooks` writes every loop step to the fsync'd journal before it takes effect.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from simkit.actions import command_line
from simkit.control import LoopHooks
from simkit.errors import SimkitError
from simkit.live.journal import Journal
from simkit.ports import ActionOutcome, ObjectPatch, WeightActuator, WeightRef
from simkit.strategies.base import Decision

SHELLS = {"sh", "bash", "zsh", "dash", "ksh"}


class WallClock:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self.stop.wait(max(0.0, seconds))


class LiveActionRunner:
    def __init__(
        self,
        allow_exec: bool,
        dry_run: bool,
        say: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.allow_exec = allow_exec and not dry_run
        self.say = say
        self.env = dict(env or {})
        self.timeout = timeout

    def run(
        self, action: str, tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]
    ) -> ActionOutcome:
        commands = [command_line(t) for t in tasks]
        if not self.allow_exec:
            for cmd in commands:
                self.say(f"{action} action (not run; pass --allow-exec to run it): {cmd}")
            return ActionOutcome(
                action, tuple(tasks), ok=True, executed=False, details={"commands": commands}
            )
        outputs = []
        for task, cmd in zip(tasks, commands, strict=True):
            if task.get("task") != "common/exec":
                self.say(f"{action} action: task {task.get('task')} is not supported live; skipped")
                continue
            argv = [str(task.get("cmd", "")), *[str(a) for a in task.get("args", [])]]
            self.say(f"{action} action: running {cmd}")
            try:
                proc = subprocess.run(
                    argv,
                    shell=False,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    env={**os.environ, **self.env, "ACTION": action},
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return ActionOutcome(
                    action,
                    tuple(tasks),
                    ok=False,
                    executed=True,
                    message=f"{cmd}: {exc}",
                    details={"commands": commands},
                )
            outputs.append(
                {
                    "command": cmd,
                    "returncode": proc.returncode,
                    "stdout": proc.stdout[-4000:],
                    "stderr": proc.stderr[-4000:],
                }
            )
            if proc.returncode != 0:
                return ActionOutcome(
                    action,
                    tuple(tasks),
                    ok=False,
                    executed=True,
                    message=f"{cmd} exited with {proc.returncode}: {proc.stderr.strip()[-300:]}",
                    details={"commands": commands, "outputs": outputs},
                )
        return ActionOutcome(
            action, tuple(tasks), ok=True, executed=True, details={"commands": commands, "outputs": outputs}
        )


class DryRunActuator:
    """Reads through to the cluster, never writes; remembers the weights it would have set."""

    def __init__(self, inner: WeightActuator, say: Callable[[str], None]) -> None:
        self.inner = inner
        self.say = say
        self.virtual: dict[str, int] = {}
        self.sent: list[ObjectPatch] = []

    def read(self, refs: Sequence[WeightRef]) -> dict[str, int]:
        real = self.inner.read(refs)
        return {**real, **{v: w for v, w in self.virtual.items() if v in real}}

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        for patch in patches:
            self.sent.append(patch)
            ops = ", ".join(f"{op['path']}={op.get('value')}" for op in patch.ops)
            self.say(f"dry run: would patch {patch.obj}: {ops}")

    def remember(self, refs: Sequence[WeightRef], patches: Sequence[ObjectPatch]) -> None:
        by_pointer = {(r.obj, r.pointer): r.version for r in refs}
        for patch in patches:
            for op in patch.ops:
                version = by_pointer.get((patch.obj, str(op["path"])))
                if version is not None:
                    self.virtual[version] = int(op["value"])


class RetryTransport(httpx.BaseTransport):
    """Retries idempotent Prometheus queries on transport errors and 502/503/504."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        attempts: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError:
                if attempt == self.attempts:
                    raise
            else:
                if response.status_code not in (502, 503, 504) or attempt == self.attempts:
                    return response
                response.close()
            self._sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.inner.close()


def prometheus_client(
    timeout: float,
    ca_file: str | None = None,
    insecure: bool = False,
    token: str | None = None,
    attempts: int = 3,
) -> httpx.Client:
    verify: bool | str = False if insecure else (ca_file or True)
    inner = httpx.HTTPTransport(verify=verify)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=RetryTransport(inner, attempts), timeout=timeout, headers=headers)


def decision_from_journal(data: Mapping[str, Any]) -> Decision:
    """Rebuild a journaled Decision (the journal stores dataclasses as plain JSON)."""
    return Decision(
        weights={str(k): int(v) for k, v in data["weights"].items()}
        if data.get("weights") is not None
        else None,
        winner=data.get("winner"),
        assessments={str(k): tuple(bool(x) for x in v) for k, v in (data.get("assessments") or {}).items()},
        verdict=data.get("verdict", "continue"),
        reason=str(data.get("reason", "")),
        state=dict(data.get("state") or {}),
        analysis=dict(data.get("analysis") or {}),
        weights_on_rollback="keep" if data.get("weights_on_rollback") == "keep" else "apply",
    )


class JournalHooks(LoopHooks):
    """Every loop step goes to the journal (durably) before it takes effect; also prints progress."""

    def __init__(
        self,
        journal: Journal | None,
        say: Callable[[str], None],
        total: int,
        dry: DryRunActuator | None = None,
        refs: Sequence[WeightRef] = (),
        publish: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.journal = journal
        self.publish = publish
        self.say = say
        self.total = total
        self.dry = dry
        self.refs = list(refs)
        self.time = 0.0

    def iteration_started(
        self,
        n: int,
        time: float,
        metrics: Mapping[str, Mapping[str, float | None]],
        weights: Sequence[tuple[str, int]] | None,
    ) -> None:
        self.time = time
        if self.journal is not None:
            self.journal.iteration_started(
                n,
                time=time,
                metrics={m: dict(v) for m, v in metrics.items()},
                weights=dict(weights) if weights is not None else None,
            )

    def decided(self, n: int, decision: Decision) -> None:
        if self.journal is not None:
            self.journal.decision(n, decision)

    def patch_intent(self, n: int, patches: Sequence[ObjectPatch], weights: Mapping[str, int]) -> None:
        if self.journal is not None:
            self.journal.patch_intent(n, patches, weights)
        if self.dry is not None:
            self.dry.remember(self.refs, patches)

    def patch_applied(self, n: int, read_back: Mapping[str, int], resent: bool) -> None:
        if self.journal is not None:
            self.journal.patch_applied(n, read_back, resent=resent)

    def iteration_completed(
        self,
        n: int,
        state: Mapping[str, Any],
        start_time: float | None,
        vrfp: str,
        weights: Sequence[tuple[str, int]] | None,
        status: Mapping[str, Any],
    ) -> None:
        if self.journal is not None:
            self.journal.iteration_completed(
                n,
                state=state,
                start_time=start_time,
                vrfp=vrfp,
                weights=dict(weights) if weights is not None else None,
                extra={"status": dict(status), "lastUpdate": self.time},
            )
        shown = " ".join(f"{v}={w}" for v, w in (weights or ()))
        self.say(f"iteration {n:>2}/{self.total}  weights {shown}  recommended {vrfp}")
        self.publish_status(status)

    def metrics_unavailable(self, n: int, missing: Mapping[str, Mapping[str, str]]) -> None:
        """Loud, every iteration it happens: Iter8 counts a missing value as a failed objective."""
        for metric, why in missing.items():
            first = next(iter(why.values()))
            self.say(
                f"iteration {n}: metric {metric} unavailable for {', '.join(why)}: "
                f"{first if len(first) < 200 else first[:197] + '...'}"
            )
        if self.journal is not None:
            self.journal.note(n, "metrics_unavailable", missing={m: dict(w) for m, w in missing.items()})

    def drift(self, n: int, expected: Mapping[str, int], found: Mapping[str, int], adopted: bool) -> None:
        what = "adopting them (--adopt-drift)" if adopted else "stopping"
        self.say(
            f"before iteration {n}: weights drifted to {dict(found)} (simkit left {dict(expected)}); {what}"
        )
        if self.journal is not None:
            self.journal.note(n, "drift", expected=dict(expected), found=dict(found), adopted=adopted)

    def publish_status(self, status: Mapping[str, Any]) -> None:
        """Write the status to the cluster's Experiment; a failure is reported, never fatal:
        the status is a view, the journal and the weights are what matter."""
        if self.publish is None:
            return
        try:
            self.publish(status)
        except SimkitError as exc:
            self.say(f"warning: could not write the Experiment's status: {exc}")

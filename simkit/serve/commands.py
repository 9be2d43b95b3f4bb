"""``simkit serve SCENARIO --port P``: the simulated world of a scenario, in real time, over HTTP.

So that live mode can be rehearsed on one machine and the live tests have something to scrape
and route: a real Prometheus scrapes ``/prometheus``, clients call the Seldon data plane, and with
``--kube-url`` the traffic split follows the SeldonDeployment/VirtualService in a Kubernetes API
(which ``simkit live`` patches). See :mod:`simkit.serve.server` for the endpoints.

Prints ``listening on http://127.0.0.1:PORT`` (flushed) once it accepts connections, and writes
the port to ``--port-file`` (atomically) if given, so tests can start it with ``--port 0``.
SIGINT/SIGTERM stop the driver, the follower and the server; the exit code is then 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType

from simkit.errors import SpecError
from simkit.files import write_text_atomic
from simkit.serve.dataplane import DataPlane
from simkit.serve.realtime import RealtimeWorld
from simkit.serve.server import HttpServer, ServeApp
from simkit.serve.weights import DEFAULT_INTERVAL, KubeFollower, Log, followed_objects
from simkit.sim.engine import make_world
from simkit.spec.bundle import load_scenario

log = logging.getLogger("simkit.serve")


def _log(message: str) -> None:
    """One INFO record (RFC 3339 timestamp; -q hides it, see simkit.cli)."""
    log.info(f"simkit serve: {message}")


@dataclass
class Serving:
    """A running ``simkit serve``: stop it with :meth:`stop` (idempotent)."""

    rt: RealtimeWorld
    http: HttpServer
    follower: KubeFollower | None

    @property
    def url(self) -> str:
        return self.http.url

    def stop(self) -> None:
        self.http.stop()
        if self.follower is not None:
            self.follower.stop()
        self.rt.stop()


def start_serving(
    scenario: str,
    port: int = 0,
    speed: float = 1.0,
    seed: int | None = None,
    kube_url: str | None = None,
    no_load: bool = False,
    kube_interval: float = DEFAULT_INTERVAL,
    log: Log = _log,
    engine: str | None = None,
) -> Serving:
    """Load the scenario, start the driver, the optional kube follower and the HTTP server."""
    if not speed > 0:
        raise SpecError.from_cli("--speed", f"must be a positive number (got {speed})")
    if not 0 <= port <= 65535:
        raise SpecError.from_cli("--port", f"must be in 0..65535 (got {port})")
    if kube_url is not None and not kube_url.startswith(("http://", "https://")):
        raise SpecError.from_cli("--kube-url", f"must be an http:// or https:// URL (got {kube_url!r})")
    if not kube_interval > 0:
        raise SpecError.from_cli("--kube-interval", f"must be positive (got {kube_interval})")
    bundle = load_scenario(scenario)
    world, choice = make_world(bundle, seed, engine)
    log(choice.describe())
    if no_load:
        for gen in world.loads.values():
            gen.mute()
    rt = RealtimeWorld(world, speed=speed)
    app = ServeApp(rt, DataPlane(rt, world.seed))
    try:
        http = HttpServer(app, port)
    except OSError as exc:
        raise SpecError.from_cli(
            "--port", f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    rt.start()
    follower = None
    try:
        if kube_url is not None:
            follower = KubeFollower(rt, kube_url, followed_objects(bundle), interval=kube_interval, log=log)
            app.kube_state = follower.snapshot_state
            follower.start()
        http.start()
    except BaseException:
        Serving(rt, http, follower).stop()
        raise
    return Serving(rt, http, follower)


def cmd_serve(args: argparse.Namespace) -> int:
    serving = start_serving(
        args.scenario,
        port=args.port,
        speed=args.speed,
        seed=args.seed,
        kube_url=args.kube_url,
        no_load=bool(getattr(args, "no_load", False)),
        engine=getattr(args, "engine", None),
        kube_interval=float(getattr(args, "kube_interval", None) or DEFAULT_INTERVAL),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        port_file = getattr(args, "port_file", None)
        if port_file:
            write_text_atomic(port_file, f"{serving.http.port}\n")
        # with -o json|yaml stdout holds only the final summary
        banner = sys.stdout if getattr(args, "output", "table") == "table" else sys.stderr
        print(f"listening on {serving.url}", flush=True, file=banner)
        _log(
            f"scenario {serving.rt.world.bundle.name}, speed {serving.rt.speed:g}x, seed {serving.rt.world.seed}"
            + (", no load" if getattr(args, "no_load", False) else "")
            + (f", weights from {args.kube_url}" if args.kube_url else "")
        )
        while not stop.wait(0.2):
            if not serving.rt.running:
                log.error(f"simkit serve: the simulation stopped: {serving.rt.error!r}")
                code = 1
                break
    finally:
        serving.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _log("stopped")
    fmt = getattr(args, "output", "table")
    if fmt != "table":  # a long-running command: its report is the summary printed when it stops
        from simkit.formats import render

        sys.stdout.write(render(summary(serving, args, code), fmt))
    return code


def summary(serving: Serving, args: argparse.Namespace, code: int) -> dict[str, object]:
    """The ``-o json|yaml`` document ``simkit serve`` prints when it stops."""
    world = serving.rt.world
    return {
        "scenario": world.bundle.name,
        "url": serving.url,
        "speed": serving.rt.speed,
        "seed": world.seed,
        "simulatedSeconds": world.now - world.begin,
        "weightsFrom": args.kube_url,
        "stopped": "simulation error" if code else "signal",
        "error": repr(serving.rt.error) if code else None,
    }

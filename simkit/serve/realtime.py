"""Driving a simulated :class:`~simkit.sim.world.World` in real time, in one thread.

SimPy is single-threaded, and the world is touched by three kinds of callers in ``simkit serve``:
the driver (advancing time), HTTP handler threads (injecting predictions and feedback, reading
counters) and the Kubernetes follower (replacing objects). So exactly one thread, the driver,
runs SimPy; everybody else either reads under :attr:`RealtimeWorld.lock` (the exposition) or
posts a *job* into a thread-safe inbox and gets a :class:`concurrent.futures.Future` back. The
driver runs the jobs at the current sim time, then advances the world to
``t0_sim + speed * (monotonic() - t0_wall)`` in steps of ``step`` wall seconds.

Sim time 0 is the moment :meth:`RealtimeWorld.start` returns: the scenario's warm-up (load that
starts at negative times) is run as fast as possible before, so the counters are already warm
when the first scrape comes. Unix time ``unix0`` (wall clock at start) corresponds to sim time 0.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from simkit.sim.engine import AnyPredictor, AnyWorld

T = TypeVar("T")
Job = Callable[[AnyWorld], Any]

DEFAULT_STEP = 0.015  # wall seconds between two advances (10-20 ms keeps response delays small)
MAX_CHUNK = 1.0  # sim seconds advanced per lock hold, so readers never wait long when we lag


@dataclass(frozen=True)
class Completion:
    """A call injected over HTTP, as the simulation finished it."""

    predictor: str  # ns/sdep/predictor that served it
    code: str  # HTTP status the model answered (from the predictor's error model)
    arrived: float  # sim time of arrival
    finished: float  # sim time the executor answered


class RealtimeWorld:
    """A AnyWorld advanced by a driver thread in step with the wall clock (times ``speed``)."""

    def __init__(
        self,
        world: AnyWorld,
        speed: float = 1.0,
        step: float = DEFAULT_STEP,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.world = world
        self.speed = speed
        self.step = step
        self._clock = clock
        self._wall = wall
        self.lock = threading.RLock()
        self._inbox: queue.SimpleQueue[tuple[Job, Future[Any]]] = queue.SimpleQueue()
        self._pending: set[Future[Any]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0_sim = 0.0
        self.t0_wall = 0.0
        self.unix0 = 0.0
        self.error: BaseException | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> RealtimeWorld:
        """Fast-forward the warm-up to sim time 0, then start following the wall clock."""
        with self.lock:
            self.world.run_until(max(self.t0_sim, self.world.now))
            self.t0_sim = self.world.now
        self.t0_wall = self._clock()
        self.unix0 = self._wall()
        self._thread = threading.Thread(target=self._run, name="simkit-serve-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the driver; calls still waiting for the simulation are cancelled. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._cancel_all()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- time ---------------------------------------------------------------------------------
    def target(self) -> float:
        """The sim time the world should have reached now."""
        return self.t0_sim + self.speed * (self._clock() - self.t0_wall)

    def unix_of(self, sim_time: float) -> float:
        """Wall-clock Unix time at which the world reaches ``sim_time`` (given on-time driving)."""
        return self.unix0 + (sim_time - self.t0_sim) / self.speed

    # --- requests from other threads ----------------------------------------------------------
    def submit(self, job: Callable[[AnyWorld], T]) -> Future[T]:
        """Run ``job(world)`` in the driver thread at the current sim time; its result (or
        exception) lands in the returned future. After :meth:`stop` the future is cancelled."""
        fut: Future[T] = Future()
        if self._stop.is_set():
            fut.cancel()
            return fut
        self._inbox.put((job, fut))
        if self._stop.is_set():  # raced with stop(): make sure nobody waits forever
            self._cancel_inbox()
        return fut

    def start_call(self, sim: AnyPredictor, kind: str, reward: float | None = None) -> Future[Completion]:
        """Inject one call into ``sim`` (driver thread only, i.e. from inside a job). The future
        resolves when the simulated executor answers."""
        world = self.world
        arrived = world.now
        fut: Future[Completion] = Future()
        self._pending.add(fut)

        def done(code: str, finished: float) -> None:
            self._pending.discard(fut)
            if not fut.done():
                fut.set_result(Completion(sim.key, code, arrived, finished))

        # a world only ever hands out its own predictors (lookup, routers), so the pair matches
        world.start_call(sim, kind, reward, done)  # type: ignore[arg-type]
        return fut

    # --- the driver ---------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            try:
                job, fut = self._inbox.get_nowait()
            except queue.Empty:
                return
            if fut.done():
                continue
            try:
                result = job(self.world)
            except Exception as exc:  # the job's problem is the caller's, not the driver's
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                behind = False
                with self.lock:
                    self._drain()
                    target = self.target()
                    now = self.world.now
                    if target > now:
                        until = min(target, now + MAX_CHUNK)
                        behind = until < target
                        self.world.run_until(until)
                if not behind:
                    self._stop.wait(self.step)
        except BaseException as exc:  # a bug in the simulation: report it, do not hang callers
            self.error = exc
            self._stop.set()
        finally:
            self._cancel_all()

    def _cancel_all(self) -> None:
        """Cancel queued jobs and in-flight calls (driver thread, or after it has ended)."""
        self._cancel_inbox()
        for fut in list(self._pending):
            fut.cancel()
        self._pending.clear()

    def _cancel_inbox(self) -> None:
        while True:
            try:
                _, fut = self._inbox.get_nowait()
            except queue.Empty:
                break
            fut.cancel()

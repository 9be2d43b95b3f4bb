"""Load generators: fortio-like uniform spacing, Poisson, ramps, diurnal cycles, recorded traces.

Each generator is a SimPy process that fires calls at its target. Rates are read on every step,
so an event can change ``qps`` mid-run. Time-varying Poisson arrivals use thinning (draw at the
peak rate, keep each arrival with probability rate(t)/peak); uniform spacing steps by 1/rate(t).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simkit.errors import Location, SpecError
from simkit.spec.scenario import Load

Fire = Callable[[], None]


class LoadGenerator:
    """One ``spec.load`` entry running in the simulation."""

    def __init__(
        self, env: simpy.Environment, spec: Load, fire: Fire, rng: np.random.Generator, base_dir: Path
    ) -> None:
        self.env = env
        self.spec = spec
        self.fire = fire
        self.rng = rng
        self.fired = 0
        self._trace: list[float] | None = None
        if spec.pattern == "trace":
            self._trace = _read_trace(base_dir / str(spec.file), spec.file or "")

    def mute(self) -> None:
        """Keep ticking (events on this generator still apply) but send nothing."""
        self.fire = lambda: None

    def update(self, changes: dict[str, Any]) -> None:
        """Apply an event's ``set`` (already validated against the Load model)."""
        self.spec = self.spec.model_copy(update=changes)

    def rate(self, t: float) -> float:
        return load_rate(self.spec, t)

    def _peak(self) -> float:
        return peak_rate(self.spec)

    def process(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        start = self.spec.start
        if env.now < start:
            yield env.timeout(start - env.now)
        if self._trace is not None:
            for offset in self._trace:
                target = start + offset
                if self.spec.end is not None and target >= self.spec.end:
                    return
                if target > env.now:
                    yield env.timeout(target - env.now)
                self._emit()
            return
        while True:
            s = self.spec
            if s.end is not None and env.now >= s.end:
                return
            arrivals = s.arrivals or ("uniform" if s.pattern == "uniform" else "poisson")
            if arrivals == "uniform":
                r = self.rate(env.now)
                if r > 0:
                    self._emit()
                yield env.timeout(1.0 / r if r > 0 else 1.0)
                continue
            peak = self._peak()
            if peak <= 0:
                yield env.timeout(1.0)
                continue
            yield env.timeout(float(self.rng.exponential(1.0 / peak)))
            if s.end is not None and env.now >= s.end:
                return
            if s.pattern in ("uniform", "poisson") or self.rng.random() * peak < self.rate(env.now):
                self._emit()

    def _emit(self) -> None:
        self.fired += 1
        self.fire()


def load_rate(s: Load, t: float) -> float:
    """Calls/s of load ``s`` at sim time ``t`` (inside its active window): both engines' rule."""
    if s.pattern == "ramp":
        assert s.end is not None and s.qpsEnd is not None
        frac = min(max((t - s.start) / (s.end - s.start), 0.0), 1.0)
        return s.qps + (s.qpsEnd - s.qps) * frac
    if s.pattern == "diurnal":
        return max(0.0, s.qps * (1.0 + s.amplitude * math.sin(2 * math.pi * (t - s.phase) / s.period)))
    return s.qps


def peak_rate(s: Load) -> float:
    """The highest rate load ``s`` reaches (thinning draws at it; the engine choice plans for it)."""
    if s.pattern == "ramp":
        return max(s.qps, s.qpsEnd or 0.0)
    if s.pattern == "diurnal":
        return s.qps * (1.0 + s.amplitude)
    return s.qps


def _read_trace(path: Path, shown: str) -> list[float]:
    """Offsets in seconds, one per line (first CSV column); '#' comments allowed; sorted."""
    out: list[float] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpecError(Location(str(path)), None, f"cannot read trace {shown}: {exc}") from None
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].split(",", 1)[0].strip()
        if not text:
            continue
        try:
            out.append(float(text))
        except ValueError:
            raise SpecError(
                Location(str(path)), f"line {n}", f"not a timestamp: {text!r} (trace {shown})"
            ) from None
    return sorted(out)

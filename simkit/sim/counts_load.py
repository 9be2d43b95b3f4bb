"""Arrivals of one load generator over a time segment, counted rather than generated.

The counts engine asks each generator "how many calls in ``[a, b)``?" for segments that never
straddle a load's start or end, an event, or a scrape. Within such a segment the spec is fixed:

- Poisson arrivals (``pattern: poisson``, and ``ramp``/``diurnal`` unless ``arrivals: uniform``):
  ``Poisson(integral of rate(t) over [a, b))``, the rate integrated in closed form (linear for a
  ramp, a sine for diurnal), which is what the event engine's thinning produces in distribution.
- Uniform (fortio-like) spacing: the deterministic count. For a constant rate the emission times
  ``next, next + 1/r, ...`` are counted arithmetically, carrying ``next`` across segments exactly
  as the event engine's timeouts do; for a varying rate the integral's whole crossings.
- ``trace``: the recorded offsets in ``[a, b)``, by binary search.

An emission at an instant is recorded after a scrape at that same instant (the event engine
records a call when the model answers, a few milliseconds later), so segments are closed on the
left, open on the right, shifted by :data:`EPS`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simkit.sim.load import _read_trace, load_rate
from simkit.spec.scenario import Load

EPS = 1e-6  # s: below any latency, above the float error of summed 1/qps steps


class CountedLoad:
    """One ``spec.load`` entry in the counts engine."""

    def __init__(self, spec: Load, base_dir: Path) -> None:
        self.spec = spec
        self.fired = 0
        self._trace: npt.NDArray[np.float64] | None = None
        if spec.pattern == "trace":
            self._trace = np.asarray(
                _read_trace(base_dir / str(spec.file), spec.file or ""), dtype=np.float64
            )
        self.muted = False
        self._next: float | None = None  # uniform spacing: the next emission time
        self._phase = 0.0  # uniform spacing at a varying rate: fractional calls carried over

    def mute(self) -> None:
        """Keep counting (events on this generator still apply) but send nothing."""
        self.muted = True

    def update(self, changes: dict[str, Any]) -> None:
        self.spec = self.spec.model_copy(update=changes)

    def boundaries(self) -> list[float]:
        """Times at which this generator's behaviour changes (segments split there)."""
        out = [self.spec.start]
        if self.spec.end is not None:
            out.append(self.spec.end)
        return out

    def rate(self, t: float) -> float:
        return load_rate(self.spec, t)

    def integral(self, a: float, b: float) -> float:
        """Expected calls in ``[a, b)`` (inside the active window)."""
        s = self.spec
        if s.pattern == "ramp":
            return (b - a) * (self.rate(a) + self.rate(b)) / 2.0
        if s.pattern == "diurnal":
            w = 2 * math.pi / s.period
            return s.qps * (
                (b - a) - s.amplitude / w * (math.cos(w * (b - s.phase)) - math.cos(w * (a - s.phase)))
            )
        return s.qps * (b - a)

    def _active(self, a: float, b: float) -> tuple[float, float] | None:
        lo = max(a, self.spec.start)
        hi = b if self.spec.end is None else min(b, self.spec.end)
        return (lo, hi) if hi > lo else None

    def mean_rate(self, a: float, b: float) -> float:
        """Average calls/s over ``[a, b)``: what the queueing model sees."""
        window = self._active(a, b)
        return self.integral(*window) / (b - a) if window and b > a else 0.0

    def arrivals(self, a: float, b: float, rng: np.random.Generator) -> int:
        n = self._count(a, b, rng)
        if self.muted:
            return 0
        self.fired += n
        return n

    def _count(self, a: float, b: float, rng: np.random.Generator) -> int:
        s = self.spec
        if self._trace is not None:
            times = s.start + self._trace
            if s.end is not None:
                times = times[times < s.end]
            lo, hi = np.searchsorted(times, [a - EPS, b - EPS], side="left")
            return int(hi - lo)
        window = self._active(a - EPS, b - EPS)
        arrivals = s.arrivals or ("uniform" if s.pattern == "uniform" else "poisson")
        if arrivals == "poisson":
            if window is None:
                return 0
            mean = self.integral(*window)
            return int(rng.poisson(mean)) if mean > 0 else 0
        if window is None:
            return 0
        lo, hi = window
        if s.pattern in ("uniform", "poisson"):
            return self._uniform_constant(lo, hi)
        # a varying rate at uniform spacing: whole crossings of the integrated rate
        total = self._phase + self.integral(lo, hi)
        n = int(math.floor(total + 1e-9)) if self._next is not None else int(math.ceil(total - 1e-9))
        self._phase = total - n
        self._next = hi
        return max(n, 0)

    def _uniform_constant(self, lo: float, hi: float) -> int:
        r = self.spec.qps
        nxt = lo if self._next is None else max(self._next, lo)
        if r <= 0:
            # the event engine idles in 1-s steps and picks up a new rate at the next step
            while nxt < hi:
                nxt += 1.0
            self._next = nxt
            return 0
        if nxt >= hi:
            self._next = nxt
            return 0
        n = int(math.ceil((hi - nxt) * r - 1e-9))
        self._next = nxt + n / r
        return n

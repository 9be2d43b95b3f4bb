"""Mock metric values (``spec.mock``), as iter8-analytics v2.1.6 ``mocked_value`` computes them.

Mocks let tutorials and tests run without a metrics backend. With ``e`` = elapsed whole seconds,
at least 1:

* Counter: ``e * level`` (the level is a rate per second);
* Gauge: ``2 * level * Beta(e, e)``, a random draw with mean ``level`` whose spread shrinks as
  the experiment runs (Beta(e, e) concentrates around 1/2).

Iter8 draws from numpy's global, unseeded generator; simkit draws from an injected
``numpy.random.Generator`` so that a seed reproduces a run byte for byte.
"""

from __future__ import annotations

import math

import numpy as np

from simkit.spec.metric import MetricSpec


def mock_elapsed(elapsed_seconds: float) -> int:
    """Iter8's ``get_elapsed_time_seconds``: whole seconds, at least one."""
    if math.isnan(elapsed_seconds):
        return 1
    return max(1, int(elapsed_seconds))


def mock_value(
    spec: MetricSpec, version: str, elapsed_seconds: float, rng: np.random.Generator
) -> tuple[float | None, str | None]:
    """``(value, None)`` or ``(None, reason)`` when the mock has no level for ``version``."""
    level = next((entry.level for entry in spec.mock or () if entry.name == version), None)
    if level is None:
        known = ", ".join(entry.name for entry in spec.mock or ()) or "none"
        return None, f"the mock has no level for version {version} (levels for: {known})"
    elapsed = mock_elapsed(elapsed_seconds)
    if spec.type == "Counter":
        return float(elapsed * level), None
    draw = float(rng.beta(elapsed, elapsed))
    return float(2.0 * level * draw), None

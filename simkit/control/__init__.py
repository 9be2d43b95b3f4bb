"""The experiment loop, written once: etc3's semantics over ports (iter8-v2.md §2).

``run_experiment`` drives one Experiment: the first iteration at once (startTime), then one every
``intervalSeconds``; each iteration fetches every metric for every version (``elapsedTime`` =
max(1, ⌊now - startTime⌋)), asks the strategy for a decision, checks the rollback verdict
*before* touching weights, patches the ``weightObjRef`` fields (one JSON patch per object; not
for FixedSplit or Conformance), reads the weights back, and updates
``versionRecommendedForPromotion``. After the last iteration (or a promote verdict) it runs the
``finish`` action; a rollback runs ``finish`` too (etc3's rollback handler is ``finish``); a
failure runs nothing. It never imports simpy, httpx or kubernetes: the world is behind
:mod:`simkit.ports` and the metric fetcher's ``httpx.Client``.

Deliberate differences from etc3 (documented in the README): target acquisition and the
reconcile/requeue machinery are not modelled (one experiment owns its target; iterations are
exactly ``intervalSeconds`` apart); on a rollback the decision says what happens to the weights
(``Decision.weights_on_rollback``): Flagger and Argo move all traffic to the baseline, Iter8
leaves that to the finish action.
"""

from simkit.control.loop import Loop, run_experiment
from simkit.control.wiring import (
    PROVENANCE,
    LoopFailure,
    LoopHooks,
    Ports,
    Prepared,
    Resume,
    read_weights,
    weight_patches,
)

__all__ = [
    "PROVENANCE",
    "Loop",
    "LoopFailure",
    "LoopHooks",
    "Ports",
    "Prepared",
    "Resume",
    "read_weights",
    "run_experiment",
    "weight_patches",
]

"""From manifests to a runnable experiment: parse, resolve metrics, build the strategy's plan.

Shared by sim (``simkit run``), replay and live: everything that can be wrong with the input is
found here, before any traffic moves, and reported as one SpecError line naming file, document
and field (an unknown testingPattern, a missing reward, a bad fieldPath, an unknown metric).
"""

from __future__ import annotations

from collections.abc import Sequence

from simkit.control import Prepared
from simkit.metrics.resolve import resolve_metric_refs
from simkit.spec.documents import Document
from simkit.spec.experiment import load_experiment, metric_references, with_defaults
from simkit.spec.metric import load_metrics
from simkit.strategies.planning import to_plan


def prepare(experiment_doc: Document, documents: Sequence[Document]) -> Prepared:
    """The Experiment in ``experiment_doc`` with its Metrics found among ``documents``."""
    exp = load_experiment(experiment_doc)
    metrics = load_metrics(documents)
    resolved = resolve_metric_refs(metric_references(exp), exp.namespace, metrics, exp.where)
    # the loop always sends etc3's defaults, so weight limits always apply (iter8-v2.md §8.1)
    plan = to_plan(exp, weights_given=True)
    return Prepared(with_defaults(exp), experiment_doc.raw, tuple(resolved), plan)

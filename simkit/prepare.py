"""From manifests to a runnable experiment: parse, resolve metrics, build the strategy's plan.

Shared by sim (``simkit run``), replay and live: everything that can be wrong with the input is
found here, before any traffic moves, and reported as one SpecError line naming file, document
and field (an unknown testingPattern, a missing reward, a bad fieldPath, an unknown metric).
"""

from __future__ import annotations

from collections.abc import Sequence

from simkit.actions import template_inputs, undefined_fields
from simkit.control import Prepared
from simkit.metrics.resolve import resolve_metric_refs
from simkit.spec.documents import Document
from simkit.spec.experiment import (
    Experiment,
    load_experiment,
    metric_references,
    version_variables,
    versions,
    with_defaults,
)
from simkit.spec.metric import load_metrics
from simkit.strategies.planning import to_plan


def prepare(experiment_doc: Document, documents: Sequence[Document]) -> Prepared:
    """The Experiment in ``experiment_doc`` with its Metrics found among ``documents``."""
    exp = load_experiment(experiment_doc)
    metrics = load_metrics(documents)
    resolved = resolve_metric_refs(metric_references(exp), exp.namespace, metrics, exp.where)
    # the loop always sends etc3's defaults, so weight limits always apply (iter8-v2.md §8.1)
    plan = to_plan(exp, weights_given=True)
    check_action_variables(exp)
    return Prepared(with_defaults(exp), experiment_doc.raw, tuple(resolved), plan)


def check_action_variables(exp: Experiment) -> None:
    """Every ``{{ .key }}`` of every action is a variable of every version (an action renders with
    the variables of whichever version is recommended, so any of them may be the one)."""
    names = [v.name for v in versions(exp)]
    for action, tasks in exp.spec.strategy.actions.items():
        for i, task in enumerate(tasks):
            raw = task.model_dump(mode="json", by_alias=True, exclude_none=True)
            for field, text in template_inputs(raw):
                for name in names:
                    variables = version_variables(exp, name)
                    missing = undefined_fields(text, variables)
                    if missing:
                        raise exp.error(
                            f"spec.strategy.actions.{action}[{i}].{field}",
                            f"{{{{ .{missing[0]} }}}} is not a variable of version {name} (it has "
                            f"{', '.join(sorted(variables))}); Iter8 would run the command with "
                            "'<no value>' in its place",
                        )

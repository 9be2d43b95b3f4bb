"""Edits the offline-evaluation tests apply to a copy of a scenario folder (backfill and serve
alike, so that both paths record the same worlds)."""

from __future__ import annotations

from pathlib import Path


def rollback_at_high_traffic(folder: Path, error_limit: int = 300) -> None:
    """iris-rollback at 400 qps instead of 5 (32 workers per predictor: 4.8 calls in flight would
    queue at the default 4), its error-count limit 300 instead of 3. The candidate still rolls
    back on its 20 % errors, but after serving more than a thousand predictions over three scrape
    intervals, instead of 2 to 8 predictions (5 qps) or a few hundred over two (limit 3). Over two
    scrapes, the recorded PromQL error rate of the candidate (whose series hold two samples) has a
    spread of its own of 3.5 % (measured on a calibrated world, 200 seeds: increase() extrapolates
    from the first sample toward zero or not, by chance), so 5 % would not be a statement about
    calibration. Its rollback promotes the baseline (the candidate's ``promote`` variable names
    promote-v1.yaml too), as a rollback is meant to: the candidate's traffic stops there and its
    counters go flat (Iter8 v2's quirk would promote the previous winner, the candidate). Its
    ``expect`` (the 5-qps run's figures) is dropped."""
    text = (folder / "scenario.yaml").read_text()
    text = text.replace("qps: 5, start", "qps: 400, start")
    text = text.replace("      latency: {distribution", "      concurrency: 32\n      latency: {distribution")
    (folder / "scenario.yaml").write_text(text.split("  expect:")[0])
    experiment = (folder / "experiment.yaml").read_text()
    assert "upperLimit: 3\n" in experiment
    experiment = experiment.replace("upperLimit: 3\n", f"upperLimit: {error_limit}\n")
    assert "{name: promote, value: promote-v2.yaml}" in experiment
    experiment = experiment.replace(
        "{name: promote, value: promote-v2.yaml}", "{name: promote, value: promote-v1.yaml}"
    )
    (folder / "experiment.yaml").write_text(experiment)

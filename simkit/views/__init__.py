"""Views of a run's records, below every command that shows one: the iter8ctl-style description
(:mod:`~simkit.views.describe`), status.yaml and trace.csv (:mod:`~simkit.views.trace`) and
rollout.png (:mod:`~simkit.views.plots`).

They read :class:`~simkit.records.RunResult` or a raw Experiment object and import nothing above
``records``, so ``simkit run`` (report), ``simkit replay`` and ``simkit live`` all render a run the
same way without a commands module importing a layer above its own.
"""

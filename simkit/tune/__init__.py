"""``simkit tune``: search a strategy's parameters and report the Pareto front (issue 15)."""

"""simkit: test a progressive-rollout policy on a simulated Seldon deployment, then run it live."""

__version__ = "0.1.0"

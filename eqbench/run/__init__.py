"""Running evaluations: scoring, the results store, the runner."""

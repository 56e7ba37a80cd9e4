"""robustness.perturbation (placeholder module body replaced below)."""

"""Where a run's work executes: this process, or a Ray cluster."""

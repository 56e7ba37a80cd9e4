"""Builtin reporters: each writes one output file of a run (registered like any plugin)."""

"""Monitoring mode: the suite that gated a release watches it in production.

``llmguard monitor`` splits a production log into time windows and runs the suite on
each (:mod:`.run`); metrics go to a history database (:mod:`.store`); gates may be
learnt from that history (:mod:`.bands`) with Prometheus-style persistence
(:mod:`.persistence`). This package imports only pydantic at import time: pandas,
SQLAlchemy, ruptures and scikit-learn load when a command needs them.
"""

"""Statistics that merge: computed per partition of a dataset, combined without the rows.

See :mod:`llmguard_ops.stats.mergeable`; plugins import these names from ``llmguard_ops``.
"""

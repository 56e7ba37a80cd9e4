"""First-party check plugins of llmguard-ops.

Each family is its own module and entry point in the ``llmguard`` group, registered
through the same hooks a third-party plugin uses; the host never imports this package.
"""

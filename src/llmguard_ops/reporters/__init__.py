"""The host's builtin reporters: each a plugin module using ``llmguard_register_reporters``.

``report.json`` is written by the runner itself; these modules add the files CI systems
and reviewers read (``junit.xml``, ``summary.md``). They are listed in
:data:`llmguard_ops.plugins.BUILTIN_PLUGINS` and can be blocked like any plugin
(``-p no:llmguard_ops.reporters.junit``).
"""

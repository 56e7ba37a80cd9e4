"""Signed, checkable evidence of a run.

* :mod:`.dsse` — DSSE v1 envelopes (PAE, ed25519 signing, strict verification);
* :mod:`.statement` — the in-toto Statement v1 a run attests;
* :mod:`.keys` — key generation and loading (``llmguard keygen``);
* :mod:`.verify` — ``llmguard verify``;
* :mod:`.audit` — the hash-chained audit log with a signed head (``llmguard audit verify``);
* :mod:`.lock` — suite locks (``llmguard lock``, ``run --lock``);
* :mod:`.waivers` — waivers from the suite and ``--waiver`` files;
* :mod:`.options`, :mod:`.record` — the evidence step of ``run``.

Submodules are imported where needed, so ``import llmguard_ops`` stays light.
"""

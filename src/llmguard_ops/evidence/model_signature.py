"""OpenSSF model signatures (``model_signing``) as a precondition of loading a model.

A suite model may name its signature::

    models:
      candidate:
        loader: sklearn
        path: model.joblib
        signature: {path: model.sig, public_key: signer.pub}   # or certificate_chain: [...]

The signature is verified over the model's file or folder *before* the loader runs (so
before any pickled code executes and before any check runs); a model changed after
signing, a wrong key or an unreadable bundle is an error of the suite's inputs (exit 2)
naming the model. ``policy.require_model_signature: true`` refuses a model that names
no signature. Key-based signatures use EC keys (P-256/384/521): ``model_signing`` does
not take ed25519. The attestation's subject digest of a folder remains the manifest
digest of :mod:`llmguard_ops.artifacts`: its per-file sha256 values equal those
``model_signing`` lists, but the two root digests are computed differently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..artifacts import resolve_path

if TYPE_CHECKING:
    from ..loading import LoadedSuite
    from ..suite import ModelSpec


def check(loaded: LoadedSuite, name: str, spec: ModelSpec) -> bool:
    """Verify the signature of model ``name``; returns whether one was verified."""
    signature = spec.signature
    if signature is None:
        if loaded.suite.policy.require_model_signature:
            raise loaded.source.error(
                ("models", name),
                "policy.require_model_signature: this model names no signature (models.NAME.signature)",
                prefer_key=True,
            )
        return False
    where = ("models", name, "signature")
    if not spec.path:
        raise loaded.source.error(where, "a signature needs the model's 'path'")
    try:
        from model_signing import verifying
    except ImportError as exc:
        raise loaded.source.error(where, f"checking model signatures needs 'llmguard-ops[evidence]' ({exc})") from None
    base = loaded.base_dir
    model_path = resolve_path(base, spec.path)
    bundle = resolve_path(base, signature.path)
    if not bundle.is_file():
        raise loaded.source.error((*where, "path"), f"signature file not found: {bundle}")
    config = verifying.Config()  # type: ignore[no-untyped-call]  # model-signing leaves __init__ unannotated
    if signature.public_key is not None:
        config = config.use_elliptic_key_verifier(public_key=resolve_path(base, signature.public_key))
    else:
        config = config.use_certificate_verifier(
            certificate_chain=[resolve_path(base, c) for c in signature.certificate_chain]
        )
    try:
        config.verify(model_path, bundle)
    except Exception as exc:  # the library raises ValueError and others; every one refuses
        raise loaded.source.error(
            where, f"the model's signature does not verify: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    return True

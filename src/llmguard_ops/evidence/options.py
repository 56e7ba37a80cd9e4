"""What the evidence step of a run does: signer, audit log, lock and waivers.

:func:`prepare` turns the user's choices (a key path, a lock file, waiver files, a log
path) into :class:`EvidenceOptions` *before* any check runs, so that a bad key, a lock
the suite no longer matches or a malformed waiver stops the run at once (exit 2).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LlmguardError
from .keys import (
    KEY_ENV,
    SigningKey,
    development_key,
    key_from_environment,
    load_private,
    load_public,
)
from .waivers import WaiverEntry, load_file, suite_entries

if TYPE_CHECKING:
    from ..loading import LoadedSuite


@dataclass
class EvidenceOptions:
    """The evidence settings of one run.

    ``signer`` signs the attestation (and the audit-log head, unless it is a
    development key); ``audit_log`` gets one entry per run when set; ``lock`` holds the
    facts of a lock already checked against the suite; ``waivers`` are the suite's and
    the files' waivers.
    """

    signer: SigningKey | None = None
    audit_log: Path | None = None
    waivers: list[WaiverEntry] | None = None
    lock: dict[str, Any] | None = None
    today: dt.date | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """Signed with a real (not throw-away) key."""
        return self.signer is not None and not self.signer.development

    def signing_info(self) -> dict[str, Any] | None:
        if self.signer is None:
            return None
        info: dict[str, Any] = {
            "algorithm": "ed25519",
            "keyid": self.signer.keyid,
            "development_key": self.signer.development,
        }
        if self.signer.development:
            info["note"] = (
                "throw-away development key made for this run: the signature shows the files "
                "were not changed since, not who produced them"
            )
        return info


def prepare(
    loaded: LoadedSuite,
    *,
    key: str | Path | None = None,
    use_environment_key: bool = True,
    dev_key: bool = False,
    lock: str | Path | None = None,
    lock_key: str | Path | None = None,
    waivers: Iterable[str | Path] = (),
    audit_log: str | Path | None = None,
    registry: Any = None,
) -> EvidenceOptions:
    """Load the key, check the lock, read the waivers; raise a one-line error on any problem.

    ``registry`` reads the datasets a lock pins (default: the installed plugins').
    """
    from .keys import private_key_warnings
    from .lock import check as check_lock

    warnings: list[str] = []
    signer: SigningKey | None = None
    if key is not None:
        if dev_key:
            raise LlmguardError("--key and --dev-key exclude each other")
        signer = load_private(Path(key))
        warnings += private_key_warnings(Path(key))
    elif dev_key:
        signer = development_key()
    elif use_environment_key:
        signer = key_from_environment()
        if signer is not None:
            warnings += private_key_warnings(Path(os.environ[KEY_ENV]).expanduser())
    entries = suite_entries(loaded)
    ids = [c.id for c in loaded.suite.checks]
    for path in waivers:
        entries += load_file(Path(path), ids)
    lock_facts = None
    if lock is not None:
        if lock_key is not None:
            public, keyid = load_public(Path(lock_key))
        elif signer is not None and not signer.development:
            public, keyid = signer.public, signer.keyid
        else:
            raise LlmguardError(
                "--lock needs a trusted key to check the lock's signature: "
                "pass --lock-key PUB (or sign the run with --key)"
            )
        lock_facts = check_lock(loaded, Path(lock), public, keyid, registry)
    if audit_log is not None:  # refuse a broken log before any check runs (exit 2)
        from .audit import check_appendable_now

        check_appendable_now(Path(audit_log), signer)
    return EvidenceOptions(
        signer=signer,
        audit_log=Path(audit_log) if audit_log is not None else None,
        waivers=entries,
        lock=lock_facts,
        warnings=warnings,
    )


def evidence_options(args: Any, loaded: LoadedSuite, registry: Any = None) -> EvidenceOptions:
    """:func:`prepare` from ``llmguard run``'s options."""
    return prepare(
        loaded,
        key=args.key,
        dev_key=args.dev_key,
        lock=args.lock,
        lock_key=args.lock_key,
        waivers=args.waiver or [],
        audit_log=None if args.no_audit_log else args.audit_log,
        registry=registry,
    )


def evidence_lines(outcome: Any) -> list[str]:
    """What ``run`` prints about signing and the audit log: plain about an unsigned run."""
    rec = outcome.evidence
    report = outcome.report
    lines: list[str] = []
    if rec is None:
        return ["note: the report is unsigned (nothing written)"]
    if report.signed:
        lines.append(f"signed: {rec.attestation} (ed25519, keyid {rec.keyid})")
    elif rec.keyid is not None:
        lines.append(
            f"signed with a THROW-AWAY DEVELOPMENT KEY: {rec.attestation} shows integrity only, "
            f"not who produced it (public half: {rec.attestation.parent / 'development-key.pub'})"
        )
    else:
        lines.append(
            f"UNSIGNED: {rec.attestation} carries no signature and will not verify "
            "(pass --key PATH or set LLMGUARD_SIGNING_KEY)"
        )
    if rec.audit_entry is not None:
        lines.append(f"audit: entry {rec.audit_entry['seq']} appended to {rec.audit_log}")
    return lines

"""Signed human approvals of a REVIEW, the trust file, and the approval policy check.

``llmguard approve ATTESTATION --key KEY --as NAME --role ROLE --reason TEXT`` writes a
DSSE envelope (ed25519, :mod:`.dsse`) over an in-toto Statement v1 whose subjects are
the run's attestation file (its sha256) and the candidate model, with the predicate
``APPROVAL_TYPE``: approver, role, reason, decision (approve / reject), timestamp and
expiry.

The **trust file** (YAML) is the one place that says whose signature counts::

    keys:
      - name: Ada Lovelace
        public_key: keys/ada.pub      # a path relative to the trust file, or inline PEM
        roles: [ml-lead]
        not_before: 2026-01-01T00:00:00Z
        not_after: 2026-12-31T23:59:59Z

A rotated key stays in the file with its ``not_after``: approvals signed while it was
valid keep counting. Whether a REVIEW is approved is decided by the suite's
``policy.approvals`` as recorded in the run's attestation (so a changed suite cannot
lower the bar for a past run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LlmguardError
from ..report import atomic_write, now_rfc3339
from . import dsse
from .dsse import VerificationError
from .statement import STATEMENT_TYPE, canonical_bytes, parse_statement

APPROVAL_TYPE = "https://llmguard.dev/approval/v1"
#: an approval signed this far in the future of the verifier's clock is not counted
CLOCK_SKEW = dt.timedelta(minutes=5)


class TrustFileError(LlmguardError):
    """A trust file that cannot be read or is malformed (exit 2)."""


def parse_time(value: Any, what: str) -> dt.datetime:
    """RFC 3339 / ISO 8601 date or date-time → aware UTC datetime (a date means 00:00 UTC)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise LlmguardError(f"{what}: {value!r} is not a date or RFC 3339 time") from None
    else:
        raise LlmguardError(f"{what}: {value!r} is not a date or RFC 3339 time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the trust file ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    name: str
    roles: tuple[str, ...]
    key: Ed25519PublicKey
    keyid: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None

    def valid_at(self, moment: dt.datetime) -> bool:
        if self.not_before is not None and moment < self.not_before:
            return False
        return not (self.not_after is not None and moment > self.not_after)

    def period(self) -> str:
        start = rfc3339(self.not_before) if self.not_before else "-"
        end = rfc3339(self.not_after) if self.not_after else "-"
        return f"{start} .. {end}"


@dataclass
class TrustFile:
    path: Path
    keys: list[TrustedKey]

    def by_keyid(self, keyid: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.keyid == keyid), None)


_ENTRY_FIELDS = {"name", "public_key", "roles", "not_before", "not_after"}


def load_trust(path: Path) -> TrustFile:
    """Read and check a trust file; every error names the file and the key."""
    import yaml
    from cryptography.hazmat.primitives import serialization

    from .keys import keyid_of

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrustFileError(f"{path}: trust file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TrustFileError(f"{path}: cannot read the trust file: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"keys"} or not isinstance(data["keys"], list):
        raise TrustFileError(f"{path}: a trust file is a mapping with one key, 'keys' (a list)")
    keys: list[TrustedKey] = []
    for i, entry in enumerate(data["keys"]):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict):
            raise TrustFileError(f"{where}: not a mapping")
        unknown = sorted(set(map(str, entry)) - _ENTRY_FIELDS)
        if unknown:
            raise TrustFileError(f"{where}: unknown key(s) {', '.join(unknown)}")
        for required in ("name", "public_key", "roles"):
            if required not in entry:
                raise TrustFileError(f"{where}: '{required}' is missing")
        name, roles, pem = entry["name"], entry["roles"], entry["public_key"]
        if not isinstance(name, str) or not name.strip():
            raise TrustFileError(f"{where}.name: not a non-empty string")
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise TrustFileError(f"{where}.roles: not a list of role names")
        if not isinstance(pem, str):
            raise TrustFileError(f"{where}.public_key: not a path or PEM text")
        if "-----BEGIN" in pem:
            raw = pem.encode()
        else:
            key_path = (path.parent / pem).resolve()
            try:
                raw = key_path.read_bytes()
            except OSError:
                raise TrustFileError(f"{where}.public_key: cannot read {key_path}") from None
        if b"PRIVATE KEY" in raw:
            raise TrustFileError(f"{where}.public_key: a private key; list public keys only")
        try:
            key = serialization.load_pem_public_key(raw)
        except ValueError:
            raise TrustFileError(f"{where}.public_key: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise TrustFileError(f"{where}.public_key: not an ed25519 public key")
        bounds = []
        for bound in ("not_before", "not_after"):
            value = entry.get(bound)
            try:
                bounds.append(None if value is None else parse_time(value, f"{where}.{bound}"))
            except LlmguardError as exc:
                raise TrustFileError(str(exc)) from None
        if bounds[0] and bounds[1] and bounds[0] > bounds[1]:
            raise TrustFileError(f"{where}: not_before is after not_after")
        keyid = keyid_of(key)
        if any(k.keyid == keyid for k in keys):
            raise TrustFileError(f"{where}.public_key: this key is listed twice")
        keys.append(TrustedKey(name.strip(), tuple(roles), key, keyid, bounds[0], bounds[1]))
    return TrustFile(path=path, keys=keys)


# --- writing an approval ----------------------------------------------------------------


def _predicate(statement: dict[str, Any]) -> dict[str, Any]:
    value = statement.get("predicate")
    return value if isinstance(value, dict) else {}


def attestation_statement(data: bytes) -> dict[str, Any]:
    """The Statement inside an attestation (the reviewer's copy; ``verify`` checks it)."""
    envelope = dsse.parse_envelope(data)
    return parse_statement(dsse.b64decode_strict(envelope["payload"], "payload"))


def build_approval(
    attestation: bytes,
    *,
    name: str,
    role: str,
    reason: str,
    decision: str,
    keyid: str,
    now: dt.datetime,
    expires: dt.datetime | None,
) -> dict[str, Any]:
    """The approval Statement for the attestation whose exact bytes are ``attestation``."""
    statement = attestation_statement(attestation)
    predicate = _predicate(statement)
    subjects: list[dict[str, Any]] = [
        {"name": "attestation", "digest": {"sha256": hashlib.sha256(attestation).hexdigest()}}
    ]
    subjects += [
        {"name": s.get("name"), "digest": {"sha256": s["digest"]["sha256"]}}
        for s in statement["subject"]
        if s.get("name") == "candidate" and "sha256" in s["digest"]
    ]
    suite = predicate.get("suite")
    suite = suite if isinstance(suite, dict) else {}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": APPROVAL_TYPE,
        "predicate": {
            "decision": decision,
            "approver": {"name": name, "role": role, "keyid": keyid},
            "reason": reason,
            "timestamp": rfc3339(now),
            "expires": rfc3339(expires) if expires else None,
            "run": {
                "run_id": predicate.get("run_id"),
                "decision": (predicate.get("decision") or {}).get("decision"),
                "suite": {"name": suite.get("name"), "sha256": suite.get("sha256")},
            },
        },
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "approver"


def cmd_approve(args: argparse.Namespace) -> int:
    """``llmguard approve ATTESTATION --key KEY --as NAME --role ROLE --reason TEXT``."""
    from . import audit
    from .keys import load_private, private_key_warnings

    path = Path(args.attestation)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LlmguardError(f"{path}: cannot read the attestation: {exc.strerror}") from None
    try:
        attestation_statement(data)
    except VerificationError as exc:
        raise LlmguardError(f"{path}: not an attestation: {exc}") from None
    for text, what in ((args.name, "--as"), (args.role, "--role"), (args.reason, "--reason")):
        if not text or not text.strip():
            raise LlmguardError(f"{what} must not be empty")
    signer = load_private(Path(args.key))
    now = dt.datetime.now(dt.UTC)
    expires = parse_time(args.expires, "--expires") if args.expires else None
    if expires is not None and expires <= now:
        raise LlmguardError(f"--expires {args.expires} is in the past")
    decision = "reject" if args.reject else "approve"
    statement = build_approval(
        data,
        name=args.name.strip(),
        role=args.role.strip(),
        reason=args.reason.strip(),
        decision=decision,
        keyid=signer.keyid,
        now=now,
        expires=expires,
    )
    envelope = dsse.serialize(dsse.sign(canonical_bytes(statement), signer.private, signer.keyid))
    audit_key = load_private(Path(args.audit_key)) if args.audit_key else signer
    if args.audit_log:  # refuse before writing anything, e.g. a head signed by another key
        audit.check_appendable(Path(args.audit_log), audit_key)
    out_dir = Path(args.out) if args.out else path.parent / "approvals"
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    short = hashlib.sha256(envelope).hexdigest()[:12]  # two approvals in one second differ
    target = out_dir / f"{decision}-{_slug(args.name)}-{stamp}-{short}.dsse.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(target, envelope)
    for warning in private_key_warnings(Path(args.key)):
        print(f"warning: {warning}")
    print(f"{decision}d: {target}")
    print(f"  attestation sha256 {statement['subject'][0]['digest']['sha256']}")
    print(f"  by {args.name} ({args.role}), keyid {signer.keyid}")
    if args.audit_log:
        entry = {
            "kind": "approval",
            "time": now_rfc3339(),
            "decision": decision,
            "approver": args.name.strip(),
            "role": args.role.strip(),
            "attestation_sha256": statement["subject"][0]["digest"]["sha256"],
            "approval_sha256": hashlib.sha256(envelope).hexdigest(),
            "run_id": statement["predicate"]["run"]["run_id"],
            "keyid": signer.keyid,
        }
        audit.append(Path(args.audit_log), entry, audit_key)
        print(f"  audit log {args.audit_log}: appended")
    return 0


# --- checking approvals -----------------------------------------------------------------


@dataclass
class ApprovalLine:
    """One file of the approvals folder and what became of it."""

    path: str
    counted: bool
    why: str = ""  # why it does not count ("" when counted)
    name: str | None = None
    role: str | None = None
    decision: str | None = None
    reason: str | None = None
    timestamp: str | None = None

    def text(self) -> str:
        who = f"{self.name} ({self.role})" if self.name else Path(self.path).name
        said = f": {self.reason!r}" if self.reason else ""
        state = f"{self.decision}d" if self.counted else f"NOT COUNTED ({self.why})"
        when = f" at {self.timestamp}" if self.timestamp else ""
        return f"{state} by {who}{when}{said} [{Path(self.path).name}]"


@dataclass
class ApprovalVerdict:
    lines: list[ApprovalLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def approved(self) -> bool:
        return not self.problems


def _check_one(
    path: Path,
    attestation_sha: str,
    trust: TrustFile,
    policy: dict[str, Any],
    run_signer: TrustedKey | None,
    run_keyid: str,
    now: dt.datetime,
) -> ApprovalLine:
    line = ApprovalLine(path=str(path), counted=False)
    try:
        data = path.read_bytes()
        envelope = dsse.parse_envelope(data)
    except (OSError, VerificationError) as exc:
        line.why = f"unreadable: {exc}"
        return line
    hints = {s.get("keyid") for s in envelope["signatures"]}
    candidates = [k for k in trust.keys if k.keyid in hints] or trust.keys
    verified, signer, failure = None, None, None
    for key in candidates:
        try:
            verified = dsse.verify(data, key.key, key.keyid)
        except VerificationError as exc:
            failure = exc
            continue
        signer = key
        break
    if verified is None or signer is None:
        if failure is not None and any(k.keyid in hints for k in trust.keys):
            line.why = f"does not verify: {failure}"
        else:
            line.why = "signed by a key outside the trust file"
        return line
    try:
        statement = parse_statement(verified.payload)
    except VerificationError as exc:
        line.why = f"malformed statement: {exc}"
        return line
    if statement["predicateType"] != APPROVAL_TYPE:
        line.why = f"not an approval (predicateType {statement['predicateType']})"
        return line
    predicate = _predicate(statement)
    approver = predicate.get("approver")
    approver = approver if isinstance(approver, dict) else {}
    fields = (approver.get("name"), approver.get("role"), predicate.get("reason"))
    if not all(isinstance(v, str) for v in (*fields, predicate.get("timestamp"))):
        line.why = "approver name, role, reason and timestamp must be strings"
        return line
    line.name, line.role, line.reason = fields
    line.decision, line.timestamp = predicate.get("decision"), predicate.get("timestamp")
    if line.decision not in ("approve", "reject"):
        line.why = f"decision {line.decision!r} is neither approve nor reject"
        return line
    approved = [s["digest"].get("sha256") for s in statement["subject"] if s.get("name") == "attestation"]
    if approved != [attestation_sha]:
        shown = approved[0][:16] if approved and approved[0] else "none"
        line.why = f"it is for another attestation (sha256 {shown}…)"
        return line
    try:
        signed_at = parse_time(line.timestamp, "timestamp")
        expires = parse_time(predicate["expires"], "expires") if predicate.get("expires") else None
    except LlmguardError as exc:
        line.why = str(exc)
        return line
    if line.name != signer.name:
        line.why = f"it names {line.name!r}, but the key belongs to {signer.name!r}"
        return line
    if line.role not in signer.roles:
        granted = ", ".join(signer.roles)
        line.why = f"the trust file grants {signer.name} the roles {granted}, not {line.role!r}"
        return line
    if not signer.valid_at(signed_at):
        line.why = f"signed at {line.timestamp}, outside the key's validity {signer.period()}"
        return line
    if signed_at > now + CLOCK_SKEW:
        line.why = f"signed at {line.timestamp}, in the future"
        return line
    days = policy.get("valid_for_days")
    if days is not None:
        limit = signed_at + dt.timedelta(days=float(days))
        expires = min(expires, limit) if expires else limit
    if expires is not None and now > expires:
        line.why = f"expired at {rfc3339(expires)}"
        return line
    if policy.get("two_person_rule", True) and (
        signer.keyid == run_keyid or (run_signer is not None and run_signer.name == signer.name)
    ):
        line.why = "signed by the run's own signer (two-person rule)"
        return line
    roles = policy.get("roles") or []
    if roles and line.role not in roles:
        line.why = f"role {line.role!r} is not one the policy asks for ({', '.join(roles)})"
        return line
    line.counted = True
    return line


def evaluate(
    folder: Path,
    attestation_sha: str,
    statement: dict[str, Any],
    run_keyid: str,
    trust: TrustFile,
    now: dt.datetime | None = None,
) -> ApprovalVerdict:
    """Whether the approvals in ``folder`` satisfy the run's recorded ``policy.approvals``."""
    now = now or dt.datetime.now(dt.UTC)
    verdict = ApprovalVerdict()
    predicate = _predicate(statement)
    policy = predicate.get("approvals")
    if not isinstance(policy, dict):
        verdict.problems.append("the run's suite sets no policy.approvals: its REVIEW cannot be approved")
        return verdict
    if not Path(folder).is_dir():
        raise LlmguardError(f"{folder}: approvals folder not found")
    run_signer = trust.by_keyid(run_keyid)
    for path in sorted(Path(folder).glob("*.json")):
        verdict.lines.append(_check_one(path, attestation_sha, trust, policy, run_signer, run_keyid, now))
    counted: list[ApprovalLine] = []
    for line in verdict.lines:
        if not line.counted:
            continue
        if line.decision == "reject":
            verdict.problems.append(f"rejected by {line.name} ({line.role}): {line.reason}")
            continue
        if policy.get("distinct_people", True) and any(c.name == line.name for c in counted):
            line.counted, line.why = False, f"{line.name} already approved (distinct people)"
            continue
        counted.append(line)
    required = int(policy.get("required", 1))
    if len(counted) < required:
        verdict.problems.append(f"{len(counted)} of the {required} approvals required are valid")
    for role in policy.get("roles") or []:
        if not any(c.role == role for c in counted):
            verdict.problems.append(f"no valid approval from the role {role}")
    return verdict


def check_run_signer(trust: TrustFile, keyid: str, statement: dict[str, Any]) -> str | None:
    """Why the run's key does not count under ``trust``, or None."""
    key = trust.by_keyid(keyid)
    if key is None:
        return f"the run's key {keyid[:16]}… is not in the trust file {trust.path}"
    predicate = _predicate(statement)
    finished = predicate.get("finished_at") or predicate.get("started_at")
    try:
        moment = parse_time(finished, "finished_at")
    except LlmguardError:
        return "the run records no valid finish time"
    if not key.valid_at(moment):
        return f"the run was signed at {finished}, outside its key's validity {key.period()}"
    return None

"""``llmguard verify``: check an attestation offline with a public key.

Order matters: the envelope's signature is checked over the raw payload bytes first;
only a payload that verified is parsed, checked to be a well-formed in-toto Statement
v1, and, when artifacts are given, compared with its subjects by sha256 (a folder by
the manifest digest of :mod:`llmguard_ops.artifacts`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..artifacts import sha256_path
from ..errors import LlmguardError
from . import dsse
from .dsse import VerificationError
from .keys import load_public
from .statement import PREDICATE_TYPE, parse_statement

EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


@dataclass
class VerifiedAttestation:
    """A statement whose signature checked, and the artifacts matched to its subjects."""

    statement: dict[str, Any]
    keyid: str
    matches: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def predicate(self) -> dict[str, Any]:
        value = self.statement.get("predicate")
        return value if isinstance(value, dict) else {}


def verify_attestation(
    data: bytes | str, public_key: Ed25519PublicKey, keyid: str, artifacts: Sequence[Path] = ()
) -> VerifiedAttestation:
    """Verify ``data`` (the envelope's bytes); raise :class:`VerificationError` if it fails."""
    verified = dsse.verify(data, public_key, keyid, dsse.INTOTO_PAYLOAD_TYPE)
    statement = parse_statement(verified.payload)
    result = VerifiedAttestation(statement=statement, keyid=keyid)
    ours = statement["predicateType"] == PREDICATE_TYPE
    signer = result.predicate.get("signer") if ours else None
    if isinstance(signer, dict) and signer.get("development_key"):
        result.notes.append("signed with a throw-away development key: integrity only, not who signed")
    by_digest = {s["digest"].get("sha256"): f"subject {s.get('name', '?')}" for s in statement["subject"]}
    outputs = result.predicate.get("outputs") if ours else None
    if isinstance(outputs, dict):  # our predicate also digests every output file of the run
        for name, digest in outputs.items():
            by_digest.setdefault(digest, f"output {name}")
    for path in artifacts:
        path = Path(path)
        if not path.exists():
            raise LlmguardError(f"{path}: artifact not found")
        digest, _kind = sha256_path(path)
        if digest not in by_digest:
            names = ", ".join(f"{s.get('name')} ({s['digest'].get('sha256', '')[:12]}…)" for s in statement["subject"])
            raise VerificationError(f"{path}: sha256 {digest} matches no subject (subjects: {names}) and no output")
        result.matches[str(path)] = by_digest[digest]
    return result


REPORT_NAME = "report.json"
DEV_PUBLIC_NAME = "development-key.pub"


@dataclass
class Binding:
    """What ``llmguard verify`` established beyond the signature."""

    artifacts: dict[str, str] = field(default_factory=dict)  # path -> "subject NAME" / "output N"
    report: str | None = None  # the report.json checked against the attested digest
    problems: list[str] = field(default_factory=list)  # each one makes the verification fail
    notes: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # what an explicit flag let through

    @property
    def bound(self) -> bool:
        return bool(self.artifacts)


def untrusted_key(key_path: Path, attestation: Path, statement: dict[str, Any]) -> str | None:
    """Why ``key_path`` is no trust root for ``attestation``, or None.

    A development key signs only to show integrity; its public half travels *with* the
    evidence, so whoever holds the output folder can sign anything and ship a matching
    key. The same holds for any public key lying in the attestation's own folder.
    """
    predicate = statement.get("predicate")
    signer = predicate.get("signer") if isinstance(predicate, dict) else None
    if isinstance(signer, dict) and signer.get("development_key"):
        return "it is signed with a throw-away development key (integrity only, not who signed)"
    if key_path.name == DEV_PUBLIC_NAME:
        return f"{key_path.name} is a development key's public half, not a trust root"
    try:
        beside = key_path.resolve().parent == attestation.resolve().parent
    except OSError:
        beside = False
    if beside:
        return (
            f"the key {key_path} lies in the attestation's own folder: a key shipped with "
            "the evidence is not a trust root; pass a public key you hold"
        )
    return None


def check_report(statement: dict[str, Any], attestation: Path, report: Path | None, binding: Binding) -> None:
    """The report beside the attestation (or ``report``) must be the one it attests."""
    predicate = statement.get("predicate")
    outputs = predicate.get("outputs") if isinstance(predicate, dict) else None
    attested = outputs.get(REPORT_NAME) if isinstance(outputs, dict) else None
    path = report if report is not None else attestation.parent / REPORT_NAME
    if not path.is_file():
        if report is not None:
            raise LlmguardError(f"{path}: report not found")
        binding.notes.append(f"no {REPORT_NAME} beside the attestation: no report was checked")
        return
    if attested is None:
        binding.problems.append(f"{path}: the attestation records no digest of {REPORT_NAME}")
        return
    digest, _kind = sha256_path(path)
    if digest != attested:
        binding.problems.append(
            f"{path}: sha256 {digest[:16]}… is not the attested {attested[:16]}…: the report "
            "was edited, or the attestation is from another run"
        )
        return
    binding.report = str(path)
    if isinstance(outputs, dict):  # the other outputs are only noted: `llmguard report` re-renders
        for name, value in sorted(outputs.items()):
            other = attestation.parent / name
            if name != REPORT_NAME and other.is_file() and sha256_path(other)[0] != value:
                binding.notes.append(f"{name} beside it differs from the attested file")


def bind(
    result: VerifiedAttestation,
    artifacts: Sequence[Path],
    roles: Sequence[str] = ("candidate",),
    decisions: Sequence[str] = ("PROMOTE",),
) -> Binding:
    """Match ``artifacts`` to subjects of the allowed ``roles`` of an allowed decision.

    ``roles`` are subject names (``candidate``, ``baseline``, …) or ``output`` for the
    run's output files. Anything else is a problem, so the verification fails.
    """
    binding = Binding()
    statement = result.statement
    subjects: dict[str, list[str]] = {}
    for s in statement["subject"]:
        subjects.setdefault(s["digest"].get("sha256"), []).append(str(s.get("name", "?")))
    names = {name for group in subjects.values() for name in group}
    for role in roles if artifacts else ():
        if role != "output" and role not in names:
            binding.problems.append(f"the attestation has no subject '{role}' (subjects: {', '.join(sorted(names))})")
    outputs = result.predicate.get("outputs")
    by_output = {v: k for k, v in outputs.items()} if isinstance(outputs, dict) else {}
    for path in artifacts:
        path = Path(path)
        if not path.exists():
            raise LlmguardError(f"{path}: artifact not found")
        digest, _kind = sha256_path(path)
        if digest in subjects:
            allowed = [n for n in subjects[digest] if n in roles]
            name = allowed[0] if allowed else subjects[digest][0]
            if allowed:
                binding.artifacts[str(path)] = f"subject {name}"
                if name != "candidate":
                    binding.accepted.append(f"{path} matches the {name} (accepted by --role)")
            else:
                binding.problems.append(
                    f"{path}: matches subject '{name}', not the candidate (pass --role {name} to accept that)"
                )
        elif digest in by_output:
            if "output" in roles:
                binding.artifacts[str(path)] = f"output {by_output[digest]}"
                binding.accepted.append(f"{path} is an output file (accepted by --role output)")
            else:
                binding.problems.append(
                    f"{path}: matches output {by_output[digest]}, not a model subject "
                    "(pass --role output to accept that)"
                )
        else:
            shown = ", ".join(f"{s.get('name')} ({s['digest'].get('sha256', '')[:12]}…)" for s in statement["subject"])
            binding.problems.append(f"{path}: sha256 {digest} matches no subject (subjects: {shown}) and no output")
    decision = (result.predicate.get("decision") or {}).get("decision")
    if artifacts and decision not in decisions:
        binding.problems.append(
            f"the decision is {decision}, not {' or '.join(decisions)}: the artifact was not "
            f"promoted (pass --allow-decision {decision} to accept that)"
        )
    elif artifacts and decision != "PROMOTE":
        binding.accepted.append(f"decision {decision} (accepted by --allow-decision)")
    return binding


def _fail(args: argparse.Namespace, path: Path, reason: str, chain: Sequence[Any] = ()) -> int:
    if args.json:
        body: dict[str, Any] = {"valid": False, "attestation": str(path), "reason": reason}
        if chain:
            body["approvals"] = [vars(line) for line in chain]
        print(json.dumps(body, indent=2))
    else:
        from ..terminal import clean

        for line in chain:
            print(clean(f"  approval: {line.text()}"))
        print(f"invalid: {path}: {reason}")
    return EXIT_INVALID


def cmd_verify(args: argparse.Namespace) -> int:
    """``llmguard verify ATTESTATION --key PUB [--artifact PATH]``: 0 valid, 1 invalid, 2 error.

    Exit 0 with ``--artifact`` means: the signature verifies with a key the caller holds
    (not a development key), the report beside the attestation is the attested one, and
    every artifact is the *candidate* of a *PROMOTE*. Other roles and decisions need
    ``--role`` / ``--allow-decision`` and are reported as accepted by that flag.
    """
    from ..terminal import clean

    path = Path(args.attestation)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LlmguardError(f"{path}: cannot read the attestation: {exc.strerror}") from None
    key_path = Path(args.key)
    public_key, keyid = load_public(key_path)
    try:
        result = verify_attestation(data, public_key, keyid)
    except VerificationError as exc:
        return _fail(args, path, clean(str(exc)))
    allow_dev = bool(getattr(args, "allow_dev_key", False))
    why = untrusted_key(key_path, path, result.statement)
    if why is not None and not allow_dev:
        return _fail(args, path, f"not trusted: {why} (--allow-dev-key checks integrity only)")
    approvals_dir, trust_file = getattr(args, "approvals", None), getattr(args, "trust", None)
    trust = None
    if approvals_dir and not trust_file:
        raise LlmguardError("--approvals needs --trust FILE: it says whose signature counts")
    if trust_file:
        from .approvals import check_run_signer, load_trust

        trust = load_trust(Path(trust_file))
        not_trusted = check_run_signer(trust, keyid, result.statement)
        if not_trusted is not None:
            return _fail(args, path, f"not trusted: {not_trusted}")
    predicate = result.predicate
    decision = (predicate.get("decision") or {}).get("decision")
    roles = list(getattr(args, "role", None) or ["candidate"])
    decisions = [d.upper() for d in (getattr(args, "allow_decision", None) or [])]
    by_approval = bool(approvals_dir) and decision == "REVIEW" and "REVIEW" not in decisions
    allowed = ["PROMOTE", *decisions, *(["REVIEW"] if by_approval else [])]
    binding = bind(result, [Path(a) for a in args.artifact or []], roles, allowed)
    chain: list[Any] = []
    if by_approval and trust is not None and approvals_dir:
        from .approvals import evaluate

        binding.accepted = [a for a in binding.accepted if not a.startswith("decision REVIEW")]
        verdict = evaluate(Path(approvals_dir), hashlib.sha256(data).hexdigest(), result.statement, keyid, trust)
        chain = verdict.lines
        binding.problems += [f"approvals: {p}" for p in verdict.problems]
    report = getattr(args, "report", None)
    check_report(result.statement, path, Path(report) if report else None, binding)
    if why is not None:
        binding.accepted.append(f"untrusted key: {why} (accepted by --allow-dev-key)")
    if binding.problems:
        return _fail(args, path, clean("; ".join(binding.problems)), chain)
    suite = predicate.get("suite") or {}
    bound = "artifacts" if binding.bound else "nothing (no --artifact: only the signature is checked)"
    if args.json:
        print(
            json.dumps(
                {
                    "valid": True,
                    "trusted": why is None,
                    "attestation": str(path),
                    "keyid": keyid,
                    "predicateType": result.statement["predicateType"],
                    "subject": result.statement["subject"],
                    "decision": decision,
                    "run_id": predicate.get("run_id"),
                    "suite": {"name": suite.get("name"), "sha256": suite.get("sha256")},
                    "bound": binding.bound,
                    "artifacts": binding.artifacts,
                    "report": binding.report,
                    "accepted_by_flag": binding.accepted,
                    "approvals": [vars(line) for line in chain],
                    "notes": [*result.notes, *binding.notes],
                },
                indent=2,
            )
        )
        return EXIT_VALID
    print(f"valid: {path}" if why is None else f"valid (UNTRUSTED, integrity only): {path}")
    print(f"  signed by keyid {keyid} (ed25519)")
    print(f"  statement predicateType {result.statement['predicateType']}")
    for s in result.statement["subject"]:
        print(clean(f"  subject {s.get('name')}: sha256 {s['digest'].get('sha256')}"))
    if decision:
        print(clean(f"  decision {decision} for suite {suite.get('name')} (sha256 {suite.get('sha256')})"))
    if binding.report:
        print(f"  report {binding.report}: the attested one (run {predicate.get('run_id')})")
    for artifact, name in binding.artifacts.items():
        print(f"  artifact {artifact}: matches {name}")
    if trust is not None:
        signer = trust.by_keyid(keyid)
        print(clean(f"  run signed by {signer.name if signer else '?'} (trust file {trust.path})"))
    if chain:
        print(f"  REVIEW approved under policy.approvals ({approvals_dir}):")
    for line in chain:
        print(clean(f"  approval: {line.text()}"))
    print(f"  bound: {bound}")
    for line in binding.accepted:
        print(f"  accepted: {line}")
    for note in [*result.notes, *binding.notes]:
        print(f"  note: {note}")
    return EXIT_VALID


@dataclass(frozen=True)
class ReportStatus:
    """Whether the attestation beside a ``report.json`` vouches for it (``llmguard report``)."""

    state: str  # verified | unchecked | untrusted | mismatch | invalid | unsigned | absent
    title: str
    line: str

    @property
    def ok(self) -> bool:
        """False when an attestation is there and does not verify over this report."""
        return self.state not in ("mismatch", "invalid")


def report_status(report_path: Path, key: Path | None = None) -> ReportStatus:
    """Check the attestation beside ``report_path`` over that very file.

    With ``key`` the signature is verified too (and a development key or a key lying in
    the folder is reported as untrusted); without it only the attested digest of
    ``report.json`` is compared, and the page says the signature was not checked.
    """
    attestation = report_path.parent / "attestation.dsse.json"
    if not attestation.is_file():
        return ReportStatus("absent", "Not verified", "no attestation.dsse.json beside this report")
    data = attestation.read_bytes()
    try:
        if key is not None:
            public_key, keyid = load_public(key)
            statement = verify_attestation(data, public_key, keyid).statement
        else:
            envelope = dsse.parse_envelope(data)
            statement = parse_statement(dsse.b64decode_strict(envelope["payload"], "payload"))
    except VerificationError as exc:
        return ReportStatus("invalid", "NOT VERIFIED", f"the attestation does not verify: {exc}")
    binding = Binding()
    check_report(statement, attestation, report_path, binding)
    if binding.problems:
        return ReportStatus("mismatch", "NOT VERIFIED", "; ".join(binding.problems))
    predicate = statement.get("predicate") if isinstance(statement.get("predicate"), dict) else {}
    signer = predicate.get("signer") if isinstance(predicate, dict) else None
    if key is None:
        if not envelope["signatures"]:
            return ReportStatus("unsigned", "Unsigned", "the attestation beside it carries no signature")
        hint = signer.get("keyid") if isinstance(signer, dict) else None
        return ReportStatus(
            "unchecked",
            "Signature not checked",
            "the attestation beside it records this report's sha256; its signature (keyid "
            f"{hint}) was not checked: pass --key PUB, or run the verify command below",
        )
    why = untrusted_key(key, attestation, statement)
    if why is not None:
        return ReportStatus("untrusted", "Integrity only", f"the signature checks, but {why}")
    return ReportStatus(
        "verified",
        "Verified",
        f"the attestation's signature (keyid {keyid}) verifies over this report",
    )

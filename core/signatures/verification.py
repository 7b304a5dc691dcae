"""Verifying a detached CMS signature over a report's bytes, and re-verifying it from its evidence.

``verify`` answers one of three words, each with the reasons a clerk can read:

- "invalid": the signature is broken or the content changed (``core.signatures.cms``); no path from the signer
  through pinned CAs (``core.signatures.trust``; certificates carried in the signature are never anchors, so
  an intermediate found only in the signature is refused too — SIG-02); a certificate on the path
  expired or not yet valid; key usage, EKU (against ``settings.signature_ekus``, checked here since
  cryptography's verifier would not — F3) or key size unfit; a certificate signed with MD5/SHA-1
  (checked by hand, so it is called weak, not forged); a signer that is a CA (CA:TRUE); the signer
  revoked by its issuer's CRL at or before the receipt time; or the signer is not one of the
  expected certificates (the submitting account's — SIG-06).
- "indeterminate": nothing is wrong, but a CA on the path has no usable current CRL (missing, its
  next update passed, no next update and older than a day, or an unknown critical extension), or the
  signer is on hold (certificateHold), so revocation cannot be ruled out.

A CA pinned twice under one name and key (re-certified) gives several candidate paths; each is
tried, those whose CAs are valid at the signing time first.
- "valid": otherwise.

Time rules: certificates must be valid at the signing time (the signing-time attribute — a claim of
the signer's computer, so it may not lie after the receipt time beyond a small clock skew; without it,
the receipt time) and the signer's certificate still valid at receipt. CRLs must be current at the
time of checking. Revocation is checked by our own routine (security.md §4.4, F2, F8).

The evidence (SIG-07) keeps everything needed to decide again without the live trust store: the path
(PEM, signer first), the CRLs used (named by SHA-256; CRL rows are never deleted), the policy and the
times. ``reverify`` runs the same checks with the evidence's path as the only anchors, the CRLs it
names and the times it recorded — so a report signed today can be re-verified years later, after the
anchors were rotated and newer CRLs arrived.

Nothing here writes to the database; a bad signature never raises.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from core import clock
from core.signatures import cms
from core.i18n import core_catalog, format_datetime

EVIDENCE_VERSION = 1
MAX_PATH_CAS = 4  # CA certificates above the signer: root, and up to three intermediates
CLOCK_SKEW = dt.timedelta(minutes=10)  # a signer's PC clock may run a little ahead of the server
MIN_RSA_BITS = 2048
EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521",
             "brainpoolP256r1": "brainpoolP256r1", "brainpoolP384r1": "brainpoolP384r1",
             "brainpoolP512r1": "brainpoolP512r1"}
WEAK_CERT_HASHES = {"md5": "MD5", "sha1": "SHA-1"}
DEFAULT_EKUS = ("1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36", "1.3.6.1.4.1.311.10.3.12",
                "1.2.840.113583.1.1.5")
STATUSES = ("valid", "invalid", "indeterminate")
DATE_PARAMS = ("date", "next_update", "signing_time", "received_at")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _iso(value: dt.datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None


def _parse_iso(value: str | None) -> dt.datetime | None:
    return _utc(dt.datetime.fromisoformat(value)) if value else None


def _fp(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(cert_or_name) -> str:
    name = cert_or_name.subject if isinstance(cert_or_name, x509.Certificate) else cert_or_name
    for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME):
        values = name.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return name.rfc4514_string()


@dataclass(frozen=True)
class Problem:
    """One reason against the signature. ``blocking`` False: it only leaves the verdict undecided."""

    key: str
    params: dict = field(default_factory=dict)
    blocking: bool = True

    def message(self, lang: str = "vi") -> str:
        params = {k: (format_datetime(_parse_iso(v), lang) if k in DATE_PARAMS and isinstance(v, str) else v)
                  for k, v in self.params.items()}
        return core_catalog().gettext(lang, self.key, **params)

    def as_dict(self) -> dict:
        return {"key": self.key, "params": dict(self.params), "blocking": self.blocking}


@dataclass
class Verdict:
    status: str  # "valid" | "invalid" | "indeterminate"
    problems: list  # Problem
    signer_name: str = ""
    signer_subject: str = ""
    signer_serial: str = ""  # hex
    issuer_subject: str = ""
    fingerprint: str = ""  # SHA-256 hex of the signer certificate DER
    signing_time: dt.datetime | None = None  # timezone-aware UTC, as claimed by the signature
    checked_at: dt.datetime | None = None  # timezone-aware UTC
    evidence: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    def messages(self, lang: str = "vi") -> list[str]:
        return [p.message(lang) for p in self.problems]

    def summary(self, lang: str = "vi") -> str:
        catalog = core_catalog()
        when = format_datetime(self.signing_time or self.checked_at, lang)
        if self.status == "valid":
            return catalog.gettext(lang, "trust.summary.valid", name=self.signer_name, time=when)
        key = "trust.summary.invalid" if self.status == "invalid" else "trust.summary.indeterminate"
        first = next((p for p in self.problems if p.blocking), self.problems[0] if self.problems else None)
        return catalog.gettext(lang, key, reason=first.message(lang) if first else "")


# -- where anchors and CRLs come from ------------------------------------------------------------


class _LiveStore:
    """The administrator's pinned anchors and the stored CRLs, as they are now."""

    def __init__(self):
        from core.signatures.trust import TrustAnchor

        rows = list(TrustAnchor.select())
        self.anchors = [r.certificate() for r in rows if r.active]
        self.inactive = [r.certificate() for r in rows if not r.active]

    def crl(self, issuer: x509.Certificate):
        from core.signatures.trust import current_crl, same_ca_fingerprints

        # A re-certified CA keeps its name and key: a CRL filed under either certificate is its CRL.
        row = current_crl(same_ca_fingerprints(issuer))
        return (row.load(), row.sha256) if row is not None else None


class _EvidenceStore:
    """Only what an evidence record names: its CA path as anchors, its CRLs by SHA-256."""

    def __init__(self, path: list, crls: list[dict]):
        self.anchors = path[1:]
        self.inactive = []
        self._crls = {c.get("issuer_fingerprint"): c.get("sha256") for c in crls}

    def crl(self, issuer: x509.Certificate):
        from core.signatures.trust import Crl

        digest = self._crls.get(_fp(issuer))
        if not digest:
            return None
        row = Crl.get_or_none(Crl.sha256 == digest)
        return (row.load(), row.sha256) if row is not None else None


# -- the checks ----------------------------------------------------------------------------------


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        # cryptography no longer verifies MD5/SHA-1 certificate signatures; checked by hand so that
        # such a certificate is refused for its weak algorithm (``_certificate_hash``), not as a forgery.
        return _weak_signature_ok(cert, issuer)
    except Exception:  # wrong key (InvalidSignature), unsupported algorithm, name mismatch
        return False
    return True


def _weak_signature_ok(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    algorithm = cert.signature_hash_algorithm if _hash_name(cert) in WEAK_CERT_HASHES else None
    if algorithm is None:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except Exception:  # InvalidSignature, or the algorithm refused by the OpenSSL build
        return False
    return True


def _hash_name(cert: x509.Certificate) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return ""
    return algorithm.name if isinstance(algorithm, hashes.HashAlgorithm) else ""


def _covers(cert: x509.Certificate, when: dt.datetime | None) -> bool:
    return when is None or cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _candidate_paths(path: list, store, carried: list, when: dt.datetime | None):
    """Every path upwards from ``path[-1]`` through pinned anchors, as (path, problems).

    A CA may be pinned twice under one name and key (an old certificate and its re-certified
    successor): each candidate issuer is tried, those valid at ``when`` first."""
    current = path[-1]
    issuers = [a for a in store.anchors if _issued_by(current, a)]
    if not issuers:
        if len(path) > 1:
            # Ends at a pinned CA; an explicitly deactivated issuer above it withdraws the trust.
            dropped = next((a for a in store.inactive if _issued_by(current, a)), None)
            if dropped is not None:
                yield path, [Problem("trust.problem.anchor_inactive", {"name": _name(dropped)})]
                return
            yield path, []
            return
        yield path, [_why_untrusted(current, store, carried)]
        return
    issuers.sort(key=lambda a: (not _covers(a, when), -a.not_valid_after_utc.timestamp()))
    for issuer in issuers:
        if _fp(issuer) == _fp(current) or any(_fp(issuer) == _fp(c) for c in path[1:]):
            yield path, []  # a pinned root (or a loop through a re-certified root)
            continue
        if len(path) > MAX_PATH_CAS:
            yield path, [Problem("trust.problem.path_too_long", {"limit": MAX_PATH_CAS})]
            continue
        yield from _candidate_paths(path + [issuer], store, carried, when)


def _build_path(signer: x509.Certificate, store, carried: list,
                when: dt.datetime | None = None) -> tuple[list, list]:
    """[signer, its issuer, …] through pinned anchors only, and the problems found on the way: the
    first path whose CAs are all valid at ``when``, else the first path found."""
    first = None
    for index, (path, problems) in enumerate(_candidate_paths([signer], store, carried, when)):
        if not problems and all(_covers(ca, when) for ca in path[1:]):
            return path, problems
        first = first or (path, problems)
        if index >= 16:  # a handful of re-certifications at most; never an explosion
            break
    return first


def _why_untrusted(cert: x509.Certificate, store, carried: list) -> Problem:
    dropped = next((a for a in store.inactive if _issued_by(cert, a)), None)
    if dropped is not None:
        return Problem("trust.problem.anchor_inactive", {"name": _name(dropped)})
    same_name = [a for a in store.anchors if a.subject == cert.issuer]
    if same_name:
        # A CA that calls itself by a pinned CA's name but holds another key: a forgery.
        return Problem("trust.problem.issuer_impostor", {"issuer": _name(cert.issuer)})
    in_signature = next((c for c in carried if _issued_by(cert, c) and _fp(c) != _fp(cert)), None)
    if in_signature is not None:
        return Problem("trust.problem.intermediate_not_pinned", {"issuer": _name(in_signature)})
    return Problem("trust.problem.untrusted", {"issuer": _name(cert.issuer)})


def _validity(cert: x509.Certificate, when: dt.datetime) -> Problem | None:
    if when < cert.not_valid_before_utc:
        return Problem("trust.problem.not_yet_valid", {"name": _name(cert), "date": _iso(cert.not_valid_before_utc)})
    if when > cert.not_valid_after_utc:
        return Problem("trust.problem.expired", {"name": _name(cert), "date": _iso(cert.not_valid_after_utc)})
    return None


def _key_strength(cert: x509.Certificate) -> Problem | None:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return Problem("trust.problem.weak_rsa_key", {"name": _name(cert), "bits": key.key_size,
                                                           "minimum": MIN_RSA_BITS})
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in EC_CURVES:
            return Problem("trust.problem.weak_ec_key", {"name": _name(cert), "curve": key.curve.name})
        return None
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return None
    return Problem("trust.problem.unsupported_key", {"name": _name(cert)})


def _certificate_hash(cert: x509.Certificate) -> Problem | None:
    name = _hash_name(cert)
    if name in WEAK_CERT_HASHES:
        return Problem("trust.problem.weak_certificate_hash", {"name": _name(cert), "algorithm": WEAK_CERT_HASHES[name]})
    return None


def _unknown_critical(cert: x509.Certificate) -> Problem | None:
    # RFC 5280 §4.2: a critical extension one does not understand means the certificate is refused.
    for extension in cert.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            return Problem("trust.problem.unknown_critical_extension",
                           {"name": _name(cert), "oid": extension.oid.dotted_string})
    return None


def _ca_problems(path: list) -> list[Problem]:
    problems = []
    for depth, ca in enumerate(path[1:]):
        try:
            constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            problems.append(Problem("trust.problem.not_a_ca", {"name": _name(ca)}))
            continue
        # ``depth`` intermediates stand between this CA and the signer.
        if constraints.path_length is not None and depth > constraints.path_length:
            problems.append(Problem("trust.problem.path_too_long", {"limit": constraints.path_length}))
        try:
            usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.key_cert_sign:
                problems.append(Problem("trust.problem.not_a_ca", {"name": _name(ca)}))
        except x509.ExtensionNotFound:
            pass
    return problems


def _usage_problems(cert: x509.Certificate, ekus) -> list[Problem]:
    problems = []
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            # A CA certificate is for issuing certificates, not for a person's or a unit's signature
            # (RFC 5280 §4.2.1.9; the Vietnamese profile issues signers CA:FALSE).
            problems.append(Problem("trust.problem.signer_is_ca", {"name": _name(cert)}))
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            problems.append(Problem("trust.problem.key_usage", {"name": _name(cert)}))
    except x509.ExtensionNotFound:
        problems.append(Problem("trust.problem.key_usage", {"name": _name(cert)}))
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        extended = None
    if extended is not None and not any(oid.dotted_string in ekus for oid in extended):
        problems.append(Problem("trust.problem.extended_key_usage", {"name": _name(cert)}))
    return problems


def _revocation(path: list, store, now: dt.datetime,
                received_at: dt.datetime) -> tuple[list[Problem], list[dict], list[dict]]:
    """Own CRL check for each certificate below a CA on the path (security.md §4.4).

    Only an entry dated at or before the time of receipt counts: a certificate revoked (or put on
    hold) afterwards was in force when the report arrived, so a later check with a newer CRL gives
    the answer the receipt-time evidence gives. The date is kept in the evidence for the screen."""
    from core.signatures.trust import crl_current_until, unusable_crl_reason

    problems, used, checks = [], [], []
    for cert, issuer in zip(path, path[1:]):
        found = store.crl(issuer)
        issuer_name = _name(issuer)
        if found is None:
            problems.append(Problem("trust.problem.crl_missing", {"issuer": issuer_name}, blocking=False))
            checks.append({"check": "revocation", "certificate": _fp(cert), "outcome": "no_crl"})
            continue
        crl, digest = found
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
            problems.append(Problem("trust.problem.crl_missing", {"issuer": issuer_name}, blocking=False))
            checks.append({"check": "revocation", "certificate": _fp(cert), "outcome": "crl_not_trusted"})
            continue
        unusable = unusable_crl_reason(crl)
        if unusable is not None:
            # RFC 5280 §5.2: a CRL with a critical extension one cannot process must not be used.
            problems.append(Problem("trust.problem.crl_unusable", {"issuer": issuer_name, "oid": unusable},
                                    blocking=False))
            checks.append({"check": "revocation", "certificate": _fp(cert), "outcome": "crl_unusable"})
            continue
        used.append({"sha256": digest, "issuer": crl.issuer.rfc4514_string(), "issuer_fingerprint": _fp(issuer),
                     "this_update": _iso(crl.last_update_utc), "next_update": _iso(crl.next_update_utc)})
        check = {"check": "revocation", "certificate": _fp(cert)}
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            revoked_at = entry.revocation_date_utc
            on_hold = _reason(entry) == x509.ReasonFlags.certificate_hold
            check["revoked_at"] = _iso(revoked_at)
            if revoked_at <= received_at:
                if on_hold:
                    # Suspended, not revoked: undecided until a later CRL lifts or confirms it.
                    problems.append(Problem("trust.problem.on_hold", {"name": _name(cert), "date": _iso(revoked_at)},
                                            blocking=False))
                    checks.append({**check, "outcome": "on_hold"})
                else:
                    problems.append(Problem("trust.problem.revoked", {"name": _name(cert), "date": _iso(revoked_at)}))
                    checks.append({**check, "outcome": "revoked"})
                continue
            check["after_receipt"] = "on_hold" if on_hold else "revoked"
        until = crl_current_until(crl.last_update_utc, crl.next_update_utc)
        fresh = crl.last_update_utc <= now <= until
        if not fresh and crl.next_update_utc is None:
            problems.append(Problem("trust.problem.crl_no_next_update",
                                    {"issuer": issuer_name, "date": _iso(crl.last_update_utc)}, blocking=False))
        elif not fresh:
            problems.append(Problem("trust.problem.crl_stale", {"issuer": issuer_name,
                                                                 "next_update": _iso(crl.next_update_utc)},
                                    blocking=False))
        checks.append({**check, "outcome": "good" if fresh else "stale"})
    return problems, used, checks


def _reason(entry) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return None


@dataclass
class _Context:
    received_at: dt.datetime
    checked_at: dt.datetime
    ekus: tuple


def _check_certificate(signer: x509.Certificate, store, carried: list, ctx: _Context,
                       signing_time: dt.datetime | None) -> tuple[list, list, list, list]:
    """Path, validity, usage, key and revocation checks: (path, problems, crls used, checks done)."""
    problems: list[Problem] = []
    checks: list[dict] = []

    def note(name: str, found: list) -> None:
        problems.extend(found)
        checks.append({"check": name, "ok": not found, "problems": [p.key for p in found]})

    validity_time = ctx.received_at
    late_signing_time = signing_time is not None and signing_time > ctx.received_at + CLOCK_SKEW
    if signing_time is not None and not late_signing_time:
        validity_time = min(signing_time, ctx.received_at)
    path, found = _build_path(signer, store, carried, validity_time)
    note("path", found + _ca_problems(path))
    if late_signing_time:
        note("signing_time", [Problem("trust.problem.signing_time_after_receipt",
                                      {"signing_time": _iso(signing_time), "received_at": _iso(ctx.received_at)})])
    times = [validity_time] + ([ctx.received_at] if ctx.received_at != validity_time else [])
    validity = []
    for when in times:
        for cert in path if when == validity_time else [signer]:
            problem = _validity(cert, when)
            if problem and problem not in validity:
                validity.append(problem)
    note("validity", validity)
    note("key_usage", _usage_problems(signer, ctx.ekus))
    note("keys", [p for p in (_key_strength(c) for c in path) if p]
         + [p for p in (_certificate_hash(c) for c in path[:-1]) if p]
         + [p for p in (_unknown_critical(c) for c in path) if p])
    revocation, used, crl_checks = _revocation(path, store, ctx.checked_at, ctx.received_at)
    problems.extend(revocation)
    checks.extend(crl_checks)
    return path, problems, used, checks


def _status(problems: list[Problem]) -> str:
    if any(p.blocking for p in problems):
        return "invalid"
    return "indeterminate" if problems else "valid"


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _run(data: bytes, cms_der: bytes, store, ctx: _Context, expected) -> Verdict:
    evidence = {
        "version": EVIDENCE_VERSION,
        "policy": {"ekus": list(ctx.ekus), "digests": sorted(cms.DIGESTS), "min_rsa_bits": MIN_RSA_BITS},
        "times": {"received_at": _iso(ctx.received_at), "checked_at": _iso(ctx.checked_at), "signing_time": None},
        "data_sha256": hashlib.sha256(data or b"").hexdigest(),
        "cms_sha256": hashlib.sha256(cms_der or b"").hexdigest(),
        "chain": [], "crls": [], "checks": [],
    }
    try:
        parsed = cms.parse(cms_der)
    except cms.CmsError as exc:
        problem = Problem(exc.key, dict(exc.params))
        evidence["checks"].append({"check": "cms", "ok": False, "problems": [exc.key]})
        evidence.update(status="invalid", problems=[problem.as_dict()])
        return Verdict("invalid", [problem], checked_at=ctx.checked_at, evidence=evidence)

    problems: list[Problem] = []
    try:
        cms.check_signature(parsed)
        signature_ok = []
    except cms.CmsError as exc:
        signature_ok = [Problem(exc.key, dict(exc.params))]
    evidence["checks"].append({"check": "cms", "ok": True, "digest": parsed.digest_algorithm,
                               "signature_algorithm": parsed.signature_algorithm})
    evidence["checks"].append({"check": "signature", "ok": not signature_ok})
    problems.extend(signature_ok)
    changed = [] if cms.content_matches(parsed, data) else [Problem("trust.problem.content_changed")]
    evidence["checks"].append({"check": "content", "ok": not changed})
    problems.extend(changed)

    signer = parsed.signer_certificate
    signing_time = _utc(parsed.signing_time)
    evidence["times"]["signing_time"] = _iso(signing_time)
    try:
        path, found, used, checks = _check_certificate(signer, store, parsed.certificates, ctx, signing_time)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # A damaged certificate that parsed but cannot be used; never an exception to the caller.
        path, found, used, checks = [signer], [Problem("trust.error.cms_malformed")], [], []
    problems.extend(found)
    evidence["checks"].extend(checks)

    if expected is not None:
        wanted = {c if isinstance(c, str) else _fp(c) for c in expected}
        binding = []
        if not wanted:
            binding = [Problem("trust.problem.no_registered_certificate")]
        elif _fp(signer) not in wanted:
            binding = [Problem("trust.problem.not_expected_signer", {"name": _name(signer)})]
        evidence["checks"].append({"check": "binding", "ok": not binding, "expected": sorted(wanted)})
        problems.extend(binding)

    status = _status(problems)
    evidence["chain"] = [_pem(c) for c in path]
    evidence["crls"] = used
    evidence["signer"] = {"fingerprint": _fp(signer), "subject": signer.subject.rfc4514_string(),
                          "serial": format(signer.serial_number, "X")}
    evidence.update(status=status, problems=[p.as_dict() for p in problems])
    return Verdict(status, problems, signer_name=_name(signer), signer_subject=signer.subject.rfc4514_string(),
                   signer_serial=format(signer.serial_number, "X"), issuer_subject=signer.issuer.rfc4514_string(),
                   fingerprint=_fp(signer), signing_time=signing_time, checked_at=ctx.checked_at, evidence=evidence)


def _ekus(settings) -> tuple:
    return tuple(getattr(settings, "signature_ekus", None) or DEFAULT_EKUS)


def verify(data: bytes, cms_der: bytes, *, expected=None, at: dt.datetime | None = None, settings=None) -> Verdict:
    """Verify a detached CMS over ``data`` against the live trust store.

    ``expected``: x509 certificates (or their SHA-256 fingerprints) the signer must be one of (None: no binding check; an empty
    list: the account has none registered, so the signature is refused). ``at``: the receipt time
    (default now; naive values are UTC)."""
    now = clock.now_utc()
    ctx = _Context(received_at=_utc(at) or now, checked_at=now, ekus=_ekus(settings))
    return _run(data, cms_der, _LiveStore(), ctx, expected)


def reverify(data: bytes, cms_der: bytes, evidence: dict) -> Verdict:
    """Decide again from the evidence alone: its path, its CRLs (read by SHA-256), its times and policy."""
    try:
        path = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in evidence.get("chain") or []]
        times = evidence["times"]
        ctx = _Context(received_at=_parse_iso(times["received_at"]), checked_at=_parse_iso(times["checked_at"]),
                       ekus=tuple(evidence["policy"]["ekus"]))
        expected_fps = next((c.get("expected") for c in evidence.get("checks", []) if c.get("check") == "binding"),
                            None)
    except (KeyError, TypeError, ValueError, AttributeError):
        problem = Problem("trust.problem.evidence_incomplete")
        return Verdict("invalid", [problem], checked_at=clock.now_utc(),
                       evidence={"problems": [problem.as_dict()], "status": "invalid"})
    store = _EvidenceStore(path, evidence.get("crls") or [])
    # The binding is decided again against the fingerprints the account had registered then.
    verdict = _run(data, cms_der, store, ctx, expected_fps)
    verdict.evidence["reverified_at"] = _iso(clock.now_utc())
    return verdict


def certificate_problems(cert: x509.Certificate, *, at: dt.datetime | None = None, settings=None) -> list[Problem]:
    """The checks a signer certificate must pass now (registration): path, validity, usage, keys, CRL."""
    now = clock.now_utc()
    ctx = _Context(received_at=_utc(at) or now, checked_at=now, ekus=_ekus(settings))
    _, problems, _, _ = _check_certificate(cert, _LiveStore(), [], ctx, None)
    return problems

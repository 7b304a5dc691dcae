"""The signing certificates people register for their own account.

A signature on a report is bound to the account that submits it (security.md SIG-06): the signer's
certificate must be one of the submitter's active registered certificates. A person registers their
own certificate after re-entering their password, and must prove they hold its key: the server
issues a random challenge (``new_challenge``: single use, valid for ``CHALLENGE_LIFETIME``) and the
person signs it the ways a report is signed — their .p12 file used once (``register_with_p12``), or
their USB token's tool producing a detached .p7s over the downloaded challenge (``register``); the
certificate registered is the signer's. It must chain to a pinned anchor, be valid now and be fit
for signing, and it cannot be registered to two accounts at once. Where the account has an identity
number (CCCD/CMND, or an organisation's MST; ``User.identity_number``, recorded by a unit
administrator) and the certificate names one in its subject (UID 0.9.2342.19200300.100.1.1 or
serialNumber 2.5.4.5, e.g. "CCCD:044012345678"), they must be the same; the administrator's view of a
colleague's certificates says whether they match. A unit administrator over the person's unit may
deactivate it (a lost token, a person who left). Rows are deactivated, never deleted: the evidence of
old signatures keeps its meaning.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, TextField

from core import audit
from core.accounts.access import ADMIN_CODE
from core.db import CoreModel, transaction
from core.errors import BaocaoError, NotFound
from core.i18n import format_date
from core.models import User, utcnow
from core.signatures.files import load_p12, read_p7s
from core.signatures.trust import add_sources_from, common_name, fingerprint, naive_utc
from core.units.tree import ancestor_ids


class UserCertificate(CoreModel):
    user = ForeignKeyField(User, backref="certificates", on_delete="CASCADE")
    der = BlobField()
    fingerprint = CharField(max_length=64, index=True)
    subject = TextField()
    name = CharField(max_length=255)  # the subject's common name, for lists
    serial = CharField(max_length=64)  # hex, as printed on the certificate
    issuer = TextField()
    not_before = DateTimeField()
    not_after = DateTimeField()
    active = BooleanField(default=True)
    added_at = DateTimeField(default=utcnow)
    added_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    deactivated_at = DateTimeField(null=True)
    deactivated_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.der))

    @property
    def issuer_name(self) -> str:
        return common_name(self.certificate().issuer)

    @property
    def identity(self) -> str:
        """The holder's identifier in the Vietnamese profile (UID "CCCD:…" or "MST:…"), if any."""
        values = self.certificate().subject.get_attributes_for_oid(x509.NameOID.USER_ID)
        return str(values[0].value) if values else ""

    def identity_match(self, identity_number: str | None) -> str:
        """"match" | "mismatch" | "unknown" (no number on the account or none in the certificate)."""
        return identity_match(self.certificate(), identity_number)


class CertificateChallenge(CoreModel):
    """A random challenge an account's certificate must sign before it is registered (0021)."""

    user = ForeignKeyField(User, on_delete="CASCADE", backref="+")
    nonce = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


CHALLENGE_LIFETIME = dt.timedelta(minutes=15)
OPEN_CHALLENGES = 5  # an account's unused challenges a proof is matched against, newest first
IDENTITY_OIDS = (x509.NameOID.USER_ID, x509.NameOID.SERIAL_NUMBER)
# "CCCD:044012345678", "CMND:…", "MST:3200123456", "MST:3200123456-001"; a bare number is taken too.
IDENTITY_VALUE = re.compile(r"^\s*(?:(CCCD|CMND|CMT|MST|HC|PASSPORT)\s*[:\-]\s*)?([0-9][0-9\-]{5,19})\s*$",
                            re.IGNORECASE)
IDENTITY_NUMBER = re.compile(r"^[0-9][0-9\-]{5,19}$")


def certificate_identities(cert: x509.Certificate) -> list[tuple[str, str, str]]:
    """(kind, number, attribute text) of each identity the subject names in its UID or
    serialNumber: kind "CCCD", "MST", … upper-cased, "" for a bare number."""
    found = []
    for oid in IDENTITY_OIDS:
        for attribute in cert.subject.get_attributes_for_oid(oid):
            match = IDENTITY_VALUE.match(str(attribute.value))
            if match:
                found.append(((match.group(1) or "").upper(), match.group(2), str(attribute.value)))
    return found


def certificate_identity_numbers(cert: x509.Certificate) -> list[str]:
    """The CCCD/CMND/MST numbers the certificate's subject names (UID or serialNumber)."""
    numbers = []
    for _, number, _ in certificate_identities(cert):
        if number not in numbers:
            numbers.append(number)
    return numbers


def identity_match(cert: x509.Certificate, identity_number: str | None) -> str:
    numbers = certificate_identity_numbers(cert)
    if not identity_number or not numbers:
        return "unknown"
    return "match" if identity_number in numbers else "mismatch"


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def problem_params(problem) -> dict:
    """The problem's parameters for a one-line error: dates as dd/mm/yyyy, read the same in vi and en."""
    from core.signatures.verification import DATE_PARAMS

    return {k: (format_date(dt.datetime.fromisoformat(v), "vi") if k in DATE_PARAMS and isinstance(v, str) else v)
            for k, v in problem.params.items()}


def _may_manage(access, user: User) -> bool:
    actor = access.actor
    if actor is not None and actor.id == user.id:
        return True
    return access.allowed(ADMIN_CODE, ancestor_ids(user.unit_id))


def _manageable(access, user_id: int) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None or not _may_manage(access, user):
        raise NotFound()
    return user


def challenge_bytes(challenge: CertificateChallenge) -> bytes:
    """What the certificate's key signs: names the account, so a proof serves no other account."""
    return (f"baocao.certificate-challenge/1\naccount: {challenge.user.username}\nnonce: {challenge.nonce}\n"
            f"expires: {challenge.expires_at.replace(microsecond=0).isoformat()}Z\n").encode("utf-8")


def new_challenge(access, user_id: int) -> CertificateChallenge:
    """A fresh random challenge for registering a certificate to ``user_id`` (one transaction)."""
    user = _manageable(access, user_id)
    now = utcnow()
    with transaction():
        # Spent and expired challenges are of no further use.
        CertificateChallenge.delete().where((CertificateChallenge.user == user.id)
                                            & (CertificateChallenge.expires_at < now)).execute()
        return CertificateChallenge.create(user=user, nonce=secrets.token_hex(32), created_at=now,
                                           expires_at=now + CHALLENGE_LIFETIME)


def _open_challenges(user: User) -> list[CertificateChallenge]:
    return list(CertificateChallenge.select()
                .where((CertificateChallenge.user == user.id) & CertificateChallenge.used_at.is_null()
                       & (CertificateChallenge.expires_at >= utcnow()))
                .order_by(CertificateChallenge.id.desc()).limit(OPEN_CHALLENGES))


def register_with_key(access, user_id: int, cert: x509.Certificate, key, chain=(), *,
                      settings=None) -> UserCertificate:
    """Register ``cert`` with its key in hand (a .p12 file used once, the demo): the key signs a fresh
    challenge in memory and is dropped; the proof is checked like an uploaded one."""
    from core.signatures.cms import CmsError, sign_detached

    challenge = new_challenge(access, user_id)
    try:
        proof = sign_detached(challenge_bytes(challenge), cert, key, chain)
    except CmsError as exc:
        raise BaocaoError(exc.key, **dict(exc.params)) from exc
    return register(access, user_id, proof, settings=settings)


def register_with_p12(access, user_id: int, data: bytes, password: str, *, settings=None) -> UserCertificate:
    key, cert, chain = load_p12(data, password)
    return register_with_key(access, user_id, cert, key, chain, settings=settings)


def register(access, user_id: int, proof: bytes, *, settings=None) -> UserCertificate:
    """Register the certificate that signed ``proof`` — a detached CMS (DER or PEM) over one of the
    account's open challenges — for ``user_id``: themself, or their unit administrator."""
    from core.signatures import cms
    from core.signatures.verification import verify

    user = _manageable(access, user_id)
    proof = read_p7s(proof)
    try:
        parsed = cms.parse(proof)
    except cms.CmsError as exc:
        raise BaocaoError(exc.key, **dict(exc.params)) from exc
    challenge = next((c for c in _open_challenges(user) if cms.content_matches(parsed, challenge_bytes(c))), None)
    if challenge is None:
        # Signed over something else, or over a challenge already used or expired.
        raise BaocaoError("trust.error.challenge_not_signed")
    verdict = verify(challenge_bytes(challenge), proof, settings=settings)
    problems = [p for p in verdict.problems if p.blocking]
    if problems:
        # A missing or stale CRL does not stop a registration; the signature check will say it.
        raise BaocaoError(problems[0].key, **problem_params(problems[0]))
    cert = parsed.signer_certificate
    if identity_match(cert, user.identity_number) == "mismatch":
        raise BaocaoError("trust.error.identity_mismatch", found=", ".join(certificate_identity_numbers(cert)),
                          recorded=user.identity_number)
    fp = fingerprint(cert)
    with transaction():
        spent = (CertificateChallenge.update(used_at=utcnow())
                 .where((CertificateChallenge.id == challenge.id) & CertificateChallenge.used_at.is_null())
                 .execute())
        if spent != 1:  # the same proof sent twice at once: only one registers
            raise BaocaoError("trust.error.challenge_not_signed")
        taken = (UserCertificate.select()
                 .where(UserCertificate.fingerprint == fp, UserCertificate.active == True)  # noqa: E712
                 .first())
        if taken is not None:
            raise BaocaoError("trust.error.certificate_registered" if taken.user_id == user.id
                              else "trust.error.certificate_other_account")
        row = UserCertificate.create(
            user=user, der=cert.public_bytes(serialization.Encoding.DER), fingerprint=fp,
            subject=cert.subject.rfc4514_string(), name=common_name(cert.subject)[:255], serial=serial_hex(cert),
            issuer=cert.issuer.rfc4514_string(), not_before=naive_utc(cert.not_valid_before_utc),
            not_after=naive_utc(cert.not_valid_after_utc), added_by=access.actor)
        # Its distribution point publishes the issuer's CRL: fetch it from now on.
        add_sources_from(cert)
        audit.record("trust.certificate_registered", actor=access.actor, unit=user.unit_id,
                     object_type="user", object_id=user.id,
                     details={"certificate": row.id, "fingerprint": fp, "subject": row.subject,
                              "proof": "challenge", "identity": identity_match(cert, user.identity_number)})
    return row


def set_identity_number(access, user_id: int, value: str) -> User:
    """A unit administrator records (or clears) a person's CCCD/CMND number or an organisation's MST."""
    from core.accounts.access import check_manages_unit

    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound()
    check_manages_unit(access, user.unit_id)
    value = re.sub(r"\s+", "", value or "")
    if value and not IDENTITY_NUMBER.match(value):
        raise BaocaoError("trust.error.identity_number_format")
    with transaction():
        if (user.identity_number or "") != value:
            User.update(identity_number=value or None).where(User.id == user.id).execute()
            audit.record("trust.identity_number_set", actor=access.actor, unit=user.unit_id,
                         object_type="user", object_id=user.id, details={"set": bool(value)})
    user.identity_number = value or None
    return user


def deactivate(access, certificate_id: int) -> None:
    """Stop accepting signatures made with this certificate for its account."""
    with transaction():
        row = UserCertificate.get_or_none(UserCertificate.id == certificate_id)
        if row is None or not _may_manage(access, row.user):
            raise NotFound()
        if not row.active:
            return
        row.active = False
        row.deactivated_at = utcnow()
        row.deactivated_by = access.actor
        row.save()
        audit.record("trust.certificate_deactivated", actor=access.actor, unit=row.user.unit_id,
                     object_type="user", object_id=row.user_id,
                     details={"certificate": row.id, "fingerprint": row.fingerprint})


def certificates_of(user_id: int) -> list[UserCertificate]:
    """Every certificate the account ever registered, active first, newest first."""
    return list(UserCertificate.select().where(UserCertificate.user == user_id)
                .order_by(UserCertificate.active.desc(), UserCertificate.added_at.desc(), UserCertificate.id.desc()))


def active_certificates(user_id: int) -> list[x509.Certificate]:
    """The certificates a signature by this account may be made with (``verification.verify(expected=…)``)."""
    rows = (UserCertificate.select().where(UserCertificate.user == user_id, UserCertificate.active == True)  # noqa: E712
            .order_by(UserCertificate.id))
    return [row.certificate() for row in rows]

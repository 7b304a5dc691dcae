"""The signing certificates people register for their own account.

A signature on a report is bound to the account that submits it (security.md SIG-06): the signer's
certificate must be one of the submitter's active registered certificates. A person registers their
own certificate (a .cer file: only the public certificate, never a key) after re-entering their
password; the certificate must chain to a pinned anchor, be valid now and be fit for signing, and it
cannot be registered to two accounts at once. A unit administrator over the person's unit may
deactivate it (a lost token, a person who left). Rows are deactivated, never deleted: the evidence of
old signatures keeps its meaning.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, TextField

from core import audit
from core.access import ADMIN_CODE
from core.db import CoreModel, transaction
from core.errors import BaocaoError, NotFound
from core.i18n import VIETNAM_TZ, format_date
from core.models import User, utcnow
from core.trust import add_sources_from, common_name, fingerprint, load_certificate, naive_utc
from core.units import ancestor_ids


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


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def problem_params(problem) -> dict:
    """The problem's parameters for a one-line error: dates as dd/mm/yyyy, read the same in vi and en."""
    from core.verification import DATE_PARAMS

    return {k: (format_date(dt.datetime.fromisoformat(v).astimezone(VIETNAM_TZ), "vi") if k in DATE_PARAMS and isinstance(v, str) else v)
            for k, v in problem.params.items()}


def _may_manage(access, user: User) -> bool:
    actor = access.actor
    if actor is not None and actor.id == user.id:
        return True
    return access.allowed(ADMIN_CODE, ancestor_ids(user.unit_id))


def register(access, user_id: int, data: bytes) -> UserCertificate:
    """Register a signing certificate (PEM or DER) for ``user_id``: themself, or their unit administrator."""
    from core.verification import certificate_problems

    user = User.get_or_none(User.id == user_id)
    if user is None or not _may_manage(access, user):
        raise NotFound()
    cert = load_certificate(data)
    problems = [p for p in certificate_problems(cert) if p.blocking]
    if problems:
        # A missing or stale CRL does not stop a registration; the signature check will say it.
        raise BaocaoError(problems[0].key, **problem_params(problems[0]))
    fp = fingerprint(cert)
    with transaction():
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
                     details={"certificate": row.id, "fingerprint": fp, "subject": row.subject})
    return row


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

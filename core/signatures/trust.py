"""Trust anchors and certificate revocation lists: what signature verification relies on.

An administrator (``core.trust.admin``) pins the CA certificates baocao trusts — the national root
CA and the intermediate CAs of approved certification service providers, or the government CA
(security.md SIG-02). A certificate carried inside a signature is never trusted as an anchor: every
CA on a signer's path must be pinned here. Anchors are deactivated, not deleted, so old evidence
keeps naming them.

CRLs are stored whole and never deleted: a verification's evidence names the CRLs it used by their
SHA-256, and re-verification years later reads them back from this table. The newest CRL of an
issuer (by this-update) is the current one. A CRL enters the table only when it is well-formed and
signed by a pinned CA (SIG-05). CRLs come from an upload or from CRL sources — URLs fetched by
``refresh_crls`` hourly (a huey task) and on the administrator's "Cập nhật CRL ngay". Sources are
added by hand or taken from the CRL distribution points of the certificates pinned or registered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, TextField

from core import audit
from core.signatures.cms import readable
from core.db import CoreModel, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import User, utcnow

log = logging.getLogger("baocao.trust")

PERMISSION = "core.trust.admin"
KINDS = ("root", "intermediate")
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # certificates are ~2 KB; large national CRLs reach a few MB
MAX_CRL_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 15
# nextUpdate is optional in a CRL (RFC 5280 §5.1.2.5); without it the CRL is current for this long
# after its thisUpdate — a day, the longest interval Vietnamese CAs publish at — never for ever.
CRL_LIFETIME_WITHOUT_NEXT_UPDATE = dt.timedelta(hours=24)


class TrustAnchor(CoreModel):
    der = BlobField()
    fingerprint = CharField(max_length=64, unique=True)  # SHA-256 of the DER, hex
    subject = TextField()
    kind = CharField(max_length=12)  # root | intermediate
    name = CharField(max_length=255)
    not_after = DateTimeField()
    active = BooleanField(default=True)
    added_at = DateTimeField(default=utcnow)
    added_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    deactivated_at = DateTimeField(null=True)

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.der))


class Crl(CoreModel):
    issuer_fingerprint = CharField(max_length=64, index=True)  # the pinned anchor that signed it
    issuer = TextField()
    der = BlobField()
    sha256 = CharField(max_length=64, unique=True)
    this_update = DateTimeField()
    next_update = DateTimeField(null=True)
    fetched_at = DateTimeField(default=utcnow)
    source = CharField(max_length=500)  # "upload" or the URL it came from

    def load(self) -> x509.CertificateRevocationList:
        return x509.load_der_x509_crl(bytes(self.der))

    def is_fresh(self, at: dt.datetime | None = None) -> bool:
        at = at or utcnow()
        return self.this_update <= at <= crl_current_until(self.this_update, self.next_update)


class CrlSource(CoreModel):
    url = CharField(max_length=500, unique=True)
    anchor = ForeignKeyField(TrustAnchor, null=True, on_delete="SET NULL")  # the CRL's expected issuer
    origin = CharField(max_length=20, default="manual")  # manual | certificate
    active = BooleanField(default=True)
    added_at = DateTimeField(default=utcnow)
    last_attempt_at = DateTimeField(null=True)
    last_error = CharField(max_length=100, default="")  # a message key; "" after a success


def crl_current_until(this_update: dt.datetime, next_update: dt.datetime | None) -> dt.datetime:
    """Until when a CRL is current: its nextUpdate, or a bounded time after thisUpdate without one."""
    return next_update if next_update is not None else this_update + CRL_LIFETIME_WITHOUT_NEXT_UPDATE


def unusable_crl_reason(crl: x509.CertificateRevocationList) -> str | None:
    """The OID of a critical CRL extension baocao cannot process (RFC 5280 §5.2: such a CRL must not
    be used), or None. Delta and partitioned CRLs are refused separately (``_complete``)."""
    for extension in crl.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            return extension.oid.dotted_string
    return None


def _unusable_entry_reason(crl: x509.CertificateRevocationList) -> str | None:
    # RFC 5280 §5.3: the same for a critical entry extension. Checked once, when the CRL is stored.
    for entry in crl:
        for extension in entry.extensions:
            if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
                return extension.oid.dotted_string
    return None


# -- reading certificates ------------------------------------------------------------------------


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes (a .cer file is either)."""
    if not data:
        raise BaocaoError("trust.error.no_file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise BaocaoError("trust.error.file_too_large")
    try:
        if b"-----BEGIN" in data[:2048]:
            return readable(x509.load_pem_x509_certificate(data))
        return readable(x509.load_der_x509_certificate(data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BaocaoError("trust.error.not_a_certificate") from exc


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    if not data:
        raise BaocaoError("trust.error.no_file")
    if len(data) > MAX_CRL_BYTES:
        raise BaocaoError("trust.error.file_too_large")
    try:
        if b"-----BEGIN" in data[:2048]:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise BaocaoError("trust.error.not_a_crl") from exc


def common_name(name: x509.Name) -> str:
    for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME):
        values = name.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return name.rfc4514_string()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def crl_urls(cert: x509.Certificate) -> list[str]:
    """http(s) URLs in the certificate's CRL distribution points."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and _fetchable(name.value):
                urls.append(name.value)
    return urls


def _fetchable(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(url) <= 500


def _check_admin(access) -> None:
    if not access.allowed(PERMISSION):
        raise Forbidden()


# -- anchors -------------------------------------------------------------------------------------


def active_anchors() -> list[TrustAnchor]:
    return list(TrustAnchor.select().where(TrustAnchor.active == True).order_by(TrustAnchor.id))  # noqa: E712


def add_anchor(access, data: bytes, *, name: str = "") -> TrustAnchor:
    """Pin a CA certificate (PEM or DER). Self-signed = root; otherwise intermediate."""
    _check_admin(access)
    cert = load_certificate(data)
    if not is_ca(cert):
        raise BaocaoError("trust.error.not_ca")
    fp = fingerprint(cert)
    self_signed = cert.issuer == cert.subject
    if self_signed:
        try:
            cert.verify_directly_issued_by(cert)
        except Exception as exc:  # InvalidSignature, unsupported algorithm
            raise BaocaoError("trust.error.bad_self_signature") from exc
    with transaction():
        if TrustAnchor.get_or_none(TrustAnchor.fingerprint == fp) is not None:
            raise BaocaoError("trust.error.anchor_exists")
        anchor = TrustAnchor.create(
            der=cert.public_bytes(serialization.Encoding.DER), fingerprint=fp,
            subject=cert.subject.rfc4514_string(), kind="root" if self_signed else "intermediate",
            name=(name or "").strip()[:255] or common_name(cert.subject),
            not_after=naive_utc(cert.not_valid_after_utc), added_by=access.actor)
        # The anchor's own distribution points publish its issuer's CRL (covering this anchor).
        add_sources_from(cert)
        audit.record("trust.anchor_added", actor=access.actor, object_type="trust_anchor", object_id=anchor.id,
                     details={"fingerprint": fp, "subject": anchor.subject, "kind": anchor.kind})
    return anchor


def deactivate_anchor(access, anchor_id: int) -> TrustAnchor:
    _check_admin(access)
    with transaction():
        anchor = TrustAnchor.get_or_none(TrustAnchor.id == anchor_id)
        if anchor is None:
            raise NotFound()
        if anchor.active:
            anchor.active = False
            anchor.deactivated_at = utcnow()
            anchor.save()
            audit.record("trust.anchor_deactivated", actor=access.actor, object_type="trust_anchor",
                         object_id=anchor.id, details={"fingerprint": anchor.fingerprint})
    return anchor


# -- CRLs ----------------------------------------------------------------------------------------


def _complete(crl: x509.CertificateRevocationList) -> bool:
    """A full CRL for every certificate of its issuer. Delta CRLs and partitioned CRLs (an issuing
    distribution point limited to some certificates or reasons) would, as the "newest" CRL, hide
    revocations listed elsewhere, so they are refused."""
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return False
    except x509.ExtensionNotFound:
        pass
    try:
        point = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    return not (point.only_contains_user_certs or point.only_contains_ca_certs or point.only_some_reasons
                or point.indirect_crl or point.only_contains_attribute_certs)


def issuing_anchors(crl: x509.CertificateRevocationList) -> list[TrustAnchor]:
    """The active pinned CAs whose name and key match this CRL, the one to file it under first: a CA
    re-certified under the same name and key is pinned twice, and the CRL belongs to its newest
    certificate that is valid now (else the newest)."""
    now = dt.datetime.now(dt.timezone.utc)
    matching = []
    for anchor in active_anchors():
        cert = anchor.certificate()
        if cert.subject == crl.issuer and crl.is_signature_valid(cert.public_key()):
            valid_now = cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
            matching.append((not valid_now, -cert.not_valid_after_utc.timestamp(), -anchor.id, anchor))
    return [item[-1] for item in sorted(matching, key=lambda item: item[:3])]


def issuing_anchor(crl: x509.CertificateRevocationList) -> TrustAnchor | None:
    """The pinned CA to file this CRL under (None when no active one matches its name and key)."""
    anchors = issuing_anchors(crl)
    return anchors[0] if anchors else None


def _public_key_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def same_ca_fingerprints(cert: x509.Certificate) -> list[str]:
    """The fingerprints of every pinned certificate (active or not) of this CA: same name, same key.
    A CRL signed by the CA is its CRL whichever of them it was filed under."""
    key = _public_key_der(cert)
    found = [fingerprint(cert)]
    for anchor in TrustAnchor.select().where(TrustAnchor.subject == cert.subject.rfc4514_string()):
        if anchor.fingerprint not in found and _public_key_der(anchor.certificate()) == key:
            found.append(anchor.fingerprint)
    return found


def current_crl(issuer_fingerprint: str | list[str]) -> Crl | None:
    """The newest stored CRL filed under this anchor (or any of these anchors of one CA)."""
    fingerprints = [issuer_fingerprint] if isinstance(issuer_fingerprint, str) else list(issuer_fingerprint)
    return (Crl.select().where(Crl.issuer_fingerprint.in_(fingerprints))
            .order_by(Crl.this_update.desc(), Crl.id.desc()).first())


def store_crl(data: bytes, source: str, *, expected: TrustAnchor | None = None) -> tuple[Crl, bool]:
    """Validate and keep a CRL; returns (row, created). An identical CRL is not stored twice."""
    crl = load_crl(data)
    if not _complete(crl):
        raise BaocaoError("trust.error.crl_partial")
    unusable = unusable_crl_reason(crl) or _unusable_entry_reason(crl)
    if unusable is not None:
        raise BaocaoError("trust.error.crl_unknown_critical", oid=unusable)
    anchors = issuing_anchors(crl)
    # A source bound to one certificate of a CA also accepts the CRL for its re-certified successor.
    if not anchors or (expected is not None and expected.id not in {a.id for a in anchors}):
        raise BaocaoError("trust.error.crl_untrusted")
    anchor = anchors[0]
    der = crl.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest()
    with transaction():
        existing = Crl.get_or_none(Crl.sha256 == digest)
        if existing is not None:
            if existing.issuer_fingerprint != anchor.fingerprint:
                # Uploaded again after the CA was re-certified: filed under the current certificate.
                existing.issuer_fingerprint = anchor.fingerprint
                existing.save()
            return existing, False
        row = Crl.create(issuer_fingerprint=anchor.fingerprint, issuer=crl.issuer.rfc4514_string(), der=der,
                         sha256=digest, this_update=naive_utc(crl.last_update_utc),
                         next_update=naive_utc(crl.next_update_utc), source=source[:500])
    return row, True


def upload_crl(access, data: bytes) -> Crl:
    _check_admin(access)
    with transaction():
        row, created = store_crl(data, "upload")
        audit.record("trust.crl_uploaded", actor=access.actor, object_type="crl", object_id=row.id,
                     details={"sha256": row.sha256, "issuer": row.issuer, "new": created})
    return row


def add_source(access, url: str, anchor_id: int | None = None) -> CrlSource:
    _check_admin(access)
    url = (url or "").strip()
    if not _fetchable(url):
        raise BaocaoError("trust.error.bad_url")
    with transaction():
        anchor = None
        if anchor_id:
            anchor = TrustAnchor.get_or_none(TrustAnchor.id == anchor_id)
            if anchor is None:
                raise NotFound()
        source = CrlSource.get_or_none(CrlSource.url == url)
        if source is None:
            source = CrlSource.create(url=url, anchor=anchor, origin="manual")
        else:
            source.active, source.anchor = True, anchor or source.anchor
            source.save()
        audit.record("trust.crl_source_added", actor=access.actor, object_type="crl_source", object_id=source.id,
                     details={"url": url})
    return source


def deactivate_source(access, source_id: int) -> CrlSource:
    _check_admin(access)
    with transaction():
        source = CrlSource.get_or_none(CrlSource.id == source_id)
        if source is None:
            raise NotFound()
        source.active = False
        source.save()
        audit.record("trust.crl_source_removed", actor=access.actor, object_type="crl_source",
                     object_id=source.id, details={"url": source.url})
    return source


def add_sources_from(cert: x509.Certificate) -> None:
    """Remember the certificate's CRL distribution points as sources (no audit: part of an add)."""
    for url in crl_urls(cert):
        if CrlSource.get_or_none(CrlSource.url == url) is None:
            CrlSource.create(url=url, origin="certificate")


@dataclass
class RefreshResult:
    fetched: int = 0  # new CRLs stored
    unchanged: int = 0
    failed: int = 0


def _opener() -> urllib.request.OpenerDirector:
    # Only http and https, redirects included: the default opener would also follow a redirect to
    # ftp:// and open file:// and data: addresses.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "baocao-crl"})
    with _opener().open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        body = response.read(MAX_CRL_BYTES + 1)
    if len(body) > MAX_CRL_BYTES:
        raise BaocaoError("trust.error.file_too_large")
    return body


def refresh_crls(access=None) -> RefreshResult:
    """Fetch every active source; keep only CRLs signed by a pinned CA. ``access`` None = the job."""
    if access is not None:
        _check_admin(access)
    result = RefreshResult()
    for source in list(CrlSource.select().where(CrlSource.active == True).order_by(CrlSource.id)):  # noqa: E712
        error = ""
        try:
            if not _fetchable(source.url):
                raise BaocaoError("trust.error.bad_url")
            body = _fetch(source.url)
            _, created = store_crl(body, source.url, expected=source.anchor)
            if created:
                result.fetched += 1
            else:
                result.unchanged += 1
        except BaocaoError as exc:
            error = exc.key
        except (OSError, urllib.error.URLError, ValueError) as exc:
            log.warning("CRL fetch from %s failed: %s", source.url, exc)
            error = "trust.error.fetch_failed"
        if error:
            result.failed += 1
        with transaction():
            CrlSource.update(last_attempt_at=utcnow(), last_error=error).where(CrlSource.id == source.id).execute()
    with transaction():
        audit.record("trust.crl_refreshed", actor=getattr(access, "actor", None), object_type="crl",
                     details={"fetched": result.fetched, "unchanged": result.unchanged, "failed": result.failed})
    return result


# -- the administration screen's view ------------------------------------------------------------


@dataclass
class IssuerCrl:
    anchor: TrustAnchor
    crl: Crl | None

    @property
    def state(self) -> str:
        """"fresh" | "stale" | "missing"."""
        if self.crl is None:
            return "missing"
        return "fresh" if self.crl.is_fresh() else "stale"


def overview() -> tuple[list[TrustAnchor], list[IssuerCrl], list[CrlSource]]:
    anchors = list(TrustAnchor.select().order_by(TrustAnchor.active.desc(), TrustAnchor.kind.desc(),
                                                  TrustAnchor.name))
    crls = [IssuerCrl(a, current_crl(same_ca_fingerprints(a.certificate()))) for a in anchors if a.active]
    sources = list(CrlSource.select().where(CrlSource.active == True).order_by(CrlSource.url))  # noqa: E712
    return anchors, crls, sources

"""Demo signatures: a throw-away certification authority, so that ``baocao demo`` shows signing.

``seed_demo_pki`` makes a root and an intermediate CA, clearly named "Demo — không dùng thật", pins
them as trust anchors with a fresh CRL each (valid a year: the CA keys are dropped once the demo is
seeded, so the CRLs cannot be renewed), issues a personal signing certificate for each demo account
and registers it for that account, and exports each as a PKCS#12 file into a folder beside the demo
database (``<db>.demo-certs/<username>.p12``), all under one password, printed by ``baocao demo``
and written in the folder's README.txt. It also installs the demo commune's organisation seal and
gives its officer the clerk role (văn thư) too, so the seal can be shown without a fourth account.

Nothing here is trusted outside the demo database: the anchors are pinned only there.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import clock

ROOT_NAME = "CA gốc Demo — không dùng thật"
INTERMEDIATE_NAME = "CA Demo cấp dưới — không dùng thật"
CLERK = "phuongdonghoi"  # also the commune's văn thư in the demo
YEAR = dt.timedelta(days=365)


def _name(common_name: str, organisation: str, *extra) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name), *extra])


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ku(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _issue(subject: x509.Name, key, issuer_name: x509.Name, issuer_key, *, ca: bool, now: dt.datetime,
           years: int) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + years * YEAR)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca and issuer_key is not key else None),
                              critical=True)
               .add_extension(_ku(ca=ca), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                                ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(issuer: x509.Certificate, key, now: dt.datetime) -> bytes:
    crl = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
           .last_update(now - dt.timedelta(hours=1)).next_update(now + YEAR)
           .add_extension(x509.CRLNumber(1), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
           .sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.DER)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class DemoCA:
    """The demo's issuing CA, handed to the plugins' ``seed_demo`` (argument ``demo_ca``) while the
    demo is seeded, so a plugin can give its demo counterpart a certificate the demo trusts (the
    national link's test server, playing the Government's system). Gone with the seeding process."""

    certificate: x509.Certificate
    key: object = field(repr=False)
    chain: tuple = ()

    def issue(self, common_name: str, organisation: str, *, uid: str = "") -> tuple[bytes, bytes, bytes]:
        """A signing certificate for ``common_name`` of ``organisation``, valid two years: its
        certificate, its private key (PKCS#8, unencrypted) and the chain above it, each in PEM."""
        key = _key()
        extra = [x509.NameAttribute(NameOID.USER_ID, uid)] if uid else []
        cert = _issue(_name(common_name, organisation, *extra), key, self.certificate.subject, self.key, ca=False,
                      now=clock.now_utc().replace(microsecond=0), years=2)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return _pem(cert), key_pem, b"".join(_pem(c) for c in (self.certificate, *self.chain))


def _install_demo_seal(admin, unit, intermediate_name, int_key, chain, password: str, now, settings) -> None:
    """An organisation seal for ``unit`` (its văn thư applies it; it also seals what the province
    sends to the national system)."""
    from core.signatures import signing

    seal_key = _key()
    seal_subject = _name(unit.name, unit.name, x509.NameAttribute(NameOID.USER_ID, f"MST:DEMO{unit.code}"))
    seal_cert = _issue(seal_subject, seal_key, intermediate_name, int_key, ca=False, now=now, years=2)
    seal_p12 = pkcs12.serialize_key_and_certificates(b"con-dau", seal_key, seal_cert, chain,
                                                     serialization.BestAvailableEncryption(password.encode()))
    signing.install_seal(admin, unit.id, seal_p12, password, settings=settings)


def seed_demo_pki(settings, folder: Path | None = None) -> tuple[str, DemoCA]:
    """Pin the demo CAs, give every demo account a certificate (and a .p12 file), install the
    commune's seal for its clerk and the province's seal. The .p12 files go to ``folder`` (``baocao
    demo`` chooses it; None: no files, as for the bench). Returns the files' password (``baocao demo``
    prints it with the logins) and the issuing CA, for the plugins' demo seeds. Needs the demo
    accounts."""
    from core.signatures import certificates
    from core.signatures import signing
    from core.signatures import trust
    from core.accounts.access import Grant, Role
    from core.db import transaction
    from core.models import Unit, User
    from core.accounts.permissions import core_access

    now = clock.now_utc().replace(microsecond=0)
    admin = core_access(User.get(User.username == "quantri"))
    root_key, int_key = _key(), _key()
    root_name = _name(ROOT_NAME, "Demo — không dùng thật")
    root = _issue(root_name, root_key, root_name, root_key, ca=True, now=now, years=10)
    intermediate_name = _name(INTERMEDIATE_NAME, "Demo — không dùng thật")
    intermediate = _issue(intermediate_name, int_key, root_name, root_key, ca=True, now=now, years=5)
    trust.add_anchor(admin, _pem(root), name=ROOT_NAME)
    trust.add_anchor(admin, _pem(intermediate), name=INTERMEDIATE_NAME)
    trust.upload_crl(admin, _crl(root, root_key, now))
    trust.upload_crl(admin, _crl(intermediate, int_key, now))

    clerk = User.get(User.username == CLERK)
    unit = clerk.unit
    with transaction():
        Grant.create(user=clerk, role=Role.get(Role.code == "clerk"), unit=unit)

    file_password = secrets.token_urlsafe(9)
    files = {}
    for n, user in enumerate(User.select().order_by(User.id), start=1):
        key = _key()
        subject = _name(user.full_name, user.unit.name,
                        x509.NameAttribute(NameOID.USER_ID, f"CCCD:DEMO{n:08d}"))
        cert = _issue(subject, key, intermediate_name, int_key, ca=False, now=now, years=2)
        certificates.register_with_key(core_access(user), user.id, cert, key, [intermediate, root])
        files[user.username] = pkcs12.serialize_key_and_certificates(
            user.username.encode(), key, cert, [intermediate, root],
            serialization.BestAvailableEncryption(file_password.encode()))

    _install_demo_seal(admin, unit, intermediate_name, int_key, [intermediate, root], file_password, now, settings)
    province = Unit.get(Unit.parent.is_null() & Unit.valid_to.is_null())
    _install_demo_seal(admin, province, intermediate_name, int_key, [intermediate, root], file_password, now, settings)

    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / f"{name}.p12").write_bytes(data)
        (folder / "README.txt").write_text(_readme(file_password, sorted(files)), encoding="utf-8")
    return file_password, DemoCA(intermediate, int_key, (root,))


def _readme(password: str, usernames: list[str]) -> str:
    return (
        "CHỨNG THƯ SỐ DEMO — KHÔNG DÙNG THẬT\n"
        "===================================\n\n"
        f"Mỗi tài khoản demo có một tệp chữ ký số <tên đăng nhập>.p12 trong thư mục này.\n"
        f"Mật khẩu chung của các tệp: {password}\n\n"
        "Cách ký: mở báo cáo, mục \"Ký số và gửi\", chọn \"Tệp chữ ký số (.p12)\", chọn tệp của\n"
        "tài khoản đang đăng nhập và nhập mật khẩu trên.\n"
        "Tài khoản phuongdonghoi cũng là văn thư: có thể đóng con dấu số của Phường Đồng Hới\n"
        "(đã cài sẵn), mục \"Con dấu số của cơ quan (văn thư)\".\n\n"
        "Các chứng thư này do \"" + ROOT_NAME + "\" cấp, chỉ được tin cậy trong cơ sở dữ liệu\n"
        "demo này.\n\n"
        "DEMO CERTIFICATES — NOT FOR REAL USE. Each demo account has <username>.p12 here,\n"
        f"all with the password above. Files: {', '.join(u + '.p12' for u in usernames)}\n"
    )

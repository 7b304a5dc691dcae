"""Signing and verifying documents other than reports — a plugin's packets to another system — with
the same keys and the same checks as reports.

``seal_sign`` signs bytes with the unit's organisation seal (con dấu số, installed by the unit's
administrator on the unit's page) as a detached CMS, exactly as the seal signs a report.
``verify_document`` is the verification a report's signature gets on receipt
(``core.signatures.verification.verify``: trust path to the pinned anchors, validity, key usage,
revocation, signing time) and answers its ``Verdict``: ``status`` "valid", "invalid" or
"indeterminate", the reasons in both languages, the signer. Neither writes to the database.
"""

from __future__ import annotations

import datetime as dt

from core.errors import BaocaoError
from core.signatures.cms import sign_detached
from core.signatures.signing import seal_private_key, active_seal
from core.signatures.verification import Verdict, verify


def seal_sign(unit_id: int, data: bytes, settings) -> bytes:
    """A detached CMS signature (DER) over ``data`` by the unit's active seal. Raises
    ``BaocaoError("signing.error.no_seal")`` when the unit has none installed, and
    ``signing.error.seal_key_unreadable`` when the instance's secret key changed since."""
    seal = active_seal(unit_id)
    if seal is None:
        raise BaocaoError("signing.error.no_seal")
    return sign_detached(data, seal.certificate(), seal_private_key(seal, settings), seal.chain_certificates())


def seal_fingerprint(unit_id: int) -> str | None:
    """The SHA-256 fingerprint (hex) of the unit's active seal certificate, or None."""
    seal = active_seal(unit_id)
    return seal.fingerprint if seal else None


def verify_document(data: bytes, cms_der: bytes, *, expected=None, at: dt.datetime | None = None,
                    settings=None) -> Verdict:
    """Verify a detached CMS over ``data`` as a report's signature is verified on receipt.
    ``expected``: certificates or SHA-256 fingerprints the signer must be one of (None: any trusted
    signer). ``at``: the receipt time (default now). Never raises for a bad signature."""
    return verify(data, cms_der, expected=expected, at=at, settings=settings)

"""An uploaded file carried from a preview page to its confirmation, unchanged and unstaged.

The preview puts the file's bytes (base64, optionally zlib-compressed) in a hidden field together
with an HMAC made with the application secret over the purpose, the user, the time, the file name and
the bytes. The confirmation checks the HMAC before decoding, so nothing is stored on the server, any
worker can answer, and a file edited in the browser, another user's preview or another screen's is
refused. Used by the unit and the indicator imports.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib


def signature(secret: str, purpose: str, user_id: int, filename: str, payload: str, issued: int = 0) -> str:
    message = "\n".join((purpose, str(user_id), str(issued), filename, payload)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def encode(content: bytes, *, compress: bool = False) -> str:
    return base64.b64encode(zlib.compress(content, 9) if compress else content).decode("ascii")


def open_payload(secret: str, purpose: str, user_id: int, filename: str, payload: str, given: str, *,
                 issued: int = 0, compressed: bool = False, max_bytes: int | None = None) -> bytes | None:
    """The file's bytes when the signature holds and the payload decodes; None otherwise."""
    expected = signature(secret, purpose, user_id, filename, payload, issued)
    # As bytes: compare_digest refuses a str with non-ASCII characters (TypeError, a 500), and the
    # signature comes back from a form field anyone can type into.
    if not hmac.compare_digest(expected.encode(), str(given).encode("utf-8", "surrogatepass")):
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
        return zlib.decompress(raw, bufsize=max_bytes or zlib.DEF_BUF_SIZE) if compressed else raw
    except (binascii.Error, zlib.error, ValueError):
        return None

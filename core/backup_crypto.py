"""The backup key and the encrypted container a backup archive is written in (security.md CRY-03).

The key is 32 random bytes in a file of its own (``backup_key_file``), written as 64 hex digits by
``baocao backup keygen`` (32 raw bytes are read too). It must live apart from the backups: whoever
holds both reads everything.

Container, version 1 — AES-256-GCM over the plaintext cut in chunks, so an archive of any size is
written and read in constant memory (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
Vizár, as age and Tink use it)::

    header   magic "BCBAK\\r\\n\\x1a" (8) | version 1 (1) | chunk size, big-endian (4)
             | key id (8) | nonce prefix, random (8)                              = 29 bytes
    chunks   AES-256-GCM(key, nonce = prefix | counter (4, big-endian),
                         aad = header | last flag (1: 0x01 on the last chunk, else 0x00))
             each chunk holds ``chunk size`` plaintext bytes (the last one 0 … chunk size),
             followed by its 16-byte tag

The counter in the nonce fixes each chunk's place (chunks cannot be reordered or dropped inside),
the flag in the authenticated data marks the end (an archive cut at a chunk boundary fails: its
new last chunk was sealed as "not last"), and the header is authenticated with every chunk. The key
id (HMAC-SHA256 of a label under the key, 8 bytes) only lets the reader say "another key" rather
than "damaged"; it reveals nothing of the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import BaocaoError

MAGIC = b"BCBAK\r\n\x1a"  # the CR LF and ^Z catch a transfer that mangled line ends, like PNG's
VERSION = 1
CHUNK_SIZE = 1 << 20
TAG_SIZE = 16
HEADER = struct.Struct(">8sBI8s8s")
MAX_CHUNK_SIZE = 1 << 26  # a header asking more is not ours (or altered): refuse before allocating
KEY_SIZE = 32


def key_id(key: bytes) -> bytes:
    return hmac.new(key, b"baocao backup key id", hashlib.sha256).digest()[:8]


def read_key(path: str | os.PathLike) -> bytes:
    """The key in ``path``: 64 hex digits (spaces and line ends ignored) or 32 raw bytes."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BaocaoError("backup.error.key_unreadable", path=str(path), reason=exc.strerror or str(exc)) from None
    text = b"".join(raw.split())
    if len(text) == 2 * KEY_SIZE:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(raw) == KEY_SIZE:
        return raw
    raise BaocaoError("backup.error.key_format", path=str(path), size=KEY_SIZE)


def write_new_key(path: str | os.PathLike) -> Path:
    """A new random key in hex, readable by its owner only; an existing file is never replaced."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BaocaoError("backup.error.key_exists", path=str(target)) from None
    except OSError as exc:
        raise BaocaoError("backup.error.key_unreadable", path=str(target), reason=exc.strerror or str(exc)) from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_bytes(KEY_SIZE).hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return target


class EncryptingWriter:
    """A binary file-like sink: what is written is sealed chunk by chunk into ``out``."""

    def __init__(self, out, key: bytes, chunk_size: int = CHUNK_SIZE):
        self._out, self._aead, self._size = out, AESGCM(key), chunk_size
        self._header = HEADER.pack(MAGIC, VERSION, chunk_size, key_id(key), secrets.token_bytes(8))
        self._prefix = self._header[-8:]
        self._buffer = bytearray()
        self._counter = 0
        self._closed = False
        out.write(self._header)

    def _seal(self, data: bytes, last: bool) -> None:
        nonce = self._prefix + struct.pack(">I", self._counter)
        self._out.write(self._aead.encrypt(nonce, data, self._header + (b"\x01" if last else b"\x00")))
        self._counter += 1
        if self._counter >= 1 << 32:  # the nonce would repeat (4 PiB at 1 MiB a chunk)
            raise BaocaoError("backup.error.too_big")

    def write(self, data) -> int:
        self._buffer += data
        # Keep at least one byte back: the last chunk is sealed by close(), never empty unless all is.
        while len(self._buffer) > self._size:
            self._seal(bytes(self._buffer[:self._size]), last=False)
            del self._buffer[:self._size]
        return len(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()


class DecryptingReader:
    """A binary file-like source over an archive: ``read`` returns authenticated plaintext only,
    and raises ``BaocaoError`` when a chunk was altered, the archive cut short or extended, or the
    key is another one. The end of the plaintext is reached only after the last chunk verified."""

    def __init__(self, source, key: bytes):
        self._in = source
        header = source.read(HEADER.size)
        if len(header) < HEADER.size or header[:8] != MAGIC:
            raise BaocaoError("backup.error.not_archive")
        _, version, size, their_id, prefix = HEADER.unpack(header)
        if version != VERSION:
            raise BaocaoError("backup.error.version", version=version)
        if not 0 < size <= MAX_CHUNK_SIZE:
            raise BaocaoError("backup.error.damaged", where="header")
        if not hmac.compare_digest(their_id, key_id(key)):
            raise BaocaoError("backup.error.wrong_key", archive=their_id.hex(), key=key_id(key).hex())
        self._header, self._prefix, self._sealed_size = header, prefix, size + TAG_SIZE
        self._aead = AESGCM(key)
        self._counter = 0
        self._next = source.read(self._sealed_size)
        self._plain = b""
        self._done = False

    def _open_next(self) -> None:
        sealed = self._next
        self._next = self._in.read(self._sealed_size)
        last = not self._next
        if len(sealed) < TAG_SIZE or (not last and len(sealed) != self._sealed_size):
            raise BaocaoError("backup.error.damaged", where=f"chunk {self._counter}")
        nonce = self._prefix + struct.pack(">I", self._counter)
        try:
            self._plain = self._aead.decrypt(nonce, sealed, self._header + (b"\x01" if last else b"\x00"))
        except InvalidTag:
            raise BaocaoError("backup.error.damaged", where=f"chunk {self._counter}") from None
        self._counter += 1
        self._done = last

    def read(self, n: int = -1) -> bytes:
        parts, wanted = [], n if n is not None and n >= 0 else None
        while wanted is None or wanted > 0:
            if not self._plain:
                if self._done:
                    break
                self._open_next()
                continue
            take = self._plain if wanted is None else self._plain[:wanted]
            self._plain = self._plain[len(take):]
            parts.append(take)
            if wanted is not None:
                wanted -= len(take)
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end, so a cut or extended archive is noticed even if nothing else reads on."""
        while self.read(CHUNK_SIZE):
            pass

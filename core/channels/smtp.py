"""The SMTP channel: e-mail from the outbox (core.outbox), the first built-in channel.

A message's payload is ``{"to": address, "subject": text, "body": text}`` (core.mailer queues it).
Each message is sent on its own connection: notifications are few, and a failure then concerns
one message. A server that cannot be reached, or refuses the login, is down for every message:
``Unavailable`` makes the outbox record that error on the rest of the batch at once instead of
waiting ``SMTP_TIMEOUT`` for each. The outbox message's idempotency key is the mail's Message-ID,
so a mail delivered twice (a worker died after sending) is one message for mail readers.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import smtplib
import ssl
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate

from core.channels import Channel, Message, Unavailable

NAME = "smtp"
SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}\Z")
SMTP_TIMEOUT = 20  # seconds; a stalled server must not hold a worker for long


def mime(settings, message: Message) -> MIMEText:
    mail = message.payload
    # The compat32 classes on purpose: the modern header folding drops the space between two
    # encoded words ("the reportTháng 3" in a mail reader); ``Header`` encodes the subject whole.
    text = MIMEText(mail["body"], "plain", "utf-8")
    text["From"] = formataddr(("Hệ thống báo cáo", settings.smtp_from), charset="utf-8")
    text["To"] = mail["to"]
    text["Subject"] = Header(mail["subject"], "utf-8")
    text["Date"] = formatdate(localtime=False)
    domain = settings.smtp_from.rpartition("@")[2] or "localhost"
    # The key as the Message-ID's left part when it is plain enough for one, else its digest.
    left = message.key if SAFE_ID.match(message.key) else hashlib.sha256(message.key.encode()).hexdigest()
    text["Message-ID"] = f"<{left}@{domain}>"
    return text


def _connect(settings) -> smtplib.SMTP:
    if not settings.smtp_host:
        raise Unavailable("smtp_host is not set")
    try:
        server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 — refused, unreachable, unknown host
        raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        server.ehlo()
        if settings.smtp_starttls:
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
        if settings.smtp_user:
            server.login(settings.smtp_user, settings.smtp_password)
    except Exception as exc:  # noqa: BLE001 — TLS failure, refused login
        server.close()
        raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
    return server


def deliver(message: Message, settings) -> None:
    server = _connect(settings)
    try:
        server.send_message(mime(settings, message))  # a refused recipient raises: this message only
    finally:
        with contextlib.suppress(Exception):
            server.quit()


CHANNEL = Channel(NAME, deliver, label="outbox.channel.smtp")

"""One outbox for every channel (issue 13 item 3): ``core_outbox_message`` replaces the e-mail outbox
``core_outbox_mail``, whose rows move over as messages of the "smtp" channel (payload ``{"to",
"subject", "body"}``, idempotency key ``mail-<old id>``), keeping their state, attempts, last error
and times.

Frozen like 0001: nothing here imports ``core.outbox`` or ``core.mailer``.
"""

import datetime
import json

from peewee import Check, CharField, DateTimeField, IntegerField, Model, TextField


def _models(db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class OutboxMessage(Base):
        channel = CharField(max_length=64)
        key = CharField(max_length=200)
        payload = TextField()
        state = CharField(max_length=10, default="pending",
                          constraints=[Check("state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')")])
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(default=now)
        lease_until = DateTimeField(null=True)
        last_error = TextField(default="")
        created_at = DateTimeField(default=now)
        sent_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_outbox_message"
            indexes = ((("channel", "key"), True), (("state", "next_attempt_at"), False))

    class OutboxMail(Base):
        recipient = CharField(max_length=254)
        subject = CharField(max_length=255)
        body = TextField()
        status = CharField(max_length=8, default="pending",
                           constraints=[Check("status IN ('pending', 'sent', 'failed')")])
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(default=now, index=True)
        last_error = TextField(default="")
        created_at = DateTimeField(default=now)
        sent_at = DateTimeField(null=True)

        class Meta:
            table_name = "core_outbox_mail"

    return OutboxMessage, OutboxMail


def up(migrator, db):
    OutboxMessage, OutboxMail = _models(db)
    db.create_tables([OutboxMessage])
    rows = [{"channel": "smtp", "key": f"mail-{mail.id}",
             "payload": json.dumps({"to": mail.recipient, "subject": mail.subject, "body": mail.body},
                                   ensure_ascii=False, sort_keys=True),
             "state": mail.status, "attempts": mail.attempts, "next_attempt_at": mail.next_attempt_at,
             "last_error": mail.last_error, "created_at": mail.created_at, "sent_at": mail.sent_at}
            for mail in OutboxMail.select().order_by(OutboxMail.id)]
    for start in range(0, len(rows), 500):
        OutboxMessage.insert_many(rows[start:start + 500]).execute()
    db.drop_tables([OutboxMail])


def down(migrator, db):
    OutboxMessage, OutboxMail = _models(db)
    db.create_tables([OutboxMail])
    # Only e-mail had a table before; a message being sent goes back to waiting, a cancelled one
    # counts as given up.
    states = {"sending": "pending", "cancelled": "failed"}
    for message in OutboxMessage.select().where(OutboxMessage.channel == "smtp").order_by(OutboxMessage.id):
        mail = json.loads(message.payload)
        OutboxMail.create(recipient=mail["to"], subject=mail["subject"], body=mail["body"],
                          status=states.get(message.state, message.state), attempts=message.attempts,
                          next_attempt_at=message.next_attempt_at, last_error=message.last_error,
                          created_at=message.created_at, sent_at=message.sent_at)
    db.drop_tables([OutboxMessage])

"""What the national link keeps: which connectors serve which units, which regimes go through each,
every packet sent or received with the remote's answers, the proposals received, and where each
connector's inbox was last read. Tables ``national_link_*`` (migrations/).

Units, reports and accounts are referred to by id, not by foreign key: the core's tables are the
core's, and the exchange log must outlive a report reopened or an account closed. What was sent is
the outbox message's payload (``outbox_id``), frozen when the message was queued.
"""

from __future__ import annotations

import json

from peewee import BooleanField, CharField, DateTimeField, IntegerField, TextField

from core.api import plugin_base, utcnow

Base = plugin_base("national_link")

DIRECTIONS = ("out", "in")
# An inbound packet: refused (schema, signature, receiver: kept for inspection, changes nothing),
# proposed (waiting for the administrator), applied, rejected, or recorded (a status or an answer
# that needs no decision: it updates what it refers to at once).
INBOUND_STATES = ("refused", "proposed", "applied", "rejected", "recorded")
REMOTE_STATUSES = ("", "received", "accepted", "returned")
PROPOSAL_STATES = ("open", "applied", "rejected")


class ConnectorSwitch(Base):  # national_link_connector_switch
    """A connector switched on (or off) at a unit by the administrator. On at a unit means: the
    reports that unit sends up go through it (send.py says which)."""

    connector = CharField(max_length=40)
    unit_id = IntegerField()
    enabled = BooleanField(default=True)
    changed_by = IntegerField(null=True)
    changed_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("connector", "unit_id"), True),)


class Route(Base):  # national_link_route
    """A regime whose reports go up through a connector (by regime code, so every version goes)."""

    connector = CharField(max_length=40)
    regime_code = CharField(max_length=40)
    added_by = IntegerField(null=True)
    added_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("connector", "regime_code"), True),)


class Exchange(Base):  # national_link_exchange
    """One packet, sent (``out``: its outbox message) or received (``in``: the document kept)."""

    direction = CharField(max_length=3)
    connector = CharField(max_length=40)
    packet_type = CharField(max_length=30)
    message_id = CharField(max_length=80)
    in_reply_to = CharField(max_length=80, default="")
    report_id = IntegerField(null=True, index=True)
    report_version = IntegerField(null=True)
    unit_id = IntegerField(null=True, index=True)  # out: the sending (sealing) unit; in: the addressee
    outbox_id = IntegerField(null=True)
    state = CharField(max_length=10, default="")  # inbound: INBOUND_STATES; outbound: the outbox's, or "blocked"
    remote_status = CharField(max_length=10, default="")
    remote_reason = TextField(default="")
    remote_at = DateTimeField(null=True)  # when the remote's latest status arrived
    receipt_id = CharField(max_length=80, default="")
    acknowledged_at = DateTimeField(null=True)
    answer = TextField(default="")  # the remote's latest answer, as it came (cut)
    problems = TextField(default="[]")  # inbound refused: JSON [{"place", "key", "params"}]
    signature_status = CharField(max_length=14, default="")  # inbound: valid / indeterminate / invalid
    signer = CharField(max_length=255, default="")
    document = TextField(default="")  # inbound: the packet as received
    repeats = IntegerField(default=0)  # inbound: the same message id received again
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("connector", "direction", "message_id"), True), (("direction", "created_at"), False))

    def problem_list(self) -> list[dict]:
        return json.loads(self.problems or "[]")


class Proposal(Base):  # national_link_proposal
    """What the national system sent down (a regime, a catalogue, a request), waiting for the
    province's administrator to apply it in one transaction, or to reject it with a reason."""

    exchange_id = IntegerField(unique=True)
    connector = CharField(max_length=40)
    packet_type = CharField(max_length=30)
    title = CharField(max_length=255, default="")
    state = CharField(max_length=8, default="open", index=True)
    decided_by = IntegerField(null=True)
    decided_at = DateTimeField(null=True)
    reason = TextField(default="")
    result = TextField(default="{}")  # JSON: what applying made (regime id, indicators written …)
    created_at = DateTimeField(default=utcnow)


class Cursor(Base):  # national_link_cursor
    """Where each connector's inbox was last read, and how that went."""

    connector = CharField(max_length=40, unique=True)
    position = CharField(max_length=80, default="")
    fetched_at = DateTimeField(null=True)
    last_error = TextField(default="")


class TestServerIdentity(Base):  # national_link_test_server_identity
    """The demo's national test server's certificate and key (PEM), issued by the demo's CA when the
    demo is seeded with a test server asked for (never in a real installation)."""

    certificate = TextField()
    private_key = TextField()
    chain = TextField(default="")
    created_at = DateTimeField(default=utcnow)

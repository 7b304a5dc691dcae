"""Appending an audit event on PostgreSQL in one statement (``core.audit.record``).

Every save writes an event, and every writer of the chain waits for the one before it (the chain's
lock, held to the end of the writer's transaction). The lock was held over four round trips: the
lock, the read of the last event's hash, the insert, the commit; under 50 people saving at once on
two cores each round trip waited for its process to be scheduled again, and the lock was held some
20 ms per save, which capped the whole system at ~50 saves a second while the processors still
had time to spare. This function takes the lock, reads the last hash and inserts the event with its
hash inside the server, so the lock is held over two round trips (this call and the commit).

The hash is the one ``AuditEvent.compute_hash`` makes: SHA-256 of the previous hash followed by the
event's canonical JSON (which the caller gives: the same text ``audit verify`` rebuilds), as UTF-8,
in hexadecimal. SQLite does not need it: a write transaction there holds the database already.

Frozen: nothing here imports ``core.audit``; the lock key is the one ``core.audit.lock_chain`` takes.
"""

from peewee import SqliteDatabase

FUNCTION = """
CREATE OR REPLACE FUNCTION baocao_audit_append(
    p_at timestamp, p_actor_id bigint, p_actor_name text, p_unit_id bigint, p_action text,
    p_object_type text, p_object_id text, p_result text, p_request_id text, p_client_address text,
    p_details text, p_canonical text, p_genesis text)
RETURNS TABLE (event_id bigint, event_prev_hash text, event_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    previous text;
BEGIN
    PERFORM pg_advisory_xact_lock(4242001);
    -- A statement after the lock: in a VOLATILE function each one sees what committed before it.
    SELECT e.hash INTO previous FROM core_audit_event AS e ORDER BY e.id DESC LIMIT 1;
    previous := coalesce(previous, p_genesis);
    RETURN QUERY
    INSERT INTO core_audit_event AS e (at, actor_id, actor_name, unit_id, action, object_type, object_id,
                                       result, request_id, client_address, details, prev_hash, hash)
    VALUES (p_at, p_actor_id, p_actor_name, p_unit_id, p_action, p_object_type, p_object_id, p_result,
            p_request_id, p_client_address, p_details, previous,
            encode(sha256(convert_to(previous || p_canonical, 'UTF8')), 'hex'))
    RETURNING e.id::bigint, e.prev_hash::text, e.hash::text;
END $$
"""


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql(FUNCTION)


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        db.execute_sql("DROP FUNCTION IF EXISTS baocao_audit_append(timestamp, bigint, text, bigint, text, text, "
                       "text, text, text, text, text, text, text)")

"""The audit trail table, made append-only by the database itself."""

import datetime

from peewee import CharField, DateTimeField, IntegerField, Model, SqliteDatabase, TextField


def up(migrator, db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    class AuditEvent(Model):
        at = DateTimeField(default=now, index=True)
        actor_id = IntegerField(null=True, index=True)
        actor_name = CharField(max_length=64, default="")
        unit_id = IntegerField(null=True, index=True)
        action = CharField(max_length=64, index=True)
        object_type = CharField(max_length=64, default="")
        object_id = CharField(max_length=64, default="")
        result = CharField(max_length=10, default="ok")
        request_id = CharField(max_length=32, default="")
        client_address = CharField(max_length=64, default="")
        details = TextField(default="{}")
        prev_hash = CharField(max_length=64)
        hash = CharField(max_length=64, unique=True)

        class Meta:
            database = db
            table_name = "core_audit_event"

    db.create_tables([AuditEvent])
    if isinstance(db, SqliteDatabase):
        for verb in ("UPDATE", "DELETE"):
            db.execute_sql(
                f"CREATE TRIGGER core_audit_event_no_{verb.lower()} BEFORE {verb} ON core_audit_event "
                f"BEGIN SELECT RAISE(ABORT, 'core_audit_event is append-only'); END")
    else:
        db.execute_sql(
            "CREATE FUNCTION core_audit_event_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'core_audit_event is append-only'; END $$")
        db.execute_sql(
            "CREATE TRIGGER core_audit_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON core_audit_event FOR EACH STATEMENT EXECUTE FUNCTION core_audit_event_refuse()")


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        db.execute_sql("DROP TRIGGER IF EXISTS core_audit_event_no_update")
        db.execute_sql("DROP TRIGGER IF EXISTS core_audit_event_no_delete")
    else:
        db.execute_sql("DROP TRIGGER IF EXISTS core_audit_event_append_only ON core_audit_event")
        db.execute_sql("DROP FUNCTION IF EXISTS core_audit_event_refuse()")
    db.execute_sql('DROP TABLE IF EXISTS "core_audit_event"')

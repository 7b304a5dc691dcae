"""Login security (security.md AUTH-06): account lockout and the per-address rate limit.

``core_user`` gains ``failed_logins`` (consecutive failures) and ``locked_until``;
``core_login_attempt`` records each login attempt, so that every worker process
counts the attempts of one client address in the same place.

Frozen like 0001: nothing here imports ``core.models``.
"""

import datetime

from peewee import SQL, BooleanField, CharField, DateTimeField, IntegerField, Model


def up(migrator, db):
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    # NOT NULL DEFAULT 0 in the ALTER TABLE itself: playhouse would otherwise add the
    # column nullable and then set NOT NULL, which on SQLite < 3.53 rebuilds core_user.
    migrator.migrate(
        migrator.add_column("core_user", "failed_logins",
                            IntegerField(default=0, constraints=[SQL("DEFAULT 0")]), allow_not_null=True),
        migrator.add_column("core_user", "locked_until", DateTimeField(null=True)),
    )

    class LoginAttempt(Model):
        address = CharField(max_length=64)
        attempted_at = DateTimeField(default=now)
        username = CharField(max_length=64)
        success = BooleanField(default=False)

        class Meta:
            database = db
            table_name = "core_login_attempt"
            # The rate limit counts one address's recent attempts; the purge goes by age.
            indexes = ((("address", "attempted_at"), False), (("attempted_at",), False))

    db.create_tables([LoginAttempt])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "core_login_attempt"')
    migrator.migrate(
        migrator.drop_column("core_user", "locked_until"),
        migrator.drop_column("core_user", "failed_logins"),
    )

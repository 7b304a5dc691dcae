"""A regime issued on a plugin's issuing authority remembers it (issue 15, the delegated issuer):
``core_regime.authority`` holds "plugin:key" (``core.regimes.authority``), so that its periods open
only while that authority stands. Empty for every regime issued by the core's own rules.

Frozen like 0001: nothing here imports ``core.regimes``.
"""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(migrator.add_column("core_regime", "authority", CharField(max_length=120, null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("core_regime", "authority"))

"""The national link in ``baocao demo``, when the settings ask for the national test server
(``[plugins.national_link] test_server = "127.0.0.1:<port>"``, plugins/national_link/demo.toml).

The test server plays the Government's reporting system: it signs what it sends down with a
certificate the demo's CA issues now (kept in the plugin's own table: the CA's key is gone once the
demo is seeded), and the province sends through every QCVN 125 connector of the settings — switched
on for the province, carrying the demo's monthly socio-economic regimes — so a consolidated report
accepted at the province goes up at once, and the exchange log has something true to show.
"""

from __future__ import annotations

from core.api import Unit, transaction

from .connectors import connectors
from .models import ConnectorSwitch, Route, TestServerIdentity

NAME = "national_link"
# At most 64 bytes of UTF-8 each: an X.509 name attribute's limit.
SERVER_NAME = "Hệ thống báo cáo Chính phủ (máy chủ thử)"
SERVER_ORGANISATION = "Văn phòng Chính phủ (demo, không dùng thật)"
DEMO_REGIMES = ("kinhte_xahoi.monthly", "kinhte_xahoi.monthly_commune")


def seed(settings, demo_ca) -> None:
    table = settings.plugin(NAME)
    if not table.get("test_server"):
        return
    province = Unit.get_or_none(Unit.parent.is_null() & Unit.valid_to.is_null())
    if province is None:
        return
    with transaction():
        if demo_ca is not None and not TestServerIdentity.select().exists():
            certificate, key, chain = demo_ca.issue(SERVER_NAME, SERVER_ORGANISATION)
            TestServerIdentity.create(certificate=certificate.decode("ascii"), private_key=key.decode("ascii"),
                                      chain=chain.decode("ascii"))
        for connector in connectors(table).values():
            if connector.kind != "qcvn125":
                continue
            ConnectorSwitch.insert(connector=connector.name, unit_id=province.id, enabled=True).on_conflict_ignore().execute()
            # The plugin's regimes are loaded and issued after the plugins' seeds: routed by code.
            for code in DEMO_REGIMES:
                Route.insert(connector=connector.name, regime_code=code).on_conflict_ignore().execute()


def identity() -> TestServerIdentity | None:
    return TestServerIdentity.select().order_by(TestServerIdentity.id.desc()).first()

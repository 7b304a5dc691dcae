"""The entry page's indicator names are kept per process while the catalogue is unchanged
(core.reporting.data.indicator_names): a new name saved in the catalogue is on the next page.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.web.test_report_entry import app, world  # noqa: F401 — fixtures


def _names(world) -> dict:
    from core.db import db
    from tests.fixtures.forms import access_of
    from web.routes.report_entry import page_context

    with db.connection_context():
        return page_context(access_of(world.users["reporter"]), world.report.id)["indicator_names"]


def test_a_renamed_indicator_is_on_the_next_page(client, world):  # noqa: F811
    from core.catalogue import indicators as ind
    from core.db import db

    first = _names(world)
    assert first == {"KX0301": "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ tiêu dùng",
                     "KX0305": "Doanh thu du lịch"}
    assert _names(world) is first  # kept: the catalogue did not change
    with db.connection_context():
        ind.save_indicator({"code": "KX0305", "name": "Doanh thu du lịch lữ hành", "group": "KX03",
                            "levels": "province", "unit_of_measure": "tỷ đồng", "aggregation": "sum"})
    assert _names(world) == {"KX0301": "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ tiêu dùng",
                             "KX0305": "Doanh thu du lịch lữ hành"}


def test_the_names_kept_are_the_ones_read_without_a_sheet(client, world):  # noqa: F811
    from core.db import db
    from core.reporting import facade as reporting
    from web.routes.report_entry import _indicator_names

    with db.connection_context():
        version = reporting.FormVersion.get_by_id(world.report.form_version_id)
        assert _indicator_names(version) == _names(world)  # the print page's way: read each time

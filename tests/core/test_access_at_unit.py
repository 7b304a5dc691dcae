"""``Access.allowed_at``: a right at another unit, its chain read only when a grant could give it."""

from __future__ import annotations

from core.accounts.permissions import core_access
from core.db import db


def _queries(fn):
    """(answer, statements run) of ``fn`` on the test database."""
    executed = []
    original = db.obj.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        executed.append(sql)
        return original(sql, params, *args, **kwargs)

    db.obj.execute_sql = counting
    try:
        return fn(), executed
    finally:
        del db.obj.execute_sql


def test_a_commune_reporter_does_not_receive_at_the_department_and_reads_no_chain(unit_tree, make_user):
    reporter, _ = make_user(unit=unit_tree.communes[0], roles=("reporter",))
    with db.connection_context():
        access = core_access(reporter)
        answer, executed = _queries(lambda: access.allowed_at("core.report.receive", unit_tree.department.id))
        assert answer is False and executed == []
        # Their own right at their own unit is read from the chain known already.
        answer, executed = _queries(lambda: access.allowed_at("core.report.submit", unit_tree.communes[0].id))
        assert answer is True and executed == []
        # A right they hold, asked at a unit outside their subtree: the chain is read, and says no.
        answer, executed = _queries(lambda: access.allowed_at("core.report.submit", unit_tree.department.id))
        assert answer is False and len(executed) == 1


def test_a_receiver_at_the_province_receives_at_a_department_below_it(unit_tree, make_user):
    receiver, _ = make_user(unit=unit_tree.province, roles=("receiver",))
    with db.connection_context():
        access = core_access(receiver)
        assert access.allowed_at("core.report.receive", unit_tree.department.id)
        assert access.allowed_at("core.report.receive", unit_tree.communes[1].id)
        assert not access.allowed_at("core.report.submit", unit_tree.department.id)


def test_an_administrator_holds_it_everywhere(unit_tree, make_user):
    admin, _ = make_user(unit=unit_tree.communes[1], is_admin=True)
    with db.connection_context():
        assert core_access(admin).allowed_at("core.report.receive", unit_tree.department.id)

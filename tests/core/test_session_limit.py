"""At most N sessions per person (security.md SESS-07): a login past the limit ends the person's
least recently used session, in the same transaction, and says so in the audit trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest

from core import audit
from core.accounts import login as accounts
from core.db import db
from core.errors import SettingsError
from core.models import Session, Unit
from core.settings import Settings, load_settings

T0 = dt.datetime(2026, 3, 2, 8, 0)
_names = itertools.count()


@pytest.fixture
def make(db_session):
    unit = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province", admin_code="44")

    def make():
        return accounts.create_user(f"canbo{next(_names)}", "Nguyễn Văn An", "Sáng nay trời mưa ở Đông Hà", unit)

    return make


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_seen(user, minutes_ago: int, **kwargs) -> str:
    """A session of ``user`` last used ``minutes_ago`` minutes before T0."""
    token = accounts.start_session(user, "10.0.0.1", "pytest", **kwargs)
    Session.update(last_seen_at=T0 - dt.timedelta(minutes=minutes_ago)).where(
        Session.token_hash == digest(token)).execute()
    return token


def resumes(token) -> bool:
    state = accounts.resume_session(token, idle_minutes=120, lifetime_hours=12, now=T0)
    return state.user is not None


def limit_events():
    return [audit.details_of(e) for e in audit.AuditEvent.select().where(audit.AuditEvent.action == "session.end")]


def test_sess07_the_default_is_10_sessions_like_dhis2():
    assert Settings().max_sessions_per_person == 10


def test_sess07_the_11th_login_ends_the_least_recently_used_session_and_only_it(make):
    user, other = make(), make()
    # Created in one order, used in another: the one to go is the 4th created, idle the longest.
    idle = [5, 9, 3, 50, 7, 1, 8, 2, 6, 4]
    tokens = [session_seen(user, minutes) for minutes in idle]
    theirs = session_seen(other, 60)
    newest = accounts.start_session(user, "10.0.0.2", "pytest")
    assert not resumes(tokens[3])
    assert all(resumes(t) for i, t in enumerate(tokens) if i != 3)
    assert resumes(newest) and resumes(theirs)
    assert Session.select().where(Session.user == user).count() == 10


def test_sess07_the_eviction_is_audited_for_the_person(make):
    user = make()
    for minutes in range(10):
        session_seen(user, minutes)
    assert limit_events() == []
    accounts.start_session(user)
    event = audit.AuditEvent.get(audit.AuditEvent.action == "session.end")
    assert (event.actor_id, event.object_type, event.object_id) == (user.id, "user", str(user.id))
    assert audit.details_of(event) == {"by": "session_limit", "sessions_ended": 1}


def test_sess07_a_lower_limit_ends_as_many_as_needed_oldest_first(make):
    user = make()
    tokens = [session_seen(user, minutes) for minutes in (10, 20, 30, 40, 50)]
    accounts.start_session(user, max_sessions=3)
    assert [resumes(t) for t in tokens] == [True, True, False, False, False]
    assert limit_events() == [{"by": "session_limit", "sessions_ended": 3}]


def test_sess07_limit_0_ends_nothing(make):
    user = make()
    tokens = [session_seen(user, minutes, max_sessions=0) for minutes in range(12)]
    accounts.start_session(user, max_sessions=0)
    assert all(resumes(t) for t in tokens)
    assert Session.select().where(Session.user == user).count() == 13
    assert limit_events() == []


def test_sess07_a_session_waiting_for_its_second_factor_neither_counts_nor_evicts(make):
    user = make()
    tokens = [session_seen(user, minutes) for minutes in range(10)]
    accounts.start_session(user, mfa_pending=True)  # a password alone pushes nobody out
    assert Session.select().where(Session.user == user).count() == 11 and limit_events() == []
    accounts.start_session(user)  # the second factor given: the full session counts, pending ones do not
    assert [resumes(t) for t in tokens] == [True] * 9 + [False]
    assert limit_events() == [{"by": "session_limit", "sessions_ended": 1}]


@pytest.mark.parametrize("value, expected", [("0", 0), ("3", 3)])
def test_sess07_the_setting_comes_from_the_environment_and_0_means_no_limit(value, expected):
    assert load_settings(env={"BAOCAO_MAX_SESSIONS_PER_PERSON": value}).max_sessions_per_person == expected


def test_sess07_a_negative_limit_is_refused(tmp_path):
    path = tmp_path / "baocao.toml"
    path.write_text("max_sessions_per_person = -1\n", encoding="utf-8")
    with pytest.raises(SettingsError):
        load_settings(path, env={})


def test_sess07_the_login_form_applies_the_limit(client, make_user):
    from tests.conftest import csrf_from

    user, password = make_user()
    with db.connection_context():
        tokens = [session_seen(user, minutes) for minutes in range(10)]
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    with db.connection_context():
        assert [resumes(t) for t in tokens] == [True] * 9 + [False]
        assert limit_events() == [{"by": "session_limit", "sessions_ended": 1}]

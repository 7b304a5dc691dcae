"""Personal access tokens: shown once, stored as SHA-256 only, expiring, revocable, audited,
and worthless once the account is disabled."""

from __future__ import annotations

import datetime as dt

import pytest

from core.accounts import login as accounts
from core.accounts import api_tokens
from core.accounts.api_tokens import ApiToken
from core.audit import AuditEvent
from core.errors import NotFound, ValidationError
from core.models import Session, Unit, User, utcnow


@pytest.fixture
def people(db_session):
    unit = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    make = lambda name: accounts.create_user(name, name, accounts.random_password(), unit)  # noqa: E731
    return make("nguoi_an"), make("nguoi_binh")


def test_a_new_token_is_returned_once_and_only_its_hash_is_stored(people):
    an, _ = people
    token, secret = api_tokens.create_token(an, "Kho dữ liệu", 30)
    assert secret.startswith("bc_") and len(secret) > 40
    row = ApiToken.get_by_id(token.id)
    assert row.token_hash == api_tokens.digest(secret) and len(row.token_hash) == 64
    assert secret[:10] == row.shown_prefix and secret not in {row.name, row.token_hash}
    assert (row.expires_at - row.created_at) == dt.timedelta(days=30)
    assert row.state() == "active" and row.last_used_at is None
    event = AuditEvent.get(AuditEvent.action == "api_token.create")
    assert event.actor_id == an.id and secret not in event.details and row.token_hash not in event.details


def test_two_tokens_never_share_a_secret(people):
    an, _ = people
    secrets = {api_tokens.create_token(an, f"t{i}", 7)[1] for i in range(5)}
    assert len(secrets) == 5


def test_authenticate_gives_the_user_and_records_the_last_use_at_most_once_a_minute(people):
    an, _ = people
    token, secret = api_tokens.create_token(an, "x", 30)
    now = utcnow()
    assert api_tokens.authenticate(secret, now=now).id == an.id
    assert ApiToken.get_by_id(token.id).last_used_at == now
    api_tokens.authenticate(secret, now=now + dt.timedelta(seconds=20))
    assert ApiToken.get_by_id(token.id).last_used_at == now
    later = now + dt.timedelta(minutes=2)
    api_tokens.authenticate(secret, now=later)
    assert ApiToken.get_by_id(token.id).last_used_at == later


@pytest.mark.parametrize("secret", [None, "", "bc_short", "xx_" + "a" * 43, "bc_" + "a" * 43, "bc_" + "é" * 30])
def test_unknown_or_malformed_tokens_give_nobody(people, secret):
    assert api_tokens.authenticate(secret) is None


def test_an_expired_token_gives_nobody(people):
    an, _ = people
    token, secret = api_tokens.create_token(an, "x", 1)
    assert api_tokens.authenticate(secret, now=token.expires_at - dt.timedelta(seconds=1)) is not None
    assert api_tokens.authenticate(secret, now=token.expires_at) is None
    assert ApiToken.get_by_id(token.id).state(token.expires_at) == "expired"


def test_a_disabled_account_s_tokens_stop_working(people):
    an, _ = people
    _, secret = api_tokens.create_token(an, "x", 30)
    User.update(is_active=False).where(User.id == an.id).execute()
    assert api_tokens.authenticate(secret) is None
    User.update(is_active=True).where(User.id == an.id).execute()
    assert api_tokens.authenticate(secret) is not None


def test_revoke_own_token_only_audited_once(people):
    an, binh = people
    token, secret = api_tokens.create_token(an, "x", 30)
    with pytest.raises(NotFound):
        api_tokens.revoke(binh, token.id)
    assert api_tokens.authenticate(secret) is not None
    api_tokens.revoke(an, token.id)
    api_tokens.revoke(an, token.id)  # twice: no second event
    assert api_tokens.authenticate(secret) is None
    assert ApiToken.get_by_id(token.id).state() == "revoked"
    assert AuditEvent.select().where(AuditEvent.action == "api_token.revoke").count() == 1
    with pytest.raises(NotFound):
        api_tokens.revoke(an, 999999)


def test_revoke_all_of_an_account(people):
    an, binh = people
    mine = [api_tokens.create_token(an, f"t{i}", 30)[1] for i in range(3)]
    theirs = api_tokens.create_token(binh, "t", 30)[1]
    assert api_tokens.revoke_all_of(an.id) == 3
    assert all(api_tokens.authenticate(s) is None for s in mine)
    assert api_tokens.authenticate(theirs) is not None


@pytest.mark.parametrize("name, days, fields", [
    ("", 30, {"name"}),
    ("   ", 30, {"name"}),
    ("x" * 101, 30, {"name"}),
    ("ok", 0, {"days"}),
    ("ok", 366, {"days"}),
    ("ok", "ten", {"days"}),
    ("", None, {"name", "days"}),
])
def test_bad_input_is_refused_per_field_and_nothing_is_written(people, name, days, fields):
    an, _ = people
    with pytest.raises(ValidationError) as info:
        api_tokens.create_token(an, name, days)
    assert set(info.value.errors) == fields
    assert ApiToken.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action == "api_token.create").count() == 0


def test_the_longest_expiry_is_a_year(people):
    an, _ = people
    token, _ = api_tokens.create_token(an, "x", api_tokens.MAX_DAYS)
    assert token.expires_at - token.created_at == dt.timedelta(days=365)


def test_at_most_so_many_active_tokens_per_account(people):
    an, _ = people
    for i in range(api_tokens.MAX_ACTIVE_PER_USER):
        api_tokens.create_token(an, f"t{i}", 7)
    with pytest.raises(ValidationError) as info:
        api_tokens.create_token(an, "one more", 7)
    assert info.value.errors == {"name": "api.token.error.too_many"}
    api_tokens.revoke(an, api_tokens.tokens_of(an)[0].id)
    api_tokens.create_token(an, "one more", 7)


def test_tokens_of_lists_newest_first_and_purge_removes_old_dead_tokens(people):
    an, _ = people
    old, _ = api_tokens.create_token(an, "old", 7, now=utcnow() - dt.timedelta(days=200))
    new, _ = api_tokens.create_token(an, "new", 7)
    assert [t.name for t in api_tokens.tokens_of(an)] == ["new", "old"]
    assert api_tokens.purge_expired(keep_days=90) == 1
    assert [t.id for t in api_tokens.tokens_of(an)] == [new.id]


def test_deleting_an_account_deletes_its_tokens(people):
    an, _ = people
    api_tokens.create_token(an, "x", 7)
    Session.delete().where(Session.user == an.id).execute()
    User.delete().where(User.id == an.id).execute()
    assert ApiToken.select().count() == 0


def test_the_worker_purges_old_tokens_daily(settings, people):
    from core.jobs import make_huey

    an, _ = people
    api_tokens.create_token(an, "old", 7, now=utcnow() - dt.timedelta(days=200))
    huey = make_huey(settings, immediate=True)
    task = next(t for t in huey.read_periodic(dt.datetime(2026, 1, 5, 1, 35)) if t.name == "core.purge_api_tokens")
    assert huey.execute(task) == 1
    assert ApiToken.select().count() == 0

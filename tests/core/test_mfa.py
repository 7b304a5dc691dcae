"""Two-factor authentication in the core (issue 3): ``core.accounts.mfa``.

security.md AUTH-08 (TOTP for administrators, single use, 30 s step, out-of-skew codes
refused), AUTH-06 (wrong codes count towards the lockout), SESS-06 (re-authentication).
Codes are computed with pyotp for an injected clock; nothing sleeps. Runs on SQLite and,
with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL (the parallel tests too).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from types import SimpleNamespace

import pyotp
import pytest

from core.accounts import login as accounts
from core.accounts import mfa
from core.accounts.access import Grant, Role, grants_of
from core.audit import AuditEvent
from core.db import db
from core.errors import SettingsError, ValidationError
from core.models import Session, Unit, User
from core.accounts.permissions import Access
from core.registry import CORE_DOMAIN
from core.settings import load_settings
from core.units.tree import ancestor_ids
from tests.conftest import TEST_SECRET

T0 = dt.datetime(2026, 3, 2, 8, 0, 10)  # 10 s into a 30-second step
STEP = dt.timedelta(seconds=30)
PASSWORD = "Sáng nay trời mưa ở Đông Hà"
REGISTRY = SimpleNamespace(permissions={p.code: p for p in CORE_DOMAIN.permissions})
_names = itertools.count()


@pytest.fixture
def province(db_session):
    return Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")


@pytest.fixture
def make(province):
    def make(**kwargs):
        return accounts.create_user(f"canbo{next(_names)}", "Nguyễn Văn An", PASSWORD, province, **kwargs)

    return make


def code_at(secret: str, when: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(when.replace(tzinfo=dt.timezone.utc))


def enroll(user, now=T0) -> tuple[str, list[str]]:
    """Enroll with the code of the step before ``now``, so the codes of ``now`` onwards are unused."""
    secret, _ = mfa.begin_enrollment(user, TEST_SECRET)
    codes = mfa.confirm_enrollment(user, code_at(secret, now - STEP), TEST_SECRET, now=now - STEP)
    return secret, codes


def wrong_code(secret: str, now: dt.datetime) -> str:
    """A 6-digit code that is none of the codes accepted around ``now``."""
    accepted = {code_at(secret, now + k * STEP) for k in (-1, 0, 1)}
    return next(c for c in ("418263", "527394", "639475", "748596") if c not in accepted)


def access_of(user) -> Access:
    user = User.get_by_id(user.id)
    return Access(actor=user, registry=REGISTRY, grants=grants_of(user.id), chain=tuple(ancestor_ids(user.unit_id)))


def audit_text() -> str:
    """Every column of every audit event but the chain's own hashes, as one string to search."""
    columns = [c for c in AuditEvent.CHAINED if c != "at"]
    rows = db.execute_sql(f"SELECT {', '.join(columns)} FROM core_audit_event").fetchall()
    return json.dumps([list(row) for row in rows], default=str, ensure_ascii=False)


# -- enrollment ----------------------------------------------------------------------------------

def test_auth08_enrollment_gives_an_otpauth_uri_and_ten_recovery_codes(make):
    user = make()
    secret, uri = mfa.begin_enrollment(user, TEST_SECRET)
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert uri.startswith("otpauth://totp/baocao:") and f"secret={secret}" in uri and "issuer=baocao" in uri
    assert user.username in uri
    # Not enrolled until a code confirms it; reloading the page keeps the same secret.
    assert not mfa.is_enrolled(user)
    assert mfa.begin_enrollment(user, TEST_SECRET)[0] == secret
    assert mfa.verify(user, code_at(secret, T0), TEST_SECRET, now=T0) is None
    codes = mfa.confirm_enrollment(user, code_at(secret, T0), TEST_SECRET, now=T0)
    assert mfa.is_enrolled(user)
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[abcdefghjkmnpqrstuvwxyz23456789]{4}-[abcdefghjkmnpqrstuvwxyz23456789]{4}", c)
               for c in codes)
    assert mfa.status(user) == {"enrolled": True, "confirmed_at": T0, "codes_left": 10}
    assert [e.action for e in AuditEvent.select().where(AuditEvent.action == "auth.mfa_enabled")] == \
        ["auth.mfa_enabled"]
    with pytest.raises(ValidationError):
        mfa.begin_enrollment(user, TEST_SECRET)  # already on: no second secret


def test_a_wrong_code_does_not_confirm_the_enrollment(make):
    user = make()
    secret, _ = mfa.begin_enrollment(user, TEST_SECRET)
    for wrong in ("", "12345", "abcdef", code_at(secret, T0 - 3 * STEP)):
        with pytest.raises(ValidationError) as caught:
            mfa.confirm_enrollment(user, wrong, TEST_SECRET, now=T0)
        assert caught.value.errors == {"code": "mfa.error.code"}
    assert not mfa.is_enrolled(user)


def test_auth08_the_secret_is_not_stored_in_clear(make):
    user = make()
    secret, codes = enroll(user)
    rows = db.execute_sql("SELECT * FROM core_totp").fetchall()
    text = json.dumps([list(r) for r in rows], default=str)
    assert len(rows) == 1
    assert secret not in text and secret.lower() not in text and mfa.group_secret(secret) not in text
    # A database copy alone does not yield it: another secret key cannot decrypt it.
    stored = mfa.Totp.get(mfa.Totp.user == user.id).secret
    assert mfa.decrypt_secret(stored, TEST_SECRET) == secret
    assert mfa.decrypt_secret(stored, "another-secret-" + "y" * 40) is None
    # Recovery codes are kept as keyed hashes only.
    hashes = db.execute_sql("SELECT * FROM core_recovery_code").fetchall()
    dump = json.dumps([list(r) for r in hashes], default=str)
    assert len(hashes) == 10
    assert not any(c in dump or c.replace("-", "") in dump for c in codes)


# -- verification (AUTH-08) ------------------------------------------------------------------------

def test_auth08_a_code_is_accepted_once_and_never_replayed(make):
    user = make()
    secret, _ = enroll(user)
    code = code_at(secret, T0)
    assert mfa.verify(user, code, TEST_SECRET, now=T0) == "totp"
    assert mfa.verify(user, code, TEST_SECRET, now=T0) is None  # replay, same moment
    assert mfa.verify(user, code, TEST_SECRET, now=T0 + STEP) is None  # replay, still inside the window
    # A code of an earlier step than one already used is refused too.
    assert mfa.verify(user, code_at(secret, T0 - STEP), TEST_SECRET, now=T0) is None
    assert mfa.verify(user, code_at(secret, T0 + STEP), TEST_SECRET, now=T0 + STEP) == "totp"


def test_auth08_one_step_of_drift_is_allowed_two_are_not(make):
    user = make()
    secret, _ = enroll(user, now=T0 - 10 * STEP)  # last_step well in the past
    assert mfa.verify(user, code_at(secret, T0 - 2 * STEP), TEST_SECRET, now=T0) is None  # two steps old
    assert mfa.verify(user, code_at(secret, T0 + 2 * STEP), TEST_SECRET, now=T0) is None  # two steps ahead
    assert mfa.verify(user, code_at(secret, T0 - STEP), TEST_SECRET, now=T0) == "totp"  # one step old
    assert mfa.verify(user, code_at(secret, T0 + STEP), TEST_SECRET, now=T0) == "totp"  # one step ahead


def test_codes_are_read_the_way_people_type_them(make):
    user = make()
    secret, codes = enroll(user)
    code = code_at(secret, T0)
    assert mfa.verify(user, f" {code[:3]} {code[3:]} ", TEST_SECRET, now=T0) == "totp"
    assert mfa.verify(user, codes[0].upper().replace("-", " "), TEST_SECRET, now=T0) == "recovery"
    assert mfa.verify(user, "x" * 5000, TEST_SECRET, now=T0) is None


def test_a_secret_key_change_makes_the_enrollment_unusable_not_a_crash(make):
    user = make()
    secret, _ = enroll(user)
    assert mfa.verify(user, code_at(secret, T0), "another-secret-" + "y" * 40, now=T0) is None


def _race(user_id: int, code: str, now: dt.datetime, threads: int = 6) -> list:
    """``threads`` workers, each on its own connection, verify the same code at once."""
    barrier, results, errors = threading.Barrier(threads), [], []

    def worker():
        try:
            with db.connection_context():
                user = User.get_by_id(user_id)
                barrier.wait(timeout=10)
                results.append(mfa.verify(user, code, TEST_SECRET, now=now))
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_auth08_one_code_used_in_parallel_succeeds_once(make):
    user = make()
    secret, codes = enroll(user)
    results = _race(user.id, code_at(secret, T0), T0)
    assert sorted(results, key=str) == [None] * 5 + ["totp"]
    assert mfa.Totp.get(mfa.Totp.user == user.id).last_step == mfa.step_at(T0)
    # The same for a recovery code.
    results = _race(user.id, codes[3], T0)
    assert sorted(results, key=str) == [None] * 5 + ["recovery"]
    assert mfa.status(user)["codes_left"] == 9


def test_a_recovery_code_works_once_and_new_ones_replace_the_old(make):
    user = make()
    _, codes = enroll(user)
    assert mfa.verify(user, codes[0], TEST_SECRET, now=T0) == "recovery"
    assert mfa.verify(user, codes[0], TEST_SECRET, now=T0) is None
    assert mfa.verify(user, "abcd-efgh", TEST_SECRET, now=T0) is None
    assert mfa.status(user)["codes_left"] == 9
    fresh = mfa.regenerate_recovery_codes(user, TEST_SECRET, now=T0)
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert mfa.verify(user, codes[1], TEST_SECRET, now=T0) is None  # the old ones are gone
    assert mfa.verify(user, fresh[1], TEST_SECRET, now=T0) == "recovery"
    # Codes of one user never open another's account.
    other = make()
    enroll(other)
    assert mfa.verify(other, fresh[2], TEST_SECRET, now=T0) is None


def test_disable_removes_the_secret_and_the_codes(make):
    user = make()
    secret, codes = enroll(user)
    assert mfa.disable(user) is True
    assert not mfa.is_enrolled(user)
    assert mfa.Totp.select().count() == 0 and mfa.RecoveryCode.select().count() == 0
    assert mfa.verify(user, code_at(secret, T0), TEST_SECRET, now=T0) is None
    assert mfa.verify(user, codes[0], TEST_SECRET, now=T0) is None
    assert AuditEvent.select().where(AuditEvent.action == "auth.mfa_disabled").count() == 1
    assert mfa.disable(user) is False  # nothing to turn off: no second event
    assert AuditEvent.select().where(AuditEvent.action == "auth.mfa_disabled").count() == 1


def test_deleting_the_user_deletes_the_secret(make):
    user = make()
    enroll(user)
    User.delete().where(User.id == user.id).execute()
    assert mfa.Totp.select().count() == 0 and mfa.RecoveryCode.select().count() == 0


# -- who must use it -------------------------------------------------------------------------------

def test_auth08_administrators_must_use_2fa_others_may(make, province):
    system = make(is_admin=True)
    unit_admin = make()
    Grant.create(user=unit_admin, role=Role.get(Role.code == "unit_admin"), unit=province)
    clerk = make()
    Grant.create(user=clerk, role=Role.get(Role.code == "viewer"), unit=province)
    assert mfa.mfa_required(system, access_of(system))
    assert mfa.mfa_required(unit_admin, access_of(unit_admin))
    assert not mfa.mfa_required(clerk, access_of(clerk))
    assert not mfa.mfa_required(system, access_of(system), require_admin_mfa=False)


def test_the_settings_switch_and_the_reauth_window():
    assert load_settings(None, env={}).require_admin_mfa is True
    assert load_settings(None, env={}).reauth_minutes == 5
    settings = load_settings(None, env={"BAOCAO_REQUIRE_ADMIN_MFA": "false", "BAOCAO_REAUTH_MINUTES": "10"})
    assert settings.require_admin_mfa is False and settings.reauth_minutes == 10
    assert load_settings(None, env={"BAOCAO_REQUIRE_ADMIN_MFA": "1"}).require_admin_mfa is True
    with pytest.raises(SettingsError) as caught:
        load_settings(None, env={"BAOCAO_REQUIRE_ADMIN_MFA": "maybe"})
    assert caught.value.params["setting"] == "BAOCAO_REQUIRE_ADMIN_MFA"


# -- logging in with the second factor (AUTH-06) ---------------------------------------------------

def test_login_with_2fa_is_pending_until_the_code(make):
    user = make()
    secret, _ = enroll(user)
    result = accounts.login(user.username, PASSWORD, "10.0.0.1", rate_per_minute=20, now=T0)
    assert result.user.id == user.id and result.mfa_pending
    token = accounts.start_session(result.user, mfa_pending=True)
    state = accounts.resume_session(token, idle_minutes=15, lifetime_hours=12)
    assert state.user is None and state.pending_user.id == user.id  # logged out but for the code
    assert mfa.complete_login(user.id, code_at(secret, T0), TEST_SECRET, lockout_threshold=5,
                              lockout_minutes=30, now=T0) == "totp"
    login = AuditEvent.select().where(AuditEvent.action == "auth.login").order_by(AuditEvent.id)
    assert [json.loads(e.details) for e in login] == [{"second_factor": "pending"}, {"second_factor": "totp"}]
    # Without 2FA nothing is pending.
    plain = make()
    assert not accounts.login(plain.username, PASSWORD, "10.0.0.2", rate_per_minute=20, now=T0).mfa_pending


def test_a_pending_session_lasts_ten_minutes_at_most(make):
    user = make()
    token = accounts.start_session(user, mfa_pending=True)
    created = Session.get().created_at
    assert accounts.resume_session(token, idle_minutes=15, lifetime_hours=12,
                                   now=created + dt.timedelta(minutes=9)).pending_user.id == user.id
    state = accounts.resume_session(token, idle_minutes=15, lifetime_hours=12, now=created + dt.timedelta(minutes=11))
    assert state.user is None and state.pending_user is None and state.expired


def test_auth06_wrong_codes_count_towards_the_lockout_with_wrong_passwords(make):
    user = make()
    secret, _ = enroll(user)
    assert accounts.authenticate(user.username, "sai mật khẩu rồi", now=T0) is None  # 1 wrong password
    for _ in range(2):  # 2 wrong codes
        assert mfa.complete_login(user.id, wrong_code(secret, T0), TEST_SECRET, lockout_threshold=3,
                                  lockout_minutes=30, now=T0) is None
    locked = User.get_by_id(user.id)
    assert accounts.is_locked(locked, T0)
    # Locked: even the right code is refused, and not used up.
    assert mfa.complete_login(user.id, code_at(secret, T0), TEST_SECRET, lockout_threshold=3,
                              lockout_minutes=30, now=T0) is None
    failed = AuditEvent.select().where(AuditEvent.action == "auth.mfa_failed")
    assert [e.result for e in failed] == ["failed", "failed", "denied"]
    assert AuditEvent.select().where(AuditEvent.action == "auth.locked").count() == 1
    # After the lock, the right code works and the count starts again.
    later = T0 + dt.timedelta(minutes=31)
    assert mfa.complete_login(user.id, code_at(secret, later), TEST_SECRET, lockout_threshold=3,
                              lockout_minutes=30, now=later) == "totp"
    assert User.get_by_id(user.id).failed_logins == 0


def test_auth06_the_right_password_does_not_reset_the_count_of_wrong_codes(make):
    """Else someone who knows the password could guess codes for ever, a few between two logins."""
    user = make()
    secret, _ = enroll(user)
    for _ in range(2):
        assert mfa.complete_login(user.id, wrong_code(secret, T0), TEST_SECRET, lockout_threshold=5,
                                  lockout_minutes=30, now=T0) is None
        assert accounts.authenticate(user.username, PASSWORD, now=T0) is not None
    assert User.get_by_id(user.id).failed_logins == 2


def test_an_empty_code_is_not_counted_as_a_guess(make):
    user = make()
    enroll(user)
    assert mfa.complete_login(user.id, "  ", TEST_SECRET, lockout_threshold=5, lockout_minutes=30, now=T0) is None
    assert User.get_by_id(user.id).failed_logins == 0


# -- re-authentication (SESS-06) -------------------------------------------------------------------

def test_sess06_reauthentication_needs_the_password_and_the_code_when_enrolled(make):
    user = make()
    assert mfa.reauthenticate(user.id, "sai", "", TEST_SECRET, lockout_threshold=5, lockout_minutes=30,
                              now=T0) == {"password": "reauth.error.password"}
    assert mfa.reauthenticate(user.id, PASSWORD, "", TEST_SECRET, lockout_threshold=5, lockout_minutes=30,
                              now=T0) == {}
    secret, _ = enroll(user)
    assert mfa.reauthenticate(user.id, PASSWORD, "", TEST_SECRET, lockout_threshold=5, lockout_minutes=30,
                              now=T0) == {"code": "mfa.error.code_required"}
    assert mfa.reauthenticate(user.id, PASSWORD, code_at(secret, T0), TEST_SECRET, lockout_threshold=5,
                              lockout_minutes=30, now=T0) == {}
    # The same code once more is a replay.
    assert mfa.reauthenticate(user.id, PASSWORD, code_at(secret, T0), TEST_SECRET, lockout_threshold=5,
                              lockout_minutes=30, now=T0) == {"code": "mfa.error.code"}
    results = [e.result for e in AuditEvent.select().where(AuditEvent.action == "auth.reauth").order_by(AuditEvent.id)]
    assert results == ["failed", "ok", "ok"]


def test_sess06_the_reauthentication_window():
    assert not mfa.reauth_fresh(None, 5, T0)
    assert mfa.reauth_fresh(T0 - dt.timedelta(minutes=4, seconds=59), 5, T0)
    assert not mfa.reauth_fresh(T0 - dt.timedelta(minutes=5, seconds=1), 5, T0)


def test_sess02_rotating_a_session_keeps_the_row_and_kills_the_old_token(make):
    user = make()
    old = accounts.start_session(user)
    new = mfa.rotate_session(old, reauth_at=T0)
    assert new and new != old
    assert accounts.resume_session(old, idle_minutes=15, lifetime_hours=12).user is None
    state = accounts.resume_session(new, idle_minutes=15, lifetime_hours=12)
    assert state.user.id == user.id and state.reauth_at == T0
    assert Session.select().count() == 1
    assert mfa.rotate_session("nonexistent") is None


def test_no_secret_code_or_recovery_code_reaches_the_audit_trail(make):
    user = make()
    secret, codes = enroll(user)
    used = [code_at(secret, T0), code_at(secret, T0 + STEP)]
    mfa.verify(user, used[0], TEST_SECRET, now=T0)
    mfa.complete_login(user.id, used[1], TEST_SECRET, lockout_threshold=5, lockout_minutes=30, now=T0 + STEP)
    mfa.complete_login(user.id, codes[0], TEST_SECRET, lockout_threshold=5, lockout_minutes=30, now=T0 + STEP)
    wrong = wrong_code(secret, T0 + STEP)
    mfa.complete_login(user.id, wrong, TEST_SECRET, lockout_threshold=5, lockout_minutes=30, now=T0 + STEP)
    fresh = mfa.regenerate_recovery_codes(user, TEST_SECRET)
    mfa.disable(user)
    text = audit_text()
    assert AuditEvent.select().count() >= 5
    for value in [secret, mfa.group_secret(secret), *used, wrong, *codes, *fresh,
                  *(c.replace("-", "") for c in codes + fresh)]:
        assert value not in text, value

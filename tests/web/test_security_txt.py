"""VN-03: /.well-known/security.txt (RFC 9116), the published vulnerability-report channel."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
from starlette.testclient import TestClient

from core.errors import SettingsError
from core.settings import Settings, load_settings, with_overrides
from web.routes import well_known

PATH = "/.well-known/security.txt"
CONTACTS = ("mailto:antt@quangtri.example", "https://quangtri.example/bao-lo-hong")
T0 = dt.datetime(2026, 12, 31, 23, 30)  # the last half hour of a year, UTC (06:30 the next day in Hà Nội)


def fields_of(text: str) -> dict[str, list[str]]:
    """RFC 9116 fields: name → values in order; comment lines left out."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split(": ", 1)
            found.setdefault(name, []).append(value)
    return found


@pytest.fixture
def settings(make_settings):
    """This module's instance publishes a contact (the ``client`` and ``login`` fixtures use it)."""
    return make_settings(security_contact=CONTACTS, security_policy_url="https://quangtri.example/chinh-sach",
                         public_url="https://baocao.quangtri.example/")


@pytest.fixture
def published(client):
    return client


def test_vn03_security_txt_names_the_contacts_languages_policy_and_canonical_address(published):
    answer = published.get(PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    fields = fields_of(answer.text)
    assert fields["Contact"] == list(CONTACTS)  # every one, the preferred first
    assert fields["Preferred-Languages"] == ["vi, en"]
    assert fields["Policy"] == ["https://quangtri.example/chinh-sach"]
    assert fields["Canonical"] == ["https://baocao.quangtri.example/.well-known/security.txt"]
    assert len(fields["Expires"]) == 1
    comments = [line for line in answer.text.splitlines() if line.startswith("#")]
    assert any("lỗ hổng" in line for line in comments) and any("vulnerability" in line for line in comments)
    assert answer.text.endswith("\n") and "\r" not in answer.text


def test_vn03_security_txt_expires_in_the_future_and_within_a_year(published, frozen_clock):
    frozen_clock(T0)
    expires = dt.datetime.strptime(fields_of(published.get(PATH).text)["Expires"][0], "%Y-%m-%dT%H:%M:%SZ")
    assert T0 + dt.timedelta(days=30) < expires < T0 + dt.timedelta(days=365)
    frozen_clock(T0 + dt.timedelta(days=400))  # computed from the clock, not fixed once
    later = dt.datetime.strptime(fields_of(published.get(PATH).text)["Expires"][0], "%Y-%m-%dT%H:%M:%SZ")
    assert later - expires == dt.timedelta(days=400)


def test_vn03_security_txt_is_served_to_anyone_without_a_session(published, login):
    anonymous = published.get(PATH, follow_redirects=False)
    assert anonymous.status_code == 200 and "Contact: " in anonymous.text  # no redirect to the login page
    assert published.head(PATH).status_code == 200
    login()
    assert published.get(PATH).text == anonymous.text  # the same for a person logged in


def test_vn03_security_txt_is_never_refused_by_a_rate_limit(make_settings, make_app):
    # Every per-minute limit at its lowest: none of them counts this file.
    lowest = {f.name: 1 for f in dataclasses.fields(Settings) if f.name.endswith("_per_minute")}
    assert "login_rate_per_minute" in lowest
    with TestClient(make_app(make_settings(security_contact=CONTACTS[:1], **lowest))) as client:
        assert [client.get(PATH).status_code for _ in range(6)] == [200] * 6


def test_vn03_security_txt_is_not_found_without_a_contact_and_omits_unset_fields(make_settings, make_app):
    with TestClient(make_app(make_settings())) as client:
        assert client.get(PATH).status_code == 404
    with TestClient(make_app(make_settings(security_contact=CONTACTS[:1], public_url="http://intranet"))) as client:
        fields = fields_of(client.get(PATH).text)
    assert fields["Contact"] == [CONTACTS[0]]
    assert "Policy" not in fields and "Canonical" not in fields  # Canonical only for an https address


def test_vn03_a_production_server_without_a_contact_warns_at_start(make_settings, caplog):
    settings = make_settings()
    caplog.set_level(logging.WARNING, logger="baocao.security_txt")
    well_known.warn_if_unconfigured(with_overrides(settings, mode="production"))
    assert "security_contact is not set" in caplog.text
    caplog.clear()
    well_known.warn_if_unconfigured(with_overrides(settings, mode="production", security_contact=CONTACTS[:1]))
    well_known.warn_if_unconfigured(settings)  # a test or development instance: nothing to say
    assert caplog.text == ""


def test_vn03_the_contact_settings_are_read_and_checked():
    loaded = load_settings(env={"BAOCAO_SECURITY_CONTACT": ",".join(CONTACTS),
                                "BAOCAO_SECURITY_POLICY_URL": "https://quangtri.example/chinh-sach"})
    assert loaded.security_contact == CONTACTS
    assert loaded.security_policy_url == "https://quangtri.example/chinh-sach"
    for contact in ("antt@quangtri.example", "http://quangtri.example", "mailto:antt", "javascript:alert(1)",
                    "mailto:a@quangtri.example\nPolicy: https://evil.example", "https://quangtri.example/a b"):
        with pytest.raises(SettingsError) as refused:
            load_settings(env={"BAOCAO_SECURITY_CONTACT": contact})
        assert refused.value.params["setting"] == "security_contact"
    with pytest.raises(SettingsError):
        load_settings(env={"BAOCAO_SECURITY_POLICY_URL": "http://quangtri.example/chinh-sach"})

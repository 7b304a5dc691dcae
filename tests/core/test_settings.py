"""Settings: TOML file, environment variables that win, secrets by indirection,
and one bilingual line naming whatever is wrong."""

from __future__ import annotations

import re

import pytest

from core.errors import SettingsError
from core.settings import MIN_SECRET_LENGTH, Settings, load_settings, redact

GOOD_SECRET = "k" * MIN_SECRET_LENGTH


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "baocao.toml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def refused(path=None, env=None) -> str:
    """The one-line message of the SettingsError that load_settings raises."""
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env=env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def assert_bilingual(message: str) -> None:
    # "<Vietnamese> / <English>" on one line, from the two catalogues.
    vi, sep, en = message.partition(" / ")
    assert sep and vi and en and vi != en, message
    assert re.search(r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", vi, re.I), message


# -- sources and precedence ---------------------------------------------------------

def test_defaults_without_file_or_environment():
    settings = load_settings(None, env={})
    assert settings == Settings()
    assert settings.mode == "development" and settings.language == "vi"
    assert settings.session_idle_minutes == 15 and settings.session_lifetime_hours == 12


def test_file_values_are_read(write):
    path = write('mode = "test"\nlanguage = "en"\nallowed_hosts = ["a.example", "b.example"]\n'
                 'session_idle_minutes = 5\n[plugins]\ndisabled = ["national_link"]\n'
                 '[plugins.kinhte_xahoi]\nenabled_by_default = false\n')
    settings = load_settings(path, env={})
    assert settings.mode == "test" and settings.language == "en"
    assert settings.allowed_hosts == ("a.example", "b.example")
    assert settings.session_idle_minutes == 5
    assert settings.plugins.disabled == ("national_link",)
    assert settings.plugin("kinhte_xahoi") == {"enabled_by_default": False}
    assert settings.source == str(path)


def test_environment_wins_over_the_file(write):
    path = write('language = "en"\nsession_idle_minutes = 5\nallowed_hosts = ["file.example"]\n')
    settings = load_settings(path, env={"BAOCAO_LANGUAGE": "vi", "BAOCAO_SESSION_IDLE_MINUTES": "30",
                                        "BAOCAO_ALLOWED_HOSTS": "a.example, b.example",
                                        "BAOCAO_PLUGINS_DISABLED": "chuyen_nganh"})
    assert settings.language == "vi"
    assert settings.session_idle_minutes == 30
    assert settings.allowed_hosts == ("a.example", "b.example")
    assert settings.plugins.disabled == ("chuyen_nganh",)


def test_the_file_is_named_by_baocao_settings(write):
    path = write('language = "en"\n')
    assert load_settings(None, env={"BAOCAO_SETTINGS": str(path)}).language == "en"


def test_other_environment_variables_are_ignored():
    settings = load_settings(None, env={"PATH": "/usr/bin", "HOME": "/root", "LANG": "C"})
    assert settings == Settings()


# -- secrets by indirection -------------------------------------------------------

def test_env_indirection(write):
    path = write('secret_key = { "$env" = "MY_SECRET" }\ndatabase_url = { "$env" = "MY_DB" }\n')
    settings = load_settings(path, env={"MY_SECRET": GOOD_SECRET, "MY_DB": "sqlite:///x.db"})
    assert settings.secret_key == GOOD_SECRET
    assert settings.database_url == "sqlite:///x.db"


def test_env_indirection_to_a_missing_variable_names_both(write):
    message = refused(write('secret_key = { "$env" = "MY_SECRET" }\n'))
    assert "secret_key" in message and "MY_SECRET" in message
    assert_bilingual(message)


def test_file_indirection_strips_the_trailing_newline(write, tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(GOOD_SECRET + "\n", encoding="utf-8")
    settings = load_settings(write(f'secret_key = {{ "$file" = "{secret_file}" }}\n'), env={})
    assert settings.secret_key == GOOD_SECRET


def test_file_indirection_to_a_missing_file_names_it(write, tmp_path):
    missing = tmp_path / "nope"
    message = refused(write(f'secret_key = {{ "$file" = "{missing}" }}\n'))
    assert "secret_key" in message and str(missing) in message
    assert_bilingual(message)


def test_indirection_inside_a_plugin_table(write):
    path = write('[plugins.national_link]\nendpoint = "https://x.example"\napi_token = { "$env" = "NL_TOKEN" }\n')
    settings = load_settings(path, env={"NL_TOKEN": "t0ken"})
    assert settings.plugin("national_link") == {"endpoint": "https://x.example", "api_token": "t0ken"}


def test_secret_key_file_variable(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(GOOD_SECRET, encoding="utf-8")
    assert load_settings(None, env={"BAOCAO_SECRET_KEY_FILE": str(secret_file)}).secret_key == GOOD_SECRET
    # BAOCAO_SECRET_KEY itself wins over the file.
    both = load_settings(None, env={"BAOCAO_SECRET_KEY_FILE": str(secret_file), "BAOCAO_SECRET_KEY": "direct"})
    assert both.secret_key == "direct"


def test_secret_key_file_variable_pointing_nowhere(tmp_path):
    message = refused(env={"BAOCAO_SECRET_KEY_FILE": str(tmp_path / "nope")})
    assert "BAOCAO_SECRET_KEY_FILE" in message


# -- unknown names --------------------------------------------------------------------

def test_unknown_top_level_key(write):
    message = refused(write('secret_kye = "x"\n'))
    assert '"secret_kye"' in message
    assert_bilingual(message)


def test_unknown_plugins_key(write):
    message = refused(write('[plugins]\nalow_external = ["x"]\n'))
    assert '"plugins.alow_external"' in message
    assert_bilingual(message)


def test_unknown_environment_variable():
    message = refused(env={"BAOCAO_SECRETKEY": "x"})
    assert '"BAOCAO_SECRETKEY"' in message
    assert_bilingual(message)


@pytest.mark.parametrize("text, culprit", [
    ('session_idle_minutes = "soon"\n', "session_idle_minutes"),
    ("session_idle_minutes = 0\n", "session_idle_minutes"),
    ('mode = "prod"\n', "mode"),
    ('language = "fr"\n', "language"),
    ("allowed_hosts = 3\n", "allowed_hosts"),
])
def test_bad_values_are_named(write, text, culprit):
    message = refused(write(text))
    assert f'"{culprit}"' in message
    assert_bilingual(message)


def test_missing_settings_file_is_named(tmp_path):
    missing = tmp_path / "nope.toml"
    message = refused(missing)
    assert str(missing) in message


def test_broken_toml_is_named(write):
    path = write("mode = \n")
    message = refused(path)
    assert str(path) in message


# -- database URLs --------------------------------------------------------------------

@pytest.mark.parametrize("url", ["foo", "mysql://x/y", "sqlite://", "sqlite:///", "postgresql://host:notaport/db",
                                 "postgresql://host/", "postgresql://host/a/b", "sqlite://host/x.db"])
def test_malformed_database_urls_are_refused_by_name(url):
    message = refused(env={"BAOCAO_DATABASE_URL": url})
    assert url in message
    assert_bilingual(message)


@pytest.mark.parametrize("url", ["postgresql://baocao:s3cr3t-pw@db.example:notaport/baocao",
                                 "postgresql://baocao:s3cr3t@pw@db.example/",
                                 "mysql://baocao:s3cr3t-pw@db.example/baocao"])
def test_a_refused_url_is_named_without_its_password(url):
    message = refused(env={"BAOCAO_DATABASE_URL": url})
    assert "s3cr3t" not in message and "pw@" not in message
    assert "baocao:***@" in message and "db.example" in message


@pytest.mark.parametrize("url", ["sqlite:///baocao.db", "sqlite:////var/lib/baocao/x.db", "sqlite:///:memory:",
                                 "postgresql://u:p@localhost:5432/baocao", "postgres://localhost/baocao"])
def test_good_database_urls_are_accepted(url):
    assert load_settings(None, env={"BAOCAO_DATABASE_URL": url}).database_url == url


# -- production -----------------------------------------------------------------------

PRODUCTION = {"BAOCAO_MODE": "production", "BAOCAO_ALLOWED_HOSTS": "baocao.quangtri.gov.vn"}


@pytest.mark.parametrize("secret", ["", "changeme", "  changeme  ", "CHANGEME", "x" * (MIN_SECRET_LENGTH - 1)])
def test_production_refuses_an_empty_sample_or_short_secret(secret):
    settings = load_settings(None, env={**PRODUCTION, "BAOCAO_SECRET_KEY": secret})
    with pytest.raises(SettingsError) as caught:
        settings.check_for_production()
    message = str(caught.value)
    assert '"secret_key"' in message and "BAOCAO_SECRET_KEY" in message
    assert str(MIN_SECRET_LENGTH) in message
    if secret.strip():
        assert secret.strip() not in message  # the secret itself is never echoed
    assert_bilingual(message)


def test_production_refuses_a_wildcard_host():
    settings = load_settings(None, env={"BAOCAO_MODE": "production", "BAOCAO_SECRET_KEY": GOOD_SECRET})
    assert settings.allowed_hosts == ("*",)
    with pytest.raises(SettingsError) as caught:
        settings.check_for_production()
    assert '"allowed_hosts"' in str(caught.value)
    assert_bilingual(str(caught.value))


def test_production_accepts_a_long_random_secret_and_named_hosts():
    settings = load_settings(None, env={**PRODUCTION, "BAOCAO_SECRET_KEY": GOOD_SECRET})
    settings.check_for_production()
    assert settings.production and settings.secure_cookies


def test_development_accepts_an_empty_secret():
    settings = load_settings(None, env={"BAOCAO_MODE": "development"})
    settings.check_for_production()
    assert not settings.secure_cookies


# -- redact -----------------------------------------------------------------------------

def test_redact_hides_secret_looking_keys_at_any_depth():
    config = {"endpoint": "https://x.example", "api_token": "t", "client_secret": "s", "password": "p",
              "signing": {"key_file": "/k.pem", "dsn": "postgresql://u:p@h/d", "label": "Sở"},
              "retries": 3}
    shown = redact(config)
    assert shown["endpoint"] == "https://x.example" and shown["retries"] == 3
    assert shown["signing"]["label"] == "Sở"
    for value in (shown["api_token"], shown["client_secret"], shown["password"],
                  shown["signing"]["key_file"], shown["signing"]["dsn"]):
        assert value == "••••••"
    assert config["api_token"] == "t"  # the original is left alone


def test_reminder_days_before_is_read_and_kept_within_reason(write):
    assert load_settings(None, env={}).reminder_days_before == 2
    assert load_settings(None, env={"BAOCAO_REMINDER_DAYS_BEFORE": "3"}).reminder_days_before == 3
    assert load_settings(write("reminder_days_before = 1\n"), env={}).reminder_days_before == 1
    for wrong in ("30", "0"):
        with pytest.raises(SettingsError) as refused:
            load_settings(None, env={"BAOCAO_REMINDER_DAYS_BEFORE": wrong})
        assert "reminder_days_before" in str(refused.value).lower()

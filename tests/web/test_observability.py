"""Structured logs and Prometheus metrics (issue 17 item 6; security.md LOG-03, LOG-04;
docs/observability.md)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from core.logs import JsonFormatter, TextFormatter
from web.testing import csrf_from

TOKEN = "metrics-token-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = dt.datetime(2026, 3, 2, 8, 0, 0)


@pytest.fixture
def log_lines(caplog):
    """What the root logger writes in each format: ``log_lines()`` → (JSON lines, text lines)."""
    streams = {"json": io.StringIO(), "text": io.StringIO()}
    handlers = []
    for name, formatter in (("json", JsonFormatter()), ("text", TextFormatter())):
        handler = logging.StreamHandler(streams[name])
        handler.setFormatter(formatter)
        handlers.append(handler)
        logging.getLogger().addHandler(handler)
    caplog.set_level(logging.INFO)
    # str.splitlines also splits at NEL and U+2028: the strictest reader there is.
    yield lambda: (streams["json"].getvalue().splitlines(), streams["text"].getvalue().splitlines())
    for handler in handlers:
        logging.getLogger().removeHandler(handler)


def _access(records: list[dict], method: str, route: str) -> list[dict]:
    return [r for r in records if r["logger"] == "baocao.access" and r["method"] == method and r["route"] == route]


def test_json_log_lines_carry_the_request_and_no_secret(client, make_user, log_lines):
    user, password = make_user()
    page = client.get("/login")
    csrf = csrf_from(page.text)
    client.post("/login", data={"username": user.username, "password": password, "csrf_token": csrf},
                follow_redirects=False)
    home = client.get("/")
    assert home.status_code == 200

    lines, _ = log_lines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        assert dt.datetime.fromisoformat(record["time"]).utcoffset() == dt.timedelta(0)  # UTC, offset written
    (login,) = _access(records, "POST", "/login")
    assert login["status"] == 303 and login["username"] is None  # not logged in while it was asked
    (seen,) = _access(records, "GET", "/")
    assert seen["status"] == 200 and seen["request_id"] == home.headers["x-request-id"]
    assert (seen["user_id"], seen["username"], seen["unit_id"]) == (user.id, user.username, user.unit_id)
    assert seen["client"] == "testclient" and seen["duration_ms"] >= 0
    everything = "\n".join(lines)
    secrets = [password, csrf, *client.cookies.values()]
    assert all(len(secret) >= 8 and secret not in everything for secret in secrets)


def test_a_route_is_logged_by_its_template_and_a_traceback_is_one_field(client, login, log_lines, monkeypatch):
    import web.routes.home as home

    login()
    client.get("/reports/987654")  # no such report: the template, not the number
    monkeypatch.setattr(home, "render", lambda *a, **k: 1 / 0)
    assert client.get("/").status_code == 500

    lines, _ = log_lines()
    records = [json.loads(line) for line in lines]
    assert [r["status"] for r in _access(records, "GET", "/reports/{id:int}")] == [404]
    assert not any("987654" in json.dumps(r) for r in records if r["logger"].startswith("baocao"))
    (failed,) = _access(records, "GET", "/")
    assert failed["status"] == 500
    (error,) = [r for r in records if "traceback" in r]
    assert error["level"] == "ERROR" and "ZeroDivisionError" in error["traceback"]
    assert failed["request_id"] in error["message"]


def test_a_username_with_a_newline_stays_one_line(client, login, log_lines):
    from core.db import db
    from core.models import User

    user = login()
    forged = 'x\n{"level": "CRITICAL", "message": "forged"}\r\u2028\x1b'
    with db.connection_context():  # as an old import could have left it: the login form refuses it
        User.update(username=forged).where(User.id == user.id).execute()
    client.get("/")

    json_lines, text_lines = log_lines()
    records = [json.loads(line) for line in json_lines]
    (seen,) = _access(records, "GET", "/")
    assert seen["username"] == forged
    assert not any("forged" in r["message"] for r in records if r["logger"] != "baocao.access")
    # The text format writes the same records, one line each, the controls escaped.
    assert len(text_lines) == len(json_lines)
    (text,) = [line for line in text_lines if "baocao.access: GET / 200" in line]
    assert '\\n{"level": "CRITICAL"' in text


def test_metrics_answer_404_without_a_token_setting(client):
    assert client.get("/metrics", headers=AUTH).status_code == 404


def _scrape(client) -> dict:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_need_the_token_and_count_the_requests(make_app, make_settings, make_user, frozen_clock):
    from core import outbox
    from core.background import BackgroundJob
    from core.db import db
    from core.metrics import record_job_run

    app = make_app(make_settings(metrics_token=TOKEN), strict=True)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert "Sai hoặc thiếu mã truy cập" in refused.text
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        client.get("/no/such/page")

        frozen_clock(T0)
        user, _ = make_user()
        with db.connection_context():
            outbox.enqueue("smtp", {"to": "a@example.org"})
            record_job_run("core.deliver_outbox", True)
            record_job_run("core.deliver_outbox", True)
            record_job_run("core.deliver_outbox", False)
            BackgroundJob.create(kind="consolidation.rebuild", title="background.title.rebuild", account=user,
                                 process="elsewhere:1:x", created_at=T0)
        frozen_clock(T0 + dt.timedelta(seconds=90))
        samples = _scrape(client)

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    duration = "baocao_http_request_duration_seconds"
    assert value(f"{duration}_count", method="GET", route="/healthz", status="2xx") == 3
    assert value(f"{duration}_count", method="GET", route="(unmatched)", status="4xx") == 1
    assert value(f"{duration}_count", method="GET", route="/metrics", status="4xx") == 2  # the refusals
    assert value("baocao_http_requests_in_flight") == 1  # the scrape itself
    assert value("baocao_outbox_messages", channel="smtp", state="pending") == 1
    assert value("baocao_outbox_messages", channel="smtp", state="failed") == 0
    assert value("baocao_outbox_oldest_pending_age_seconds", channel="smtp") == 90
    assert value("baocao_job_runs_total", job="core.deliver_outbox", result="ok") == 2
    assert value("baocao_job_runs_total", job="core.deliver_outbox", result="error") == 1
    assert value("baocao_job_last_run_timestamp_seconds", job="core.deliver_outbox") == \
        T0.replace(tzinfo=dt.timezone.utc).timestamp()
    assert value("baocao_consolidation_lag_seconds") == 90
    assert value("baocao_database_up") == 1
    assert value("baocao_build_info", version=__import__("core").__version__) == 1
    assert value("baocao_worker_processes") == 1
    assert value("process_resident_memory_bytes", pid=str(os.getpid())) > 0
    assert value("process_open_fds", pid=str(os.getpid())) > 0


WORKER = """
import sys
from core.metrics import Metrics
metrics = Metrics()
metrics.observe_request("GET", "/reports/{id:int}", 200, 0.02)
metrics.in_flight.inc()  # in the middle of a request ...
print("ready", flush=True)
sys.stdin.read()  # ... until told to end (the one still running), or at once (the other)
"""


def test_a_scrape_sums_the_workers_and_forgets_the_ended_ones(tmp_path, db_session):
    from core.metrics import Metrics

    directory = tmp_path / "metrics"  # its own: the collector reads every *.db file there
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    running, ended = (subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True) for _ in range(2))
    try:
        assert running.stdout.readline() == "ready\n"
        ended.communicate("", timeout=60)
        text = Metrics(multiprocess_dir=str(directory)).exposition().decode()
    finally:
        running.communicate("", timeout=60)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    key = (("method", "GET"), ("route", "/reports/{id:int}"), ("status", "2xx"))
    assert samples[("baocao_http_request_duration_seconds_count", key)] == 2  # both workers' requests
    assert samples[("baocao_http_requests_in_flight", ())] == 1  # the ended worker's is forgotten
    assert samples[("baocao_worker_processes", ())] == 1
    assert ("process_open_fds", (("pid", str(running.pid)),)) in samples


def test_serve_logs_once_per_request_in_every_worker(monkeypatch, make_settings):
    import uvicorn

    from core import cli

    called = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: called.update(kwargs))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    cli._serve("web.asgi:create", "127.0.0.1", 8000, 2, factory=True, settings=make_settings(log_format="json"))
    directory = os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
    assert called["access_log"] is False  # ours (baocao.access) is the one line per request
    assert called["log_config"]["handlers"]["console"]["formatter"] == "json"
    assert called["log_config"]["loggers"]["uvicorn.access"]["propagate"] is False
    assert open(os.path.join(directory, "workers")).read() == "2"


def test_the_worker_counts_each_run_of_its_jobs(app, settings):
    from core.db import db
    from core.jobs import make_huey
    from core.metrics import JobRun, count_job_runs

    huey = make_huey(settings, immediate=True)
    count_job_runs(huey)  # as baocao worker does (core.jobs.run_worker)

    @huey.task(name="fx.works")
    def works():
        return 1

    @huey.task(name="fx.fails")
    def fails():
        raise RuntimeError("on purpose")

    works()
    works()
    fails()
    with db.connection_context():
        runs = {row.job: (row.ok, row.error) for row in JobRun.select()}
    assert runs == {"fx.works": (2, 0), "fx.fails": (0, 1)}

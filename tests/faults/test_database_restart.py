"""PostgreSQL restarted under load (issue 17; security.md DB-09): the application serves requests
in a real server (uvicorn, on a free port) while every server-side connection of its database is
ended (``pg_terminate_backend``: for the application exactly what a restart of PostgreSQL does,
without stopping the server the other tests share), several times. Every request either succeeds
or fails cleanly — a 503 page saying the system is reconnecting to its database, in the person's
language (Vietnamese or English), no traceback, no hang — and once the breaks stop, requests succeed again with no restart of the application: the
pool opens new connections in place of the dead ones."""

from __future__ import annotations

import http.cookiejar
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

BREAKS = 4
CLIENTS = 3
REQUESTS_AFTER = 20  # per client, once the breaks are over: every one must succeed

pytestmark = pytest.mark.skipif(
    not (os.environ.get("BAOCAO_TEST_DATABASE_URL") or "").startswith("postgres"),
    reason="PostgreSQL only: on SQLite there is no database server to restart")


class _Server:
    """The application under uvicorn in a thread of this process."""

    def __init__(self, app):
        import uvicorn

        # Port 0: the system gives a free one (read back once the server listens).
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


class _Browser:
    """A logged-in person: cookies kept, redirects not followed, every answer returned."""

    def __init__(self, base: str, username: str, password: str, lang: str):
        self.base, self.lang = base, lang
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  _NoRedirect())
        # As a browser says it: the page of a request that failed before the person was known is
        # still in their language.
        self.opener.addheaders = [("Accept-Language", lang)]
        from web.testing import csrf_from

        status, page = self.get("/login")
        assert status == 200, page[:500]
        status, body = self.request("/login", {"username": username, "password": password,
                                               "csrf_token": csrf_from(page)})
        assert status == 303, body[:500]

    def request(self, path: str, form: dict | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            # A hung request fails the test here (the timeout), never blocks it.
            with self.opener.open(self.base + path, data=data, timeout=30) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def get(self, path: str) -> tuple[int, str]:
        return self.request(path)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _clean_failure(status: int, body: str, lang: str) -> str:
    """'' when ``body`` is a clean error page: 503 (nothing is wrong with the request: try again),
    saying the system is reconnecting to its database, in the person's language (Vietnamese for one,
    English for the other: the browser's, also when the request failed while its session was being
    read), no traceback."""
    import html

    from core.i18n import core_catalog

    if status != 503:
        return f"status {status}"
    if "Traceback" in body or 'File "' in body:
        return "a traceback on the page"
    if core_catalog().gettext(lang, "error.reason.reconnecting") not in html.unescape(body):
        return f"no 'reconnecting' message in {lang}"
    return ""


def _terminate_backends(settings) -> int:
    """End every connection to the application's database but this one: PostgreSQL restarted."""
    import psycopg

    name = settings.database_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall())


def test_requests_fail_cleanly_while_postgresql_restarts_and_succeed_after(app, make_user, settings):
    from core.db import db
    from core.models import User

    people = []
    for lang in ("vi", "en"):
        user, password = make_user(roles=("reporter",))
        with db.connection_context():
            User.update(language=lang).where(User.id == user.id).execute()
        people.append((user.username, password, lang))
    failures, problems, successes = [], [], []
    stop = threading.Event()

    def load(browser):
        while not stop.is_set():
            try:
                status, body = browser.get("/")
            except OSError as exc:  # no answer in time, or the connection dropped: not clean
                problems.append(f"no answer: {exc!r}")
                return
            if status == 200:
                successes.append(status)
                continue
            failures.append(status)
            problem = _clean_failure(status, body, browser.lang)
            if problem:
                problems.append(f"{problem}: {body[:800]}")

    def served(count=5):
        """Wait for ``count`` successful answers (the app recovered); fail rather than wait forever."""
        deadline = time.monotonic() + 60
        while len(successes) < count:
            assert time.monotonic() < deadline, f"no recovery: {failures[-10:]} {problems[:2]}"
            time.sleep(0.01)

    with _Server(app) as base:
        browsers = [_Browser(base, *people[n % len(people)]) for n in range(CLIENTS)]
        threads = [threading.Thread(target=load, args=(b,)) for b in browsers]
        for thread in threads:
            thread.start()
        ended = 0
        for _ in range(BREAKS):
            served()  # load running on live connections before each break
            successes.clear()
            ended += _terminate_backends(settings)
        served()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not problems, problems[:3]
        assert ended >= BREAKS  # the application's connections were there, and ended
        # Only requests caught on a connection as it ended fail: the pool checks an idle connection
        # before handing it out (core.db._PostgresPool: whether the server ended it) and opens a new
        # one for a dead one.
        assert len(failures) <= ended, (len(failures), ended)
        # After the last break: no failure at all, on connections opened again by the same process.
        for browser in browsers:
            answers = [browser.get("/")[0] for _ in range(REQUESTS_AFTER)]
            assert answers == [200] * REQUESTS_AFTER, answers
    print(f"{ended} connections ended in {BREAKS} breaks; {len(failures)} requests failed cleanly: {failures}")


def _backend_gone(settings, pid: int) -> bool:
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0


def test_the_pool_hands_out_no_connection_the_server_ended_and_asks_nothing_of_a_live_one(db_session, settings):
    """The pool's check at checkout (core.db._PostgresPool): a connection the server ended while it
    sat idle in the pool is replaced, so the next statement succeeds; a live one is handed out
    without a round trip (the backend's last statement is still the caller's, not a SELECT 1)."""
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    from core.db import db

    def pid(sql="SELECT pg_backend_pid()"):
        with db.connection_context():  # checked out of the pool, handed back at the end
            return db.execute_sql(sql).fetchone()[0]

    def nothing():
        with db.connection_context():
            pass

    # One worker thread beside the test's own (whose connection db_session keeps open).
    with ThreadPoolExecutor(1) as worker:
        first = worker.submit(pid).result()
        assert worker.submit(pid, "SELECT pg_backend_pid() AS again").result() == first  # the same idle one
        worker.submit(nothing).result()  # checked out and handed back: nothing reaches the server
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            last = conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone()[0]
        assert last == "SELECT pg_backend_pid() AS again"

        _terminate_backends(settings)
        deadline = time.monotonic() + 10
        while not _backend_gone(settings, first):
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)
        assert worker.submit(pid).result() != first  # a new connection, and no error

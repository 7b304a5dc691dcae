"""The cap on a report's attachments holds under parallel uploads (issue 12, item 13).

60 parallel uploads once stored 60 attachments against a cap of 30 on PostgreSQL: each upload
counted before any had committed. Here every upload is held after its first check until all
have passed it, so without a count under a lock they would all be stored. Runs on SQLite and
PostgreSQL, each upload in its own thread with its own connection.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from core.reporting import data as rd
from core.db import db
from core.errors import BaocaoError
from tests.fixtures.forms import form_world

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PARALLEL = 6


@pytest.fixture
def w(db_session):
    return form_world()


def test_parallel_uploads_never_store_more_than_the_cap(w, settings, tmp_path, monkeypatch):
    settings = replace(settings, files_dir=str(tmp_path / "files"))
    for n in range(rd.MAX_ATTACHMENTS - 1):
        rd.add_attachment(w.p["reporter"], w.report.id, f"phu-luc-{n}.pdf", PDF, settings=settings)
    # Every upload waits here, after the first count and before storing, until all have counted.
    barrier = threading.Barrier(PARALLEL)
    original = rd.attachment_path

    def held(root, stored_name):
        barrier.wait(timeout=60)
        return original(root, stored_name)

    monkeypatch.setattr(rd, "attachment_path", held)
    stored, refused, errors = [], [], []

    def upload(n):
        try:
            with db.connection_context():
                stored.append(rd.add_attachment(w.p["reporter"], w.report.id, f"them-{n}.pdf", PDF,
                                                settings=settings))
        except BaocaoError as exc:
            refused.append(exc.key)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(stored) == 1 and refused == ["report_data.error.too_many_files"] * (PARALLEL - 1)
    assert rd.ReportAttachment.select().where(rd.ReportAttachment.report == w.report.id).count() \
        == rd.MAX_ATTACHMENTS
    # A refused upload leaves no file behind.
    files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert len(files) == rd.MAX_ATTACHMENTS

"""Each server worker fixes glibc's threshold for mapped blocks (core/malloc.py), so the 19 MiB of
an Argon2id hash go back to the system when it is done. The memory itself is measured in
bench/load.py (peak RSS of the workers), not here."""

from __future__ import annotations

import ctypes.util
import platform

from core import malloc


def test_on_glibc_the_threshold_is_set_and_elsewhere_nothing_is_done(monkeypatch):
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert malloc.map_large_blocks() is on_glibc
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)  # no C library found: no error either
    assert malloc.map_large_blocks() is False


def test_every_server_worker_sets_it_when_it_builds_the_app(monkeypatch, make_app):
    calls = []
    monkeypatch.setattr(malloc, "map_large_blocks", lambda: calls.append(1) or True)
    make_app()
    assert calls == [1]

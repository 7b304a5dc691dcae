"""A burst of logins computes at most ``HASHES_AT_ONCE`` Argon2id hashes at a time in a process:
each takes 19 MiB, and one per worker thread left a worker at ~800 MB for the rest of its life
(bench/load.py, issue 17). The rest wait their turn and still get the right answer."""

from __future__ import annotations

import threading
import time

from core.accounts import passwords


class _CountingArgon2id:
    """Stands in for ``Argon2id``: records how many verifications run at the same moment."""

    lock = threading.Lock()
    running = 0
    most = 0

    @classmethod
    def verify_phc_encoded(cls, key: bytes, encoded: str) -> None:
        with cls.lock:
            cls.running += 1
            cls.most = max(cls.most, cls.running)
        time.sleep(0.05)  # long enough for every thread to arrive while others still hash
        with cls.lock:
            cls.running -= 1
        if encoded != "right":
            raise passwords.InvalidKey()


def test_a_burst_of_logins_hashes_at_most_two_passwords_at_once(monkeypatch):
    monkeypatch.setattr(passwords, "Argon2id", _CountingArgon2id)
    answers = {}

    def log_in(i: int) -> None:
        answers[i] = passwords.verify_password("a password", "right" if i % 2 else "wrong")

    threads = [threading.Thread(target=log_in, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _CountingArgon2id.most == passwords.HASHES_AT_ONCE == 2
    assert answers == {i: bool(i % 2) for i in range(8)}


def test_hashes_made_side_by_side_each_verify():
    hashes = [None] * 4

    def make(i: int) -> None:
        hashes[i] = passwords.hash_password(f"mật khẩu {i}")

    threads = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(passwords.verify_password(f"mật khẩu {i}", h) for i, h in enumerate(hashes))
    assert not passwords.verify_password("mật khẩu 0", hashes[1])

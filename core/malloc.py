"""Large blocks go back to the system when freed (glibc's malloc; elsewhere nothing to do).

An Argon2id hash (core.accounts.passwords) takes a 19 MiB block. glibc serves a block that large
with its own mapping, returned at ``free`` — but after the first such free it raises its
threshold for mappings to that size, so later hashes are carved from the thread's heap instead,
and each worker thread's heap keeps its 19 MiB (or more, fragmented) for the life of the process.
Under a burst of logins a server worker went from 110 MB to 400–650 MB and stayed there
(bench/load.py, issue 17). A fixed threshold turns that adjustment off: blocks of 4 MiB and more
are always mapped, and unmapped when freed. Python's own objects are far smaller (its allocator
takes 1 MiB arenas), so they are not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MAPPED_FROM = 4 * 1024 * 1024


def map_large_blocks() -> bool:
    """Fix glibc's threshold for mapped blocks at ``MAPPED_FROM``; True when it was set (glibc)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): no such adjustment to turn off
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MAPPED_FROM) == 1
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused: large freed blocks may stay with the process")
    return done

"""The worker's dealings with its OS, through libc: its threads under their
names in the OS too (``top -H``, /proc/PID/task/*/comm), so that a person,
or bench/, can see where the process's CPU goes (Python keeps a thread's name
to itself); the number of malloc arenas; and the heap's free pages given
back when the worker goes idle."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

_PR_SET_NAME = 15
_M_ARENA_MAX = -8  # mallopt's parameter
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread ``name`` (its Python name when None) in the OS:
    at most 15 bytes, as Linux keeps. Does nothing where prctl is missing."""
    raw = (name or threading.current_thread().name).encode("ascii", "replace")[:15]
    try:
        _LIBC.prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0)
    except AttributeError:  # not Linux
        pass


def give_back_free_heap() -> None:
    """glibc's malloc_trim(0): the free pages of the heap back to the system.
    After a burst, the batches' arrays are freed but glibc keeps the pages
    (below its mmap threshold, which it raises after large frees): the RSS
    stayed up until the next burst. Cheap when idle (milliseconds); the
    consumer calls it when the last batch in flight is durable and nothing
    waits. Does nothing where glibc is missing."""
    try:
        _LIBC.malloc_trim(0)
    except AttributeError:  # not glibc
        pass


def limit_malloc_arenas(arenas: int) -> bool:
    """glibc's mallopt(M_ARENA_MAX, arenas); False where glibc is missing."""
    try:
        return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))
    except AttributeError:  # not glibc: its allocator has no such knob
        return False

"""Is the wall clock right yet? A Pi has no real-time clock: after a power cut it boots
with the time fake-hwclock saved last, and NTP corrects it only once the network is up.
Events stamped before that carry their monotonic time too, so their timestamps can be
corrected when the kernel reports the clock synchronized (see outbox.fix_times)."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from functools import cache
from pathlib import Path

TIME_ERROR = 5  # adjtimex(): the clock is not synchronized (STA_UNSYNC)


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def clock_synchronized() -> bool | None:
    """The kernel's view (any NTP client sets it); None where it cannot be asked."""
    libc = _libc()
    if libc is None or not hasattr(libc, "adjtimex"):
        return None
    buf = ctypes.create_string_buffer(512)  # struct timex; modes = 0: only read
    state = libc.adjtimex(buf)
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


@cache
def boot_id() -> str:
    """Monotonic times mean something only within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"unknown-{time.time_ns()}"

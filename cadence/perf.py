"""Process-wide performance settings, applied by Cadence's command-line entry points (not on import).

glibc returns large freed blocks to the kernel (mmap/trim), so every new large tensor page-faults
in 4 KiB pages: on the 2-core machines we test on, allocating and touching a fresh 134 MB output
costs ~35 ms, more than the LinOSS scan that fills it.
Keeping freed memory in the heap removes that cost for the repeated same-size tensors of training.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters


def configure_allocator() -> bool:
    """Keep freed memory for reuse (glibc only); returns whether the setting was applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):  # musl or another libc without mallopt
        ok = False
    if not ok:
        log.info("could not tune the allocator (not glibc); large tensors will page-fault on first use")
    return ok

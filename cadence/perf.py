"""Process-wide performance settings, applied by Cadence's command-line entry points (not on import), and the
measurement of a block's peak memory (:class:`PeakMemory`).

glibc returns large freed blocks to the kernel (mmap/trim), so every new large tensor page-faults
in 4 KiB pages: on the 2-core machines we test on, allocating and touching a fresh 134 MB output
costs ~35 ms, more than the LinOSS scan that fills it.
Keeping freed memory in the heap removes that cost for the repeated same-size tensors of training.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
import threading

import psutil

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


class PeakMemory:
    """``with PeakMemory() as m: ...`` → ``m.peak_mb``: how far the process's resident memory rose above its level
    at the start of the block, in MiB, sampled every ``interval_s`` by a background thread.

    At the start, memory the allocator keeps for reuse (:func:`configure_allocator`) is handed back to the
    kernel first (glibc ``malloc_trim``), so a block is not credited with memory an earlier one freed: the
    number is what the block itself needed (tensors, activations kept for the backward, buffers).
    """

    def __init__(self, interval_s: float = 0.01):
        self.interval_s, self.peak_mb = interval_s, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
        self._process = psutil.Process()
        self._start = self._peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.peak_mb = (self._peak - self._start) / 2**20

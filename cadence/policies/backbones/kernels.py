"""numba, set up once for the compiled CPU kernels of the recurrences (:mod:`.scan`, :mod:`.selective_scan`).

numba is a dependency; when it cannot be imported the kernels' callers fall back to their PyTorch loops and the
log says so once.
"""

from __future__ import annotations

import functools
import logging
import os
import types
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

_numba = None


def numba_module():
    """The ``numba`` module with its threading layer chosen, or None when it cannot be imported."""
    global _numba
    if _numba is not None:
        return _numba or None
    try:
        import numba
    except ImportError as e:  # pragma: no cover - numba is a dependency; keep the fallback honest
        log.warning("numba unavailable (%s); the recurrences use their slow PyTorch loops", e)
        _numba = False
        return None
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's OpenMP layer leaves its worker threads spin-waiting after each kernel; on a 2-core
        # machine they starve PyTorch's own threads (a 15 ms training step took 1.4 s). The
        # workqueue layer sleeps between kernels.
        numba.config.THREADING_LAYER = "workqueue"
    _numba = numba
    return numba


def share_torch_threads() -> None:
    """Run the numba kernels on as many threads as PyTorch's intra-op pool (at most numba's own limit): a process
    given its share of the cores (``OMP_NUM_THREADS``, as torchrun and joblib's workers set it, or
    ``torch.set_num_threads``) keeps to it in the kernels too, instead of one numba thread per core."""
    numba = numba_module()
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def as_numpy(t: torch.Tensor):
    """Zero-copy NumPy view of a contiguous CPU tensor."""
    return t.detach().numpy()


def compiled(build: Callable) -> Callable:
    """Decorator: ``build(numba)`` (which defines and returns a module's kernels) becomes a function of no
    arguments that returns those kernels, built once per process (numba caches the machine code on disk), or
    None when numba cannot be imported."""

    @functools.cache
    def kernels():
        numba = numba_module()
        return None if numba is None else build(numba)

    return functools.update_wrapper(kernels, build)


PARALLEL_MIN_WORK = 1 << 20
"""Work (inner-loop iterations: batch × steps × channels, times the length of an inner loop over states or inputs
where the kernel has one) below which a kernel runs its serial build. numba's parallel build costs ~0.1 ms a call
in thread wake-ups and compiles to slower code: the LinOSS scan's forward at 8 × 16 × 256 took 120 µs parallel
against 16 µs serial (2 cores, 2 threads; the two builds of ``scan._numba_kernels()`` timed directly); in whole BC training steps (``benchmarks/throughput.py``, B = 8,
N = 128) the parallel build lost at L = 256 (0.26M) and won at L = 1024 (1.05M) and beyond."""


class Threaded:
    """A kernel whose outer loop is ``numba.prange``, compiled twice: parallel over that loop, and serial (where
    ``prange`` is ``range``). Calling it with the kernel's work (elements) first runs the parallel build only where
    it pays: more than one numba thread (:func:`share_torch_threads`) and at least :data:`PARALLEL_MIN_WORK`."""

    def __init__(self, numba, fn: Callable, **options):
        self._numba = numba
        self.parallel = numba.njit(parallel=True, **options)(fn)
        # numba's disk cache keys a kernel by its qualified name and line, not its flags: the serial build
        # compiles a copy of the function under a name of its own, or the two builds would load each other.
        serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        serial.__qualname__ = f"{fn.__qualname__}_serial"
        self.serial = numba.njit(**options)(serial)
        functools.update_wrapper(self, fn)

    def __call__(self, work: int, *args):
        parallel = work >= PARALLEL_MIN_WORK and self._numba.get_num_threads() > 1
        return (self.parallel if parallel else self.serial)(*args)


def threaded(numba, **options) -> Callable[[Callable], Threaded]:
    """Decorator form of :class:`Threaded`: ``@threaded(numba, cache=True, nogil=True)``."""
    return lambda fn: Threaded(numba, fn, **options)

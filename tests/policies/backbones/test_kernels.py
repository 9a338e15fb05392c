"""The numba kernels' two builds (:class:`cadence.policies.backbones.kernels.Threaded`): the same results, and each
used where the rule says."""

import pytest
import torch

from cadence.policies.backbones import fused_layer, kernels, scan, selective_scan
from cadence.policies.backbones.kernels import PARALLEL_MIN_WORK, numba_module

numba = numba_module()
pytestmark = pytest.mark.skipif(numba is None, reason="numba is not installed")


def _oscillator_args(B=3, L=37, N=10):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(B, L, N, generator=g)
    coefs = [torch.rand(N, dtype=torch.float64, generator=g) * 0.5 for _ in range(6)]
    z0, x0 = torch.randn(B, N, dtype=torch.float64, generator=g), torch.randn(B, N, dtype=torch.float64, generator=g)
    keep = (torch.rand(B, L, generator=g) > 0.1).double()
    return u, coefs, z0, x0, keep


def _run_scan(build):
    """scan.py's forward kernel through ``build`` ("serial" or "parallel"): its (xs, zs, z_out, x_out)."""
    u, coefs, z0, x0, keep = _oscillator_args()
    fwd = getattr(scan._numba_kernels()[0], build)
    xs, zs = torch.empty_like(u), torch.empty_like(u)
    z_out, x_out = torch.empty_like(z0), torch.empty_like(x0)
    fwd(u.numpy(), *(c.numpy() for c in coefs), z0.numpy(), x0.numpy(), keep.numpy(), True, xs.numpy(), zs.numpy(),
        True, z_out.numpy(), x_out.numpy())  # fmt: skip
    return xs, zs, z_out, x_out


def test_serial_and_parallel_builds_agree():
    for a, b in zip(_run_scan("serial"), _run_scan("parallel"), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("module", [scan, fused_layer, selective_scan])
def test_the_builds_have_their_own_cache_entries(module):
    # numba's disk cache is keyed by qualified name and line: one shared name would load one build for the other
    for kernel in module._numba_kernels():
        assert kernel.serial.py_func.__qualname__ != kernel.parallel.py_func.__qualname__
        assert kernel.serial.py_func.__code__ is kernel.parallel.py_func.__code__


def test_dispatch_follows_the_work_and_the_threads(monkeypatch):
    calls = []
    kernel = kernels.Threaded(numba, lambda n: n, cache=False)
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append("parallel"))
    monkeypatch.setattr(kernel, "serial", lambda *a: calls.append("serial"))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        kernel(PARALLEL_MIN_WORK, 0)
        if numba.config.NUMBA_NUM_THREADS > 1:
            numba.set_num_threads(2)
            kernel(PARALLEL_MIN_WORK - 1, 0)
            kernel(PARALLEL_MIN_WORK, 0)
            assert calls == ["serial", "serial", "parallel"]
        else:
            assert calls == ["serial"]
    finally:
        numba.set_num_threads(threads)

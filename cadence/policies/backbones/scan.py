"""Evaluating the oscillator recurrence of LinOSS / D-LinOSS over a whole sequence.

Every LinOSS variant reduces to the same per-channel linear recurrence ([LinOSS] eqs. 4 and 6, [D-LinOSS]
§2.2; the references are listed in :mod:`.linoss`) with a 2×2 real transition M and a real input gain f,
shared by all time steps (LTI)::

    z_n = m11 z_{n-1} + m12 x_{n-1} + f1 u_n        (velocity, first half of the state)
    x_n = m21 z_{n-1} + m22 x_{n-1} + f2 u_n        (position, second half; read out)

Symbols: B batch, L time, N channels. The complex forcing Bu of P oscillators is laid out as
N = 2P real channels (re, im interleaved) that share their oscillator's coefficients, since the
transition is real: only Bu is complex, so its real and imaginary parts evolve independently under the
same real dynamics.

The state and coefficients may have a wider dtype than u (LinOSS keeps its state in float64); the
recurrence then runs in that dtype and the positions xs are returned in u's dtype.

``keep`` (B, L) optionally multiplies the previous state before step n (0 at an episode start):
this is the resettable scan used by recurrent PPO.

Three exact evaluations, chosen by :func:`oscillator_scan`:

* ``"numba"`` (default on CPU): a compiled sequential-in-time kernel, parallel over
  batch rows, with the contiguous channel axis innermost, and a hand-written backward
  — the adjoint is the same recurrence run backwards with Mᵀ, and the gradients of M and f are
  sums over time of adjoint × state (docs/benchmarks.md, "LinOSS scan": on 2 cores the associative
  scan is two orders of magnitude slower, while this kernel reaches up to ~70% of the memory-copy
  bandwidth). Numba was chosen over a C++ extension because it installs as a wheel on Linux, macOS
  and Windows and needs no compiler on the user's machine; when it cannot be imported we fall back
  to ``"loop"`` and say so once in the log.
* ``"parallel"`` (default on CUDA): a chunked associative scan with the operator of [LinOSS] §2.4 (the
  official ``binary_operator``), ``(M_i, b_i) • (M_j, b_j) = (M_j M_i, M_j b_i + b_j)`` — log-depth
  inside chunks of ``chunk`` steps, then across chunk summaries — in plain PyTorch, differentiated by
  autograd.
* ``"loop"``: the reference, a Python loop over time. Every fast path is tested against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .kernels import as_numpy, compiled, share_torch_threads, threaded

SCAN_METHODS = ("auto", "numba", "parallel", "loop")


@dataclass(frozen=True)
class Transition:
    """Per-channel coefficients of the recurrence, each (N,)."""

    m11: Tensor
    m12: Tensor
    m21: Tensor
    m22: Tensor
    f1: Tensor
    f2: Tensor

    def as_tuple(self) -> tuple[Tensor, ...]:
        return (self.m11, self.m12, self.m21, self.m22, self.f1, self.f2)


# --------------------------------------------------------------------------------------------
# Reference: a loop over time
# --------------------------------------------------------------------------------------------
def scan_loop(u: Tensor, t: Transition, z0: Tensor, x0: Tensor, keep: Tensor | None = None):
    """u (B, L, N), z0/x0 (B, N), keep (B, L) or None -> (xs (B, L, N), z_L (B, N), x_L (B, N))."""
    z, x = z0, x0
    keeps = keep.unbind(1) if keep is not None else None
    xs = []
    for n, u_n in enumerate(u.unbind(1)):  # unbind once: indexing inside autograd is O(L^2)
        if keeps is not None:
            k = keeps[n].unsqueeze(-1)
            z, x = z * k, x * k
        z, x = t.m11 * z + t.m12 * x + t.f1 * u_n, t.m21 * z + t.m22 * x + t.f2 * u_n
        xs.append(x)
    return torch.stack(xs, dim=1).to(u.dtype), z, x


# --------------------------------------------------------------------------------------------
# GPU path: chunked associative scan ([LinOSS] §2.4 operator)
# --------------------------------------------------------------------------------------------
def _combine(earlier, later):
    """(M_i, b_i) • (M_j, b_j) = (M_j M_i, M_j b_i + b_j), elementwise 2×2 blocks."""
    ia, ib, ic, id_, ip, iq = earlier
    ja, jb, jc, jd, jp, jq = later
    return (
        ja * ia + jb * ic,
        ja * ib + jb * id_,
        jc * ia + jd * ic,
        jc * ib + jd * id_,
        ja * ip + jb * iq + jp,
        jc * ip + jd * iq + jq,
    )


def _inclusive_scan(elems, dim: int):
    """Hillis-Steele inclusive scan of (a, b, c, d, p, q) along ``dim`` (log-depth)."""
    length = elems[0].shape[dim]
    shift = 1
    while shift < length:
        earlier = []
        for i, e in enumerate(elems):
            pad_shape = list(e.shape)
            pad_shape[dim] = shift
            # identity element: M = I, b = 0
            fill = 1.0 if i in (0, 3) else 0.0
            pad = torch.full(pad_shape, fill, dtype=e.dtype, device=e.device)
            earlier.append(torch.cat([pad, e.narrow(dim, 0, length - shift)], dim=dim))
        elems = _combine(tuple(earlier), elems)
        shift *= 2
    return elems


def scan_parallel(u: Tensor, t: Transition, z0: Tensor, x0: Tensor, keep: Tensor | None = None, chunk: int = 64):
    """Chunked associative scan; same signature and result as :func:`scan_loop`."""
    B, L, N = u.shape
    T = min(chunk, L)
    C = math.ceil(L / T)
    pad = C * T - L

    def per_step(coef: Tensor) -> Tensor:  # (N,) -> (B, L, N), zeroed where the state resets
        out = coef.expand(B, L, N)
        return out * keep.unsqueeze(-1) if keep is not None else out

    elems = [per_step(t.m11), per_step(t.m12), per_step(t.m21), per_step(t.m22), t.f1 * u, t.f2 * u]
    if pad:  # identity steps at the end do not change the prefix
        elems = [
            torch.cat([e, torch.full((B, pad, N), 1.0 if i in (0, 3) else 0.0, dtype=e.dtype, device=e.device)], 1)
            for i, e in enumerate(elems)
        ]
    elems = [e.reshape(B, C, T, N) for e in elems]
    within = _inclusive_scan(elems, dim=2)  # prefix inside each chunk
    summary = _inclusive_scan([e[:, :, -1] for e in within], dim=1)  # (B, C, N) prefix of chunk ends
    # state at the end of every chunk, starting from (z0, x0); carried into the next chunk
    z_end = summary[0] * z0[:, None] + summary[1] * x0[:, None] + summary[4]
    x_end = summary[2] * z0[:, None] + summary[3] * x0[:, None] + summary[5]
    z_in = torch.cat([z0[:, None], z_end[:, :-1]], 1)[:, :, None]  # (B, C, 1, N)
    x_in = torch.cat([x0[:, None], x_end[:, :-1]], 1)[:, :, None]
    xs = within[2] * z_in + within[3] * x_in + within[5]
    xs = xs.reshape(B, C * T, N)[:, :L].to(u.dtype)
    return xs, z_end[:, -1], x_end[:, -1]


# --------------------------------------------------------------------------------------------
# CPU path: numba kernels with a hand-written adjoint
# --------------------------------------------------------------------------------------------
@compiled
def _numba_kernels(numba):
    """The (forward, backward) kernels (called without arguments: :func:`.kernels.compiled`)."""
    import numpy as np

    # Parallel over batch rows; within a row the channel loop is innermost, over the whole
    # C-contiguous row and branch-free, so LLVM vectorizes it (splitting rows into channel blocks
    # made it scalar and 5x slower here). A batch of one therefore runs on one core.
    @threaded(numba, cache=True, nogil=True)
    def forward(u, m11, m12, m21, m22, f1, f2, z0, x0, keep, use_keep, xs, zs, save_z, z_out, x_out):
        B, L, N = u.shape
        for b in numba.prange(B):
            z = z0[b].copy()
            x = x0[b].copy()
            for n in range(L):
                if use_keep:
                    k = keep[b, n]
                    for c in range(N):
                        z[c] *= k
                        x[c] *= k
                un, xn = u[b, n], xs[b, n]
                for c in range(N):
                    zc = m11[c] * z[c] + m12[c] * x[c] + f1[c] * un[c]
                    x[c] = m21[c] * z[c] + m22[c] * x[c] + f2[c] * un[c]
                    z[c] = zc
                    xn[c] = x[c]
                if save_z:
                    zn = zs[b, n]
                    for c in range(N):
                        zn[c] = z[c]
            z_out[b] = z
            x_out[b] = x

    @threaded(numba, cache=True, nogil=True)
    def backward(u, m11, m12, m21, m22, f1, f2, z0, x0, keep, use_keep, xs, zs, gxs, gz_end, gx_end, gu, gz0, gx0, gcoef):
        # The adjoint runs backwards in time. Hardware prefetchers stream memory forwards, so
        # time is cut into blocks of T steps: each block is first touched in ascending order (one
        # read per cache line), then processed in descending order from cache — 3-4x faster here.
        # gcoef (6, B, N): per-row sums over time of dm11, dm12, dm21, dm22, df1, df2 (float64).
        B, L, N = u.shape
        T = 64
        for b in numba.prange(B):
            az = gz_end[b].astype(np.float64)  # adjoint of z_n, carried from the future
            ax = gx_end[b].astype(np.float64)
            a11, a12, a21, a22 = np.zeros(N), np.zeros(N), np.zeros(N), np.zeros(N)
            b1, b2 = np.zeros(N), np.zeros(N)
            pz, px = np.empty(N), np.empty(N)  # the state before step n, through the reset gate
            touched = 0.0
            for block in range((L + T - 1) // T - 1, -1, -1):
                lo, hi = block * T, min(L, (block + 1) * T)
                for n in range(max(lo - 1, 0), hi):
                    for c in range(0, N, 16):
                        touched += gxs[b, n, c] + u[b, n, c] + zs[b, n, c] + xs[b, n, c]
                for n in range(hi - 1, lo - 1, -1):
                    k = keep[b, n] if use_keep else 1.0
                    if n > 0:
                        prev_z, prev_x = zs[b, n - 1], xs[b, n - 1]
                        for c in range(N):
                            pz[c] = prev_z[c] * k
                            px[c] = prev_x[c] * k
                    else:
                        for c in range(N):
                            pz[c] = z0[b, c] * k
                            px[c] = x0[b, c] * k
                    un, gxn, gun = u[b, n], gxs[b, n], gu[b, n]
                    for c in range(N):
                        gz = az[c]
                        gx = ax[c] + gxn[c]  # total adjoint of x_n
                        gun[c] = f1[c] * gz + f2[c] * gx
                        a11[c] += gz * pz[c]
                        a12[c] += gz * px[c]
                        a21[c] += gx * pz[c]
                        a22[c] += gx * px[c]
                        b1[c] += gz * un[c]
                        b2[c] += gx * un[c]
                        az[c] = k * (m11[c] * gz + m21[c] * gx)  # Mᵀ a_n, through the reset gate
                        ax[c] = k * (m12[c] * gz + m22[c] * gx)
            gz0[b] = az
            gx0[b] = ax
            gcoef[0, b], gcoef[1, b], gcoef[2, b] = a11, a12, a21
            gcoef[3, b], gcoef[4, b], gcoef[5, b] = a22, b1, b2
            if touched != touched:  # keeps the touch loop from being optimized away; NaN data only
                gz0[b, 0] = touched

    return forward, backward


class _NumbaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, save, u, m11, m12, m21, m22, f1, f2, z0, x0, keep):
        fwd, _ = _numba_kernels()
        share_torch_threads()
        B, L, N = u.shape
        xs = torch.empty_like(u)
        zs = torch.empty_like(u) if save else torch.empty((1, 1, 1), dtype=u.dtype)
        z_out, x_out = torch.empty_like(z0), torch.empty_like(x0)
        use_keep = keep is not None
        keep_t = keep if use_keep else torch.ones((1, 1), dtype=z0.dtype)
        coefs = [as_numpy(c) for c in (m11, m12, m21, m22, f1, f2)]
        fwd(B * L * N, as_numpy(u), *coefs, as_numpy(z0), as_numpy(x0), as_numpy(keep_t), use_keep,
            xs.numpy(), zs.numpy(), save, z_out.numpy(), x_out.numpy())  # fmt: skip
        if save:
            ctx.save_for_backward(u, m11, m12, m21, m22, f1, f2, z0, x0, keep_t, xs, zs)
            ctx.use_keep = use_keep
        return xs, z_out, x_out

    @staticmethod
    def backward(ctx, gxs, gz_end, gx_end):
        _, bwd = _numba_kernels()
        share_torch_threads()
        u, m11, m12, m21, m22, f1, f2, z0, x0, keep_t, xs, zs = ctx.saved_tensors
        B, L, N = u.shape
        gxs = gxs.contiguous() if gxs is not None else torch.zeros_like(u)
        gz_end = gz_end.contiguous() if gz_end is not None else torch.zeros_like(z0)
        gx_end = gx_end.contiguous() if gx_end is not None else torch.zeros_like(x0)
        gu = torch.empty_like(u)
        gz0, gx0 = torch.empty_like(z0), torch.empty_like(x0)
        gcoef = torch.empty((6, B, N), dtype=torch.float64)
        coefs = [as_numpy(c) for c in (m11, m12, m21, m22, f1, f2)]
        bwd(B * L * N, as_numpy(u), *coefs, as_numpy(z0), as_numpy(x0), as_numpy(keep_t), ctx.use_keep,
            xs.numpy(), zs.numpy(), gxs.numpy(), gz_end.numpy(), gx_end.numpy(),
            gu.numpy(), gz0.numpy(), gx0.numpy(), gcoef.numpy())  # fmt: skip
        gc = gcoef.sum(1).to(m11.dtype)
        return None, gu, gc[0], gc[1], gc[2], gc[3], gc[4], gc[5], gz0, gx0, None


def scan_numba(u: Tensor, t: Transition, z0: Tensor, x0: Tensor, keep: Tensor | None = None):
    """Compiled CPU scan; same signature and result as :func:`scan_loop`."""
    args = [a.contiguous() for a in (u, *t.as_tuple(), z0, x0)]
    if keep is not None:
        keep = keep.to(z0.dtype).contiguous()
    save = torch.is_grad_enabled() and any(a.requires_grad for a in args)
    return _NumbaScan.apply(save, *args, keep)


def resolve_method(method: str, device: torch.device) -> str:
    """Map ``"auto"`` to the fastest exact path for ``device``."""
    if method not in SCAN_METHODS:
        raise ValueError(f"scan method {method!r} is not one of {SCAN_METHODS}")
    if method == "auto":
        if device.type == "cuda":
            return "parallel"
        return "numba" if _numba_kernels() is not None else "loop"
    if method == "numba" and device.type != "cpu":
        raise ValueError(f"scan method 'numba' runs on the CPU only, got a tensor on {device}; use 'parallel'")
    if method == "numba" and _numba_kernels() is None:
        raise ValueError("scan method 'numba' needs the numba package; install it or use 'loop'")
    return method


def oscillator_scan(
    u: Tensor, t: Transition, z0: Tensor, x0: Tensor, keep: Tensor | None = None, method: str = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence over the whole sequence.

    Args:
        u: forcing (B, L, N).  t: coefficients, each (N,).  z0, x0: initial state (B, N).
        keep: optional (B, L) multipliers of the previous state (0 where an episode starts).
        method: one of :data:`SCAN_METHODS`.
    Returns:
        xs (B, L, N) positions, and the final (z_L, x_L), each (B, N).
    """
    method = resolve_method(method, u.device)
    if method == "numba":
        return scan_numba(u, t, z0, x0, keep)
    if method == "parallel":
        return scan_parallel(u, t, z0, x0, keep)
    return scan_loop(u, t, z0, x0, keep)

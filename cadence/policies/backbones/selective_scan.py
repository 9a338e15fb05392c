"""Mamba's selective scan (Gu & Dao 2023, Algorithm 2), with an initial state and resets, and its readout.

Symbols (as in :mod:`.mamba`): B batch, L time, ED inner width, N state size per inner channel. For every
channel d and state index n::

    h_t[d, n] = keep_t · exp(Δ_t[d] A[d, n]) · h_{t−1}[d, n] + Δ_t[d] u_t[d] B_t[n]      (h_{−1} = h0)
    y_t[d]    = Σ_n C_t[n] h_t[d, n]

``keep`` (B, L) is 0 where an episode starts (the state restarts from zero) and 1 elsewhere. Three exact
evaluations, chosen by ``method``:

* ``"numba"`` (default on CPU): one compiled kernel that runs the recurrence and the readout together, so the
  (B, L, ED, N) tensors of decays, inputs and states are never materialized — that is what the CUDA kernel of
  ``mamba-ssm`` does on a GPU; that kernel takes no initial state and cannot reset, so it cannot serve here.
  Parallel over batch rows × blocks of channels. The backward stores the state only every ``CHECKPOINT``
  steps and recomputes each block of steps from its checkpoint (in cache), then runs the adjoint backwards:
  ḡ_t = g_t + a_{t+1} ḡ_{t+1} with g_t = ∂ℓ/∂y_t · C_t, and the gradients of Δ, u, A, B, C are sums of
  ḡ × (what multiplies it).
* ``"pscan"`` (default on CUDA): mambapy's parallel (Blelloch) scan over the materialized tensors,
  differentiated by its own backward.
* ``"loop"``: the reference, a Python loop over time. Both other paths are tested against it.
"""

from __future__ import annotations

import torch
from mambapy.pscan import pscan
from torch import Tensor

from .kernels import as_numpy, compiled, share_torch_threads, threaded

SELECTIVE_SCANS = ("auto", "numba", "pscan", "loop")
CHANNEL_BLOCK = 32
"""Channels a kernel job owns: each job runs its channels through all L steps."""
CHECKPOINT = 32
"""Steps between the states the numba forward keeps for the backward."""

@compiled
def _numba_kernels(numba):
    """The (forward, backward) kernels (called without arguments: :func:`.kernels.compiled`)."""
    import numpy as np

    @threaded(numba, cache=True, nogil=True, fastmath=True)
    def forward(u, delta, A, Bs, Cs, h0, keep, use_keep, ys, h_out, ck, save):
        Bn, L, E = u.shape
        N = A.shape[1]
        blocks = (E + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
        for job in numba.prange(Bn * blocks):
            b, d0 = job // blocks, (job % blocks) * CHANNEL_BLOCK
            d1 = min(E, d0 + CHANNEL_BLOCK)
            h = h0[b, d0:d1].copy()  # in the inputs' dtype, as mambapy's scan runs
            zero = h[0, 0] - h[0, 0]  # 0 of that dtype (a 0.0 literal would promote the loop to float64)
            for t in range(L):
                if save and t % CHECKPOINT == 0:
                    ck[b, t // CHECKPOINT, d0:d1] = h  # the state before step t
                k = keep[b, t] if use_keep else zero + 1
                Bt, Ct = Bs[b, t], Cs[b, t]
                for i in range(d1 - d0):
                    d = d0 + i
                    dt = delta[b, t, d]
                    du = dt * u[b, t, d]
                    acc = zero
                    for n in range(N):
                        hn = k * np.exp(dt * A[d, n]) * h[i, n] + du * Bt[n]
                        h[i, n] = hn
                        acc += Ct[n] * hn
                    ys[b, t, d] = acc
            h_out[b, d0:d1] = h

    @threaded(numba, cache=True, nogil=True, fastmath=True)
    def backward(u, delta, A, Bs, Cs, keep, use_keep, ck, gy, gh_end, gu, gdelta, gB_part, gC_part, gA_part, gh0):
        # gB_part, gC_part (blocks, B, L, N): each job's sums over its own channels (summed over blocks after);
        # gA_part (B, ED, N) float64: each row's sums over time (summed over rows after).
        Bn, L, E = u.shape
        N = A.shape[1]
        T = CHECKPOINT
        blocks = (E + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
        for job in numba.prange(Bn * blocks):
            b, blk = job // blocks, job % blocks
            d0 = blk * CHANNEL_BLOCK
            d1 = min(E, d0 + CHANNEL_BLOCK)
            db = d1 - d0
            gh = gh_end[b, d0:d1].astype(np.float64)  # adjoint of h_t carried from the future
            gA = np.zeros((db, N))
            hbuf = np.empty((T + 1, db, N))  # hbuf[j]: the state before step lo + j
            abuf = np.empty((T, db, N))  # abuf[j]: the decay keep · exp(Δ A) of step lo + j
            gBt, gCt = np.empty(N), np.empty(N)
            for c in range((L + T - 1) // T - 1, -1, -1):
                lo, hi = c * T, min(L, (c + 1) * T)
                hbuf[0] = ck[b, c, d0:d1]
                for t in range(lo, hi):  # recompute this block's states from its checkpoint
                    j = t - lo
                    k = keep[b, t] if use_keep else 1.0
                    for i in range(db):
                        d = d0 + i
                        dt = delta[b, t, d]
                        du = dt * u[b, t, d]
                        for n in range(N):
                            a = k * np.exp(dt * A[d, n])
                            abuf[j, i, n] = a
                            hbuf[j + 1, i, n] = a * hbuf[j, i, n] + du * Bs[b, t, n]
                for t in range(hi - 1, lo - 1, -1):
                    j = t - lo
                    gBt[:] = 0.0
                    gCt[:] = 0.0
                    for i in range(db):
                        d = d0 + i
                        dt, ut, g = delta[b, t, d], u[b, t, d], gy[b, t, d]
                        gdt, gut = 0.0, 0.0
                        for n in range(N):
                            ght = gh[i, n] + g * Cs[b, t, n]  # total adjoint of h_t
                            gCt[n] += g * hbuf[j + 1, i, n]
                            bn = Bs[b, t, n]
                            gdt += ght * ut * bn  # input Δ u B
                            gut += ght * dt * bn
                            gBt[n] += ght * dt * ut
                            a = abuf[j, i, n]
                            ga = ght * hbuf[j, i, n]  # decay a = keep · exp(Δ A): ∂a/∂Δ = a A, ∂a/∂A = a Δ
                            gdt += ga * a * A[d, n]
                            gA[i, n] += ga * a * dt
                            gh[i, n] = a * ght
                        gdelta[b, t, d] = gdt
                        gu[b, t, d] = gut
                    gB_part[blk, b, t] = gBt
                    gC_part[blk, b, t] = gCt
            gh0[b, d0:d1] = gh
            gA_part[b, d0:d1] = gA

    return forward, backward


class _NumbaSelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, save, u, delta, A, Bs, Cs, h0, keep):
        fwd, _ = _numba_kernels()
        share_torch_threads()
        B, L, E = u.shape
        ys, h_out = torch.empty_like(u), torch.empty_like(h0)
        use_keep = keep is not None
        keep = keep if use_keep else torch.ones((1, 1), dtype=u.dtype)
        ck = torch.empty((B, -(-L // CHECKPOINT), E, A.shape[1]) if save else (1, 1, 1, 1), dtype=u.dtype)
        work = u.numel() * A.shape[1]
        fwd(work, *map(as_numpy, (u, delta, A, Bs, Cs, h0, keep)), use_keep, ys.numpy(), h_out.numpy(), ck.numpy(), save)
        if save:
            ctx.save_for_backward(u, delta, A, Bs, Cs, keep, ck)
            ctx.use_keep = use_keep
        return ys, h_out

    @staticmethod
    def backward(ctx, gy, gh_end):
        _, bwd = _numba_kernels()
        share_torch_threads()
        u, delta, A, Bs, Cs, keep, ck = ctx.saved_tensors
        B, L, E = u.shape
        blocks = -(-E // CHANNEL_BLOCK)
        gy = gy.contiguous() if gy is not None else torch.zeros_like(u)
        gh_end = gh_end.contiguous() if gh_end is not None else torch.zeros(B, E, A.shape[1], dtype=u.dtype)
        gu, gdelta, gh0 = torch.empty_like(u), torch.empty_like(u), torch.empty_like(gh_end)
        gB_part = torch.empty((blocks, B, L, A.shape[1]), dtype=u.dtype)
        gC_part, gA_part = torch.empty_like(gB_part), torch.empty((B, E, A.shape[1]), dtype=torch.float64)
        work = u.numel() * A.shape[1]
        bwd(work, *map(as_numpy, (u, delta, A, Bs, Cs, keep)), ctx.use_keep, ck.numpy(), gy.numpy(), gh_end.numpy(),
            *(g.numpy() for g in (gu, gdelta, gB_part, gC_part, gA_part, gh0)))  # fmt: skip
        return None, gu, gdelta, gA_part.sum(0).to(A.dtype), gB_part.sum(0), gC_part.sum(0), gh0, None


def _materialized(u: Tensor, delta: Tensor, A: Tensor, Bs: Tensor, h0: Tensor, keep: Tensor | None):
    """The decays a (B, L, ED, N) and inputs (B, L, ED, N) of every step, h0 folded into step 0's input (the
    scan then starts from zero)."""
    dA = torch.exp(delta.unsqueeze(-1) * A)
    if keep is not None:
        dA = dA * keep[:, :, None, None]
    dBu = (delta * u).unsqueeze(-1) * Bs.unsqueeze(2)
    return dA, torch.cat([dBu[:, :1] + dA[:, :1] * h0.unsqueeze(1), dBu[:, 1:]], dim=1)


def resolve_selective_scan(method: str, device: torch.device) -> str:
    """Map ``"auto"`` to the fastest exact path for ``device``; refuse what cannot run there."""
    if method not in SELECTIVE_SCANS:
        raise ValueError(f"selective scan {method!r} is not one of {SELECTIVE_SCANS}")
    if method == "auto":
        return "numba" if device.type == "cpu" and _numba_kernels() is not None else "pscan"
    if method == "numba" and device.type != "cpu":
        raise ValueError(f"selective scan 'numba' runs on the CPU only, got a tensor on {device}; use 'pscan'")
    if method == "numba" and _numba_kernels() is None:
        raise ValueError("selective scan 'numba' needs the numba package; install it or use 'pscan'")
    return method


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, Bs: Tensor, Cs: Tensor, h0: Tensor,
                   keep: Tensor | None = None, method: str = "auto") -> tuple[Tensor, Tensor]:  # fmt: skip
    """The readout of the recurrence over the whole sequence, and its last state.

    Args:
        u, delta: (B, L, ED) inputs and step sizes Δ.  A: (ED, N).  Bs, Cs: (B, L, N).  h0: (B, ED, N).
        keep: optional (B, L) multipliers of the previous state (0 where an episode starts).
        method: one of :data:`SELECTIVE_SCANS`.
    Returns:
        y (B, L, ED) = Σ_n C_t[n] h_t[:, n], and h_{L−1} (B, ED, N).
    """
    method = resolve_selective_scan(method, u.device)
    if method == "numba":
        args = [a.contiguous() for a in (u, delta, A, Bs, Cs, h0)]
        keep = keep.to(u.dtype).contiguous() if keep is not None else None
        save = torch.is_grad_enabled() and any(a.requires_grad for a in args)
        return _NumbaSelectiveScan.apply(save, *args, keep)
    dA, dBu = _materialized(u, delta, A, Bs, h0, keep)
    if method == "pscan":
        hs = pscan(dA, dBu)
    else:
        h, states = torch.zeros_like(h0), []
        for dA_t, dBu_t in zip(dA.unbind(1), dBu.unbind(1)):
            h = dA_t * h + dBu_t
            states.append(h)
        hs = torch.stack(states, dim=1)
    return (hs @ Cs.unsqueeze(-1)).squeeze(-1), hs[:, -1]

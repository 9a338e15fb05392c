"""One LinOSS layer's input map, oscillator recurrence and readout in one compiled pass (numba, CPU).

Symbols (as in :mod:`.linoss` and :mod:`.scan`): B batch, L time, H the layer's channels, P oscillators,
N = 2P real state channels (re, im interleaved). With the input map B̃ (H, N), the readout C̃ (N, H), the
per-channel transition (m11, m12, m21, m22, f1, f2) of :class:`.scan.Transition` and the reset gate k_n
(``keep``, 1 inside an episode, 0 at its start), step n of a batch row is::

    bu_n = u_n B̃                                            (input map; in the state dtype)
    z_n  = k_n (m11 z_{n−1} + m12 x_{n−1}) + f1 bu_n          ([LinOSS] eqs. 4 and 6, [D-LinOSS] §2.2)
    x_n  = k_n (m21 z_{n−1} + m22 x_{n−1}) + f2 bu_n
    y_n  = x_n C̃                                             (readout, returned in u's dtype)

which is :func:`.scan.oscillator_scan` applied to ``u @ B̃`` followed by ``xs @ C̃``. That unfused evaluation
materializes (B, L, N) tensors — the forcing, the positions, the velocities kept for the backward and their
gradients — each N / H times the size of the layer's input: at small H they are nearly all of the memory
traffic. Here only u, y (B, L, H), their gradients, and the state every ``CHECKPOINT`` steps are moved; the rest
lives in a per-row buffer in cache, and the cost is the arithmetic.

The backward walks each row's blocks of ``CHECKPOINT`` steps from last to first: it recomputes the block's
states and forcings from its checkpoint, then runs the adjoint backwards. With a^z, a^x the adjoints carried
from step n + 1 (a_L = ∂ℓ/∂(z_L, x_L)) and gy_n = ∂ℓ/∂y_n::

    ḡz_n = a^z_n,   ḡx_n = a^x_n + gy_n C̃ᵀ                    (total adjoints of z_n, x_n)
    gbu_n = f1 ḡz_n + f2 ḡx_n,   gu_n = gbu_n B̃ᵀ,   gB̃ += u_nᵀ gbu_n,   gC̃ += x_nᵀ gy_n
    gm11 += ḡz_n k_n z_{n−1},  gm12 += ḡz_n k_n x_{n−1},  gm21 += ḡx_n k_n z_{n−1},  gm22 += ḡx_n k_n x_{n−1}
    gf1 += ḡz_n bu_n,  gf2 += ḡx_n bu_n
    a^z_{n−1} = k_n (m11 ḡz_n + m21 ḡx_n),   a^x_{n−1} = k_n (m12 ḡz_n + m22 ḡx_n)   (Mᵀ a, through the gate)

and ∂ℓ/∂(z_0, x_0) = a_0. Parallel over batch rows, channels innermost (vectorized). Gradients of the
parameters are summed per row in float64, then over rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .kernels import as_numpy, compiled, share_torch_threads, threaded
from .scan import Transition

CHECKPOINT = 32
"""Steps between the states the forward keeps for the backward; a row's block buffers in the backward then take
(6·CHECKPOINT + 3)·N·8 bytes, 400 KB at P = 128, and stay in L2."""
_FASTMATH = {"reassoc", "contract"}
"""Lets LLVM vectorize the sums over channels (the maps' dot products) and fuse multiply-adds; NaN and inf
keep their meaning."""


@compiled
def _numba_kernels(numba):
    """The (forward, backward) kernels (called without arguments: :func:`.kernels.compiled`)."""
    import numpy as np

    jit = numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)

    # Layout: a block of T steps of a row lives in (T, N) buffers, and every loop over channels is innermost and
    # contiguous so that LLVM vectorizes it. Each loop that writes a row read by the next step (the recurrences)
    # is a function of its own: inlined into the loop over steps, LLVM's overlap check spans the whole block,
    # fails, and the loop runs scalar (3x slower here).
    @jit
    def forced(k, p, a, q, b, f, d, out):
        """out = k (p a + q b) + f d, each (N,): one half of a step of the recurrence."""
        for c in range(out.shape[0]):
            out[c] = k * (p[c] * a[c] + q[c] * b[c]) + f[c] * d[c]

    @jit
    def mix(k, p, a, q, b, out):
        """out = k (p a + q b), each (N,): one half of a step of the adjoint (or gbu, with k = 1)."""
        for c in range(out.shape[0]):
            out[c] = k * (p[c] * a[c] + q[c] * b[c])

    @jit
    def mix_add(k, p, a, q, b, out):
        """out += k (p a + q b), each (N,)."""
        for c in range(out.shape[0]):
            out[c] += k * (p[c] * a[c] + q[c] * b[c])

    # The maps take four rows of their small operand at a time: one load and store of the (N,) row they update
    # per four multiply-adds.
    @jit
    def axpy4(o, a0, a1, a2, a3, m0, m1, m2, m3):
        """o += a0 m0 + a1 m1 + a2 m2 + a3 m3, o and each m (N,)."""
        for c in range(o.shape[0]):
            o[c] += a0 * m0[c] + a1 * m1[c] + a2 * m2[c] + a3 * m3[c]

    @jit
    def axpy(o, a, m):
        """o += a m, o and m (N,)."""
        for c in range(o.shape[0]):
            o[c] += a * m[c]

    @jit
    def map_rows(a, m, out, accumulate=False):
        """out (T, N) = a (T, H) @ m (H, N), or += with ``accumulate``."""
        T, H = a.shape
        for j in range(T):
            aj, o = a[j], out[j]
            if not accumulate:
                o[:] = 0.0
            for h in range(0, H - 3, 4):
                axpy4(o, aj[h], aj[h + 1], aj[h + 2], aj[h + 3], m[h], m[h + 1], m[h + 2], m[h + 3])
            for h in range(H - H % 4, H):
                axpy(o, aj[h], m[h])

    @jit
    def map_cols(g, m, out):
        """out (T, H) = g (T, N) @ m (H, N)ᵀ."""
        T, H = out.shape
        for j in range(T):
            gj = g[j]
            for h in range(0, H - 3, 4):
                s0, s1, s2, s3, m0, m1, m2, m3 = 0.0, 0.0, 0.0, 0.0, m[h], m[h + 1], m[h + 2], m[h + 3]
                for c in range(gj.shape[0]):
                    s0 += gj[c] * m0[c]
                    s1 += gj[c] * m1[c]
                    s2 += gj[c] * m2[c]
                    s3 += gj[c] * m3[c]
                out[j, h], out[j, h + 1], out[j, h + 2], out[j, h + 3] = s0, s1, s2, s3
            for h in range(H - H % 4, H):
                s, mh = 0.0, m[h]
                for c in range(gj.shape[0]):
                    s += gj[c] * mh[c]
                out[j, h] = s

    @jit
    def add_products(k, a, b, acc):
        """acc (N,) += Σ_j k[j] a[j] b[j] over the T rows of a, b (T, N), four steps at a time."""
        T = a.shape[0]
        for j in range(0, T - 3, 4):
            k0, k1, k2, k3 = k[j], k[j + 1], k[j + 2], k[j + 3]
            a0, a1, a2, a3, b0, b1, b2, b3 = a[j], a[j + 1], a[j + 2], a[j + 3], b[j], b[j + 1], b[j + 2], b[j + 3]
            for c in range(acc.shape[0]):
                acc[c] += k0 * a0[c] * b0[c] + k1 * a1[c] * b1[c] + k2 * a2[c] * b2[c] + k3 * a3[c] * b3[c]
        for j in range(T - T % 4, T):
            kj, aj, bj = k[j], a[j], b[j]
            for c in range(acc.shape[0]):
                acc[c] += kj * aj[c] * bj[c]

    @jit
    def states(u, keep, Bm, m11, m12, m21, m22, f1, f2, bus, zs, xs):
        """Forcings bus[j] = u[j] Bm and states (zs, xs)[j + 1] after step j of a block of len(u) steps, from
        (zs, xs)[0]."""
        map_rows(u, Bm, bus[: u.shape[0]])
        for j in range(u.shape[0]):
            forced(keep[j], m11, zs[j], m12, xs[j], f1, bus[j], zs[j + 1])
            forced(keep[j], m21, zs[j], m22, xs[j], f2, bus[j], xs[j + 1])

    @threaded(numba, cache=True, nogil=True, fastmath=_FASTMATH)
    def forward(u, m11, m12, m21, m22, f1, f2, Bm, CmT, z0, x0, keep, y, z_out, x_out, ck, save):
        # ck (B, ⌈L/T⌉, 2, N): (z, x) before steps 0, T, 2T, ... (when save)
        Bn, L, _ = u.shape
        N, T = Bm.shape[1], CHECKPOINT
        for b in numba.prange(Bn):
            zs, xs, bus = np.empty((T + 1, N), z0.dtype), np.empty((T + 1, N), z0.dtype), np.empty((T, N), z0.dtype)
            zs[0], xs[0] = z0[b], x0[b]
            for block in range((L + T - 1) // T):
                lo, hi = block * T, min(L, (block + 1) * T)
                if save:
                    ck[b, block, 0], ck[b, block, 1] = zs[0], xs[0]
                states(u[b, lo:hi], keep[b, lo:hi], Bm, m11, m12, m21, m22, f1, f2, bus, zs, xs)
                map_cols(xs[1 : hi - lo + 1], CmT, y[b, lo:hi])  # y_n = x_n C̃
                zs[0], xs[0] = zs[hi - lo], xs[hi - lo]
            z_out[b], x_out[b] = zs[0], xs[0]

    @threaded(numba, cache=True, nogil=True, fastmath=_FASTMATH)
    def backward(u, m11, m12, m21, m22, f1, f2, Bm, CmT, keep, ck, gy, gz_end, gx_end, gu, gz0, gx0, gcoef, gB, gCT):
        # gcoef (B, 6, N): per-row sums of gm11, gm12, gm21, gm22, gf1, gf2; gB (B, H, N), gCT (B, H, N): per-row
        # gB̃ and gC̃ᵀ; all float64.
        Bn, L, H = u.shape
        N, T = Bm.shape[1], CHECKPOINT
        ones = np.ones(T)
        for b in numba.prange(Bn):
            acc, gBb, gCb = np.zeros((6, N)), np.zeros((H, N)), np.zeros((H, N))
            zs, xs, bus = np.empty((T + 1, N), ck.dtype), np.empty((T + 1, N), ck.dtype), np.empty((T, N), ck.dtype)
            # gzs[j + 1], gxs[j]: ḡz, ḡx of step j of the block; gzs[0], ax: a^z, a^x carried to the block before
            gzs, gxs, gbus, ax = np.empty((T + 1, N)), np.empty((T, N)), np.empty((T, N)), gx_end[b].astype(np.float64)
            gzs[(L - 1) % T + 1] = gz_end[b]
            for block in range((L + T - 1) // T - 1, -1, -1):
                lo, hi = block * T, min(L, (block + 1) * T)
                S, kb = hi - lo, keep[b, lo:hi]
                zs[0], xs[0] = ck[b, block, 0], ck[b, block, 1]
                states(u[b, lo:hi], kb, Bm, m11, m12, m21, m22, f1, f2, bus, zs, xs)  # recompute the block
                map_rows(gy[b, lo:hi], CmT, gxs[:S])  # the readout's adjoint gy_n C̃ᵀ
                for c in range(N):
                    gxs[S - 1, c] += ax[c]
                for j in range(S - 1, -1, -1):  # the adjoint, Mᵀ through the gate
                    mix(kb[j], m11, gzs[j + 1], m21, gxs[j], gzs[j])
                    if j > 0:
                        mix_add(kb[j], m12, gzs[j + 1], m22, gxs[j], gxs[j - 1])
                    else:
                        mix(kb[j], m12, gzs[j + 1], m22, gxs[j], ax)
                    mix(1.0, f1, gzs[j + 1], f2, gxs[j], gbus[j])  # gbu_n
                gzt = gzs[1 : S + 1]
                add_products(kb, gzt, zs[:S], acc[0])
                add_products(kb, gzt, xs[:S], acc[1])
                add_products(kb, gxs[:S], zs[:S], acc[2])
                add_products(kb, gxs[:S], xs[:S], acc[3])
                add_products(ones, gzt, bus[:S], acc[4])
                add_products(ones, gxs[:S], bus[:S], acc[5])
                map_cols(gbus[:S], Bm, gu[b, lo:hi])  # gu_n = gbu_n B̃ᵀ
                map_rows(u[b, lo:hi].T, gbus[:S], gBb, True)  # gB̃ += u_nᵀ gbu_n
                map_rows(gy[b, lo:hi].T, xs[1 : S + 1], gCb, True)  # gC̃ᵀ += gy_nᵀ x_n
                gzs[T] = gzs[0]
            gz0[b], gx0[b] = gzs[0], ax
            gcoef[b], gB[b], gCT[b] = acc, gBb, gCb

    return forward, backward


class _FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, save, u, m11, m12, m21, m22, f1, f2, B_map, C_map, z0, x0, keep):
        fwd, _ = _numba_kernels()
        share_torch_threads()
        Bsz, L, _ = u.shape
        N = B_map.shape[1]
        Bm, CmT = B_map.to(z0.dtype).contiguous(), C_map.T.to(z0.dtype).contiguous()  # the maps in the state dtype
        y, z_out, x_out = torch.empty_like(u), torch.empty_like(z0), torch.empty_like(x0)
        ck = torch.empty((Bsz, -(-L // CHECKPOINT), 2, N) if save else (1, 1, 1, 1), dtype=z0.dtype)
        coefs = [as_numpy(c) for c in (m11, m12, m21, m22, f1, f2)]
        fwd(u.numel() * N, as_numpy(u), *coefs, as_numpy(Bm), as_numpy(CmT), as_numpy(z0), as_numpy(x0),
            as_numpy(keep), y.numpy(), z_out.numpy(), x_out.numpy(), ck.numpy(), save)  # fmt: skip
        if save:
            ctx.save_for_backward(u, m11, m12, m21, m22, f1, f2, Bm, CmT, keep, ck)
            ctx.map_dtypes = (B_map.dtype, C_map.dtype)
        return y, z_out, x_out

    @staticmethod
    def backward(ctx, gy, gz_end, gx_end):
        _, bwd = _numba_kernels()
        share_torch_threads()
        u, m11, m12, m21, m22, f1, f2, Bm, CmT, keep, ck = ctx.saved_tensors
        Bsz, N, (H, _) = u.shape[0], ck.shape[-1], Bm.shape
        gy = gy.contiguous() if gy is not None else torch.zeros_like(u)
        gz_end = gz_end.contiguous() if gz_end is not None else torch.zeros((Bsz, N), dtype=ck.dtype)
        gx_end = gx_end.contiguous() if gx_end is not None else torch.zeros((Bsz, N), dtype=ck.dtype)
        gu, gz0, gx0 = torch.empty_like(u), torch.empty_like(gz_end), torch.empty_like(gx_end)
        gcoef, gB, gCT = (torch.empty(shape, dtype=torch.float64) for shape in ((Bsz, 6, N), (Bsz, H, N), (Bsz, H, N)))
        coefs = [as_numpy(c) for c in (m11, m12, m21, m22, f1, f2)]
        bwd(u.numel() * N, as_numpy(u), *coefs, as_numpy(Bm), as_numpy(CmT), as_numpy(keep), ck.numpy(),
            gy.numpy(), gz_end.numpy(), gx_end.numpy(), *(g.numpy() for g in (gu, gz0, gx0, gcoef, gB, gCT)))  # fmt: skip
        gc = gcoef.sum(0).to(m11.dtype)
        B_dtype, C_dtype = ctx.map_dtypes
        return (None, gu, *gc.unbind(0), gB.sum(0).to(B_dtype), gCT.sum(0).T.to(C_dtype), gz0, gx0, None)


def fused_layer(u: Tensor, t: Transition, B_map: Tensor, C_map: Tensor, z0: Tensor, x0: Tensor,
                keep: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """The readout of the recurrence driven by ``u @ B_map``, in one pass (module docstring).

    Args:
        u: (B, L, H) inputs.  t: coefficients, each (N,), in the state dtype.  B_map: (H, N).  C_map: (N, H).
        z0, x0: initial state (B, N), in the state dtype.  keep: optional (B, L) multipliers of the previous
        state (0 where an episode starts).
    Returns:
        y (B, L, H) = xs @ C_map in u's dtype, and the final (z_L, x_L), each (B, N): the same as
        ``oscillator_scan(u @ B_map, t, z0, x0, keep)`` followed by ``xs @ C_map``. CPU only; needs numba.
    """
    args = [a.contiguous() for a in (u, *t.as_tuple(), B_map, C_map, z0, x0)]
    keep = (torch.ones(u.shape[:2], dtype=z0.dtype) if keep is None else keep.to(z0.dtype)).contiguous()
    save = torch.is_grad_enabled() and any(a.requires_grad for a in args)
    return _FusedLayer.apply(save, *args, keep)

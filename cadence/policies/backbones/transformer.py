"""GPT-style causal Transformer over a sliding window of K steps (robomimic BC-Transformer / minGPT).

Symbols (as in :mod:`.base`): B batch, L time, D model width (``d_model``), K context (``context``),
C = K − 1 cached steps, nh heads (``n_heads``), hd = D / nh head width.

The model is a sliding-window causal transformer, in training and in control alike. In every layer
the token at step t attends to the tokens of steps t − K + 1 .. t of its own episode (fewer at the
start of an episode; ``resets`` start episodes): a band mask, not a block of K steps. Blocks are
pre-LayerNorm (x + attn(LN(x)), x + MLP(LN(x)), MLP 4x with GELU), then a final LayerNorm. Stacking
n_layers of them, the output at t depends on the last n_layers·(K − 1) + 1 inputs.

How stepping and training windows match (``step_mode="kv_cache"``, the default):

* The state is the cache of the last C steps' keys and values in every layer, (B, n_layers, C, D)
  each, oldest first, plus the number of those steps that belong to the current episode, ``count``
  (B,), at most C. ``forward`` and ``step`` both attend from the new tokens to [cache, new tokens]
  under the band mask, and both return the last C keys/values (zeros outside the current episode):
  ``step`` is ``forward`` over one step, so one step, a chunk and a whole episode give the same
  numbers (up to float rounding), for any episode length. The cache shifts by one slot per step
  rather than being a ring buffer: the state is never modified in place, so each step copies the
  cache either way, and fixed slots keep the positions below fixed.
* Positions are relative (RoPE, Su et al. 2021): the cache holds un-rotated keys, and a query block
  and its key window are rotated by their offsets inside that window, never by the absolute step,
  so all angles stay below (2K − 2)·θ and step 10⁶ is as exact as step 10. Scores depend only on
  the lag between query and key, as the sliding window requires.
* ``forward`` tiles the L queries into blocks of W = min(L, K); a block attends to a window of
  W + C keys (its own steps and the C before), so attention costs O(L·K), not O(L²).

``step_mode="window"`` is what a naive GPT policy does: the state holds the last C *inputs*
(B, C, D) and their count, and every call (``step`` or ``forward``) re-runs the whole network over
[stored inputs, new inputs], O(K²) work per step. It equals ``kv_cache`` mode and training for the
first K steps of an episode; later it differs when n_layers > 1, because the re-run forgets the
inputs older than K steps that deeper layers of the sliding-window model still see. From a zero
state, ``forward`` over a whole episode is the same function in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import State, check_input, check_state

STEP_MODES = ("kv_cache", "window")


@dataclass
class TransformerConfig:
    d_model: int = 128
    """D: token width."""
    n_layers: int = 2
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads; must divide d_model with an even head width (RoPE rotates pairs). The default
    4 fits every d_model that is a multiple of 8, so parameter-budget sizing may pick any of them."""
    context: int = 32
    """K: steps each token attends to, itself included (robomimic uses 10)."""
    dropout: float = 0.0
    """Dropout on attention weights and on each residual branch while training."""
    rope_base: float = 10000.0
    """RoPE frequency base: pair i of a head rotates by lag · base^(−2i/hd)."""
    step_mode: str = "kv_cache"
    """"kv_cache" (exact, O(K·D) per step) or "window" (re-run over the last K inputs; see module doc)."""
    cover_horizon: bool = True
    """On a task that declares a memory horizon of H steps, grow the context to K = H + 1 so attention reaches
    across it (:meth:`fit_to_task`); false keeps ``context``, and a shorter one is a context limit."""

    def __post_init__(self):
        for name in ("d_model", "n_layers", "n_heads", "context"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransformerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % (2 * self.n_heads):
            raise ValueError(f"TransformerConfig.d_model {self.d_model} must be a multiple of 2·n_heads = "
                             f"{2 * self.n_heads} (an even head width for RoPE)")  # fmt: skip
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.step_mode not in STEP_MODES:
            raise ValueError(f"TransformerConfig.step_mode {self.step_mode!r} is not one of {STEP_MODES}")

    def fit_to_task(self, control_period: float, memory_horizon: int | None) -> TransformerConfig:
        """The context rule (``PolicyConfig.fit_to_task`` calls it): with ``cover_horizon`` and a task memory
        horizon of H steps, K = max(``context``, H + 1), so one attention layer sees the lag H; otherwise ``self``.
        Attention then costs O(L·K) in training and O(K·D) memory per step in control."""
        if memory_horizon is None or not self.cover_horizon or self.context > memory_horizon:
            return self
        return replace(self, context=memory_horizon + 1)


# --------------------------------------------------------------------------------------------
# Relative positions and the band mask
# --------------------------------------------------------------------------------------------
def rope_tables(n_positions: int, head_dim: int, base: float) -> tuple[Tensor, Tensor]:
    """cos, ±sin (n_positions, hd) for :func:`rotate`: pair (i, i + hd/2) turns by position · base^(−2i/hd).

    Computed in float64, so every entry is exact to the rounding of the dtype it is cast to.
    """
    freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angle = torch.arange(n_positions, dtype=torch.float64)[:, None] * freq  # (P, hd/2)
    return angle.cos().repeat(1, 2), torch.cat([-angle.sin(), angle.sin()], dim=1)


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """RoPE on x (..., P, hd): (x_i, x_{i + hd/2}) -> (x_i cos − x_{i + hd/2} sin, x_i sin + x_{i + hd/2} cos)."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin


def band_mask(count: Tensor, resets: Tensor | None, L: int, context: int) -> tuple[Tensor, Tensor]:
    """Which keys each query may attend to, per block of queries.

    Args:
        count: (B,) long, how many of the C cached steps belong to the running episode.
        resets: (B, L) bool or None.  L: new steps.  context: K.

    Returns:
        mask (B, 1, nb, W, W + C) bool: query j of block n (step n·W + j) sees key i of its window
            (step n·W + i − C, cached steps first) iff 0 ≤ C + j − i < K and both are in one episode;
        tail (B, C) bool: which of the last C steps belong to the last step's episode.
    """
    B, C = count.shape[0], context - 1
    W = min(L, context)
    nb = -(-L // W)
    slot = torch.arange(C, device=count.device)
    cached = torch.where(slot >= C - count[:, None], 0, -1)  # (B, C): episode 0 or no episode (−1)
    new = resets.long().cumsum(1) if resets is not None else cached.new_zeros(B, L)
    episode = torch.cat([cached, new], dim=1)  # (B, C + L)
    tail = episode[:, L:] == episode[:, -1:]
    # padding queries are their own episode; cat, not F.pad: ONNX export cannot pad a long tensor with a value
    episode = torch.cat([episode, episode.new_full((B, nb * W - L), -2)], dim=1)
    q_episode = episode[:, C:].view(B, nb, W, 1)
    k_episode = episode.unfold(1, W + C, W).unsqueeze(2)  # (B, nb, 1, W + C)
    lag = C + torch.arange(W, device=count.device)[:, None] - torch.arange(W + C, device=count.device)
    mask = (q_episode == k_episode) & (lag >= 0) & (lag < context)  # (B, nb, W, W + C)
    return mask.unsqueeze(1), tail


def band_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, cos: Tensor, sin: Tensor, dropout_p: float) -> Tensor:
    """Blocked sliding-window attention with RoPE relative to each key window.

    Args:
        q: (B, nh, L, hd) queries of the new steps.  k, v: (B, nh, C + L, hd) cached then new, un-rotated.
        mask: (B, 1, nb, W, W + C) from :func:`band_mask`, bool or additive.
        cos, sin: (≥ W + C, hd) from :func:`rope_tables`, in q's dtype.

    Returns:
        (B, nh, L, hd).
    """
    B, nh, L, hd = q.shape
    nb, W, span = mask.shape[2:]
    if nb * W > L:  # pad the time axis to whole blocks
        q, k, v = (F.pad(t, (0, 0, 0, nb * W - L)) for t in (q, k, v))
    qb = q.view(B, nh, nb, W, hd)
    kb = k.unfold(2, span, W).transpose(-1, -2)  # (B, nh, nb, span, hd)
    vb = v.unfold(2, span, W).transpose(-1, -2)
    C = span - W
    qb = rotate(qb, cos[C:span], sin[C:span])  # query j sits at window position C + j
    kb = rotate(kb, cos[:span], sin[:span])  # key i at window position i
    y = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout_p)  # (B, nh, nb, W, hd)
    return y.reshape(B, nh, nb * W, hd)[:, :, :L]


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    """Multi-head sliding-window self-attention that also returns its (cached + new) keys and values."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, mask: Tensor, cos: Tensor, sin: Tensor
                ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """x (B, L, D), k_cache/v_cache (B, C, D) -> (y (B, L, D), keys and values (B, C + L, D))."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        k, v = torch.cat([k_cache, k], dim=1), torch.cat([v_cache, v], dim=1)  # (B, C + L, D)

        def heads(t: Tensor) -> Tensor:
            return t.view(B, t.shape[1], self.n_heads, -1).transpose(1, 2)  # (B, nh, T, hd)

        p = self.dropout if self.training else 0.0
        y = band_attention(heads(q), heads(k), heads(v), mask, cos, sin, p)  # (B, nh, L, hd)
        y = y.transpose(1, 2).reshape(B, L, D)  # (B, nh, L, hd) -> (B, L, D)
        return self.resid_drop(self.proj(y)), k, v

    def step(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, mask: Tensor, cos: Tensor, sin: Tensor
             ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """``forward`` for one step: x (B, D), caches (B, C, D), mask (B, 1, 1, C + 1) additive,
        cos/sin (C + 1, hd) for window positions 0 .. C -> (y (B, D), keys and values (B, C + 1, D))."""
        B, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        k, v = torch.cat([k_cache, k[:, None]], dim=1), torch.cat([v_cache, v[:, None]], dim=1)  # (B, C + 1, D)
        q = rotate(q.view(B, self.n_heads, 1, -1), cos[-1:], sin[-1:])  # the query sits at window position C
        kh = rotate(k.view(B, k.shape[1], self.n_heads, -1).transpose(1, 2), cos, sin)  # (B, nh, C + 1, hd)
        vh = v.view(B, v.shape[1], self.n_heads, -1).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, kh, vh, attn_mask=mask, dropout_p=p)  # (B, nh, 1, hd)
        return self.resid_drop(self.proj(y.reshape(B, D))), k, v


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with a 4x GELU MLP."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model),
                                 nn.Dropout(dropout))  # fmt: skip

    def forward(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, mask: Tensor, cos: Tensor, sin: Tensor
                ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """x (B, L, D), caches (B, C, D) -> (x (B, L, D), keys and values (B, C + L, D))."""
        a, k, v = self.attn(self.ln_1(x), k_cache, v_cache, mask, cos, sin)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v

    def step(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, mask: Tensor, cos: Tensor, sin: Tensor
             ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """x (B, D), caches (B, C, D) -> (x (B, D), keys and values (B, C + 1, D)); see ``CausalSelfAttention.step``."""
        a, k, v = self.attn.step(self.ln_1(x), k_cache, v_cache, mask, cos, sin)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v


# --------------------------------------------------------------------------------------------
# Stack
# --------------------------------------------------------------------------------------------
class TransformerBackbone(nn.Module):
    """n_layers blocks -> LayerNorm. State ("kv_cache"): (keys, values (B, n_layers, C, D), count (B,));
    ("window"): (inputs (B, C, D), count (B,))."""

    def __init__(self, cfg: TransformerConfig, control_period: float | None = None):
        super().__init__()
        self.cfg, self.d_model = cfg, cfg.d_model
        self.blocks = nn.ModuleList([Block(cfg.d_model, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        cos, sin = rope_tables(2 * cfg.context - 1, cfg.d_model // cfg.n_heads, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)  # float64: cast where used
        self.register_buffer("rope_sin", sin, persistent=False)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros: see the class docstring for the layout of each ``step_mode``."""
        p, cfg = self.ln_f.weight, self.cfg
        kw = {"device": device or p.device, "dtype": dtype or p.dtype}
        count = torch.zeros(batch_size, dtype=torch.long, device=kw["device"])
        if cfg.step_mode == "window":
            return torch.zeros(batch_size, cfg.context - 1, cfg.d_model, **kw), count
        cache = torch.zeros(batch_size, cfg.n_layers, cfg.context - 1, cfg.d_model, **kw)
        return cache, cache.clone(), count

    def _run(self, x: Tensor, keys: Tensor, values: Tensor, count: Tensor, resets: Tensor | None
             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
        """The network on x (B, L, D) after cached keys/values (B, n_layers, C, D) of ``count`` (B,) steps.

        Returns y (B, L, D), the last C keys and values (B, n_layers, C, D) and ``tail`` (B, C) bool
        (which of the last C steps are in the running episode; the returned caches are zero elsewhere).
        """
        L = x.shape[1]
        mask, tail = band_mask(count, resets, L, self.cfg.context)
        mask = torch.zeros_like(mask, dtype=x.dtype).masked_fill_(~mask, float("-inf"))  # once, not per layer
        cos, sin = self.rope_cos.to(x.dtype), self.rope_sin.to(x.dtype)
        new_k, new_v = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, keys[:, i], values[:, i], mask, cos, sin)
            new_k.append(k[:, L:])  # the last C of C + L
            new_v.append(v[:, L:])
        keep = tail[:, None, :, None].to(x.dtype)
        return self.ln_f(x), torch.stack(new_k, 1) * keep, torch.stack(new_v, 1) * keep, tail

    def forward(self, x: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, L, D), state, resets (B, L) bool -> (y (B, L, D), state after x[:, -1])."""
        check_input("x", x, self.d_model, seq=True)
        B, L, _ = x.shape
        if state is None:
            state = self.initial_state(B, x.device, x.dtype)
        check_state(f"Transformer ({self.cfg.step_mode}) state", state, self.initial_state(B, "meta", x.dtype))
        if self.cfg.step_mode == "kv_cache":
            y, keys, values, tail = self._run(x, *state, resets)
            return y, (keys, values, tail.sum(1))
        # "window": re-run over [stored inputs, x]; the stored inputs' episode starts at slot C − count
        past, count = state
        C = past.shape[1]
        seq = torch.cat([past, x], dim=1)  # (B, C + L, D)
        starts = torch.arange(C + L, device=x.device) == (C - count)[:, None]
        if resets is not None:
            starts = starts | F.pad(resets.bool(), (C, 0))
        no_cache = x.new_zeros(B, self.cfg.n_layers, C, self.d_model)
        y, _, _, tail = self._run(seq, no_cache, no_cache, torch.zeros_like(count), starts)
        return y[:, C:], (seq[:, L:] * tail.unsqueeze(-1).to(x.dtype), tail.sum(1))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, D), state -> (y (B, D), new state).

        "kv_cache": a single-step path that computes ``forward`` over one step without its general
        machinery: the mask is one row, (B, 1, 1, C + 1), built from ``count``, and one query is rotated
        instead of a block. Like ``forward``, it returns a cache that is zero outside the episode, given
        one that is (as every state from ``initial_state``, ``forward`` and ``step`` is): shifting it by
        one slot keeps the zeros. "window": ``forward`` over one step.
        """
        check_input("x", x, self.d_model, seq=False)
        if self.cfg.step_mode == "window":
            y, state = self.forward(x.unsqueeze(1), state)
            return y.squeeze(1), state
        B, C = x.shape[0], self.cfg.context - 1
        want = (B, self.cfg.n_layers, C, self.d_model)
        if len(state) != 3 or state[0].shape != want or state[1].shape != want or state[2].shape != (B,):
            check_state("Transformer (kv_cache) state", state, self.initial_state(B, "meta", x.dtype))  # raises
        keys, values, count = state
        # (B, C + 1): the cached steps of the running episode, and the new step itself
        visible = torch.arange(C + 1, device=x.device) >= (C - count)[:, None]
        mask = torch.zeros_like(visible, dtype=x.dtype).masked_fill_(~visible, float("-inf"))[:, None, None]
        cos, sin = self.rope_cos[: C + 1].to(x.dtype), self.rope_sin[: C + 1].to(x.dtype)
        new_k, new_v = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.step(x, keys[:, i], values[:, i], mask, cos, sin)
            new_k.append(k[:, 1:])  # the last C of C + 1
            new_v.append(v[:, 1:])
        return self.ln_f(x), (torch.stack(new_k, 1), torch.stack(new_v, 1), (count + 1).clamp_max(C))

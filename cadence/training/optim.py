"""The one optimizer of every trainer: AdamW over parameter groups (:func:`adamw`), and its warm-up + cosine schedule.

Groups (nanoGPT's decay rule, plus the tags state-space codebases use):

* **weight decay** on matrices only: a parameter with ``p.dim() < 2`` (biases, norms, LinOSS's A, G, Δt,
  D) or tagged ``p._no_weight_decay = True`` (mambapy tags Mamba's ``A_log`` and ``D``; Cadence tags every
  backbone's recurrence parameters, :func:`cadence.policies.backbones.base.mark_recurrence`) is not decayed;
* **learning-rate factors** by tag: ``p._lr_group = NAME`` puts a parameter in group NAME, trained at
  ``lr · lr_factors[NAME]`` (1 when NAME is not in ``lr_factors``). S5 trains its SSM parameters at 1/3–1/4.5
  of the global rate and minimal-LRU at 0.5×; ``lr_factors={"recurrence": 0.3}`` does the same here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.autograd.graph import increment_version

RECURRENCE = "recurrence"
"""The ``_lr_group`` of a backbone's recurrence parameters (LinOSS: A, G, Δt; Mamba: A_log, Δ, D)."""


def param_groups(module: nn.Module, weight_decay: float, lr: float | None = None,
                 lr_factors: Mapping[str, float] | None = None) -> list[dict]:  # fmt: skip
    """AdamW parameter groups of ``module``'s trainable parameters (module docstring).

    One group per (decayed?, ``_lr_group``) pair that has parameters, each with its ``weight_decay`` and,
    when ``lr`` is given, its ``lr``; without ``lr`` the optimizer's own rate applies (LeRobot's
    ``get_optim_params``) and ``lr_factors`` must be empty.
    """
    factors = dict(lr_factors or {})
    if lr is None and factors:
        raise ValueError("learning-rate factors need the base learning rate: pass lr")
    if bad := {k: v for k, v in factors.items() if not (isinstance(v, int | float) and v > 0)}:
        raise ValueError(f"learning-rate factors must be positive numbers, got {bad}")
    groups: dict[tuple[bool, str | None], list[nn.Parameter]] = {}
    for p in module.parameters():
        if p.requires_grad:
            decay = p.dim() >= 2 and not getattr(p, "_no_weight_decay", False)
            groups.setdefault((decay, getattr(p, "_lr_group", None)), []).append(p)
    out = []
    for (decay, tag), params in groups.items():
        group = {"params": params, "weight_decay": weight_decay if decay else 0.0}
        if lr is not None:
            group["lr"] = lr * factors.get(tag, 1.0)
        if tag is not None:
            group["name"] = tag
        out.append(group)
    return out


def adamw(groups: list[dict], lr: float) -> torch.optim.AdamW:
    """The optimizer of every trainer: AdamW over ``groups`` (:func:`param_groups`) at base rate ``lr``, with PyTorch's
    fused kernel: one call over all parameters instead of a few small ops per tensor, which at short windows was a
    large part of a LinOSS policy's step, its parameters being many small tensors (``docs/benchmarks.md``, "BC training
    throughput"). The fused kernel needs floating-point parameters on one device type; others get the default
    implementation."""
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.is_floating_point() for p in params) and len({p.device.type for p in params}) == 1
    opt = torch.optim.AdamW(groups, lr=lr, fused=fused or None)
    if fused:  # the fused kernel writes the parameters without bumping their version counters (torch 2.11); what keys
        opt.register_step_post_hook(_mark_updated)  # a cache on them (LinOSS's coefficients) would go stale
    return opt


def _mark_updated(opt: torch.optim.Optimizer, args, kwargs) -> None:
    """Bump the version counter of every parameter an optimizer step updated in place, as PyTorch's own in-place
    ops do (``Tensor._version``: autograd's checks and :meth:`LinOSSLayer._io`'s cache read it)."""
    increment_version([p for g in opt.param_groups for p in g["params"] if p.grad is not None])


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor at scheduler step s: linear warm-up over ``warmup`` steps, then a cosine
    decay to 0 at ``total`` (``torch.optim.lr_scheduler.LambdaLR``'s ``lr_lambda``)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def scheduler(opt: torch.optim.Optimizer, warmup: int, total: int, anneal: bool = True
              ) -> torch.optim.lr_scheduler.LambdaLR:  # fmt: skip
    """:func:`warmup_cosine` over ``total`` scheduler steps, or a constant rate with ``anneal=False``."""
    return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warmup, total) if anneal else (lambda _: 1.0))

"""The one protocol every temporal backbone implements.

Symbols used in every backbone module:
    B  batch (environments or sequences)      L  sequence length (time)
    D  model width (``d_model``): the backbone maps (B, L, D) -> (B, L, D)

A backbone is an ``nn.Module`` with three methods:

    initial_state(batch_size, device=None, dtype=None) -> state
    forward(x (B, L, D), state=None, resets=None)      -> (y (B, L, D), state)
    step(x_t (B, D), state)                            -> (y_t (B, D), state)

``state`` is a tuple of tensors, each batch-first, so that trainers can store it, index it by
environment and zero it at episode boundaries without knowing what it holds (see
:func:`reset_state`, :func:`index_state`). ``forward`` accepts a non-zero initial state and
returns the final one, so a long episode can be processed in chunks and continued by ``step``.

``resets`` (B, L) bool marks the steps at which a new episode starts: the state is returned to
``initial_state`` *before* ``x[:, t]`` is consumed. A chunk with resets gives the same outputs as
running its episodes separately (the resettable scan of Lu et al. 2023).

Backbones never change the state they are given; they return a new one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

State = tuple[Tensor, ...]


@runtime_checkable
class Backbone(Protocol):
    d_model: int

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State: ...

    def forward(
        self, x: Tensor, state: State | None = None, resets: Tensor | None = None
    ) -> tuple[Tensor, State]: ...

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]: ...


def mark_recurrence(*params: torch.nn.Parameter) -> None:
    """Tag a backbone's recurrence parameters (its state transition: LinOSS's A, G, Δt; Mamba's A_log, Δ, D)
    the way diagonal-SSM codebases do: no weight decay, and the learning-rate group ``"recurrence"``, which a
    trainer may run at a fraction of the global rate (``cadence.training.optim``)."""
    for p in params:
        p._no_weight_decay = True
        p._lr_group = "recurrence"


def reset_state(state: State, done: Tensor) -> State:
    """Zero the entries of ``state`` whose environment has ``done`` (B,) True."""
    keep = (~done.bool()).to(state[0].device)
    return tuple(s * keep.view(-1, *([1] * (s.dim() - 1))).to(s.dtype) for s in state)


def index_state(state: State, idx: Tensor | slice) -> State:
    """Select environments ``idx`` from every tensor of ``state`` (batch-first)."""
    return tuple(s[idx] for s in state)


def cat_states(states: list[State]) -> State:
    """Concatenate states along the batch axis."""
    return tuple(torch.cat(parts, dim=0) for parts in zip(*states))


def check_input(name: str, x: Tensor, width: int, seq: bool, check_finite: bool = False) -> None:
    """Raise a ``ValueError`` naming ``name`` if ``x`` is not (B, L, width) / (B, width) or not finite."""
    want = "(B, L, %d)" % width if seq else "(B, %d)" % width
    if x.dim() != (3 if seq else 2) or x.shape[-1] != width:
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {want}")
    if check_finite and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf; check the observation pipeline (expected finite {want})")


def check_state(name: str, state: State, expected: State) -> None:
    """Raise a ``ValueError`` if ``state`` does not have the shapes of ``expected``."""
    if not isinstance(state, tuple) or len(state) != len(expected):
        raise ValueError(f"{name} must be a tuple of {len(expected)} tensors as returned by initial_state()")
    for i, (s, e) in enumerate(zip(state, expected)):
        if tuple(s.shape) != tuple(e.shape):
            raise ValueError(
                f"{name}[{i}] has shape {tuple(s.shape)}, expected {tuple(e.shape)} "
                "(use backbone.initial_state(batch_size))"
            )

"""Data-parallel training with PyTorch DDP: the process group, this process's rank, and collectives.

Launch with ``torchrun`` (it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), e.g.
``torchrun --nproc-per-node 2 -m cadence.scripts.train algo=bc ...``; under a submitit SLURM job with
several tasks the same variables are exported from the SLURM environment. Without them the process
is rank 0 of 1 and nothing here does any communication: the trainers take their single-process path.

Backend: NCCL when training on CUDA (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU.
Glossary: W processes (``world_size``), rank r in [0, W); B a global batch, B / W its share per rank.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import Tensor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in the process group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> Distributed:
        """The initialized default process group's rank and size, else rank 0 of 1."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes checkpoints; the other ranks only train."""
        return self.rank == 0

    def shard(self, n: int, what: str) -> slice:
        """This rank's contiguous share of ``n`` items (rows r·n/W … (r+1)·n/W − 1 of a global batch)."""
        if n % self.world_size:
            raise ValueError(f"{what}={n} must be divisible by the number of processes ({self.world_size}); "
                             f"set it to a multiple of {self.world_size} or change --nproc-per-node")  # fmt: skip
        k = n // self.world_size
        return slice(self.rank * k, (self.rank + 1) * k)

    # ------------------------------------------------------------------ collectives (no-ops on 1 process)
    def all_gather(self, x: Tensor) -> Tensor:
        """(n, …) on each rank -> (W·n, …), rank 0's rows first."""
        if not self.enabled:
            return x
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    def mean(self, x: Tensor) -> Tensor:
        """Average of ``x`` over the ranks (a new tensor)."""
        if not self.enabled:
            return x
        x = x.detach().clone()
        dist.all_reduce(x)
        return x / self.world_size

    def broadcast(self, obj):
        """Rank 0's ``obj`` (any JSON-like value) on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_distributed(device: str) -> str:
    """Join the process group when launched by torchrun (or a multi-task submitit job); returns the
    device this process trains on (``cuda`` becomes ``cuda:LOCAL_RANK``; ``cpu`` stays ``cpu``)."""
    slurm_tasks = int(os.environ.get("SLURM_NTASKS", "1")) if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" else 1
    if "RANK" not in os.environ and slurm_tasks > 1:
        from submitit.helpers import TorchDistributedEnvironment  # one process per SLURM task

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device=cuda but CUDA is not available; use device=cpu (gloo backend)")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend)
    log.info("rank %d of %d (%s backend) on %s", dist.get_rank(), dist.get_world_size(), backend, device)
    return device


def close_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def exit_without_finalizing(code: int = 0) -> NoReturn:
    """End a process that was in a gloo process group, with exit status ``code``, once everything is written:
    logs and standard streams flushed, then ``os._exit``, skipping Python's finalization.

    Why: at interpreter exit a gloo worker thread (``ProcessGroupGloo::runLoop``) may still free a finished
    collective that holds a Python object; it asks for the GIL while the main thread is in ``Py_FinalizeEx``,
    Python 3.12 ends that thread with ``pthread_exit``, and unwinding through a noexcept destructor calls
    ``std::terminate`` ("terminate called without an active exception", exit 134, about 1 rank exit in 12;
    ``destroy_process_group`` does not stop gloo's threads in torch 2.11; pytorch/pytorch#190489). Everything
    the run produces is on disk by then (checkpoints and ``eval.json`` are written atomically, TensorBoard closed),
    so finalization has nothing left to do but race that thread.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)

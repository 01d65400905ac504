"""One process or many: the device, the rank, and the few collective steps training needs.

Under `torchrun --nproc_per_node N` (which sets RANK, WORLD_SIZE and LOCAL_RANK) every process joins one
group, gloo on the CPU and nccl on GPUs; rank 0 alone logs and writes files.

Processes keep their copies equal by hand rather than with DistributedDataParallel: they start from rank
0's weights, and after each backward every gradient becomes its mean over the processes (what DDP computes).
DDP's reducer cannot follow a second-order gradient (torch.autograd.grad with create_graph, as in a critic's
gradient penalty), and one way for every trainer is simpler than two.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from torch import nn

from blur2blur.errors import UserError
from blur2blur.train.config import DEVICES


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank of world, and the device it computes on."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true on every process when it is true on any (all processes take the same branch)."""
        if self.world == 1:
            return [bool(f) for f in flags]
        values = torch.tensor([float(f) for f in flags], device=self.device)
        torch_dist.all_reduce(values, op=torch_dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()

    def broadcast(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values of `tensors` (the same list on every process) copied into every process's."""
        if self.world > 1:
            for tensor in tensors:
                torch_dist.broadcast(tensor.data, src=0)

    def average_gradients(self, module: nn.Module) -> None:
        """Each gradient of `module` replaced by its mean over the processes, in one all-reduce.

        Parameters without a gradient are left out on every process alike (the same network runs the same code).
        """
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch_dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view(g.shape))  # copy_ keeps g's own memory layout
            offset += g.numel()


def _device(name: str, local_rank: int) -> torch.device:
    if name not in DEVICES:
        raise UserError(f"--device {name}: choose one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():  # NCCL cannot share a GPU between two processes
        raise UserError(f"{torch.cuda.device_count()} GPU(s) here for more processes per node: give torchrun "
                        "--nproc_per_node at most the number of GPUs, or --device cpu")
    return torch.device("cuda", local_rank)


def setup(device: str = "auto") -> Dist:
    """Join the process group when started by torchrun; otherwise a single process. Idempotent."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local_rank)
    if world > 1 and not torch_dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        # rank 0 evaluates and saves alone while the others wait: allow that far longer than the default
        torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    if rank != 0:  # one voice: the other ranks only report problems
        logging.getLogger().setLevel(logging.WARNING)
    return Dist(rank, world, dev)


def teardown() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()

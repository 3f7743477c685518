"""The processes of a run under torchrun: which one this is, the process group (nccl on
GPUs, gloo on the CPU), and the few collectives an evaluation needs. The trainers use the
same group (`trainers.distributed`)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

# a rank may wait at the end for the others' generation, however long that takes
GROUP_TIMEOUT = datetime.timedelta(hours=12)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        """Rank 0's `obj`, on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Leave the process group together: a process that exits with the group still up
        can abort in gloo's teardown ("terminate called without an active exception")."""
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def setup_distributed() -> Dist:
    """Under torchrun, join the process group (nccl on GPUs, gloo on the CPU); one GPU per
    process (LOCAL_RANK), so `cuda` means this process's GPU."""
    if "RANK" not in os.environ:
        return Dist(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=GROUP_TIMEOUT)
    return Dist(dist.get_rank(), dist.get_world_size(), local,
                torch.device(f"cuda:{local}" if cuda else "cpu"))

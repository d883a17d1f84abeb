"""The ranks of a sharded run: one process, or torchrun's process group.

``torchrun --nproc-per-node N -m protobench.run ...`` starts N copies of the
run with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous in their
environment. Every rank loads the models and pairs and computes the work
units it owns (``owns``: unit i belongs to rank i mod N); rank 0 alone
claims the output folder, writes the settings and, once every rank is done,
merges the units into the run's tables and figures.

The ranks exchange nothing but two barriers and one small status object, so
the process group is always ``gloo`` (over TCP), on GPU nodes too: no
tensor crosses ranks, and NCCL's watchdog would abort a rank that waits at
the final barrier longer than its timeout while the others finish their
units. Ranks on several nodes need a folder they all see (a shared file
system), as rank 0 reads the others' units from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from protobench.errors import ProtobenchError

# how long a rank waits at a barrier for the others: the whole of a long sweep
BARRIER_TIMEOUT = timedelta(days=30)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks of a run (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: claims the folder, writes settings and merges the results."""
        return self.rank == 0

    def owns(self, unit_index: int) -> bool:
        """Whether this rank computes work unit ``unit_index`` (round robin, the same on every rank)."""
        return unit_index % self.world == self.rank

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def share(self, obj=None):
        """Rank 0's ``obj`` on every rank (the others' argument is ignored)."""
        if self.world == 1:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check(self, error: ProtobenchError | None) -> None:
        """Rank 0's verdict on claiming the folder, raised on every rank alike."""
        message = self.share(None if error is None else str(error))
        if error is not None:
            raise error
        if message is not None:
            raise ProtobenchError(message)


def current_ranks() -> Ranks:
    """The ranks of this run: torchrun's (joining its process group once), else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size())


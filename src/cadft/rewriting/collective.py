"""A rewriting round on several processes: the main process runs it, the others serve.

The round itself (`run_round`: screening, verification, the gain gate) runs on the main
process. Two of its steps may need every process:

- scoring under the current policy, and generation by the policy: under FSDP or DeepSpeed
  ZeRO-3 each forward of the trained model gathers the parameter shards from every
  process, so a forward on one process alone would wait forever;
- both are also simply faster when the processes share the rows.

So the main process announces each such call ("score" with its pairs, "generate" with its
conversations) and every process runs it as a collective (equal shares, the same number
of forwards) and gets the whole result; the round's result is announced at the end. The
other processes spend the rest of the round (an external generator, verification) waiting
for the next announcement. They wait on a gloo group of their own whose timeout is
`rewrite_round_timeout`, not on the training process group, whose timeout (`ddp_timeout`,
30 minutes by default) a long round could pass. If the round fails on the main process,
the others are told and raise too, instead of waiting out the timeout.

    service = RoundService(world=2, rank=rank, timeout_s=3600)
    result = service.run(lambda call: run_round(..., score=lambda pairs: call("score", pairs)),
                         handlers={"score": score_collectively})
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

__all__ = ["RoundFailed", "RoundService"]


class RoundFailed(RuntimeError):
    """Raised on the other processes when the round failed on the main process."""


class RoundService:
    def __init__(self, *, world: int, rank: int, timeout_s: float):
        self.world, self.rank = world, rank
        self.group = None
        if world > 1:
            import torch.distributed as dist

            # Every process must create it, in the same order as any other group
            self.group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))

    def _broadcast(self, message=None):
        """The main process's `message` on every process (a gloo broadcast of a pickled object)."""
        import torch.distributed as dist

        box = [message]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def run(self, round_fn: Callable[[Callable], object], handlers: dict[str, Callable]):
        """The result of `round_fn(call)`, on every process.

        On the main process `round_fn` runs and `call(name, *args)` runs `handlers[name](*args)`
        on every process at once, returning its result. The other processes run only the
        handlers, in the order the main process calls them, until the round ends."""
        if self.world == 1:
            return round_fn(lambda name, *args: handlers[name](*args))
        if self.rank != 0:
            return self._serve(handlers)

        def call(name: str, *args):
            self._broadcast(("call", name, args))
            return handlers[name](*args)

        try:
            result = round_fn(call)
        except BaseException as error:
            self._broadcast(("failed", f"{type(error).__name__}: {error}"))
            raise
        self._broadcast(("done", result))
        return result

    def _serve(self, handlers: dict[str, Callable]):
        while True:
            kind, *payload = self._broadcast()
            if kind == "call":
                name, args = payload
                handlers[name](*args)
            elif kind == "done":
                return payload[0]
            else:
                raise RoundFailed(f"the rewriting round failed on the main process: {payload[0]}")

"""Put on PYTHONPATH by tests/test_recipes.py for the FSDP recipe: lets accelerate take its
FSDP path on a CPU process group, as tests/fsdp_train.py does in-process.

accelerate turns FSDP on only for device types with a collective library of their own
(CUDA, XPU, ...); on a gloo process group (MULTI_CPU) the launcher's FSDP settings are
silently ignored and the model is wrapped in DDP. torch's FSDP2 itself runs on CPU processes
over gloo, so when the launcher asked for FSDP this relabels the process state as a
multi-device one once it is built; the device stays the CPU."""

import os

if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    _init = PartialState.__init__

    def _init_with_fsdp(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        if self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.MULTI_GPU

    PartialState.__init__ = _init_with_fsdp

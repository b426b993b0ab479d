"""What a token loss needs from the training forward beyond the label log-probs
(`TokenLoss.needs`), computed without a (B, T, V) tensor of logits:

- `entropy`: the exact predictive entropy, which TRL's fused LM head computes in the same
  forward (`outputs.entropy`, SFTTrainer asks for it): nothing extra;
- `topk_entropy`: the EAFT paper's top-K entropy, from the backbone's last hidden states at
  the trainable positions, projected onto the vocabulary without gradients 256 positions at
  a time (`cadft.losses.topk_entropy_from_hidden`);
- `reference_kl`: ASFT's KL(pi_ref || pi_theta) at the trainable positions, from the policy's
  hidden states (with their graph) and the reference model's, through both LM heads in tiles
  (`cadft.losses.reference_kl`, TRL's chunked divergence kernel).

The hidden states are those the fused head itself projects: a forward hook on the backbone
keeps its output (`capture_hidden_states`), no second policy forward. The reference
(`ReferenceModel`) is the model as training starts: under PEFT the same model with its
adapter disabled (`disable_adapter()`), which holds no second copy; otherwise a frozen copy
made when the trainer is built, one more copy of the weights (no gradients, no optimizer
state: about a quarter of what full fine-tuning with AdamW in float32 holds per parameter).
Either way the reference runs one no-grad forward of the backbone per micro-batch.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch

from ..losses import reference_kl, topk_entropy_from_hidden
from ..losses.token_loss import ENTROPY, REFERENCE_KL, TOPK_ENTROPY

__all__ = ["ReferenceModel", "capture_hidden_states", "head_transform", "token_inputs"]


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _backbone(model):
    """The module whose output TRL's fused head projects (`base_model` of the causal LM)."""
    return _base(model).base_model


def head_transform(model) -> tuple[float, float | None]:
    """(logit_scale, softcap) of the model's LM head, read from its config as TRL's fused head
    reads them: logits = softcap * tanh(z * scale / softcap), z = h @ W.T + b. Scale 1 and no
    cap for most models."""
    config = _base(model).config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    scale = getattr(config, "logit_scale", None)
    for name in ("output_multiplier", "lm_head_multiplier"):
        scale = getattr(config, name, None) if scale is None else scale
    if scale is None and getattr(config, "logits_scaling", None) is not None:
        # Granite and MiniCPM3 divide by it, HyperCLOVA X multiplies
        scale = config.logits_scaling if config.model_type == "hyperclovax" else 1 / config.logits_scaling
    return (1.0 if scale is None else float(scale)), getattr(config, "final_logit_softcapping", None)


@contextmanager
def capture_hidden_states(model):
    """Within the block, `box["hidden"]` is the backbone's last hidden states (B, T, H) of the
    latest forward, with their graph."""
    box: dict = {}

    def hook(module, args, output):
        box["hidden"] = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]

    handle = _backbone(model).register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


class ReferenceModel:
    """ASFT's anchor: the model as training starts. `model` is the unwrapped model (a PEFT
    model or a causal LM with TRL's fused head) when the trainer is built."""

    def __init__(self, model):
        self.peft = hasattr(model, "disable_adapter")
        self.frozen = None
        if not self.peft:
            self.frozen = copy.deepcopy(model).eval().requires_grad_(False)

    @property
    def num_parameters(self) -> int:
        """Parameters held beside the policy: 0 under PEFT."""
        return 0 if self.frozen is None else sum(p.numel() for p in self.frozen.parameters())

    @torch.no_grad()
    def hidden_states(self, model, inputs: dict) -> torch.Tensor:
        """The reference backbone's last hidden states (B, T, H) of a batch's model inputs
        (no labels), in eval mode, without gradients."""
        inputs = {**inputs, "use_cache": False}
        if self.frozen is not None:
            return _backbone(self.frozen)(**inputs).last_hidden_state
        was_training = model.training
        model.eval()
        try:
            with model.disable_adapter():
                return _backbone(model)(**inputs).last_hidden_state
        finally:
            model.train(was_training)

    def head(self, model) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The reference LM head's (weight, bias)."""
        head = _base(self.frozen if self.frozen is not None else model).get_output_embeddings()
        head = getattr(head, "base_layer", head)  # an adapter on the head: its frozen base
        return head.weight, head.bias


def _at_labels(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) values of the trainable positions back into a (B, T-1) tensor, 0 elsewhere (keeps the graph)."""
    return torch.zeros(mask.shape, dtype=values.dtype, device=values.device).masked_scatter(mask, values)


def token_inputs(token_loss, *, model, inputs: dict, outputs, hidden: torch.Tensor | None,
                 reference: ReferenceModel | None) -> dict[str, torch.Tensor]:
    """The per-token inputs (B, T-1) that `token_loss` needs, aligned with the fused head's
    log-probs: `model` the unwrapped model, `inputs` the batch's model inputs (labels
    included), `outputs` the fused head's, `hidden` the policy backbone's last hidden states
    (`capture_hidden_states`), `reference` ASFT's anchor."""
    needs = token_loss.needs
    found: dict[str, torch.Tensor] = {}
    mask = outputs.label_mask  # (B, T-1)
    if ENTROPY in needs:
        found[ENTROPY] = outputs.entropy.detach()
    if TOPK_ENTROPY in needs or REFERENCE_KL in needs:
        if hidden is None:
            raise RuntimeError("the token loss needs the backbone's hidden states, which the forward did not leave")
        head = _base(model).get_output_embeddings()
        weight, bias = head.weight, head.bias
        h = hidden[:, :-1].to(weight.device)[mask]  # (N, H): the positions the fused head scores
        scale, softcap = head_transform(model)
        if TOPK_ENTROPY in needs:
            entropy = topk_entropy_from_hidden(h.detach(), weight.detach(), k=token_loss.k, bias=bias,
                                               logit_scale=scale, softcap=softcap)
            found[TOPK_ENTROPY] = _at_labels(entropy, mask)
        if REFERENCE_KL in needs:
            model_inputs = {key: value for key, value in inputs.items() if key != "labels"}
            ref_h = reference.hidden_states(model, model_inputs)[:, :-1].to(weight.device)[mask]  # (N, H)
            ref_weight, ref_bias = reference.head(model)
            kl = reference_kl(h, weight, ref_h, ref_weight, bias=bias, ref_bias=ref_bias, logit_scale=scale,
                              softcap=softcap)
            found[REFERENCE_KL] = _at_labels(kl, mask)
    return found

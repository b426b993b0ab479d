"""Peak memory of CADFT's loss path against a naive float32 log-softmax over the full logits,
with a vocabulary of at least 128k tokens.

    python benchmarks/loss_memory.py --vocab 128256 --batch 4 --seq_len 256

One forward and backward of a tiny Llama whose embedding and LM head have a Llama-3-sized
vocabulary (the backbone is one small layer, so the LM head and the loss dominate), two ways,
on the same weights and batch:

- **naive**: `model(...).logits` (B, T, V), a float32 `log_softmax` over it, gather the
  labels, the CADFT loss, backward;
- **TRL head**: `model(..., fused_lm_head=True)` as `trl.SFTTrainer` runs it (TRL's chunked
  LM head, 32,768-column vocabulary tiles: the (B, T, V) logits never exist), the CADFT loss;
- **cadft**: what `CADFTTrainer.compute_loss` runs: the same head inside
  `cadft.model.vocab_tiles.cpu_vocab_tiles`, which narrows the tiles to 8,192 columns on devices
  without Triton (TRL's torch fallback holds ~8 float32 temporaries per tile).

Memory is the peak of tensor storage allocated during the forward and backward and alive at
once (`TensorPeak` of benchmarks/train_step.py: every op's outputs, counted until freed),
on top of the weights. The script fails (exit 1) unless the two give the same label
log-probs (max abs difference <= 1e-4), loss and gradients (relative 1e-4).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

import torch

# run as a script (python benchmarks/...): its own folder is the first import path, train_step beside it
from train_step import TensorPeak, _cpu_model

TOLERANCE = 1e-4


def build_model(vocab: int, hidden: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    from cadft.model.scoring import ensure_fused_lm_head

    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    ensure_fused_lm_head(model)
    return model


def naive_logps(model, ids, labels):
    logits = model(input_ids=ids).logits.float()  # (B, T, V)
    logps = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, T-1, V)
    target = labels[:, 1:]
    mask = target != -100
    picked = logps.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, picked, torch.zeros_like(picked)), mask


def fused_logps(model, ids, labels):
    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    return out.log_probs, out.label_mask


def cadft_logps(model, ids, labels):
    from cadft.model.vocab_tiles import cpu_vocab_tiles

    with cpu_vocab_tiles(ids.device):
        return fused_logps(model, ids, labels)


def run(path, model, ids, labels):
    """Forward, CADFT loss, backward; (peak MiB, seconds, log-probs, loss, gradients)."""
    from cadft import cadft_loss

    model.zero_grad(set_to_none=True)
    counter = TensorPeak()
    start = time.perf_counter()
    with counter:
        logps, mask = path(model, ids, labels)
        loss, _ = cadft_loss(logps, mask, beta=1.0, normalizer=1e-5, w_min=0.1, w_max=3.0)
        loss.backward()
    seconds = time.perf_counter() - start
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return counter.peak / 2**20, seconds, logps.detach(), loss.detach(), grads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--vocab", type=int, default=128_256, help="Vocabulary size (Llama 3: 128,256).")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq_len", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_model(args.vocab, args.hidden)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq_len), generator=gen)
    labels = ids.clone()
    labels[:, : args.seq_len // 4] = -100  # a prompt

    paths = {"naive float32 log-softmax": naive_logps, "TRL fused head (SFTTrainer)": fused_logps,
             "cadft (CADFTTrainer.compute_loss)": cadft_logps}
    for path in paths.values():
        run(path, model, ids, labels)  # warm-up (first-call allocations)
    results = {name: run(path, model, ids, labels) for name, path in paths.items()}
    naive = results["naive float32 log-softmax"]
    full_logits_mib = args.batch * args.seq_len * args.vocab * 4 / 2**20
    print(f"vocabulary {args.vocab:,}, batch {args.batch} x {args.seq_len} tokens; one (B, T, V) float32 tensor: "
          f"{full_logits_mib:.0f} MiB\n")
    print("| loss path | peak MiB | / naive | s (forward + backward) | max abs diff log p | rel diff loss "
          "| max rel diff grad |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, (peak, seconds, logps, loss, grads) in results.items():
        diff_logp = float((logps.float() - naive[2]).abs().max())
        diff_loss = float((loss - naive[3]).abs() / naive[3].abs())
        diff_grad = max(float((g - r).abs().max() / r.abs().max().clamp(min=1e-30)) for g, r in zip(grads, naive[4]))
        worst = max(worst, diff_logp, diff_loss, diff_grad)
        print(f"| {name} | {peak:.0f} | **{peak / naive[0]:.3f}** | {seconds:.2f} | {diff_logp:.1e} | {diff_loss:.1e} "
              f"| {diff_grad:.1e} |")
    import transformers
    import trl

    print(f"\n{date.today().isoformat()} | {_cpu_model()} | torch {torch.__version__}, transformers "
          f"{transformers.__version__}, trl {trl.__version__}, {args.threads} thread(s)")
    print("python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]))
    if worst > TOLERANCE:
        print(f"FAIL: the two paths differ by more than {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

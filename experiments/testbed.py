"""The testbed's moving parts: the base policy, one fine-tuning run, its probes, GRPO.

Everything here is a plain function of a config dataclass, so that `experiments/run.py`
can hand jobs to worker processes and collect JSON-able results.

    base = ensure_base(BaseConfig(), cache_dir="experiments/.cache")   # trains once, then cached
    result = finetune(RunConfig(method="cadft", seed=0), base, out_dir="/tmp/run")
    result["test_id_acc"], result["probes"][-1]["grad_noise"]

A run's metrics (see docs/results.md for their definitions):
- accuracies by greedy generation + final-answer check on fixed problem sets;
- `probes`: at fixed steps, on a fixed probe batch of the run's own training set, the
  normalised trace of the per-sample gradient covariance of the method's estimator and
  the effective sample size of its weights; and every training row's compatibility,
  summarised per demonstration kind;
- the Trainer's per-step log (loss, grad norm, plain NLL, weight statistics).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass

import torch

from task import (
    HINT_PREFIX,
    KINDS,
    chat_prompt,
    finetune_rows,
    pretrain_rows,
    problems,
)

__all__ = ["BaseConfig", "RunConfig", "GRPORunConfig", "ensure_base", "finetune", "grpo", "accuracy", "gradient_noise"]

logger = logging.getLogger(__name__)

TASK_VERSION = 1  # bump when task.py changes what a base policy learns: invalidates the cache
EVAL_SEED = 12345  # the fixed evaluation problems (val, test, OOD, retention) come from this seed
MAX_NEW_TOKENS = 72  # a 6-op native solution is <= 55 characters


@dataclass(frozen=True)
class BaseConfig:
    """The base policy: a tiny Llama pre-trained from scratch on easy, native-style problems."""

    hidden_size: int = 64  # learns carries in a few minutes on one CPU thread (128x4 is 5x slower)
    num_layers: int = 2
    num_heads: int = 4
    ops: tuple[int, int] = (1, 3)  # the easy part of the task family
    hint_frac: float = 0.3  # rows that teach "restate a reference in native style" (rewriting needs it)
    steps: int = 2500
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({**asdict(self), "task_version": TASK_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunConfig:
    """One fine-tuning run of one method on one seed's fine-tuning set."""

    method: str = "cadft"  # sft | dft | cadft | cadft_rewrite
    seed: int = 0  # the fine-tuning set, the data order and the trainer
    lr: float = 1e-3
    beta: float = 1.0  # CADFT only
    steps: int = 128
    batch_size: int = 16
    n_train: int = 512
    frac_incompatible: float = 0.3
    frac_wrong: float = 0.2
    noise_kind: str = "mixed"
    ft_ops: tuple[int, int] = (3, 4)
    ood_ops: tuple[int, int] = (5, 6)
    n_checkpoints: int = 4  # probes at steps 0 and k * steps / n_checkpoints
    probe_size: int = 48
    n_val: int = 200
    n_test: int = 300
    rewrite_budget: float = 0.1
    save_model: bool = False  # keep the fine-tuned weights (for GRPO)
    eval_test: bool = True  # False in the hyper-parameter search: it must never see the test sets

    @property
    def loss_type(self) -> str:
        return {"sft": "nll", "dft": "dft", "cadft": "cadft", "cadft_rewrite": "cadft"}[self.method]


@dataclass(frozen=True)
class GRPORunConfig:
    """Cold-start RL from a fine-tuned model: same budget for every method."""

    seed: int = 0
    steps: int = 16
    lr: float = 2e-4
    prompts_per_step: int = 4
    num_generations: int = 8
    temperature: float = 1.0
    n_prompts: int = 256
    ft_ops: tuple[int, int] = (3, 4)
    n_test: int = 300


# --------------------------------------------------------------------------- setup


def quiet() -> None:
    """One thread (the machine is shared and has two cores) and no progress chatter."""
    torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    logging.getLogger("cadft").setLevel(logging.WARNING)


def _tokenizer():
    from cadft.tiny import tiny_tokenizer

    return tiny_tokenizer()


def _load(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def eval_sets(ft_ops, ood_ops, base_ops, n_val: int, n_test: int) -> dict:
    """Fixed problem sets, the same for every method and seed (val is disjoint by seed)."""
    return {
        "val": problems(n_val, ft_ops, EVAL_SEED),
        "test_id": problems(n_test, ft_ops, EVAL_SEED + 1),
        "test_ood": problems(n_test, ood_ops, EVAL_SEED + 2),
        "retention": problems(n_test, base_ops, EVAL_SEED + 3),
    }


def accuracy(model, tokenizer, probs) -> float:
    """Greedy generation, then the final answer (last `#### x`, else the last number) vs the truth."""
    from cadft.generation import generate
    from cadft.verifiers import extract_answer

    outputs = generate(
        model, tokenizer, [chat_prompt(p.question) for p in probs], max_new_tokens=MAX_NEW_TOKENS,
        batch_size=100, progress=False,
    )
    return sum(extract_answer(o[0]) == str(p.answer) for o, p in zip(outputs, probs)) / len(probs)


# --------------------------------------------------------------------------- base policy


def _encode(tokenizer, rows):
    from cadft.scoring import tokenize_demonstration

    return [tokenize_demonstration(tokenizer, row) for row in rows]


def _pad(encoded, pad_id):
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)  # (B, T)
    attn = torch.zeros((len(encoded), width), dtype=torch.long)  # (B, T)
    for b, e in enumerate(encoded):
        n = len(e["input_ids"])
        ids[b, :n], labels[b, :n], attn[b, :n] = torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1
    return ids, labels, attn


def ensure_base(cfg: BaseConfig, cache_dir: str) -> str:
    """The base policy's folder, trained (completion-only NLL, AdamW, cosine) unless cached."""
    path = os.path.join(cache_dir, f"base-{cfg.key()}")
    if os.path.exists(os.path.join(path, "meta.json")):
        return path
    from transformers import get_cosine_schedule_with_warmup

    from cadft.tiny import tiny_llama

    tok = _tokenizer()
    model = tiny_llama(tok, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                       max_position_embeddings=256, seed=cfg.seed)
    rows = _encode(tok, pretrain_rows(cfg.steps * cfg.batch_size // 4, ops=cfg.ops, hint_frac=cfg.hint_frac,
                                      seed=cfg.seed))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=min(100, cfg.steps // 10), num_training_steps=cfg.steps)
    rng = random.Random(cfg.seed)
    start, losses = time.time(), []
    model.train()
    for step in range(cfg.steps):
        ids, labels, attn = _pad(rng.sample(rows, cfg.batch_size), tok.pad_token_id)
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 500 == 0:
            logger.info("base step %d loss %.4f", step, loss.item())
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    sets = eval_sets((3, 4), (5, 6), cfg.ops, 10, 200)
    meta = {
        "config": asdict(cfg),
        "seconds": time.time() - start,
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        "acc_easy": accuracy(model, tok, sets["retention"]),
        "acc_ft_ops": accuracy(model, tok, sets["test_id"]),
    }
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- probes


def _label_logprobs(model, input_ids, labels):
    """(1, T-1) label log-probs with their graph, and the trainable-token mask."""
    logits = model(input_ids=input_ids).logits[:, :-1].float()  # (1, T-1, V)
    target = labels[:, 1:]
    mask = target != -100
    logps = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logps, mask


def gradient_noise(model, encoded, *, loss_type: str, beta: float, normalizer: float | None,
                   w_min: float, w_max: float) -> dict:
    """Per-sample gradients h_i of the method's estimator, weights included (the batch
    gradient is proportional to mean_i h_i), on the rows `encoded`:

        noise = tr Cov(h) / ||mean h||^2 = [B/(B-1)] (mean ||h_i||^2 - ||mean h||^2) / ||mean h||^2

    The ratio does not depend on the 1/N scale. For CADFT the weight uses the trainer's
    running normaliser m (at step 0, before calibration, the probe batch's mean c**beta).
    Also returns the normalised effective sample size (sum w)^2 / (B sum w^2) in (0, 1].
    """
    from cadft.losses import cadft_loss, compatibility, dft_loss, sft_loss

    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    pairs = [(torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])) for e in encoded]
    if loss_type == "cadft" and normalizer is None:
        with torch.no_grad():
            compats = torch.cat([compatibility(*_label_logprobs(model, ids, lab)) for ids, lab in pairs])
        normalizer = compats.pow(beta).mean().item()
    total, sq_sum, weights = None, 0.0, []
    for ids, lab in pairs:
        logps, mask = _label_logprobs(model, ids, lab)
        if loss_type == "nll":
            loss, stats = sft_loss(logps, mask, num_items_in_batch=1)
        elif loss_type == "dft":
            loss, stats = dft_loss(logps, mask, num_items_in_batch=1)
        else:
            loss, stats = cadft_loss(logps, mask, beta=beta, normalizer=normalizer, w_min=w_min, w_max=w_max,
                                     num_items_in_batch=1)
        weights.append(stats["sample_weight"].item())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).double()
                          for g, p in zip(grads, params)])
        total = flat if total is None else total + flat
        sq_sum += flat.square().sum().item()
    model.train(was_training)
    b = len(pairs)
    mean_sq = (total / b).square().sum().item()
    trace_cov = b / (b - 1) * (sq_sum / b - mean_sq)
    w = torch.tensor(weights, dtype=torch.float64)
    return {
        "grad_noise": trace_cov / max(mean_sq, 1e-300),
        "ess": (w.sum().square() / w.square().sum()).item() / b,
        "mean_grad_sq_norm": mean_sq,
    }


def compat_by_kind(model, tokenizer, encoded, kinds, *, beta: float, normalizer: float | None,
                   w_min: float, w_max: float) -> dict:
    """Each training row's compatibility c under the policy, summarised per kind, with the
    CADFT weight clip(c**beta / m) that c would get now."""
    from cadft.scoring import score_rows

    scores = score_rows(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=64, progress=False)
    c = torch.tensor([s["compatibility"] for s in scores])
    m = normalizer if normalizer is not None else c.pow(beta).mean().item()
    w = (c.pow(beta) / m).clamp(w_min, w_max)
    out = {}
    for kind in KINDS:
        sel = torch.tensor([k == kind for k in kinds])
        if sel.any():
            ck = c[sel]
            out[kind] = {
                "mean": ck.mean().item(),
                "q10": torch.quantile(ck, 0.1).item(),
                "q50": torch.quantile(ck, 0.5).item(),
                "q90": torch.quantile(ck, 0.9).item(),
                "weight_mean": w[sel].mean().item(),
            }
    return out


# --------------------------------------------------------------------------- fine-tuning


REWRITE_TEMPLATE = "{question}" + HINT_PREFIX + "{reference}"


def _trainer_args(cfg: RunConfig, out_dir: str):
    from cadft import CADFTConfig

    kwargs = dict(
        output_dir=out_dir,
        loss_type=cfg.loss_type,
        cadft_beta=cfg.beta,
        learning_rate=cfg.lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, cfg.steps // 20),
        weight_decay=0.0,
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=64,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        max_length=256,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if cfg.method == "cadft_rewrite":
        kwargs.update(
            rewrite=True,
            rewrite_generator="policy",  # the policy itself: no outside help
            rewrite_verifier="exact",  # integer answers: normalised exact match is exact
            rewrite_answer_column="answer",
            rewrite_template=REWRITE_TEMPLATE,
            rewrite_budget=cfg.rewrite_budget,
            rewrite_max_new_tokens=MAX_NEW_TOKENS,
            rewrite_num_candidates=2,
        )
    return CADFTConfig(**kwargs)


def finetune(cfg: RunConfig, base_path: str, out_dir: str) -> dict:
    """Fine-tune the base policy with `cfg.method`; returns a JSON-able result dict."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback

    from cadft import CADFTTrainer

    start = time.time()
    tok = _tokenizer()
    model = _load(base_path)
    rows = finetune_rows(cfg.n_train, frac_incompatible=cfg.frac_incompatible, frac_wrong=cfg.frac_wrong,
                         noise_kind=cfg.noise_kind, ops=cfg.ft_ops, seed=cfg.seed)
    encoded = _encode(tok, rows)
    kinds = [r["kind"] for r in rows]
    probe = encoded[: cfg.probe_size]  # the set is shuffled: a fixed, representative probe batch
    base_ops = tuple(json.load(open(os.path.join(base_path, "meta.json")))["config"]["ops"])
    sets = eval_sets(cfg.ft_ops, cfg.ood_ops, base_ops, cfg.n_val, cfg.n_test)
    probe_steps = sorted({round(k * cfg.steps / cfg.n_checkpoints) for k in range(cfg.n_checkpoints + 1)})

    trainer = CADFTTrainer(model, args=_trainer_args(cfg, out_dir), train_dataset=Dataset.from_list(rows),
                           processing_class=tok)
    probes = []

    def run_probes(step: int) -> None:
        m = trainer.normalizer.value if trainer.normalizer.ready else None
        weight_args = dict(beta=cfg.beta, normalizer=m, w_min=trainer.args.cadft_w_min, w_max=trainer.args.cadft_w_max)
        entry = {"step": step, **gradient_noise(trainer.model, probe, loss_type=cfg.loss_type, **weight_args)}
        entry["compat"] = compat_by_kind(trainer.model, tok, encoded, kinds, **weight_args)
        entry["val_acc"] = accuracy(trainer.model, tok, sets["val"])
        probes.append(entry)

    class Probes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in probe_steps:
                run_probes(state.global_step)

    trainer.add_callback(Probes())
    trainer.remove_callback(PrinterCallback)  # disable_tqdm would print every step's log
    run_probes(0)
    trainer.train()

    model = trainer.model
    result = {
        "config": asdict(cfg),
        "val_acc": probes[-1]["val_acc"],
        "probes": probes,
        "log": [{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in trainer.state.log_history],
    }
    if cfg.eval_test:
        for name in ("test_id", "test_ood", "retention"):
            result[f"{name}_acc"] = accuracy(model, tok, sets[name])
    if trainer.rewriter is not None:
        accepted = trainer.rewriter.store.accepted
        result["rewrites_accepted"] = {k: sum(kinds[i] == k for i in accepted) for k in KINDS}
        result["rewrite_rounds"] = trainer.rewriter.store.rounds_done
    if cfg.save_model:
        trainer.save_model(os.path.join(out_dir, "model"))
    result["seconds"] = time.time() - start
    return result


# --------------------------------------------------------------------------- cold-start RL


def grpo(cfg: GRPORunConfig, model_path: str, out_dir: str) -> dict:
    """GRPO (TRL `GRPOTrainer`) with a 0/1 correctness reward from a fine-tuned model."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from cadft.verifiers import extract_answer

    start = time.time()
    tok = _tokenizer()
    model = _load(model_path)
    train = problems(cfg.n_prompts, cfg.ft_ops, seed=1000 + cfg.seed)
    dataset = Dataset.from_list([{"prompt": chat_prompt(p.question), "answer": str(p.answer)} for p in train])

    def correctness(completions, answer, **kwargs):
        return [float(extract_answer(c[-1]["content"]) == a) for c, a in zip(completions, answer)]

    args = GRPOConfig(
        output_dir=out_dir,
        learning_rate=cfg.lr,
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations,
        max_completion_length=MAX_NEW_TOKENS,
        temperature=cfg.temperature,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        bf16=False,
        use_cpu=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=True,
        gradient_checkpointing=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=correctness, args=args, train_dataset=dataset,
                          processing_class=tok)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    sets = eval_sets(cfg.ft_ops, (5, 6), (1, 2), 10, cfg.n_test)
    return {
        "config": asdict(cfg),
        "model_path": model_path,
        "rewards": rewards,
        "final_test_id_acc": accuracy(trainer.model, tok, sets["test_id"]),
        "seconds": time.time() - start,
    }


def finite(value) -> bool:
    """Every number inside `value` (nested dicts/lists) is finite."""
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True

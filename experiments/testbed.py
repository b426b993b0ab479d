"""The testbed's moving parts: the base policy, one fine-tuning run, its probes, GRPO.

Everything here is a plain function of a config dataclass, so that `experiments/run.py`
can hand jobs to worker processes and collect JSON-able results.

    base = ensure_base(BaseConfig(), cache_dir="experiments/.cache")   # trains once, then cached
    result = finetune(RunConfig(method="cadft", seed=0), base, out_dir="/tmp/run")
    result["test_id_acc"], result["probes"][-1]["grad_snr"]

A run's metrics (see docs/results.md for their definitions):
- accuracies by greedy generation + final-answer check on fixed problem sets;
- `probes`: at fixed steps, on a fixed probe batch of the run's own training set, the
  unbiased signal-to-noise ratio of the method's per-sample gradients, the split-half
  cosine, the cosine of the batch gradient with the NLL gradient of clean held-out
  demonstrations, the effective sample size of the weights; and every training row's
  compatibility, summarised per demonstration kind;
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
import warnings
from dataclasses import asdict, dataclass

import torch

from instruments import cosine, gradient_snr, split_half_cosine
from task import HINT_PREFIX, KINDS, chat_prompt, finetune_rows, pretrain_rows, problems, solution

__all__ = ["BaseConfig", "RunConfig", "GRPORunConfig", "ProblemSet", "FINETUNE", "OOD", "RETENTION", "MIXTURES",
           "ensure_base", "base_accuracy", "finetune", "grpo", "accuracy", "probe_gradients"]

logger = logging.getLogger(__name__)

TASK_VERSION = 2  # bump when task.py changes what a base policy learns: invalidates the cache
EVAL_SEED = 12345  # the fixed evaluation problems (val, test, OOD, retention) come from this seed
MAX_NEW_TOKENS = 72  # a 5-op native solution is <= 45 characters


@dataclass(frozen=True)
class ProblemSet:
    """A distribution of problems: the number of operations and the starting number, each
    drawn uniformly from its inclusive range."""

    ops: tuple[int, int]
    starts: tuple[int, int] = (10, 99)

    def sample(self, n: int, seed: int) -> list:
        return problems(n, self.ops, seed, self.starts)

    def describe(self) -> str:
        ops = f"{self.ops[0]}" if self.ops[0] == self.ops[1] else f"{self.ops[0]}-{self.ops[1]}"
        return f"{ops} operations from a start in {self.starts[0]}-{self.starts[1]}"


# Fine-tuning (and validation, ID test, GRPO prompts): 3 operations, where the base policy is
# middling, from starts 10-54. OOD: the same length from starts 55-99, which no fine-tuning
# problem has (and which need more subtractions to stay within 0-99). Longer problems were
# tried as OOD first: fine-tuning on 3-4 operations left 5-operation problems at the floor
# for every method, SFT included. Retention: 1-2 operations, disjoint from fine-tuning.
FINETUNE, OOD, RETENTION = ProblemSet((3, 3), (10, 54)), ProblemSet((3, 3), (55, 99)), ProblemSet((1, 2))

# The fine-tuning mixtures: the fraction of each non-native kind (the rest is native and correct)
MIXTURES = {
    "clean": (),
    "default": (("mild", 0.1), ("medium", 0.1), ("strong", 0.1), ("wrong", 0.2)),
    "high": (("mild", 0.2), ("medium", 0.2), ("strong", 0.2), ("wrong", 0.1)),
}


@dataclass(frozen=True)
class BaseConfig:
    """The base policy: a tiny Llama pre-trained from scratch on native-style problems."""

    hidden_size: int = 64  # learns carries in a few minutes on one CPU thread (128x4 is 5x slower)
    num_layers: int = 2
    num_heads: int = 4
    # (number of operations, share of pre-training rows): long problems rare, so the skill
    # the fine-tuning set asks for exists weakly (DFT assumes it does; see docs/results.md)
    # (4% 4-op, 2000 steps gave 0.98 on 4 ops: the share must be far smaller to leave room)
    op_weights: tuple[tuple[int, float], ...] = ((1, 0.5), (2, 0.472), (3, 0.02), (4, 0.006), (5, 0.002))
    hint_frac: float = 0.3  # rows that teach "restate a reference in native style" (rewriting needs it)
    steps: int = 2000  # about 4 minutes on one idle CPU thread (1000 steps left 1-op accuracy at 0.16)
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({**asdict(self), "task_version": TASK_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunConfig:
    """One fine-tuning run of one method on one seed's fine-tuning set."""

    method: str = "cadft"  # sft | dft | cadft | cadft_rewrite | cadft_unweighted (the control: beta = 0)
    seed: int = 0  # the fine-tuning set, the data order and the trainer
    lr: float = 1e-3
    # the CADFT estimator (ignored by sft and dft)
    beta: float = 1.0
    token_power: float = 1.0
    normalization: str = "ema"
    w_max: float = 3.0
    mixture: str = "default"  # a key of MIXTURES
    steps: int = 64
    batch_size: int = 16
    n_train: int = 512
    noise_kind: str = "mixed"
    n_checkpoints: int = 1  # probes at k * steps / n_checkpoints, and at step 0 when it is > 1
    probe_size: int = 48
    n_val: int = 150
    n_test: int = 300
    rewrite_budget: float = 0.1
    instruments: bool = True  # gradient and compatibility probes (off in tuning runs: they need val acc only)
    save_model: bool = False  # keep the fine-tuned weights (for GRPO)
    eval_test: bool = True  # False on validation seeds: they never see the test sets

    @property
    def loss_type(self) -> str:
        return {"sft": "nll", "dft": "dft", "cadft": "cadft", "cadft_rewrite": "cadft", "cadft_unweighted": "cadft"}[
            self.method]

    @property
    def variant(self) -> str:
        """A short name of the estimator, e.g. `cadft[batch,a0.5,b1,w3]`."""
        if self.loss_type != "cadft":
            return self.method
        return f"{self.method}[{self.normalization},a{self.token_power:g},b{self.beta:g},w{self.w_max:g}]"


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
    n_test: int = 300


# --------------------------------------------------------------------------- setup


def quiet() -> None:
    """One thread (the machine is shared and has two cores) and no progress chatter."""
    torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    logging.getLogger("cadft").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices of transformers v6


def _tokenizer():
    from cadft.tiny import tiny_tokenizer

    return tiny_tokenizer()


def _load(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def eval_sets(n_val: int, n_test: int) -> dict:
    """Fixed problem sets, the same for every method and seed (val is disjoint by seed)."""
    return {
        "val": FINETUNE.sample(n_val, EVAL_SEED),
        "test_id": FINETUNE.sample(n_test, EVAL_SEED + 1),
        "test_ood": OOD.sample(n_test, EVAL_SEED + 2),
        "retention": RETENTION.sample(n_test, EVAL_SEED + 3),
    }


def clean_rows(n: int) -> list[dict]:
    """Held-out native, correct demonstrations of ID problems (the alignment reference)."""
    rows = []
    for p in FINETUNE.sample(n, EVAL_SEED + 4):
        rows.append({"prompt": chat_prompt(p.question), "completion": [{"role": "assistant", "content": solution(p)}]})
    return rows


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
    rows = _encode(tok, pretrain_rows(cfg.steps * cfg.batch_size // 4, op_weights=dict(cfg.op_weights),
                                      hint_frac=cfg.hint_frac, seed=cfg.seed))
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
    meta = {
        "config": asdict(cfg),
        "seconds": time.time() - start,
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        "acc_by_ops": {k: accuracy(model, tok, problems(100, (k, k), EVAL_SEED + 10 + k)) for k in range(1, 6)},
    }  # its accuracy on the fixed sets is measured by each run (`base_accuracy`): the sets may change
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def base_accuracy(base_path: str, n_val: int, n_test: int) -> dict:
    """The base policy's accuracy on this run's fixed sets (not cached: the sets may change
    without retraining the base)."""
    model, tok = _load(base_path), _tokenizer()
    return {f"{name}_acc": accuracy(model, tok, probs) for name, probs in eval_sets(n_val, n_test).items()}


# --------------------------------------------------------------------------- probes


def _label_logprobs(model, input_ids, labels, attention_mask=None):
    """(B, T-1) label log-probs with their graph, and the trainable-token mask."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()  # (B, T-1, V)
    target = labels[:, 1:]
    mask = target != -100
    logps = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logps, mask


def _flat_grad(loss, params) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).double() for g, p in zip(grads, params)])


def _estimator_loss(cfg: RunConfig, logps, mask, *, log_m: float, w_min: float):
    """One row's loss under the run's estimator (the trainer's current log m for CADFT)."""
    from cadft.losses import cadft_loss, dft_loss, sft_loss

    if cfg.loss_type == "nll":
        return sft_loss(logps, mask, num_items_in_batch=1)
    if cfg.loss_type == "dft":
        return dft_loss(logps, mask, num_items_in_batch=1)
    return cadft_loss(logps, mask, beta=cfg.beta, log_normalizer=log_m, w_min=w_min, w_max=cfg.w_max,
                      token_power=cfg.token_power, num_items_in_batch=1)


def _probe_log_m(model, pairs, beta: float) -> float:
    """log mean c**beta over the probe rows: the normaliser before the trainer has one."""
    from cadft.losses import mean_logprob
    from cadft.normalizer import log_mean_exp

    with torch.no_grad():
        s = torch.cat([mean_logprob(*_label_logprobs(model, ids, lab))[0] for ids, lab in pairs])
    return log_mean_exp(beta * s)[0]


def probe_gradients(model, probe, clean, cfg: RunConfig, *, pad_id: int, log_m: float | None, w_min: float) -> dict:
    """Per-sample gradients h_i of the run's estimator, weights included, on the rows
    `probe`: their unbiased signal-to-noise ratio, split-half cosine, the cosine of their
    mean with the plain NLL gradient of the clean held-out rows `clean`, and the
    normalised effective sample size (sum w)^2 / (B sum w^2) of the weights. Under the
    `batch` normalisation every weight of a step is multiplied by the same kappa, which
    changes none of these ratios."""
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    pairs = [(torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])) for e in probe]
    if cfg.loss_type == "cadft" and log_m is None:
        log_m = _probe_log_m(model, pairs, cfg.beta)
    rows, weights = [], []
    for ids, lab in pairs:
        loss, stats = _estimator_loss(cfg, *_label_logprobs(model, ids, lab), log_m=log_m or 0.0, w_min=w_min)
        weights.append(stats["sample_weight"].item())
        rows.append(_flat_grad(loss, params))
    h = torch.stack(rows)  # (B, D)
    ids, labels, attn = _pad(clean, pad_id)
    logps, mask = _label_logprobs(model, ids, labels, attn)
    reference = _flat_grad(-(logps * mask).sum() / mask.sum(), params)
    model.train(was_training)
    w = torch.tensor(weights, dtype=torch.float64)
    return {
        "grad_snr": gradient_snr(h),
        "split_cos": split_half_cosine(h),
        "align": cosine(h.mean(0), reference),
        "ess": (w.sum().square() / w.square().sum()).item() / len(weights),
    }


def compat_by_kind(model, tokenizer, encoded, kinds, *, beta: float, log_m: float | None, w_min: float,
                   w_max: float) -> dict:
    """Each training row's compatibility c under the policy, summarised per kind, with
    the mean weight clip(c**beta / m) of the kind relative to the mean over all rows."""
    from cadft.normalizer import log_mean_exp
    from cadft.scoring import score_rows

    scores = score_rows(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=64, progress=False)
    s = torch.tensor([r["mean_logprob"] for r in scores], dtype=torch.float64)
    log_m = log_m if log_m is not None else log_mean_exp(beta * s)[0]
    w = (beta * s - log_m).exp().clamp(w_min, w_max)
    c = s.exp()
    out = {}
    for kind in KINDS:
        sel = torch.tensor([k == kind for k in kinds])
        if sel.any():
            q = torch.quantile(c[sel], torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)).tolist()
            out[kind] = {"mean": c[sel].mean().item(), **dict(zip(("q10", "q25", "q50", "q75", "q90"), q)),
                         "weight_rel": (w[sel].mean() / w.mean()).item()}
    return out


# --------------------------------------------------------------------------- fine-tuning


REWRITE_TEMPLATE = "{question}" + HINT_PREFIX + "{reference}"


def _trainer_args(cfg: RunConfig, out_dir: str):
    from cadft import CADFTConfig

    kwargs = dict(
        output_dir=out_dir,
        loss_type=cfg.loss_type,
        cadft_beta=cfg.beta,
        cadft_token_power=cfg.token_power,
        cadft_normalization=cfg.normalization,
        cadft_w_max=cfg.w_max,
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
            # The project's verified rewriting and its earlier selection and schedule, as measured
            # (docs/results.md): not the paper's procedure, which is now rewrite=True's default
            rewrite_preset="verified",
            rewrite_selection="flagged",
            rewrite_start_step=math.ceil(cfg.n_train / cfg.batch_size),  # one epoch
            rewrite_interval_steps=math.ceil(cfg.n_train / cfg.batch_size),
            rewrite_top_p=0.95,
            rewrite_generator="policy",  # the policy itself: no outside help
            rewrite_verifier="exact",  # integer answers: normalised exact match is exact
            rewrite_answer_column="answer",
            rewrite_template=REWRITE_TEMPLATE,
            rewrite_budget=cfg.rewrite_budget,
            rewrite_max_new_tokens=MAX_NEW_TOKENS,
            rewrite_num_candidates=2,
            # two epochs: flag once, rewrite after the first epoch, train on rewrites in the second
            rewrite_persistence=1,
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
    rows = finetune_rows(cfg.n_train, dict(MIXTURES[cfg.mixture]), noise_kind=cfg.noise_kind, ops=FINETUNE.ops,
                         starts=FINETUNE.starts, seed=cfg.seed)
    encoded = _encode(tok, rows)
    kinds = [r["kind"] for r in rows]
    probe = encoded[: cfg.probe_size]  # the set is shuffled: a fixed, representative probe batch
    clean = _encode(tok, clean_rows(cfg.probe_size))
    sets = eval_sets(cfg.n_val, cfg.n_test)
    # step 0 only with several checkpoints (the test runs' curves); otherwise just the end
    first = 0 if cfg.n_checkpoints > 1 else 1
    probe_steps = sorted({round(k * cfg.steps / cfg.n_checkpoints) for k in range(first, cfg.n_checkpoints + 1)})

    trainer = CADFTTrainer(model, args=_trainer_args(cfg, out_dir), train_dataset=Dataset.from_list(rows),
                           processing_class=tok)
    probes = []

    def run_probes(step: int) -> None:
        entry = {"step": step, "val_acc": accuracy(trainer.model, tok, sets["val"])}
        if cfg.instruments:
            normalizer = trainer.normalizer  # None for SFT and DFT runs
            log_m = normalizer.log_value if normalizer is not None and normalizer.ready else None
            w_min, w_max = trainer.args.cadft_w_min, cfg.w_max
            entry.update(probe_gradients(trainer.model, probe, clean, cfg, pad_id=tok.pad_token_id, log_m=log_m,
                                         w_min=w_min))
            entry["compat"] = compat_by_kind(trainer.model, tok, encoded, kinds, beta=cfg.beta, log_m=log_m,
                                             w_min=w_min, w_max=w_max)
        probes.append(entry)

    class Probes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in probe_steps:
                run_probes(state.global_step)

    trainer.add_callback(Probes())
    trainer.remove_callback(PrinterCallback)  # disable_tqdm would print every step's log
    if 0 in probe_steps:
        run_probes(0)
    trainer.train()

    model = trainer.model
    result = {
        "config": asdict(cfg),
        "variant": cfg.variant,
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
    train = FINETUNE.sample(cfg.n_prompts, seed=1000 + cfg.seed)
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
    return {
        "config": asdict(cfg),
        "model_path": model_path,
        "rewards": rewards,
        "final_test_id_acc": accuracy(trainer.model, tok, eval_sets(10, cfg.n_test)["test_id"]),
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

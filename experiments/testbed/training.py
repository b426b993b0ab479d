"""The testbed's moving parts: the base policy, one fine-tuning run, its probes, GRPO.

Everything here is a plain function of a config dataclass, so that the runner (run.py)
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

from experiments.methods import METHODS, cadft_config
from experiments.testbed.instruments import cosine, gradient_snr, split_half_cosine
from experiments.testbed.task import HINT_PREFIX, KINDS, chat_prompt, finetune_rows, pretrain_rows, problems, solution

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
    # more strongly foreign rows than high: half the set in the foreign format
    "extreme": (("mild", 0.1), ("medium", 0.1), ("strong", 0.5), ("wrong", 0.1)),
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
    steps: int = 2000  # about 2 minutes on one idle CPU thread (1000 steps left 1-op accuracy at 0.16)
    batch_size: int = 32
    # 3e-3 was fragile: identical code and seed gave 0.99 / 0.98 / 0.66 (accuracy on 1 / 2 / 3 ops)
    # in the environment of the first runs and 0.76 / 0.56 / 0.13 in a fresh one (2026-12-02). There
    # 1e-3 gave 0.97 / 0.98 / 0.58 (seed 0) and 0.92 / 0.88 / 0.40 (seed 1); `check_base` guards
    # the regime on every run
    lr: float = 1e-3
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({**asdict(self), "task_version": TASK_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunConfig:
    """One fine-tuning run of one arm (arms.py, from experiments/methods.py) on one seed's fine-tuning set."""

    arm: str = "cadft"  # the name the page reports (a key of arms.ARMS): its method in the table
    method: str = "cadft"  # sft | dft | cadft | asft | eaft
    seed: int = 0  # the fine-tuning set, the data order and the trainer
    lr: float = 1e-3
    # the sample weights (ignored by sft and dft): the paper's (zscore), the earlier one (ema) or none
    beta: float = 1.0
    token_power: float = 1.0
    normalization: str = "zscore"
    w_max: float | None = None  # ema only
    mixture: str = "default"  # a key of MIXTURES
    steps: int = 64
    batch_size: int = 16
    n_train: int = 512
    noise_kind: str = "mixed"
    n_checkpoints: int = 1  # probes at k * steps / n_checkpoints, and at step 0 when it is > 1
    probe_size: int = 48
    n_val: int = 150
    n_test: int = 300
    # rewriting: "" (none), "paper" (the library's default procedure) or "verified" (the project's checks),
    # its first round after `rewrite_start` steps and then every `rewrite_interval` (scaled to the testbed)
    rewrite: str = ""
    rewrite_start: int = 24
    rewrite_interval: int = 8
    rewrite_budget: float = 0.005
    instruments: bool = True  # gradient and compatibility probes (off in tuning runs: they need val acc only)
    variance: bool = False  # the variance-assumption measurement (`variance_probe`) at step 0 and mid-run
    variance_size: int = 256  # training rows it measures
    save_model: bool = False  # keep the fine-tuned weights (for GRPO)
    eval_test: bool = True  # False on validation seeds: they never see the test sets

    @property
    def loss_type(self) -> str:
        return "nll" if self.method == "sft" else self.method


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
    from cadft.model.tiny import tiny_tokenizer

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
    from cadft.evaluation.verifiers import extract_answer
    from cadft.model.generation import generate

    outputs = generate(
        model, tokenizer, [chat_prompt(p.question) for p in probs], max_new_tokens=MAX_NEW_TOKENS,
        batch_size=100, progress=False,
    )
    return sum(extract_answer(o[0]) == str(p.answer) for o, p in zip(outputs, probs)) / len(probs)


# --------------------------------------------------------------------------- base policy


def _encode(tokenizer, rows):
    from cadft.model.scoring import tokenize_demonstration

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

    from cadft.model.tiny import tiny_llama

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


# The regime the testbed needs of its base policy (docs/results.md, "The testbed"): short problems
# solved, the 3-operation skill of the fine-tuning set present but weak
BASE_REGIME = {"1": (0.85, 1.0), "2": (0.85, 1.0), "3": (0.2, 0.85)}


def regime() -> str:
    """BASE_REGIME in words: '1 ops in [0.85, 1.0], ...'."""
    return ", ".join(f"{k} ops in [{lo}, {hi}]" for k, (lo, hi) in BASE_REGIME.items())


def check_base(acc_by_ops: dict) -> None:
    """Raise unless the base policy's accuracy per number of operations is in BASE_REGIME: a
    base outside it measures a different question (nothing to learn, or no skill to sharpen)."""
    off = {k: acc_by_ops[k] for k, (lo, hi) in BASE_REGIME.items() if not lo <= acc_by_ops[k] <= hi}
    if off:
        raise RuntimeError(f"the base policy's accuracy {acc_by_ops} is outside the testbed's regime ({regime()}): "
                           f"off at {sorted(off)} ops; change BaseConfig (steps, lr) and retrain")


def base_accuracy(base_path: str, n_val: int, n_test: int) -> dict:
    """The base policy's accuracy on this run's fixed sets (not cached: the sets may change
    without retraining the base)."""
    model, tok = _load(base_path), _tokenizer()
    return {f"{name}_acc": accuracy(model, tok, probs) for name, probs in eval_sets(n_val, n_test).items()}


# --------------------------------------------------------------------------- probes


def _label_logprobs(model, input_ids, labels, attention_mask=None, *, loss_type: str = "nll", reference=None):
    """(B, T-1) label log-probs with their graph, the trainable-token mask, and what the token
    loss of `loss_type` reads beyond them, (B, T-1) each, as the trainer computes it: EAFT's
    exact predictive entropy (`topk_entropy` over the whole vocabulary), ASFT's
    KL(pi_ref || pi_theta) with its graph (`reference_kl` from both backbones' last hidden
    states; `reference` is the trainer's `ReferenceModel`, the model as training started)."""
    from cadft.losses import reference_kl, topk_entropy
    from cadft.training.token_inputs import capture_hidden_states

    with capture_hidden_states(model) as hidden:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()  # (B, T-1, V)
    target = labels[:, 1:]
    mask = target != -100
    logps = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    inputs = {}
    if loss_type == "eaft":
        vocab = logits.shape[-1]  # the top-K entropy with K = V is the exact one, the trainer's default
        inputs["entropy"] = topk_entropy(logits.reshape(-1, vocab), k=vocab).view(mask.shape)
    if loss_type == "asft":
        head = model.get_output_embeddings()
        ref_weight, ref_bias = reference.head(model)
        ref_hidden = reference.hidden_states(model, {"input_ids": input_ids, "attention_mask": attention_mask})
        kl = reference_kl(hidden["hidden"][:, :-1][mask], head.weight, ref_hidden[:, :-1][mask], ref_weight,
                          bias=head.bias, ref_bias=ref_bias)  # (N,) at the trainable positions
        inputs["kl"] = torch.zeros(mask.shape, dtype=kl.dtype).masked_scatter(mask, kl)
    return logps, mask, inputs


def _flat_grad(loss, params) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).double() for g, p in zip(grads, params)])


def _token_loss(cfg: RunConfig, logps, mask, inputs: dict) -> torch.Tensor:
    """The sum over the rows' tokens of the run's token loss, by the library's functions: ASFT's
    -sg(p) log p + 0.1 KL, EAFT's -min(1, H / ln 20) log p, else -sg(p)**alpha log p (alpha 0: SFT,
    1: DFT, the arm's token power for CADFT). `inputs`: `_label_logprobs`'s."""
    from cadft.losses import asft_token_loss, eaft_token_loss, power_token_loss

    if cfg.loss_type == "asft":
        loss, _ = asft_token_loss(logps, mask, inputs["kl"])
    elif cfg.loss_type == "eaft":
        loss, _ = eaft_token_loss(logps, mask, inputs["entropy"])
    else:
        loss, _ = power_token_loss(logps, mask, alpha={"nll": 0.0, "dft": 1.0}.get(cfg.loss_type, cfg.token_power))
    return loss.sum()


def _probe_weights(estimator, u: torch.Tensor) -> torch.Tensor:
    """The run's sample weights on the probe rows, from its estimator (`Estimator.weights`,
    the rows taken as one batch): 1 for SFT and DFT; the paper's from the probe batch's own
    z; the earlier estimator's clip(c**beta / m) with the trainer's m (or the probe rows' own
    before the trainer has one)."""
    return estimator.weights(u, torch.ones_like(u, dtype=torch.bool))[0].double()


def _per_sample(model, pairs, cfg: RunConfig, params, reference=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(G, u, tokens): per-sample gradients of the sum of each row's token loss (n, P), its
    length-normalised NLL and its trainable tokens (`reference`: ASFT's anchor)."""
    from cadft.losses import length_normalized_nll

    rows, us, tokens = [], [], []
    for ids, lab in pairs:
        logps, mask, inputs = _label_logprobs(model, ids, lab, loss_type=cfg.loss_type, reference=reference)
        us.append(length_normalized_nll(logps, mask)[0])
        tokens.append(mask.sum())
        rows.append(_flat_grad(_token_loss(cfg, logps, mask, inputs), params))
    return torch.stack(rows), torch.cat(us).double(), torch.stack(tokens)


def _reference(model, clean, pad_id: int, params, cfg: RunConfig | None = None) -> torch.Tensor:
    """The gradient of the clean held-out rows: of their plain NLL, or of `cfg`'s token loss."""
    ids, labels, attn = _pad(clean, pad_id)
    logps, mask, inputs = _label_logprobs(model, ids, labels, attn, loss_type=cfg.loss_type if cfg else "nll")
    loss = _token_loss(cfg, logps, mask, inputs) if cfg is not None else -(logps * mask).sum()
    return _flat_grad(loss / mask.sum(), params)


def probe_gradients(model, probe, clean, cfg: RunConfig, *, pad_id: int, estimator, reference=None) -> dict:
    """Per-sample gradients h_i of the run's estimator, weights included, on the rows
    `probe` (`reference`: the trainer's ASFT anchor): their unbiased signal-to-noise ratio, split-half cosine, the cosine of their
    mean with the plain NLL gradient of the clean held-out rows `clean`, and the
    normalised effective sample size (sum w)^2 / (B sum w^2) of the weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    pairs = [(torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])) for e in probe]
    G, u, tokens = _per_sample(model, pairs, cfg, params, reference)
    w = _probe_weights(estimator, u.float())
    h = w[:, None] * G / tokens.double()[:, None]
    reference = _reference(model, clean, pad_id, params)
    model.train(was_training)
    return {
        "grad_snr": gradient_snr(h),
        "split_cos": split_half_cosine(h),
        "align": cosine(h.mean(0), reference),
        "ess": (w.sum().square() / w.square().sum()).item() / len(w),
    }


def variance_probe(model, rows, kinds, clean, cfg: RunConfig, *, pad_id: int, step: int) -> dict:
    """The variance assumption at the current policy (experiments/variance.py): per-sample
    gradient norms of DFT's loss on `rows` against each row's mean z within batches of the
    training batch size, per kind; and the second moment, relative variance and cosine with
    the clean-data gradient (DFT's loss and the plain NLL on `clean`) of DFT and of the
    paper's estimator at beta 0.5, 1, 2 on random training-size batches."""
    from experiments.stats import mean_ci
    from experiments.variance import estimator_moments, gram, mean_batch_z, norm_vs_z

    dft = RunConfig(method="dft")
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    pairs = [(torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])) for e in rows]
    G, u, tokens = _per_sample(model, pairs, dft, params)
    refs = {"dft": _reference(model, clean, pad_id, params, dft), "nll": _reference(model, clean, pad_id, params)}
    model.train(was_training)
    norms = G.norm(dim=1)
    z = mean_batch_z(u, cfg.batch_size, seed=step)
    out = {"step": step, "n": len(rows), "params": G.shape[1], "norm_vs_z": norm_vs_z(norms, z, n_boot=1000),
           "by_kind": {k: {"norm": mean_ci(norms[[i for i, x in enumerate(kinds) if x == k]].tolist()),
                           "per_token_norm": mean_ci((norms / tokens.double())[[i for i, x in enumerate(kinds)
                                                                                 if x == k]].tolist()),
                           "z": mean_ci(z[[i for i, x in enumerate(kinds) if x == k]].tolist())}
                       for k in KINDS if k in kinds},
           "moments": {}}
    for ref_name, r in refs.items():
        K, v, rr = gram(G, r)
        for beta in (0.0, 0.5, 1.0, 2.0):
            out["moments"][f"{ref_name}|{beta:g}"] = estimator_moments(K, v, rr, u, tokens, beta=beta,
                                                                      batch_size=cfg.batch_size, n_batches=400,
                                                                      seed=step)
    return out


def compat_by_kind(model, tokenizer, encoded, kinds, cfg: RunConfig, *, estimator) -> dict:
    """Each training row's compatibility c = exp(-u) under the policy, summarised per kind,
    with the mean weight of the kind relative to the mean over all rows, by the run's
    estimator with all rows as one batch (the paper's: z over all rows at once; the earlier
    one: clip(c**beta / m)); for an arm without sample weights (SFT, DFT, bare ASFT and EAFT)
    by the library's default CADFT estimator."""
    from cadft.estimators import make_estimator
    from cadft.model.scoring import score_rows

    scores = score_rows(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=64, progress=False)
    s = torch.tensor([r["mean_logprob"] for r in scores], dtype=torch.float64)
    weighted = estimator if estimator.weighs_samples else make_estimator({"cadft_beta": cfg.beta})
    w = _probe_weights(weighted, (-s).float())
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


REWRITE_TEMPLATE = "{question}" + HINT_PREFIX + "{reference}"  # the verified arm's prompt


def _rewrite_args(cfg: RunConfig) -> dict:
    """The rewriting schedule scaled to the testbed (the paper's warm-up 3000 and interval 1000
    steps exceed a 64-step run), the policy as generator; the arm's preset comes from the table."""
    if not cfg.rewrite:
        return {}
    kwargs = dict(
        rewrite_start_step=cfg.rewrite_start,
        rewrite_interval_steps=cfg.rewrite_interval,
        rewrite_budget=cfg.rewrite_budget,
        rewrite_min_visits=1,  # two epochs: a sample is seen once before the second
        rewrite_generator="policy",
        rewrite_answer_column="answer",  # the right answer of every replacement is counted
        rewrite_max_new_tokens=MAX_NEW_TOKENS,
    )
    if cfg.rewrite == "verified":  # the reference in the prompt, in the restating style the base learned
        kwargs.update(rewrite_template=REWRITE_TEMPLATE)
    return kwargs


def _trainer_args(cfg: RunConfig, out_dir: str):
    """The arm's CADFTConfig: its loss, estimator and rewriting preset from the method table
    (experiments/methods.py), the testbed's training arguments."""
    return cadft_config(
        METHODS[cfg.arm],
        output_dir=out_dir,
        **_rewrite_args(cfg),
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


def rewrite_rounds(trainer, rows: list[dict]) -> list[dict]:
    """Per rewriting round: the library's counts (selected, replaced, kept by the draw) and,
    from the replaced rows' true answers, how many replacements are right, by original kind."""
    from cadft.evaluation.verifiers import extract_answer

    logged = [h for h in trainer.state.log_history if "rewrite/round" in h]
    rounds = []
    for h in logged:
        index = int(h["rewrite/round"])
        replaced = [(i, e) for i, e in trainer.rewriter.store.accepted.items() if e["round"] == index]
        right = [extract_answer(e["text"]) == str(rows[i]["answer"]) for i, e in replaced]
        rounds.append({
            "round": index, "step": h.get("step"),
            **{k.split("/", 1)[1]: v for k, v in h.items() if k.startswith("rewrite/")},
            "replaced_ids": [i for i, _ in replaced], "replaced_right": int(sum(right)),
            "replaced_by_kind": {k: sum(rows[i]["kind"] == k for i, _ in replaced) for k in KINDS},
            "right_by_kind": {k: sum(r and rows[i]["kind"] == k for (i, _), r in zip(replaced, right)) for k in KINDS},
        })
    return rounds


def finetune(cfg: RunConfig, base_path: str, out_dir: str) -> dict:
    """Fine-tune the base policy with the run's arm; returns a JSON-able result dict."""
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
    variance_steps = (0, cfg.steps // 2) if cfg.variance else ()

    trainer = CADFTTrainer(model, args=_trainer_args(cfg, out_dir), train_dataset=Dataset.from_list(rows),
                           processing_class=tok)
    probes, variance = [], []

    def run_probes(step: int) -> None:
        entry = {"step": step, "val_acc": accuracy(trainer.model, tok, sets["val"])}
        if cfg.instruments:
            estimator = trainer.estimator  # its weights of a set of rows, with its state at this step
            entry.update(probe_gradients(trainer.model, probe, clean, cfg, pad_id=tok.pad_token_id,
                                         estimator=estimator, reference=trainer.reference_model))
            entry["compat"] = compat_by_kind(trainer.model, tok, encoded, kinds, cfg, estimator=estimator)
        probes.append(entry)

    def run_variance(step: int) -> None:
        n = min(cfg.variance_size, len(encoded))
        variance.append(variance_probe(trainer.model, encoded[:n], kinds[:n], clean, cfg, pad_id=tok.pad_token_id,
                                       step=step))

    class Probes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in probe_steps:
                run_probes(state.global_step)
            if state.global_step in variance_steps:
                run_variance(state.global_step)

    trainer.add_callback(Probes())
    trainer.remove_callback(PrinterCallback)  # disable_tqdm would print every step's log
    if 0 in probe_steps:
        run_probes(0)
    if 0 in variance_steps:
        run_variance(0)
    trainer.train()

    model = trainer.model
    result = {
        "config": asdict(cfg),
        "val_acc": probes[-1]["val_acc"],
        "probes": probes,
        "log": [{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in trainer.state.log_history],
    }
    if variance:
        result["variance"] = variance
    if cfg.eval_test:
        for name in ("test_id", "test_ood", "retention"):
            result[f"{name}_acc"] = accuracy(model, tok, sets[name])
    if trainer.rewriter is not None:
        result["rewrite_rounds"] = rewrite_rounds(trainer, rows)
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

    from cadft.evaluation.verifiers import extract_answer

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

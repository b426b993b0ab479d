"""Part A: the CADFT estimator at the base model and at the middle of a short DFT run.

Per-sample LoRA gradients of a heterogeneous mixture (the `pool`) are computed once, for
each token weighting the methods need: h_i(alpha) = grad of sum_t -sg(p_it)**alpha l_it
(alpha = 0: SFT's token loss; 1: DFT's; 0.5: the earlier estimator's token power). A
method's gradient on a batch b is a linear combination of them,

    G_b = sum_{i in b} a_bi h_i(alpha),   a_bi = w_i / N_b    (N_b: trainable tokens of b)

with w_i the weights of the method's estimator on batch b, from the library's estimator
itself (`cadft.estimators.make_estimator(fields).weights(u_b, valid_b)`, as the trainer
weighs a global batch): 1 for SFT and DFT; for CADFT, the paper's estimator (the library
default), w_i = exp(-beta max(0, z_i)) with z_i the z-score of u_i (the length-normalised
NLL) within batch b; for the earlier estimator its clipped c**beta / m, m calibrated on the
pool as the trainer calibrates on its training set. The oracle filter keeps w_i on gold rows
and sets it to 0 elsewhere (N_b then counts the gold rows' tokens). So every statistic
follows from Gram matrices K = H H^T and the products with the reference gradient, without
ever forming G_b:

    tr Cov(G) = sum_b (a_b - abar) K (a_b - abar)^T / (n_b - 1)     (over bootstrap batches)
    cos(G_b, r) = a_b v / sqrt(a_b K a_b^T  r.r),  v = H r

with two references r computed on clean held-out gold demonstrations: `nll`, the plain-NLL
gradient (the direction a clean SFT fine-tune would take), and `own`, the gradient of the
method's own token loss (DFT's for the DFT family) without sample weights (the direction
the same method would take on clean data). Intervals: an outer bootstrap resamples the
pool (with replacement) and draws fresh batches from it (the same batches for every
method, so differences are paired); 95% intervals are the point estimate +- 1.96
bootstrap sd. The references are held fixed.

The variance assumption (issue #20; experiments/variance.py, shared with the testbed), at
the base and at the middle of training (an adapter trained for the first half of Part B's
DFT run on its mixture, `--mid_lr`): each pool sample's gradient norm ||h_i(1)|| of DFT's
summed token loss against its mean z within random batches of `--batch_size`
(`variance.mean_batch_z`, `variance.norm_vs_z`), per kind, and `variance.moments` of DFT
(beta 0) and the paper's estimator at beta 0.5, 1, 2 (second moment, relative variance
without the 1/B bias, cosine with the clean gold gradient of DFT's loss and of the NLL).

LoRA's B matrices start at zero, so at the base the gradient of every A matrix vanishes:
there the per-sample gradients live in the B matrices, and only those are kept; at the
middle of training both A and B matrices are.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from cadft.estimators import make_estimator
from cadft.losses import batch_kappa
from cadft.model.scoring import ensure_fused_lm_head, label_logprobs
from experiments import variance
from experiments.real import common
from experiments.real.common import config_fields, defaults, has_normalizer
from experiments.stats import mean_ci

BETAS = (0.0, 0.5, 1.0, 2.0)  # the variance probe: DFT (beta 0) and the paper's estimator at 0.5, 1, 2


def methods(d: dict) -> dict[str, dict]:
    """name -> spec: `alpha`, the token power of its per-sample gradients; `fields`, the
    CADFTConfig fields of its estimator (`make_estimator`); `gold_only`, the oracle filter.
    CADFT: the paper's estimator at the library defaults and at the other betas of 0.5/1/2;
    the earlier estimator at its defaults; the oracle filter is DFT on the gold rows only."""
    paper, earlier = d["paper"], d["earlier"]
    specs = {"SFT": {"alpha": 0.0, "fields": {"loss_type": "nll"}},
             "DFT": {"alpha": 1.0, "fields": {"loss_type": "dft"}}}
    specs["CADFT (defaults)"] = {"alpha": paper["alpha"], "fields": config_fields(paper)}
    for beta in (0.5, 1.0, 2.0):
        if beta != paper["beta"]:
            specs[f"CADFT beta={beta:g}"] = {"alpha": paper["alpha"],
                                              "fields": config_fields({**paper, "beta": beta})}
    specs["CADFT (earlier)"] = {"alpha": earlier["alpha"], "fields": config_fields(earlier)}
    specs["DFT + oracle filter"] = {**specs["DFT"], "gold_only": True}
    return specs


def lora_model(model, *, r: int, targets: list[str], top_layers: int, seed: int):
    from peft import LoraConfig, get_peft_model

    layers = model.config.num_hidden_layers
    kwargs = {"layers_to_transform": list(range(layers - top_layers, layers))} if top_layers > 0 else {}
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM",
                        **kwargs)
    return get_peft_model(model, config)


def _layer(name: str) -> int | None:
    """The decoder-layer index in a parameter name ('...layers.12.self_attn...'), else None."""
    parts = name.split(".")
    return next((int(parts[k + 1]) for k, part in enumerate(parts[:-1]) if part == "layers"
                 and parts[k + 1].isdigit()), None)


def per_sample_gradients(model, rows: list[dict], alphas: list[float], *, matrices=("lora_B",),
                         min_layer: int = 0, progress=None) -> dict:
    """For each tokenized row and each alpha: the flat gradient of sum_t -sg(p_t)**alpha l_t
    over the LoRA parameters whose name holds one of `matrices`, in decoder layers >= `min_layer`
    (float32, (n, D) per alpha; the backward pass stops at that layer), and per row: trainable
    tokens T, mean log-prob s, and the mass M(alpha) = sum_t p_t**alpha."""
    ensure_fused_lm_head(model)
    model.eval()  # no dropout: the gradient of the deterministic loss
    params = [p for n, p in model.named_parameters() if p.requires_grad and any(m in n for m in matrices)
              and (_layer(n) is None or _layer(n) >= min_layer)]
    dev = params[0].device
    grads = {a: torch.zeros(len(rows), sum(p.numel() for p in params)) for a in alphas}
    tokens, mean_logp, mass = [], [], {a: [] for a in alphas}
    for i, row in enumerate(rows):
        ids = torch.tensor([row["input_ids"]], device=dev)
        labels = torch.tensor([row["labels"]], device=dev)
        logps, mask = label_logprobs(model, ids, None, labels)
        lp = logps[mask].float()  # (T,)
        tokens.append(int(mask.sum()))
        mean_logp.append(float(lp.detach().mean()) if len(lp) else 0.0)
        for j, alpha in enumerate(alphas):
            weight = (alpha * lp.detach()).exp()  # sg(p)**alpha; alpha = 0 gives exactly 1
            mass[alpha].append(float(weight.sum()))
            if len(lp) == 0:  # truncated away: no gradient, and no tokens (left out of N)
                continue
            g = torch.autograd.grad(-(weight * lp).sum(), params, retain_graph=j < len(alphas) - 1)
            grads[alpha][i] = torch.cat([x.reshape(-1) for x in g]).float().cpu()
        if progress:
            progress(i + 1, len(rows))
    return {"grads": grads, "tokens": np.array(tokens, float), "mean_logp": np.array(mean_logp),
            "mass": {a: np.array(m) for a, m in mass.items()}}


def _cache_path(args, *key) -> Path:
    digest = hashlib.sha256(json.dumps([args.model_name_or_path, args.lora_r, args.lora_targets, args.seed,
                                        args.max_length, *key], sort_keys=True).encode()).hexdigest()[:16]
    return Path(args.grad_cache) / f"part-a-{digest}.pt"


def _progress(label, start):
    def report(i, n):
        if i == n or i % 8 == 0:
            print(f"[part a] {label}: {i}/{n} rows, {time.time() - start:.0f} s", flush=True)
    return report


def gradients(args, pool_rows, ref_rows, alphas, start):
    """Per-sample gradients (LoRA B matrices) at the base model of the pool and the reference
    rows, cached on disk (outside the repository: tens of MB) under a key of everything they
    depend on; (pool, ref, seconds it took to compute them, whether they came from the cache)."""
    path = _cache_path(args, args.lora_top_layers, alphas, pool_rows, ref_rows)
    if path.is_file():
        cached = torch.load(path, weights_only=False)
        print(f"[part a] per-sample gradients from {path}", flush=True)
        return cached["pool"], cached["ref"], cached["seconds"], True
    model, tok = common.load(args.model_name_or_path)
    model = lora_model(model, r=args.lora_r, targets=args.lora_targets.split(","), top_layers=args.lora_top_layers,
                       seed=args.seed)
    pool = per_sample_gradients(model, common.tokenize(tok, pool_rows, args.max_length), alphas,
                                progress=_progress("pool", start))
    ref = per_sample_gradients(model, common.tokenize(tok, ref_rows, args.max_length), alphas,
                               progress=_progress("reference", start))
    seconds = time.time() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"pool": pool, "ref": ref, "seconds": seconds}, path)
    return pool, ref, seconds, False


def mid_gradients(args, splits, start):
    """Per-sample gradients (LoRA A and B matrices; the top `--lora_top_layers` layers only
    when given) at the middle of training: an adapter trained on Part B's mixture with Part
    B's DFT run (its LoRA on every layer, `--steps` schedule, lr `--mid_lr`, seed `--seed`)
    and stopped after half its steps. DFT's token loss on the pool
    (alpha 1), DFT's and the NLL's on the reference rows. Cached like `gradients`;
    (pool, ref, seconds, cached, the adapter's gradient-norm trace)."""
    import tempfile

    from experiments.real import part_b

    rows, half = splits["train_mixed"], max(1, args.steps // 2)
    path = _cache_path(args, "mid", args.lora_top_layers, args.steps, args.train_batch, args.mid_lr, half, rows, splits["pool"],
                       splits["reference"])
    if path.is_file():
        cached = torch.load(path, weights_only=False)
        print(f"[part a] mid-training per-sample gradients from {path}", flush=True)
        return cached["pool"], cached["ref"], cached["seconds"], True, cached["norms"]
    with tempfile.TemporaryDirectory(prefix="cadft-real-a-") as work:
        model, tok, norms, _ = part_b.train(args, "DFT", rows, args.mid_lr, args.seed, Path(work), stop_after=half)
    print(f"[part a] mid-training adapter: {half} of {args.steps} DFT steps, {time.time() - start:.0f} s", flush=True)
    # The adapter trains every layer; with --lora_top_layers K its per-sample gradients are taken
    # over the top K layers' A and B matrices only, as at the base
    kept = dict(matrices=("lora_A", "lora_B"), min_layer=_min_layer(model, args.lora_top_layers))
    pool = per_sample_gradients(model, common.tokenize(tok, splits["pool"], args.max_length), [1.0], **kept,
                                progress=_progress("mid pool", start))
    ref = per_sample_gradients(model, common.tokenize(tok, splits["reference"], args.max_length), [0.0, 1.0], **kept,
                               progress=_progress("mid reference", start))
    seconds = time.time() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"pool": pool, "ref": ref, "seconds": seconds, "norms": norms}, path)
    return pool, ref, seconds, False, norms


def _min_layer(model, top_layers: int) -> int:
    layers = model.get_base_model().config.num_hidden_layers  # a peft model
    return max(0, layers - top_layers) if top_layers > 0 else 0


def estimator(spec: dict, u: np.ndarray, tokens: np.ndarray):
    """The library's estimator of a spec (`make_estimator` of its fields) as the trainer holds
    it on the pool (u, tokens: (n,)): a running normaliser m is calibrated on the pool's rows
    with a trainable token, as `cadft train` calibrates it on a whole training set."""
    est = make_estimator(spec["fields"])
    if has_normalizer(est):
        est.calibrate_from_scores([{"mean_logprob": -x, "num_tokens": t}
                                   for x, t in zip(u.tolist(), tokens.tolist())])
    return est


def batch_weights(est, u: np.ndarray, valid: np.ndarray, batches: np.ndarray) -> np.ndarray:
    """(n_batches, B): each drawn row's weight within its batch, `est.weights` of the batch's
    rows as the trainer weighs a global batch (rows without a trainable token, `valid` False,
    are left out of the paper's z). `batches` (n_batches, B) of row indices."""
    u_t, valid_t = torch.as_tensor(u), torch.as_tensor(valid)
    out = np.empty(batches.shape)
    for b, idx in enumerate(torch.as_tensor(batches)):
        out[b] = est.weights(u_t[idx], valid_t[idx])[0].double().numpy()
    return out


def batch_coefficients(spec: dict, batches: np.ndarray, weights: np.ndarray, tokens: np.ndarray, mass: np.ndarray,
                       gold: np.ndarray, n: int, *, rescales_gradients: bool = False) -> np.ndarray:
    """A (n_batches, n): a_bi = the coefficient of h_i in batch b's gradient (rows drawn
    twice count twice). `batches` is (n_batches, B) of row indices, `weights` (n_batches, B)
    their weights within their batch (`batch_weights`); `rescales_gradients`: the estimator's
    (`batch`: each batch's gradient times kappa)."""
    keep = gold[batches] if spec.get("gold_only") else np.ones(batches.shape, bool)
    wb = np.where(keep, weights, 0.0)  # (n_batches, B)
    if rescales_gradients:
        m = np.where(keep, mass[batches], 0.0)
        kappa = batch_kappa(torch.tensor(m.sum(1)), torch.tensor((wb * m).sum(1))).numpy()  # (n_batches,)
        wb = wb * kappa[:, None]
    n_tokens = np.where(keep, tokens[batches], 0.0).sum(1, keepdims=True)  # N_b; 0 for an all-filtered batch
    values = wb / np.maximum(n_tokens, 1.0)
    coef = np.zeros((len(batches), n))
    np.add.at(coef, (np.arange(len(batches))[:, None].repeat(batches.shape[1], 1), batches), values)
    return coef


def statistics(coef: np.ndarray, K: np.ndarray, refs: dict[str, tuple[np.ndarray, float]]) -> dict:
    """tr Cov of the batch gradients and their squared mean norm; for each reference r
    (given as v = H r and r.r): the mean cosine of a batch gradient to r (`cos_<name>`) and
    the cosine of the mean gradient to r (`cos_mean_<name>`)."""
    mean = coef.mean(0)
    centred = coef - mean
    trace = float(np.einsum("bi,ij,bj->", centred, K, centred) / (len(coef) - 1))
    norms2 = np.einsum("bi,ij,bj->b", coef, K, coef)
    mean_norm2 = float(mean @ K @ mean)
    # Effective rows per batch, (sum a)^2 / sum a^2: B for equal weights, fewer when weights differ
    ess = coef.sum(1) ** 2 / np.maximum((coef**2).sum(1), 1e-300)
    out = {"trace_cov": trace, "mean_norm2": mean_norm2, "rel_var": trace / max(mean_norm2, 1e-300),
           "ess": float(ess.mean())}
    for name, (v, rr) in refs.items():
        cos = (coef @ v) / np.sqrt(np.maximum(norms2 * rr, 1e-300))
        out[f"cos_{name}"] = float(cos.mean())
        out[f"cos_mean_{name}"] = float(mean @ v / math.sqrt(max(mean_norm2 * rr, 1e-300)))
    return out


def estimate(specs, estimators, pool, ref, rng, *, batch_size: int, batches: int, resample: bool) -> dict:
    """Every method's statistics on the pool (or a resample of it, with replacement), from
    bootstrap batches drawn from it; the same batches for every method, each weighed by the
    method's estimator (`estimators`: name -> `estimator(spec, ...)`). The references are
    fixed: `nll`, the plain-NLL gradient of the clean rows, and `own`, the gradient of the
    method's own token loss (its alpha) on them, without sample weights."""
    n = len(pool["tokens"])
    pool_idx = rng.integers(0, n, n) if resample else np.arange(n)
    # Bootstrap batches: distinct positions of the (re)sampled pool, as a real batch holds distinct rows
    drawn = pool_idx[np.argsort(rng.random((batches, n)), axis=1)[:, :batch_size]]
    valid = pool["tokens"] > 0
    ref_tokens = ref["tokens"].sum()

    def reference(alpha_pool, alpha_ref):
        v = pool["V"][alpha_pool][alpha_ref].sum(1) / ref_tokens
        return v, float(ref["K"][alpha_ref].sum()) / ref_tokens**2

    out = {}
    for name, spec in specs.items():
        alpha = spec["alpha"]
        est = estimators[name]
        coef = batch_coefficients(spec, drawn, batch_weights(est, pool["u"], valid, drawn), pool["tokens"],
                                  pool["mass"][alpha], pool["gold"], n, rescales_gradients=est.rescales_gradients)
        refs = {"nll": reference(alpha, 0.0), "own": reference(alpha, alpha)}
        out[name] = statistics(coef, pool["K"][alpha], refs)
    return out


def _interval(point: float, replicates: np.ndarray) -> dict:
    """point +- 1.96 bootstrap sd. Centred on the point estimate on purpose: a pool resampled
    with replacement holds duplicate rows, which shifts every replicate (fewer distinct rows
    per batch) without changing their spread, so percentile intervals would miss the point."""
    half = 1.96 * float(np.std(replicates, ddof=1))
    return {"value": point, "lo": point - half, "hi": point + half}


def summarise(point: dict, replicates: list[dict], baselines=("DFT", "SFT")) -> dict:
    """Point estimates with 95% bootstrap intervals, and paired differences to each baseline
    (`vs_DFT`, `vs_SFT`) over the same replicates."""
    table = {}
    for name in point:
        table[name] = {}
        for key, value in point[name].items():
            entry = _interval(value, np.array([r[name][key] for r in replicates]))
            for base in baselines:
                diffs = np.array([r[name][key] - r[base][key] for r in replicates])
                entry["vs_" + base] = _interval(value - point[base][key], diffs)
            table[name][key] = entry
    return table


def _estimator_replicate(K, refs, u, tokens, *, batch_size: int, n_batches: int, seed: int) -> dict:
    """`variance.moments` of DFT and the paper's estimator at each of BETAS on the same random
    batches, for each reference: {ref: {beta: moments}}."""
    batches = variance.random_batches(u.numel(), batch_size, n_batches, seed=seed)
    coef = {beta: variance.batch_coefficients(u, tokens, batches, beta=beta) for beta in BETAS}
    return {name: {f"{beta:g}": variance.moments(K, v, rr, coef[beta]) for beta in BETAS}
            for name, (v, rr) in refs.items()}


def variance_probe(G: torch.Tensor, refs: dict[str, torch.Tensor], u: np.ndarray, tokens: np.ndarray,
                   kinds: list[str], *, batch_size: int, n_batches: int, outer: int, seed: int) -> dict:
    """The variance assumption at one policy. G (n, P): per-sample gradients of DFT's summed
    token loss; refs: name -> the clean reference direction r (P,). Gradient norms against
    each sample's mean z within batches of `batch_size` (`variance.norm_vs_z`), per kind, and
    the moments of DFT and the paper's estimator (`variance.moments`) with 95% intervals from
    an outer bootstrap over the pool (point +- 1.96 sd, as for the table above; differences
    to DFT paired on the same batches)."""
    u_t, tok_t = torch.as_tensor(u, dtype=torch.float64), torch.as_tensor(tokens, dtype=torch.float64)
    grams = {name: variance.gram(G, r) for name, r in refs.items()}
    K = next(iter(grams.values()))[0]
    norms = K.diagonal().sqrt()  # ||G_i||
    per_token = norms / tok_t.clamp(min=1)
    z = variance.mean_batch_z(u_t, batch_size, seed=seed)
    by_kind = {}
    for kind in sorted(set(kinds)):
        sel = [i for i, k in enumerate(kinds) if k == kind]
        by_kind[kind] = {"n": len(sel), "norm": mean_ci(norms[sel].tolist()),
                         "per_token_norm": mean_ci(per_token[sel].tolist()), "z": mean_ci(z[sel].tolist()),
                         "u": mean_ci(u_t[sel].tolist()), "tokens": mean_ci(tok_t[sel].tolist())}
    refs_vr = {name: (v, rr) for name, (_, v, rr) in grams.items()}
    point = _estimator_replicate(K, refs_vr, u_t, tok_t, batch_size=batch_size, n_batches=n_batches, seed=seed)
    g = torch.Generator().manual_seed(seed)
    replicates = []
    for k in range(outer):
        idx = torch.randint(u_t.numel(), (u_t.numel(),), generator=g)
        replicates.append(_estimator_replicate(K[idx][:, idx], {n: (v[idx], rr) for n, (v, rr) in refs_vr.items()},
                                               u_t[idx], tok_t[idx], batch_size=batch_size, n_batches=n_batches,
                                               seed=seed + 1 + k))
    moments = {}
    for name in point:
        moments[name] = {}
        for beta, entry in point[name].items():
            moments[name][beta] = {}
            for key, value in entry.items():
                reps = np.array([r[name][beta][key] for r in replicates])
                dft = np.array([r[name]["0"][key] for r in replicates])
                ok = np.isfinite(reps) & np.isfinite(dft)
                moments[name][beta][key] = {**_interval(value, reps[ok]),
                                            "vs_DFT": _interval(value - point[name]["0"][key], (reps - dft)[ok])}
            ratio = np.array([r[name][beta]["second_moment"] / r[name]["0"]["second_moment"] for r in replicates])
            moments[name][beta]["second_moment_ratio"] = _interval(
                entry["second_moment"] / point[name]["0"]["second_moment"], ratio)
    return {"n": len(kinds), "params": int(G.shape[1]), "batch_size": batch_size, "n_batches": n_batches,
            "outer": outer, "norm_vs_z": variance.norm_vs_z(norms, z, seed=seed),
            "per_token_norm_vs_z": variance.norm_vs_z(per_token, z, seed=seed), "by_kind": by_kind,
            "moments": moments, "norms": norms.tolist(), "z": z.tolist(), "kinds": kinds}


def _reference_direction(ref: dict, alpha: float) -> torch.Tensor:
    """The clean reference gradient with alpha's token loss: sum_j h_j(alpha) / sum_j T_j (the
    batch gradient of all the reference rows together)."""
    return ref["grads"][alpha].double().sum(0) / float(ref["tokens"].sum())


def run(args, splits) -> dict:
    start = time.time()
    d = defaults()
    specs = methods(d)
    alphas = sorted({spec["alpha"] for spec in specs.values()})
    pool_rows, ref_rows = splits["pool"], splits["reference"]
    kinds = [r["kind"] for r in pool_rows]
    pool, ref, grad_s, cached = gradients(args, pool_rows, ref_rows, alphas, start)
    H = {a: pool["grads"][a].double() for a in alphas}
    H_ref = {a: ref["grads"][a].double() for a in alphas}
    stats_pool = {
        "tokens": pool["tokens"], "mass": pool["mass"], "gold": np.array([r["kind"] == "gold" for r in pool_rows]),
        "u": -pool["mean_logp"],
        "K": {a: (H[a] @ H[a].T).numpy() for a in alphas},
        "V": {a: {b: (H[a] @ H_ref[b].T).numpy() for b in alphas} for a in alphas},
    }
    estimators = {name: estimator(spec, stats_pool["u"], pool["tokens"]) for name, spec in specs.items()}
    ref_stats = {"tokens": ref["tokens"], "K": {a: (H_ref[a] @ H_ref[a].T).numpy() for a in alphas}}
    rng = np.random.default_rng(args.seed)
    point = estimate(specs, estimators, stats_pool, ref_stats, rng, batch_size=args.batch_size, batches=args.batches,
                     resample=False)
    replicates = [estimate(specs, estimators, stats_pool, ref_stats, rng, batch_size=args.batch_size,
                           batches=args.batches, resample=True) for _ in range(args.outer)]
    print(f"[part a] estimator table: {time.time() - start:.0f} s", flush=True)
    # Mean weight per kind of each estimator that weighs samples: a calibrated m's per-row weight
    # (the earlier estimator); the others', averaged over the rows' occurrences in random batches
    batches = variance.random_batches(len(kinds), args.batch_size, args.batches, seed=args.seed).numpy()
    kind_of, valid = np.array(kinds), pool["tokens"] > 0
    weights_by_kind = {}
    for name, est in estimators.items():
        if not est.weighs_samples:
            continue
        if has_normalizer(est):
            w = est.weights(torch.as_tensor(stats_pool["u"]), torch.as_tensor(valid))[0].double().numpy()
            where = kind_of
        else:
            w, where = batch_weights(est, stats_pool["u"], valid, batches), kind_of[batches]
        weights_by_kind[name] = {k: float(w[where == k].mean()) for k in sorted(set(kinds))}
    compat_by_kind = {k: float(np.mean([math.exp(s) for s, kk in zip(pool["mean_logp"], kinds) if kk == k]))
                      for k in sorted(set(kinds))}
    # Per-token gradient norm of each row, ||h_i|| / T_i, by kind: how much each kind pushes
    # under SFT's and DFT's token losses before any sample weight
    norms = {a: np.sqrt(np.diag(stats_pool["K"][a])) / np.maximum(pool["tokens"], 1) for a in alphas}
    grad_norm_by_kind = {f"alpha={a:g}": {k: float(np.mean([x for x, kk in zip(norms[a], kinds) if kk == k]))
                                          for k in sorted(set(kinds))} for a in alphas}

    probe = dict(batch_size=args.batch_size, n_batches=args.batches, outer=args.outer, seed=args.seed)
    refs = {"dft": _reference_direction(ref, 1.0), "nll": _reference_direction(ref, 0.0)}
    variance_result = {"base": variance_probe(H[1.0], refs, stats_pool["u"], pool["tokens"], kinds, **probe)}
    variance_result["base"].update(matrices="lora_B", step=0)
    print(f"[part a] variance probe at the base: {time.time() - start:.0f} s", flush=True)
    mid_pool, mid_ref, mid_s, mid_cached, mid_norms = mid_gradients(args, splits, time.time())
    mid_refs = {"dft": _reference_direction(mid_ref, 1.0), "nll": _reference_direction(mid_ref, 0.0)}
    variance_result["mid"] = variance_probe(mid_pool["grads"][1.0].double(), mid_refs, -mid_pool["mean_logp"],
                                            mid_pool["tokens"], kinds, **probe)
    variance_result["mid"].update(matrices="lora_A,lora_B", top_layers=args.lora_top_layers,
                                  step=max(1, args.steps // 2), of_steps=args.steps,
                                  lr=args.mid_lr, train_rows=len(splits["train_mixed"]),
                                  batch=args.train_batch, gradient_wall_s=mid_s, gradients_cached=mid_cached,
                                  train_grad_norms=mid_norms)
    print(f"[part a] variance probe at the middle of training: {time.time() - start:.0f} s", flush=True)
    return {
        "defaults": d,
        "methods": {name: {k: v for k, v in spec.items()} for name, spec in specs.items()},
        "table": summarise(point, replicates),
        "variance": variance_result,
        "weights_by_kind": weights_by_kind,
        "compat_by_kind": compat_by_kind,
        "grad_norm_by_kind": grad_norm_by_kind,
        "pool_kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
        "num_params": int(pool["grads"][alphas[0]].shape[1]),
        "gradient_wall_s": grad_s,
        "gradients_cached": cached,
        "sizes": {"pool": len(pool_rows), "reference": len(ref_rows), "batch_size": args.batch_size,
                  "batches": args.batches, "outer": args.outer},
        "lora": {"r": args.lora_r, "targets": args.lora_targets, "top_layers": args.lora_top_layers},
    }

"""Part B: short LoRA training on a heterogeneous and a clean GSM8K mixture.

Methods on the mixture: SFT, DFT, CADFT (the library's defaults: the paper's estimator),
CADFT (earlier) (the project's earlier estimator at its defaults, `EARLIER_ESTIMATOR`),
CADFT + paper rewriting (the library's default rewriting, the paper's procedure: top-u
selection, each selected target replaced with probability 0.5 by the policy's own sample
for the prompt alone, no verifier; warm-up, interval and budget scaled to the short run,
`--rewrite_start`, `--rewrite_interval`, `--rewrite_budget`) and the oracle filter (DFT on
the mixture's gold rows only); SFT, DFT and CADFT on the clean set (the same problems, all
gold; `--clean_methods`).

Every method gets the same learning-rate search: one run per learning rate of the grid
(seed 0), the one with the lowest NLL on gold validation rows wins, and seeds 1.. run at it
(seed 0's search run is the first seed). Each final run reports:

- test NLL: mean token NLL of clean held-out GSM8K test solutions, and of their final-answer
  span (the tokens after the last `#`);
- accuracy: greedy accuracy on held-out 1-step test problems (math-verify), measured after
  training only if the base model is off the floor there (above 0): at the floor the subset
  cannot show a change and its generations would take a third of the budget;
- forgetting: the change in mean token NLL of the base model's own greedy answers to general
  instruction prompts (generated once at the base, cached);
- compatibility per data kind after training (before: the base row);
- the gradient-norm trace: its maximum and spikes (steps above twice the running median);
- with rewriting, per round: the targets selected, the ones replaced, and how many
  replacements state the right final answer (math-verify against the true GSM8K answer;
  the paper's procedure checks nothing, this only measures), with the kinds they replaced.

Seeds pair runs (same data order and LoRA initialisation), so differences against DFT
and SFT are paired.

The runs train one after another in this process, or with `--jobs N` on N worker processes
of one torch thread each (`_train_pool`): a method's search runs first, then its seeds at the
chosen rate, the methods listed first before the later ones. A run's result is the same
either way (its seed fixes the data order and the LoRA initialisation; up to float rounding
when the threads differ). The pool measures every search run in full (a worker hands back
measurements, not the model), one measurement more per learning rate not chosen.

Finished (data, method) runs are saved as they end (`b.partial.json`) and reused by a later
invocation with the same arguments, `--jobs` aside (from it or from a finished `b.json`): a
crash costs the methods in progress only, and a method added later (to `--clean_methods`, say) trains
alone. The wall time reported is the sum over the invocations.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

import torch
from transformers import TrainerCallback

from cadft.estimators import make_estimator
from cadft.model.scoring import ensure_fused_lm_head, label_logprobs
from experiments import runner
from experiments.methods import by_label, cadft_config, methods
from experiments.real import common, data
from experiments.real.common import defaults
from experiments.real.prompts import GENERAL_PROMPTS
from experiments.stats import mean_ci, paired_ci, spikes

METRICS = ("test_nll", "answer_nll", "accuracy", "forgetting", "grad_norm_max", "grad_spikes")
# The study's methods of the method table (experiments/methods.py), by label, in the order they
# train: a budget cut stops the last ones first
MIXED_METHODS = tuple(m.label for m in methods("real").values())


# --------------------------------------------------------------------------- measuring


def answer_span(tok, row: dict) -> list[int]:
    """Indices, among a tokenized row's trainable tokens, of the final answer: the tokens
    after the last one holding '#', special tokens excluded."""
    trainable = [t for t in row["labels"] if t != -100]
    special = set(tok.all_special_ids)
    hashes = [k for k, t in enumerate(trainable) if "#" in tok.decode([t])]
    if not hashes:
        return []
    return [k for k in range(hashes[-1] + 1, len(trainable)) if trainable[k] not in special]


@torch.inference_mode()
def token_logprobs(model, rows: list[dict]) -> list[torch.Tensor]:
    """Log-probabilities of each tokenized row's trainable tokens, one row at a time."""
    ensure_fused_lm_head(model)
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for row in rows:
        logps, mask = label_logprobs(model, torch.tensor([row["input_ids"]], device=dev), None,
                                      torch.tensor([row["labels"]], device=dev))
        out.append(logps[mask].float().cpu())
    model.train(was_training)
    return out


def mean_nll(logps: list[torch.Tensor], spans: list[list[int]] | None = None) -> float:
    """Token NLL pooled over rows (optionally over each row's span only)."""
    total, count = 0.0, 0
    for k, lp in enumerate(logps):
        chosen = lp if spans is None else lp[spans[k]] if spans[k] else lp[:0]
        total -= float(chosen.sum())
        count += len(chosen)
    return total / max(count, 1)


def compat_by_kind(logps: list[torch.Tensor], kinds: list[str]) -> dict[str, float]:
    """Mean compatibility exp(mean log-prob) per kind."""
    out: dict[str, list[float]] = {}
    for lp, kind in zip(logps, kinds):
        if len(lp):
            out.setdefault(kind, []).append(math.exp(float(lp.mean())))
    return {k: sum(v) / len(v) for k, v in out.items()}


def accuracy(model, tok, rows: list[dict], max_new_tokens: int) -> float:
    from cadft.evaluation.evaluate import evaluate_math

    if not rows:
        return math.nan
    _, summary = evaluate_math(model, tok, rows, max_new_tokens=max_new_tokens, progress=False)
    return summary["accuracy"]


class EvalSets:
    """The tokenized evaluation sets of a run, built once."""

    def __init__(self, args, splits, tok, general_answers: list[str]):
        L = args.max_length
        self.test = common.tokenize(tok, splits["test"][: args.test_nll], L)
        self.spans = [answer_span(tok, r) for r in self.test]
        self.validation = common.tokenize(tok, splits["validation"], L)
        after = splits["kinds"]
        per_kind = max(1, min(5, args.per_kind))  # the first problems of every kind
        keep = [r for r in after if r["source_line"] in {x["source_line"] for x in after[:per_kind]}]
        self.kinds = common.tokenize(tok, keep, L)
        self.kind_names = [r["kind"] for r in keep]
        general = [{"prompt": [{"role": "user", "content": p}], "completion": [{"role": "assistant", "content": a}]}
                   for p, a in zip(GENERAL_PROMPTS, general_answers)]
        self.general = common.tokenize(tok, general, L)
        one_step = [r for r in splits["test_rows"] if len(data.steps(r["answer"])) == 1]
        self.accuracy_rows = [{"question": r["question"], "answer": r["answer"]} for r in one_step[: args.accuracy]]


def measure(model, tok, sets: EvalSets, args, *, base_general_nll: float | None, with_accuracy: bool = True) -> dict:
    test = token_logprobs(model, sets.test)
    general_nll = mean_nll(token_logprobs(model, sets.general))
    return {
        "test_nll": mean_nll(test),
        "answer_nll": mean_nll(test, sets.spans),
        "accuracy": accuracy(model, tok, sets.accuracy_rows, args.max_new_tokens) if with_accuracy else math.nan,
        "general_nll": general_nll,
        "forgetting": general_nll - base_general_nll if base_general_nll is not None else 0.0,
        "compat_by_kind": compat_by_kind(token_logprobs(model, sets.kinds), sets.kind_names),
    }


def base_general_answers(args, model, tok) -> list[str]:
    """The base model's greedy answers to the general prompts, generated once and cached."""
    from cadft.model.generation import generate

    key = hashlib.sha256(f"{args.model_name_or_path}|{args.general}|{args.max_new_tokens}".encode()).hexdigest()[:12]
    path = Path(args.cache_dir) / f"general-{key}.json"
    cached = runner.load_json(path)
    if cached is not None:
        return cached["answers"]
    prompts = [[{"role": "user", "content": p}] for p in GENERAL_PROMPTS[: args.general]]
    answers = [g[0] for g in generate(model, tok, prompts, max_new_tokens=args.max_new_tokens, progress=False)]
    runner.save_json({"model": args.model_name_or_path, "prompts": GENERAL_PROMPTS[: args.general],
                      "answers": answers}, path)
    return answers


# --------------------------------------------------------------------------- training


def rewrite_schedule(args) -> dict:
    """The paper's rewriting scaled to the short run: the first round after half the steps,
    then every quarter (rounds after steps 4 and 6 of 8; never after the last step), each
    selecting `rewrite_budget` targets seen at least once (min visits 1: a 2-epoch run
    sees each row twice at most)."""
    start = args.rewrite_start if args.rewrite_start is not None else max(1, args.steps // 2)
    interval = args.rewrite_interval if args.rewrite_interval is not None else max(1, args.steps // 4)
    return {"rewrite_start_step": start, "rewrite_interval_steps": interval, "rewrite_min_visits": 1,
            "rewrite_budget": args.rewrite_budget}


def trainer_config(args, method: str, lr: float, seed: int, out_dir: str, num_rows: int):
    """The CADFTConfig of the method labelled `method`: its fields from the method table,
    Part B's training arguments."""
    spec = by_label(method)
    accumulation = max(1, args.train_batch // 4)
    kwargs = dict(
        output_dir=out_dir, learning_rate=lr, lr_scheduler_type="cosine",
        warmup_steps=args.steps // 16, weight_decay=0.0, max_steps=args.steps,
        per_device_train_batch_size=args.train_batch // accumulation, gradient_accumulation_steps=accumulation,
        logging_steps=1, save_strategy="no", report_to="none", gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(), max_length=args.max_length, seed=seed, data_seed=seed,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    if common.has_normalizer(make_estimator(spec.fields)):  # its m, calibrated on at most the training set
        kwargs.update(cadft_calibration_samples=min(64, num_rows))
    if spec.rewrites:
        # The rewriting scaled to the short run; the true answers only measure how many
        # replacements are right (the paper's procedure checks nothing)
        kwargs.update(rewrite_answer_column="answer", rewrite_max_new_tokens=args.max_new_tokens,
                      **rewrite_schedule(args))
    return cadft_config(spec, **kwargs)


def rewrite_rounds(out_dir: Path, kinds: list[str]) -> list[dict]:
    """Per rewriting round, from the run's provenance file (rewrites.jsonl): targets
    selected, lost to the replacement draw, replaced, and of the replacements how many
    state the right final answer (`answer_correct`), with the kinds of the rows replaced."""
    path = out_dir / "rewrites.jsonl"
    if not path.is_file():
        return []
    import json

    rounds: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        e = rounds.setdefault(r["round"], {"round": r["round"], "step": r["step"], "selected": 0, "lost_draw": 0,
                                           "replaced": 0, "right": 0, "wrong": 0, "unchecked": 0,
                                           "selected_kinds": {}, "replaced_kinds": {}, "wrong_kinds": {}})
        kind = kinds[r["sample_id"]]
        e["selected"] += 1
        e["selected_kinds"][kind] = e["selected_kinds"].get(kind, 0) + 1
        e["lost_draw"] += r["rejection"] == "lost_draw"
        if r["accepted"]:
            e["replaced"] += 1
            e["replaced_kinds"][kind] = e["replaced_kinds"].get(kind, 0) + 1
            verdict = {True: "right", False: "wrong", None: "unchecked"}[r["answer_correct"]]
            e[verdict] += 1
            if verdict == "wrong":
                e["wrong_kinds"][kind] = e["wrong_kinds"].get(kind, 0) + 1
    return [rounds[k] for k in sorted(rounds)]


class StopAfter(TrainerCallback):
    """Ends training after `step` optimizer steps; the learning-rate schedule stays the full run's."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def train(args, method: str, rows: list[dict], lr: float, seed: int, work: Path, *, stop_after: int | None = None):
    """A LoRA fine-tune of the base model; returns (model, gradient-norm trace, extras).
    `stop_after`: end after that many steps of the `args.steps`-step schedule (Part A's
    mid-training adapter)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback

    from cadft import CADFTTrainer

    if by_label(method).gold_only:
        rows = [r for r in rows if r["kind"] == "gold"]
    model, tok = common.load(args.model_name_or_path, seed=seed)
    out_dir = work / f"{method.replace(' ', '_').replace('+', '')}-lr{lr:g}-s{seed}"
    config = trainer_config(args, method, lr, seed, str(out_dir), len(rows))
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
                      target_modules=args.lora_targets.split(","), task_type="CAUSAL_LM")
    columns = ("prompt", "completion", "answer", "kind")
    dataset = Dataset.from_list([{k: r[k] for k in columns} for r in rows])
    trainer = CADFTTrainer(model, args=config, train_dataset=dataset, processing_class=tok, peft_config=lora)
    trainer.remove_callback(PrinterCallback)
    if stop_after is not None:
        trainer.add_callback(StopAfter(stop_after))
    trainer.train()
    norms = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    extras = {}
    if trainer.rewriter is not None:
        accepted = trainer.rewriter.store.accepted
        kinds = [r["kind"] for r in rows]
        extras["rewrites_accepted"] = {k: sum(kinds[i] == k for i in accepted) for k in sorted(set(kinds))}
        extras["rewrite_rounds"] = trainer.rewriter.store.rounds_done
        extras["rewrite_per_round"] = rewrite_rounds(out_dir, kinds)
    return trainer.model, tok, norms, extras


# The arguments a finished run depends on: a run saved under the same values is reused
RUN_KEYS = ("model_name_or_path", "gsm8k", "seed", "max_length", "per_kind", "lora_r", "lora_targets", "seeds",
            "train", "steps", "train_batch", "lrs", "validation", "test_nll", "accuracy", "general", "max_new_tokens",
            "rewrite_start", "rewrite_interval", "rewrite_budget")


def run_key(args: dict, estimator: dict | None = None) -> dict:
    """The values of RUN_KEYS in `args`, and the CADFT defaults (now, or as recorded)."""
    return {**{k: args.get(k) for k in RUN_KEYS}, "defaults": estimator if estimator is not None else defaults()}


def _int_seeds(methods: dict) -> dict:
    """Runs read back from JSON, with their seed keys as integers again (pairing uses them)."""
    return {m: {**r, "seeds": {int(k): v for k, v in r["seeds"].items()}} for m, r in methods.items()}


def previous_runs(args) -> tuple[dict, dict | None, float]:
    """Finished runs saved under the same arguments (b.partial.json, else b.json), the base
    model's metrics measured then, and the wall time spent on them."""
    key = run_key({k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    partial = runner.load_json(Path(args.out) / "b.partial.json")
    if partial is not None and partial["key"] == key:
        return {name: _int_seeds(m) for name, m in partial["runs"].items()}, partial["base"], partial["wall_s"]
    done = runner.load_json(Path(args.out) / "b.json")
    if done is not None and run_key(done["meta"]["args"], done["defaults"]) == key:
        runs = {name: _int_seeds(m) for name, m in done["runs"].items()}
        return runs, done["base"], done.get("wall_s_total", done["meta"]["wall_s"])
    return {}, None, 0.0


def run(args, splits) -> dict:
    start = time.time()
    reused, reused_base, reused_wall = previous_runs(args)
    if reused:
        listed = ", ".join(f"{name} {m}" for name, methods in reused.items() for m in methods)
        print(f"[part b] reusing finished runs ({reused_wall / 60:.1f} min of earlier wall time): {listed}", flush=True)

    base, tok = common.load(args.model_name_or_path)
    answers = base_general_answers(args, base, tok)
    sets = EvalSets(args, splits, tok, answers)
    if reused_base is not None:  # the same base model and sets: measured by the earlier invocation
        base_metrics = reused_base
    else:
        base_metrics = measure(base, tok, sets, args, base_general_nll=None)
        base_metrics["validation_nll"] = mean_nll(token_logprobs(base, sets.validation))
    args.accuracy_after = base_metrics["accuracy"] > 0  # off the floor: the subset can show a change
    del base
    shown = {k: round(v, 4) for k, v in base_metrics.items() if isinstance(v, float)}
    print(f"[part b] base measured: {time.time() - start:.0f} s: {shown}", flush=True)
    clean = tuple(m.strip() for m in args.clean_methods.split(",") if m.strip())
    mixed = MIXED_METHODS if args.mixed_methods is None else tuple(
        m.strip() for m in args.mixed_methods.split(",") if m.strip())
    unknown = [m for m in mixed + clean if m not in MIXED_METHODS]
    if unknown:
        raise SystemExit(f"unknown Part B method(s) {unknown}; choose from {', '.join(MIXED_METHODS)}")
    datasets = {"mixed": (splits["train_mixed"], mixed), "clean": (splits["train_clean"], clean)}
    lrs = [float(x) for x in args.lrs.split(",")]
    work = Path(tempfile.mkdtemp(prefix="cadft-real-b-"))  # trainer output folders (nothing is saved there)
    key = run_key({k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})

    def save(runs: dict) -> None:
        partial = {"key": key, "runs": runs, "base": base_metrics, "wall_s": time.time() - start + reused_wall}
        runner.save_json(partial, Path(args.out) / "b.partial.json")

    train_all = _train_all if args.jobs == 1 else _train_pool
    try:
        runs = train_all(args, datasets, lrs, sets, base_metrics, work, start, reused, save)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (Path(args.out) / "b.partial.json").unlink(missing_ok=True)  # the caller saves the whole result
    return {"defaults": defaults(), "base": base_metrics, "runs": runs, "table": tables(runs),
            "rewrite_schedule": rewrite_schedule(args),
            "sizes": {"train": len(splits["train_mixed"]), "steps": args.steps, "batch": args.train_batch,
                      "seeds": args.seeds, "lrs": lrs, "test_nll": len(sets.test), "general": len(sets.general),
                      "accuracy": len(sets.accuracy_rows), "validation": len(sets.validation),
                      "accuracy_after": args.accuracy_after},
            "wall_s": time.time() - start, "wall_s_total": time.time() - start + reused_wall,
            "reused": {name: sorted(methods) for name, methods in reused.items()}}


def _train_all(args, datasets, lrs, sets, base_metrics, work, start, reused, save) -> dict:
    """The learning-rate search and the seeds of every (data, method), one run after
    another in this process; finished ones are reused, and each newly finished one is saved
    at once (`save(runs)`)."""
    runs: dict[str, dict[str, dict]] = {}
    for name, (rows, methods) in datasets.items():
        runs[name] = {}
        for method in methods:
            if method in reused.get(name, {}):
                runs[name][method] = reused[name][method]
                continue
            search, best = [], None
            for lr in lrs:  # the same search budget for every method
                model, tok, norms, extras = train(args, method, rows, lr, 0, work / name)
                val = mean_nll(token_logprobs(model, sets.validation))
                search.append({"lr": lr, "validation_nll": val})
                if best is None or val < best[0]:
                    best = (val, lr, model, norms, extras)
                print(f"[part b] {name} {method} lr={lr:g}: val NLL {val:.4f} ({time.time() - start:.0f} s)",
                      flush=True)
            _, lr, model, norms, extras = best
            per_seed = {0: _result(model, tok, sets, args, base_metrics, norms, extras)}
            for seed in range(1, args.seeds):
                model, tok, norms, extras = train(args, method, rows, lr, seed, work / name)
                per_seed[seed] = _result(model, tok, sets, args, base_metrics, norms, extras)
                print(f"[part b] {name} {method} seed {seed} ({time.time() - start:.0f} s)", flush=True)
            runs[name][method] = {"lr": lr, "search": search, "seeds": per_seed}
            save(runs)
    return runs


def _train_pool(args, datasets, lrs, sets, base_metrics, work, start, reused, save) -> dict:
    """`_train_all` on `args.jobs` worker processes, one torch thread each: the same runs,
    choice of rate and results. Every search run is measured in full in its worker (the
    model stays there); the chosen rate's measurement becomes seed 0's."""
    todo = [(name, method) for name, (_, methods) in datasets.items() for method in methods
            if method not in reused.get(name, {})]
    searched = [{} for _ in todo]  # per (data, method): lr index -> (validation NLL, result)
    finished: dict[tuple[str, str], dict] = {}
    # (data and method's place in `todo`, seed, lr index). The pool runs what it is given in
    # order, so it is given no more runs than it has workers, the lowest of these first: a
    # method's seeds go before later methods' searches, and a budget cut stops the last first
    waiting = [(k, 0, i) for k in range(len(todo)) for i in range(len(lrs))]
    running: dict[Future, tuple[int, int, int]] = {}
    with runner.process_pool(args.jobs, common.init_worker) as pool:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                k, seed, i = unit = min(waiting)
                waiting.remove(unit)
                name, method = todo[k]
                running[pool.submit(_run_one, args, method, datasets[name][0], lrs[i], seed, sets, base_metrics,
                                    work / name)] = unit
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                k, seed, i = running.pop(future)
                name, method = todo[k]
                val, result = future.result()
                if seed == 0:
                    print(f"[part b] {name} {method} lr={lrs[i]:g}: val NLL {val:.4f} ({time.time() - start:.0f} s)",
                          flush=True)
                    searched[k][i] = (val, result)
                    if len(searched[k]) < len(lrs):
                        continue
                    best = min(range(len(lrs)), key=lambda j: searched[k][j][0])  # the first lowest, as `_train_all`
                    finished[todo[k]] = {"lr": lrs[best],
                                         "search": [{"lr": lr, "validation_nll": searched[k][j][0]}
                                                    for j, lr in enumerate(lrs)],
                                         "seeds": {0: searched[k][best][1]}}
                    waiting += [(k, s, best) for s in range(1, args.seeds)]
                else:
                    print(f"[part b] {name} {method} seed {seed} ({time.time() - start:.0f} s)", flush=True)
                    finished[todo[k]]["seeds"][seed] = result
                if len(finished[todo[k]]["seeds"]) == args.seeds:
                    save(_in_order(datasets, reused, finished))
    return _in_order(datasets, reused, finished)


def _run_one(args, method: str, rows: list[dict], lr: float, seed: int, sets, base_metrics, work: Path):
    """One run in a pool worker: its validation NLL (a search run, seed 0; else None) and
    its measured result."""
    model, tok, norms, extras = train(args, method, rows, lr, seed, work)
    val = mean_nll(token_logprobs(model, sets.validation)) if seed == 0 else None
    return val, _result(model, tok, sets, args, base_metrics, norms, extras)


def _in_order(datasets, reused, finished: dict) -> dict:
    """runs[name][method] of the reused and the finished (data, method), in the order of
    `datasets` and their methods, with the seeds in order."""
    runs = {}
    for name, (_, methods) in datasets.items():
        runs[name] = {}
        for method in methods:
            if method in reused.get(name, {}):
                runs[name][method] = reused[name][method]
            elif (name, method) in finished:
                run_ = finished[(name, method)]
                runs[name][method] = {**run_, "seeds": dict(sorted(run_["seeds"].items()))}
    return runs


def _result(model, tok, sets, args, base_metrics, norms, extras) -> dict:
    result = measure(model, tok, sets, args, base_general_nll=base_metrics["general_nll"],
                     with_accuracy=getattr(args, "accuracy_after", True))
    window = max(2, min(10, len(norms) // 3))
    result.update(grad_norm_max=max(norms) if norms else 0.0, grad_spikes=spikes(norms, window=window),
                  grad_norms=norms, **extras)
    return result


def tables(runs: dict) -> dict:
    """Per dataset: each method's metrics (mean and 95% t-interval over seeds) and paired
    differences against DFT and SFT, and of CADFT's variants (earlier, rewriting) against CADFT."""
    out = {}
    for name, methods in runs.items():
        out[name] = {"methods": {}, "paired": {}}
        for method, run_ in methods.items():
            seeds = run_["seeds"]
            out[name]["methods"][method] = {m: mean_ci([float(s[m]) for s in seeds.values()]) for m in METRICS}
        for baseline in ("DFT", "SFT", "CADFT"):
            for method, run_ in methods.items():
                if method == baseline or baseline not in methods:
                    continue
                if baseline == "CADFT" and not method.startswith("CADFT "):  # its variants: earlier, rewriting
                    continue
                other = methods[baseline]["seeds"]
                out[name]["paired"][f"{method} - {baseline}"] = {
                    m: paired_ci({k: float(v[m]) for k, v in run_["seeds"].items()},
                                 {k: float(v[m]) for k, v in other.items()}) for m in METRICS}
    return out


"""The CADFT evidence experiment (issue #20): SFT, DFT, the paper's CADFT at beta 0.5 / 1 / 2,
the earlier project default, the control and CADFT with the paper's and the verified rewriting,
on controlled mixtures of native, mildly / medium / strongly foreign and wrong demonstrations.

    python -m experiments.testbed            # the main run; writes docs/results.md and docs/results/*.png
    python -m experiments.testbed --plan     # print the plan (runs x estimated seconds) and stop
    python -m experiments.testbed --smoke    # a short end-to-end check into a temporary folder
    python -m experiments.testbed --seeds 5,6,7,8,9 --grpo-seeds "" --lr-from experiments/results/tuned_lr.json \
        --compare-to experiments/results/summary.json --out experiments/replication --docs docs/replication
                                             # the replication: fresh test seeds at the main run's rates

Phases (each job is one fine-tuning or GRPO run, spread over `--jobs` processes):
  0. the base policy (cached under --cache-dir, keyed by its parameters);
  1. the same learning-rate grid for every arm (experiments/methods.py) per mixture, validation
     seeds; the best mean validation accuracy wins (skipped with --lr-from: its rates are reused);
  2. test runs: every arm at its tuned rate in every mixture, on the test seeds; the DFT run of
     the first seed also measures the variance assumption (experiments/variance.py) at step 0
     and mid-run;
  3. cold-start RL: GRPO from the default-mixture SFT, DFT and CADFT models of the GRPO seeds;
  4. the report: summary.json, the tables and plots of docs/results.md; with --compare-to
     (the main run's summary.json) the decision rule of experiments/decision_rule.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, replace

from experiments import runner
from experiments.testbed import training
from experiments.testbed.arms import ARMS
from experiments.testbed.training import MIXTURES, BaseConfig, GRPORunConfig, RunConfig

logger = logging.getLogger("experiments")

MODULE = "experiments.testbed"  # how it runs: python -m experiments.testbed
EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the study's data: results, cache, rule
GRPO_ARMS = ("sft", "dft", "cadft")
RULE_PATH = os.path.join(EXPERIMENTS, "decision_rule.md")
TOKEN_LOSS_RULE_PATH = os.path.join(EXPERIMENTS, "decision_rule_token_losses.md")  # issue #28's addendum
# Estimated seconds per job on one thread of the 2-core VM: the 2026-12-02 main run's mean job times,
# rounded, on a machine it shared with the real-model experiment and a test suite (alone: about half)
EST_SECONDS = {"light": 11, "main": 27, "rewrite": 30, "variance": 90, "grpo": 15}


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--smoke", action="store_true", help="tiny sizes everywhere; output to a temporary folder unless --out is set")
    a("--plan", action="store_true", help="print the plan (number of runs x estimated seconds) and stop")
    a("--out", default=None, help="results folder (default: experiments/results; --smoke: a temporary folder)")
    a("--docs", default=None, help="where results.md and results/*.png go (default: docs; --smoke: <out>/docs)")
    a("--cache-dir", default=os.path.join(EXPERIMENTS, ".cache"), help="base-policy cache (default: experiments/.cache)")
    a("--jobs", type=int, default=2, help="worker processes, one thread each (default 2: the machine's cores)")
    # the base policy
    a("--base-hidden", type=int, default=64, help="hidden size of the tiny Llama (default 64)")
    a("--base-layers", type=int, default=2, help="layers (default 2)")
    a("--base-steps", type=int, default=2000, help="pre-training steps of the base policy (default 2000)")
    a("--base-seed", type=int, default=0, help="seed of the base policy (default 0)")
    # fine-tuning
    a("--mixtures", type=_names, default=list(MIXTURES), help="mixtures (default clean,default,high,extreme)")
    a("--arms", type=_names, default=list(ARMS), help=f"arms of experiments/methods.py (default all {len(ARMS)})")
    a("--n-train", type=int, default=512, help="fine-tuning demonstrations (default 512)")
    a("--steps", type=int, default=64, help="optimizer steps of every fine-tuning run (default 64 = 2 epochs)")
    a("--batch-size", type=int, default=16, help="fine-tuning batch size (default 16)")
    a("--n-val", type=int, default=150, help="validation problems (default 150)")
    a("--n-test", type=int, default=300, help="problems per test set: ID, OOD, retention (default 300)")
    a("--probe-size", type=int, default=48, help="probe batch of the gradient instruments (default 48)")
    a("--variance-size", type=int, default=256, help="training rows of the variance measurement (default 256)")
    a("--n-checkpoints", type=int, default=4, help="probes of the default-mixture test runs: step 0 and k*steps/n")
    # rewriting, scaled: the paper's warm-up 3000 and interval 1000 steps (3:1) to a 64-step run
    a("--rewrite-start", type=int, default=24, help="first rewriting round after this step (default 24)")
    a("--rewrite-interval", type=int, default=8, help="steps between rounds (default 8: rounds at 24, 32, ..., 56)")
    a("--rewrite-budget", type=float, default=0.02,
      help="targets selected per round, a fraction of the set (default 0.02: 10 of 512)")
    # tuning (validation seeds: their own data, never the test sets)
    # down to 1e-6: on the mixtures SFT's validation accuracy falls as its rate rises from 1e-5
    a("--lrs", type=_floats, default=[1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3],
      help="learning-rate grid of every arm (default 1e-6 to 3e-3, 8 rates)")
    a("--val-seeds", type=_ints, default=[100, 101], help="seeds of the learning-rate grid (default 100,101)")
    a("--lr-from", default=None,
      help="the main run's summary.json (or record.json): reuse its tuned rates (the replication); no grid runs")
    # test runs
    a("--seeds", type=_ints, default=[0, 1, 2, 3, 4], help="test seeds, every mixture (default 0-4)")
    a("--compare-to", default=None,
      help="the main run's summary.json: the page applies the decision rule to both runs (the replication)")
    # cold-start RL
    a("--grpo-steps", type=int, default=16, help="GRPO steps from every fine-tuned model (default 16)")
    a("--grpo-lr", type=float, default=2e-4, help="GRPO learning rate, the same for all (default 2e-4)")
    a("--grpo-prompts", type=int, default=8, help="prompts per GRPO step (default 8)")
    a("--grpo-generations", type=int, default=8, help="completions per prompt (default 8)")
    a("--grpo-seeds", type=_ints, default=[0, 1, 2], help="default-mixture seeds that get a GRPO run (default 0,1,2)")
    a("--report-only", action="store_true", help="rewrite the page from <out>/record.json without running anything")
    a("--discussion", default=None,
      help="hand-written text that ends the page (default: experiments/discussion.md; '' for none)")
    return p


SMOKE = dict(
    base_hidden=32, base_layers=1, base_steps=30, mixtures=["clean", "default"], n_train=32, steps=6, batch_size=8,
    n_val=12, n_test=12, probe_size=4, variance_size=16, n_checkpoints=2, lrs=[1e-3], val_seeds=[100],
    arms=["sft", "dft", "cadft", "earlier", "control", "paper_rw", "verified_rw",  # every code path once
          "asft", "asft_z", "eaft", "eaft_z"],
    seeds=[0, 1], grpo_steps=1, grpo_prompts=2, grpo_generations=2, grpo_seeds=[0], rewrite_start=2,
    rewrite_interval=2, rewrite_budget=0.25,
)


def rule_sha256(path: str = RULE_PATH) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------- jobs


def _init_worker():
    training.quiet()


def _job(kind: str, cfg, source: str, out_dir: str, phase: str, result_path: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    result = training.finetune(cfg, source, out_dir) if kind == "ft" else training.grpo(cfg, source, out_dir)
    result["phase"] = phase
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def _name(cfg: RunConfig) -> str:
    return f"{cfg.arm}-{cfg.mixture}-s{cfg.seed}-lr{cfg.lr:g}"


class Runner:
    """Submits fine-tuning runs once each (a config asked for twice runs once), reusing the
    result an earlier invocation left in runs_dir, and collects their results."""

    def __init__(self, pool, base_path: str, runs_dir: str, work: str):
        self.base_path, self.runs_dir, self.work = base_path, runs_dir, work
        self.jobs = runner.Jobs(pool, _job)

    @property
    def reused(self) -> int:
        return self.jobs.reused  # runs whose result an earlier invocation left in runs_dir

    def submit(self, phase: str, cfgs) -> list[RunConfig]:
        os.makedirs(os.path.join(self.runs_dir, phase), exist_ok=True)
        for cfg in cfgs:
            name = _name(cfg)
            # a run whose model is needed later (for GRPO) runs again: the model is not kept
            self.jobs.submit(cfg, os.path.join(self.runs_dir, phase, name + ".json"), "ft", cfg, self.base_path,
                             os.path.join(self.work, name), phase, config=None if cfg.save_model else asdict(cfg))
        return list(cfgs)

    def results(self, cfgs) -> list[dict]:
        out = []
        for cfg in cfgs:
            done = self.jobs.done(cfg)
            out.append(self.jobs.result(cfg))
            if not done:
                logger.info("  %s done (%.0f s)", _name(cfg), out[-1]["seconds"])
        return out

    def model_path(self, cfg: RunConfig) -> str:
        return os.path.join(self.work, _name(cfg), "model")


def _best_lr(results: list[dict], lrs: list[float]) -> float:
    """Highest mean validation accuracy over the seeds; ties go to the smaller rate."""
    mean = {lr: [r["val_acc"] for r in results if r["config"]["lr"] == lr] for lr in lrs}
    return max(sorted(lrs), key=lambda lr: sum(mean[lr]) / len(mean[lr]))


# --------------------------------------------------------------------------- the plan


def plan(args) -> dict:
    """Number of runs per phase and the estimated wall time with --jobs workers."""
    n_mix, n_lr, n_seeds = len(args.mixtures), len(args.lrs), len(args.seeds)
    rw = sum(a in ("paper_rw", "verified_rw") for a in args.arms)
    plain = len(args.arms) - rw
    grid = 0 if args.lr_from else 1
    phases = {
        "1 lr grid, arms without rewriting": (grid * plain * n_lr * n_mix * len(args.val_seeds), "light"),
        "1 lr grid, rewriting arms": (grid * rw * n_lr * n_mix * len(args.val_seeds), "rewrite"),
        "2 test runs, default mixture (probes at every checkpoint)": (len(args.arms) * n_seeds, "main"),
        "2 test runs, other mixtures": ((n_mix - 1) * plain * n_seeds, "light"),
        "2 test runs, other mixtures, rewriting arms": ((n_mix - 1) * rw * n_seeds, "rewrite"),
        "2 variance measurement (DFT, first seed, each mixture but clean)": (n_mix - 1, "variance"),
        "3 GRPO": (len(GRPO_ARMS) * len(args.grpo_seeds), "grpo"),
    }
    total = sum(n * EST_SECONDS[kind] for n, kind in phases.values())
    return {"phases": {k: {"runs": n, "est_s": EST_SECONDS[kind]} for k, (n, kind) in phases.items()},
            "est_minutes": total / args.jobs / 60}


def print_plan(p: dict) -> None:
    for name, v in p["phases"].items():
        print(f"  {name:65s} {v['runs']:4d} runs x {v['est_s']:3d} s")
    print(f"  estimated wall time (jobs run in parallel; plus the base policy): {p['est_minutes']:.0f} min")


# --------------------------------------------------------------------------- the phases


def _base(args) -> tuple[str, dict]:
    cfg = BaseConfig(hidden_size=args.base_hidden, num_layers=args.base_layers, steps=args.base_steps,
                     seed=args.base_seed)
    cached = os.path.exists(os.path.join(args.cache_dir, f"base-{cfg.key()}", "meta.json"))
    path = training.ensure_base(cfg, args.cache_dir)
    with open(os.path.join(path, "meta.json")) as f:
        meta = {**json.load(f), "cached": cached}
    meta.update(training.base_accuracy(path, args.n_val, args.n_test))  # on this run's sets, whatever the cache saw
    meta["sets"] = {name: {**asdict(s), "text": s.describe()} for name, s in
                    (("finetune", training.FINETUNE), ("ood", training.OOD), ("retention", training.RETENTION))}
    logger.info("base policy ready (%.0f s): accuracy by operations %s", meta["seconds"], meta["acc_by_ops"])
    if not args.smoke:  # smoke sizes train a base far too short for the regime
        training.check_base(meta["acc_by_ops"])
    return path, meta


def _arm(common: RunConfig, arm: str, **kw) -> RunConfig:
    return replace(common, arm=arm, **ARMS[arm], **kw)


def _tuned_rates(args) -> dict:
    with open(args.lr_from) as f:
        lr = json.load(f)["lr"]
    missing = [f"{a}|{m}" for a in args.arms for m in args.mixtures if f"{a}|{m}" not in lr]
    if missing:
        raise SystemExit(f"--lr-from {args.lr_from} has no tuned rate for {', '.join(missing)}")
    return lr


def _experiment(args, runs: Runner, common: RunConfig) -> dict:
    light = replace(common, n_checkpoints=1, instruments=False)  # tuning runs: validation accuracy only
    # 1. the same learning-rate grid for every arm, per mixture (rewriting arms first: the longest)
    order = sorted(args.arms, key=lambda a: "rewrite" not in ARMS[a])
    grids = {}
    if args.lr_from:
        lr = _tuned_rates(args)
        logger.info("phase 1 skipped: tuned rates from %s", args.lr_from)
    else:
        grids = {(arm, mix): runs.submit("lr_grid", [_arm(light, arm, mixture=mix, lr=rate, seed=s, eval_test=False)
                                                       for rate in args.lrs for s in args.val_seeds])
                 for arm in order for mix in args.mixtures}
        logger.info("phase 1: %d learning-rate grid runs", sum(map(len, grids.values())))
        lr = {f"{arm}|{mix}": _best_lr(runs.results(cfgs), args.lrs) for (arm, mix), cfgs in grids.items()}
        logger.info("tuned rates (arm|mixture -> lr): %s", lr)
        with open(os.path.join(runs.runs_dir, os.pardir, "tuned_lr.json"), "w") as f:  # the replication can start now
            json.dump({"lr": lr, "source": f"phase 1 of the run in {os.path.dirname(runs.runs_dir)}"}, f, indent=1)

    # 2. test runs at the tuned rates; the first seed's DFT run measures the variance assumption
    tests = {}
    for mix in args.mixtures:
        main = mix == "default"
        base = replace(common, n_checkpoints=args.n_checkpoints if main else 1)
        for arm in order:
            tests[(arm, mix)] = runs.submit("test", [
                _arm(base, arm, mixture=mix, lr=lr[f"{arm}|{mix}"], seed=s, save_model=main and arm in GRPO_ARMS,
                     variance=arm == "dft" and mix != "clean" and s == args.seeds[0]) for s in args.seeds])
    logger.info("phase 2: %d test runs", sum(map(len, tests.values())))
    for cfgs in tests.values():  # wait for every test run, logging each as it finishes
        runs.results(cfgs)
    return {
        "lr": lr,
        "grids": [r for cfgs in grids.values() for r in runs.results(cfgs)],
        "tests": [r for cfgs in tests.values() for r in runs.results(cfgs)],
        "_default_models": {a: {c.seed: runs.model_path(c) for c in tests[(a, "default")]} for a in GRPO_ARMS
                            if (a, "default") in tests},
    }


def _grpo(args, pool, runs_dir: str, work: str, models: dict) -> list[dict]:
    gcfg = GRPORunConfig(steps=args.grpo_steps, lr=args.grpo_lr, prompts_per_step=args.grpo_prompts,
                         num_generations=args.grpo_generations, n_test=args.n_test)
    os.makedirs(os.path.join(runs_dir, "grpo"), exist_ok=True)
    jobs, owners = [], []
    for method, paths in models.items():
        for seed in args.grpo_seeds:
            if seed in paths:
                name = f"grpo-{method}-s{seed}"
                jobs.append(pool.submit(_job, "grpo", replace(gcfg, seed=seed), paths[seed],
                                        os.path.join(work, name), "grpo",
                                        os.path.join(runs_dir, "grpo", name + ".json")))
                owners.append((method, seed))
    logger.info("phase 5: %d GRPO runs", len(jobs))
    out = []
    for job, (method, seed) in zip(jobs, owners):
        out.append({**job.result(), "method": method, "seed": seed})
    return out


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke:  # smoke sizes, except where a flag is given
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)
    out = args.out or (tempfile.mkdtemp(prefix="cadft-smoke-") if args.smoke else os.path.join(EXPERIMENTS, "results"))
    docs = args.docs or (os.path.join(out, "docs") if args.smoke else os.path.join(os.path.dirname(EXPERIMENTS), "docs"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from experiments.testbed.report import write_report

    if args.report_only:
        with open(os.path.join(out, "record.json")) as f:
            return write_report(json.load(f), out_dir=out, docs_dir=docs, discussion=args.discussion)
    the_plan = plan(args)
    print("plan:")
    print_plan(the_plan)
    if args.plan:
        return the_plan
    started, sha = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), rule_sha256()
    addendum_sha = rule_sha256(TOKEN_LOSS_RULE_PATH)
    logger.info("decision rule sha256 %s (experiments/decision_rule.md), addendum %s "
                "(experiments/decision_rule_token_losses.md)", sha, addendum_sha)
    training.quiet()
    start = time.time()
    os.makedirs(out, exist_ok=True)
    runs_dir = os.path.join(out, "runs")
    work = tempfile.mkdtemp(prefix="cadft-work-")  # trainer output folders and fine-tuned models

    base_path, base_meta = _base(args)
    common = RunConfig(steps=args.steps, batch_size=args.batch_size, n_train=args.n_train, probe_size=args.probe_size,
                       n_val=args.n_val, n_test=args.n_test, rewrite_start=args.rewrite_start,
                       rewrite_interval=args.rewrite_interval, rewrite_budget=args.rewrite_budget,
                       variance_size=args.variance_size)
    with runner.process_pool(args.jobs, _init_worker) as pool:
        runs = Runner(pool, base_path, runs_dir, work)
        results = _experiment(args, runs, common)
        models = results.pop("_default_models")
        grpo = _grpo(args, pool, runs_dir, work, models)
        reused = runs.reused

    wall = time.time() - start
    argv = sys.argv[1:] if argv is None else list(argv)
    record = {
        "argv": argv,
        "command": runner.command_line(MODULE, argv),
        "args": vars(args),
        "plan": the_plan,
        "decision_rule_sha256": sha,
        "decision_rule_token_losses_sha256": addendum_sha,
        "machine": runner.machine(),  # after training.quiet(): the one torch thread the runs use
        "started": started,
        "base": base_meta,
        **results,
        "grpo": grpo,
        "wall_seconds": wall,
        "reused_runs": reused,  # results an earlier invocation left in runs_dir (their time is not in wall_seconds)
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    with open(os.path.join(out, "record.json"), "w") as f:
        json.dump(record, f)
    summary = write_report(record, out_dir=out, docs_dir=docs, discussion=args.discussion)
    print(summary["main_table"])
    logger.info("done in %.1f min; results page %s", wall / 60, os.path.join(docs, "results.md"))
    return summary


if __name__ == "__main__":
    main()

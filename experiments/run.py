"""The CADFT evidence experiment: SFT, DFT, CADFT's estimator variants and CADFT+rewriting on
controlled mixtures of native, mildly / medium / strongly foreign and wrong demonstrations.

    python experiments/run.py            # the full suite; writes docs/results.md and docs/results/*.png
    python experiments/run.py --plan     # print the plan (runs x estimated seconds) and stop
    python experiments/run.py --smoke    # a short end-to-end check into a temporary folder

Phases (each job is one fine-tuning or GRPO run, spread over `--jobs` processes):
  0. the base policy (cached under --cache-dir, keyed by its parameters);
  1. learning-rate grid of SFT and DFT per mixture, validation seeds;
  2. ablation of the CADFT variants (design.py) on the validation seeds, each at the learning
     rate of the base loss with its token power (SFT's for alpha 0, DFT's for alpha 1, the
     grid rate nearest their geometric mean for 0.5); the decision rule picks the default;
  3. the same learning-rate grid for the chosen CADFT variant (equal tuning budget), and for the
     control, the chosen variant's token loss without sample weights (beta 0), when that is
     neither SFT's nor DFT's;
  4. test runs: SFT, DFT, CADFT, CADFT+rewriting (and the control) at their tuned rates in every
     mixture;
  5. cold-start RL: GRPO from each default-mixture model of the GRPO seeds;
  6. the report: summary.json, the tables and plots of docs/results.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from multiprocessing import get_context

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import testbed  # noqa: E402
from design import ablation_design, decide  # noqa: E402
from testbed import MIXTURES, BaseConfig, GRPORunConfig, RunConfig  # noqa: E402

logger = logging.getLogger("experiments")

GRPO_METHODS = ("sft", "dft", "cadft", "cadft_rewrite")  # the control (cadft_unweighted) gets no GRPO run
RULE_PATH = os.path.join(HERE, "decision_rule.md")
# Estimated seconds per job on one thread of the 2-core VM (the 2026-11-29 11:05 run's mean job times,
# rounded up; the machine's other load can add more)
EST_SECONDS = {"light": 5, "main": 14, "rewrite": 12, "grpo": 8}


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
    a("--cache-dir", default=os.path.join(HERE, ".cache"), help="base-policy cache (default: experiments/.cache)")
    a("--jobs", type=int, default=2, help="worker processes, one thread each (default 2: the machine's cores)")
    # the base policy
    a("--base-hidden", type=int, default=64, help="hidden size of the tiny Llama (default 64)")
    a("--base-layers", type=int, default=2, help="layers (default 2)")
    a("--base-steps", type=int, default=2000, help="pre-training steps of the base policy (default 2000)")
    a("--base-seed", type=int, default=0, help="seed of the base policy (default 0)")
    # fine-tuning
    a("--mixtures", type=_names, default=list(MIXTURES), help="mixtures (default clean,default,high)")
    a("--n-train", type=int, default=512, help="fine-tuning demonstrations (default 512)")
    a("--steps", type=int, default=64, help="optimizer steps of every fine-tuning run (default 64 = 2 epochs)")
    a("--batch-size", type=int, default=16, help="fine-tuning batch size (default 16)")
    a("--n-val", type=int, default=150, help="validation problems (default 150)")
    a("--n-test", type=int, default=300, help="problems per test set: ID, OOD, retention (default 300)")
    a("--probe-size", type=int, default=48, help="probe batch of the gradient instruments (default 48)")
    a("--n-checkpoints", type=int, default=4, help="probes of the default-mixture test runs: step 0 and k*steps/n")
    a("--rewrite-budget", type=float, default=0.1, help="rewrites per round, a fraction of the set (default 0.1)")
    # tuning and ablation (validation seeds: their own data, never the test sets)
    a("--lrs", type=_floats, default=[1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3],
      help="learning-rate grid of every method (default 1e-5 to 3e-3, 6 rates)")
    a("--val-seeds", type=_ints, default=[100, 101], help="seeds of the learning-rate grid (default 100,101)")
    a("--ablation-seeds", type=_ints, default=[100, 101, 102], help="seeds of the ablation (default 100,101,102)")
    a("--variants", type=_ints, default=list(range(9)),
      help="indices of the ablated variants in experiments/design.py's fraction (default all: 0-8)")
    # test runs
    a("--seeds", type=_ints, default=[0, 1, 2, 3, 4], help="test seeds in the default mixture (default 0-4)")
    a("--mixture-seeds", type=_ints, default=[0, 1, 2, 3, 4], help="test seeds in the other mixtures (default 0-4)")
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
    base_hidden=32, base_layers=1, base_steps=30, mixtures=["clean", "default"], n_train=32, steps=4, batch_size=8,
    n_val=12, n_test=12, probe_size=4, n_checkpoints=2, lrs=[1e-3], val_seeds=[100], ablation_seeds=[100],
    variants=[3, 4], seeds=[0, 1], mixture_seeds=[0], grpo_steps=1, grpo_prompts=2, grpo_generations=2,
    grpo_seeds=[0], rewrite_budget=0.5,
)

# The base losses by token power: CADFT variants inherit the learning rate of theirs
BASE_LOSSES = {0.0: dict(method="sft"), 0.5: dict(method="cadft", beta=0.0, token_power=0.5), 1.0: dict(method="dft")}


def rule_sha256() -> str:
    with open(RULE_PATH, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------- jobs


def _init_worker():
    testbed.quiet()


def _job(kind: str, cfg, source: str, out_dir: str, result_path: str, phase: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    result = testbed.finetune(cfg, source, out_dir) if kind == "ft" else testbed.grpo(cfg, source, out_dir)
    result["phase"] = phase
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def _name(cfg: RunConfig) -> str:
    return f"{cfg.variant}-{cfg.mixture}-s{cfg.seed}-lr{cfg.lr:g}".replace("[", "(").replace("]", ")")


class Runner:
    """Submits fine-tuning runs once each (a config asked for twice runs once) and
    collects their results."""

    def __init__(self, pool, base_path: str, runs_dir: str, work: str):
        self.pool, self.base_path, self.runs_dir, self.work = pool, base_path, runs_dir, work
        self.futures: dict[RunConfig, tuple] = {}

    def submit(self, phase: str, cfgs) -> list[RunConfig]:
        os.makedirs(os.path.join(self.runs_dir, phase), exist_ok=True)
        for cfg in cfgs:
            if cfg not in self.futures:
                name = _name(cfg)
                job = ("ft", cfg, self.base_path, os.path.join(self.work, name),
                       os.path.join(self.runs_dir, phase, name + ".json"), phase)
                self.futures[cfg] = (self.pool.submit(_job, *job), phase)
        return list(cfgs)

    def results(self, cfgs) -> list[dict]:
        out = []
        for cfg in cfgs:
            future, _ = self.futures[cfg]
            done = future.done()
            out.append(future.result())
            if not done:
                logger.info("  %s done (%.0f s)", _name(cfg), out[-1]["seconds"])
        return out

    def model_path(self, cfg: RunConfig) -> str:
        return os.path.join(self.work, _name(cfg), "model")


def _best_lr(results: list[dict], lrs: list[float]) -> float:
    """Highest mean validation accuracy over the seeds; ties go to the smaller rate."""
    mean = {lr: [r["val_acc"] for r in results if r["config"]["lr"] == lr] for lr in lrs}
    return max(sorted(lrs), key=lambda lr: sum(mean[lr]) / len(mean[lr]))


def _between(a: float, b: float, lrs: list[float]) -> float:
    """The grid rate nearest (in log) to the geometric mean of a and b; ties to the smaller:
    the rate of the alpha = 0.5 variants, between SFT's (alpha 0) and DFT's (alpha 1)."""
    target = math.log(a * b) / 2
    return min(sorted(lrs), key=lambda lr: round(abs(math.log(lr) - target), 9))


# --------------------------------------------------------------------------- the plan


def plan(args) -> dict:
    """Number of runs per phase and the estimated wall time with --jobs workers."""
    n_mix, n_lr = len(args.mixtures), len(args.lrs)
    extra_ref_seeds = len(set(args.ablation_seeds) - set(args.val_seeds))
    other_mix = n_mix - ("default" in args.mixtures)
    phases = {
        "1 lr grid (SFT, DFT)": (2 * n_lr * n_mix * len(args.val_seeds), "light"),
        "2 ablation (+ SFT/DFT on extra seeds)": (len(args.variants) * n_mix * len(args.ablation_seeds)
                                                  + 2 * n_mix * extra_ref_seeds, "light"),
        "3 lr grid (chosen CADFT; its ablation runs reused)": ((n_lr - 1) * n_mix * len(args.val_seeds), "light"),
        "3b lr grid (control: its token loss, beta 0; if alpha is 0.5)": (n_lr * n_mix * len(args.val_seeds), "light"),
        "4 test runs, default mixture (SFT, DFT, CADFT)": (3 * len(args.seeds) * ("default" in args.mixtures), "main"),
        "4 test runs, other mixtures (SFT, DFT, CADFT)": (3 * len(args.mixture_seeds) * other_mix, "light"),
        "4 test runs, CADFT+rewriting": (len(args.seeds) + len(args.mixture_seeds) * other_mix, "rewrite"),
        "4 test runs, control (if alpha is 0.5)": (len(args.seeds) + len(args.mixture_seeds) * other_mix, "main"),
        "5 GRPO": (4 * len(args.grpo_seeds), "grpo"),
    }
    total = sum(n * EST_SECONDS[kind] for n, kind in phases.values())
    return {"phases": {k: {"runs": n, "est_s": EST_SECONDS[kind]} for k, (n, kind) in phases.items()},
            "est_minutes": total / args.jobs / 60}


def print_plan(p: dict) -> None:
    for name, v in p["phases"].items():
        print(f"  {name:55s} {v['runs']:4d} runs x {v['est_s']:3d} s")
    print(f"  estimated wall time (jobs run in parallel; plus the base policy): {p['est_minutes']:.0f} min")


# --------------------------------------------------------------------------- the phases


def _base(args) -> tuple[str, dict]:
    cfg = BaseConfig(hidden_size=args.base_hidden, num_layers=args.base_layers, steps=args.base_steps,
                     seed=args.base_seed)
    cached = os.path.exists(os.path.join(args.cache_dir, f"base-{cfg.key()}", "meta.json"))
    path = testbed.ensure_base(cfg, args.cache_dir)
    with open(os.path.join(path, "meta.json")) as f:
        meta = {**json.load(f), "cached": cached}
    meta.update(testbed.base_accuracy(path, args.n_val, args.n_test))  # on this run's sets, whatever the cache saw
    meta["sets"] = {name: {**asdict(s), "text": s.describe()} for name, s in
                    (("finetune", testbed.FINETUNE), ("ood", testbed.OOD), ("retention", testbed.RETENTION))}
    logger.info("base policy ready (%.0f s): accuracy by operations %s", meta["seconds"], meta["acc_by_ops"])
    return path, meta


def _grid(common: RunConfig, args, spec: dict, mixture: str) -> list[RunConfig]:
    return [replace(common, **spec, mixture=mixture, lr=lr, seed=s, eval_test=False)
            for lr in args.lrs for s in args.val_seeds]


def _tuned(common: RunConfig, spec: dict, lr: float, mixture: str, seeds, **kw) -> list[RunConfig]:
    return [replace(common, **spec, mixture=mixture, lr=lr, seed=s, **kw) for s in seeds]


def _experiment(args, runner: Runner, common: RunConfig) -> dict:
    light = replace(common, n_checkpoints=1, instruments=False)  # tuning runs: validation accuracy only
    # 1. learning-rate grid of the base losses, per mixture
    grids = {(alpha, mix): runner.submit("lr_grid", _grid(light, args, BASE_LOSSES[alpha], mix))
             for mix in args.mixtures for alpha in (0.0, 1.0)}
    logger.info("phase 1: %d learning-rate grid runs", sum(map(len, grids.values())))
    lr = {key: _best_lr(runner.results(cfgs), args.lrs) for key, cfgs in grids.items()}
    for mix in args.mixtures:
        lr[(0.5, mix)] = _between(lr[(0.0, mix)], lr[(1.0, mix)], args.lrs)
    logger.info("tuned rates (token power, mixture) -> lr: %s", lr)

    # 2. ablation on the validation seeds, plus SFT/DFT references on seeds the grid lacks
    design = ablation_design()
    variants = [design[i] for i in args.variants]
    ablation = {}
    for mix in args.mixtures:
        for v in variants:
            spec = dict(method="cadft", normalization=v.normalization, token_power=v.token_power, beta=v.beta,
                        w_max=v.w_max)
            ablation[(v, mix)] = runner.submit("ablation", _tuned(light, spec, lr[(v.token_power, mix)], mix,
                                                                  args.ablation_seeds, eval_test=False))
        for m, a in (("sft", 0.0), ("dft", 1.0)):
            ablation[(m, mix)] = runner.submit("ablation", _tuned(light, BASE_LOSSES[a], lr[(a, mix)], mix,
                                                                  args.ablation_seeds, eval_test=False))
    # 4a. SFT and DFT test runs depend on phase 1 only: queue them behind the ablation
    def test_cfgs(spec, alpha, mixture, **kw):
        main = mixture == "default"
        seeds = args.seeds if main else args.mixture_seeds
        base = replace(common, n_checkpoints=args.n_checkpoints if main else 1)
        return _tuned(base, spec, lr[(alpha, mixture)], mixture, seeds, **kw)

    tests = {(m, mix): runner.submit("test", test_cfgs(BASE_LOSSES[a], a, mix, save_model=mix == "default"))
             for mix in args.mixtures for m, a in (("sft", 0.0), ("dft", 1.0))}

    logger.info("phase 2: ablation, %d variants x %d mixtures x %d seeds", len(variants), len(args.mixtures),
                len(args.ablation_seeds))
    val = {(v, mix, r["config"]["seed"]): r["val_acc"]
           for (v, mix), cfgs in ablation.items() if not isinstance(v, str) for r in runner.results(cfgs)}
    decision = decide(val, variants)
    chosen = decision["chosen"]
    logger.info("decision rule chose %s (mean ranks %s)", chosen.label(),
                {v.label(): round(r, 2) for v, r in decision["mean_ranks"].items()})

    # 3. the same grid for the chosen variant; 4b. its test runs (and with rewriting)
    cadft_spec = dict(method="cadft", normalization=chosen.normalization, token_power=chosen.token_power,
                      beta=chosen.beta, w_max=chosen.w_max)
    cgrids = {mix: runner.submit("lr_grid", _grid(light, args, cadft_spec, mix)) for mix in args.mixtures}
    # 3b. the control: the chosen variant's token loss without its sample weights (beta = 0), on the
    # same grid, so that CADFT - control isolates what the weights do (at alpha 0 or 1 it is SFT or DFT)
    control_spec = {**cadft_spec, "method": "cadft_unweighted", "beta": 0.0}
    control = chosen.token_power not in (0.0, 1.0)
    ugrids = {mix: runner.submit("lr_grid", _grid(light, args, control_spec, mix))
              for mix in args.mixtures} if control else {}
    for mix, cfgs in cgrids.items():
        lr[("cadft", mix)] = _best_lr(runner.results(cfgs), args.lrs)
    for mix, cfgs in ugrids.items():
        lr[("unweighted", mix)] = _best_lr(runner.results(cfgs), args.lrs)
    for mix in args.mixtures:
        for m in ("cadft_rewrite", "cadft"):  # longest first
            spec = {**cadft_spec, "method": m}
            seeds = args.seeds if mix == "default" else args.mixture_seeds
            base = replace(common, n_checkpoints=args.n_checkpoints if mix == "default" else 1)
            tests[(m, mix)] = runner.submit("test", _tuned(base, spec, lr[("cadft", mix)], mix, seeds,
                                                           save_model=mix == "default"))
        if control:
            tests[("cadft_unweighted", mix)] = runner.submit("test", _tuned(
                base, control_spec, lr[("unweighted", mix)], mix, seeds))
    logger.info("phase 3-4: chosen-variant grid and test runs")
    for cfgs in tests.values():  # wait for every test run, logging each as it finishes
        runner.results(cfgs)
    return {
        "lr": {f"{k[0]}|{k[1]}": v for k, v in lr.items()},
        "chosen": chosen._asdict(),
        "mean_ranks": [{"variant": v._asdict(), "mean_rank": r} for v, r in decision["mean_ranks"].items()],
        "tied": [v._asdict() for v in decision["tied"]],
        "grids": [r for cfgs in [*grids.values(), *cgrids.values(), *ugrids.values()] for r in runner.results(cfgs)],
        "ablation": [r for cfgs in ablation.values() for r in runner.results(cfgs)],
        "tests": [r for cfgs in tests.values() for r in runner.results(cfgs)],
        "_default_models": {m: {c.seed: runner.model_path(c) for c in tests[(m, "default")]} for m in GRPO_METHODS
                            if (m, "default") in tests},
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
                                        os.path.join(work, name), os.path.join(runs_dir, "grpo", name + ".json"),
                                        "grpo"))
                owners.append((method, seed))
    logger.info("phase 5: %d GRPO runs", len(jobs))
    out = []
    for job, (method, seed) in zip(jobs, owners):
        out.append({**job.result(), "method": method, "seed": seed})
    return out


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    out = args.out or (tempfile.mkdtemp(prefix="cadft-smoke-") if args.smoke else os.path.join(HERE, "results"))
    docs = args.docs or (os.path.join(out, "docs") if args.smoke else os.path.join(os.path.dirname(HERE), "docs"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from report import write_report

    if args.report_only:
        with open(os.path.join(out, "record.json")) as f:
            return write_report(json.load(f), out_dir=out, docs_dir=docs, discussion=args.discussion)
    the_plan = plan(args)
    print("plan:")
    print_plan(the_plan)
    if args.plan:
        return the_plan
    started, sha = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), rule_sha256()
    logger.info("decision rule sha256 %s (experiments/decision_rule.md)", sha)
    testbed.quiet()
    start = time.time()
    os.makedirs(out, exist_ok=True)
    runs_dir = os.path.join(out, "runs")
    work = tempfile.mkdtemp(prefix="cadft-work-")  # trainer output folders and fine-tuned models

    base_path, base_meta = _base(args)
    common = RunConfig(steps=args.steps, batch_size=args.batch_size, n_train=args.n_train, probe_size=args.probe_size,
                       n_val=args.n_val, n_test=args.n_test, rewrite_budget=args.rewrite_budget)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        runner = Runner(pool, base_path, runs_dir, work)
        results = _experiment(args, runner, common)
        models = results.pop("_default_models")
        grpo = _grpo(args, pool, runs_dir, work, models)

    wall = time.time() - start
    record = {
        "argv": sys.argv[1:] if argv is None else list(argv),
        "args": vars(args),
        "plan": the_plan,
        "decision_rule_sha256": sha,
        "started": started,
        "base": base_meta,
        **results,
        "grpo": grpo,
        "wall_seconds": wall,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    with open(os.path.join(out, "record.json"), "w") as f:
        json.dump(record, f)
    summary = write_report(record, out_dir=out, docs_dir=docs, discussion=args.discussion)
    print(summary["ablation_table"])
    logger.info("done in %.1f min; results page %s", wall / 60, os.path.join(docs, "results.md"))
    return summary


if __name__ == "__main__":
    main()

"""The CADFT evidence experiment: SFT, DFT, CADFT and CADFT+rewriting on a controlled
mixture of compatible, incompatible and wrong demonstrations, end to end.

    python experiments/run.py            # the full suite; writes docs/results.md and docs/results/*.png
    python experiments/run.py --smoke    # a minutes-long end-to-end check into a temporary folder

Phases (each job is one fine-tuning or GRPO run, spread over `--jobs` processes):
  0. the base policy (cached under --cache-dir, keyed by its parameters);
  1. hyper-parameter search on the validation split (never on test);
  2. main runs: 4 methods x --seeds, with the selected hyper-parameters;
  3. sensitivity sweeps: the mixture (frac incompatible x frac wrong) and beta;
  4. cold-start RL: GRPO from each main run's fine-tuned model;
  5. the report: summary.json, the tables and plots of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import testbed  # noqa: E402
from task import NOISE_KINDS  # noqa: E402
from testbed import BaseConfig, GRPORunConfig, RunConfig  # noqa: E402

logger = logging.getLogger("experiments")

METHODS = ("sft", "dft", "cadft", "cadft_rewrite")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _range(text: str) -> tuple[int, int]:
    lo, hi = _ints(text)
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--smoke", action="store_true", help="tiny sizes everywhere; output to a temporary folder unless --out is set")
    a("--out", default=None, help="results folder (default: experiments/results; --smoke: a temporary folder)")
    a("--docs", default=None, help="where results.md and results/*.png go (default: docs; --smoke: <out>/docs)")
    a("--cache-dir", default=os.path.join(HERE, ".cache"), help="base-policy cache (default: experiments/.cache)")
    a("--jobs", type=int, default=2, help="worker processes, one thread each (default 2: the machine's cores)")
    # the base policy
    a("--base-hidden", type=int, default=64, help="hidden size of the tiny Llama (default 64)")
    a("--base-layers", type=int, default=2, help="layers (default 2)")
    a("--base-steps", type=int, default=2500, help="pre-training steps of the base policy (default 2500)")
    a("--base-ops", type=_range, default=(1, 3), help="operations per easy problem, 'lo,hi' (default 1,3)")
    a("--base-hint-frac", type=float, default=0.3, help="pre-training rows with a reference to restate (default 0.3)")
    a("--base-seed", type=int, default=0, help="seed of the base policy (default 0)")
    # the fine-tuning set
    a("--n-train", type=int, default=512, help="fine-tuning demonstrations (default 512)")
    a("--frac-incompatible", type=float, default=0.3, help="foreign-style correct demonstrations (default 0.3)")
    a("--frac-wrong", type=float, default=0.2, help="wrong demonstrations (default 0.2)")
    a("--noise-kind", choices=NOISE_KINDS, default="mixed", help="how wrong demos are corrupted (default mixed)")
    a("--ft-ops", type=_range, default=(3, 4), help="operations per fine-tuning problem (default 3,4)")
    a("--ood-ops", type=_range, default=(5, 6), help="operations per out-of-distribution problem (default 5,6)")
    # training and evaluation
    a("--steps", type=int, default=128, help="optimizer steps of every fine-tuning run (default 128 = 4 epochs)")
    a("--batch-size", type=int, default=16, help="fine-tuning batch size (default 16)")
    a("--seeds", type=_ints, default=[0, 1, 2, 3, 4], help="seeds of the main runs (default 0,1,2,3,4)")
    a("--n-val", type=int, default=200, help="validation problems (default 200)")
    a("--n-test", type=int, default=300, help="problems per test set: ID, OOD, retention (default 300)")
    a("--probe-size", type=int, default=48, help="probe batch of the gradient-variance metric (default 48)")
    a("--n-checkpoints", type=int, default=4, help="probes at step 0 and k*steps/n (default 4)")
    a("--rewrite-budget", type=float, default=0.1, help="rewrites per round, a fraction of the set (default 0.1)")
    # hyper-parameter search (validation split)
    a("--search-lrs", type=_floats, default=[3e-4, 1e-3, 3e-3], help="learning rates searched (default 3e-4,1e-3,3e-3)")
    a("--search-betas", type=_floats, default=[0.5, 1.0, 2.0], help="CADFT betas searched (default 0.5,1,2)")
    a("--search-seeds", type=_ints, default=[100, 101],
      help="seeds of the search runs: their own data, not main seeds; val accuracy is averaged (default 100,101)")
    # sweeps
    a("--sweep-incompatible", type=_floats, default=[0.0, 0.3, 0.6], help="mixture sweep levels (default 0,0.3,0.6)")
    a("--sweep-wrong", type=_floats, default=[0.0, 0.2, 0.4], help="mixture sweep levels (default 0,0.2,0.4)")
    a("--sweep-betas", type=_floats, default=[0.0, 0.5, 1.0, 2.0, 4.0], help="beta sweep (default 0,0.5,1,2,4)")
    a("--sweep-seeds", type=_ints, default=[0, 1, 2], help="seeds of every sweep point (default 0,1,2)")
    a("--sweep-methods", default="sft,dft,cadft", help="methods of the mixture sweep (default sft,dft,cadft)")
    # cold-start RL
    a("--grpo-steps", type=int, default=48, help="GRPO steps from every fine-tuned model (default 48)")
    a("--grpo-lr", type=float, default=2e-4, help="GRPO learning rate, the same for all (default 2e-4)")
    a("--grpo-prompts", type=int, default=8, help="prompts per GRPO step (default 8)")
    a("--grpo-generations", type=int, default=8, help="completions per prompt (default 8)")
    a("--grpo-seeds", type=_ints, default=None, help="main seeds that get a GRPO run (default: all main seeds)")
    a("--report-only", action="store_true", help="rewrite the page from <out>/record.json without running anything")
    a("--skip", default="", help="comma-separated phases to skip: sweeps, grpo")
    return p


SMOKE = dict(
    base_hidden=32, base_layers=1, base_steps=30, n_train=48, steps=6, batch_size=8, seeds=[0, 1], n_val=16,
    n_test=16, probe_size=6, n_checkpoints=2, search_lrs=[1e-3], search_betas=[1.0], search_seeds=[100], sweep_incompatible=[0.5],
    sweep_wrong=[0.2], sweep_betas=[0.0, 1.0], sweep_seeds=[0], grpo_steps=2, grpo_prompts=2, grpo_generations=4,
    rewrite_budget=0.5,
)


def _init_worker():
    testbed.quiet()


def _job(kind: str, cfg, base_or_model: str, out_dir: str, result_path: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    if kind == "ft":
        result = testbed.finetune(cfg, base_or_model, out_dir)
    else:
        result = testbed.grpo(cfg, base_or_model, out_dir)
    result["phase"] = os.path.basename(os.path.dirname(result_path))
    with open(result_path, "w") as f:
        json.dump(result, f)
    return result


def _run_all(pool, jobs: list[tuple]) -> list[dict]:
    """jobs: (kind, cfg, path, out_dir, result_path); results in order, progress logged."""
    futures = [pool.submit(_job, *job) for job in jobs]
    results = []
    for i, (future, job) in enumerate(zip(futures, jobs)):
        results.append(future.result())
        logger.info("  [%d/%d] %s done (%.0f s)", i + 1, len(jobs), os.path.basename(job[4]), results[-1]["seconds"])
    return results


def _name(cfg: RunConfig) -> str:
    return (f"{cfg.method}-s{cfg.seed}-lr{cfg.lr:g}-b{cfg.beta:g}-fi{cfg.frac_incompatible:g}"
            f"-fw{cfg.frac_wrong:g}")


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    out = args.out or (tempfile.mkdtemp(prefix="cadft-smoke-") if args.smoke else os.path.join(HERE, "results"))
    docs = args.docs or (os.path.join(out, "docs") if args.smoke else os.path.join(os.path.dirname(HERE), "docs"))
    skip = {s for s in args.skip.split(",") if s}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from report import write_report

    if args.report_only:
        with open(os.path.join(out, "record.json")) as f:
            return write_report(json.load(f), out_dir=out, docs_dir=docs)
    testbed.quiet()
    start = time.time()
    runs_dir = os.path.join(out, "runs")
    work = tempfile.mkdtemp(prefix="cadft-work-")  # trainer output folders and fine-tuned models

    # 0. base policy
    base_cfg = BaseConfig(hidden_size=args.base_hidden, num_layers=args.base_layers, steps=args.base_steps,
                          ops=tuple(args.base_ops), hint_frac=args.base_hint_frac, seed=args.base_seed)
    logger.info("base policy %s (trained unless cached in %s)", base_cfg.key(), args.cache_dir)
    base_cached = os.path.exists(os.path.join(args.cache_dir, f"base-{base_cfg.key()}", "meta.json"))
    base_path = testbed.ensure_base(base_cfg, args.cache_dir)
    base_meta = {**json.load(open(os.path.join(base_path, "meta.json"))), "cached": base_cached}
    logger.info("base policy ready: %s", {k: base_meta[k] for k in ("seconds", "acc_easy", "acc_ft_ops")})

    common = RunConfig(
        steps=args.steps, batch_size=args.batch_size, n_train=args.n_train, frac_incompatible=args.frac_incompatible,
        frac_wrong=args.frac_wrong, noise_kind=args.noise_kind, ft_ops=tuple(args.ft_ops), ood_ops=tuple(args.ood_ops),
        n_checkpoints=args.n_checkpoints, probe_size=args.probe_size, n_val=args.n_val, n_test=args.n_test,
        rewrite_budget=args.rewrite_budget,
    )

    def ft_job(phase, cfg):
        os.makedirs(os.path.join(runs_dir, phase), exist_ok=True)
        name = _name(cfg)
        return ("ft", cfg, base_path, os.path.join(work, phase, name), os.path.join(runs_dir, phase, name + ".json"))

    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx, initializer=_init_worker) as pool:
        # 1. hyper-parameter search on the validation split
        # search and sweep runs probe only at the start and the end: the curves come from the main runs
        light = replace(common, n_checkpoints=1)
        points = [("sft", lr, 1.0) for lr in args.search_lrs] + [("dft", lr, 1.0) for lr in args.search_lrs]
        points += [("cadft", lr, b) for lr in args.search_lrs for b in args.search_betas]
        search_cfgs = [replace(light, method=m, lr=lr, beta=b, seed=s, eval_test=False)
                       for m, lr, b in points for s in args.search_seeds]
        logger.info("phase 1: hyper-parameter search, %d runs", len(search_cfgs))
        search = _run_all(pool, [ft_job("search", c) for c in search_cfgs])
        val = {p: sum(r["val_acc"] for r in search if (r["config"]["method"], r["config"]["lr"], r["config"]["beta"]) == p)
               / len(args.search_seeds) for p in points}
        chosen = {}
        for method in ("sft", "dft", "cadft"):
            # highest mean validation accuracy; the first of equals in search order
            m, lr, b = max((p for p in points if p[0] == method), key=lambda p: val[p])
            chosen[method] = {"lr": lr, "beta": b}
        chosen["cadft_rewrite"] = dict(chosen["cadft"])  # rewriting reuses CADFT's choice (no separate search)
        logger.info("selected on validation: %s", chosen)

        def tuned(method, base=common, **kw):
            return replace(base, method=method, lr=chosen[method]["lr"], beta=chosen[method]["beta"], **kw)

        # 2. main runs, 3. sweeps (longest first keeps both workers busy to the end)
        main_jobs = [ft_job("main", tuned(m, seed=s, save_model="grpo" not in skip)) for m in METHODS for s in args.seeds]
        main_jobs.sort(key=lambda j: j[1].method != "cadft_rewrite")
        sweep_jobs = []
        if "sweeps" not in skip:
            for fi in args.sweep_incompatible:
                for fw in args.sweep_wrong:
                    if fi + fw > 1:
                        continue
                    for m in args.sweep_methods.split(","):
                        for s in args.sweep_seeds:
                            sweep_jobs.append(ft_job("mixture", tuned(m, light, seed=s, frac_incompatible=fi,
                                                                     frac_wrong=fw)))
            for b in args.sweep_betas:
                for s in args.sweep_seeds:
                    sweep_jobs.append(ft_job("beta", replace(tuned("cadft", light, seed=s), beta=b)))
        logger.info("phase 2-3: %d main runs and %d sweep runs", len(main_jobs), len(sweep_jobs))
        results = _run_all(pool, main_jobs + sweep_jobs)
        main, sweeps = results[: len(main_jobs)], results[len(main_jobs) :]

        # 4. cold-start RL from each main model
        grpo = []
        if "grpo" not in skip:
            grpo_seeds = args.seeds if args.grpo_seeds is None else args.grpo_seeds
            gcfg = GRPORunConfig(steps=args.grpo_steps, lr=args.grpo_lr, prompts_per_step=args.grpo_prompts,
                                 num_generations=args.grpo_generations, ft_ops=tuple(args.ft_ops), n_test=args.n_test)
            jobs, owners = [], []
            os.makedirs(os.path.join(runs_dir, "grpo"), exist_ok=True)
            for job, r in zip(main_jobs, main):
                cfg = job[1]
                if cfg.seed in grpo_seeds:
                    name = f"grpo-{cfg.method}-s{cfg.seed}"
                    jobs.append(("grpo", replace(gcfg, seed=cfg.seed), os.path.join(job[3], "model"),
                                 os.path.join(work, "grpo", name), os.path.join(runs_dir, "grpo", name + ".json")))
                    owners.append((cfg.method, cfg.seed))
            logger.info("phase 4: %d GRPO runs", len(jobs))
            grpo = _run_all(pool, jobs)
            for g, (method, seed) in zip(grpo, owners):
                g["method"], g["seed"] = method, seed

    wall = time.time() - start
    record = {
        "argv": sys.argv[1:] if argv is None else list(argv),
        "args": {k: v for k, v in vars(args).items()},
        "base": base_meta,
        "chosen": chosen,
        "search": search,
        "main": main,
        "sweeps": sweeps,
        "grpo": grpo,
        "wall_seconds": wall,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    with open(os.path.join(out, "record.json"), "w") as f:
        json.dump(record, f)
    summary = write_report(record, out_dir=out, docs_dir=docs)
    with open(os.path.join(docs, "results.md")) as f:
        page = f.read()
    print(page[page.index("## Main results") : page.index("### Spread across seeds")])  # the closing note's table
    logger.info("done in %.1f min; results page %s", wall / 60, os.path.join(docs, "results.md"))
    return summary


if __name__ == "__main__":
    main()

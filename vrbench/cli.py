"""The `vrbench` command line."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from pathlib import Path

from vrbench.errors import VrbenchError


def _cmd_tasks(args) -> None:
    import tasks
    from harness.reports.tables import text_table
    if args.name:
        _print_card(tasks.load(args.name))
        return
    rows = [("name", "domain", "version", "answer", "splits", "skill")]
    for name in tasks.names(args.domain):
        t = tasks.load(name)
        splits = " ".join(f"{k}={v}" for k, v in t.splits.items())
        rows.append((t.name, t.domain, t.version, t.answer_type, splits, t.skill))
    print(text_table(rows))
    print("\nsuites:\n" + "\n".join(f"  {k.ljust(7)} {v}" for k, v in tasks.SUITES.items()))
    from tasks import shifts
    print(f"\nshift dials (name a shift as SOURCE.DIALN, e.g. count_shapes.grid2; combine "
          f"dials: compare_count.background1.palette1; sources: {', '.join(shifts.SOURCES)}; "
          f"distances 1-3):")
    for name, dial in shifts.DIALS.items():
        print(f"  {name.ljust(10)} {dial.factor}")
    from tasks.benchmarks import BENCHMARKS
    print("\npublished benchmarks (local copies, --data-dir):")
    for b in BENCHMARKS.values():
        print(f"  {b.name.ljust(21)} {b.domain.ljust(3)}  {b.repo}  {b.skill}")


def _print_card(t) -> None:
    print(f"{t.name} (version {t.version}, {t.domain}, answer: {t.answer_type})")
    print(f"skill: {t.skill}\n\n{t.card}\n")
    print("splits: " + ", ".join(f"{k} {v}" for k, v in t.splits.items()))
    print("knobs:  " + ", ".join(f"{k}={v}" for k, v in t.params.items()))
    s = t.samples("test", 1)[0]
    print(f"\nexample {s.id}\n--- prompt\n{t.prompt(s)}\n--- target: {s.target}")
    print(f"--- solution\n{s.solution}\n--- reflective solution\n{s.solution_reflective}")


def _cmd_build_tiny(args) -> None:
    from trainers import tiny
    if not args.trained:
        out = tiny.build(args.out, size=args.size, seed=args.seed, arch=args.arch)
        print(f"wrote a tiny {args.arch} checkpoint ({args.size}, seed {args.seed}, random "
              f"weights: it answers nothing yet; --trained for one that does) to {out}")
        return
    out, scores = tiny.build_trained(args.out, size=args.size, seed=args.seed, arch=args.arch)
    print(f"\nwrote a tiny {args.arch} checkpoint ({args.size}, seed {args.seed}) trained "
          f"{tiny.TRAINED_STEPS} SFT steps on the ID tasks to {out}; its accuracy on 16 "
          "validation samples a task:")
    _print_scores(scores)


def _print_scores(rows: list[dict]) -> None:
    """Rows of a dynamics.jsonl (one checkpoint's): a task a line."""
    from harness.reports.tables import pct, text_table
    table = [("task", "split", "preset", "n", "acc %", "95% CI", "length")]
    for r in rows:
        lo, hi = r["acc_ci95"] or (None, None)
        table.append((r["task"], r["split"], r["preset"], str(r["n_samples"]), pct(r["acc"]),
                      "-" if lo is None else f"[{pct(lo)}, {pct(hi)}]",
                      f"{r['length_mean']:.1f}" if r.get("length_mean") is not None else "-"))
    print(text_table(table, right=(3, 4, 6)))


def _cmd_eval(args) -> None:
    import os
    if args.data_parallel < 1:
        raise VrbenchError(f"--data-parallel must be at least 1, not {args.data_parallel}.")
    if args.data_parallel > 1 and "RANK" not in os.environ:
        _torchrun(args.data_parallel, args.argv)
        return
    import tasks
    from harness.backends import takes_checkpoint
    from harness.backends.checkpoint import check_checkpoint
    from harness.flags import build
    from harness.runs.config import EvalConfig
    cfg = build(EvalConfig, args)
    cfg.check()  # bad values, tasks and paths: one sentence before torch is imported
    tasks.resolve(args.tasks, cfg.data_dir)
    if takes_checkpoint(cfg.backend):
        check_checkpoint(args.model)
    from harness.reports.plots import plot_shift_curves, shift_curves
    from harness.reports.tables import results_table, shift_table
    from harness.runs.ranks import setup_distributed
    from harness.runs.rundir import CONFIG, RESULTS, SAMPLES
    from harness.runs.runner import evaluate
    ranks = setup_distributed()
    out = evaluate(args.model, args.tasks, cfg, ranks=ranks)
    ranks.close()  # after a failure the process just ends: torchrun stops the others
    if not ranks.main:
        return
    print(results_table(out))
    if curves := shift_curves(out["results"]):
        figure = plot_shift_curves(curves, Path(out["run_dir"]) / "shifts.png")
        print(f"\naccuracy against shift distance (0: the source): {figure}")
        print(shift_table(curves))
    print(f"\nrun directory: {out['run_dir']} ({CONFIG}, {SAMPLES}, {RESULTS})")
    n_unrun = sum(r["n_errors"] for r in out["results"].values()) - out["n_grade_errors"]
    if n_unrun:
        from harness.runs.rundir import RunDir
        first = next(r.error for r in RunDir(out["run_dir"]).records()
                     if r.error and not r.grading_error)
        print(f"warning: {n_unrun} sample(s) could not be run and count as wrong; the first: "
              f"{first}. Each one's `error` in {SAMPLES} says why.", file=sys.stderr)
    if out["n_grade_errors"]:
        print(f"warning: the grader raised on {out['n_grade_errors']} sample(s); they are "
              "counted as errors (n_grade_errors), not as answers, and each one's `error` in "
              f"{SAMPLES} says what failed.", file=sys.stderr)


def _torchrun(n: int, argv: list[str]) -> None:
    """`vrbench eval --data-parallel N`: the same command as N ranks of torchrun on this
    machine (one GPU each where there are GPUs, else gloo on the CPU)."""
    import subprocess
    args = [a for i, a in enumerate(argv) if not (
        a.startswith("--data-parallel") or (i and argv[i - 1] == "--data-parallel"))]
    code = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={n}", "-m", "vrbench", *args]).returncode
    if code:
        raise SystemExit(code)


def _cmd_rescore(args) -> None:
    from harness.interop.rescore import rescore
    from harness.reports.tables import pct, text_table
    out = rescore(args.file, args.format, task=args.task, data_dir=args.data_dir,
                  model_name=args.model_name, output=args.output, root=args.root,
                  verdict_key=args.verdict_key, reflection_mode=args.reflection_mode,
                  reasoning_tags=tuple(args.reasoning_tags))
    rows = [("task", "n", "vrbench acc %", "other acc %", "agreement %", "kappa")]
    for task, r in out["results"].items():
        kappa = r.get("other_kappa")
        rows.append((task, str(r["n_samples"]), pct(r["acc"]), pct(r.get("other_acc")),
                     pct(r.get("other_agreement")), "-" if kappa is None else f"{kappa:.3f}"))
    print(text_table(rows, right=(1, 2, 3, 4, 5), rule=True))
    print(f"\n{out['n_disagreements']} disagreements listed in "
          f"{Path(out['run_dir']) / 'disagreements.jsonl'}; run directory: {out['run_dir']}")


def _cmd_serve(args) -> None:
    from harness.flags import build
    from harness.server import Limits, serve

    def ready(server):
        host, port = server.server_address[:2]
        print(f"serving {args.checkpoint} as {server.model_name!r} on "
              f"http://{host}:{port}/v1 (Ctrl-C stops)", flush=True)
    if not 0 <= args.port <= 65535:
        raise VrbenchError(f"--port must be in [0, 65535], not {args.port}.")
    serve(args.checkpoint, args.host, args.port, args.model_name, ready, build(Limits, args))


def _cmd_train(args) -> None:
    import json
    import os

    from harness.flags import build
    from trainers.config import RLConfig, SFTConfig
    if not args.model or not args.out:
        raise VrbenchError("--model and --out are required (or a --recipe that sets them).")
    cfg = build(SFTConfig if args.command == "sft" else RLConfig, args)
    cfg.check(int(os.environ.get("WORLD_SIZE", 1)))  # one sentence before torch is imported
    if args.dry_run:
        from trainers.config import config_dict
        resolved = {"trainer": args.command} | config_dict(cfg)
        if args.command == "rl":  # the objective it resolves to, named where it has a name
            from trainers.losses import describe
            resolved["objective"] = describe(cfg)
        print(json.dumps(resolved, indent=2))
        return
    if args.command == "sft":
        from trainers.sft import train
    else:
        from trainers.rl import train
    final = train(cfg)
    from harness.runs.store import read_jsonl
    out = Path(cfg.out)
    last = [r for r in read_jsonl(out / "dynamics.jsonl") if r["step"] == cfg.steps]
    log = [r for r in read_jsonl(out / "train_log.jsonl") if r["step"] == cfg.steps]
    if log:
        keys = ("loss", "reward_mean", "train_acc", "length_mean")
        print("\nlast step: " + ", ".join(f"{k} {log[-1][k]:.3f}" for k in keys
                                           if isinstance(log[-1].get(k), int | float)))
    if last:
        print(f"the final checkpoint, scored ({cfg.eval.final_limit or cfg.eval.limit or 'all'} "
              "samples a task):")
        _print_scores(last)
    print(f"\nfinal checkpoint: {final}\nlogs: {out / 'train_log.jsonl'}, dynamics: "
          f"{out / 'dynamics.jsonl'}, evaluation runs: {out / 'evals'}")


def _cmd_quickstart(args) -> None:
    from harness.flags import build
    from vrbench.config import QuickstartConfig
    cfg = build(QuickstartConfig, args)
    cfg.check()  # one sentence before torch is imported
    from vrbench.quickstart import run
    run(cfg)


def _cmd_dynamics(args) -> None:
    from harness.reports.plots import plot_dynamics
    print(f"wrote {plot_dynamics(args.runs, args.out, args.preset)}")


def _cmd_runs(args) -> None:
    from harness.reports.tables import text_table
    from harness.runs.index import index, printable, tasks_label
    rows = [("name", "step", "seed", "preset", "split", "tasks", "run")]
    for e in index(args.root):  # task versions: in each run's results.json
        rows.append((e.name, "-" if e.step is None else str(e.step), str(e.seed), e.preset,
                     e.split, tasks_label(list(e.tasks)), printable(str(e.run_dir))))
    print(text_table(rows))
    print(f"\n{len(rows) - 1} runs under {args.root}")


def _cmd_leaderboard(args) -> None:
    from harness.reports import leaderboard
    command = f"vrbench leaderboard --root {args.root} --out {args.out}" + (
        " --preset " + " ".join(args.preset) if args.preset else "") + (
        " --bundle" if args.bundle else "")
    verdicts = []
    if (claims_file := Path(args.root) / "claims.json").is_file():  # the quickstart's
        import json

        from harness.reports import claims
        verdicts = claims.sentences(json.loads(claims_file.read_text()))
    paths = leaderboard.write(args.root, args.out, command, args.preset, args.bundle,
                              args.force, verdicts)
    print(Path(paths["markdown"]).read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def _cmd_compare(args) -> None:
    import json

    from harness.reports import compare
    if len(args.runs) % 2:
        raise VrbenchError("name the runs in pairs: A B, or A1 B1 A2 B2 ... (one pair a seed).")
    runs_a, runs_b = args.runs[0::2], args.runs[1::2]
    rows = compare.compare(runs_a, runs_b, n_boot=args.bootstrap)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(compare.to_markdown(rows, ", ".join(runs_a), ", ".join(runs_b)))


def _cmd_kl(args) -> None:
    from harness.flags import build
    from harness.likelihood import kl
    from harness.runs.config import KLConfig
    cfg = build(KLConfig, args)
    result = kl.measure(args.base, args.checkpoints, args.tasks, cfg)
    print(kl.to_markdown(args.base, result))
    if args.output:
        print(f"\nwrote {kl.write(args.output, args.base, result, cfg)}")


def _cmd_analyze(args) -> None:
    from harness.reports import claims
    report = claims.write(args.roots, args.out)
    print(report.read_text())
    print(f"wrote {report} and its figures")


def _cmd_rewards(args) -> None:
    from importlib.util import find_spec
    path = find_spec("harness.scoring.rewards").origin
    if args.path:
        print(path)
        return
    print(f"""vrbench's grader as a reward function: {path}
  verl:   custom_reward_function.path={path} custom_reward_function.name=compute_score
          (or path=pkg://harness.scoring.rewards; any reward_manager: naive, batch, prime)
  EasyR1: worker.reward.reward_function={path}:compute_score  (a batch function)
  TRL:    from trainers.integrations import trl_reward; GRPOTrainer(reward_funcs=[trl_reward])
ground_truth: the target, a list of targets, or {{"target", "choices", "precision"}} (as JSON
text in a parquet column); vrbench export-verl / export-easyr1 write such datasets.""")


def _cmd_export_trainset(args) -> None:
    from harness.interop.trainsets import export
    fmt = args.command.removeprefix("export-")
    written = export(args.out, fmt, args.tasks, args.limit, args.data_dir)
    print(f"wrote {', '.join(f'{name} ({n} rows)' for name, n in written.items())} to "
          f"{args.out} for {fmt}; reward: vrbench rewards")


def _cmd_export_lmeval(args) -> None:
    from harness.interop.lmeval import export
    paths = export(args.out, args.tasks, args.split, args.limit, args.max_new_tokens)
    print("wrote " + ", ".join(p.name for p in paths) + f" to {args.out}; run them with\n"
          f"  lm_eval --model hf-multimodal --model_args pretrained=MODEL "
          f"--apply_chat_template --include_path {args.out} --tasks "
          + ",".join(p.stem for p in paths) + " --batch_size 1")


def _args_tasks(p) -> None:
    from tasks import DOMAINS
    p.add_argument("name", nargs="?", help="a task to show: card, knobs and an example")
    p.add_argument("--domain", choices=DOMAINS, help="only tasks of this domain")
    p.set_defaults(func=_cmd_tasks)


def _args_build_tiny(p) -> None:
    from trainers import tiny
    p.add_argument("out", help="output checkpoint directory")
    p.add_argument("--size", default="tiny", choices=tiny.SIZES)
    p.add_argument("--arch", default="qwen2_vl", choices=tiny.ARCHS,
                   help="architecture (default: qwen2_vl, the paper's family)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trained", action="store_true",
                   help="also train it (SFT on the ID tasks, about 40 s on 2 CPU cores at the "
                        "tiny size) so that it answers, and print its accuracy")
    p.set_defaults(func=_cmd_build_tiny)


def _args_eval(p) -> None:
    from harness import flags
    from harness.runs.config import EvalConfig
    p.add_argument("--model", required=True, help="checkpoint directory (or Hub id)")
    p.add_argument("--tasks", required=True,
                   help="comma-separated task names, shifts (count_shapes.grid2) or suites "
                        "(id, ood, far, shifts, all)")
    p.add_argument("--data-parallel", type=int, default=1, metavar="N",
                   help="run as N ranks of torchrun on this machine (one GPU each, or the "
                        "CPU); or start vrbench eval under torchrun yourself, any nodes")
    flags.add_options(p, EvalConfig)
    p.set_defaults(func=_cmd_eval)


def _args_train(p, name: str, within) -> None:
    """sft or rl; `within` is a recipe's configuration, whose values become the defaults."""
    from harness import flags
    from trainers import recipes
    from trainers.config import RLConfig, SFTConfig
    p.add_argument("--recipe", help="start from a configuration file: one of "
                                    f"{', '.join(recipes.names())} (trainers/recipes/), "
                                    "or a YAML path; flags override its fields")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved configuration and stop")
    flags.add_options(p, SFTConfig if name == "sft" else RLConfig, within=within,
                      required=() if within else ("model", "out"))
    p.set_defaults(func=_cmd_train)


def _args_quickstart(p) -> None:
    from harness import flags
    from vrbench.config import QuickstartConfig
    flags.add_options(p, QuickstartConfig)
    p.set_defaults(func=_cmd_quickstart)


def _args_dynamics(p) -> None:
    p.add_argument("runs", nargs="+", help="training output directories (with dynamics.jsonl)")
    p.add_argument("--out", default="dynamics.png", help="the PNG to write")
    p.add_argument("--preset", help="only this generation preset")
    p.set_defaults(func=_cmd_dynamics)


def _args_serve(p) -> None:
    from harness import flags
    from harness.server import Limits
    p.add_argument("checkpoint", help="checkpoint directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument("--model-name", help="the model id clients send (default: the checkpoint "
                                        "path)")
    flags.add_options(p, Limits)
    p.set_defaults(func=_cmd_serve)


def _args_rescore(p) -> None:
    from harness.analyzers import REFLECTION_MODES
    from harness.interop.rescore import FORMATS
    from harness.scoring import THINK
    p.add_argument("file", help="the responses: MathVista output_*.json, MATH-V outputs/*.jsonl, "
                                "LogicVista *-answers.json, lmms-eval --log_samples JSONL, or "
                                "a vrbench run")
    p.add_argument("--format", required=True, choices=FORMATS, help="which harness wrote it")
    p.add_argument("--task", help="the vrbench benchmark the responses answer (lmms-eval: "
                                  "required; mathvision: default mathvision_test; "
                                  "logicvista: default logicvista)")
    p.add_argument("--data-dir", help="local copies of published benchmarks, for answers a "
                                      "file lacks (default: $VRBENCH_DATA)")
    p.add_argument("--model-name", help="the row name in leaderboards (default: the file's "
                                        "name)")
    p.add_argument("--output", help="run directory (default: ROOT/rescore-<name>-<hash>)")
    p.add_argument("--root", default="runs", help="where run directories go (default: runs)")
    p.add_argument("--verdict-key", help="lmms-eval: the metric holding the verdict "
                                         "(default: the first boolean one)")
    p.add_argument("--reflection-mode", default="substring", choices=REFLECTION_MODES,
                   help="reflection-word matching (default: substring, the paper's)")
    p.add_argument("--reasoning-tags", nargs="+", default=list(THINK), metavar="TAG",
                   help="the reasoning block's opening and closing tags: the answer is read "
                        "after the block (default: <think> </think>)")
    p.set_defaults(func=_cmd_rescore)


def _args_export_lmeval(p) -> None:
    p.add_argument("out", help="output folder (pass it to lm_eval --include_path)")
    p.add_argument("--tasks", default="all", help="task names or suites (default: all)")
    p.add_argument("--split", help="split to export (default: each task's evaluation split, "
                                   "as vrbench eval scores it: ID validation, OOD test)")
    p.add_argument("--limit", type=int, help="first N samples of each task")
    p.add_argument("--max-new-tokens", type=int, default=256, help="max_gen_toks (default 256)")
    p.set_defaults(func=_cmd_export_lmeval)


def _args_rewards(p) -> None:
    p.add_argument("--path", action="store_true", help="print only the module's file path")
    p.set_defaults(func=_cmd_rewards)


def _args_export_trainset(p) -> None:
    p.add_argument("out", help="output folder (train.parquet, validation.parquet)")
    p.add_argument("--tasks", default="id", help="task names or suites (default: id)")
    p.add_argument("--limit", type=int, help="first N samples of each task and split")
    p.add_argument("--data-dir", help="local copies of published benchmarks (default: "
                                      "$VRBENCH_DATA)")
    p.set_defaults(func=_cmd_export_trainset)


def _args_runs(p) -> None:
    p.add_argument("--root", default="runs", help="results root (default: runs)")
    p.set_defaults(func=_cmd_runs)


def _args_leaderboard(p) -> None:
    p.add_argument("--root", default="runs", help="results root (default: runs)")
    p.add_argument("--out", default="leaderboard", help="output folder (default: leaderboard)")
    p.add_argument("--preset", nargs="+", help="only these generation presets")
    p.add_argument("--bundle", action="store_true",
                   help="copy the runs behind the rows (config, results, samples) into "
                        "OUT/runs, to publish the folder with its evidence")
    p.add_argument("--force", action="store_true",
                   help="write into OUT even if it holds files the leaderboard did not write "
                        "or a published (bundled) leaderboard")
    p.set_defaults(func=_cmd_leaderboard)


def _args_compare(p) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories A B; or A1 B1 A2 B2 ...: each pair trained from "
                        "one start (a seed), compared over all pairs")
    p.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    p.set_defaults(func=_cmd_compare)


def _args_kl(p) -> None:
    from harness import flags
    from harness.runs.config import KLConfig
    p.add_argument("base", help="the base checkpoint (it samples the responses)")
    p.add_argument("checkpoints", nargs="+", help="checkpoints to compare with it")
    p.add_argument("--tasks", required=True, help="task names or suites (id, ood, far, all)")
    p.add_argument("--output", help="also write the result to this JSON file")
    flags.add_options(p, KLConfig)
    p.set_defaults(func=_cmd_kl)


def _args_analyze(p) -> None:
    p.add_argument("roots", nargs="+", help="results roots or run directories")
    p.add_argument("--out", default="analysis", help="output folder (default: analysis)")
    p.set_defaults(func=_cmd_analyze)


# name, help, and the function that defines its arguments (imports happen there, so only the
# command being run pays for what its options need: `vrbench --help` imports no torch)
COMMANDS = (
    ("tasks", "list the registered tasks, or show one task's card", _args_tasks),
    ("build-tiny", "build a tiny reference VLM offline (Qwen2-VL by default; Qwen2.5-VL, "
                   "LLaVA, Idefics3)", _args_build_tiny),
    ("eval", "evaluate a checkpoint on tasks; resumable", _args_eval),
    ("sft", "supervised fine-tuning on worked solutions; torchrun-ready", _args_train),
    ("rl", "RL (Reinforce++ / GRPO family) with the harness's grader as reward; "
           "torchrun-ready", _args_train),
    ("quickstart", "the main job: build the tiny model, SFT warm start, then SFT vs RL arms, "
                   "all scored on ID and OOD", _args_quickstart),
    ("dynamics", "plot accuracy, length and reflection against step", _args_dynamics),
    ("serve", "serve a checkpoint over an OpenAI-compatible chat-completions API", _args_serve),
    ("rescore", "grade another harness's responses with vrbench's grader; keeps its verdicts "
                "beside, with agreement", _args_rescore),
    ("export-lmeval", "write lm-evaluation-harness task YAMLs (and their data) for vrbench "
                      "tasks", _args_export_lmeval),
    ("export-verl", "write tasks' train and validation rows as parquet in verl's layout",
     _args_export_trainset),
    ("export-easyr1", "write tasks' train and validation rows as parquet in EasyR1's layout",
     _args_export_trainset),
    ("rewards", "the reward module verl, EasyR1 and TRL call: its path and the config lines",
     _args_rewards),
    ("runs", "list the finished runs under a results root (the index)", _args_runs),
    ("leaderboard", "markdown, CSV and HTML leaderboard of a results root, seeds aggregated, "
                    "best entries marked", _args_leaderboard),
    ("compare", "paired comparison of two runs (or of pairs of runs, one pair a seed): "
                "bootstrap and McNemar", _args_compare),
    ("kl", "forward KL from a base checkpoint to others on a task's prompts, on the base's "
           "own samples, with an interval", _args_kl),
    ("analyze", "seed sensitivity, reflection vs length, ID-OOD generalisation: a markdown "
                "report with figures", _args_analyze),
)


def build_parser(recipe_defaults: dict | None = None,
                 only: str | None = None) -> argparse.ArgumentParser:
    """The command line; `recipe_defaults` (trainer -> config) makes a recipe's values the
    defaults of that trainer's flags. With `only` (a command's name, or "" for none), the
    other commands are listed by name and help but their arguments are not defined."""
    recipe_defaults = recipe_defaults or {}
    parser = argparse.ArgumentParser(
        prog="vrbench", allow_abbrev=False,
        description="Evaluate vision-language checkpoints on in-domain and out-of-domain "
                    "visual reasoning, with response length and reflection analysis.")
    parser.add_argument("--version", action="version", version=f"vrbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text, define in COMMANDS:
        p = sub.add_parser(name, help=text, allow_abbrev=False)  # --task is not --tasks
        if only is None or only == name:
            if define is _args_train:
                define(p, name, recipe_defaults.get(name))
            else:
                define(p)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("vrbench")
    except PackageNotFoundError:
        return "(not installed: run from its source)"


def _recipe_defaults(argv: list[str]) -> dict:
    """sft/rl with --recipe: that trainer's config as the recipe gives it."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("command", nargs="?")
    pre.add_argument("--recipe")
    known, _ = pre.parse_known_args(argv)
    if known.command not in ("sft", "rl") or not known.recipe:
        return {}
    from trainers import recipes
    from trainers.config import RLConfig, SFTConfig
    cls = SFTConfig if known.command == "sft" else RLConfig
    return {known.command: recipes.load(known.recipe, cls, known.command)}


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else argv
        parser = build_parser(_recipe_defaults(argv), argv[0] if argv else "")
    except VrbenchError as e:
        print(f"vrbench: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        args.func(args)
    except VrbenchError as e:
        print(f"vrbench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vrbench runs | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a process the pipe's signal ends
    except OSError as e:  # a path that cannot be read or written: one sentence too
        where = f" ({e.filename})" if e.filename else ""
        print(f"vrbench: error: {e.strerror or e}{where}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vrbench: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """The `vrbench` program: `main()`, then out as the interpreter would leave (other
    threads joined, exit handlers run, output flushed) but without tearing down every
    module and object it imported, which after torch and transformers takes 1-2 s of
    every command. Every file vrbench writes is closed (and synced) before its command
    returns."""
    code = main()
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left before the last lines: as main() says it
        os._exit(code or 141)
    except (OSError, ValueError):  # another closed stream: the interpreter's own way out
        sys.exit(code)
    os._exit(code)

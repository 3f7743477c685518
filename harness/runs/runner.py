"""The evaluation runner: tasks x backend -> a resumable run directory (`RunDir`).

Batches are fixed over the full ordered list of samples and each batch has its own seed,
so a run that is killed and started again produces exactly what an uninterrupted run does.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

import tasks as task_registry
from harness import stats
from harness.analyzers import AS_WRITTEN, Reading, check_tags
from harness.backends import (
    BACKENDS,
    Backend,
    GenerationConfig,
    Request,
    load_backend,
    takes_checkpoint,
)
from harness.backends.checkpoint import check_checkpoint
from harness.runs.config import EvalConfig
from harness.runs.metrics import suite_averages, summarize_groups, summarize_task
from harness.runs.provenance import checkpoint_info, model_sha256
from harness.runs.ranks import Dist
from harness.runs.rundir import RunDir, SampleRecord, graded
from harness.scoring import THINK
from harness.scoring.judge import Judge, JudgeSpec
from tasks import Sample, Task, decode_images
from tasks.spec import samples_hash
from vrbench.errors import VrbenchError
from vrbench.seeds import derive


@dataclass(frozen=True)
class RunSpec:
    """What defines a run: equal specs give equal results, and share a run directory."""

    model: str
    model_sha256: str | None
    tasks: dict  # name -> {version, domain, split, n_samples, data_sha256, answer_type}
    generation: dict
    preset: str | None
    split: str | None  # None: each task on its domain's evaluation split (`tasks`' split)
    limit: int | None
    batch_size: int
    reflection_mode: str
    backend: str
    endpoint: str | None = None  # the server's URL, for backends that call one
    judge: dict | None = None  # the optional LLM judge: model, endpoint, prompt hash
    loading: dict | None = None  # how the model was loaded, where not as by default: its
    # dtype, its spread over devices, its own code trusted
    reasoning_tags: list[str] | None = None  # the reasoning block's tags, where not <think>
    seeding: str | None = None  # "sample": a sampled run whose responses are seeded by their
    # sample (continuous batching), not by their batch

    def identity(self) -> str:
        spec = {k: v for k, v in self.__dict__.items()
                if k not in ("loading", "reasoning_tags", "seeding") or v is not None}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _record(task: Task, sample: Sample, prompt: str, responses=(),
            reading: Reading = AS_WRITTEN, error: str | None = None) -> SampleRecord:
    """A sample's record: its responses graded and analysed, or the `error` its input
    raised."""
    fields = {"n_images": len(sample.images),
              "categories": sample.meta.get("categories") or None,
              "group": sample.meta.get("group") or None,
              "scorer": sample.meta.get("scorer") or None}
    if error is not None:
        return SampleRecord(task.name, sample.id, sample.target, list(sample.choices), prompt,
                            error=error, **fields)
    return graded(task.name, sample.id, sample.target, sample.choices,
                  sample.meta.get("precision"), prompt,
                  [(r.text, r.n_tokens, r.finish_reason) for r in responses], reading,
                  **fields)


def evaluate(model: str, tasks: str | list[str | Task], cfg: EvalConfig | None = None, *,
             engine: Backend | None = None, progress_desc: str = "eval",
             ranks: Dist | None = None, **overrides) -> dict:
    """Evaluate `model` on `tasks`; returns the results dict (also in `<run>/results.json`).

    `tasks` are names, suites ("id", "ood", "all") or `Task` objects. `cfg` (or keyword
    overrides of its fields: `evaluate(m, "id", limit=64)`) says how; `engine` is a backend
    already made (a model in memory, a scripted one), else `cfg.backend` loads `model`.
    Running the same call again resumes the same run directory and never repeats or loses
    a sample. With `ranks` (under torchrun: `harness.runs.ranks.setup_distributed()`), every
    rank calls this: the batches are dealt to the ranks, and rank 0 merges their samples
    and writes results.json; every rank returns the results.
    """
    cfg = replace(cfg or EvalConfig(), **overrides)
    gen = cfg.generation(model)  # validates every setting
    judge = JudgeSpec(cfg.judge_model, cfg.judge_base_url) if cfg.judge_model else None
    task_list = _resolve_tasks(tasks, cfg.data_dir)
    backend_name = cfg.backend if engine is None else engine.name
    options = cfg.backend_options() if engine is None else {}
    if engine is None and takes_checkpoint(backend_name):
        check_checkpoint(model)
    splits = {t.name: cfg.split or t.eval_split() for t in task_list}
    work = [(t, s) for t in task_list for s in t.samples(splits[t.name], cfg.limit)]
    spec = _spec(model, cfg, gen, work, task_list, splits, backend_name, engine, judge)
    run = RunDir(cfg.output) if cfg.output else RunDir(
        Path(cfg.root) / f"{_slug(model)}-{spec.identity()[:12]}", cfg.root)
    group = ranks or Dist()
    batches = [work[i:i + cfg.batch_size] for i in range(0, len(work), cfg.batch_size)]
    # the same command started twice at once: the second waits, then finds the work done;
    # under torchrun, rank 0 holds the lock for all the ranks
    with run.opened(spec.identity()) if group.main else contextlib.nullcontext() as known:
        plan = None
        if group.main:
            if not known:
                run.write_config({"run_id": spec.identity(), **spec.__dict__, "checkpoint":
                                  checkpoint_info(model) if takes_checkpoint(backend_name)
                                  else None})
            plan = _plan(run, batches)
        # the fixed batches left, dealt to the ranks in turn: which rank runs a batch never
        # changes what it generates (each batch, or each sample, has its own seed)
        pending, done = group.broadcast(plan)
        mine = pending[group.rank::group.world]
        t_start, n_tokens = time.perf_counter(), 0
        if mine:
            engine = engine or load_backend(cfg.backend, model, **options)
            n_tokens = _generate([(b, batches[b]) for b in mine], engine, gen, cfg,
                                 None if judge is None else Judge(judge),
                                 partial(run.append, rank=None if group.world == 1
                                         else group.rank), done,
                                 tqdm(total=sum(len(batches[b]) for b in mine), unit="sample",
                                      desc=progress_desc,
                                      disable=not cfg.progress or not group.main))
        elapsed = time.perf_counter() - t_start
        per_rank = group.gather((sum(len(batches[b]) for b in mine), n_tokens,
                                 round(elapsed, 3)))  # all done
        out = _finish(run, work, task_list, gen.n, cfg, elapsed, per_rank) if group.main \
            else None
    return group.broadcast(out)


def _spec(model: str, cfg: EvalConfig, gen: GenerationConfig, work: list, task_list: list,
          splits: dict[str, str], backend: str, engine: Backend | None, judge: JudgeSpec | None
          ) -> RunSpec:
    streams = BACKENDS[backend].streams if engine is None else hasattr(engine, "stream")
    endpoint = cfg.base_url if engine is None else getattr(engine, "base_url", None)
    return RunSpec(
        model=str(Path(model).resolve()) if Path(model).exists() else model,
        model_sha256=model_sha256(model),
        tasks={t.name: {"version": t.version, "domain": t.domain, "split": splits[t.name],
                        "answer_type": t.answer_type,
                        "n_samples": sum(1 for x, _ in work if x is t),
                        "data_sha256": samples_hash([x for u, x in work if u is t])}
               for t in task_list},
        generation=gen.to_dict(), preset=cfg.preset, split=cfg.split, limit=cfg.limit,
        batch_size=cfg.batch_size, reflection_mode=cfg.reflection_mode, backend=backend,
        endpoint=endpoint, judge=None if judge is None else judge.to_dict(),
        loading=_loading(cfg),
        reasoning_tags=None if tuple(cfg.reasoning_tags) == THINK else list(cfg.reasoning_tags),
        seeding="sample" if gen.temperature > 0 and streams else None)


def _loading(cfg: EvalConfig) -> dict | None:
    """The loading settings that can change a response (the device a model runs on aside)."""
    non_default = {k: getattr(cfg, k) for k in ("dtype", "device_map", "trust_remote_code")
                   if getattr(cfg, k) != getattr(EvalConfig, k)}
    return non_default or None


def _plan(run: RunDir, batches: list[list]) -> tuple[list[int], set]:
    """The batches left, and of them the samples a kill left written (the run's writer, under
    its lock, drops first a line a kill cut short: no one else writes yet)."""
    run.repair()
    done = run.done()
    pending = [b for b, batch in enumerate(batches)
               if any((t.name, s.id) not in done for t, s in batch)]
    return pending, {(t.name, s.id) for b in pending for t, s in batches[b]} & done


def _finish(run: RunDir, work: list, task_list: list[Task], n_resp: int, cfg: EvalConfig,
            elapsed: float, per_rank: list[tuple]) -> dict:
    """The ranks' samples merged, every task summarised, results.json written."""
    run.merge_ranks({(t.name, s.id): i // cfg.batch_size for i, (t, s) in enumerate(work)})
    by_task: dict[str, list[SampleRecord]] = {t.name: [] for t in task_list}
    for r in run.first_records({(t.name, s.id) for t, s in work}):
        by_task[r.task].append(r)
    results = {t.name: summarize_task(by_task[t.name], n_resp, cfg.pass_k)
               | t.summarize([(r.group, r.acc) for r in by_task[t.name]], stats.wilson_interval)
               for t in task_list}
    groups = summarize_groups(results, {t.name: t.domain for t in task_list})
    return run.finish(results, groups | suite_averages(results),
                      timing={"seconds_this_session": round(elapsed, 3),
                              "generated_tokens_this_session": sum(n for _, n, _ in per_rank)},
                      distributed={"world_size": len(per_rank),
                                   "samples_generated_per_rank": [n for n, _, _ in per_rank],
                                   "seconds_per_rank": [t for _, _, t in per_rank]})


def _generate(pending, engine, gen: GenerationConfig, cfg: EvalConfig, judge: Judge | None,
              write: Callable[[list[SampleRecord]], None], done: set, bar) -> int:
    """Generate and score the pending batches, `write`-ing each batch's records as it
    finishes (in batch order); returns the number of generated tokens. A backend that can
    (`stream`) batches continuously, a batch's rows in flight (`--batch-size` prompts times
    their responses each): greedy responses are the static batches', without the wait for
    each batch's longest; a sampled response depends on the run's seed and its sample only
    (not on the batch size or the limit), and a row that ends frees its cache."""
    reading = Reading(cfg.reflection_mode, check_tags(cfg.reasoning_tags),
                      getattr(engine, "count_tokens", None))
    records: dict[int, dict[int, SampleRecord]] = {b: {} for b, _ in pending}
    order = iter(pending)
    head = next(order, None)
    n_tokens = 0

    def add(b: int, pos: int, rec: SampleRecord) -> None:
        nonlocal head
        records[b][pos] = rec
        while head is not None and len(records[head[0]]) == len(head[1]):
            kept = records.pop(head[0])
            write([kept[i] for i in range(len(head[1])) if kept[i].key not in done])
            bar.update(len(head[1]))
            head = next(order, None)

    def requests():
        for b, batch in pending:
            for pos, (t, s) in enumerate(batch):
                prompt = t.prompt(s)
                try:
                    request = Request(prompt, decode_images(s, cfg.max_image_pixels))
                except ValueError as e:
                    add(b, pos, _record(t, s, prompt, error=str(e)))
                    continue
                yield (b, pos, t, s, prompt), request, derive(cfg.seed, f"eval/{t.name}/{s.id}")

    def scored(key, resp) -> None:
        nonlocal n_tokens
        b, pos, t, s, prompt = key
        rec = _record(t, s, prompt, resp, reading)
        if judge is not None:
            rec.judge_correct = judge.verdicts(prompt, s.target, rec.resps)
        n_tokens += sum(r.n_tokens or 0 for r in resp)
        add(b, pos, rec)

    if hasattr(engine, "stream"):
        for key, resp in engine.stream(requests(), gen, cfg.batch_size * gen.n):
            scored(key, resp)
    else:  # a batch at a time, with its own seed
        for b, group in itertools.groupby(requests(), key=lambda item: item[0][0]):
            items = list(group)
            outs = engine.generate([r for _, r, _ in items],
                                   replace(gen, seed=derive(cfg.seed, "eval-batch", b)))
            for (key, _, _), resp in zip(items, outs, strict=True):
                scored(key, resp)
    bar.close()
    return n_tokens


def _resolve_tasks(spec, data_dir: str | None) -> list[Task]:
    if isinstance(spec, str):
        return task_registry.resolve(spec, data_dir)
    out = []
    for t in spec:
        out += [t] if isinstance(t, Task) else task_registry.resolve(t, data_dir)
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise VrbenchError("a task is named twice.")
    return out


def _slug(model: str) -> str:
    name = Path(model.rstrip("/")).name or "model"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

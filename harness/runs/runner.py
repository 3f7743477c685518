"""The evaluation runner: tasks x backend -> a resumable run directory.

A run directory holds `config.json` (everything needed to reproduce the run),
`samples.jsonl` (one line per sample, appended as batches finish) and `results.json`.
Batches are fixed over the full ordered list of samples and each batch has its own seed,
so a run that is killed and started again produces exactly what an uninterrupted run does.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from tqdm.auto import tqdm

import tasks as task_registry
from harness import analyzers
from harness.backends import Backend, GenerationConfig, Request, load_backend, takes_checkpoint
from harness.backends.hf import check_checkpoint
from harness.runs.config import EvalConfig
from harness.runs.metrics import summarize_groups, summarize_task
from harness.runs.ranks import Dist
from harness.runs.results import checkpoint_info, git_commit, model_sha256, package_versions
from harness.runs.store import (
    LOCK_FILE,
    append_jsonl,
    locked,
    read_jsonl,
    repair_jsonl,
    run_file,
    write_json_atomic,
    write_text_atomic,
)
from harness.scoring import grade
from harness.scoring.judge import Judge, JudgeSpec
from tasks import Sample, Task, decode_images
from tasks.spec import samples_hash
from vrbench.errors import VrbenchError


@dataclass(frozen=True)
class RunSpec:
    """What defines a run: equal specs give equal results, and share a run directory."""

    model: str
    model_sha256: str | None
    tasks: dict  # name -> {version, domain, split, n_samples, data_sha256, answer_type}
    generation: dict
    preset: str | None
    split: str
    limit: int | None
    batch_size: int
    reflection_mode: str
    backend: str
    endpoint: str | None = None  # the server's URL, for backends that call one
    judge: dict | None = None  # the optional LLM judge: model, endpoint, prompt hash

    def identity(self) -> str:
        body = json.dumps(self.__dict__, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


def _batch_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:4], "little")


def _score(task: Task, sample: Sample, prompt: str, responses, reflection_mode: str) -> dict:
    try:
        grades = [grade(r.text, sample.target, sample.choices or None,
                        sample.meta.get("precision")) for r in responses]
        analysis = [analyzers.analyze(r.text, r.n_tokens, r.finish_reason, reflection_mode)
                    | {"finish_reason": r.finish_reason} for r in responses]
    except Exception as e:  # a grader bug: recorded, counted, shown; never "wrong"
        return _errored(task, sample, prompt, f"grading failed: {type(e).__name__}: {e}",
                        responses, grading=True)
    correct = [g.correct for g in grades]
    return {
        "task": task.name, "doc_id": sample.id, "target": sample.target,
        "choices": sample.choices, "arguments": {"prompt": prompt,
                                                 "n_images": len(sample.images)},
        "resps": [r.text for r in responses],
        "filtered_resps": [g.extracted for g in grades],
        "correct": correct, "acc": sum(correct) / len(correct), "pass": any(correct),
        "graded_by": [g.rule for g in grades], "analysis": analysis, "error": None,
        **({"categories": sample.meta["categories"]} if sample.meta.get("categories") else {}),
        **({"group": sample.meta["group"]} if sample.meta.get("group") else {}),
        **({"precision": sample.meta["precision"]} if sample.meta.get("precision") is not None
           else {}),
    }


def _errored(task: Task, sample: Sample, prompt: str, error: str, responses=(),
             grading: bool = False) -> dict:
    """A sample that could not be scored: its input failed, or its grading raised (then its
    responses are kept, to grade again once the grader is fixed)."""
    return {"task": task.name, "doc_id": sample.id, "target": sample.target,
            "choices": sample.choices, "arguments": {"prompt": prompt,
                                                     "n_images": len(sample.images)},
            "resps": [r.text for r in responses], "filtered_resps": [], "correct": [],
            "acc": 0.0, "pass": False, "analysis": [], "error": error,
            **({"grading_error": True} if grading else {})}


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
    split, limit = cfg.split, cfg.limit
    work = [(t, s) for t in task_list for s in t.samples(split, limit)]
    spec = RunSpec(
        model=str(Path(model).resolve()) if Path(model).exists() else model,
        model_sha256=model_sha256(model),
        tasks={t.name: {"version": t.version, "domain": t.domain, "split": split,
                        "answer_type": t.answer_type,
                        "n_samples": sum(1 for x, _ in work if x is t),
                        "data_sha256": samples_hash([x for u, x in work if u is t])}
               for t in task_list},
        generation=gen.to_dict(), preset=cfg.preset, split=split, limit=limit,
        batch_size=cfg.batch_size, reflection_mode=cfg.reflection_mode, backend=backend_name,
        endpoint=options.get("base_url") or getattr(engine, "base_url", None),
        judge=None if judge is None else judge.to_dict())
    run_dir = (Path(cfg.output) if cfg.output
               else Path(cfg.root) / f"{_slug(model)}-{spec.identity()[:12]}")
    group = ranks or Dist()
    if group.main:
        _writable(run_dir)
    # the same command started twice at once: the second waits, then finds the work done;
    # under torchrun, rank 0 holds the lock for all the ranks
    with locked(run_dir / LOCK_FILE) if group.main else contextlib.nullcontext():
        samples_path = run_dir / "samples.jsonl"
        batches = [work[i:i + cfg.batch_size] for i in range(0, len(work), cfg.batch_size)]
        plan = None
        if group.main:
            _open_run(run_dir, spec,
                      checkpoint_info(model) if takes_checkpoint(backend_name) else None)
            for path in [samples_path, *_rank_files(run_dir)]:
                repair_jsonl(path)  # a line a kill cut short: no one else writes yet
            done = {(r["task"], r["doc_id"]) for r in _run_records(run_dir)}
            pending = [b for b, batch in enumerate(batches)
                       if any((t.name, s.id) not in done for t, s in batch)]
            # the batches left, and of them the samples a kill left written
            plan = (pending, {(t.name, s.id) for b in pending for t, s in batches[b]} & done)
        # the fixed batches left, dealt to the ranks in turn: which rank runs a batch never
        # changes what it generates (each batch has its own seed)
        pending, done = group.broadcast(plan)
        mine = pending[group.rank::group.world]
        out_path = samples_path if group.world == 1 else _rank_file(run_dir, group.rank)
        t_start, n_tokens = time.perf_counter(), 0
        if mine:
            engine = engine or load_backend(cfg.backend, model, **options)
            n_tokens = _generate([(b, batches[b]) for b in mine], engine, gen, cfg.seed,
                                 cfg.reflection_mode, cfg.max_image_pixels, cfg.batch_size,
                                 None if judge is None else Judge(judge), out_path, done,
                                 tqdm(total=sum(len(batches[b]) for b in mine), unit="sample",
                                      desc=progress_desc,
                                      disable=not cfg.progress or not group.main))
        elapsed = time.perf_counter() - t_start
        per_rank = group.gather((sum(len(batches[b]) for b in mine), n_tokens,
                                 round(elapsed, 3)))  # all done
        out = None
        if group.main:
            _merge_ranks(run_dir, {(t.name, s.id): i // cfg.batch_size
                                   for i, (t, s) in enumerate(work)})
            out = _summarize(run_dir, work, task_list, gen.n, cfg.pass_k)
            out["timing"] = {"seconds_this_session": round(elapsed, 3),
                             "generated_tokens_this_session": sum(n for _, n, _ in per_rank)}
            out["distributed"] = {"world_size": group.world,
                                  "samples_generated_per_rank": [n for n, _, _ in per_rank],
                                  "seconds_per_rank": [t for _, _, t in per_rank]}
            write_json_atomic(run_dir / "results.json", out)
    return group.broadcast(out)


def _summarize(run_dir: Path, work: list, task_list: list[Task], n: int,
               ks: tuple[int, ...]) -> dict:
    """The run's results from its samples (the first record of each wanted sample)."""
    wanted = {(t.name, s.id) for t, s in work}
    by_task: dict[str, list[dict]] = {t.name: [] for t in task_list}
    seen = set()
    for r in _sample_records(run_dir / "samples.jsonl"):
        key = (r["task"], r["doc_id"])
        if key in wanted and key not in seen:
            seen.add(key)
            by_task[r["task"]].append(r)
    results = {t.name: summarize_task(by_task[t.name], n, ks) | t.summarize(by_task[t.name])
               for t in task_list}
    return {
        "results": results,
        "groups": summarize_groups(results, {t.name: t.domain for t in task_list}),
        "versions": {t.name: t.version for t in task_list},
        "n-samples": {name: len(recs) for name, recs in by_task.items()},
        "n_grade_errors": sum(r["n_grade_errors"] for r in results.values()),
        "config": json.loads(run_file(run_dir / "config.json").read_text()),
        "run_dir": str(run_dir),
    }


def _rank_file(run_dir: Path, rank: int) -> Path:
    """Where one rank of a data-parallel run appends its samples until rank 0 merges them."""
    return run_dir / f"samples.rank-{rank}.jsonl"


def _rank_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("samples.rank-*.jsonl"))


def _run_records(run_dir: Path) -> list[dict]:
    """The samples a run holds: its samples.jsonl and what ranks wrote and did not merge
    (a run of any world size that was stopped)."""
    return [r for path in [run_dir / "samples.jsonl", *_rank_files(run_dir)]
            for r in _sample_records(path)]


def _merge_ranks(run_dir: Path, batch_of: dict) -> None:
    """Fold the ranks' files into samples.jsonl, in batch order and each sample once, as one
    process would have written it; the rank files go once it is safely replaced."""
    parts = _rank_files(run_dir)
    if not parts:
        return
    records, seen = [], set()
    for r in _run_records(run_dir):
        key = (r["task"], r["doc_id"])
        if key not in seen:
            seen.add(key)
            records.append(r)
    records.sort(key=lambda r: batch_of.get((r["task"], r["doc_id"]), len(batch_of)))
    write_text_atomic(run_dir / "samples.jsonl", "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    for path in parts:
        path.unlink()


def _generate(pending, engine, gen: GenerationConfig, seed: int, reflection_mode: str,
              max_pixels: int, slots: int,
              judge: Judge | None, samples_path: Path, done: set, bar) -> int:
    """Generate and score the pending batches, appending each batch's records as it
    finishes (in batch order); returns the number of generated tokens. Greedy decoding on a
    backend that can (`stream`) batches continuously, `slots` rows in flight: its responses
    are the static batches', without the wait for each batch's longest."""
    records: dict[int, dict[int, dict]] = {b: {} for b, _ in pending}
    order = iter(pending)
    head = next(order, None)
    n_tokens = 0

    def add(b: int, pos: int, rec: dict) -> None:
        nonlocal head
        records[b][pos] = rec
        while head is not None and len(records[head[0]]) == len(head[1]):
            kept = records.pop(head[0])
            append_jsonl(samples_path, [kept[i] for i in range(len(head[1]))
                                        if (kept[i]["task"], kept[i]["doc_id"]) not in done])
            bar.update(len(head[1]))
            head = next(order, None)

    def requests():
        for b, batch in pending:
            for pos, (t, s) in enumerate(batch):
                prompt = t.prompt(s)
                try:
                    request = Request(prompt, decode_images(s, max_pixels))
                except ValueError as e:
                    add(b, pos, _errored(t, s, prompt, str(e)))
                    continue
                yield (b, pos, t, s, prompt), request, _batch_seed(seed, b)

    def scored(key, resp) -> None:
        nonlocal n_tokens
        b, pos, t, s, prompt = key
        rec = _score(t, s, prompt, resp, reflection_mode)
        if judge is not None:
            rec["judge_correct"] = judge.verdicts(prompt, s.target, rec["resps"])
        n_tokens += sum(r.n_tokens or 0 for r in resp)
        add(b, pos, rec)

    if gen.temperature == 0 and hasattr(engine, "stream"):
        for key, resp in engine.stream(requests(), gen, slots):
            scored(key, resp)
    else:  # a batch at a time, with its own seed
        for b, group in itertools.groupby(requests(), key=lambda item: item[0][0]):
            items = list(group)
            outs = engine.generate([r for _, r, _ in items],
                                   replace(gen, seed=_batch_seed(seed, b)))
            for (key, _, _), resp in zip(items, outs, strict=True):
                scored(key, resp)
    bar.close()
    return n_tokens


# what summarising a run reads of each sample record, with its type
_RECORD = {"task": str, "doc_id": str, "target": str, "acc": (int, float), "pass": bool,
           "correct": list, "analysis": list, "resps": list}


def _sample_records(path: Path) -> list[dict]:
    records = read_jsonl(path)
    for i, r in enumerate(records):
        bad = [k for k, t in _RECORD.items() if not isinstance(r.get(k), t)]
        if bad:
            raise VrbenchError(f"record {i + 1} of {path} lacks a valid {bad[0]!r}; delete "
                               "that line (the run then redoes its sample) or the whole file.")
    return records


def _writable(run_dir: Path) -> None:
    """Create the run directory, or say in one sentence why it cannot be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VrbenchError(f"cannot create the run directory {run_dir} ({e.strerror}).") from e
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise VrbenchError(f"the run directory {run_dir} is not writable.")


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


def _open_run(run_dir: Path, spec: RunSpec, checkpoint: dict | None) -> None:
    """Create the run directory, or check that an existing one holds this same run."""
    cfg_path = run_dir / "config.json"
    if cfg_path.exists():
        try:
            old = json.loads(run_file(cfg_path).read_text())
        except json.JSONDecodeError as e:
            raise VrbenchError(f"{cfg_path} is not valid JSON; move it away to start over."
                               ) from e
        if old.get("run_id") != spec.identity():
            raise VrbenchError(f"{run_dir} holds a run with a different configuration; "
                               "choose another --output.")
        return
    if run_dir.exists() and any(not p.name.startswith(".") for p in run_dir.iterdir()):
        raise VrbenchError(f"{run_dir} exists and is not a vrbench run; choose another --output.")
    write_json_atomic(cfg_path, {
        "run_id": spec.identity(), **spec.__dict__,
        "checkpoint": checkpoint,
        "reflection_words": list(analyzers.REFLECTION_WORDS),
        "scorer": "rule-based (harness.scoring: boxed > answer tag > answer phrase > last "
                  "line; numeric, then math-verify)",
        "packages": package_versions(), "git_commit": git_commit(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    })

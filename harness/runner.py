"""The evaluation runner: tasks x backend -> a resumable run directory.

A run directory holds `config.json` (everything needed to reproduce the run),
`samples.jsonl` (one line per sample, appended as batches finish) and `results.json`.
Batches are fixed over the full ordered list of samples and each batch has its own seed,
so a run that is killed and started again produces exactly what an uninterrupted run does.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

import tasks as task_registry
from harness import analyzers, stats
from harness.backends import Backend, GenerationConfig, Request, load_backend
from harness.backends.hf import check_checkpoint
from harness.errors import VrbenchError
from harness.judge import Judge, JudgeSpec, agreement
from harness.scoring import grade
from harness.store import append_jsonl, locked, read_jsonl, write_json_atomic
from tasks import Sample, Task
from tasks.spec import samples_hash

# The paper's three evaluation settings, plus plain greedy decoding.
PRESETS: dict[str, dict] = {
    "greedy": {"n": 1, "temperature": 0.0, "top_p": 1.0},
    "pass8": {"n": 8, "temperature": 1.0, "top_p": 1.0},
    "pass1_t0.6": {"n": 1, "temperature": 0.6, "top_p": 1.0},
    "pass1_t0.01": {"n": 1, "temperature": 0.01, "top_p": 0.001},
}
CHECKPOINT_INFO = "vrbench_checkpoint.json"  # written by the trainers into each checkpoint
LOCK_FILE = ".lock"
PACKAGES = ("vrbench", "torch", "transformers", "tokenizers", "datasets", "pillow",
            "math-verify", "numpy")


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


def generation_settings(preset: str | None = None, **overrides) -> GenerationConfig:
    """A preset's settings with explicit values (not None) on top."""
    base = GenerationConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise VrbenchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
        base = replace(base, **PRESETS[preset])
    cfg = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if cfg.n < 1 or cfg.max_new_tokens < 1:
        raise VrbenchError("--samples and --max-new-tokens must be at least 1.")
    if cfg.temperature < 0 or not 0 < cfg.top_p <= 1:
        raise VrbenchError("temperature must be >= 0 and top-p in (0, 1].")
    if cfg.n > 1 and cfg.temperature == 0:
        raise VrbenchError("several samples per prompt need a temperature above 0.")
    return cfg


def model_sha256(path: str) -> str | None:
    """sha256 over a local checkpoint's files (names and bytes); None for a Hub id."""
    p = Path(path)
    if not p.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
        h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 23):
                h.update(chunk)
    return h.hexdigest()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def decode_images(sample: Sample) -> list[Image.Image]:
    """The sample's images as RGB; raises ValueError naming what is wrong."""
    out = []
    for i, im in enumerate(sample.images):
        try:
            if im.get("bytes"):
                img = Image.open(io.BytesIO(im["bytes"]))
            elif im.get("path"):
                img = Image.open(im["path"])
            else:
                raise ValueError("no bytes and no path")
            img.load()
            out.append(img.convert("RGB"))
        except Exception as e:
            raise ValueError(f"image {i} of {sample.id} could not be decoded ({e})") from e
    return out


def _batch_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:4], "little")


def _score(task: Task, sample: Sample, prompt: str, responses, reflection_mode: str) -> dict:
    grades = [grade(r.text, sample.target, sample.choices or None,
                    sample.meta.get("precision")) for r in responses]
    analysis = [analyzers.analyze(r.text, r.n_tokens, r.finish_reason, reflection_mode)
                | {"finish_reason": r.finish_reason} for r in responses]
    correct = [g.correct for g in grades]
    return {
        "task": task.name, "doc_id": sample.id, "target": sample.target,
        "choices": sample.choices, "arguments": {"prompt": prompt,
                                                 "n_images": len(sample.images)},
        "resps": [r.text for r in responses],
        "filtered_resps": [g.extracted for g in grades],
        "correct": correct, "acc": sum(correct) / len(correct), "pass": any(correct),
        "analysis": analysis, "error": None,
        **({"categories": sample.meta["categories"]} if sample.meta.get("categories") else {}),
        **({"group": sample.meta["group"]} if sample.meta.get("group") else {}),
    }


def _errored(task: Task, sample: Sample, prompt: str, error: str) -> dict:
    return {"task": task.name, "doc_id": sample.id, "target": sample.target,
            "choices": sample.choices, "arguments": {"prompt": prompt,
                                                     "n_images": len(sample.images)},
            "resps": [], "filtered_resps": [], "correct": [], "acc": 0.0, "pass": False,
            "analysis": [], "error": error}


def summarize_task(records: list[dict], n: int) -> dict:
    """Accuracy with its interval, plus the analyzers' behaviour statistics, for one task.
    Errored samples count as wrong (they are in the denominator) and are counted."""
    ok = [r for r in records if r["error"] is None]
    per_sample = [r["acc"] for r in records]
    out: dict = {"n_samples": len(records), "n_errors": len(records) - len(ok)}
    out |= stats.accuracy_summary(per_sample)
    targets = Counter(r["target"] for r in records)
    # the accuracy of always giving the most common answer: what "above chance" means
    out["majority_baseline"] = max(targets.values()) / len(records) if records else None
    if n > 1:
        passed = [r["pass"] for r in records]
        lo, hi = stats.wilson_interval(sum(passed), len(passed))
        out[f"pass@{n}"] = sum(passed) / len(passed) if passed else None
        out[f"pass@{n}_ci95"] = [lo, hi]
    responses = [a | {"correct": c} for r in ok for a, c in zip(r["analysis"], r["correct"],
                                                                 strict=True)]
    out |= analyzers.aggregate(responses)
    if any(r.get("categories") for r in records):
        out["by_category"] = by_category(records)
    judged = [r for r in ok if "judge_correct" in r]
    if judged:  # the LLM judge's verdicts beside the rule-based ones
        verdicts = [v for r in judged for v in r["judge_correct"]]
        out["judge_acc"] = sum(verdicts) / len(verdicts)
        out |= agreement([c for r in judged for c in r["correct"]], verdicts)
    return out


def _benchmark_summary(task: Task, records: list[dict]) -> dict:
    """A published benchmark's own extra results (We-Math's diagnosis)."""
    if task.benchmark is None:
        return {}
    from tasks.benchmarks import BENCHMARKS
    hook = BENCHMARKS[task.benchmark].summarize
    return {"diagnosis": hook(records)} if hook is not None and records else {}


def by_category(records: list[dict]) -> dict:
    """Accuracy per value of each category key (MathVerse versions, MathVista skills...);
    a list value (a sample with several skills) counts the sample under each."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in records:
        for key, value in (r.get("categories") or {}).items():
            for v in value if isinstance(value, list) else [value]:
                if v is not None and v != "":
                    acc.setdefault(key, {}).setdefault(str(v), []).append(r["acc"])
    return {k: {v: {"n": len(xs), "acc": sum(xs) / len(xs)} for v, xs in sorted(vals.items())}
            for k, vals in sorted(acc.items())}


def summarize_groups(results: dict, task_domains: dict[str, str]) -> dict:
    """Macro average of task accuracy per domain, with a 95% interval from the tasks'
    Agresti-Coull variances (an upper bound for scores in [0, 1], and never zero-width)."""
    groups = {}
    for dom in ("id", "ood"):
        names = [t for t, d in task_domains.items() if d == dom and results[t]["acc"] is not None]
        if not names:
            continue
        mean = sum(results[t]["acc"] for t in names) / len(names)
        se = sum(stats.agresti_coull_var(results[t]["acc"], results[t]["n_samples"])
                 for t in names) ** 0.5 / len(names)
        lengths = [results[t]["length_mean"] for t in names if "length_mean" in results[t]]
        groups[dom] = {"tasks": names, "acc": mean, "acc_stderr": se,
                       "acc_ci95": [max(0.0, mean - stats.Z95 * se),
                                    min(1.0, mean + stats.Z95 * se)],
                       "length_mean": sum(lengths) / len(lengths) if lengths else None}
    return groups


def evaluate(model: str, tasks: str | list[str | Task], *, split: str = "test",
             limit: int | None = None, preset: str | None = None, samples: int | None = None,
             temperature: float | None = None, top_p: float | None = None,
             max_new_tokens: int | None = None, batch_size: int = 16, seed: int = 0,
             output: str | Path | None = None, root: str | Path = "runs",
             backend: str | Backend = "hf", backend_options: dict | None = None,
             reflection_mode: str = "substring", judge: JudgeSpec | None = None,
             progress: bool = True, progress_desc: str = "eval") -> dict:
    """Evaluate `model` on `tasks`; returns the results dict (also in `<run>/results.json`).

    `tasks` are names, suites ("id", "ood", "all") or `Task` objects. Running the same call
    again resumes the same run directory and never repeats or loses a sample.
    """
    if limit is not None and limit < 1:
        raise VrbenchError("--limit must be at least 1.")
    if batch_size < 1:
        raise VrbenchError("--batch-size must be at least 1.")
    if reflection_mode not in analyzers.REFLECTION_MODES:
        raise VrbenchError(f"reflection mode must be one of {analyzers.REFLECTION_MODES}.")
    task_list = _resolve_tasks(tasks)
    gen = generation_settings(preset, n=samples, temperature=temperature, top_p=top_p,
                              max_new_tokens=max_new_tokens, seed=seed)
    backend_name = backend if isinstance(backend, str) else backend.name
    options = backend_options or {}
    if backend_name in ("hf", "vllm") and isinstance(backend, str):
        check_checkpoint(model)
    work = [(t, s) for t in task_list for s in t.samples(split, limit)]
    spec = RunSpec(
        model=str(Path(model).resolve()) if Path(model).exists() else model,
        model_sha256=model_sha256(model),
        tasks={t.name: {"version": t.version, "domain": t.domain, "split": split,
                        "answer_type": t.answer_type,
                        "n_samples": sum(1 for x, _ in work if x is t),
                        "data_sha256": samples_hash([x for u, x in work if u is t])}
               for t in task_list},
        generation=gen.to_dict(), preset=preset, split=split, limit=limit,
        batch_size=batch_size, reflection_mode=reflection_mode, backend=backend_name,
        endpoint=options.get("base_url") or getattr(backend, "base_url", None),
        judge=None if judge is None else judge.to_dict())
    run_dir = Path(output) if output else Path(root) / f"{_slug(model)}-{spec.identity()[:12]}"
    # the same command started twice at once: the second waits, then finds the work done
    with locked(run_dir / LOCK_FILE):
        _open_run(run_dir, spec, checkpoint_info(model) if backend_name != "openai" else None)

        samples_path = run_dir / "samples.jsonl"
        done = {(r["task"], r["doc_id"]) for r in read_jsonl(samples_path)}
        batches = [work[i:i + batch_size] for i in range(0, len(work), batch_size)]
        pending = [(b, batch) for b, batch in enumerate(batches)
                   if any((t.name, s.id) not in done for t, s in batch)]
        t_start, n_tokens = time.perf_counter(), 0
        if pending:
            engine = (load_backend(backend, model, **options) if isinstance(backend, str)
                      else backend)
            n_tokens = _generate(pending, engine, gen, seed, reflection_mode,
                                 None if judge is None else Judge(judge), samples_path, done,
                                 tqdm(total=sum(len(b) for _, b in pending), unit="sample",
                                      desc=progress_desc, disable=not progress))
        elapsed = time.perf_counter() - t_start

        wanted = {(t.name, s.id) for t, s in work}
        by_task: dict[str, list[dict]] = {t.name: [] for t in task_list}
        seen = set()
        for r in read_jsonl(samples_path):
            key = (r["task"], r["doc_id"])
            if key in wanted and key not in seen:
                seen.add(key)
                by_task[r["task"]].append(r)
        results = {t.name: summarize_task(by_task[t.name], gen.n) | _benchmark_summary(
            t, by_task[t.name]) for t in task_list}
        out = {
            "results": results,
            "groups": summarize_groups(results, {t.name: t.domain for t in task_list}),
            "versions": {t.name: t.version for t in task_list},
            "n-samples": {name: len(recs) for name, recs in by_task.items()},
            "config": json.loads((run_dir / "config.json").read_text()),
            "timing": {"seconds_this_session": round(elapsed, 3),
                       "generated_tokens_this_session": n_tokens},
            "run_dir": str(run_dir),
        }
        write_json_atomic(run_dir / "results.json", out)
    return out


def _generate(pending, engine, gen: GenerationConfig, seed: int, reflection_mode: str,
              judge: Judge | None, samples_path: Path, done: set, bar) -> int:
    """Generate and score the pending batches, appending each batch's records as it
    finishes; returns the number of generated tokens."""
    n_tokens = 0
    for b, batch in pending:
        records, live = [], []
        for t, s in batch:
            prompt = t.prompt(s)
            try:
                live.append((t, s, prompt, Request(prompt, decode_images(s))))
            except ValueError as e:
                records.append(_errored(t, s, prompt, str(e)))
        if live:
            outs = engine.generate([x[3] for x in live], replace(gen, seed=_batch_seed(seed, b)))
            for (t, s, prompt, _), resp in zip(live, outs, strict=True):
                rec = _score(t, s, prompt, resp, reflection_mode)
                if judge is not None:
                    rec["judge_correct"] = judge.verdicts(prompt, s.target, rec["resps"])
                records.append(rec)
                n_tokens += sum(r.n_tokens or 0 for r in resp)
        append_jsonl(samples_path, [r for r in records if (r["task"], r["doc_id"]) not in done])
        bar.update(len(batch))
    bar.close()
    return n_tokens


def _resolve_tasks(spec) -> list[Task]:
    if isinstance(spec, str):
        return task_registry.resolve(spec)
    out = []
    for t in spec:
        out += [t] if isinstance(t, Task) else task_registry.resolve(t)
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise VrbenchError("a task is named twice.")
    return out


def _slug(model: str) -> str:
    name = Path(model.rstrip("/")).name or "model"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def checkpoint_info(model: str) -> dict | None:
    """What a vrbench trainer recorded about the checkpoint (run name, trainer, step, epoch,
    seed), or None for any other model."""
    path = Path(model) / CHECKPOINT_INFO
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError as e:
        raise VrbenchError(f"{path} is not valid JSON; the checkpoint is damaged.") from e


def _open_run(run_dir: Path, spec: RunSpec, checkpoint: dict | None) -> None:
    """Create the run directory, or check that an existing one holds this same run."""
    cfg_path = run_dir / "config.json"
    if cfg_path.exists():
        try:
            old = json.loads(cfg_path.read_text())
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

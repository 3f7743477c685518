"""A run directory, owned here (the role lm-eval's `EvaluationTracker` plays): the one module
that knows a run's files and its sample record.

    config.json           what the run is (written once, when the run is claimed)
    samples.jsonl         one `SampleRecord` a line, appended as batches finish
    samples.rank-R.jsonl  rank R's samples while a data-parallel run is unfinished
    results.json          the metrics, written when the run finishes
    disagreements.jsonl   a rescored run's samples where the two graders differ
    .lock                 held by the run's one writer

`evaluate` and `rescore` claim, append to and finish a run through `RunDir`; the index,
`compare`, the leaderboard and the claims read it through `RunDir` too, and see each sample
as a `SampleRecord`. A run's files are regular files of their run: a symbolic link where one
belongs is never read through nor written through (`harness.runs.store`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import analyzers
from harness.runs.provenance import git_commit, package_versions
from harness.runs.store import (
    LOCK_FILE,
    append_jsonl,
    iter_jsonl,
    locked,
    make_dirs,
    no_link,
    repair_jsonl,
    run_file,
    write_json_atomic,
    write_text_atomic,
)
from harness.scoring import official
from vrbench.errors import VrbenchError

CONFIG, SAMPLES, RESULTS = "config.json", "samples.jsonl", "results.json"
DISAGREEMENTS = "disagreements.jsonl"
SCORER = ("rule-based (harness.scoring: boxed > answer tag > answer phrase > last line; "
          "numeric, then math-verify)")


@dataclass(slots=True)
class SampleRecord:
    """One sample of a run: its target, the responses and, per response, the verdict, the
    rule that decided it and the analyzers' reading. A line of samples.jsonl, named as
    lm-evaluation-harness names its per-sample logs."""

    task: str
    doc_id: str
    target: str
    choices: list[str] = field(default_factory=list)
    prompt: str = ""
    n_images: int | None = None
    resps: list[str] = field(default_factory=list)
    filtered_resps: list = field(default_factory=list)  # the answers read, per response
    correct: list[bool] = field(default_factory=list)
    graded_by: list[str] | None = None  # the rule that decided, per response
    analysis: list[dict] = field(default_factory=list)  # `analyzers.analyze`, per response
    error: str | None = None  # the sample could not be scored (its input, or its grading)
    grading_error: bool = False  # the grader raised: the responses are kept, to grade again
    categories: dict | None = None  # MathVerse's version, MathVista's skills, ...
    group: dict | None = None  # the problem several samples share (We-Math's sub-problems)
    scorer: dict | None = None  # a benchmark's own matching (`harness.scoring.official`)
    precision: int | None = None  # decimals a float answer is rounded to
    judge_correct: list[bool] | None = None  # an LLM judge's verdicts
    other_correct: list[bool] | None = None  # another harness's verdicts (rescore)
    other_extraction: str | None = None  # ... and the answer it read

    @property
    def key(self) -> tuple[str, str]:
        return self.task, self.doc_id

    @property
    def acc(self) -> float:
        """The share of the responses graded right (0 for an errored sample)."""
        return sum(self.correct) / len(self.correct) if self.correct else 0.0

    @property
    def passed(self) -> bool:
        return any(self.correct)

    def behaviour(self) -> list[dict]:
        """Per scored response, what the analyses read: its length (tokens, or words where
        the backend reported none), its reflection-word count, whether it reflects, and
        whether it is right."""
        return [{"length": a["n_tokens"] if a.get("n_tokens") is not None else a["n_words"],
                 "hits": sum(a["reflection_hits"].values()), "reflective": a["has_reflection"],
                 "correct": bool(ok)}
                for a, ok in zip(self.analysis, self.correct, strict=True)]

    def summary_view(self) -> SampleRecord:
        """This record without its texts: what a task's summary reads (`summarize_task`;
        the answers read only where pass@k and maj@k need them, several responses; the rules
        that decided, for the share a benchmark's own matching read)."""
        return dataclasses.replace(self, resps=[], prompt="", choices=[],
                                   other_extraction=None, filtered_resps=self.filtered_resps
                                   if len(self.correct) > 1 else [])

    def to_json(self) -> dict:
        out = {"task": self.task, "doc_id": self.doc_id, "target": self.target,
               "choices": self.choices,
               "arguments": {"prompt": self.prompt} | (
                   {} if self.n_images is None else {"n_images": self.n_images}),
               "resps": self.resps, "filtered_resps": self.filtered_resps,
               "correct": self.correct, "acc": self.acc, "pass": self.passed}
        if self.graded_by is not None:
            out["graded_by"] = self.graded_by
        out |= {"analysis": self.analysis, "error": self.error}
        for name in ("grading_error", "categories", "group", "scorer", "precision",
                     "judge_correct", "other_correct"):
            if getattr(self, name) not in (None, False, {}):
                out[name] = getattr(self, name)
        if self.other_correct is not None:
            out["other_extraction"] = self.other_extraction
        return out

    @classmethod
    def from_json(cls, d: dict, where: str, mend: str = "; delete that line (the run then "
                  "redoes its sample) or the whole file.") -> SampleRecord:
        """A record read back; one sentence naming `where` and the field when it is not one,
        with `mend` (what to do about it)."""
        for name, types in _FIELDS.items():
            value = d.get(name)
            if value is None and name not in _REQUIRED:
                continue
            if not isinstance(value, types) or isinstance(value, bool) or (
                    name == "resps" and not all(isinstance(t, str) for t in value)):
                raise VrbenchError(f"{where} lacks a valid {name!r}{mend}")
        if d.get("scorer") is not None and d["scorer"].get("name") not in official.SCORERS:
            raise VrbenchError(f"{where} lacks a valid 'scorer'{mend}")
        args = d.get("arguments")
        args = args if isinstance(args, dict) else {}
        return cls(
            task=d["task"], doc_id=d["doc_id"], target=d["target"],
            choices=[str(c) for c in d.get("choices") or []],
            prompt=str(args.get("prompt") or ""),
            n_images=args.get("n_images") if isinstance(args.get("n_images"), int) else None,
            resps=d["resps"], filtered_resps=list(d.get("filtered_resps") or []),
            correct=[bool(c) for c in d["correct"]], graded_by=d.get("graded_by"),
            analysis=d["analysis"], error=d.get("error"),
            grading_error=bool(d.get("grading_error")), categories=d.get("categories"),
            group=d.get("group"), scorer=d.get("scorer"), precision=d.get("precision"),
            judge_correct=d.get("judge_correct"), other_correct=d.get("other_correct"),
            other_extraction=d.get("other_extraction"))


# a record's fields as read back, with their types; the first ones every record has
_REQUIRED = ("task", "doc_id", "target", "correct", "analysis", "resps")
_FIELDS = {"task": (str,), "doc_id": (str,), "target": (str,), "correct": (list,),
           "analysis": (list,), "resps": (list,), "choices": (list,), "arguments": (dict,),
           "filtered_resps": (list,), "graded_by": (list,), "error": (str,),
           "categories": (dict,), "group": (dict,), "scorer": (dict,), "precision": (int,),
           "judge_correct": (list,), "other_correct": (list,)}


def graded(task: str, doc_id: str, target: str, choices: list[str], precision: int | None,
           prompt: str, responses: list[tuple[str, int | None, str | None]],
           reading: analyzers.Reading, **fields) -> SampleRecord:
    """The record of a sample's responses, each (text, tokens, finish reason), graded and
    analysed as `reading` says. A grader or analyzer that raises makes the sample an errored
    one that keeps its responses (a grader bug is recorded and counted, never taken for a
    wrong answer)."""
    texts = [text for text, _, _ in responses]
    base = SampleRecord(task, doc_id, target, list(choices or []), prompt, resps=texts,
                        precision=precision, **fields)
    try:
        grades = [official.grade(text, target, choices or None, precision, fields.get("scorer"),
                                 reading.tags) for text in texts]
        analysis = [analyzers.analyze(text, n, finish, reading)
                    | {"finish_reason": finish} for text, n, finish in responses]
    except Exception as e:
        return dataclasses.replace(base, error=f"grading failed: {type(e).__name__}: {e}",
                                   grading_error=True)
    return dataclasses.replace(base, filtered_resps=[g.extracted for g in grades],
                               correct=[g.correct for g in grades],
                               graded_by=[g.rule for g in grades], analysis=analysis)


class RunDir:
    """A run directory: opened by one writer under its lock, appended to a batch at a time,
    finished with its results; read by everyone else."""

    def __init__(self, path: str | Path, root: str | Path | None = None):
        """`root`: the output folder the user named, under which the run folder lies (None:
        the run folder itself is the one they named)."""
        self.path = Path(path)
        self.root = self.path if root is None else Path(root)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES

    def rank_path(self, rank: int) -> Path:
        """Where one rank of a data-parallel run appends its samples until they are merged."""
        return self.path / f"samples.rank-{rank}.jsonl"

    def _rank_paths(self) -> list[Path]:
        return sorted(self.path.glob("samples.rank-*.jsonl"))

    # -- the writer ------------------------------------------------------------------------
    def create(self) -> None:
        """Create the folder, or say in one sentence why it cannot be written."""
        try:
            make_dirs(self.path, self.root)
        except OSError as e:
            raise VrbenchError(f"cannot create the run directory {self.path} ({e.strerror})."
                               ) from e
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise VrbenchError(f"the run directory {self.path} is not writable.")

    @contextlib.contextmanager
    def opened(self, run_id: str) -> Iterator[bool]:
        """The folder created and its lock held (a second writer waits here until the first
        is done); yields whether it already holds the run `run_id` (see `claim`). A folder
        that holds something else is refused before anything, a lock file included, is
        written into it."""
        no_link(self.path, self.root)
        self.claim(run_id)
        self.create()
        with locked(self.path / LOCK_FILE):
            yield self.claim(run_id)

    def claim(self, run_id: str) -> bool:
        """Whether this folder already holds the run `run_id` (False: it is new, ready for its
        config). Another run, or a folder that is no run (a checkpoint, anything else), is
        refused in one sentence: a run is never written over something else."""
        cfg = self.path / CONFIG
        if cfg.exists():
            old = self.config()
            if not isinstance(old, dict) or "run_id" not in old:
                raise VrbenchError(f"{self.path} holds a config.json that is no vrbench run's "
                                   "(a model checkpoint?); choose another --output.")
            if old["run_id"] != run_id:
                raise VrbenchError(f"{self.path} holds a run with a different configuration; "
                                   "choose another --output.")
            return True
        if self.path.exists() and any(not p.name.startswith(".") for p in self.path.iterdir()):
            raise VrbenchError(f"{self.path} exists and is not a vrbench run; choose another "
                               "--output.")
        return False

    def write_config(self, config: dict) -> None:
        """config.json: `config` with what every run records (the reflection words, the
        scorer, the packages, the commit, the time)."""
        write_json_atomic(self.path / CONFIG, config | {
            "reflection_words": list(analyzers.REFLECTION_WORDS), "scorer": SCORER,
            "packages": package_versions(), "git_commit": git_commit(),
            "created": datetime.now(UTC).isoformat(timespec="seconds")})

    def repair(self) -> None:
        """Drop the last line a kill cut short, in every samples file (the writer only)."""
        for path in [self.samples_path, *self._rank_paths()]:
            repair_jsonl(path)

    def append(self, records: list[SampleRecord], rank: int | None = None) -> None:
        """Append records durably (to `rank`'s own file in a data-parallel run)."""
        append_jsonl(self.samples_path if rank is None else self.rank_path(rank),
                     [r.to_json() for r in records])

    def merge_ranks(self, order: dict[tuple[str, str], int]) -> None:
        """Fold the ranks' files into samples.jsonl, ordered by `order` (a sample's batch) and
        each sample once, as one process would have written it; the rank files go once
        samples.jsonl is safely replaced."""
        parts = self._rank_paths()
        if not parts:
            return
        records = list(_first_of_each(self.records(ranks=True)))
        records.sort(key=lambda r: order.get(r.key, len(order)))
        write_text_atomic(self.samples_path, "".join(
            json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records))
        for path in parts:
            path.unlink()

    def rewrite_samples(self, chunks: Iterable[list[SampleRecord]]) -> None:
        """Replace samples.jsonl by the records of `chunks`, written as they come into a new
        file that replaces the old one only once every chunk is in (a failure half-way
        leaves the old one as it was)."""
        partial = self.path / f".{SAMPLES}.partial"
        partial.unlink(missing_ok=True)
        try:
            for chunk in chunks:
                append_jsonl(partial, [r.to_json() for r in chunk])
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, run_file(self.samples_path))

    def write_disagreements(self, rows: list[dict]) -> Path:
        path = self.path / DISAGREEMENTS
        write_text_atomic(run_file(path), "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                  for r in rows))
        return path

    def finish(self, results: dict, groups: dict, **extra) -> dict:
        """results.json, from the per-task results and the domains' `groups`: with the
        tasks' versions and sample counts from the config, and `extra` (timing...)."""
        config = self.config()
        out = {"results": results, "groups": groups,
               "versions": {t: config["tasks"][t]["version"] for t in results},
               "n-samples": {t: r["n_samples"] for t, r in results.items()},
               "n_grade_errors": sum(r.get("n_grade_errors", 0) for r in results.values()),
               "config": config, "run_dir": str(self.path), **extra}
        write_json_atomic(self.path / RESULTS, out)
        return out

    # -- readers ---------------------------------------------------------------------------
    def config(self) -> dict:
        path = run_file(self.path / CONFIG, self.path)
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise VrbenchError(f"{path} is not valid JSON; move it away to start over.") from e

    def results(self) -> dict:
        """results.json as written (the index checks its parts)."""
        if not self.path.is_dir():
            raise VrbenchError(f"{self.path} does not exist or is not a folder.")
        try:
            return json.loads(run_file(self.path / RESULTS, self.path).read_text())
        except FileNotFoundError as e:
            raise VrbenchError(f"{self.path} has no {RESULTS}: it is not a finished vrbench "
                               "run.") from e
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise VrbenchError(f"{self.path / RESULTS} is not valid JSON.") from e

    def records(self, ranks: bool = False) -> list[SampleRecord]:
        """The samples the run holds, in file order (with `ranks`, also what ranks wrote and
        did not merge: a data-parallel run that was stopped)."""
        paths = [self.samples_path, *(self._rank_paths() if ranks else [])]
        return [r for path in paths for r in read_records(path)]

    def done(self) -> set[tuple[str, str]]:
        """The samples written, by (task, doc_id), the ranks' included."""
        return {r.key for r in self.records(ranks=True)}

    def first_records(self, wanted: set[tuple[str, str]]) -> Iterator[SampleRecord]:
        """The first record of each wanted sample, in file order."""
        return (r for r in _first_of_each(self.records()) if r.key in wanted)

    def copy_to(self, target: Path) -> None:
        """config.json, results.json and samples.jsonl gzipped (read back as samples.jsonl by
        every reader) into `target`: the run as a published bundle holds it."""
        target.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG, RESULTS):
            shutil.copyfile(run_file(self.path / name, self.path), target / name)
        (target / f"{SAMPLES}.gz").write_bytes(gzip.compress(
            run_file(self.samples_path, self.path).read_bytes(), mtime=0))

    @staticmethod
    def finished_under(root: Path) -> list[Path]:
        """The folders under `root` that hold a finished run (never through a linked folder)."""
        return [p.parent for p in sorted(root.rglob(RESULTS))]

    @staticmethod
    def samples_file(path: Path) -> Path:
        """A run's samples file, given the run or the file itself."""
        return path / SAMPLES if path.is_dir() else path


def read_records(path: Path, own: bool = True) -> Iterator[SampleRecord]:
    """The records of a samples file (someone else's with `own=False`: read, never
    repaired; its last line needs no newline)."""
    for n, d in enumerate(iter_jsonl(path, own), 1):
        yield SampleRecord.from_json(d, f"record {n} of {path}", *(
            () if own else (" (a vrbench sample has task, doc_id, target, resps and "
                            "correct).",)))


def _first_of_each(records: Iterable[SampleRecord]) -> Iterator[SampleRecord]:
    seen = set()
    for r in records:
        if r.key not in seen:
            seen.add(r.key)
            yield r

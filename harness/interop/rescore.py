"""`vrbench rescore FILE --format F`: another harness's responses, graded by vrbench.

Reads the responses a benchmark's own scripts or another harness produced, grades them with
vrbench's grader and analyzers (length, reflection), and writes an ordinary run directory:
`config.json`, `samples.jsonl` (each sample with the other harness's verdict beside
vrbench's, as `other_correct`), `results.json` (with `other_acc`, the agreement of the two
and Cohen's kappa) and `disagreements.jsonl`. Such runs enter `vrbench runs` and
`vrbench leaderboard` like any other, so numbers from several harnesses meet on one grader.

Formats:
  mathvista   MathVista's `output_*.json` (pid -> problem with `response`, `extraction`,
              `true_false`)
  mathvision  MATH-V's `outputs/*.jsonl` (`id`, `response`, `model_answer`, `correct`); the
              answers and options come from each line or from the task's local copy (--task,
              --data-dir)
  logicvista  LogicVista's `eval/answers/*-answers.json` (question id -> `answer`, whole
              transcripts included); the answers from the task's local copy (--data-dir)
  lmms-eval   lmms-eval's `--log_samples` JSONL (`doc_id`, `doc`, `resps`, a metric with the
              verdict); --task names the vrbench benchmark whose rows the docs are
  vrbench     a vrbench run's `samples.jsonl` (or its run directory), graded again
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.analyzers import Reading, check_tags
from harness.runs.metrics import suite_averages, summarize_groups, summarize_task
from harness.runs.rundir import RunDir, SampleRecord, graded, read_records
from harness.runs.store import iter_jsonl
from harness.scoring import THINK
from vrbench.errors import VrbenchError

FORMATS = ("mathvista", "mathvision", "logicvista", "lmms-eval", "vrbench")
OBJECT_FORMATS = ("mathvista", "logicvista")  # a file that is one JSON object, not lines
# what each format reads, as the messages about a file of another shape say it
SHAPES = {"mathvista": "MathVista's output file (one JSON object keyed by pid, as its "
                       "results/*/output_*.json)",
          "mathvision": "MATH-V's outputs/*.jsonl (a JSON object per line, with the "
                        "problem's id and the response)",
          "lmms-eval": "lmms-eval's --log_samples JSONL (a JSON object per line, with doc "
                       "and resps)",
          "logicvista": "LogicVista's eval/answers/*-answers.json (one JSON object keyed by "
                        "question id, each with its answer)",
          "vrbench": "a vrbench run's samples.jsonl (or its run directory)"}
CHUNK = 1000  # records graded and written at a time
DEFAULT_TASK = {"mathvista": "mathvista_testmini", "mathvision": "mathvision_test",
                "logicvista": "logicvista"}
WITHOUT_VERDICTS = ("logicvista",)  # formats whose files carry no verdict of their own
VERDICT_KEYS = ("true_false", "correct", "exact_match", "acc", "score", "scores")


@dataclass
class Item:
    """One response another harness produced, with its own verdict."""

    doc_id: str
    response: str
    target: str
    choices: list[str] = field(default_factory=list)
    precision: int | None = None
    prompt: str = ""
    other_correct: bool | None = None
    other_extraction: str | None = None
    categories: dict = field(default_factory=dict)
    task: str | None = None  # the vrbench task, where the file names it
    scorer: dict | None = None  # the benchmark's own matching (`harness.scoring.official`)


class _Window:
    """A text file read a block at a time, as the stretch of it the JSON decoder works in."""

    def __init__(self, f, block: int):
        self.f, self.block, self.text, self.eof = f, block, "", False
        self.dropped = 0  # characters of the file before `text`

    def more(self) -> bool:
        """Read on (as much again as is held, so a long value costs linear time)."""
        chunk = self.f.read(max(self.block, len(self.text)))
        self.eof, self.text = not chunk, self.text + chunk
        return bool(chunk)

    def forget(self, i: int) -> int:
        """Drop what lies before i once a block of it is decoded; i's place after."""
        if i < self.block:
            return i
        self.text, self.dropped = self.text[i:], self.dropped + i
        return 0


def _object_entries(path: Path, what: str, block: int = 1 << 20):
    """(key, value) of the JSON object a file holds, read a block and decoded an entry at a
    time: a large single-line output file is never held whole, nor as one tree of objects."""
    dec, space = json.JSONDecoder(), re.compile(r"\s*")
    with open(path, encoding="utf-8") as f:
        w = _Window(f, block)

        def skip(i: int) -> int:  # the next character that is not space, reading on for it
            while (j := space.match(w.text, i).end()) == len(w.text) and w.more():
                pass
            return j

        def value(i: int):  # a value that starts at i, read on until it ends before the edge
            while True:
                try:
                    v, j = dec.raw_decode(w.text, i)
                    if j < len(w.text) or w.eof:
                        return v, j
                except ValueError:  # JSONDecodeError is one; a cut value too, until the end
                    if w.eof:
                        raise
                w.more()

        try:
            i = skip(0)
            if w.text[i:i + 1] != "{":
                raise VrbenchError(f"{path} is not {what}.")
            i = skip(i + 1)
            while w.text[i:i + 1] != "}":
                key, i = value(i)
                i = skip(i)
                if w.text[i:i + 1] != ":":
                    raise ValueError(f"':' expected after the key {key!r}")
                entry, i = value(skip(i + 1))
                yield key, entry
                i = skip(w.forget(i))
                if w.text[i:i + 1] == ",":
                    i = skip(i + 1)
                elif w.text[i:i + 1] != "}":
                    raise ValueError(f"',' or '}}' expected after the entry {key!r}")
            end = skip(i + 1)
            if w.text[end:end + 1]:
                raise ValueError(f"text after the object's end at character {end + w.dropped}")
        except (ValueError, RecursionError) as e:
            where = (f"{e.msg} at character {e.pos + w.dropped}"
                     if isinstance(e, json.JSONDecodeError) else e)
            raise VrbenchError(f"{path} is not valid JSON ({where}).") from e


_TRUTH = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False,
          "correct": True, "incorrect": False}


def check_shape(path: Path, fmt: str) -> None:
    """Refuse, in one sentence that says what --format `fmt` reads, a file of another shape:
    not JSON at all, JSON Lines given as MathVista's one object, or one object given as
    JSON Lines. Reads the file's start only."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    text = head.lstrip()
    if not text:
        return  # no responses: said once they are read
    if text[0] not in "{[":
        begins = " ".join(text[:40].split())
        raise VrbenchError(f"{path} is not JSON (it begins {begins!r}); --format {fmt} reads "
                           f"{SHAPES[fmt]}.")
    first, newline, rest = text.partition("\n")
    try:
        line = json.loads(first)
    except (ValueError, RecursionError):  # not one whole line of JSON; the reader says why
        line = None
    whole_line = isinstance(line, dict)
    a_record = whole_line and not all(isinstance(v, dict) for v in line.values())
    if fmt in OBJECT_FORMATS and a_record and newline and rest.lstrip()[:1] == "{":
        raise VrbenchError(f"{path} holds JSON Lines (an object per line), not "
                           f"{SHAPES[fmt]}; a file of a response per line is --format "
                           "mathvision, lmms-eval or vrbench.")
    if fmt not in OBJECT_FORMATS and not whole_line:
        raise VrbenchError(f"the first line of {path} is not a JSON object, as in "
                           f"{SHAPES[fmt]}; one JSON object keyed by pid is --format mathvista.")


def _lacking(what: str, record, fields: tuple[str, ...], fmt: str) -> None:
    """Refuse a record without the fields its format must give, naming those it has."""
    if not isinstance(record, dict):
        raise VrbenchError(f"{what} is a {type(record).__name__}, not an object as in "
                           f"{SHAPES[fmt]}.")
    if missing := [k for k in fields if k not in record]:
        has = ", ".join(list(record)[:12]) or "none"
        raise VrbenchError(f"{what} lacks {' and '.join(map(repr, missing))} (its fields: "
                           f"{has}), which {SHAPES[fmt]} gives.")


def verdict(v) -> bool | None:
    """Another harness's verdict, read strictly: a boolean, 0 or 1, or a word that says so
    ("True", "false", "yes", "0"); anything else (None, NaN, 0.5, "maybe") is no verdict."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
        return bool(v) if v in (0, 1) else None
    if isinstance(v, str):
        return _TRUTH.get(v.strip().lower())
    return None


def _lines(path: Path) -> Iterator[dict]:
    return iter_jsonl(path, own=False)  # someone else's file: read, never repaired


def _letter_target(answer: str, choices: list[str]) -> str:
    from tasks.answers import LETTERS
    return LETTERS[choices.index(answer)] if answer in choices else answer


def read_mathvista(path: Path) -> Iterator[Item]:
    for pid, p in _object_entries(path, SHAPES["mathvista"]):
        _lacking(f"problem {pid} of {path}", p, ("question_type", "answer", "response"),
                 "mathvista")
        try:
            mc = p["question_type"] == "multi_choice"
            choices = [str(c) for c in p.get("choices") or []] if mc else []
            meta = p.get("metadata") or {}
            yield Item(
                str(pid), str(p.get("response") or ""),
                _letter_target(str(p["answer"]), choices), choices,
                int(p["precision"]) if p.get("answer_type") == "float"
                and p.get("precision") is not None else None, p.get("query") or "",
                verdict(p.get("true_false")), p.get("extraction"),
                {"task": meta.get("task"), "context": meta.get("context"),
                 "grade": meta.get("grade"), "skills": meta.get("skills"),
                 "question_type": p["question_type"]})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise VrbenchError(f"problem {pid} of {path} does not read as MathVista's "
                               f"({type(e).__name__}: {e}).") from e


def _task_rows(task: str, data_dir: str | None) -> dict[str, dict]:
    """The samples of a vrbench task by their published id (for answers and options)."""
    import tasks
    t = tasks.load(task, data_dir)
    split = next(iter(t.splits))
    return {s.id.split("-", 1)[1]: {"target": s.target, "choices": s.choices,
                                    "precision": s.meta.get("precision"),
                                    "categories": s.meta.get("categories") or {},
                                    "scorer": s.meta.get("scorer"), "prompt": t.prompt(s)}
            for s in t.samples(split)}


def read_mathvision(path: Path, task: str, data_dir: str | None) -> Iterator[Item]:
    with_answers = True
    for i, x in enumerate(_lines(path)):  # every line read, and checked, before the task
        _lacking(f"line {i + 1} of {path}", x, ("id", "response"), "mathvision")
        with_answers = with_answers and "answer" in x
    truth = None if with_answers else _task_rows(task, data_dir)
    for i, x in enumerate(_lines(path)):
        key = str(x.get("id"))
        if truth is not None and key not in truth:
            raise VrbenchError(f"line {i + 1} of {path}: id {key} is not in {task}.")
        row = truth[key] if truth is not None else {
            "target": str(x["answer"]), "choices": [str(o) for o in x.get("options") or []],
            "precision": None, "categories": {}, "prompt": ""}
        yield Item(key, str(x["response"] or ""), row["target"], row["choices"],
                   row["precision"], row["prompt"], verdict(x.get("correct")),
                   x.get("model_answer"), row["categories"])


def read_logicvista(path: Path, task: str, data_dir: str | None) -> Iterator[Item]:
    """LogicVista's published answers: question id -> {"answer": the model's text (a whole
    transcript for some models: the scorer reads the assistant's turn)}; the answers and
    skills from the task's local copy."""
    entries = list(_object_entries(path, SHAPES["logicvista"]))
    for qid, entry in entries:  # every entry checked before the task is read
        _lacking(f"question {qid} of {path}", entry, ("answer",), "logicvista")
    truth = _task_rows(task, data_dir)
    for qid, entry in entries:
        if qid not in truth:
            raise VrbenchError(f"question {qid} of {path} is not in {task}.")
        row = truth[qid]
        yield Item(qid, str(entry["answer"] or ""), row["target"], row["choices"], None,
                   row["prompt"], categories=row["categories"], scorer=row["scorer"])


def _verdict(line: dict, key: str | None):
    """The other harness's verdict in an lmms-eval sample line: a metric that is a boolean
    (or 0/1), or a dict holding one."""
    skip = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash",
            "prompt_hash", "target_hash", "input"}
    candidates = [key] if key else [k for k in line if k not in skip]
    for k in candidates:
        v = line.get(k)
        if isinstance(v, dict):
            v = next((v[x] for x in VERDICT_KEYS if x in v), None)
        if isinstance(v, list) and v:
            v = v[0]
        if isinstance(v, bool) or (isinstance(v, int | float) and v in (0, 1)):
            return verdict(v)
    return None


def read_lmms_eval(path: Path, task: str, verdict_key: str | None) -> Iterator[Item]:
    from tasks.benchmarks import BENCHMARKS
    if task not in BENCHMARKS:
        raise VrbenchError(f"--task must name the published benchmark the samples are of "
                           f"(one of {', '.join(BENCHMARKS)}), not {task!r}.")
    bench = BENCHMARKS[task]
    for i, x in enumerate(_lines(path)):
        _lacking(f"line {i + 1} of {path}", x, ("doc", "resps"), "lmms-eval")
        try:
            resps = x.get("filtered_resps") or x["resps"]
            while isinstance(resps, list):
                resps = resps[0] if resps else ""
            doc = dict(x["doc"]) | {"_index": x.get("doc_id", i)}
            row = bench.convert(doc, path.parent)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise VrbenchError(f"line {i + 1} of {path} is not an lmms-eval sample of {task} "
                               f"({type(e).__name__}: {e}).") from e
        yield Item(str(x.get("doc_id", i)), str(resps), row["target"], row["choices"],
                   row["meta"].get("precision"), row["question"], _verdict(x, verdict_key), None,
                   row["meta"].get("categories") or {})


def read_vrbench(path: Path) -> Iterator[Item]:
    for n, r in enumerate(read_records(path, own=False), 1):
        if len(r.correct) != len(r.resps):
            raise VrbenchError(f"record {n} of {path} is not a vrbench sample (it needs a "
                               "verdict per response).")
        for j, text in enumerate(r.resps):
            doc = r.doc_id if len(r.resps) == 1 else f"{r.doc_id}#{j}"
            yield Item(doc, text, r.target, r.choices, r.precision, r.prompt, r.correct[j],
                       (r.filtered_resps or [None] * (j + 1))[j], r.categories or {}, r.task)


def _record(item: Item, task: str, reading: Reading) -> SampleRecord:
    rec = graded(task, item.doc_id, item.target, item.choices, item.precision, item.prompt,
                 [(item.response, None, None)], reading,
                 categories=item.categories if any(item.categories.values()) else None,
                 scorer=item.scorer)
    if item.other_correct is not None:
        rec.other_correct, rec.other_extraction = [item.other_correct], item.other_extraction
    return rec


def _disagreement(r: SampleRecord) -> dict | None:
    """Where the two verdicts differ, the difference."""
    if r.other_correct is None or not r.correct or r.other_correct[0] == r.correct[0]:
        return None
    return {"task": r.task, "doc_id": r.doc_id, "target": r.target, "vrbench": r.correct[0],
            "vrbench_extracted": r.filtered_resps[0], "other": r.other_correct[0],
            "other_extracted": r.other_extraction, "response_tail": r.resps[0][-300:]}


def rescore(file: str | Path, fmt: str, *, task: str | None = None, data_dir: str | None = None,
            model_name: str | None = None, output: str | Path | None = None,
            root: str | Path = "runs", verdict_key: str | None = None,
            reflection_mode: str = "substring", reasoning_tags: tuple[str, ...] = THINK
            ) -> dict:
    """Grade another harness's responses, each answer read after the reasoning block
    `reasoning_tags` delimit; returns the results (also in results.json)."""
    reading = Reading(reflection_mode, check_tags(reasoning_tags))
    path = Path(file)
    task = task or DEFAULT_TASK.get(fmt)
    source, items = _read(path, fmt, task, data_dir, verdict_key)
    first = next(items, None)  # read before anything is written
    if first is None:
        raise VrbenchError(f"{path} holds no responses.")
    with open(source, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    name = model_name or path.stem.removeprefix("output_")
    config = _config(name, fmt, path, digest, reading)
    run = RunDir(output) if output else RunDir(
        Path(root) / f"rescore-{name}-{config['run_id'][:12]}", root)
    with run.opened(config["run_id"]) as known:  # never over another run or a checkpoint
        if not known:
            run.write_config(config | {"tasks": {}})
        # grading is cheap: it is all redone, into a new file that replaces the old one only
        # once every response is graded (a bad entry half-way loses nothing of a past run)
        kept: dict[str, list[SampleRecord]] = {}  # per task, what its summary reads
        disagree, seen = [], set()

        def chunks():
            items_ = itertools.chain([first], items)
            while chunk := [_record(i, i.task or task, reading)
                            for i in itertools.islice(items_, CHUNK)]:
                for r in chunk:
                    if r.key in seen:
                        raise VrbenchError(
                            f"{path} holds {r.task} {r.doc_id!r} more than once (a JSON "
                            "reader keeps one of them, the official scorer the last); "
                            "remove the others and rescore.")
                    seen.add(r.key)
                    kept.setdefault(r.task, []).append(r.summary_view())
                    if (row := _disagreement(r)) is not None:
                        disagree.append(row)
                yield chunk  # written as graded, never all held at once

        run.rewrite_samples(chunks())
        run.write_disagreements(disagree)
        domains = _domains(set(kept))
        run.write_config(config | {"tasks": {
            t: {"version": f"rescored:{fmt}", "domain": d, "split": "test",
                "n_samples": len(kept[t]), "data_sha256": digest} for t, d in domains.items()}})
        results = {t: summarize_task(kept[t], 1) for t in domains}
        unread = sum(r.other_correct is None for rs in kept.values() for r in rs)
        out = run.finish(results, summarize_groups(results, domains) | suite_averages(results),
                         n_disagreements=len(disagree), n_without_verdict=unread)
    if unread and fmt not in WITHOUT_VERDICTS:
        print(f"vrbench: warning: {unread} response(s) of {path} carry no verdict vrbench "
              "can read (a boolean, 0 or 1, or true/false); they are graded but left out of "
              "the agreement.", file=sys.stderr)
    return out


def _read(path: Path, fmt: str, task: str | None, data_dir: str | None,
          verdict_key: str | None) -> tuple[Path, Iterator[Item]]:
    """The file the responses are in, and its responses as read in `fmt`'s layout."""
    if fmt not in FORMATS:
        raise VrbenchError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    if not path.exists():
        raise VrbenchError(f"{path} does not exist.")
    if fmt == "lmms-eval" and not task:
        raise VrbenchError("--format lmms-eval needs --task (the benchmark of the samples).")
    source = RunDir.samples_file(path) if fmt == "vrbench" else path
    check_shape(source, fmt)
    if fmt == "mathvista":
        return source, read_mathvista(source)
    if fmt == "mathvision":
        return source, read_mathvision(source, task, data_dir)
    if fmt == "logicvista":
        return source, read_logicvista(source, task, data_dir)
    if fmt == "lmms-eval":
        return source, read_lmms_eval(source, task, verdict_key)
    return source, read_vrbench(source)


def _config(name: str, fmt: str, path: Path, digest: str, reading: Reading) -> dict:
    """A rescored run's config; its identity: the model's name, the format, the file's
    bytes and how responses are read."""
    config = {"model": name, "model_sha256": None, "preset": f"rescored:{fmt}", "split": "test",
              "generation": {}, "backend": f"rescore:{fmt}", "source": str(path.resolve()),
              "source_sha256": digest, "reflection_mode": reading.reflection_mode,
              "checkpoint": None}
    if reading.tags != THINK:  # other tags read other answers: another run
        config["reasoning_tags"] = list(reading.tags)
    config["run_id"] = hashlib.sha256(json.dumps({k: config[k] for k in (
        "model", "preset", "source_sha256", "reflection_mode", "reasoning_tags")
        if k in config}, sort_keys=True).encode()).hexdigest()
    return config


def _domains(names: set[str]) -> dict[str, str]:
    """Each task's domain: a published benchmark's, or "ood" for a name vrbench lacks."""
    import tasks
    from tasks.benchmarks import BENCHMARKS
    out = {}
    for n in sorted(names):
        if n in BENCHMARKS:
            out[n] = BENCHMARKS[n].domain
        else:
            try:
                out[n] = tasks.load(n).domain
            except VrbenchError:
                out[n] = "ood"
    return out

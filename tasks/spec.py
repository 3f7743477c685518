"""What a task is: a name, a version, a domain, splits of samples, a prompt and an answer type."""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from PIL import Image

from tasks import DOMAINS, EVAL_SPLIT
from tasks.answers import lettered
from tasks.synthetic import GENERATORS
from vrbench.errors import VrbenchError

if TYPE_CHECKING:
    import datasets

ANSWER_TYPES = ("integer", "number", "expression", "multiple_choice")
SPLITS = ("train", "validation", "test")
MAX_SPLIT = 1_000_000  # samples a split may hold (one is drawn whole before the next)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a task name is also a file name

# a split's columns (`datasets` is imported where a split is built: listing tasks needs none)
COLUMNS = ("id", "images", "question", "target", "choices", "solution", "solution_reflective",
           "meta")


_GENERATED: dict[str, _Draw] = {}  # a generated task's definition -> its splits, as drawn


def _dataset(columns, from_rows: bool = False) -> datasets.Dataset:
    """A split's columns (or its rows) as a `datasets.Dataset` of the task features."""
    import datasets
    build = datasets.Dataset.from_list if from_rows else datasets.Dataset.from_dict
    return build(columns, features=features())


@functools.cache
def features():
    """The columns as `datasets.Features`: images an `Image` list, choices a string list."""
    import datasets
    kind = {"images": datasets.List(datasets.Image()),
            "choices": datasets.List(datasets.Value("string"))}
    return datasets.Features({c: kind.get(c, datasets.Value("string")) for c in COLUMNS})


class _Draw:
    """A generated task's splits, drawn as far as they are asked for: each split from its own
    seeded stream (its first n samples are the same however many are drawn, and the test set
    never depends on the other sizes), a split only once the splits before it in the order
    test, validation, train are complete (no (image, question) pair repeats across splits).
    `data` holds the complete splits as `datasets.Dataset`s, built when asked for."""

    def __init__(self, task: Task):
        self.task = task
        self.order = [s for s in ("test", "validation", "train") if s in task.splits]
        self.data: dict[str, datasets.Dataset] = {}
        self._restart()

    def _restart(self) -> None:
        self.seen: set[str] = set()  # the keys of every sample drawn
        self.columns: dict[str, dict[str, list]] = {}
        self.streams: dict = {}

    def upto(self, split: str, n: int) -> dict[str, list]:
        """The split's columns, at least its first `n` samples (or all of it) drawn. A draw
        that fails starts over next time (and fails the same way: the streams are seeded)."""
        try:
            return self._upto(split, n)
        except BaseException:
            self._restart()
            raise

    def _upto(self, split: str, n: int) -> dict[str, list]:
        n = min(n, self.task.splits[split])
        for before in self.order[:self.order.index(split)]:
            self._upto(before, self.task.splits[before])
        columns = self.columns.setdefault(split, {k: [] for k in COLUMNS})
        stream = self.streams.setdefault(split, self._stream(split, columns))
        if n - len(columns["id"]) > 0:
            from tqdm.auto import tqdm
            with tqdm(total=n - len(columns["id"]), desc=f"{self.task.name}:{split}",
                      leave=False, disable=n - len(columns["id"]) < 2000) as bar:
                while len(columns["id"]) < n:
                    next(stream)
                    bar.update()
        return columns

    def _stream(self, split: str, rows: dict[str, list]):
        """Appends the split's next distinct sample to `rows` at each step."""
        t = self.task
        gen = GENERATORS[t.generator]
        rng = random.Random(f"{t.name}/{t.version}/{split}/{t.seed}")
        n, attempts = t.splits[split], 0
        while True:
            attempts += 1
            if attempts > 20 * n + 1000:
                raise VrbenchError(f"task {t.name!r} cannot produce {n} distinct "
                                   f"{split} samples with its parameters.")
            try:
                item = gen(rng, **t.params)
            except Exception as e:  # parameters of the right types, impossible values
                raise VrbenchError(f"task {t.name!r}: its generator {t.generator} "
                                   f"failed with its parameters ({type(e).__name__}: {e})."
                                   ) from e
            pngs = [_png(im) for im in item.images]
            key = hashlib.sha1(b"".join(pngs) + item.question.encode()).hexdigest()
            if key in self.seen:
                continue
            self.seen.add(key)
            rows["id"].append(f"{t.name}-{split}-{len(rows['id']):05d}")
            rows["images"].append([{"bytes": b, "path": None} for b in pngs])
            rows["question"].append(item.question)
            rows["target"].append(item.target)
            rows["choices"].append(item.choices)
            rows["solution"].append(item.solution)
            rows["solution_reflective"].append(item.solution_reflective)
            rows["meta"].append(json.dumps(item.meta, sort_keys=True))
            yield


@dataclass(frozen=True)
class Sample:
    """One problem. `images` hold raw encoded images ({"bytes", "path"}); the harness decodes
    them, so one corrupt image fails one sample, not the run."""

    id: str
    images: list[dict]
    question: str
    target: str
    choices: list[str] = field(default_factory=list)
    solution: str = ""
    solution_reflective: str = ""
    meta: dict = field(default_factory=dict)


@dataclass
class Task:
    name: str
    version: str
    domain: str
    answer_type: str
    prompt_template: str
    splits: dict[str, int]
    skill: str = ""  # what the task tests, in a phrase
    card: str = ""
    generator: str | None = None
    benchmark: str | None = None  # a published benchmark read from a local copy
    data_dir: str | None = None  # where that copy lies (default: $VRBENCH_DATA)
    source: dict | None = None  # the user's own data (a task YAML's `data`: `tasks.sources`)
    base: str | None = None  # the folder the source's paths are relative to (the YAML's)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    data: dict[str, datasets.Dataset] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise VrbenchError(f"task name {self.name!r} must be letters, digits, '_', '-' or "
                               "'.', starting with a letter or digit.")
        for split, n in self.splits.items():
            if split not in SPLITS or isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise VrbenchError(f"task {self.name!r}: splits must map {', '.join(SPLITS)} "
                                   f"to a number of samples >= 0, not {split!r}: {n!r}.")
            if n > MAX_SPLIT:
                raise VrbenchError(f"task {self.name!r}: its {split} split asks for {n:,} "
                                   f"samples; a split holds at most {MAX_SPLIT:,}.")
        if self.domain not in DOMAINS:
            raise VrbenchError(f"task {self.name!r} has domain {self.domain!r}; "
                               f"expected one of {', '.join(DOMAINS)}.")
        if self.answer_type not in ANSWER_TYPES:
            raise VrbenchError(f"task {self.name!r} has answer type {self.answer_type!r}; "
                               f"expected one of {', '.join(ANSWER_TYPES)}.")
        if self.generator is None and self.benchmark is None and self.source is None and \
                not self.data:
            raise VrbenchError(f"task {self.name!r} has neither a generator nor data.")
        if self.generator is not None and self.generator not in GENERATORS:
            raise VrbenchError(f"task {self.name!r} names unknown generator {self.generator!r}.")

    # -- data -------------------------------------------------------------------------------
    def dataset(self, split: str) -> datasets.Dataset:
        """The split as a `datasets.Dataset` with an `Image` feature (built on first use)."""
        if split not in self.data:
            made = self.generator or self.benchmark or self.source
            if not made or split not in self.splits:
                have = sorted(set(self.data) | set(self.splits if made else ()))
                raise VrbenchError(f"task {self.name!r} has no split {split!r} "
                                   f"(it has: {', '.join(have)}).")
            if self.source is not None:
                from tasks import sources
                self.data[split] = _dataset(sources.rows(self.source, split, Path(self.base),
                                                         self.name), from_rows=True)
            elif self.benchmark is not None:
                from tasks import benchmarks
                rows = benchmarks.rows(benchmarks.BENCHMARKS[self.benchmark], self.data_dir)
                self.data[split] = _dataset(rows, from_rows=True)
            else:
                draw = self._draw()
                if split not in draw.data:
                    draw.data[split] = _dataset(draw.upto(split, self.splits[split]))
                self.data = draw.data
        return self.data[split]

    def _draw(self) -> _Draw:
        """The generated splits: the same wherever the task's definition is, so drawn once a
        process (every checkpoint a trainer scores would otherwise redraw them)."""
        return _GENERATED.setdefault(self._definition(), _Draw(self))

    def _definition(self) -> str:
        """What a generated task's data depends on."""
        return json.dumps([self.name, self.version, self.generator, self.params, self.seed,
                           self.splits], sort_keys=True, default=str)

    def samples(self, split: str, limit: int | None = None) -> list[Sample]:
        """The split's first `limit` samples (all of them by default). A generated split is
        drawn only as far as that, without `datasets`."""
        n = self.splits.get(split, 0) if limit is None else max(0, limit)
        if self.generator is not None and split in self.splits and split not in self.data:
            columns = self._draw().upto(split, n)
            raw = [{k: columns[k][i] for k in COLUMNS} | {  # images a reader may not alter
                "images": [dict(im) for im in columns["images"][i]]}
                for i in range(min(n, len(columns["id"])))]
        else:
            ds = self.dataset(split)
            if limit is not None:
                ds = ds.select(range(min(limit, len(ds))))
            raw = ds.with_format("arrow")[:].to_pylist()  # images stay encoded
        return [Sample(id=r["id"], images=r["images"], question=r["question"],
                       target=r["target"], choices=list(r["choices"] or []),
                       solution=r["solution"] or "",
                       solution_reflective=r["solution_reflective"] or "",
                       meta=json.loads(r["meta"]) if r["meta"] else {}) for r in raw]

    def eval_split(self) -> str:
        """The split this task is scored on: its domain's (`tasks.EVAL_SPLIT`), or, for a task
        without that split, its one split (a published benchmark offers one)."""
        want = EVAL_SPLIT[self.domain]
        if want in self.splits or len(self.splits) != 1:
            return want
        return next(iter(self.splits))

    # -- prompting ---------------------------------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        """The text of the user turn: the template with the question and options filled in."""
        return self.prompt_template.replace("{question}", sample.question).replace(
            "{options}", lettered(sample.choices))

    def summarize(self, scored: list[tuple[dict | None, float]], interval) -> dict:
        """The task's own results beyond accuracy, from each scored sample's group (the
        `group` of its meta) and accuracy: a published benchmark's own figures, such as
        We-Math's diagnosis or DynaMath's worst case, a share's 95% interval by
        `interval(k, n)`; {} for most tasks."""
        if self.benchmark is None or not scored:
            return {}
        from tasks.benchmarks import BENCHMARKS
        hook = BENCHMARKS[self.benchmark].summarize
        return hook(scored, interval) if hook is not None else {}


# A task YAML's fields: (types, required).
YAML_FIELDS = {"name": ((str,), True), "version": ((str, int, float), True),
               "domain": ((str,), True), "answer_type": ((str,), True),
               "prompt_template": ((str,), True), "splits": ((dict,), False),
               "generator": ((str,), False), "params": ((dict,), False), "data": ((dict,), False),
               "skill": ((str,), False), "card": ((str,), False), "seed": ((int,), False)}


def task_from_yaml(path: str | Path) -> Task:
    """A task from its YAML file, checked field by field (names, types, split sizes, and the
    generator's own parameters) before anything is generated."""
    where = f"task file {path}"
    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VrbenchError(f"{where} is not valid YAML ({first}).") from e
    if not isinstance(spec, dict):
        raise VrbenchError(f"{where} must hold a mapping of fields ({', '.join(YAML_FIELDS)}), "
                           f"not a {type(spec).__name__}.")
    unknown = sorted(map(str, set(spec) - set(YAML_FIELDS)))
    if unknown:
        raise VrbenchError(f"{where} has unknown field(s) {', '.join(unknown)}; the fields are "
                           f"{', '.join(YAML_FIELDS)}.")
    for key, (types, required) in YAML_FIELDS.items():
        if key not in spec:
            if required:
                raise VrbenchError(f"{where} lacks the field {key!r}.")
            continue
        if isinstance(spec[key], bool) or not isinstance(spec[key], types):
            raise VrbenchError(f"{where}: {key} must be a "
                               f"{' or '.join(t.__name__ for t in types)}, not "
                               f"{spec[key]!r}.")
    spec["version"] = str(spec["version"])
    if ("generator" in spec) == ("data" in spec):
        raise VrbenchError(f"{where} must name a generator or its data (a data block), one of "
                           "the two.")
    if "data" in spec:  # the user's own rows: the splits are the data's
        if "splits" in spec or "params" in spec:
            raise VrbenchError(f"{where}: a task of its own data takes its splits from the "
                               "data block, and no generator parameters.")
        from tasks import sources
        base = Path(path).parent
        spec["source"] = sources.check(spec.pop("data"), where, base)
        spec["splits"] = dict.fromkeys(spec["source"]["splits"], 0)
        spec["base"] = str(base)
        return Task(**spec)
    if "splits" not in spec:
        raise VrbenchError(f"{where} lacks the field 'splits'.")
    if spec["generator"] not in GENERATORS:
        raise VrbenchError(f"{where} names unknown generator {spec['generator']!r}; the "
                           f"generators are {', '.join(GENERATORS)}.")
    check_params(spec["generator"], spec.get("params") or {}, where)
    return Task(**spec)


def check_params(generator: str, params: dict, where: str) -> None:
    """Every parameter is one the generator takes, of the kind its default has."""
    signature = inspect.signature(GENERATORS[generator])
    known = {n: p.default for n, p in signature.parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY}
    for name, value in params.items():
        if name not in known:
            raise VrbenchError(f"{where}: generator {generator} has no parameter {name!r}; it "
                               f"takes {', '.join(known)}.")
        if not _conforms(value, known[name]):
            raise VrbenchError(f"{where}: parameter {name} = {value!r} is not of the kind of "
                               f"its default, {known[name]!r}.")


def _conforms(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, tuple | list):
        if not isinstance(value, list | tuple) or not value:
            return False
        if len({type(d) for d in default}) > 1:  # a record, such as ("triangle", 3)
            return len(value) == len(default) and all(
                _conforms(v, d) for v, d in zip(value, default, strict=True))
        return not default or all(_conforms(v, default[0]) for v in value)
    return True


def decode_images(sample: Sample, max_pixels: int | None = None) -> list[Image.Image]:
    """The sample's images as RGB; raises ValueError naming what is wrong, an image of more
    than `max_pixels` pixels (width x height, read from its header) included."""
    out = []
    for i, im in enumerate(sample.images):
        try:
            if im.get("bytes"):
                img = Image.open(io.BytesIO(im["bytes"]))
            elif im.get("path"):
                img = Image.open(im["path"])
            else:
                raise ValueError("no bytes and no path")
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ValueError(f"{img.width}x{img.height} pixels, more than the "
                                 f"{max_pixels} allowed (--max-image-pixels)")
            img.load()
            if img.mode == "P" and "transparency" in img.info:  # as PIL asks, by way of RGBA
                img = img.convert("RGBA")
            out.append(img.convert("RGB"))
        except Exception as e:
            raise ValueError(f"image {i} of {sample.id} could not be decoded "
                             f"({readable(e)})") from e
    return out


def readable(e: Exception) -> str:
    """An exception's message without the reprs of the objects it names (PIL's "cannot
    identify image file <_io.BytesIO object at 0x...>")."""
    return " ".join(OBJECT_REPR.sub("", str(e)).split()) or type(e).__name__


OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def samples_hash(samples: list[Sample]) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.id, s.question, s.target, s.choices]).encode())
        for im in s.images:
            h.update(im.get("bytes") or (im.get("path") or "").encode())
    return h.hexdigest()


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()

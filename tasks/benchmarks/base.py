"""What every published benchmark shares: its description (`Benchmark`), the check of a row
against the columns it publishes, images read from a local copy (never from outside it), and
options written into a question's text."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tasks.answers import LETTERS
from vrbench.errors import VrbenchError

BOXED = "\nPut the final answer in \\boxed{}."
Interval = Callable[[int, int], tuple[float, float]]  # k right of n -> a 95% interval
IMAGE = "image"  # a column kind: an Image cell ({bytes, path}) or a path in the dataset
S, N = (str,), (str, None)  # the column kinds most columns have: text, or text or nothing


@dataclass(frozen=True)
class Benchmark:
    name: str
    repo: str
    split: str  # the published split the task reads
    domain: str
    answer_type: str
    convert: Callable[[dict, Path], dict]  # a published row -> question, target, ...
    skill: str  # what it tests, in a phrase
    columns: dict[str, tuple]  # published column -> its kinds (types, None, IMAGE)
    config: str | None = None  # the published config (subset)
    summarize: Callable[[list[tuple], Interval], dict] | None = None  # extra results from
    # each scored sample's (group, accuracy); shares get their intervals from the Interval
    select: Callable[[list[dict]], list[dict]] | None = None  # rows of a derived split
    optional: tuple[str, ...] = field(default=())  # columns an older copy may lack
    data_files: tuple[str, ...] = ()  # where the rows are when no card or file name says
    task_split: str = ""  # the split the task offers (default: testmini -> test, else the same)
    read: Callable[[Path], Iterator[tuple[dict, Path]]] | None = None  # a layout of its own:
    # each published row (in `columns`' names) and the folder its images are under

    @property
    def offered_split(self) -> str:
        return self.task_split or {"testmini": "test"}.get(self.split, self.split)


def _kind_name(k) -> str:
    return {IMAGE: "an image", None: "empty"}.get(k, getattr(k, "__name__", str(k)))


def check_row(row: dict, columns: dict[str, tuple], optional: tuple[str, ...], where: str
              ) -> None:
    """Every published column is present with one of its kinds."""
    for name, kinds in columns.items():
        if name not in row:
            if name in optional:
                continue
            raise VrbenchError(f"{where} lacks the column {name!r}; is it a copy of the "
                               "published dataset?")
        value = row[name]
        ok = any((k is None and value is None)
                 or (k is IMAGE and (isinstance(value, str) or (isinstance(value, dict) and (
                     value.get("bytes") or value.get("path")))))
                 or (isinstance(k, type) and isinstance(value, k) and not isinstance(value, bool))
                 for k in kinds)
        if not ok:
            raise VrbenchError(f"{where}: column {name!r} is {repr(value)[:60]}, not "
                               f"{' or '.join(_kind_name(k) for k in kinds)}.")


def _image(value, root: Path) -> dict | None:
    """A published image cell (an Image feature's {bytes, path}, or a path relative to the
    dataset folder, or inside a zip archive of it) as raw {bytes, path}."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        if value.get("bytes"):
            return {"bytes": value["bytes"], "path": None}
        value = value.get("path")
        if not value:
            return None
    return _inside(root, str(value))


def _inside(root: Path, rel: str) -> dict:
    """The file `rel` names under the dataset folder `root` (or in a zip archive there); a
    path that is absolute or leads outside the dataset (through `..` or a link) is refused,
    so a row can never make vrbench read, and send to a model, a file from elsewhere."""
    home = root.parent.parent if root.parent.name == "snapshots" else root  # hub cache: blobs
    p = root / rel
    if Path(rel).is_absolute() or ".." in Path(rel).parts or not p.resolve().is_relative_to(
            home.resolve()):
        raise VrbenchError(f"an image path in the local copy under {root} leads outside it "
                           f"({rel!r}); refusing to read it.")
    if p.is_file():
        return {"bytes": p.read_bytes(), "path": None}
    for sub in sorted(d for d in root.iterdir() if d.is_dir()):  # an unpacked image folder
        if (sub / rel).is_file() and (sub / rel).resolve().is_relative_to(home.resolve()):
            return {"bytes": (sub / rel).read_bytes(), "path": None}
    for archive in sorted(root.glob("*.zip")):  # images published as a zip (MM_Math, We-Math)
        with zipfile.ZipFile(archive) as z:
            name = next((n for n in z.namelist() if n == rel or n.endswith("/" + rel)), None)
            if name is not None:
                return {"bytes": z.read(name), "path": None}
    return {"bytes": None, "path": str(p)}  # missing: the sample is reported as errored


def first_image(row: dict, root: Path, *keys: str) -> list[dict]:
    for k in keys:
        v = row.get(k)
        if isinstance(v, list):
            ims = [x for x in (_image(i, root) for i in v) if x]
            if ims:
                return ims
        elif (im := _image(v, root)) is not None:
            return [im]
    return []


# -- options --------------------------------------------------------------------------------
def split_options(text: str) -> list[str]:
    """Options written as "A. 45° B. 60° ;C. 120°", "A:2\\nB:4" or "(A) x (B) y": the text
    between consecutive letter markers, in order from A. A letter the text skips ("C. No.;
    F. ...") gets an empty option, so that the letters keep their places; [] when the text
    holds no such list."""
    pos, spans = 0, []
    while True:
        # a marker is followed by its option's text, not by a separator: "Shape ;C.;" is
        # the end of an option (the text "Shape C." with a stray ";"), not option C
        nxt = [(m.start(), m.end(), letter) for letter in LETTERS[len(spans):len(spans) + 4]
               if (m := re.compile(rf"(?:^|(?<=[\s;；,(]))\(?{letter}\s*(?:[.:：)]|\)\s)"
                                   rf"(?!\s*[;；]|\s*$)").search(text, pos))]
        if not nxt or (not spans and nxt[0][2] != "A"):
            break
        start, end, letter = min(nxt)
        while len(spans) < LETTERS.index(letter):
            spans.append(None)  # a letter the text skips
        spans.append((start, end))
        pos = end
    marks = [x for x in spans if x]
    texts = iter(text[end:nxt[0]].strip().strip(";；").strip()
                 for (_, end), nxt in zip(marks, [*marks[1:], (len(text), None)], strict=True))
    out = ["" if x is None else next(texts) for x in spans]
    return out if len(marks) >= 2 and all(out[i] for i, x in enumerate(spans) if x) else []


def inline_choices(text: str) -> list[str]:
    """Options written into a MathVerse question after "Choices:" (or "Choice:")."""
    m = re.search(r"Choices?\s*[:：]", text, re.I)
    return split_options(text[m.end():]) if m else []

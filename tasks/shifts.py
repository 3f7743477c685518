"""Shift dials: controlled shifts of the in-domain tasks, one factor at a time, with a distance.

A shifted task is named after its source task and its dials, each a factor and a distance
from 1 (near) to 3 (far): `count_shapes.grid2` is count_shapes on a 5x5 grid,
`compare_count.background1.palette1` shifts two factors at once. Distance 0 is the source
itself. The skill a shifted task asks for is its source's; only how the problem looks or
is worded moves, so accuracy against distance says how far what a model learned carries.

    >>> import tasks
    >>> tasks.load("count_shapes.background2").params["background"]
    'gray'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks import render
from vrbench.errors import VrbenchError

VERSION = "1"  # of the dial definitions: part of every shifted task's version
DISTANCES = (1, 2, 3)
SOURCES = ("count_shapes", "compare_count", "sides_sum")  # the in-domain tasks with dials
INSTRUCTION = "Put the final answer in \\boxed{}."  # the source tasks' answer instruction


@dataclass(frozen=True)
class Dial:
    factor: str  # what it changes, in words
    levels: dict[str, tuple[dict, dict, dict]]  # source task -> overrides at distance 1, 2, 3


def _each(*levels: dict) -> dict[str, tuple[dict, dict, dict]]:
    return dict.fromkeys(SOURCES, levels)


DIALS: dict[str, Dial] = {
    "background": Dial("background colour: cream, grey, slate (white in training)", _each(
        {"background": "cream"}, {"background": "gray"}, {"background": "slate"})),
    "palette": Dial("paler shapes: their colours mixed with 25%, 45%, 65% white", _each(
        {"tint": 0.25}, {"tint": 0.45}, {"tint": 0.65})),
    "grid": Dial("a larger grid of the same cells: 4x4, 5x5, 6x6 (3x3 in training)", _each(
        {"cols": 4, "rows": 4}, {"cols": 5, "rows": 5}, {"cols": 6, "rows": 6})),
    "shape": Dial("shapes never drawn in training: triangles, then diamonds (sides_sum: "
                  "diamonds, upside-down triangles)", {
        "count_shapes": ({"shapes": ["circle", "square", "triangle"]},
                         {"shapes": ["circle", "triangle"]}, {"shapes": ["triangle", "diamond"]}),
        "compare_count": ({"shapes": ["circle", "square", "triangle"]},
                          {"shapes": ["circle", "triangle"]}, {"shapes": ["triangle", "diamond"]}),
        "sides_sum": ({"sides": [["triangle", 3], ["diamond", 4]]},
                      {"sides": [["triangle_down", 3], ["square", 4]]},
                      {"sides": [["triangle_down", 3], ["diamond", 4]]}),
    }),
    "count": Dial("answers past the training range: counts 3-5, 4-6, 5-7 (1-4 in training), "
                  "differences to 4, 5, 6 (3), 3-5 to 5-7 polygons (2-4)", {
        "count_shapes": ({"target_range": [3, 5]}, {"target_range": [4, 6]},
                         {"target_range": [5, 7], "max_objects": 8}),
        "compare_count": ({"min_diff": 2, "max_diff": 4}, {"min_diff": 3, "max_diff": 5},
                          {"min_diff": 4, "max_diff": 6, "max_less": 1}),
        "sides_sum": ({"n_range": [3, 5]}, {"n_range": [4, 6]}, {"n_range": [5, 7]}),
    }),
    "phrasing": Dial("the question in new words", {
        "count_shapes": tuple({"phrasings": [p]} for p in (
            "How many {color} {shapes} are in the picture?",
            "Count the {color} {shapes}. How many are there?",
            "What is the number of {color} {shapes} in the image?")),
        "compare_count": tuple({"phrasings": [p]} for p in (
            "How many more {a} shapes than {b} shapes are in the picture?",
            "By how many does the number of {a} shapes exceed the number of {b} shapes?",
            "What is the difference between the number of {a} shapes and the number of {b} "
            "shapes?")),
        "sides_sum": tuple({"phrasings": [p]} for p in (
            "How many sides do the shapes in the image have in total?",
            "What is the total number of sides of all the shapes?",
            "Add up the sides of every shape in the picture. What is the total?")),
    }),
    "format": Dial("the answer instruction in new words", _each(*(
        {"instruction": i} for i in ("Write the final answer in \\boxed{}.",
                                     "Give the answer as a number in \\boxed{}.",
                                     "Reply with the final answer only.")))),
}

# The OOD macro, the OOD number of the verdict: each source under three near shifts, of how
# the objects look (palette), which objects there are (shape) and which answers are asked
# for (count), at the distance where the quickstart's warm start stays above the
# most-common-answer baseline and below its source (tests/test_published.py checks the
# published one). Cream and grey backgrounds leave the warm start's accuracy where it is,
# and slate takes it below the baseline: the background dial is a cliff, not a slope.
MACRO = tuple(f"{s}.{d}" for s in SOURCES for d in ("palette1", "shape1", "count1"))

PART = re.compile(r"([a-z]+)([0-9]+)")


def parse(name: str) -> tuple[str, list[tuple[str, int]]] | None:
    """(source, [(dial, distance), ...]) of a shifted task's name; None for any other name.
    Raises VrbenchError for a name that looks like a shift but is not a valid one."""
    source, _, rest = name.partition(".")
    if not rest or source not in SOURCES:
        return None
    parts = []
    for part in rest.split("."):
        m = PART.fullmatch(part)
        if m is None or m.group(1) not in DIALS:
            raise VrbenchError(f"{name!r}: {part!r} is not a dial and a distance such as "
                               f"grid2; the dials are {', '.join(DIALS)}.")
        dial, distance = m.group(1), int(m.group(2))
        if distance not in DISTANCES:
            raise VrbenchError(f"{name!r}: the distance of a dial is 1, 2 or 3, not {distance}.")
        if dial in (d for d, _ in parts):
            raise VrbenchError(f"{name!r} turns the dial {dial} twice.")
        parts.append((dial, distance))
    return source, parts


def shifted(source, parts: list[tuple[str, int]]):
    """The task `source` (a Task) under the dials `parts`: its generator and skill, new
    parameters, an OOD task with validation and test splits of its source's size."""
    from tasks.spec import Task, check_params
    params, template = dict(source.params), source.prompt_template
    described = []
    for dial, distance in parts:
        over = dict(DIALS[dial].levels[source.name][distance - 1])
        if "instruction" in over:
            template = template.replace(INSTRUCTION, over.pop("instruction"))
        params.update(over)
        described.append(f"{dial} {distance}: {DIALS[dial].factor}")
    name = ".".join([source.name, *(f"{d}{k}" for d, k in parts)])
    check_params(source.generator, params, f"shifted task {name}")
    size = source.splits.get("test", 200)
    return Task(name=name, version=f"{source.version}+shift{VERSION}", domain="ood",
                generator=source.generator, answer_type=source.answer_type,
                prompt_template=template, splits={"validation": size, "test": size},
                params=params, skill=f"shift of {source.name}: " + "; ".join(described),
                card=f"{source.name} with these factors moved: " + "; ".join(described)
                + ". The skill asked for is the source's.")


def texts() -> list[str]:
    """Every word the dials add to their sources' prompts and solutions: the new phrasings
    (filled in), instructions and shape names (for a tokenizer that knows them all)."""
    out = []
    for dial in DIALS.values():
        for over in (o for levels in dial.levels.values() for o in levels):
            out += [p.format(color="red", shapes="shapes", a="green", b="blue")
                    for p in over.get("phrasings", ())]
            out += [over["instruction"]] if "instruction" in over else []
            shapes = over.get("shapes", [s for s, _ in over.get("sides", ())])
            out += [f"There are 2 {render.SHAPE_WORDS.get(s, s)}s." for s in shapes]
    return out


def grid(sources: tuple[str, ...] = SOURCES) -> list[str]:
    """Every single-dial shift of the sources at every distance: the curves of accuracy
    against distance."""
    return [f"{s}.{d}{k}" for s in sources for d in DIALS for k in DISTANCES]

"""Procedural visual-math generators for the offline suites.

Each generator takes a seeded `random.Random` and its difficulty knobs (the `params`
of a task's YAML) and returns one `Item`: the image(s), the question, the target, a worked
solution ending in ``\\boxed{}`` and a variant of it with a reflective check. Generators
are pure functions of their random stream, so a task's data is fixed by its seed and version.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from tasks import render
from tasks.answers import LETTERS

REFLECTIVE_OPENERS = (
    "Let me verify:",
    "Let me check again:",
    "Wait, let me re-check:",
    "Let me re-examine the figure:",
)


@dataclass
class Item:
    images: list[Image.Image]
    question: str
    target: str
    solution: str
    solution_reflective: str
    choices: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def _plural(shape: str) -> str:
    return render.SHAPE_WORDS.get(shape, shape) + "s"


def _solution(reasoning: str, check: str, answer: str, rng: random.Random) -> tuple[str, str]:
    plain = f"{reasoning} \\boxed{{{answer}}}"
    reflective = f"{reasoning} {rng.choice(REFLECTIVE_OPENERS)} {check} \\boxed{{{answer}}}"
    return plain, reflective


def _cells(rng: random.Random, cols: int, rows: int, k: int) -> list[tuple[int, int]]:
    """`k` distinct cells (column, row) of the grid, in reading order: a transcription of
    the figure then lists its objects in the order a reader meets them."""
    return sorted(rng.sample([(c, r) for r in range(rows) for c in range(cols)], k),
                  key=lambda cr: (cr[1], cr[0]))


def _tally(seen: list[str], colors) -> str:
    """ "There are 2 red, 0 green and 3 blue shapes." in the order of `colors`: the worked
    solutions count every colour before using the one asked about. A 3.5M model learns
    this in a few hundred steps, and stays at chance when asked for one colour's count
    directly."""
    counts = [f"{seen.count(c)} {c}" for c in colors]
    return f"There are {', '.join(counts[:-1])} and {counts[-1]} shapes."


def count_shapes(rng: random.Random, *, cols=3, rows=3, colors=("red", "green", "blue"),
                 shapes=("circle", "square"), target_range=(1, 4), max_objects=7,
                 background="white", ask="color_shape", cell=render.CELL, tint=0.0,
                 phrasings=("How many {color} {shapes} are there?",)) -> Item:
    """Count the objects of one colour (`ask="color"`) or of one colour and shape
    (`ask="color_shape"`) among distractors."""
    color, shape = rng.choice(colors), rng.choice(shapes)
    k = rng.randint(*target_range)
    if ask == "color":
        targets = [(color, rng.choice(shapes)) for _ in range(k)]
        others = [(c, s) for c in colors for s in shapes if c != color]
        noun = "shapes"
    else:
        targets = [(color, shape)] * k
        others = [(c, s) for c in colors for s in shapes if (c, s) != (color, shape)]
        noun = _plural(shape)
    n_distract = rng.randint(1, max(1, max_objects - k)) if others else 0
    objects = targets + [rng.choice(others) for _ in range(n_distract)]
    rng.shuffle(objects)
    img = render.canvas(cols, rows, background, cell)
    for (c, r), (col, shp) in zip(_cells(rng, cols, rows, len(objects)), objects, strict=True):
        render.draw_shape(img, c, r, shp, col, cell, tint)
    what = f"{color} {noun}"
    q = rng.choice(phrasings).format(color=color, shapes=noun)
    reasoning = f"There are {k} {what}."
    if ask == "color":  # count every colour first, then pick the one asked for
        reasoning = f"{_tally([o[0] for o in objects], colors)} {reasoning}"
    sol, refl = _solution(reasoning, f"counting the {what} again gives {k}.", str(k), rng)
    return Item([img], q, str(k), sol, refl, meta={"color": color, "shape": noun,
                                                   "n_objects": len(objects)})


def compare_count(rng: random.Random, *, cols=3, rows=3, colors=("red", "green", "blue"),
                  shapes=("circle", "square"), min_diff=0, max_diff=3, max_less=2,
                  background="white", cell=render.CELL, tint=0.0,
                  phrasings=("How many more {a} shapes than {b} shapes are there?",)) -> Item:
    """How many more objects of colour A than of colour B (arithmetic over counts)."""
    a, b, third = rng.sample(list(colors), 3)
    nb = rng.randint(1, max_less)
    na = nb + rng.randint(min_diff, max_diff)
    n3 = rng.randint(0, min(2, cols * rows - na - nb))
    objects = [a] * na + [b] * nb + [third] * n3
    rng.shuffle(objects)
    img = render.canvas(cols, rows, background, cell)
    for (c, r), col in zip(_cells(rng, cols, rows, len(objects)), objects, strict=True):
        render.draw_shape(img, c, r, rng.choice(shapes), col, cell, tint)
    d = na - nb
    q = rng.choice(phrasings).format(a=a, b=b)
    sol, refl = _solution(
        f"{_tally(objects, colors)} {na} - {nb} = {d}.",
        f"{d} + {nb} = {na}.", str(d), rng)
    return Item([img], q, str(d), sol, refl, meta={"a": a, "b": b, "n_a": na, "n_b": nb})


def digit_sum(rng: random.Random, *, cols=3, rows=3, n_range=(2, 3), digit_range=(1, 9),
              background="white", color="black", cell=render.CELL,
              phrasings=("What is the sum of the numbers in the picture?",)) -> Item:
    """Read the digits written in the figure and add them."""
    n = rng.randint(*n_range)
    digits = [rng.randint(*digit_range) for _ in range(n)]
    img = render.canvas(cols, rows, background, cell)
    for (c, r), dgt in zip(_cells(rng, cols, rows, n), digits, strict=True):
        render.draw_text(img, c, r, str(dgt), color=color, cell=cell)
    total = sum(digits)
    listed = ", ".join(map(str, digits[:-1])) + f" and {digits[-1]}"
    expr = " + ".join(map(str, digits))
    sol, refl = _solution(f"The numbers are {listed}. {expr} = {total}.",
                          f"adding them in reverse, {' + '.join(map(str, digits[::-1]))} = "
                          f"{total}.", str(total), rng)
    return Item([img], rng.choice(phrasings), str(total), sol, refl, meta={"digits": digits})


def rect_perimeter(rng: random.Random, *, side_range=(1, 9), grid=3, background="white",
                   outline_colors=("black", "blue", "green"), cell=render.CELL,
                   phrasings=("The sides of the rectangle are labelled. "
                              "What is its perimeter?",)) -> Item:
    """A rectangle with labelled width and height (not to scale): its perimeter."""
    w, h = rng.randint(*side_range), rng.randint(*side_range)
    img = render.canvas(grid, grid, background, cell)
    cw, ch = rng.randint(1, grid - 1), rng.randint(1, grid - 1)
    if rng.random() < 0.5:  # labels above and to the left
        c0, r0, label_row, label_col = 1, 1, 0, 0
    else:  # labels below and to the right
        c0, r0, label_row, label_col = grid - 1 - cw, grid - 1 - ch, grid - 1, grid - 1
    render.draw_rect_outline(img, c0, r0, c0 + cw - 1, r0 + ch - 1,
                             color=rng.choice(outline_colors), cell=cell)
    render.draw_text(img, rng.randint(c0, c0 + cw - 1), label_row, str(w), cell=cell)
    render.draw_text(img, label_col, rng.randint(r0, r0 + ch - 1), str(h), cell=cell)
    p = 2 * (w + h)
    sol, refl = _solution(f"The sides are {w} and {h}. The perimeter is 2 * ({w} + {h}) = {p}.",
                          f"{w} + {h} + {w} + {h} = {p}.", str(p), rng)
    return Item([img], rng.choice(phrasings), str(p), sol, refl, meta={"width": w, "height": h})


def sides_sum(rng: random.Random, *, cols=3, rows=3, n_range=(2, 4),
              colors=("red", "green", "blue"), sides=(("triangle", 3), ("square", 4)),
              background="white", cell=render.CELL, tint=0.0,
              phrasings=("How many sides do the shapes in the picture have in total?",)) -> Item:
    """Geometry read off a figure: name each polygon, then add up their sides."""
    n = rng.randint(*n_range)
    picked = [rng.choice(sides) for _ in range(n)]
    img = render.canvas(cols, rows, background, cell)
    for (c, r), (shape, _) in zip(_cells(rng, cols, rows, n), picked, strict=True):
        render.draw_shape(img, c, r, shape, rng.choice(colors), cell, tint)
    counts = [(shape, k, sum(1 for p in picked if p[0] == shape)) for shape, k in sides]
    total = sum(k * m for _, k, m in counts)
    word = render.SHAPE_WORDS.get
    listed = " and ".join(f"{m} {word(shape, shape) if m == 1 else _plural(shape)}"
                          for shape, _, m in counts)
    expr = " + ".join(f"{m} * {k}" for _, k, m in counts)
    sol, refl = _solution(f"There are {listed}. {expr} = {total}.",
                          f"{' + '.join(str(k) for _, k in picked)} = {total}.", str(total), rng)
    return Item([img], rng.choice(phrasings), str(total), sol, refl,
                meta={_plural(shape): m for shape, _, m in counts})


def bar_chart(rng: random.Random, *, colors=("red", "green", "blue"), n_bars=3, rows=4,
              background="white", cell=render.CELL, unit=render.TOKEN,
              phrasings=("Which colour has the tallest bar?",)) -> Item:
    """A bar chart read as multiple choice: which bar is the tallest. Bars are `cell` px
    wide with a gap of one bar between them; heights are 1..`rows` units of `unit` px."""
    order = rng.sample(list(colors), n_bars)
    heights = rng.sample(range(1, rows + 1), n_bars)
    img = render.Image.new("RGB", ((n_bars * 2 - 1) * cell, rows * unit),
                           render.BACKGROUNDS[background])
    render.draw_grid_lines(img, unit)
    for i, (col, hgt) in enumerate(zip(order, heights, strict=True)):
        render.draw_bar(img, 2 * i, hgt, col, unit, cell)
    tallest = order[heights.index(max(heights))]
    choices = sorted(order)
    letter = LETTERS[choices.index(tallest)]
    described = ", ".join(f"the {c} bar is {h} units" for c, h in zip(order, heights, strict=True))
    sol, refl = _solution(f"Reading the chart, {described}. The tallest is {tallest}, "
                          f"option {letter}.", f"no bar is taller than the {tallest} one.",
                          letter, rng)
    return Item([img], rng.choice(phrasings), letter, sol, refl, choices=choices,
                meta={"heights": dict(zip(order, heights, strict=True))})


def compare_figures(rng: random.Random, *, colors=("red", "green", "blue"),
                    shapes=("circle", "square"), panel_cols=2, panel_rows=3, max_per_panel=5,
                    background="white", cell=render.CELL,
                    phrasings=("How many more shapes are in the left figure than in the "
                               "right figure?",)) -> Item:
    """Two panels side by side, a divider between them: how many more shapes on the left."""
    nr = rng.randint(1, max_per_panel - 1)
    nl = rng.randint(nr, max_per_panel)
    img = render.canvas(2 * panel_cols + 1, panel_rows, background, cell)
    for offset, n in ((0, nl), (panel_cols + 1, nr)):
        for c, r in _cells(rng, panel_cols, panel_rows, n):
            render.draw_shape(img, offset + c, r, rng.choice(shapes), rng.choice(colors), cell)
    render.draw_rect_outline(img, panel_cols, 0, panel_cols, panel_rows - 1, width=2, cell=cell)
    d = nl - nr
    sol, refl = _solution(f"The left figure has {nl} shapes and the right figure has {nr}. "
                          f"{nl} - {nr} = {d}.", f"{nr} + {d} = {nl}.", str(d), rng)
    return Item([img], rng.choice(phrasings), str(d), sol, refl, meta={"left": nl, "right": nr})


def triangle_angle(rng: random.Random, *, angle_range=(30, 80), step=5, background="white",
                   size=3 * render.CELL,
                   phrasings=("Two angles of the triangle are marked. "
                              "What is the third angle in degrees?",)) -> Item:
    """Geometry: the third angle of a triangle from two marked angles."""
    a = rng.randrange(angle_range[0], angle_range[1] + 1, step)
    b = rng.randrange(angle_range[0], angle_range[1] + 1, step)
    img = render.Image.new("RGB", (size, size), render.BACKGROUNDS[background])
    render.draw_triangle_figure(img, (f"{a}°", f"{b}°"), apex=rng.choice((0.3, 0.4, 0.5, 0.6, 0.7)))
    c = 180 - a - b
    sol, refl = _solution(f"The marked angles are {a} and {b} degrees. 180 - {a} - {b} = {c}.",
                          f"{a} + {b} + {c} = 180.", str(c), rng)
    return Item([img], rng.choice(phrasings), str(c), sol, refl, meta={"angles": [a, b]})


GENERATORS: dict[str, Callable[..., Item]] = {
    f.__name__: f for f in (count_shapes, compare_count, digit_sum, rect_perimeter, sides_sum,
                            bar_chart, compare_figures, triangle_angle)
}

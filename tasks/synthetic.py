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
    return shape + "s"


def _solution(reasoning: str, check: str, answer: str, rng: random.Random) -> tuple[str, str]:
    plain = f"{reasoning} \\boxed{{{answer}}}"
    reflective = f"{reasoning} {rng.choice(REFLECTIVE_OPENERS)} {check} \\boxed{{{answer}}}"
    return plain, reflective


def _cells(rng: random.Random, cols: int, rows: int, k: int) -> list[tuple[int, int]]:
    return rng.sample([(c, r) for r in range(rows) for c in range(cols)], k)


def count_shapes(rng: random.Random, *, cols=4, rows=4, colors=("red", "green", "blue"),
                 shapes=("circle", "square"), target_range=(1, 4), max_objects=7,
                 background="white", phrasings=("How many {color} {shapes} are there?",),
                 **_) -> Item:
    """Count the objects of one colour and shape among distractors."""
    color, shape = rng.choice(colors), rng.choice(shapes)
    k = rng.randint(*target_range)
    others = [(c, s) for c in colors for s in shapes if (c, s) != (color, shape)]
    n_distract = rng.randint(1, max(1, max_objects - k)) if others else 0
    objects = [(color, shape)] * k + [rng.choice(others) for _ in range(n_distract)]
    img = render.canvas(cols, rows, background)
    for (c, r), (col, shp) in zip(_cells(rng, cols, rows, len(objects)), objects, strict=True):
        render.draw_shape(img, c, r, shp, col)
    what = f"{color} {_plural(shape)}"
    q = rng.choice(phrasings).format(color=color, shapes=_plural(shape))
    sol, refl = _solution(f"There are {k} {what}.", f"counting the {what} again gives {k}.",
                          str(k), rng)
    return Item([img], q, str(k), sol, refl, meta={"color": color, "shape": shape,
                                                   "n_objects": len(objects)})


def compare_count(rng: random.Random, *, cols=4, rows=4, colors=("red", "green", "blue"),
                  shapes=("circle", "square"), max_diff=3, max_less=3, background="white",
                  phrasings=("How many more {a} shapes than {b} shapes are there?",),
                  **_) -> Item:
    """How many more objects of colour A than of colour B (arithmetic over counts)."""
    a, b, third = rng.sample(list(colors), 3)
    nb = rng.randint(1, max_less)
    na = nb + rng.randint(0, max_diff)
    n3 = rng.randint(0, min(2, cols * rows - na - nb))
    objects = [a] * na + [b] * nb + [third] * n3
    img = render.canvas(cols, rows, background)
    for (c, r), col in zip(_cells(rng, cols, rows, len(objects)), objects, strict=True):
        render.draw_shape(img, c, r, rng.choice(shapes), col)
    d = na - nb
    q = rng.choice(phrasings).format(a=a, b=b)
    sol, refl = _solution(
        f"There are {na} {a} shapes and {nb} {b} shapes. {na} - {nb} = {d}.",
        f"{d} + {nb} = {na}.", str(d), rng)
    return Item([img], q, str(d), sol, refl, meta={"a": a, "b": b, "n_a": na, "n_b": nb})


def digit_sum(rng: random.Random, *, cols=4, rows=4, n_range=(2, 3), digit_range=(1, 9),
              background="white", color="black",
              phrasings=("What is the sum of the numbers in the picture?",), **_) -> Item:
    """Read the digits written in the figure and add them."""
    n = rng.randint(*n_range)
    digits = [rng.randint(*digit_range) for _ in range(n)]
    img = render.canvas(cols, rows, background)
    for (c, r), dgt in zip(_cells(rng, cols, rows, n), digits, strict=True):
        render.draw_text(img, c, r, str(dgt), color=color)
    total = sum(digits)
    listed = ", ".join(map(str, digits[:-1])) + f" and {digits[-1]}"
    expr = " + ".join(map(str, digits))
    sol, refl = _solution(f"The numbers are {listed}. {expr} = {total}.",
                          f"adding them in reverse, {' + '.join(map(str, digits[::-1]))} = "
                          f"{total}.", str(total), rng)
    return Item([img], rng.choice(phrasings), str(total), sol, refl, meta={"digits": digits})


def rect_perimeter(rng: random.Random, *, side_range=(1, 9), background="white",
                   phrasings=("The sides of the rectangle are labelled. "
                              "What is its perimeter?",), **_) -> Item:
    """A rectangle with labelled width and height (not to scale): its perimeter."""
    w, h = rng.randint(*side_range), rng.randint(*side_range)
    img = render.canvas(4, 4, background)
    cw, ch = rng.randint(1, 3), rng.randint(1, 3)
    if rng.random() < 0.5:  # labels above and to the left
        c0, r0, label_row, label_col = 1, 1, 0, 0
    else:  # labels below and to the right
        c0, r0, label_row, label_col = 3 - cw, 3 - ch, 3, 3
    render.draw_rect_outline(img, c0, r0, c0 + cw - 1, r0 + ch - 1)
    render.draw_text(img, rng.randint(c0, c0 + cw - 1), label_row, str(w))
    render.draw_text(img, label_col, rng.randint(r0, r0 + ch - 1), str(h))
    p = 2 * (w + h)
    sol, refl = _solution(f"The sides are {w} and {h}. The perimeter is 2 * ({w} + {h}) = {p}.",
                          f"{w} + {h} + {w} + {h} = {p}.", str(p), rng)
    return Item([img], rng.choice(phrasings), str(p), sol, refl, meta={"width": w, "height": h})


def bar_chart(rng: random.Random, *, colors=("red", "green", "blue"), n_bars=3, rows=4,
              background="white", phrasings=("Which colour has the tallest bar?",),
              **_) -> Item:
    """A bar chart read as multiple choice: which bar is the tallest."""
    order = rng.sample(list(colors), n_bars)
    heights = rng.sample(range(1, rows + 1), n_bars)
    img = render.canvas(n_bars * 2 - 1, rows, background)
    render.draw_grid_lines(img, rows)
    for i, (col, hgt) in enumerate(zip(order, heights, strict=True)):
        render.draw_bar(img, 2 * i, hgt, col, rows)
    tallest = order[heights.index(max(heights))]
    choices = sorted(order)
    letter = "ABCDEFGH"[choices.index(tallest)]
    described = ", ".join(f"the {c} bar is {h} units" for c, h in zip(order, heights, strict=True))
    sol, refl = _solution(f"Reading the chart, {described}. The tallest is {tallest}, "
                          f"option {letter}.", f"no bar is taller than the {tallest} one.",
                          letter, rng)
    return Item([img], rng.choice(phrasings), letter, sol, refl, choices=choices,
                meta={"heights": dict(zip(order, heights, strict=True))})


def compare_figures(rng: random.Random, *, colors=("red", "green", "blue"),
                    shapes=("circle", "square"), max_per_panel=6, background="white",
                    phrasings=("How many more shapes are in the left figure than in the "
                               "right figure?",), **_) -> Item:
    """Two panels side by side: how many more shapes in the left one."""
    nr = rng.randint(1, max_per_panel - 1)
    nl = rng.randint(nr, max_per_panel)
    img = render.canvas(9, 4, background)
    for offset, n in ((0, nl), (5, nr)):
        for c, r in _cells(rng, 4, 4, n):
            render.draw_shape(img, offset + c, r, rng.choice(shapes), rng.choice(colors))
    render.draw_rect_outline(img, 4, 0, 4, 3, color="black", width=1)
    d = nl - nr
    sol, refl = _solution(f"The left figure has {nl} shapes and the right figure has {nr}. "
                          f"{nl} - {nr} = {d}.", f"{nr} + {d} = {nl}.", str(d), rng)
    return Item([img], rng.choice(phrasings), str(d), sol, refl, meta={"left": nl, "right": nr})


def triangle_angle(rng: random.Random, *, angle_range=(30, 80), step=5, background="white",
                   phrasings=("Two angles of the triangle are marked. "
                              "What is the third angle in degrees?",), **_) -> Item:
    """Geometry: the third angle of a triangle from two marked angles."""
    a = rng.randrange(angle_range[0], angle_range[1] + 1, step)
    b = rng.randrange(angle_range[0], angle_range[1] + 1, step)
    img = render.canvas(4, 4, background)
    render.draw_triangle_figure(img, (f"{a}°", f"{b}°"), apex=rng.choice((0.3, 0.4, 0.5, 0.6, 0.7)))
    c = 180 - a - b
    sol, refl = _solution(f"The marked angles are {a} and {b} degrees. 180 - {a} - {b} = {c}.",
                          f"{a} + {b} + {c} = 180.", str(c), rng)
    return Item([img], rng.choice(phrasings), str(c), sol, refl, meta={"angles": [a, b]})


GENERATORS: dict[str, Callable[..., Item]] = {
    f.__name__: f for f in (count_shapes, compare_count, digit_sum, rect_perimeter, bar_chart,
                            compare_figures, triangle_angle)
}

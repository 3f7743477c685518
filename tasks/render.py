"""Drawing primitives for the synthetic suites.

Objects are drawn one per cell. A cell is 56 px by default: 2 x 2 merged vision tokens of a
Qwen2-VL model (patch 14, spatial merge 2 = 28 px a token), aligned to the token grid. A tiny
vision tower trained from scratch learns to read an object spanning four tokens within a
hundred steps, and stays blind for hundreds of steps to one spanning a single token.
"""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

CELL = 56
TOKEN = 28  # pixels per merged vision token

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (20, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (230, 200, 0),
    "purple": (140, 40, 170),
    "black": (0, 0, 0),
}

SHAPE_WORDS = {"triangle_down": "triangle"}  # the word for a shape drawn another way

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "cream": (250, 240, 215),
    "gray": (200, 200, 200),
    "slate": (120, 130, 145),
}


def tinted(color: str, tint: float = 0.0) -> tuple[int, int, int]:
    """The colour mixed with white: `tint` 0 is the colour itself, 1 is white."""
    return tuple(round(v + (255 - v) * tint) for v in COLORS[color])


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def canvas(cols: int, rows: int, background: str = "white", cell: int = CELL) -> Image.Image:
    return Image.new("RGB", (cols * cell, rows * cell), BACKGROUNDS[background])


def draw_shape(img: Image.Image, col: int, row: int, shape: str, color: str, cell: int = CELL,
               tint: float = 0.0):
    """Draw `shape` filling the cell at (col, row), its colour `tint` of the way to white."""
    d = ImageDraw.Draw(img)
    margin = max(2, cell // 14)
    x0, y0 = col * cell + margin, row * cell + margin
    x1, y1 = (col + 1) * cell - margin - 1, (row + 1) * cell - margin - 1
    fill = tinted(color, tint)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "circle":
        d.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == "square":
        d.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == "triangle":
        d.polygon([(mx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "triangle_down":  # a triangle standing on its apex
        d.polygon([(x0, y0), (x1, y0), (mx, y1)], fill=fill)
    elif shape == "diamond":  # a square turned by 45 degrees
        d.polygon([(mx, y0), (x1, my), (mx, y1), (x0, my)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def draw_text(img: Image.Image, col: int, row: int, text: str, color: str = "black",
              cell: int = CELL, scale: float = 0.75):
    """Write `text` centred in the cell at (col, row), `scale` of the cell high."""
    d = ImageDraw.Draw(img)
    cx, cy = col * cell + cell / 2, row * cell + cell / 2
    d.text((cx, cy), text, fill=COLORS[color], font=font(int(cell * scale)), anchor="mm")


def draw_rect_outline(img: Image.Image, c0: int, r0: int, c1: int, r1: int,
                      color: str = "black", width: int = 4, cell: int = CELL):
    """Outline the block of cells from (c0, r0) to (c1, r1) inclusive."""
    d = ImageDraw.Draw(img)
    d.rectangle((c0 * cell + 3, r0 * cell + 3, (c1 + 1) * cell - 4, (r1 + 1) * cell - 4),
                outline=COLORS[color], width=width)


def draw_bar(img: Image.Image, col: int, height: int, color: str, unit: int = TOKEN,
             width: int = CELL):
    """A bar `width` px wide in column `col`, standing on the bottom edge, `height` units
    of `unit` px tall."""
    d = ImageDraw.Draw(img)
    d.rectangle((col * width + 4, img.height - height * unit, (col + 1) * width - 5,
                 img.height - 1), fill=COLORS[color])


def draw_grid_lines(img: Image.Image, unit: int = TOKEN,
                    color: tuple[int, int, int] = (170, 170, 170)):
    """Horizontal unit lines, as on a bar chart's value axis."""
    d = ImageDraw.Draw(img)
    for y in range(img.height - unit, 0, -unit):
        d.line((0, y, img.width, y), fill=color, width=1)


def draw_triangle_figure(img: Image.Image, angles: tuple[str, str], apex: float = 0.42):
    """A triangle across the canvas, its apex at `apex` of the width, with two angle labels
    near its base corners."""
    d = ImageDraw.Draw(img)
    w, h = img.size
    a, b, c = (6, h - 8), (w - 7, h - 8), (w * apex, 8)
    d.polygon([a, b, c], outline=COLORS["black"], width=3)
    size = max(12, h // 6)
    d.text((a[0] + 1.6 * size, a[1] - size), angles[0], fill=COLORS["blue"], font=font(size),
           anchor="mm")
    d.text((b[0] - 1.6 * size, b[1] - size), angles[1], fill=COLORS["blue"], font=font(size),
           anchor="mm")

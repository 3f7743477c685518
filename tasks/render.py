"""Drawing primitives for the synthetic suites.

Objects are drawn one per 28-pixel cell: 28 px is what one merged vision token of a
Qwen2-VL model covers (patch 14, spatial merge 2), so every object is seen whole by
exactly one token. That alignment is what lets a tiny model learn perception quickly.
"""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

CELL = 28

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (20, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (230, 200, 0),
    "purple": (140, 40, 170),
    "black": (0, 0, 0),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "gray": (200, 200, 200),
    "cream": (250, 240, 215),
}


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def canvas(cols: int, rows: int, background: str = "white") -> Image.Image:
    return Image.new("RGB", (cols * CELL, rows * CELL), BACKGROUNDS[background])


def draw_shape(img: Image.Image, col: int, row: int, shape: str, color: str, margin: int = 3):
    """Draw `shape` filling the cell at (col, row)."""
    d = ImageDraw.Draw(img)
    x0, y0 = col * CELL + margin, row * CELL + margin
    x1, y1 = (col + 1) * CELL - margin - 1, (row + 1) * CELL - margin - 1
    fill = COLORS[color]
    if shape == "circle":
        d.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == "square":
        d.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == "triangle":
        d.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def draw_text(img: Image.Image, col: int, row: int, text: str, color: str = "black",
              size: int = 20):
    """Write `text` centred in the cell at (col, row)."""
    d = ImageDraw.Draw(img)
    cx, cy = col * CELL + CELL / 2, row * CELL + CELL / 2
    d.text((cx, cy), text, fill=COLORS[color], font=font(size), anchor="mm")


def draw_rect_outline(img: Image.Image, c0: int, r0: int, c1: int, r1: int,
                      color: str = "black", width: int = 3):
    """Outline the block of cells from (c0, r0) to (c1, r1) inclusive."""
    d = ImageDraw.Draw(img)
    d.rectangle((c0 * CELL + 2, r0 * CELL + 2, (c1 + 1) * CELL - 3, (r1 + 1) * CELL - 3),
                outline=COLORS[color], width=width)


def draw_bar(img: Image.Image, col: int, height: int, color: str, rows: int):
    """A bar standing on the bottom row, `height` cells tall, in column `col`."""
    d = ImageDraw.Draw(img)
    d.rectangle((col * CELL + 4, (rows - height) * CELL, (col + 1) * CELL - 5, rows * CELL - 1),
                fill=COLORS[color])


def draw_grid_lines(img: Image.Image, rows: int, color: tuple[int, int, int] = (170, 170, 170)):
    """Horizontal unit lines, as on a bar chart's value axis."""
    d = ImageDraw.Draw(img)
    for r in range(1, rows):
        d.line((0, r * CELL, img.width, r * CELL), fill=color, width=1)


def draw_triangle_figure(img: Image.Image, angles: tuple[str, str], apex: float = 0.42):
    """A triangle across the canvas, its apex at `apex` of the width, with two angle labels
    near its base corners."""
    d = ImageDraw.Draw(img)
    w, h = img.size
    a, b, c = (6, h - 8), (w - 7, h - 8), (w * apex, 8)
    d.polygon([a, b, c], outline=COLORS["black"], width=2)
    d.text((a[0] + 22, a[1] - 14), angles[0], fill=COLORS["blue"], font=font(16), anchor="mm")
    d.text((b[0] - 22, b[1] - 14), angles[1], fill=COLORS["blue"], font=font(16), anchor="mm")

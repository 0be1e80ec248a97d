"""Draw the gallery of the bundled painting styles (issue #18): for each style of styles.toml,
its painting, and the daemon's test card and held-out photos (which no style trains on) through
the style's teacher, its CPU student (STUDENTS/STYLE.onnx, INT8) and its small student
(STUDENTS/small/STYLE.onnx, where one is built). The students run by ONNX Runtime as the daemon
runs them; every input is a 640x480 camera frame, the size the daemon runs at by default.

Usage: python configs/bundled/gallery.py OUT.png [--per-style DIR] [--students DIR]

  OUT.png            the overview, one row per style (docs/gallery.png, in the README)
  --per-style DIR    also DIR/STYLE.png: input | teacher | CPU student | small, on the test card
                     and three held-out photos
  --students DIR     where the students are (default daemon/models)

The paintings and photos are what configs/bundled/build.sh prepares under STYLECAST_BUNDLED_WORK
(default runs/bundled): sources/paintings/NAME.png and photos/heldout/. A style whose student or
painting is not there yet is skipped with one line saying so.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib
from PIL import Image, ImageDraw, ImageFont

from stylecast.core.atomic import atomic_write_bytes
from stylecast.daemon.engines import EngineSettings, load_engine
from stylecast.daemon.sources.pattern import draw_card

ROOT = Path(__file__).resolve().parents[2]
STYLES_TOML = ROOT / "configs" / "bundled" / "styles.toml"
FRAME = (480, 640)  # (height, width): the daemon's default camera frame and test card
CELL = (240, 180)  # (width, height) of each picture: a 640x480 frame at 3/8
LABEL_HEIGHT = 20
GROUP_GAP = 12  # white space between the columns of one input and the next
BACKGROUND = (238, 238, 238)  # behind paintings that are not 4:3, and missing pictures
# The held-out photos shown, by file stem: varied scenes, and public domain, so the README's
# picture needs no credit line. Where they are missing, the first other held-out photos stand in.
OVERVIEW_PHOTOS = ("monument-brandenburg-gate", "monument-great-wallof-china")
PAGE_PHOTOS = (*OVERVIEW_PHOTOS, "music-japan")
CARD = "test card"
# The overview's columns after the painting: (input: 0 = the test card, 1.. = photos, column).
OVERVIEW_COLUMNS = ((0, "teacher"), (0, "cpu"), (0, "small"), (1, "teacher"), (1, "cpu"),
                    (2, "cpu"))
PAGE_COLUMNS = ("input", "teacher", "cpu", "small")

Stylize = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Style:
    name: str
    painting: Path
    caption: str  # who painted it, for the labels: "Katsushika Hokusai, The Great Wave ..."
    teacher: str  # a load_teacher() source
    cpu: Path
    small: Path | None


@dataclass
class Rendered:
    """One style's pictures: outputs[input name][column key], and each column's label."""

    style: Style
    labels: dict[str, str]
    outputs: dict[str, dict[str, np.ndarray]]


# --- what to draw ------------------------------------------------------------------------------


def bundled_styles(students: Path, work: Path) -> list[Style]:
    """The styles of styles.toml whose CPU student and painting exist; a line for each other."""
    with STYLES_TOML.open("rb") as file:
        entries = tomllib.load(file)["styles"]
    captions = painting_captions(work / "sources" / "paintings" / "provenance.json")
    styles = []
    for name, entry in entries.items():
        painting = work / "sources" / "paintings" / f"{entry['painting']}.png"
        cpu, small = students / f"{name}.onnx", students / "small" / f"{name}.onnx"
        if not cpu.is_file():
            print(f"{name}: skipped, its student {cpu} is not built yet")
        elif not painting.is_file():
            print(f"{name}: skipped, no painting {painting} (run configs/bundled/build.sh)")
        else:
            styles.append(Style(name, painting, captions.get(entry["painting"], entry["painting"]),
                                entry["teacher"].format(painting=painting), cpu,
                                small if small.is_file() else None))
    return styles


def painting_captions(provenance: Path) -> dict[str, str]:
    """'Artist, Title (year)' per painting name, from paintings.py's provenance.json; the labels
    fall back to the painting's name without it."""
    if not provenance.is_file():
        return {}
    return {item["name"]: f"{item['artist']}, {item['title']} ({item['year']})"
            for item in json.loads(provenance.read_text(encoding="utf-8"))}


def gallery_inputs(work: Path, stems: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The test card stylecastd shows with no camera, then held-out photos as camera frames."""
    folder = work / "photos" / "heldout"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < len(stems):
        sys.exit(f"{folder}: {len(files)} held-out photos, the gallery shows {len(stems)} "
                 "(run configs/bundled/build.sh)")
    chosen = [p for stem in stems for p in files if p.stem == stem]
    chosen += [p for p in files if p not in chosen][: len(stems) - len(chosen)]
    shows = photo_captions(folder.parent / "manifest.json")
    inputs = {CARD: draw_card(*FRAME)}
    for path in chosen:
        inputs[shows.get(path.name, path.stem)] = camera_frame(Image.open(path).convert("RGB"))
    return inputs


def photo_captions(manifest: Path) -> dict[str, str]:
    """What each held-out photo shows ('Brandenburg Gate'), from content_photos.py's manifest."""
    if not manifest.is_file():
        return {}
    return {Path(item["file"]).name: item["shows"].split(": ", 1)[-1]
            for item in json.loads(manifest.read_text(encoding="utf-8"))}


def camera_frame(photo: Image.Image) -> np.ndarray:
    """The photo's centre cropped to 4:3 and scaled to a 640x480 frame: what the daemon would
    get from a camera pointed at the scene, so teacher and students see the same pixels."""
    height, width = FRAME
    scale = max(width / photo.width, height / photo.height)
    size = (max(width, round(photo.width * scale)), max(height, round(photo.height * scale)))
    photo = photo.resize(size, Image.Resampling.BICUBIC)
    left, top = (photo.width - width) // 2, (photo.height - height) // 2
    return np.array(photo.crop((left, top, left + width, top + height)))


# --- rendering ---------------------------------------------------------------------------------


def render_style(style: Style, inputs: dict[str, np.ndarray]) -> Rendered:
    """Every input through the style's teacher and students, loaded once per style and closed
    after, so only one style's models are in memory at a time."""
    with ExitStack() as stack:
        stylizers = load_stylizers(style, stack)
        labels = {"input": "input", **{key: label for key, (label, _) in stylizers.items()}}
        outputs = {name: {"input": frame, **{key: run(frame) for key, (_, run) in
                                             stylizers.items()}}
                   for name, frame in inputs.items()}
    print(f"{style.name}: {len(inputs)} inputs through {', '.join(list(labels.values())[1:])}")
    return Rendered(style, labels, outputs)


def load_stylizers(style: Style, stack: ExitStack) -> dict[str, tuple[str, Stylize]]:
    """{column key: (label, stylize)}: the teacher, then the students the daemon would run."""
    from stylecast.training.imaging import image_to_tensor, tensor_to_image
    from stylecast.training.teachers.loader import load_teacher

    teacher = load_teacher(style.teacher)
    stylizers = {"teacher": ("teacher (Magenta arbitrary)" if "style-image" in style.teacher
                             else "teacher",
                             lambda frame: tensor_to_image(teacher.render(image_to_tensor(frame))))}
    for key, role, path in (("cpu", "CPU student", style.cpu), ("small", "small", style.small)):
        if path is not None:
            engine = load_engine(path, EngineSettings(runtime="onnxruntime"))
            stack.callback(engine.close)
            contract = engine.contract
            stylizers[key] = (f"{role} ({contract.preset} {contract.precision.upper()})", engine)
    return stylizers


# --- drawing -----------------------------------------------------------------------------------


def font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def fitted(text: str, width: int, size: int = 13) -> str:
    """`text`, cut with an ellipsis where it would run past `width` pixels."""
    face = font(size)
    if face.getlength(text) <= width:
        return text
    while text and face.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def cell(image: np.ndarray | Image.Image | None, label: str) -> Image.Image:
    """A labelled picture, scaled to fit CELL whole (paintings are not all 4:3); None draws the
    empty cell of a student that is not built."""
    tile = Image.new("RGB", (CELL[0], CELL[1] + LABEL_HEIGHT), "white")
    ImageDraw.Draw(tile).text((4, 3), fitted(label, CELL[0] - 8), fill="black", font=font())
    picture = Image.new("RGB", CELL, BACKGROUND)
    if image is not None:
        image = image if isinstance(image, Image.Image) else Image.fromarray(image)
        image = image.copy()
        image.thumbnail(CELL, Image.Resampling.LANCZOS)
        picture.paste(image, ((CELL[0] - image.width) // 2, (CELL[1] - image.height) // 2))
    tile.paste(picture, (0, LABEL_HEIGHT))
    return tile


def column_x(count: int, gaps: set[int]) -> list[int]:
    """Each column's left edge, with a GROUP_GAP before each column index in `gaps`."""
    return [c * CELL[0] + GROUP_GAP * sum(g <= c for g in gaps) for c in range(count)]


def grid(rows: list[list[Image.Image | None]], x: list[int]) -> Image.Image:
    """Cells in rows, column c at x[c]; None leaves a cell white."""
    height = CELL[1] + LABEL_HEIGHT + 4
    sheet = Image.new("RGB", (x[-1] + CELL[0], height * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            if tile is not None:
                sheet.paste(tile, (x[c], r * height))
    return sheet


def stacked(top: Image.Image, bottom: Image.Image) -> Image.Image:
    page = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), "white")
    page.paste(top, (0, 0))
    page.paste(bottom, (0, top.height))
    return page


def titled(sheet: Image.Image, lines: list[str], picture: Image.Image | None = None) -> Image.Image:
    """`sheet` under a band of text lines (a bold first line), with `picture` at the band's left."""
    left = picture.width + 12 if picture else 8
    tops = [6] + [30 + 18 * i for i in range(len(lines) - 1)]
    height = max(picture.height + 8 if picture else 0, tops[-1] + 26)
    page = Image.new("RGB", (sheet.width, height + sheet.height), "white")
    draw = ImageDraw.Draw(page)
    if picture:
        page.paste(picture, (0, 0))
    for i, (top, line) in enumerate(zip(tops, lines, strict=True)):
        size = 17 if i == 0 else 13
        draw.text((left, top), fitted(line, sheet.width - left - 8, size), fill="black",
                  font=font(size))
    page.paste(sheet, (0, height))
    return page


def overview(rendered: list[Rendered], inputs: dict[str, np.ndarray]) -> Image.Image:
    """One row per style: its painting, the test card through teacher and students, then two
    held-out photos; above each input's group of columns, the input itself."""
    names = list(inputs)
    columns = [c for c in OVERVIEW_COLUMNS
               if c[1] != "small" or any(r.style.small for r in rendered)]
    groups = [[c for c, (index, _) in enumerate(columns, start=1) if index == i]
              for i in range(len(names))]
    x = column_x(len(columns) + 1, {group[0] for group in groups})
    header = grid([[None] * (len(columns) + 1)], x)
    for name, group in zip(names, groups, strict=True):
        centre = (x[group[0]] + x[group[-1]] + CELL[0]) // 2
        header.paste(cell(inputs[name], f"input: {name}"), (centre - CELL[0] // 2, 0))
    rows = [style_row(r, names, columns) for r in rendered]
    return titled(stacked(header, grid(rows, x)), [
        "stylecast's bundled styles: painting | test card | held-out photos (never trained on)",
        "teacher: Magenta's arbitrary stylization of the painting, which each student is "
        "distilled from; students run by ONNX Runtime, as the daemon runs them, on 640x480 "
        "frames"])


def style_row(r: Rendered, names: list[str], columns: list[tuple[int, str]]) -> list:
    """A style's overview row: the painting, then the outputs the columns name."""
    row = [cell(Image.open(r.style.painting).convert("RGB"),
                f"{r.style.name} · {r.style.caption.split(',')[0]}")]
    for index, key in columns:
        image = r.outputs[names[index]].get(key)
        row.append(cell(image, r.labels[key] if image is not None else "small: not built"))
    return row


def style_page(r: Rendered) -> Image.Image:
    """input | teacher | CPU student | small for each input, under the painting and captions."""
    keys = [key for key in PAGE_COLUMNS if key in r.labels]
    rows = [[cell(outputs[key], (f"{name}" if key == "input" else r.labels[key]))
             for key in keys] for name, outputs in r.outputs.items()]
    painting = cell(Image.open(r.style.painting).convert("RGB"), "painting")
    students = [f"{r.labels[key]}: {path.parent.name}/{path.name}" for key, path in
                (("cpu", r.style.cpu), ("small", r.style.small)) if path is not None]
    teacher = r.style.teacher.replace(f"{r.style.painting.parent}{os.sep}", "")
    return titled(grid(rows, column_x(len(keys), set())), [
        r.style.name, r.style.caption, f"teacher: {teacher}", *students,
        *([] if r.style.small else ["small: not built for this style"]),
        "inputs: the daemon's test card and held-out photos, as 640x480 frames"], painting)


def save_png(image: Image.Image, path: Path) -> None:
    """Written whole or not at all: a reader never sees half a picture."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())
    print(f"wrote {path} ({image.width}x{image.height})")


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(os.environ.get("STYLECAST_BUNDLED_WORK", ROOT / "runs" / "bundled"))
    styles = bundled_styles(args.students, work)
    if not styles:
        print(f"no bundled style has its student in {args.students} yet; nothing written")
        return 1
    inputs = gallery_inputs(work, PAGE_PHOTOS if args.per_style else OVERVIEW_PHOTOS)
    rendered = [render_style(style, inputs) for style in styles]
    overview_inputs = dict(list(inputs.items())[: 1 + len(OVERVIEW_PHOTOS)])
    save_png(overview(rendered, overview_inputs), args.out)
    for r in rendered if args.per_style else []:
        save_png(style_page(r), args.per_style / f"{r.style.name}.png")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the overview picture (docs/gallery.png)")
    parser.add_argument("--per-style", type=Path, metavar="DIR",
                        help="also write DIR/STYLE.png with every column for each style")
    parser.add_argument("--students", type=Path, default=ROOT / "daemon" / "models",
                        metavar="DIR", help="STYLE.onnx (INT8) and small/STYLE.onnx "
                        "(default daemon/models)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())

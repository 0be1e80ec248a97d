"""Draw the before/after gallery of the bundled styles: the daemon's test card and real photos
from scikit-image (labelled held out or training) through every bundled model, run by ONNX
Runtime exactly as the daemon runs it.

Usage: python configs/bundled/gallery.py docs/gallery.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from stylecast.daemon.config import bundled_styles
from stylecast.daemon.engines import EngineSettings, load_engine
from stylecast.daemon.sources.pattern import draw_card

CELL = (320, 240)  # width, height of each picture
LABEL_HEIGHT = 22


def gallery_photos() -> dict[str, np.ndarray]:
    """The test card stylecastd shows by default, two photos the styles never saw in training
    (grey: scikit-image ships few colour photos without a download, and the colourful ones are
    the styles' own sources) and two that they did."""
    grey = lambda image: np.repeat(image[..., None], 3, axis=2)  # noqa: E731
    return {"test:// card (daemon default)": draw_card(480, 640),
            "camera man (held out)": grey(data.camera()),
            "coins (held out)": grey(data.coins()),
            "coffee (training)": data.coffee(),
            "astronaut (training)": data.astronaut()}


def fit_cell(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize(CELL, Image.Resampling.BICUBIC))


def labelled(image: np.ndarray, text: str) -> Image.Image:
    cell = Image.new("RGB", (CELL[0], CELL[1] + LABEL_HEIGHT), "white")
    cell.paste(Image.fromarray(image), (0, LABEL_HEIGHT))
    ImageDraw.Draw(cell).text((6, 4), text, fill="black")
    return cell


def main(out: Path) -> None:
    styles = bundled_styles()
    engines = {name: load_engine(path, EngineSettings()) for name, path in styles.items()}
    rows = []
    for title, photo in gallery_photos().items():
        photo = fit_cell(photo)
        row = [labelled(photo, title)]
        row += [labelled(engine(photo), f"style '{name}'") for name, engine in engines.items()]
        rows.append(row)
    width, height = CELL[0], CELL[1] + LABEL_HEIGHT
    sheet = Image.new("RGB", (width * len(rows[0]), height * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            sheet.paste(cell, (c * width, r * height))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out}: {len(rows)} photos x {len(engines)} styles")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

"""Write the image folders the bundled styles are trained from, using only images that ship
inside scikit-image (nothing is downloaded):

    OUT/content/   colour photos: astronaut, chelsea, coffee, rocket, motorcycle
    OUT/stain/     24 random crops of the immunohistochemistry micrograph (brown/blue stain)
    OUT/retina/    24 random crops of the centre of the retina fundus photo (orange, red vessels)

Usage: python configs/bundled/prepare_images.py OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

TILES = 24
TILE_SIDE = 192
SEED = 0


def photos() -> dict[str, np.ndarray]:
    return {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(),
            "rocket": data.rocket(), "motorcycle": data.stereo_motorcycle()[0]}


def styles() -> dict[str, np.ndarray]:
    # The fundus is a disc on black: crop its centre so no tile is mostly background.
    return {"stain": data.immunohistochemistry(), "retina": data.retina()[300:1100, 300:1100]}


def random_tiles(image: np.ndarray, count: int, seed: int) -> list[Image.Image]:
    """Square crops of random size and place, resized to TILE_SIDE: one style image becomes a
    folder with varied scales of its texture."""
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    short = min(height, width)
    tiles = []
    for _ in range(count):
        side = int(rng.integers(short // 3, short + 1))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        crop = Image.fromarray(image[top:top + side, left:left + side])
        tiles.append(crop.resize((TILE_SIDE, TILE_SIDE), Image.Resampling.BICUBIC))
    return tiles


def main(out: Path) -> None:
    content = out / "content"
    content.mkdir(parents=True, exist_ok=True)
    for name, image in photos().items():
        Image.fromarray(image).save(content / f"{name}.png")
    for style, image in styles().items():
        folder = out / style
        folder.mkdir(exist_ok=True)
        for index, tile in enumerate(random_tiles(image, TILES, SEED)):
            tile.save(folder / f"{style}_{index:02d}.png")
    print(f"wrote {out}/content and {', '.join(f'{out}/{s}' for s in styles())}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

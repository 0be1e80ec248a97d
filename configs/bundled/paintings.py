"""Extract the public-domain paintings that ship in Debian's gcompris-qt-data, with provenance.

Two GCompris activities hold paintings:

- details.rcc    "Find the details": each painting whole, as image/NAME_background.webp;
- paintings.rcc  a jigsaw of each painting: tiles with transparent knobs, placed by a board file
  (resource/board/boardN_0.qml: each tile's centre as a fraction of a 702x515 board). The tiles
  are put back together here (`reassemble`), the one-pixel seams that rounding leaves filled in.

    OUT/paintings/NAME.png         every painting in CATALOGUE
    OUT/paintings/provenance.json  title, artist, year, source .rcc and path, package version,
                                   public-domain status, for each
    OUT/styles/STYLE/NAME.png      the painting each bundled style learns from (STYLES)

Usage: python configs/bundled/paintings.py OUT [--rcc-dir DIR]  (default /usr/share/gcompris-qt/rcc)
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import tomllib
from gcompris import (
    DETAILS,
    GCOMPRIS_PACKAGE,
    GCOMPRIS_RCC_DIR,
    board_captions,
    decode_image,
    notice_for,
    open_rcc,
    package_version,
    parse_readme,
)
from PIL import Image
from qt_resources import ResourceFile

from stylecast.core.atomic import atomic_path, atomic_write_text
from stylecast.core.errors import InputError, run_cli

PUZZLES = "gcompris/src/activities/paintings/resource"
MAX_SEAM = 8  # pixels: a gap between tiles wider than this means the board or tiles are wrong
# Public domain in both places a user is most likely to be: life + 70 years (the EU and most of
# the world) and, in the US, made (published) more than 95 years ago. Terms end with the year.
LIFE_PLUS_YEARS = 70
US_AGE_YEARS = 95


@dataclass(frozen=True)
class Artist:
    name: str
    died: int


@dataclass(frozen=True)
class Painting:
    name: str  # output file stem
    title: str
    artist: Artist
    year: str
    rcc: str  # the .rcc file that holds it
    path: str  # inside the .rcc: the whole image, or the board whose tiles make it up
    note: str = ""


VAN_GOGH = Artist("Vincent van Gogh", 1890)
HOKUSAI = Artist("Katsushika Hokusai", 1849)
HIROSHIGE = Artist("Utagawa Hiroshige", 1858)
RENOIR = Artist("Pierre-Auguste Renoir", 1919)
ARCIMBOLDO = Artist("Giuseppe Arcimboldo", 1593)


def _whole(name: str, title: str, artist: Artist, year: str, image: str, note: str = ""):
    return Painting(name, title, artist, year, "details.rcc",
                    f"{DETAILS}/image/{image}_background.webp", note)


def _puzzle(name: str, title: str, artist: Artist, year: str, board: int, note: str = ""):
    return Painting(name, title, artist, year, "paintings.rcc",
                    f"{PUZZLES}/board/board{board}_0.qml", note)


# Every painting in gcompris-qt-data 3.1 (GCompris' own caption goes into provenance.json; where
# it gives another year, `note` says so). Not here: the Degas "Dance Class" tiles, which have no
# board to place them, and the details activity's landmark photos (content_photos.py uses those).
CATALOGUE: tuple[Painting, ...] = (
    _whole("cafe-terrace-at-night", "Café Terrace at Night", VAN_GOGH, "1888", "Gogh4"),
    _whole("night-cafe", "The Night Café", VAN_GOGH, "1888", "Van_Gogh_The_Night_Cafe"),
    _whole("pere-tanguy", "Portrait of Père Tanguy", VAN_GOGH, "1887", "PortraitOfPereTanguy"),
    _whole("langlois-bridge", "The Langlois Bridge at Arles with a Lady with an Umbrella",
           VAN_GOGH, "1888", "VincentVanGoghBridge"),
    _whole("the-harvest", "The Harvest", VAN_GOGH, "1888", "VincentVanGogh0019"),
    _whole("church-at-auvers", "The Church at Auvers", VAN_GOGH, "1890",
           "Eglise_dAuvers-sur-Oise"),
    _whole("painter-on-his-way-to-work", "The Painter on His Way to Work", VAN_GOGH, "1888",
           "VincentVanGogh0013", "the original was lost in 1945; known from reproductions"),
    _whole("saint-paul-hospital-entrance", "Entrance Hall of Saint-Paul Hospital", VAN_GOGH,
           "1889", "VincentVanGogh0012"),
    _puzzle("village-street-in-auvers", "Village Street in Auvers", VAN_GOGH, "1890", 22),
    _puzzle("great-wave", "The Great Wave off Kanagawa", HOKUSAI, "c. 1831", 7,
            "caption: 1823-1829"),
    _puzzle("ejiri-in-suruga", "Ejiri in Suruga Province", HOKUSAI, "c. 1830-1832", 6),
    _puzzle("kazusa-sea-route", "The Kazusa Sea Route", HOKUSAI, "c. 1830-1832", 12),
    _puzzle("ryogoku-bridge-sunset",
            "Viewing Sunset over the Ryōgoku Bridge from the Onmaya Embankment", HOKUSAI,
            "c. 1830-1832", 10),
    _puzzle("poppies", "Poppies", HOKUSAI, "c. 1833-1834", 11),
    _puzzle("oiran-and-kamuro", "Oiran and Kamuro", HOKUSAI, "undated", 4),
    _puzzle("woman-holding-a-fan", "Woman Holding a Fan", HOKUSAI, "undated", 5),
    _puzzle("inokashira-snow", "The Benzaiten Shrine at Inokashira in Snow", HIROSHIGE,
            "undated", 8, "caption: 1760-70, before the artist was born (1797)"),
    _puzzle("horse-mackerel-and-prawn", "Horse Mackerel and Prawn", HIROSHIGE, "c. 1840", 9),
    _puzzle("moulin-de-la-galette", "Bal du moulin de la Galette", RENOIR, "1876", 1),
    _puzzle("girls-at-the-piano", "Girls at the Piano", RENOIR, "1892", 18),
    _puzzle("ramparts-aigues-mortes", "The Ramparts at Aigues-Mortes",
            Artist("Frédéric Bazille", 1870), "1867", 20),
    _puzzle("summertime", "Summertime", Artist("Mary Cassatt", 1926), "1894", 21),
    _puzzle("composition-viii", "Composition VIII", Artist("Wassily Kandinsky", 1944), "1923",
            19),
    _puzzle("spring", "Spring", ARCIMBOLDO, "1573", 2),
    _puzzle("the-librarian", "The Librarian", ARCIMBOLDO, "c. 1566", 3),
    _puzzle("the-harvesters", "The Harvesters", Artist("Pieter Bruegel the Elder", 1569), "1565",
            17),
    _puzzle("durer-lion", "Lion", Artist("Albrecht Dürer", 1528), "1494", 16),
    _puzzle("mona-lisa", "Mona Lisa", Artist("Leonardo da Vinci", 1519), "c. 1503-1519", 14),
    _puzzle("pala-di-pesaro", "Pesaro Altarpiece (landscape detail)",
            Artist("Giovanni Bellini", 1516), "c. 1475-1485", 15,
            "the board shows a landscape panel of the altarpiece, not the whole"),
    _puzzle("pieta", "Pietà", Artist("Michelangelo", 1564), "1498-1499", 13,
            "a photograph of a marble sculpture: the photograph's own rights are not recorded; "
            "not used for a style"),
)

# The bundled styles: name -> painting (configs/bundled/README.md says why these six).
STYLES_FILE = Path(__file__).with_name("styles.toml")


def read_styles(path: Path = STYLES_FILE) -> dict[str, str]:
    """Bundled style -> the painting it learns from, as configs/bundled/styles.toml names them."""
    with path.open("rb") as file:
        return {style: entry["painting"] for style, entry in tomllib.load(file)["styles"].items()}


STYLES = read_styles()


# --- Puzzle boards -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedTile:
    file: str  # image path relative to the board's resource folder ("image/x.webp")
    x: float  # tile centre, as a fraction of the board's width
    y: float


@dataclass(frozen=True)
class Board:
    caption: str
    width: int
    height: int
    tiles: tuple[PlacedTile, ...]


BOARD_SIZE = (702, 515)  # GCompris' default when the background entry gives none


def parse_board(text: str, source: str = "board") -> Board:
    """A GCompris board file (QML with a list of JSON-like objects) -> where each tile goes."""
    caption = re.search(r'instruction:\s*qsTr\("(.*)"\)', text)
    width, height = BOARD_SIZE
    tiles = []
    for block in re.findall(r"\{([^{}]*)\}", text):
        entry = dict(re.findall(r'"(\w+)"\s*:\s*"?([^",\n]*?)"?\s*(?:,|$)', block, re.M))
        if entry.get("type") == "SHAPE_BACKGROUND_IMAGE":
            width = round(_number(entry.get("width", width), source))
            height = round(_number(entry.get("height", height), source))
        elif "pixmapfile" in entry and "x" in entry and "y" in entry:
            tiles.append(PlacedTile(entry["pixmapfile"], _number(entry["x"], source),
                                    _number(entry["y"], source)))
    if not tiles:
        raise InputError(f"{source}: no tiles with a pixmapfile and an x, y position")
    return Board(caption[1] if caption else "", width, height, tuple(tiles))


def _number(text: str, source: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{source}: tile position {text!r} is not a number") from None


def reassemble(tiles: Sequence[tuple[Image.Image, float, float]],
               board_size: tuple[int, int]) -> Image.Image:
    """Put jigsaw tiles back together: each (image, x, y) has its centre at (x * width,
    y * height) of the board. Returns the RGB picture cropped to the tiles, seams filled."""
    width, height = board_size
    placed = []  # (tile, its left, its top) on the board
    for image, x, y in tiles:
        rgba = image.convert("RGBA")
        centre = (x * width, y * height)
        placed.append((rgba, round(centre[0] - rgba.width / 2), round(centre[1] - rgba.height / 2)))
    left = min(tile_left for _, tile_left, _ in placed)
    top = min(tile_top for _, _, tile_top in placed)
    right = max(tile_left + rgba.width for rgba, tile_left, _ in placed)
    bottom = max(tile_top + rgba.height for rgba, _, tile_top in placed)
    canvas = Image.new("RGBA", (right - left, bottom - top), (0, 0, 0, 0))
    for rgba, tile_left, tile_top in placed:
        canvas.alpha_composite(rgba, (tile_left - left, tile_top - top))
    return Image.fromarray(fill_seams(np.asarray(canvas)))


def fill_seams(rgba: np.ndarray) -> np.ndarray:
    """RGBA with holes (alpha < 128) -> RGB: drop edge rows/columns that are mostly holes, then
    fill each remaining hole with the mean of its filled 4-neighbours, growing inwards."""
    rgba = _trim_ragged_edges(rgba)
    rgb = rgba[..., :3].astype(np.float32)
    filled = rgba[..., 3] >= 128
    for _ in range(MAX_SEAM):
        if filled.all():
            return rgb.round().astype(np.uint8)
        rgb, filled = _grow(rgb, filled)
    raise InputError(f"tiles leave a gap wider than {MAX_SEAM} px: they do not make one picture")


def _trim_ragged_edges(rgba: np.ndarray) -> np.ndarray:
    covered = rgba[..., 3] >= 128
    rows, cols = covered.mean(axis=1), covered.mean(axis=0)
    keep_rows = np.flatnonzero(rows >= 0.5)
    keep_cols = np.flatnonzero(cols >= 0.5)
    if not len(keep_rows) or not len(keep_cols):
        raise InputError("tiles cover less than half of every row or column")
    return rgba[keep_rows[0]:keep_rows[-1] + 1, keep_cols[0]:keep_cols[-1] + 1]


def _grow(rgb: np.ndarray, filled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros_like(rgb)
    count = np.zeros(filled.shape, np.float32)
    weights = filled.astype(np.float32)
    for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
        total += _shifted(rgb * weights[..., None], shift, axis)
        count += _shifted(weights, shift, axis)
    fill = ~filled & (count > 0)
    rgb = rgb.copy()
    rgb[fill] = total[fill] / count[fill][:, None]
    return rgb, filled | fill


def _shifted(array: np.ndarray, shift: int, axis: int) -> np.ndarray:
    """`array` moved by `shift` along `axis`, zeros coming in (no wrap-around)."""
    out = np.zeros_like(array)
    src = [slice(None)] * array.ndim
    dst = [slice(None)] * array.ndim
    src[axis] = slice(0, -shift) if shift > 0 else slice(-shift, None)
    dst[axis] = slice(shift, None) if shift > 0 else slice(0, shift)
    out[tuple(dst)] = array[tuple(src)]
    return out


# --- Extraction --------------------------------------------------------------------------------


def painting_image(resources: ResourceFile, painting: Painting) -> tuple[Image.Image, str, int]:
    """(picture, GCompris' caption, how many tiles it was made of: 1 for a whole image)."""
    where = f"{resources.source}:{painting.path}"
    if painting.path.endswith(".webp"):
        return decode_image(resources.read(painting.path), where).convert("RGB"), "", 1
    board = parse_board(resources.read(painting.path).decode("utf-8"), where)
    folder = PurePosixPath(painting.path).parent.parent
    tiles = [(decode_image(resources.read(f"{folder}/{tile.file}"), f"{where}: {tile.file}"),
              tile.x, tile.y) for tile in board.tiles]
    return reassemble(tiles, (board.width, board.height)), board.caption, len(tiles)


def public_domain_status(painting: Painting, today: datetime.date) -> tuple[bool, str]:
    """Free when the artist died over LIFE_PLUS_YEARS and the work was made over US_AGE_YEARS
    years ago, each counted to the end of a calendar year."""
    made = _year_made(painting)
    life_free_from = painting.artist.died + LIFE_PLUS_YEARS + 1
    us_free_from = made + US_AGE_YEARS + 1
    if today.year >= max(life_free_from, us_free_from):
        return True, (f"public domain: the artist died in {painting.artist.died} (life + "
                      f"{LIFE_PLUS_YEARS} ended {life_free_from - 1}) and it was made by {made} "
                      f"(US: free since {us_free_from})")
    return False, (f"NOT public domain until {max(life_free_from, us_free_from)} (artist died "
                   f"{painting.artist.died}, made {made})")


def _year_made(painting: Painting) -> int:
    """The (latest) year in `painting.year`; an undated work was made by the artist's death."""
    years = [int(year) for year in re.findall(r"\d{4}", painting.year)]
    return max(years) if years else painting.artist.died


def provenance_record(painting: Painting, caption: str, tiles: int, licence: str,
                      version: str, today: datetime.date) -> dict:
    is_free, status = public_domain_status(painting, today)
    return {"name": painting.name, "file": f"{painting.name}.png", "title": painting.title,
            "artist": painting.artist.name, "year": painting.year,
            "artist_died": painting.artist.died, "gcompris_caption": caption,
            "package": GCOMPRIS_PACKAGE, "package_version": version,
            "rcc": painting.rcc, "path_in_rcc": painting.path, "tiles": tiles,
            "reproduction_licence": licence, "public_domain": is_free, "status": status,
            "note": painting.note,
            "style": next((s for s, p in STYLES.items() if p == painting.name), None)}


def reproduction_licence(resources: ResourceFile, painting: Painting) -> str:
    """What the activity's image README says about the picture (or its first tile)."""
    root = DETAILS if painting.rcc == "details.rcc" else PUZZLES
    notices = parse_readme(resources.read(f"{root}/image/README").decode("utf-8"))
    if painting.path.endswith(".webp"):
        notice = notice_for(notices, PurePosixPath(painting.path).name)
    else:
        first = parse_board(resources.read(painting.path).decode("utf-8")).tiles[0].file
        notice = notice_for(notices, PurePosixPath(first).name)
    return notice.licence if notice else "not stated in the activity's README"


def save_png(image: Image.Image, target: Path) -> None:
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")


def extract(out: Path, rcc_dir: Path = GCOMPRIS_RCC_DIR,
            today: datetime.date | None = None) -> list[dict]:
    today = today or datetime.date.today()
    version = package_version(GCOMPRIS_PACKAGE) or "unknown (not installed by dpkg)"
    resources = {name: open_rcc(rcc_dir, name) for name in ("details.rcc", "paintings.rcc")}
    captions = board_captions(resources["details.rcc"])
    records = []
    for painting in CATALOGUE:
        rcc = resources[painting.rcc]
        image, caption, tiles = painting_image(rcc, painting)
        save_png(image, out / "paintings" / f"{painting.name}.png")
        records.append(provenance_record(painting, caption or captions.get(painting.path, ""),
                                         tiles, reproduction_licence(rcc, painting), version,
                                         today))
    atomic_write_text(out / "paintings" / "provenance.json",
                      json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    write_style_folders(out)
    return records


def write_style_folders(out: Path) -> None:
    for style, name in STYLES.items():
        image = Image.open(out / "paintings" / f"{name}.png")
        save_png(image, out / "styles" / style / f"{name}.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rcc-dir", type=Path, default=GCOMPRIS_RCC_DIR)
    args = parser.parse_args(argv)
    records = extract(args.out, args.rcc_dir)
    free = sum(r["public_domain"] for r in records)
    print(f"wrote {len(records)} paintings ({free} public domain) to "
          f"{args.out}/paintings and {len(STYLES)} style folders to {args.out}/styles")


if __name__ == "__main__":
    sys.exit(run_cli("paintings.py", main))

"""Gather the content photos the bundled styles are distilled on, from installed packages only
(nothing is downloaded), with a manifest that names each photo's package, version and licence.

Sources (configs/bundled/README.md lists what each holds and why):

    scikit-image       photos inside the installed wheel (skimage.data, no optional downloads)
    gcompris-qt-data   photos in GCompris' activities: animals, monuments, musicians, the sea,
                       landmarks; each with its author, licence and origin in the activity README
    lomiri-wallpapers-16.04, mate-backgrounds
                       photo wallpapers (the abstract ones left out), licences from
                       /usr/share/doc/PACKAGE/copyright; used when installed, else skipped

    OUT/train/NAME.jpg     photos the styles learn from
    OUT/heldout/NAME.jpg   HELD_OUT: fixed, never trained on by any style (for evaluation)
    OUT/manifest.json      one entry per photo: file, split, what it shows, package, version,
                           licence, copyright, origin, where in the package it came from

Every photo is written as RGB JPEG (quality 95), its longer side at most MAX_SIDE.

Usage: python configs/bundled/content_photos.py OUT [--rcc-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gcompris import (
    DETAILS,
    GCOMPRIS_PACKAGE,
    GCOMPRIS_RCC_DIR,
    INSTALL_HINT,
    Notice,
    board_captions,
    debian_notice,
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

MAX_SIDE = 1024
MIN_SIDE = 256  # smaller pictures in an activity are icons and sprites, not photos
JPEG_QUALITY = 95

# Fixed: photos of every kind (people, a street, a city at night, landscape, animals, the sea)
# that no bundled style trains on. Chosen from scikit-image and gcompris-qt-data, which the
# recipe always installs, so the set is the same wherever it is rebuilt.
HELD_OUT: frozenset[str] = frozenset({
    "skimage-camera",              # a man with a camera (grey)
    "music-japan",                 # people at a night festival
    "music-orchestra",             # an orchestra in a concert hall
    "monument-brandenburg-gate",   # a city gate and street at dusk
    "monument-great-wallof-china",  # mountains
    "monument-hawa-mahal",         # a facade in the sun
    "landmark-tower-bridge-london",  # a city at night
    "animal-camels",               # desert
    "animal-kingfisher",           # a bird, close
    "farm-cow",                    # a field
    "wildlife-polar-bear",         # snow
    "sea-sea3",                    # under water
})


@dataclass(frozen=True)
class Photo:
    name: str  # unique; the output file stem
    shows: str
    package: str
    version: str
    licence: str
    copyright: str
    origin: str  # where the picture was first published, when known
    source: str  # where in the package it came from
    read: Callable[[], Image.Image] = field(repr=False, compare=False)


def slug(text: str) -> str:
    """'GizahPyramids_background' -> 'gizah-pyramids-background'."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def normalise_licence(text: str) -> str:
    """One spelling per licence: 'CC-BY-SA 4.0' -> 'CC-BY-SA-4.0', 'Public Domain' ->
    'public domain' (the READMEs spell them both ways)."""
    text = re.sub(r"^(CC-BY(?:-SA)?|CC0) ?(\d\.\d)$", r"\1-\2", text.strip())
    return "public domain" if text.lower() == "public domain" else text


# --- scikit-image ------------------------------------------------------------------------------

SKIMAGE_PHOTOS: dict[str, tuple[str, str]] = {  # loader name -> (what it shows, licence)
    "astronaut": ("person: astronaut Eileen Collins, portrait", "public domain (NASA)"),
    "camera": ("person: a man with a camera on a tripod (grey)", "CC0 (Lav Varshney)"),
    "chelsea": ("animal: Chelsea the cat", "CC0 (Stefan van der Walt)"),
    "coffee": ("object: a cup of coffee on a table", "CC0 (Rachel Michetti)"),
    "rocket": ("object: a rocket launch, landscape", "public domain (SpaceX)"),
    "stereo_motorcycle": ("interior: a motorcycle in a workshop",
                          "not stated (Middlebury 2014 stereo benchmark, via scikit-image)"),
}


def skimage_photos() -> Iterator[Photo]:
    import skimage
    from skimage import data

    for loader, (shows, licence) in SKIMAGE_PHOTOS.items():
        def read(loader=loader) -> Image.Image:
            pixels = getattr(data, loader)()
            return Image.fromarray(pixels[0] if isinstance(pixels, tuple) else pixels)
        yield Photo(f"skimage-{loader.removeprefix('stereo_')}", shows, "scikit-image",
                    skimage.__version__, licence, "", "", f"skimage.data.{loader}()", read)


# --- GCompris ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoSet:
    """One folder of photos inside a GCompris .rcc file."""

    prefix: str  # name prefix and kind of picture ("animal")
    rcc: str
    folder: str  # inside the .rcc; its README covers the photos in and under it
    pattern: str = "*.webp"
    shows: str = ""  # what its photos show, where neither a board nor the file name says


ACTIVITIES = "gcompris/src/activities"
GCOMPRIS_SETS: tuple[PhotoSet, ...] = (
    PhotoSet("animal", "erase.rcc", f"{ACTIVITIES}/erase/resource"),
    PhotoSet("monument", "explore_monuments.rcc", f"{ACTIVITIES}/explore_monuments/resource"),
    PhotoSet("farm", "explore_farm_animals.rcc",
             f"{ACTIVITIES}/explore_farm_animals/resource/animals"),
    PhotoSet("wildlife", "explore_world_animals.rcc",
             f"{ACTIVITIES}/explore_world_animals/resource/animals"),
    PhotoSet("music", "explore_world_music.rcc",
             f"{ACTIVITIES}/explore_world_music/resource/music"),
    PhotoSet("sea", "clickgame.rcc", f"{ACTIVITIES}/clickgame/resource", "sea*.webp",
             "under water: sea floor, reef or cave"),
    PhotoSet("landmark", "details.rcc", f"{DETAILS}/image", "*_background.webp"),
)
# Not taken although they are photos: lang.rcc's words are drawings, babyshapes' dog is a
# cut-out, and the details activity's paintings are paintings (their README says so).


def gcompris_photos(rcc_dir: Path, sets: Iterable[PhotoSet] = GCOMPRIS_SETS) -> Iterator[Photo]:
    version = package_version(GCOMPRIS_PACKAGE) or "unknown (not installed by dpkg)"
    opened: dict[str, ResourceFile] = {}
    for photo_set in sets:
        if photo_set.rcc not in opened:
            opened[photo_set.rcc] = open_rcc(rcc_dir, photo_set.rcc)
        yield from _set_photos(opened[photo_set.rcc], photo_set, version)


def _set_photos(resources: ResourceFile, photo_set: PhotoSet, version: str) -> Iterator[Photo]:
    readme = resources.read(f"{photo_set.folder}/README").decode("utf-8")
    notices = parse_readme(readme)
    captions = board_captions(resources)
    for entry in resources.entries:
        relative = _relative(entry.path, photo_set.folder)
        if relative is None or not PurePosixPath(relative).match(photo_set.pattern):
            continue
        notice = notice_for(notices, relative)
        if notice is None or "painting" in notice.comment.lower():
            continue  # no licence note to go by, or not a photo
        where = f"{resources.source}:{entry.path}"
        read = lambda resources=resources, path=entry.path, where=where: decode_image(  # noqa: E731
            resources.read(path), where)
        stem = PurePosixPath(relative).stem.removesuffix("_background")
        shows = captions.get(entry.path) or photo_set.shows or _humanise(relative)
        yield Photo(f"{photo_set.prefix}-{slug(stem)}", f"{photo_set.prefix}: {shows}",
                    GCOMPRIS_PACKAGE, version, notice.licence, notice.copyright,
                    notice.source or _first_url(notice.comment), where, read)


def _relative(path: str, folder: str) -> str | None:
    return path[len(folder) + 1:] if path.startswith(folder + "/") else None


def _humanise(relative: str) -> str:
    """'usa/lincolnMemorial.webp' -> 'lincoln memorial (usa)'."""
    path = PurePosixPath(relative)
    name = slug(path.stem).replace("-", " ")
    return f"{name} ({path.parent})" if str(path.parent) != "." else name


def _first_url(text: str) -> str:
    found = re.search(r"https?://\S+", text)
    return found[0].rstrip(".,)") if found else ""


# --- Debian wallpaper packages ------------------------------------------------------------------


@dataclass(frozen=True)
class WallpaperSet:
    package: str
    folder: Path
    photos: dict[str, str]  # file name -> what it shows (photos only)


WALLPAPER_SETS: tuple[WallpaperSet, ...] = (
    WallpaperSet("lomiri-wallpapers-16.04", Path("/usr/share/backgrounds"), {
        "Bridge_by_Sander_Klootwijk.jpg": "landscape: bridge cables over a tidal flat",
        "Dragonfly_by_Bolly.jpg": "nature: a dragonfly on a twig, leaves and sky",
        "Picture_0B_by_freespace.jpg": "object: a fig in an orange bowl on concrete",
        "Picture_1A_by_freespace.jpg": "object: paint brushes, close",
        "Wine_by_Jakkub_Mede.jpg": "interior: a room with a table, wine, a drum and a beanbag",
        "aitzgorri_by_Aitzol_Berasategi.jpg": "landscape: mountains over an autumn meadow",
        "free_by_Peter_Nerlich.jpg": "interior: a ceiling lamp with a toy bird",
        "friends_by_Aitzol_Berasategi.jpg": "animal: two dogs at the door of a wooden house",
        "greentock_by_Peter_Nerlich.jpg": "object: a wall clock, close",
        "life_by_Aitzol_Berasategi.jpg": "landscape: a stream in a forest",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg": "landscape: a path in the mountains",
        "seeding_by_Clements_Engelhardt.jpg": "nature: dandelion clocks against the sun",
        "sunset_by_Aitzol_Berasategi.jpg": "landscape: sunset over hills",
    }),
    WallpaperSet("mate-backgrounds", Path("/usr/share/backgrounds/mate/nature"), {
        "Aqua.jpg": "nature: a water drop splashing",
        "Dune.jpg": "landscape: dune grass by the sea",
        "FreshFlower.jpg": "nature: an orange flower, close",
        "Garden.jpg": "nature: a red marigold in a garden",
        "LadyBird.jpg": "nature: a ladybird on a grass blade",
        "RainDrops.jpg": "nature: raindrops on leaves",
        "Storm.jpg": "landscape: storm clouds over a road",
        "TwoWings.jpg": "nature: dandelion seeds before an orange flower",
        "YellowFlower.jpg": "nature: a yellow flower, close",
    }),
)
# Looked at and left out: gnome-backgrounds 43, ukui-wallpapers, sway-backgrounds and
# lomiri-wallpapers-20.04 are (nearly) all abstract art; jigzo-data has no photos; desktop-base
# is Debian theme art; mate-backgrounds' Blinds, GreenMeadow and Wood are flat textures.


def wallpaper_photos(sets: Iterable[WallpaperSet] = WALLPAPER_SETS,
                     skipped: list[str] | None = None) -> Iterator[Photo]:
    for wallpapers in sets:
        version = package_version(wallpapers.package)
        if version is None or not wallpapers.folder.is_dir():
            if skipped is not None:
                skipped.append(f"{wallpapers.package} (not installed: "
                               f"apt-get install {wallpapers.package})")
            continue
        for file_name, shows in wallpapers.photos.items():
            path = wallpapers.folder / file_name
            notice = debian_notice(wallpapers.package, file_name) or Notice()
            stem = path.stem.split("_by_")[0]  # lomiri's files name their photographer
            yield Photo(f"{slug(wallpapers.package.split('-')[0])}-{slug(stem)}", shows,
                        wallpapers.package, version, notice.licence, notice.copyright, "",
                        str(path), lambda path=path: _open_file(path))


def _open_file(path: Path) -> Image.Image:
    try:
        return decode_image(path.read_bytes(), str(path))
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None


# --- Writing -----------------------------------------------------------------------------------


def fit(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """RGB, the longer side at most `max_side` (never enlarged)."""
    image = image.convert("RGB")
    scale = max_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def write_photo(photo: Photo, target: Path) -> tuple[int, int]:
    image = photo.read()
    if min(image.size) < MIN_SIDE:
        raise InputError(f"{photo.source}: {image.width}x{image.height} is too small for a "
                         f"content photo (needs {MIN_SIDE} px on the shorter side)")
    image = fit(image)
    with atomic_path(target) as tmp:
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY)
    return image.size


def gather(out: Path, photos: Iterable[Photo],
           held_out: frozenset[str] = HELD_OUT) -> list[dict]:
    """Write every photo to OUT/train or OUT/heldout and OUT/manifest.json; returns the manifest.

    Two photos with the same origin are one photo (the first is kept). Fails, naming it, if a
    held-out photo is missing: the held-out set is fixed."""
    manifest: list[dict] = []
    names: set[str] = set()
    origins: set[str] = set()
    for photo in photos:
        if photo.name in names:
            raise InputError(f"two photos are named {photo.name!r} ({photo.source})")
        if photo.origin and photo.origin in origins:
            continue
        names.add(photo.name)
        origins.add(photo.origin)
        split = "heldout" if photo.name in held_out else "train"
        file = f"{split}/{photo.name}.jpg"
        width, height = write_photo(photo, out / file)
        manifest.append({"file": file, "split": split, "shows": photo.shows,
                         "width": width, "height": height, "package": photo.package,
                         "version": photo.version, "licence": normalise_licence(photo.licence),
                         "copyright": photo.copyright, "origin": photo.origin,
                         "source": photo.source})
    missing = sorted(held_out - names)
    if missing:
        raise InputError(f"held-out photos missing: {', '.join(missing)} "
                         f"(are scikit-image and {GCOMPRIS_PACKAGE} installed? {INSTALL_HINT})")
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False)
                      + "\n")
    return manifest


def summary(manifest: list[dict]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for item in manifest:
        key = (item["package"], item["split"])
        counts[key] = counts.get(key, 0) + 1
    packages = sorted({package for package, _ in counts})
    parts = [f"{package}: {counts.get((package, 'train'), 0)} train + "
             f"{counts.get((package, 'heldout'), 0)} held out" for package in packages]
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rcc-dir", type=Path, default=GCOMPRIS_RCC_DIR)
    args = parser.parse_args(argv)
    skipped: list[str] = []
    photos = [*skimage_photos(), *gcompris_photos(args.rcc_dir),
              *wallpaper_photos(skipped=skipped)]
    manifest = gather(args.out, photos)
    train = sum(item["split"] == "train" for item in manifest)
    print(f"wrote {train} training and {len(manifest) - train} held-out photos to {args.out} "
          f"({summary(manifest)})")
    for line in skipped:
        print(f"skipped {line}")


if __name__ == "__main__":
    sys.exit(run_cli("content_photos.py", main))

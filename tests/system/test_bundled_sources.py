"""The bundled styles' sources (configs/bundled/): the Qt resource reader, the jigsaw
reassembly of GCompris' paintings, and the content-photo gathering, on fixtures built here (no
Debian package needed): small .rcc files written by this file's own writer, synthetic tiles, and
the photos inside scikit-image."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecast.core.errors import EX_CONFIG, InputError, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "configs" / "bundled"))
import content_photos
import gcompris
import paintings
import qt_resources

# --- A small writer of Qt's binary resource format (what `rcc --binary` writes) ----------------


def qt_hash(name: str) -> int:
    """qt_hash() over UTF-16 units: rcc sorts a folder's children by it."""
    value = 0
    encoded = name.encode("utf-16-be")
    for unit in struct.unpack(f">{len(encoded) // 2}H", encoded):
        value = (value << 4) + unit
        value ^= (value & 0xF0000000) >> 23
        value &= 0x0FFFFFFF
    return value


def build_rcc(files: dict[str, bytes], compressed: set[str] = frozenset(), version: int = 3,
              zstd: set[str] = frozenset()) -> bytes:
    """A .rcc holding `files` ({'folder/name': bytes}); paths in `compressed` are stored as
    qCompress output (zlib), those in `zstd` flagged as zstd (their bytes stored as given)."""
    root: dict = {}
    for path in files:
        *folders, name = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = path
    nodes: list[tuple[str, object]] = [("", root)]  # breadth first, as rcc lays them out
    children: dict[int, tuple[int, int]] = {}
    index = 0
    while index < len(nodes):
        _, item = nodes[index]
        if isinstance(item, dict):
            ordered = sorted(item.items(), key=lambda kv: qt_hash(kv[0]))
            children[index] = (len(nodes), len(ordered))
            nodes.extend(ordered)
        index += 1
    names, data_blob, tree = bytearray(), bytearray(), bytearray()
    for index, (name, item) in enumerate(nodes):
        name_offset = len(names) if index else 0
        if index:
            names += struct.pack(">HI", len(name), qt_hash(name)) + name.encode("utf-16-be")
        if isinstance(item, dict):
            count_first = children[index]
            tree += struct.pack(">IHII", name_offset, 0x02, count_first[1], count_first[0])
        else:
            stored, flags = files[item], 0
            if item in compressed:
                stored, flags = struct.pack(">I", len(stored)) + zlib.compress(stored), 0x01
            elif item in zstd:
                flags = 0x04
            tree += struct.pack(">IHHHI", name_offset, flags, 0, 0, len(data_blob))
            data_blob += struct.pack(">I", len(stored)) + stored
        if version >= 2:
            tree += struct.pack(">Q", 0)
    header_size = 24 if version >= 3 else 20
    tree_offset = header_size
    data_offset = tree_offset + len(tree)
    names_offset = data_offset + len(data_blob)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    if version >= 3:
        header += struct.pack(">I", 0x01 if compressed else 0)
    return header + bytes(tree) + bytes(data_blob) + bytes(names)


FILES = {
    "readme.txt": b"plain bytes, stored as they are\n",
    "images/photo.bin": bytes(range(256)) * 8,
    "images/deeper/nested.txt": b"compressed " * 50,
}


@pytest.fixture
def rcc_file(tmp_path) -> Path:
    path = tmp_path / "fixture.rcc"
    path.write_bytes(build_rcc(FILES, compressed={"images/deeper/nested.txt"}))
    return path


# --- The reader ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reader_lists_and_reads_every_entry_byte_exact(version):
    resources = qt_resources.ResourceFile(
        build_rcc(FILES, compressed={"images/deeper/nested.txt"}, version=version))
    assert sorted(entry.path for entry in resources.entries) == sorted(FILES)
    by_path = {entry.path: entry for entry in resources.entries}
    assert by_path["images/deeper/nested.txt"].compression == "zlib"
    assert by_path["readme.txt"].compression == "none"
    for path, data in FILES.items():
        assert resources.read(path) == data
        assert resources.read(f":/{path}") == data  # Qt's own spelling of a resource path


def test_extract_writes_the_tree_and_honours_a_pattern(rcc_file, tmp_path):
    out = tmp_path / "out"
    written = qt_resources.ResourceFile.open(rcc_file).extract(out, "images/*")
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "images/deeper/nested.txt", "images/photo.bin"]
    assert (out / "images/deeper/nested.txt").read_bytes() == FILES["images/deeper/nested.txt"]
    assert not (out / "readme.txt").exists()


def test_cli_lists_entries(rcc_file, capsys):
    assert qt_resources.main(["list", str(rcc_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "zlib  images/deeper/nested.txt" in lines and len(lines) == 3


def _one_line_error(args, capsys) -> str:
    code = run_cli("qt_resources.py", lambda: qt_resources.main(args))
    err = capsys.readouterr().err
    assert code == EX_CONFIG
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("damage", ["not_rcc", "truncated", "bad_zlib", "bad_version"])
def test_a_damaged_or_foreign_file_is_one_clear_line(tmp_path, capsys, damage):
    blob = build_rcc(FILES, compressed={"images/deeper/nested.txt"})
    if damage == "not_rcc":
        blob = b"\x89PNG\r\n\x1a\n" + bytes(100)
    elif damage == "truncated":
        blob = blob[:40]
    elif damage == "bad_zlib":
        start = blob.index(struct.pack(">I", len(FILES["images/deeper/nested.txt"])))
        blob = blob[:start + 4] + b"\x00garbage" + blob[start + 12:]
    else:
        blob = blob[:4] + struct.pack(">I", 9) + blob[8:]
    path = tmp_path / "broken.rcc"
    path.write_bytes(blob)
    args = ["extract", str(path), str(tmp_path / "out")]
    err = _one_line_error(args, capsys)
    assert "broken.rcc" in err and "Traceback" not in err


def test_a_name_that_would_escape_the_output_folder_is_refused(tmp_path):
    blob = build_rcc({"xx/evil.txt": b"x"}).replace("xx".encode("utf-16-be"),
                                                     "..".encode("utf-16-be"))
    with pytest.raises(qt_resources.ResourceFormatError, match=r"'\.\.'"):
        qt_resources.ResourceFile(blob)


def test_a_missing_file_is_one_clear_line(tmp_path, capsys):
    err = _one_line_error(["list", str(tmp_path / "absent.rcc")], capsys)
    assert "cannot read" in err


def test_a_zstd_entry_never_crashes_the_reader():
    resources = qt_resources.ResourceFile(build_rcc({"z.bin": b"not a zstd frame"},
                                                    zstd={"z.bin"}))
    assert resources.entries[0].compression == "zstd"
    with pytest.raises(InputError, match="zstd"):
        resources.read("z.bin")


QT_RCC = [path for path in ("/usr/lib/qt6/libexec/rcc", "/usr/lib/qt5/bin/rcc",
                            shutil.which("rcc")) if path and Path(path).is_file()]


@pytest.mark.skipif(not QT_RCC, reason="Qt's rcc is not installed (optional cross-check)")
@pytest.mark.parametrize("version", [1, 2, 3])
def test_files_written_by_qts_own_rcc_read_back_byte_exact(tmp_path, version):
    for path, data in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    files = "".join(f"<file>{path}</file>" for path in FILES)
    (tmp_path / "t.qrc").write_text(f'<RCC><qresource prefix="/p">{files}</qresource></RCC>')
    subprocess.run([QT_RCC[0], "--binary", "--format-version", str(version), "t.qrc",
                    "-o", "t.rcc"], cwd=tmp_path, check=True, capture_output=True)
    resources = qt_resources.ResourceFile.open(tmp_path / "t.rcc")
    assert "zlib" in {entry.compression for entry in resources.entries}
    for path, data in FILES.items():
        assert resources.read(f"p/{path}") == data


# --- Jigsaw reassembly -------------------------------------------------------------------------

BOARD = (90, 70)  # board width, height: bigger than the picture, which sits at OFFSET
OFFSET = (7, 5)


def picture(height=48, width=60) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def jigsaw(image: np.ndarray, rows=2, cols=3, knob=4) -> list[tuple[Image.Image, float, float]]:
    """Cut `image` into rows x cols tiles, each with a knob poking into its right and lower
    neighbours, placed as GCompris boards place them: centre as a fraction of BOARD."""
    height, width = image.shape[:2]
    owner = (np.arange(height)[:, None] * rows // height) * cols + \
        (np.arange(width)[None, :] * cols // width)
    for r in range(rows):
        for c in range(cols):
            top, left = r * height // rows, c * width // cols
            mid_y, mid_x = top + height // rows // 2, left + width // cols // 2
            if c + 1 < cols:  # a knob into the right neighbour
                edge = (c + 1) * width // cols
                owner[mid_y - 2:mid_y + 2, edge:edge + knob] = r * cols + c
            if r + 1 < rows:  # and into the lower one
                edge = (r + 1) * height // rows
                owner[edge:edge + knob, mid_x - 2:mid_x + 2] = r * cols + c
    tiles = []
    for index in range(rows * cols):
        ys, xs = np.nonzero(owner == index)
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        rgba = np.zeros((bottom - top, right - left, 4), np.uint8)
        rgba[..., :3] = image[top:bottom, left:right]
        rgba[..., 3] = np.where(owner[top:bottom, left:right] == index, 255, 0)
        centre_x = OFFSET[0] + (left + right) / 2
        centre_y = OFFSET[1] + (top + bottom) / 2
        tiles.append((Image.fromarray(rgba), centre_x / BOARD[0], centre_y / BOARD[1]))
    return tiles


def test_tiles_go_back_together_exactly():
    image = picture()
    rebuilt = paintings.reassemble(jigsaw(image), BOARD)
    assert rebuilt.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(rebuilt), image)


def test_a_one_pixel_seam_is_filled_from_its_neighbours():
    image = np.full((48, 60, 3), 100, np.uint8)
    tiles = jigsaw(image)
    seam = np.asarray(tiles[0][0]).copy()
    seam[:, 10, 3] = 0  # rounding left a hole one pixel wide down the tile
    tiles[0] = (Image.fromarray(seam), *tiles[0][1:])
    rebuilt = np.asarray(paintings.reassemble(tiles, BOARD))
    assert rebuilt.shape == image.shape
    np.testing.assert_array_equal(rebuilt, image)


def test_a_missing_tile_is_refused_not_painted_over():
    tiles = jigsaw(picture(), rows=3, cols=3)
    del tiles[4]  # the middle one: a 20x16 hole
    with pytest.raises(InputError, match="gap"):
        paintings.reassemble(tiles, BOARD)


BOARD_QML = """import QtQuick 2.12
QtObject {
   property string instruction: qsTr("Nobody, A Test Picture - 1850")
   property var levels : [
      {
         "pixmapfile" : "image/bg.svg",
         "type" : "SHAPE_BACKGROUND_IMAGE",
         "width": %d,
         "height": %d
      },
%s
   ]
}
"""


def board_fixture(tiles) -> tuple[str, dict[str, bytes]]:
    entries, images = [], {}
    for index, (tile, x, y) in enumerate(tiles):
        buffer = io.BytesIO()
        tile.save(buffer, format="WEBP", lossless=True, exact=True)
        images[f"{paintings.PUZZLES}/image/t_{index}.webp"] = buffer.getvalue()
        entries.append(f'      {{\n         "pixmapfile" : "image/t_{index}.webp",\n'
                       f'         "x" : "{float(x)!r}",\n         "y" : "{float(y)!r}"\n      }}')
    return BOARD_QML % (*BOARD, ",\n".join(entries)), images


def test_board_file_gives_caption_size_and_tile_places():
    qml, _ = board_fixture(jigsaw(picture()))
    board = paintings.parse_board(qml)
    assert board.caption == "Nobody, A Test Picture - 1850"
    assert (board.width, board.height) == BOARD
    assert len(board.tiles) == 6 and board.tiles[0].file == "image/t_0.webp"


def test_a_painting_comes_out_of_an_rcc_whole():
    image = picture()
    qml, images = board_fixture(jigsaw(image))
    board_path = f"{paintings.PUZZLES}/board/board1_0.qml"
    resources = qt_resources.ResourceFile(build_rcc({board_path: qml.encode(), **images},
                                                    compressed={board_path}))
    painting = paintings.Painting("test", "A Test Picture", paintings.Artist("Nobody", 1850),
                                  "1850", "paintings.rcc", board_path)
    rebuilt, caption, tiles = paintings.painting_image(resources, painting)
    assert (caption, tiles) == ("Nobody, A Test Picture - 1850", 6)
    np.testing.assert_array_equal(np.asarray(rebuilt), image)


def test_public_domain_rule_counts_whole_calendar_years():
    import datetime

    def painting(died: int, year: str) -> paintings.Painting:
        return paintings.Painting("p", "P", paintings.Artist("A", died), year, "x.rcc", "x")

    day = datetime.date(2026, 12, 6)
    assert paintings.public_domain_status(painting(1944, "1923"), day)[0]
    free, status = paintings.public_domain_status(painting(1956, "1923"), day)
    assert not free and "2027" in status  # life + 70 ends with 2026
    free, status = paintings.public_domain_status(painting(1900, "c. 1931-1932"), day)
    assert not free and "2028" in status  # made in 1932: free in the US from 2028
    assert paintings.public_domain_status(painting(1849, "undated"), day)[0]


def test_every_style_names_a_catalogued_public_domain_painting():
    import datetime

    catalogue = {painting.name: painting for painting in paintings.CATALOGUE}
    assert len(paintings.STYLES) == len(set(paintings.STYLES.values())) == 6
    for painting_name in paintings.STYLES.values():
        painting = catalogue[painting_name]
        free, status = paintings.public_domain_status(painting, datetime.date.today())
        assert free, status


# --- Content photos ----------------------------------------------------------------------------


def test_skimage_photos_are_gathered_with_a_manifest_and_a_held_out_split(tmp_path):
    manifest = content_photos.gather(tmp_path, content_photos.skimage_photos(),
                                     held_out=frozenset({"skimage-camera"}))
    assert len(manifest) == len(content_photos.SKIMAGE_PHOTOS)
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    held_out = [item["file"] for item in manifest if item["split"] == "heldout"]
    assert held_out == ["heldout/skimage-camera.jpg"]
    for item in manifest:
        assert item["package"] == "scikit-image" and item["version"] and item["licence"]
        with Image.open(tmp_path / item["file"]) as image:
            assert image.mode == "RGB" and max(image.size) <= content_photos.MAX_SIDE
            assert image.size == (item["width"], item["height"])
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == sorted(
        f"{item['file'].split('/')[1]}" for item in manifest if item["split"] == "train")


def test_a_missing_held_out_photo_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="held-out photos missing: skimage-nothing"):
        content_photos.gather(tmp_path, content_photos.skimage_photos(),
                              held_out=frozenset({"skimage-nothing"}))


def photo(name: str, origin: str, colour=(10, 200, 30)) -> content_photos.Photo:
    return content_photos.Photo(name, "test", "pkg", "1", "CC0", "", origin, "test",
                                lambda: Image.new("RGB", (2048, 300), colour))


def test_large_photos_are_shrunk_and_a_repeated_origin_is_kept_once(tmp_path):
    manifest = content_photos.gather(tmp_path, [photo("a", "https://x/1"),
                                                photo("b", "https://x/1"),
                                                photo("c", "")], held_out=frozenset())
    assert [item["file"] for item in manifest] == ["train/a.jpg", "train/c.jpg"]
    assert (manifest[0]["width"], manifest[0]["height"]) == (1024, 150)


README = """Copyright: Someone
License: CC-BY-SA 4.0
Files:
icon.svg

Copyright: A Photographer
Source: https://commons.wikimedia.org/wiki/File:Kitten.jpg
License: CC0-1.0
Comments: cropping
Files: kitten.webp

Copyright: 2008 Bruno Coudoin and others
License: Public domain
gogh_background.webp
Comment: based on an original painting by Van Gogh, Public domain image.
"""


def test_gcompris_photos_take_each_licence_from_the_activity_readme(tmp_path):
    folder = "gcompris/src/activities/test/resource"
    def webp(size):
        buffer = io.BytesIO()
        Image.new("RGB", size, (200, 100, 50)).save(buffer, format="WEBP")
        return buffer.getvalue()
    files = {f"{folder}/README": README.encode(), f"{folder}/kitten.webp": webp((400, 300)),
             f"{folder}/gogh_background.webp": webp((400, 300)),
             f"{folder}/unlisted.webp": webp((400, 300))}
    (tmp_path / "test.rcc").write_bytes(build_rcc(files, compressed={f"{folder}/README"}))
    photo_set = content_photos.PhotoSet("animal", "test.rcc", folder)
    photos = list(content_photos.gcompris_photos(tmp_path, [photo_set]))
    assert [p.name for p in photos] == ["animal-kitten"]  # no painting, nothing unlicensed
    kitten = photos[0]
    assert (kitten.licence, kitten.copyright) == ("CC0-1.0", "A Photographer")
    assert kitten.origin == "https://commons.wikimedia.org/wiki/File:Kitten.jpg"
    assert kitten.read().size == (400, 300)


@pytest.mark.parametrize(("written", "normal"), [
    ("CC-BY-SA 4.0", "CC-BY-SA-4.0"), ("CC-BY-2.0", "CC-BY-2.0"), ("CC-BY 2.0", "CC-BY-2.0"),
    ("Public Domain", "public domain"), ("Public domain", "public domain"), ("GPL-2+", "GPL-2+")])
def test_licence_spellings_are_normalised(written, normal):
    assert content_photos.normalise_licence(written) == normal


def test_debian_copyright_stanza_is_found_by_file_name(tmp_path):
    doc = tmp_path / "pkg"
    doc.mkdir()
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: Upstream\nLicense: GPL-2+\n\n"
        "Files: 16.04/Bridge_by_Someone.jpg\n 16.04/Other.jpg\nCopyright: 2018, Someone\n"
        "License: CC-BY-SA-4.0\n\n"
        "Files: debian/*\n 16.04/*\nCopyright: Packager\nLicense: Expat\n")
    notice = gcompris.debian_notice("pkg", "Other.jpg", doc_root=tmp_path)
    assert (notice.licence, notice.copyright) == ("CC-BY-SA-4.0", "2018, Someone")
    assert gcompris.debian_notice("pkg", "Unlisted.jpg", doc_root=tmp_path).licence == "Expat"

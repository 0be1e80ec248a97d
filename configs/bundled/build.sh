#!/usr/bin/env bash
# Rebuild the bundled default styles from scratch (about 20 minutes per style on a 2-core CPU):
# images that ship with scikit-image -> stylecast-train fit -> stylecast-export onnx/quantize ->
# daemon/models/. Run from the repository root in the dev venv:
#   bash configs/bundled/build.sh [WORK_DIR]
set -euo pipefail
WORK=${1:-runs/bundled}
STEPS=${STEPS:-1500}
# The committed models were trained with both styles at once, OMP_NUM_THREADS=1 each; thread
# counts change float rounding, so a rebuild is the same recipe, not the same bytes.

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
# --- end of the package sources; the training steps below still use prepare_images.py ---------

python configs/bundled/prepare_images.py "$WORK/images"
mkdir -p daemon/models/fp32
for style in stain retina; do
    stylecast-train fit --config configs/train/nano.toml --content "$WORK/images/content" \
        --style "$WORK/images/$style" --out "$WORK/$style" --size 128 --batch-size 4 \
        --steps "$STEPS" --set data.workers=0 --set run.sample_every=250
    stylecast-export onnx "$WORK/$style/last.ckpt" -o "$WORK/$style.fp32.onnx" --dynamic \
        --images "$WORK/images/content"
    stylecast-export quantize "$WORK/$style.fp32.onnx" -o "$WORK/$style.int8.onnx" \
        --precision int8 --target cpu --calib "$WORK/images/content"
    cp "$WORK/$style.int8.onnx" "daemon/models/$style.onnx"
    cp "$WORK/$style.fp32.onnx" "daemon/models/fp32/$style.onnx"
done
python configs/bundled/gallery.py docs/gallery.png

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

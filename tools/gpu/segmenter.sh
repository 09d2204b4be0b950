#!/bin/bash
# The segmenter's leave-one-site-out folds in a GPU session (the `device` tool's machine), one
# process per site left out, all at once, and with SHIP=1 the model trained on every site beside
# them. Fold models, reports and logs come back as one archive in 15 MB parts. The packed images
# are smaller JPEGs, so score the fold models again here on the originals before quoting a
# number (checked on CPU: the cards are reused, not trained again):
#   mkdir -p .branet/gpu && cat A.tar.part* | tar -xf - -C .branet/gpu
#   branet-train-segmenter <the same flags, ../shared/data paths> --loso \
#       --fold-models .branet/gpu/folds --reuse-trained --out DIR
#
# Here, before the call (64 MiB travel; the GPU machine's python has torch, not our web stack):
#   python tools/gpu/pack_data.py --out .gpu/data --side 384 \
#       ../shared/data/{busi,breast_lesions_usg,bus_uclm,busi_normal_256}
#   cp ../shared/data/pretrained/tf2_mobilenet_v2_1.0_224_ptq.tflite .gpu/
#   bash tools/gpu/wheels.sh
#   printf '/.gpu/\n/.whl/\n/models/\n/reports/\n' >> .git/info/exclude
#   git rm -r -q --cached models reports   # 97 MB stay here
# What travels then (2026-12-04): packed data 38 MiB, the tflite 4, wheels 3.5, the tree 3.
# Call: SIZE=256 EPOCHS=40 bash tools/gpu/segmenter.sh, carry [".gpu", ".whl"]. Afterwards
# `git reset -q models reports` and drop the exclude lines.
# Scale by env: SIZE (192), EPOCHS (16), SITES (all three), SHIP (0), LIMIT (seconds, 540),
# SEED, THREADS (CPU threads per process, 4), EXTRA (more branet-train-segmenter flags, e.g.
# "--weight-averaging-epochs 8").
# Not yet run on a GPU: the first session lent one should time a short run (EPOCHS=2) first.
# shellcheck source=tools/gpu/session.sh
source tools/gpu/session.sh
$PY -c "import torch, branet_training.segmenter.train; print(torch.__version__, torch.cuda.is_available())" || exit 1
D=.gpu/data
W=${WORK:-/tmp/work}; mkdir -p "$W/logs"
flags=(
  --data "$D/busi" "$D/breast_lesions_usg" "$D/bus_uclm" --normals "$D/busi_normal_256"
  --encoder-init .gpu/tf2_mobilenet_v2_1.0_224_ptq.tflite --encoder-frozen-blocks 4
  --size "${SIZE:-192}" --epochs "${EPOCHS:-16}" --seed "${SEED:-0}"
  --box-mask-prompt --fine-detail --automatic-detector --fold-models "$W/folds"
)
# shellcheck disable=SC2206 # EXTRA is a list of flags, split on purpose
flags+=(${EXTRA:-})
segmenter() { timeout "${LIMIT:-540}" "$PY" -c 'import sys; from branet_training.segmenter.train import main; main(sys.argv[1:])' "$@"; }
start=$(date +%s)
# Each process scores its images on the CPU after training: 16 cores, a few threads each.
export OMP_NUM_THREADS=${THREADS:-4}
for site in ${SITES:-breast_lesions_usg bus_uclm busi}; do
  (segmenter "${flags[@]}" --loso --sites "$site" --out "$W/report-$site" > "$W/logs/$site.log" 2>&1
   echo "$site exit $? after $(( $(date +%s) - start )) s" >> "$W/logs/$site.log") &
done
if [ "${SHIP:-0}" = 1 ]; then
  (segmenter "${flags[@]}" --ship "$W/ship" --out "$W/report-ship" > "$W/logs/ship.log" 2>&1
   echo "ship exit $? after $(( $(date +%s) - start )) s" >> "$W/logs/ship.log") &
fi
wait
tail -n 3 "$W"/logs/*.log
# The tool returns at most 8 files of 16 MiB: logs go in the archive, each fold model is 14 MB.
(cd "$W" && tar -cf - --exclude='overlays-*' $(ls -d logs folds ship report-* 2>/dev/null)) | split -b 15M - "$OUT/A.tar.part"
ls -la "$OUT"

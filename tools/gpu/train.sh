#!/bin/bash
# The ultrasound training runs of a GPU session (the `device` tool's machine), in one command.
# Arm A: ResNet18 from scratch. Arm B: branet-pretrain (SimCLR on every ultrasound image,
# normals included), then the same fine-tuning from that trunk. Arm C: the ResNet18 taught
# ImageNet MobileNetV2's features first (--distil-from, each fold's training sites' images,
# BUSI's normals included), then the same training (issue 28). Each: 5-fold CV on BUSI,
# leave-one-site-out, and the final model, 9 processes at once (--jobs). Results, split in
# 15 MB parts (the tool returns at most 8 files of 16 MiB), land in $OUT.
#
# Here, before the call (the tree sent is limited to 64 MiB, and the GPU machine has torch but
# not our other packages):
#   python tools/gpu/pack_data.py --out .gpu/data ../shared/data/{busi,breast_lesions_usg,bus_uclm,busi_normal_256}
#   cp tools/gpu/train.sh .gpu/; bash tools/gpu/wheels.sh   # the wheels the machine lacks
#   cp ../shared/data/pretrained/tf2_mobilenet_v2_1.0_224_ptq.tflite .gpu/   # arm C (4 MB;
#   its wheels: tflite and flatbuffers)
#   git rm -r -q --cached models && echo /models/ >> .git/info/exclude   # 54 MiB stay here
# Call: ARMS=AB EPOCHS=60 SIZE=160 ... bash .gpu/train.sh, carry [".gpu", ".whl"]; afterwards
# `git reset -q models` and drop the exclude line.
# Measured on an H200 (2026-11-27): arm A at 160 px, 60 epochs: 134 s; at 224 px, 50 epochs:
# 173 s. Arm B's pretraining, 250 epochs at 160 px with 6 loader workers beside arm A: 488 s,
# which left its fine-tuning cut off at the 530 s limit: run B alone, with more workers.
# With EXTRA="--lesion-channel" (1.2.0, 2026-11-27): arm A alone 265 s; two more seeds'
# cross-validation and leave-one-site-out at once (two such runs side by side) 245 s, CV only 165 s.
# Scale by env: ARMS (any of A, B, C; AB by default), DISTIL_EPOCHS (arm C), EPOCHS, SIZE,
# JOBS, PRE_EPOCHS, PRE_SIZE, PRE_WORKERS, LIMIT (seconds per arm), WORK, SEED, VERSION (of
# the card shipped, 1.2.0), EXTRA (more branet-train flags, e.g. "--lesion-channel",
# "--keep-aspect" or "--cv-with-other-sites").
# shellcheck source=tools/gpu/session.sh
source tools/gpu/session.sh
$PY -c "import torch, torchvision, branet_training.classifier.train, branet_training.classifier.pretrain; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())" || exit 1
D=.gpu/data
US="$D/busi $D/breast_lesions_usg $D/bus_uclm"
E=${EPOCHS:-60}; S=${SIZE:-160}; J=${JOBS:-9}; L=${LIMIT:-500}
W=${WORK:-/tmp/work}
common="--modality ultrasound --data $US --cv-sites busi --loso --epochs $E --size $S --seed ${SEED:-0} --jobs $J --version ${VERSION:-1.2.0} ${EXTRA:-}"
train() { $PY -c 'import sys; from branet_training.classifier.train import main; main(sys.argv[1:])' "$@"; }
pretrain() { $PY -c 'import sys; from branet_training.classifier.pretrain import main; main(sys.argv[1:])' "$@"; }
start=$(date +%s)
ARMS=${ARMS:-AB}
[[ $ARMS == *A* ]] && (timeout $L bash -c "$(declare -f train); PY=$PY; train $common --ship $W/A/models --out $W/A/report --work-dir $W/A/work" > "$OUT/A.log" 2>&1; echo "A exit $? after $(( $(date +%s) - start )) s" >> "$OUT/A.log") &
[[ $ARMS == *B* ]] && (timeout $L bash -c "$(declare -f train pretrain); PY=$PY; pretrain --data $US $D/busi_normal_256 --out $W/B/trunk.pt --epochs ${PRE_EPOCHS:-300} --size ${PRE_SIZE:-160} --workers ${PRE_WORKERS:-6} && echo pretrained after \$(( \$(date +%s) - $start )) s && train $common --pretrained $W/B/trunk.pt --ship $W/B/models --out $W/B/report --work-dir $W/B/work" > "$OUT/B.log" 2>&1; echo "B exit $? after $(( $(date +%s) - start )) s" >> "$OUT/B.log") &
[[ $ARMS == *C* ]] && (timeout $L bash -c "$(declare -f train); PY=$PY; train $common --distil-from .gpu/tf2_mobilenet_v2_1.0_224_ptq.tflite --distil-epochs ${DISTIL_EPOCHS:-30} --distil-unlabelled busi=$D/busi_normal_256 --ship $W/C/models --out $W/C/report --work-dir $W/C/work" > "$OUT/C.log" 2>&1; echo "C exit $? after $(( $(date +%s) - start )) s" >> "$OUT/C.log") &
wait
cp $W/B/trunk.json "$OUT/" 2>/dev/null
for arm in A B C; do
  [ -d $W/$arm ] || continue
  (cd $W/$arm && tar -cf - $(ls -d report models 2>/dev/null) $(find work -name result.json 2>/dev/null)) | split -b 15M - "$OUT/$arm.tar.part"
done
ls -la "$OUT"

# Sourced first by each GPU script, in the repo root: strict variables, unbuffered Python, $OUT
# made, the carried wheels (.whl, from wheels.sh) installed beside the machine's own packages
# (NO_WHEELS=1 skips them), the project's packages on the path as their folders (what
# `pip install -e .` gives here), $PY, and the GPU named in the log.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ -z "${NO_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  mkdir -p /tmp/src
  for pair in branet_shared:shared branet_runtime:runtime branet_segmenter:services/segmenter branet_classifier:services/classifier branet_training:training; do
    ln -sfn "$PWD/${pair#*:}" "/tmp/src/${pair%%:*}"
  done
  export PYTHONPATH=/tmp/src:/tmp/site
fi
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null

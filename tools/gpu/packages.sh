# Sourced by the GPU scripts, in the repo root: the carried wheels (.whl, from wheels.sh)
# installed beside the machine's own packages, and the project's packages on the path as
# their folders, which is what `pip install -e .` gives here. NO_WHEELS=1 skips it.
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ -z "${NO_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  mkdir -p /tmp/src
  for pair in branet_shared:shared branet_runtime:runtime branet_segmenter:services/segmenter branet_classifier:services/classifier branet_training:training; do
    ln -sfn "$PWD/${pair#*:}" "/tmp/src/${pair%%:*}"
  done
  export PYTHONPATH=/tmp/src:/tmp/site
fi

#!/bin/bash
# The wheels the GPU machine's python (3.12) lacks to import the training workbench, at this
# checkout's versions (read from .venv), into .whl: its image has torch, numpy, pillow, tqdm,
# safetensors, scipy, scikit-learn and flatbuffers, not our web stack. Run in the repo root.
# The list: what the segmenter's and the classifier's training commands load, less the image's
# packages (/work/.library/device/KINDS.md).
set -eu
names="ImageHash annotated-types asgi-correlation-id fastapi opentelemetry-api pydantic
  pydantic-core python-multipart segment-anything sniffio starlette tflite typing-inspection"
# shellcheck disable=SC2086 # one argument per name
pins=$(.venv/bin/python -c 'import sys, importlib.metadata as m
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' $names)
platforms=""
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  platforms="$platforms --platform ${tag}_x86_64"
done
# shellcheck disable=SC2086 # lists of flags and pins, split on purpose
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp $platforms -d .whl $pins
ls .whl

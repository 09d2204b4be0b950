"""BUSI split by near-duplicate group (the classifier pipeline's `load_samples`) into `busi_a`
(three quarters of the groups, for training) and `busi_b` (a quarter, held out), as symlinks
to the images and masks, so that `branet-train-segmenter --loso --sites busi_b` measures a
model that has seen BUSI's scanner on patients it has not seen.

    .venv/bin/python reports/segmenter-detection-limits/split_busi.py ../shared/data/busi /tmp/split
"""

import argparse
import random
from pathlib import Path

from branet_training.classifier.data import load_samples

HELD_OUT_SHARE = 4  # one group in four


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("busi", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    samples, _ = load_samples([args.busi.resolve()])
    groups = sorted({s.group for s in samples})
    random.Random(args.seed).shuffle(groups)  # noqa: S311 - a split, not a secret
    held_out = set(groups[: len(groups) // HELD_OUT_SHARE])
    counts = {"busi_a": 0, "busi_b": 0}
    for sample in samples:
        part = "busi_b" if sample.group in held_out else "busi_a"
        folder = args.out / part / sample.item.path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for path in (sample.item.path, *sample.item.masks):
            (folder / path.name).symlink_to(path.resolve())
        counts[part] += 1
    print(counts, f"{len(held_out)} of {len(groups)} groups held out")


if __name__ == "__main__":
    main()

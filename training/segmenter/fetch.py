"""`branet-fetch-sam`: a SAM checkpoint for SEGMENTER_CHECKPOINT, verified by its SHA-256.

    branet-fetch-sam vit_b --dest checkpoints/      # on a machine with internet access
    branet-fetch-sam toy --dest checkpoints/        # random-init toy SAM, for pipelines only

then set SEGMENTER_MODEL_TYPE and SEGMENTER_CHECKPOINT to what it printed.
"""

import argparse
import hashlib
import sys
import urllib.request
from pathlib import Path

from branet_segmenter.checkpoints import OFFICIAL_CHECKPOINTS, OfficialCheckpoint


def download(checkpoint: OfficialCheckpoint, dest: Path) -> Path:
    """Stream the file to `dest`, verify its SHA-256, and only then give it its name."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / checkpoint.filename
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    with urllib.request.urlopen(checkpoint.url, timeout=60) as response, partial.open("wb") as out:  # noqa: S310 - fixed https URL
        while block := response.read(1 << 20):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != checkpoint.sha256:
        partial.unlink()
        raise RuntimeError(f"{checkpoint.url} did not match its published SHA-256")
    partial.replace(target)
    return target


def write_toy(dest: Path, seed: int) -> Path:
    import torch

    from branet_segmenter.segment import build_toy_sam

    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    target = dest / f"sam_toy_seed{seed}.pth"
    torch.save(build_toy_sam().state_dict(), target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-fetch-sam",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model_type", choices=[*OFFICIAL_CHECKPOINTS, "toy"])
    parser.add_argument("--dest", type=Path, default=Path("checkpoints"))
    parser.add_argument("--seed", type=int, default=0, help="toy only")
    args = parser.parse_args(argv)
    if args.model_type == "toy":
        path = write_toy(args.dest, args.seed)
    else:
        path = download(OFFICIAL_CHECKPOINTS[args.model_type], args.dest)
    print(f"SEGMENTER_MODEL_TYPE={args.model_type} SEGMENTER_CHECKPOINT={path.resolve()}")
    sys.exit(0)

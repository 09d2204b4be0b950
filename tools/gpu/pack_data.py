"""Copy class-folder datasets small enough to send to a GPU machine (at most 64 MiB goes).

    python tools/gpu/pack_data.py --out .gpu/data \\
        ../shared/data/{busi,breast_lesions_usg,bus_uclm,busi_normal_256}

Images become grayscale JPEG (quality 90) at most `--side` px on their longest side; masks are
scaled with them (nearest neighbour), so the lesion boxes stay where they were. The names and
the `<class>/<name>` layout are kept, so `branet-train` reads the copies as it reads the
originals. `_other` masks (BrEaST's non-target findings) are not used in training and dropped.
"""

import argparse
from pathlib import Path

from PIL import Image


def pack(source: Path, dest: Path, side: int, quality: int) -> int:
    written = 0
    for path in sorted(source.rglob("*.png")):
        if "_other" in path.stem:
            continue
        image = Image.open(path).convert("L")
        scale = min(1.0, side / max(image.size))
        if scale < 1:
            size = (round(image.width * scale), round(image.height * scale))
            is_mask = "_mask" in path.stem
            resample = Image.Resampling.NEAREST if is_mask else Image.Resampling.LANCZOS
            image = image.resize(size, resample)
        out = (dest / path.relative_to(source)).with_suffix(".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, quality=quality)
        written += out.stat().st_size
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=448)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    for source in args.sources:
        size = pack(source, args.out / source.name, args.side, args.quality)
        print(f"{source.name}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

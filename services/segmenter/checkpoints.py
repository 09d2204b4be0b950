"""Meta's released SAM checkpoints: where they are published and the SHA-256 each must have.

The segmenter refuses a `vit_*` checkpoint whose hash is not the official one (unless
SEGMENTER_CHECKPOINT_SHA256 names another); `branet-fetch-sam` downloads them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class OfficialCheckpoint:
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# Meta's released checkpoints (github.com/facebookresearch/segment-anything#model-checkpoints).
OFFICIAL_CHECKPOINTS = {
    "vit_b": OfficialCheckpoint(
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
    ),
    "vit_l": OfficialCheckpoint(
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    ),
    "vit_h": OfficialCheckpoint(
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
    ),
}

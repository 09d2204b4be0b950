"""Model files for tests: real architectures, seeded random weights, written like shipped ones."""

from pathlib import Path

import torch
from safetensors.torch import save_file

from branet_classifier.classify import ClassifierCard, build_resnet18
from branet_shared.checksums import sha256_of_file
from branet_shared.schemas import Modality


def write_classifier(folder: Path, modality: str, seed: int = 0) -> Path:
    """A ResNet18 classifier card and its fp16 safetensors weights; returns the card's path."""
    torch.manual_seed(seed)
    network = build_resnet18()
    weights = folder / f"{modality}.safetensors"
    save_file({k: v.half().contiguous() for k, v in network.state_dict().items()}, weights)
    card = ClassifierCard(
        name=f"test-resnet18-{modality}",
        version=f"0.0.{seed}",
        modality=Modality(modality),
        weights_file=weights.name,
        weights_sha256=sha256_of_file(weights),
        input_size=64,
        description="random weights, for tests only",
    )
    path = folder / f"{modality}.json"
    path.write_text(card.model_dump_json(indent=2))
    return path


def build_tiny_sam() -> torch.nn.Module:
    """Segment Anything from the package's own classes at toy size (random weights)."""
    from functools import partial

    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(0)
    image_size, patch, embed = 256, 16, 32
    sam: torch.nn.Module = Sam(
        image_encoder=ImageEncoderViT(
            img_size=image_size,
            patch_size=patch,
            embed_dim=embed,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            out_chans=embed,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=embed,
            image_embedding_size=(image_size // patch, image_size // patch),
            input_image_size=(image_size, image_size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=embed,
            transformer=TwoWayTransformer(depth=1, embedding_dim=embed, mlp_dim=64, num_heads=2),
            num_multimask_outputs=3,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
    )
    sam.eval()
    return sam

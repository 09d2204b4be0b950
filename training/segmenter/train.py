"""`branet-train-segmenter`: train BraNet's lesion segmenter, measure it at hospitals it has not
seen, and ship it.

    branet-train-segmenter --data ../shared/data/{busi,breast_lesions_usg,bus_uclm} \\
        --normals ../shared/data/busi_normal_256 --loso --out reports/segmenter --ship models

1. Every masked image of the sites, deduplicated and grouped (`data.py`), and the normals.
2. With `--loso`: for each site, train on the others (their normals too) and score the site's
   images in every prompt mode (`report.py`).
3. With `--ship DIR`: train on everything and write `segmenter.json` (the card) and
   `segmenter.safetensors` to DIR, where the segmenter loads them by default.

Automatic mode's threshold is fitted on the model's own training images, or, with
`--threshold-fit held_out_sites`, on scores at hospitals unseen, as its own will be: each of
its training sites scored by a model trained on its other training sites (inside a fold, never
on the site the fold leaves out; for the shipped model, the folds' own scores). The first
found more lesions at a new hospital (README, "BraNet's own lesion segmenter").
"""

import argparse
import datetime as dt
import json
import logging
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from branet_runtime.files import read_card
from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.embeddings import EmbeddingCache
from branet_segmenter.model import SegmenterCard
from branet_training.classifier.cards import LICENCES, git_commit
from branet_training.runs import pick_device
from branet_training.segmenter.cards import ship, write_card
from branet_training.segmenter.data import MaskedImage, load_masked_images
from branet_training.segmenter.engine import SegmenterTrainConfig, train_segmenter
from branet_training.segmenter.report import (
    ImageScore,
    fitted_threshold,
    score_image,
    scores_json,
    summary,
    write_overlays,
    write_report,
)

log = logging.getLogger(__name__)
# The config's on/off choices of network and training, each a --flag / --no-flag.
NETWORK_SWITCHES = {
    "box_mask_prompt": "give a box's inscribed ellipse as SAM's mask prompt",
    "automatic_multimask": "no prompt: three candidate regions (the best taught), the one"
    " scored highest kept",
    "fine_detail": "add the encoder's stride-4 features to the decoder's mask features",
    "automatic_detector": "no prompt: a detection head's box prompts the decoder",
}


def scored(
    segmenter: BraNetSegmenter, images: Sequence[MaskedImage], seed: int, prompted: bool = True
) -> list[ImageScore]:
    """Every image's scores; one embedding per image serves all its modes (cache of one)."""
    rng = np.random.default_rng(seed)
    return [s for image in images for s in score_image(segmenter, image, rng, prompted)]


def first_look(segmenter: BraNetSegmenter) -> BraNetSegmenter:
    """The same network with no zoom: automatic mode's score is its first look's, and the
    threshold is fitted on what that look finds (a zoom only outlines it again)."""
    return segmenter.with_zoom(0.0, segmenter.cache)


def weights_config(config: dict[str, Any]) -> dict[str, Any]:
    """What decides a model's weights: the configuration less where it ran. A field a card
    lacks was added since, its default what the model was trained with. Compared as a card
    stores it (JSON: a tuple reads back as a list). The ImageNet file counts by its name (a
    known file, checked when loaded), not by the folder it was in on that machine."""
    full = json.loads(json.dumps({**asdict(SegmenterTrainConfig()), **config}))
    if full["encoder_init"] is not None:
        full["encoder_init"] = Path(full["encoder_init"]).name
    serving = ("device", "threshold_fit", "automatic_zoom")
    return {key: value for key, value in full.items() if key not in serving}


@dataclass
class Trained:
    segmenter: BraNetSegmenter
    history: list[dict[str, float]]
    reused: str | None = None  # the kept model's version and the commit it was trained at


class SiteModels:
    """Models trained on sets of the sites, each trained once: the leave-one-site-out folds and,
    for `held_out_sites` thresholds, the models inside each fold. With `folder`, each is
    kept there as `leave-out-<sites>/`; with `reuse`, one kept there by an earlier run of the
    same configuration is scored again instead of trained again."""

    def __init__(
        self,
        images: Sequence[MaskedImage],
        config: SegmenterTrainConfig,
        folder: Path | None,
        reuse: bool,
    ) -> None:
        self.images = images
        self.config = config
        self.folder = folder
        self.reuse = reuse
        self.sites = frozenset(image.site for image in images)
        self.models: dict[frozenset[str], Trained] = {}

    def of_sites(self, sites: frozenset[str]) -> list[MaskedImage]:
        return [image for image in self.images if image.site in sites]

    def name(self, sites: frozenset[str]) -> str:
        return "leave-out-" + "+".join(sorted(self.sites - sites))

    def trained_on(self, sites: frozenset[str]) -> Trained:
        """The model trained on `sites` (fewer than all), its threshold not yet fitted."""
        if sites not in self.models:
            kept = None if self.folder is None else self.folder / self.name(sites)
            trained = self.reused(kept) or self.trained(sites)
            if kept is not None and trained.reused is None:
                self.keep(trained, kept)
            self.models[sites] = trained
        return self.models[sites]

    def reused(self, kept: Path | None) -> Trained | None:
        """The model kept at `kept` if `reuse` and its card says it was trained so."""
        card = None if kept is None else kept / "segmenter.json"
        if not self.reuse or card is None or not card.exists():
            return None
        segmenter = BraNetSegmenter.load(card, EmbeddingCache(1))
        trained_with = segmenter.card.training.get("config")
        if trained_with is None or weights_config(trained_with) != weights_config(
            asdict(self.config)
        ):
            raise SystemExit(f"{card} was trained with another configuration: not reused")
        log.info("reusing %s (%s)", card, segmenter.card.version)
        segmenter.card = segmenter.card.model_copy(
            update={"automatic_zoom": self.config.automatic_zoom}
        )
        history = segmenter.card.training.get("history", [])
        commit = segmenter.card.training.get("code_commit", "?")
        return Trained(segmenter, history, f"{segmenter.card.version}, trained at {commit}")

    def trained(self, sites: frozenset[str]) -> Trained:
        label = "final" if sites == self.sites else self.name(sites)
        model = train_segmenter(self.of_sites(sites), self.config, label)
        return Trained(BraNetSegmenter(model.card, model.sam, EmbeddingCache(1)), model.history)

    def keep(self, trained: Trained, folder: Path) -> None:
        training = {
            "config": asdict(self.config),
            "history": trained.history,
            "code_commit": git_commit(),
        }
        ship(trained.segmenter, folder, folder.name, {}, training)

    def held_out_scores(self, sites: frozenset[str]) -> list[ImageScore]:
        """No-prompt scores of each of `sites`' images by the model trained on the others:
        how a model trained on `sites` scores at a hospital it has not seen."""
        scores = []
        for site in sorted(sites):
            segmenter = first_look(self.trained_on(sites - {site}).segmenter)
            held_out = self.of_sites(frozenset({site}))
            scores += scored(segmenter, held_out, self.config.seed, prompted=False)
        return scores

    def threshold(self, sites: frozenset[str], segmenter: BraNetSegmenter) -> float:
        """Automatic mode's threshold for `segmenter`, trained on `sites`: fitted on its
        training images or, as the config says and with two sites or more, on held-out
        scores, each at a site its scoring model did not see. Fitted on the first look
        (`first_look`), so a zoom changes the outlines of what is found, not what is."""
        if self.config.threshold_fit == "held_out_sites" and len(sites) >= 2:
            return fitted_threshold(self.held_out_scores(sites))
        training = self.of_sites(sites)
        first = first_look(segmenter)
        return fitted_threshold(scored(first, training, self.config.seed, prompted=False))

    def fitted(self, sites: frozenset[str], trained: Trained | None = None) -> Trained:
        """The model trained on `sites` (`trained`, or one of these), its threshold fitted."""
        trained = trained or self.trained_on(sites)
        threshold = self.threshold(sites, trained.segmenter)
        card = trained.segmenter.card.model_copy(update={"lesion_threshold": threshold})
        trained.segmenter.card = card
        return trained

    def record_automatic(self, sites: frozenset[str], threshold: float) -> None:
        """Automatic mode as scored for the kept model trained on `sites` (the threshold fitted,
        the zoom), on its kept card (its weights, kept when trained or reused, are not written
        again), so the classifier's crops come from the same mode."""
        assert self.folder is not None
        kept = self.folder / self.name(sites)
        card = read_card(kept / "segmenter.json", SegmenterCard)
        automatic = {"lesion_threshold": threshold, "automatic_zoom": self.config.automatic_zoom}
        write_card(card.model_copy(update=automatic), kept)

    def final(self, shipped: Path) -> Trained:
        """The model trained on every site, its threshold fitted as the config says; with
        `reuse`, the one already in `shipped` if trained so."""
        return self.fitted(self.sites, self.reused(shipped) or self.trained(self.sites))


def leave_one_site_out(models: SiteModels, only: Sequence[str] | None, out: Path) -> dict[str, Any]:
    """Each site scored by a model trained on the others (kept in the models' folder, for
    measuring what its crops do to the classifier). A page of example overlays per site goes
    to `out`."""
    sections: dict[str, Any] = {}
    for site in sorted(models.sites):
        if only and site not in only:
            continue
        test = models.of_sites(frozenset({site}))
        fold = models.fitted(models.sites - {site})
        segmenter, history = fold.segmenter, fold.history
        threshold = segmenter.card.lesion_threshold
        scores = scored(segmenter, test, models.config.seed)
        sections[f"leave-out-{site}"] = {
            "train": len(models.images) - len(test),
            "test": len(test),
            "history": history,
            "summary": summary(scores, threshold),
            "scores": scores_json(scores),
        }
        log.info("left out %s: %s", site, sections[f"leave-out-{site}"]["summary"])
        write_overlays(out / f"overlays-{site}.png", segmenter, test, models.config.seed)
        if models.folder is not None:  # the classifier's crops use the fold's threshold
            models.record_automatic(models.sites - {site}, threshold)
    return sections


def headline(sections: dict[str, Any]) -> dict[str, float]:
    """Means over the sites left out: what the card carries."""
    keys = {
        "loso_box_jittered_dice": ("box_jittered/all", "dice"),
        "loso_box_dice": ("box/all", "dice"),
        "loso_point_dice": ("point/all", "dice"),
        "loso_automatic_dice": ("none/all", "dice"),
        "loso_ellipse_in_box_jittered_dice": ("ellipse_in_box_jittered/all", "dice"),
    }
    metrics: dict[str, float] = {}
    for name, (row, column) in keys.items():
        values = [s["summary"][row][column] for s in sections.values() if row in s["summary"]]
        if values:
            metrics[name] = round(float(np.mean(values)), 4)
    # No prompt: lesions found; lesions outlined whatever the score; images without one marked.
    for name in ("lesion_found_rate", "lesion_outlined_rate", "normal_marked_rate"):
        rates = [s["summary"]["automatic"][name] for s in sections.values()]
        if present := [rate for rate in rates if rate is not None]:
            metrics[f"loso_{name}"] = round(float(np.mean(present)), 4)
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-train-segmenter",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="masked sites")
    parser.add_argument("--normals", type=Path, nargs="*", default=[], help="lesion-free images")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--loso", action="store_true", help="leave each site out in turn")
    parser.add_argument("--sites", nargs="*", default=None, help="leave out only these sites")
    parser.add_argument("--ship", type=Path, default=None, help="write the final model here")
    parser.add_argument(
        "--fold-models", type=Path, default=None, help="keep each left-out site's model here"
    )
    parser.add_argument(
        "--reuse-trained",
        action="store_true",
        help="score again, not train again, the models an earlier run of this configuration"
        " kept in --fold-models and --ship (their thresholds are fitted anew)",
    )
    parser.add_argument("--version", default=dt.date.today().isoformat())
    defaults = SegmenterTrainConfig()
    parser.add_argument("--size", type=int, default=defaults.input_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument(
        "--box-jitter",
        type=float,
        default=defaults.box_jitter,
        help="training's drawn boxes: each edge moved by up to this share of the box's side",
    )
    parser.add_argument(
        "--augment-scale",
        type=float,
        nargs=2,
        default=defaults.augment_scale,
        metavar=("LOW", "HIGH"),
        help="training's zoom factor, drawn between these",
    )
    parser.add_argument(
        "--augment-shift",
        type=float,
        default=defaults.augment_shift,
        help="training's images moved by up to this share of their side each way",
    )
    parser.add_argument(
        "--augment-random-filter",
        type=float,
        default=defaults.augment_random_filter,
        help="this share of training images given another texture by a random filter",
    )
    parser.add_argument(
        "--augment-copy-paste",
        type=float,
        default=defaults.augment_copy_paste,
        help="this share of training images without a lesion given another image's lesion",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda")
    parser.add_argument(
        "--encoder-init", default=None, help="ImageNet MobileNetV2 .tflite to start from"
    )
    parser.add_argument("--encoder-lr-scale", type=float, default=defaults.encoder_lr_scale)
    parser.add_argument(
        "--encoder-frozen-blocks",
        type=int,
        default=defaults.encoder_frozen_blocks,
        help="with --encoder-init: keep MobileNetV2's first N blocks as ImageNet made them",
    )
    parser.add_argument(
        "--detector-context-layers",
        type=int,
        default=defaults.detector_context_layers,
        help="with --automatic-detector: transformer layers across the embedding before the"
        " detection head, so it compares regions across the whole image",
    )
    parser.add_argument(
        "--weight-averaging-epochs",
        type=int,
        default=defaults.weight_averaging_epochs,
        help="ship the mean of the weights at the end of each of the last N epochs (SWA)",
    )
    parser.add_argument(
        "--automatic-zoom",
        type=float,
        default=defaults.automatic_zoom,
        help="with --automatic-detector: outline the region found again in a window this many"
        " times its longer side (0: one pass); not a training choice, so kept models reuse",
    )
    for name, text in NETWORK_SWITCHES.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            action=argparse.BooleanOptionalAction,
            default=getattr(defaults, name),
            help=text,
        )
    parser.add_argument(
        "--threshold-fit",
        default=defaults.threshold_fit,
        choices=["training_images", "held_out_sites"],
        help="fit automatic mode's threshold on each model's training images, or on scores at"
        " sites held out from models trained inside its training sites",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    config = SegmenterTrainConfig(
        input_size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        box_jitter=args.box_jitter,
        augment_scale=tuple(args.augment_scale),
        augment_shift=args.augment_shift,
        augment_random_filter=args.augment_random_filter,
        augment_copy_paste=args.augment_copy_paste,
        seed=args.seed,
        device=args.device,
        encoder_init=args.encoder_init,
        encoder_lr_scale=args.encoder_lr_scale,
        encoder_frozen_blocks=args.encoder_frozen_blocks,
        detector_context_layers=args.detector_context_layers,
        weight_averaging_epochs=args.weight_averaging_epochs,
        automatic_zoom=args.automatic_zoom,
        **{name: getattr(args, name) for name in NETWORK_SWITCHES},
        threshold_fit=args.threshold_fit,
    )
    images = load_masked_images(args.data, args.normals)
    context = {
        "title": "BraNet lesion segmenter",
        "data": ", ".join(str(d) for d in [*args.data, *args.normals]),
        "licences": [text for key, text in LICENCES.items() if key in str(args.data)],
        "config": asdict(config),
        "code_commit": git_commit(),
        "torch": torch.__version__,
        "device": str(pick_device(config.device)),
        "machine": platform.processor() or platform.machine(),
    }
    models = SiteModels(images, config, args.fold_models, args.reuse_trained)
    sections = leave_one_site_out(models, args.sites, args.out) if args.loso else {}
    write_report(args.out, sections, context)
    metrics = headline(sections)
    print(metrics)
    if args.ship is not None:
        final = models.final(args.ship)
        training = {**context, "history": final.history, "images": len(images)}
        if final.reused is not None:  # these weights were trained before, by this config
            training["weights_from"] = final.reused
        print(f"shipped {ship(final.segmenter, args.ship, args.version, metrics, training)}")

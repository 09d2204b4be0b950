"""The classifier's own routes: classify one image with the modality's ResNet18."""

import base64
from typing import Annotated

import anyio.to_thread
import torch
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from branet_classifier.batching import MicroBatcher
from branet_classifier.classify import ClassifierTask
from branet_classifier.model import LesionCrop, crop_to_lesion
from branet_runtime.allocator import trim_freed_memory
from branet_runtime.service import ModelRuntime, RuntimeDep
from branet_shared.errors import IMAGE_UPLOAD_ERRORS, problem_responses
from branet_shared.images import (
    MAX_IMAGE_BYTES,
    check_prompt_fits,
    encode_png,
    parse_box,
    validate_image,
)
from branet_shared.schemas import ClassifyResponse, Modality, Prompt

RAW_IMAGE_BODY = {
    "required": True,
    "description": "JPEG or PNG, whole image or ROI crop",
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in ("image/png", "image/jpeg", "application/octet-stream")
    },
}
BOX_DESCRIPTION = (
    "the lesion's box in the image, x0,y0,x1,y1: the image is cropped around it with the"
    " model's margin, as in training; without it the image is classified as it is"
)
router = APIRouter()
# Past this, the decoded image's memory is handed back to the kernel once it is cropped.
LARGE_IMAGE_PIXELS = 8_000_000


def micro_batchers(runtime: ModelRuntime, max_batch: int) -> dict[Modality, MicroBatcher]:
    """One micro-batcher per loaded modality, running on the runtime's inference threads."""
    return {
        modality: MicroBatcher(
            runtime.task(modality.value, ClassifierTask).model, max_batch, runtime.inference
        )
        for modality in Modality
        if modality.value not in runtime.missing
    }


def get_batchers(request: Request) -> dict[Modality, MicroBatcher]:
    batchers: dict[Modality, MicroBatcher] = request.state.batchers
    return batchers


BatchersDep = Annotated[dict[Modality, MicroBatcher], Depends(get_batchers)]


async def classify_image(
    runtime: ModelRuntime,
    batchers: dict[Modality, MicroBatcher],
    data: bytes,
    modality: Modality,
    explain: bool,
    box: str | None,
) -> ClassifyResponse:
    model = runtime.task(modality.value, ClassifierTask).model
    lesion = parse_box(box)

    def lesion_crop() -> LesionCrop:
        image = validate_image(data).image
        check_prompt_fits(Prompt(box=lesion), image)
        crop = crop_to_lesion(image, lesion, model.card.roi_margin)
        if image.width * image.height >= LARGE_IMAGE_PIXELS:
            del image  # only the crop is needed from here on
            trim_freed_memory()
        return crop

    if not explain:
        # One thread hop for the CPU work before the model: every hop costs latency.
        def preprocess() -> torch.Tensor:
            crop = lesion_crop()
            return model.preprocess(crop.image, crop.lesion)

        with runtime.stages.timed("preprocess"):
            inputs = await anyio.to_thread.run_sync(preprocess)
        with runtime.stages.timed("infer"):  # the wait for a batch's turn included
            return await batchers[modality].classify(inputs)
    with runtime.stages.timed("preprocess"):
        crop = await anyio.to_thread.run_sync(lesion_crop)

    def run() -> ClassifyResponse:
        result, heatmap = model.explain(crop.image, crop.lesion)
        encoded = base64.b64encode(encode_png(heatmap)).decode()
        return result.model_copy(update={"heatmap_png": encoded})

    with runtime.stages.timed("explain"):
        return await runtime.run(run)


@router.post(
    "/v1/classify",
    responses=problem_responses(*IMAGE_UPLOAD_ERRORS),
)
async def classify(
    runtime: RuntimeDep,
    batchers: BatchersDep,
    file: Annotated[UploadFile, File(description="JPEG or PNG, whole image or ROI crop")],
    modality: Annotated[Modality, Form()],
    explain: Annotated[bool, Form(description="add a Grad-CAM heatmap PNG")] = False,
    box: Annotated[str | None, Form(description=BOX_DESCRIPTION)] = None,
) -> ClassifyResponse:
    data = await file.read(MAX_IMAGE_BYTES + 1)
    return await classify_image(runtime, batchers, data, modality, explain, box)


@router.post(
    "/v1/classify/{modality}",
    responses=problem_responses(*IMAGE_UPLOAD_ERRORS),
    openapi_extra={"requestBody": RAW_IMAGE_BODY},
    description="The same as `POST /v1/classify`, with the image as the whole request body "
    "(what the gateway sends: no multipart to parse, about 1 ms less per image).",
)
async def classify_body(
    request: Request,
    runtime: RuntimeDep,
    batchers: BatchersDep,
    modality: Modality,
    explain: Annotated[bool, Query(description="add a Grad-CAM heatmap PNG")] = False,
    box: Annotated[str | None, Query(description=BOX_DESCRIPTION)] = None,
) -> ClassifyResponse:
    data = await request.body()  # bounded by the body-size middleware
    return await classify_image(runtime, batchers, data, modality, explain, box)

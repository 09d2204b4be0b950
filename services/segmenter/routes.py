"""The segmenter's own route: a lesion mask and ROI crop for one image."""

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from branet_runtime.service import RuntimeDep
from branet_segmenter.segment import SegmentationRequest, SegmenterTask
from branet_shared.errors import IMAGE_UPLOAD_ERRORS, problem_responses
from branet_shared.images import MAX_IMAGE_BYTES, parse_prompt
from branet_shared.schemas import Modality, SegmentResponse

router = APIRouter()


@router.post(
    "/v1/segment",
    responses=problem_responses(*IMAGE_UPLOAD_ERRORS),
)
async def segment(
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="JPEG or PNG")],
    modality: Annotated[Modality, Form()],
    box: Annotated[str | None, Form(description="x0,y0,x1,y1 around the lesion")] = None,
    points: Annotated[
        str | None, Form(description="x,y,label;... (label 1 lesion, 0 background)")
    ] = None,
) -> SegmentResponse:
    """Prompted mode when a box or points are given, else automatic mode."""
    task = runtime.task("sam", SegmenterTask)
    prompt = parse_prompt(box, points)
    data = await file.read(MAX_IMAGE_BYTES + 1)
    with runtime.stages.timed("segment"):
        return await runtime.run(task.run, SegmentationRequest(data, modality, prompt))

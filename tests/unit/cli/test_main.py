"""`branet analyze` as people read it."""

from typing import Any

from branet_cli.main import analysis_summary


def analysis(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "abc",
        "label": "malignant",
        "probabilities": {"benign": 0.55, "malignant": 0.45},
        "decision_threshold": 0.3587,
        "roi": None,
        "caveats": [],
        "models": {"classifier": {"name": "branet-resnet18-ultrasound", "version": "1.2.0"}},
        "timings": {"total_ms": 41.6},
        **overrides,
    }


def test_the_label_is_shown_with_the_threshold_it_was_drawn_at() -> None:
    text = analysis_summary("scan.png", analysis())

    assert text.splitlines()[0] == (
        "scan.png: MALIGNANT  (benign 55.0%, malignant 45.0%; malignant from 35.9%)"
    )
    assert "branet-resnet18-ultrasound 1.2.0" in text


def test_every_caveat_is_shown_in_full_with_the_box_classified() -> None:
    caveat = {"code": "segmenter_unavailable", "detail": "the segmenter is unavailable (...)"}
    box = {"x0": 1, "y0": 2, "x1": 30, "y1": 40}
    roi = {"lesion_found": False, "bbox": box}

    lines = analysis_summary("scan.png", analysis(roi=roi, caveats=[caveat])).splitlines()

    assert f"lesion found: False, box {box}" in lines
    assert "note (segmenter_unavailable): the segmenter is unavailable (...)" in lines

"""The shapes clients rely on."""

import pytest
from pydantic import ValidationError

from branet_shared.schemas import Analysis, BoundingBox, Probabilities, Problem, Schema
from tests.factories import make_analysis


def test_probabilities_must_sum_to_one() -> None:
    assert Probabilities(benign=0.25, malignant=0.75).malignant == 0.75
    with pytest.raises(ValidationError):
        Probabilities(benign=0.5, malignant=0.6)


def test_boxes_must_be_ordered() -> None:
    with pytest.raises(ValidationError):
        BoundingBox(x0=5, y0=0, x1=5, y1=10)


def test_analysis_json_round_trip_is_exact() -> None:
    analysis = make_analysis(7)

    assert Analysis.model_validate_json(analysis.model_dump_json()) == analysis


def test_analysis_json_has_the_documented_fields() -> None:
    document = make_analysis(7).model_dump(mode="json")

    for field in ("id", "label", "probabilities", "modality", "roi", "created_at"):
        assert field in document
    assert document["created_at"].endswith("Z")


@pytest.mark.parametrize("model", [Analysis, Problem])
def test_the_documented_examples_are_valid_answers(model: type[Schema]) -> None:
    examples = model.model_json_schema()["examples"]

    for example in examples:
        assert model.model_validate(example).model_dump(mode="json") == example

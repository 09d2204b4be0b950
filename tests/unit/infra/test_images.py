"""The model services' images hold serving code only: what their Dockerfiles copy builds a
distribution without the training workbench or its commands."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.unit.infra.test_static_checks import ROOT

SERVICES = ("classifier", "segmenter")


def copied_sources(dockerfile: Path) -> list[str]:
    """The build context's paths a Dockerfile copies (not those from other stages)."""
    copies = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", dockerfile.read_text(), re.M)
    return [source for line in copies for source in line.split()]


@pytest.fixture(scope="module")
def service_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel `pip install '.[classifier]'` builds in the image, from what it copies."""
    context = tmp_path_factory.mktemp("context")
    sources = {s for svc in SERVICES for s in copied_sources(ROOT / f"services/{svc}/Dockerfile")}
    for source in sorted(s for s in sources if not s.startswith("models/")):  # data, not code
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("build"))
        else:
            shutil.copy(origin, context / source)
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*build, "-w", str(out), str(context)],
        check=True,
        timeout=300,
    )
    return zipfile.ZipFile(next(out.glob("branet-*.whl")))


@pytest.mark.parametrize("service", SERVICES)
def test_the_model_service_images_copy_no_training_code(service: str) -> None:
    sources = copied_sources(ROOT / f"services/{service}/Dockerfile")

    assert "services/" in sources
    assert not [source for source in sources if source.startswith("training")]


def test_what_the_images_install_holds_serving_code_and_no_training_commands(
    service_wheel: zipfile.ZipFile,
) -> None:
    names = service_wheel.namelist()
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    commands = service_wheel.read(entry_points).decode()

    assert "branet_classifier/app.py" in names
    assert "branet_runtime/service.py" in names
    assert not [name for name in names if name.startswith("branet_training")]
    assert "branet-classifier" in commands
    assert "branet-train" not in commands
    assert (
        "sklearn"
        not in service_wheel.read(
            next(n for n in names if n.endswith(".dist-info/METADATA"))
        ).decode()
    )

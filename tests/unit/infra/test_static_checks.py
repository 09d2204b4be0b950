"""The deployment checks of `make static-checks` pass on the project's files and fail on a
planted error of the kind each is there to catch."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INFRA_BIN = ROOT / ".venv-infra" / "bin"


def tool(name: str) -> Path:
    path = INFRA_BIN / name if name != "docker-compose" else Path(shutil.which(name) or "-")
    if not path.exists():
        message = f"{name} is missing: `make static-checks` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_hadolint_passes_ours_and_catches_an_unpinned_base(tmp_path: Path) -> None:
    hadolint = tool("hadolint")
    ours = sorted(str(p) for p in ROOT.glob("services/*/Dockerfile"))
    assert run(hadolint, *ours).returncode == 0
    planted = tmp_path / "Dockerfile"
    planted.write_text("FROM python:latest\nRUN pip install flask\n")

    result = run(hadolint, planted)

    assert result.returncode != 0
    assert "DL3007" in result.stdout  # `latest` tag


def test_checkov_passes_ours_and_catches_a_public_bucket(tmp_path: Path) -> None:
    checkov = tool("checkov")
    common = ("--quiet", "--compact", "--skip-download", "--framework", "terraform")
    assert run(checkov, "-d", ROOT / "infra", *common).returncode == 0
    (tmp_path / "main.tf").write_text(
        'resource "google_storage_bucket" "leaky" {\n'
        '  name     = "leaky"\n  location = "EU"\n'
        "  uniform_bucket_level_access = false\n}\n"
    )

    result = run(checkov, "-d", tmp_path, *common)

    assert result.returncode != 0
    assert "CKV_GCP_29" in result.stdout  # uniform bucket-level access


def test_every_terraform_file_parses_and_a_syntax_error_does_not(tmp_path: Path) -> None:
    python = tool("python")
    assert run(python, ROOT / "tools" / "check_hcl.py", ROOT / "infra").returncode == 0
    (tmp_path / "broken.tf").write_text('resource "google_storage_bucket" "b" {\n  name = \n')

    assert run(python, ROOT / "tools" / "check_hcl.py", tmp_path).returncode != 0


def test_compose_file_is_valid_and_a_typo_is_not(tmp_path: Path) -> None:
    compose = tool("docker-compose")
    assert run(compose, "-f", ROOT / "docker-compose.yml", "config", "-q").returncode == 0
    planted = tmp_path / "docker-compose.yml"
    planted.write_text(
        (ROOT / "docker-compose.yml").read_text().replace("depends_on:", "depends_onn:", 1)
    )

    assert run(compose, "-f", planted, "config", "-q", cwd=ROOT).returncode != 0


@pytest.mark.parametrize(
    ("file", "find", "plant", "reported"),
    [
        # A deploy of a tag the build never pushes (the documented deploy once did this).
        ("services.tf", "/gateway:${var.image_tag}", "/gateway:latest", "gateway:latest"),
        ("cloudbuild.yaml", "/classifier:${_TAG}", "/classifier:$SHORT_SHA", "classifier"),
        ("cloudbuild.yaml", "_REPOSITORY: branet", "_REPOSITORY: other", "never pushes it"),
    ],
)
def test_the_deploy_check_passes_ours_and_catches_a_tag_mismatch(
    tmp_path: Path, file: str, find: str, plant: str, reported: str
) -> None:
    python = tool("python")
    check = ROOT / "tools" / "check_deploy.py"
    assert run(python, check, ROOT / "infra").returncode == 0
    planted = tmp_path / "infra"
    shutil.copytree(ROOT / "infra", planted)
    text = (planted / file).read_text()
    assert find in text
    (planted / file).write_text(text.replace(find, plant))

    result = run(python, check, planted)

    assert result.returncode == 1
    assert reported in result.stderr

"""Every console script of both distributions answers `--help` with what it is and its
defaults, and exits 0 (the services' without starting a server)."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DISTRIBUTIONS = (ROOT / "pyproject.toml", ROOT / "training" / "pyproject.toml")


def console_scripts() -> list[str]:
    return [
        name
        for path in DISTRIBUTIONS
        for name in tomllib.loads(path.read_text())["project"]["scripts"]
    ]


def test_the_training_workbench_brings_its_commands() -> None:
    assert {"branet-train", "branet-evaluate", "branet-evaluate-sam"} <= set(console_scripts())


@pytest.mark.parametrize("script", console_scripts())
def test_every_command_answers_help_with_its_description_and_defaults(script: str) -> None:
    command = Path(sys.executable).parent / script
    result = subprocess.run(
        [str(command), "--help"], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    usage, description, *_ = result.stdout.split("\n\n")
    assert usage.startswith(f"usage: {script}")
    assert description.strip()
    assert "default" in result.stdout

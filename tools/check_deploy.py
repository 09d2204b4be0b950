"""Every image Terraform deploys is one Cloud Build pushes, under the same tag variable.

    python tools/check_deploy.py infra

Reads each Cloud Run service's container images in `infra/*.tf` (python-hcl2) and the images
`infra/cloudbuild.yaml` builds and pushes, writes both in one vocabulary (Terraform's
`var.region`, `var.project_id`, the repository, `var.image_tag` against Cloud Build's
`_REGION`, `$PROJECT_ID`, `_REPOSITORY`, `_TAG`), and exits 1 naming each image that one side
has and the other lacks. A deploy of an image that was never pushed fails only at
`terraform apply`, minutes in; this fails in CI.
"""

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import yaml

# Terraform's names and Cloud Build's, each for the same thing.
REGION, PROJECT, REPOSITORY, TAG = "<region>", "<project>", "<repository>", "<tag>"


def _value(attribute: Any) -> Any:
    # python-hcl2 gives each attribute's value as a one-item list.
    return attribute[0] if isinstance(attribute, list) and len(attribute) == 1 else attribute


def terraform_images(infra: Path) -> set[str]:
    blocks: list[dict[str, Any]] = []
    for path in sorted(infra.glob("*.tf")):
        with path.open() as handle:
            blocks.append(hcl2.load(handle))
    registry = _terraform_registry(blocks)
    images = set()
    for block in blocks:
        for resources in block.get("resource", []):
            for service in resources.get("google_cloud_run_v2_service", {}).values():
                for image in _container_images(service):
                    images.add(_in_common_terms(image.replace("${local.registry}", registry)))
    return images


def _terraform_registry(blocks: list[dict[str, Any]]) -> str:
    for block in blocks:
        for local in block.get("locals", []):
            if "registry" in local:
                registry: str = _value(local["registry"])
                return registry
    raise SystemExit("infra: no local.registry")


def _container_images(service: dict[str, Any]) -> Iterator[str]:
    for template in service.get("template", []):
        for container in template.get("containers", []):
            yield _value(container["image"])
        for dynamic in template.get("dynamic", []):
            # `containers.value`: a sidecar of Google's, not ours to build; others are checked.
            for container in dynamic.get("containers", {}).get("content", []):
                if _value(container["image"]) != "${containers.value}":
                    yield _value(container["image"])


def cloudbuild_images(cloudbuild: Path) -> tuple[set[str], set[str]]:
    """The images the build pushes (`images:`), and those its steps build (`-t`)."""
    build = yaml.safe_load(cloudbuild.read_text())
    defaults = build.get("substitutions", {})
    pushed = {_in_common_terms(_substituted(i, defaults)) for i in build.get("images", [])}
    built = set()
    for step in build.get("steps", []):
        args = step.get("args", [])
        built |= {
            _in_common_terms(_substituted(args[i + 1], defaults))
            for i, arg in enumerate(args[:-1])
            if arg == "-t"
        }
    return pushed, built


def _substituted(image: str, defaults: dict[str, str]) -> str:
    # Only the repository's default is fixed in the file; region, project and tag are given.
    return image.replace("${_REPOSITORY}", defaults.get("_REPOSITORY", "${_REPOSITORY}"))


def _in_common_terms(image: str) -> str:
    for pattern, term in (
        (r"\$\{var\.region\}|\$\{_REGION\}", REGION),
        (r"\$\{var\.project_id\}|\$PROJECT_ID|\$\{PROJECT_ID\}", PROJECT),
        (r"\$\{google_artifact_registry_repository\.branet\.repository_id\}", "branet"),
        (r"\$\{var\.image_tag\}|\$\{_TAG\}", TAG),
    ):
        image = re.sub(pattern, term, image)
    return image


def problems(infra: Path) -> list[str]:
    deployed = terraform_images(infra)
    pushed, built = cloudbuild_images(infra / "cloudbuild.yaml")
    found = [f"Terraform deploys {i}; cloudbuild.yaml never pushes it" for i in deployed - pushed]
    found += [f"cloudbuild.yaml pushes {i} without building it" for i in pushed - built]
    found += [f"cloudbuild.yaml pushes {i}; Terraform never deploys it" for i in pushed - deployed]
    found += [f"{i} is not under the one tag variable" for i in deployed | pushed if TAG not in i]
    return sorted(found)


def main() -> int:
    infra = Path(sys.argv[1] if len(sys.argv) > 1 else "infra")
    found = problems(infra)
    for problem in found:
        print(f"deploy check: {problem}", file=sys.stderr)
    if not found:
        count = len(terraform_images(infra))
        print(f"deploy check: the {count} images Terraform deploys are those Cloud Build pushes")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

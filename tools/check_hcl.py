"""Parse every .tf file under the given folders with python-hcl2; exit 1 on the first error.

Terraform itself cannot be installed here; this catches syntax errors before `terraform plan`.
"""

import sys
from pathlib import Path

import hcl2


def main() -> int:
    failures = 0
    files = sorted(p for folder in sys.argv[1:] for p in Path(folder).rglob("*.tf"))
    for path in files:
        try:
            with path.open() as handle:
                hcl2.load(handle)
        except Exception as exc:  # the parser raises several unrelated types
            print(f"{path}: {exc}", file=sys.stderr)
            failures += 1
    print(f"{len(files) - failures}/{len(files)} Terraform files parse")
    return 1 if failures or not files else 0


if __name__ == "__main__":
    sys.exit(main())

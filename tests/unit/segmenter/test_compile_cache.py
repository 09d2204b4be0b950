"""branet-warm-sam-cache fills Inductor's cache, so that a fresh container compiles less."""

import os
import subprocess
import sys
from pathlib import Path


def test_warming_fills_the_inductor_cache_it_is_pointed_at(tmp_path: Path) -> None:
    cache = tmp_path / "inductor"
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "SEGMENTER_MODEL_TYPE": "toy"}

    subprocess.run(
        [sys.executable, "-c", "from branet_segmenter.compile_cache import main; main()"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )

    assert any(path.suffix == ".so" for path in cache.rglob("*"))  # compiled kernels

"""Every ```python block of README.md runs as written, top to bottom in one interpreter."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)


def test_readme_python_blocks_run(tmp_path):
    blocks = readme_blocks()
    assert len(blocks) >= 8
    script = tmp_path / "readme.py"
    script.write_text("\n\n".join(f"# --- README block {i}\n{b}" for i, b in enumerate(blocks)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)  # one CPU device, as a reader's machine
    (tmp_path / "tests").symlink_to(ROOT / "tests")  # paths in the README are from the repository's root
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

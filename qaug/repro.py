"""``dvc repro`` as a subprocess of this environment.

Output is not captured: each stage (``qaug stage NAME``) prints its own
"[k/8] name" line, progress bars and timing straight to the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def dvc_repro(force: bool = False, root: Path = Path(".")) -> int:
    """Run ``dvc repro`` in ``root``; returns its exit code."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # stages run this env's `qaug`
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else [])]
    return subprocess.run(cmd, cwd=root, env=env).returncode

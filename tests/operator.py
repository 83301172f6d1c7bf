"""Running the installed `crmail` command as an operator would, in a data dir of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def crmail_script() -> str:
    beside_python = Path(sys.executable).with_name("crmail")
    found = str(beside_python) if beside_python.exists() else shutil.which("crmail")
    if not found:
        pytest.skip("the crmail script is not installed (pip install -e .)")
    return found


def operator_environment(tmp_path: Path) -> dict[str, str]:
    """This process's environment without crmail's settings, and a fresh data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRMAIL_", "DJANGO_")) and k != "COLUMNS"
    }
    env["CRMAIL_DATA_DIR"] = str(tmp_path / "data")
    env["CRMAIL_LOG_LEVEL"] = "WARNING"
    return env


def crmail(env: dict[str, str], *argv: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [crmail_script(), *argv],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )

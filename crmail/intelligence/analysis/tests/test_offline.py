"""Both tiers analyse with the process's network cut: every connect and name lookup
raises, and no Hugging Face variable is set beforehand (the ml tier sets its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmail.intelligence.analysis import ml

pytestmark = pytest.mark.database_independent

ROOT = Path(__file__).resolve().parents[4]

SCRIPT = """
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network blocked for this process")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from datetime import datetime
from crmail.intelligence.analysis import MailText, analyse

mail = MailText(
    subject="Re: Demo",
    text="Hi Sam,\\n\\nThursday at 3pm works great for us!\\n\\nThanks,\\nJerome\\n\\n"
         "On Tue, Apr 14, 2026 at 11:20 AM Sam <sam@example.com> wrote:\\n> Thursday?\\n",
    date=datetime.fromisoformat("2026-04-14T13:51:00-04:00"),
    time_zone="America/New_York",
)
result = analyse([mail], sys.argv[1])[0]
print(json.dumps({"intent": result.intent, "sentiment": result.sentiment, "tier": result.tier,
                  "meetings": [m.start.isoformat() for m in result.meetings]}))
"""


def run_blocked(tier: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HOME"] = str(ROOT / ".no-home")  # no cache of a hub download to fall back on
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, tier],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_default_tier_offline() -> None:
    result = run_blocked("default")
    assert result["tier"] == "default"
    assert result["intent"] == "scheduling"
    assert result["meetings"] == ["2026-04-16T15:00:00-04:00"]


@pytest.mark.skipif(not ml.available(), reason="the crmail[ml] extra is not installed")
def test_ml_tier_offline() -> None:
    result = run_blocked("ml")
    assert result["tier"] == "ml"
    assert result["intent"] == "scheduling"

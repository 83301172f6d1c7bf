"""What the benchmarks share: a fresh crmail in a temporary data dir, the machine's CPU,
and their sections of docs/benchmarks.md."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup_crmail(name: str, extra: dict[str, str] | None = None) -> Path:
    """Forget this shell's crmail settings, `crmail init` a new data dir, set Django up.

    Jobs run in-process (memory queue); ``extra`` settings (a database URL) are added.
    Returns the temporary folder, to remove at the end.
    """
    data = Path(tempfile.mkdtemp(prefix=f"crmail-{name}-"))
    for key in [k for k in os.environ if k.startswith("CRMAIL_")]:
        del os.environ[key]
    os.environ.update(
        CRMAIL_DATA_DIR=str(data / "data"),
        CRMAIL_ADMIN_EMAIL="admin@example.org",
        CRMAIL_ADMIN_PASSWORD="bench-admin-pw-1",
        CRMAIL_LOG_LEVEL="WARNING",
        CRMAIL_QUEUE_URL="memory://",
    )
    os.environ.update(extra or {})
    from crmail.config.cli import main as crmail

    if crmail(["init"]) != 0:
        raise SystemExit("crmail init failed")
    import django

    django.setup()
    return data


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent not idle since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu() -> str:
    """This machine's CPU model and how many cores it has: "AMD EPYC, 2 cores"."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores"


def replaced(text: str, start: str, end: str, block: str) -> str | None:
    """``text`` with ``block`` in place of what lies from the marker ``start`` to the
    marker ``end`` (both included); None when ``text`` does not hold both markers."""
    if start not in text or end not in text:
        return None
    head, rest = text.split(start, 1)
    return head + block + rest.split(end, 1)[1]

"""Scanner and privacy-proxy detection on user agents recorded in the wild, addresses of
the operators' published ranges, and prefetches."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmail.insights import scanners

from .world import CHROME

pytestmark = pytest.mark.database_independent


def recorded() -> list[tuple[bool, str, str]]:
    rows = []
    for line in (Path(__file__).parent / "data" / "user_agents.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            who, kind, agent = (part.strip() for part in line.split("|", 2))
            rows.append((who == "scanner", kind, agent))
    return rows


@pytest.mark.parametrize(("scanner", "kind", "agent"), recorded(), ids=lambda v: str(v)[:40])
def test_recorded_user_agents_are_judged_as_people_or_scanners(scanner, kind, agent):
    verdict = scanners.judge(agent, "198.51.100.7")
    assert (verdict.scanner, verdict.client) == (scanner, kind)
    assert bool(verdict.reason) == scanner


def test_no_user_agent_is_an_automated_client():
    assert scanners.judge("", "198.51.100.7").scanner
    assert scanners.judge("   ", "198.51.100.7").reason == "an automated client (no user agent)"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("17.58.101.4", "a privacy proxy (Apple Mail Privacy Protection) by its address"),
        ("::ffff:17.58.101.4", "a privacy proxy (Apple Mail Privacy Protection) by its address"),
        ("148.163.150.2", "a mail-security scanner (Proofpoint) by its address"),
        (
            "40.107.22.9",
            "a mail-security scanner (Microsoft Exchange Online Protection) by its address",
        ),
    ],
)
def test_an_ordinary_browser_from_a_scanners_range_is_marked(address, reason):
    verdict = scanners.judge(CHROME, address)
    assert verdict.scanner and verdict.reason == reason


def test_a_browser_elsewhere_is_a_person():
    for address in ("198.51.100.7", "2001:db8::1", "", "not an address"):
        assert not scanners.judge(CHROME, address).scanner


def test_prefetches_are_marked():
    assert scanners.judge(CHROME, "198.51.100.7", "HEAD").reason == "a prefetch (HEAD request)"
    for header in ("HTTP_PURPOSE", "HTTP_SEC_PURPOSE", "HTTP_X_MOZ", "HTTP_X_PURPOSE"):
        assert scanners.judge(CHROME, "198.51.100.7", "GET", {header: "prefetch"}).scanner


def test_the_data_files_are_well_formed():
    assert len(scanners.agents()) > 30 and len(scanners.networks()) > 5

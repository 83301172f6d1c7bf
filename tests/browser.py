"""Playwright fixtures: Debian's chromium driven through the sync API (never a download).

Fixtures:
    browser      session-scoped chromium at /usr/bin/chromium.
    page         a page in a fresh browser context per test (own cookies), closed after.
    app          the live server (transactional database, starting data seeded), the page,
                 and helpers to sign in and take screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CRMAIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("CRMAIL_SHOTS", "/tmp/crmail-shots"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    page.js_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


@dataclass
class App:
    """The running site, as a browser test sees it."""

    url: str
    page: Any

    def go(self, path: str) -> Any:
        return self.page.goto(self.url + path)

    def sign_in(self, email: str, password: str) -> None:
        self.go("/sign-in/")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/sign-in/" not in url)

    def admin_menu(self) -> Any:
        """Open the Administration menu of the top bar; its links, as a locator."""
        self.page.locator("summary", has_text="Administration").click()
        return self.page.get_by_role("navigation", name="Administration")

    def my_menu(self) -> Any:
        """Open the signed-in user's menu (their name in the top bar); its links."""
        self.page.locator("summary.who").click()
        return self.page.get_by_role("navigation", name="Your settings")

    def settled(self) -> None:
        """Wait until htmx has no request, swap or settle under way: it wires the
        controls it swapped in only when they settle (20 ms later), so a choice made
        before then reaches no handler."""
        from playwright.sync_api import expect

        expect(self.page.locator(".htmx-settling, .htmx-request, .htmx-swapping")).to_have_count(0)

    def sign_out(self) -> None:
        self.my_menu().get_by_role("button", name="Sign out").click()

    def shot(self, name: str) -> Path:
        """A full-page screenshot for a person to look at. Chromium now and then answers
        "Unable to capture screenshot" while it is busy (two suites' browsers side by
        side): asked again, it takes it; the page itself is what the test asserts."""
        from playwright.sync_api import Error

        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        for attempt in range(3):
            try:
                self.page.screenshot(path=str(path), full_page=True)
                return path
            except Error as exc:
                if "Unable to capture screenshot" not in str(exc) or attempt == 2:
                    raise
                self.page.wait_for_timeout(200)
        return path


@pytest.fixture
def app(live_server: Any, transactional_db: None, page: Any) -> App:
    """The live server with the starting data, and a browser page."""
    return App(url=live_server.url, page=page)

"""Playwright (Python) driving Debian's Chromium, headless; screenshots under test-artifacts/.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``
(``apt-get install -y chromium``). Tests skip when either piece is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("REGOLO_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield launched
        finally:
            launched.close()


class Screenshots:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, page: Any, name: str) -> None:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{name}.png"
        # Viewport only: after a full-page capture, Chromium 156 + Playwright 1.65 miss the
        # next click (seen on the deploy form), so the tests use a tall viewport instead.
        # A screenshot is evidence, not a check: on a loaded CI machine Chromium has been
        # seen to miss one capture for 30 s, and once to refuse one outright ("Unable to
        # capture screenshot", right after a form post redirected). Each failed capture
        # gets another try once the page has loaded, up to three in all.
        for attempt in range(3):
            try:
                page.screenshot(path=str(path), timeout=30_000 * (attempt + 1))
                return
            except Exception as error:  # playwright's Error or TimeoutError
                if type(error).__module__.split(".")[0] != "playwright" or attempt == 2:
                    raise
                page.wait_for_load_state("load")
                page.wait_for_timeout(500)


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(request.node.name)

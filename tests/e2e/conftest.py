"""What every browser test shares: Debian's Chromium, driven headless by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's build; Playwright never downloads its own


@pytest.fixture(scope="module")
def browser():
    """Chromium launched headless (--no-sandbox: the tests run as root), closed after the module."""
    if not CHROMIUM.exists():
        pytest.skip(
            "the browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser tests need Playwright for Python"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()

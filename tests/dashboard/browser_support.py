"""What every browser test shares: Debian's Chromium driven by playwright (no browser download),
where screenshots go, and the one ``browser`` per test module (fixture in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GRIDWATCH_ARTIFACTS") or ROOT / "artifacts")
CHROMIUM = "/usr/bin/chromium"
# Autoplay without a gesture: the alert cue must be audible on a wall nobody clicked.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]


def require_chromium() -> None:
    """Fail (never skip) when the browser is missing: ./gw setup installs it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (and fonts-noto-cjk for Chinese text)",
                    pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

"""Playwright driving Debian's chromium (its own browser download cannot work here). Screenshots are kept under
test-artifacts/screenshots/ as test artefacts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (test.sh installs it with apt-get)")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def sign_out(page) -> None:
    page.click("form[action$='/accounts/logout/'] button")
    page.wait_for_load_state()


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
# The WCAG 2.0, 2.1 and 2.2 rules at levels A and AA: what "WCAG 2.2 AA" means for axe-core.
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def accessibility_violations(page) -> list[dict]:
    """Runs axe-core (vendored for the tests, never served by the app) on the page as it stands."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Through the DevTools protocol, not a <script> tag: the app's CSP rightly refuses inline and foreign scripts.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    return page.evaluate(
        # preload: false, axe-core's copying of the style sheets (for css-orientation-lock, an experimental rule it does
        # not run here) would add <style> elements, which the CSP refuses and the tests that watch it would report.
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'],"
        " preload: false}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')), count: v.nodes.length}))",
        WCAG_22_AA,
    )


def check_accessibility(page, name: str) -> None:
    """Fails with a readable list if the page breaks one of axe-core's WCAG 2.2 AA rules; no rule is switched off."""
    violations = accessibility_violations(page)
    if violations:
        lines = [
            f"- {v['id']} ({v['impact']}): {v['help']}; {v['count']} element(s), e.g. {', '.join(v['targets'])}"
            for v in violations
        ]
        raise AssertionError(f"{name} ({page.url}) breaks WCAG 2.2 AA rules:\n" + "\n".join(lines))

"""The login page in a real browser: Debian's Chromium driven by Playwright (``executable_path``).

What Postman users see for Authorization Code with PKCE: sign in, deny, an unregistered redirect
URI, a rejected username, with no console errors (an invalid ``pattern`` logs one in Chrome, which
compiles it with the ``v`` flag) and a screenshot of the login page saved under
``test-artifacts/`` (gitignored). Chromium is apt-installed when missing and we are root, as the
benchmark installs its tools; without a browser the tests skip and say why.

Usage:
    .venv/bin/pytest tests/dev_issuer/test_issuer_login_browser.py
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import debian_program
from issuer_helpers import Answer, Callback, RunningIssuer, code_request_url, pkce_pair
from playwright.async_api import Browser, ConsoleMessage, Error, Page, Response, async_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
STATE = "browser-state-1"
#: Flags that work in this sandbox: no GPU, no sandbox (we run as root), nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PostToken = Callable[..., Awaitable[Answer]]


@pytest.fixture(scope="session")
def chromium() -> str:
    return debian_program("chromium")


class Console:
    """Every console error and uncaught page error of the pages it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        return page

    def errors_besides(self, *, status: int) -> list[str]:
        """The errors other than Chrome's report of a document answered with ``status``: it logs
        "Failed to load resource" for any 4xx page, including the 400s the issuer sends on purpose
        (RFC 6749 §4.1.2.1: show the error, never redirect)."""
        expected = f"error: Failed to load resource: the server responded with a status of {status} "
        return [e for e in self.errors if not e.startswith(expected)]

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        try:
            # Playwright gives every launch a fresh temporary profile (user data dir).
            launched = await playwright.chromium.launch(
                executable_path=chromium, headless=True, args=CHROMIUM_ARGS, timeout=60_000
            )
        except Error as exc:
            pytest.skip(f"chromium at {chromium} does not start here: {exc.message.splitlines()[0]}")
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[tuple[Page, Console]]:
    console = Console()
    context = await browser.new_context()
    yield console.watch(await context.new_page()), console
    await context.close()


async def _open_login(tab: Page, issuer: RunningIssuer, redirect_uri: str) -> tuple[str, Response | None]:
    """Go to the login page as the postman client asking for a code; returns the PKCE verifier."""
    verifier, challenge = pkce_pair()
    url = code_request_url(issuer, challenge, redirect_uri, scope="openid read", state=STATE)
    return verifier, await tab.goto(url)


async def test_sign_in_in_chromium_lands_on_the_client_with_a_code_that_redeems(
    issuer: RunningIssuer, callback: Callback, page: tuple[Page, Console], post_token: PostToken
) -> None:
    tab, console = page
    verifier, response = await _open_login(tab, issuer, callback.url)
    assert response is not None and response.status == 200
    assert "development issuer" in (await tab.title()).lower()
    viewport = tab.locator('meta[name="viewport"]')
    assert await viewport.get_attribute("content") == "width=device-width, initial-scale=1"
    ARTIFACTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / "login-page.png"), full_page=True)

    username = tab.locator('input[name="username"]')
    # The browser's own check of the field works (a pattern Chrome cannot compile disables it).
    await username.fill("not a subject")
    assert await username.evaluate("e => e.checkValidity()") is False
    await username.fill("auth0|alice-1")
    assert await username.evaluate("e => e.checkValidity()") is True
    await tab.get_by_label("admin").check()
    await tab.get_by_role("button", name="Sign in").click()
    await tab.wait_for_url(f"{callback.url}?**")

    received = callback.received[-1]
    assert received["state"] == STATE and "code" in received
    answer = await post_token(
        issuer.url,
        {
            "grant_type": "authorization_code",
            "code": received["code"],
            "code_verifier": verifier,
            "redirect_uri": callback.url,
            "client_id": "postman",
        },
    )
    assert answer.status == 200, answer.body
    assert console.errors == []


async def test_deny_in_chromium_returns_access_denied(
    issuer: RunningIssuer, callback: Callback, page: tuple[Page, Console]
) -> None:
    tab, console = page
    await _open_login(tab, issuer, callback.url)
    await tab.get_by_role("button", name="Deny").click()  # formnovalidate: no username needed
    await tab.wait_for_url(f"{callback.url}?**")
    landed: dict[str, Any] = parse_qs(urlsplit(tab.url).query)
    assert landed["error"] == ["access_denied"] and landed["state"] == [STATE]
    assert console.errors == []


async def test_an_unregistered_redirect_uri_shows_an_error_page_in_chromium(
    issuer: RunningIssuer, callback: Callback, page: tuple[Page, Console]
) -> None:
    tab, console = page
    unregistered = callback.url.replace("/callback", "/not-registered")
    _, response = await _open_login(tab, issuer, unregistered)
    assert response is not None and response.status == 400
    assert tab.url.startswith(issuer.url)  # shown here, never redirected
    assert "development issuer" in (await tab.title()).lower()
    assert "not registered" in await tab.locator('[role="alert"]').inner_text()
    assert callback.received == []
    assert console.errors_besides(status=400) == []


async def test_a_rejected_username_stays_in_the_field_tied_to_its_error(
    issuer: RunningIssuer, callback: Callback, page: tuple[Page, Console]
) -> None:
    tab, console = page
    await _open_login(tab, issuer, callback.url)
    # A browser without the pattern check (or a person who turned it off) posts anyway: the server
    # must refuse, keep what was typed, and say which field is wrong.
    ARTIFACTS.mkdir(exist_ok=True)
    await tab.locator("form").evaluate("form => { form.noValidate = true; }")
    await tab.locator('input[name="username"]').fill("not a subject")
    await tab.get_by_role("button", name="Sign in").click()
    await tab.wait_for_load_state()
    username = tab.locator('input[name="username"]')
    assert await username.input_value() == "not a subject"
    assert await username.get_attribute("aria-invalid") == "true"
    error_id = await username.get_attribute("aria-describedby")
    assert error_id is not None
    assert "Username" in await tab.locator(f"#{error_id}").inner_text()
    await tab.screenshot(path=str(ARTIFACTS / "login-page-rejected-username.png"), full_page=True)
    assert callback.received == []
    assert console.errors_besides(status=400) == []


async def test_the_login_page_is_laid_out_for_a_phone(
    issuer: RunningIssuer, callback: Callback, browser: Browser
) -> None:
    # Without <meta name="viewport"> a phone lays the page out 980 px wide and shows it zoomed out.
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        tab = await context.new_page()
        await _open_login(tab, issuer, callback.url)
        assert await tab.evaluate("window.innerWidth") == 390
        assert await tab.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        await context.close()

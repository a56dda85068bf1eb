"""The minimal HTML the browser sees: the development login form and the error page.

Every value is HTML-escaped; the pages carry a strict Content-Security-Policy, refuse to be
framed (clickjacking), and are never cached. The username's ``pattern`` mirrors
``params.SUBJECT_PATTERN`` and is valid under the ``v`` flag browsers compile it with (inside a
character class ``|`` and ``-`` are escaped); ``tests/browser/`` checks the page in Chromium.

Usage:
    return login_page(config, pending, login_id="...", username="b@d name", username_error="...")
    return error_page("redirect_uri is not registered for this client")
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from dev_issuer.config import IssuerConfig
from dev_issuer.grants import PendingLogin

__all__ = ["USERNAME_PATTERN", "error_page", "login_page"]

_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # No script at all; inline style only. form-action is left out on purpose: Chrome applies it to
    # the redirect that follows the form post, which goes to the client's redirect URI.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    ".warn{background:#fff3cd;border:1px solid #e0c060;padding:.5rem 1rem}"
    ".error{background:#f8d7da;border:1px solid #d08080;padding:.5rem 1rem}"
    "label{display:block;margin:.5rem 0}button{margin:1rem .5rem 0 0;padding:.4rem 1rem}"
)


#: The browser's own check of the username (HTML ``pattern`` is anchored and compiled with the ``v``
#: flag, where ``|`` and ``-`` inside a class must be escaped); the server checks again.
USERNAME_PATTERN = r"[A-Za-z0-9._@+:\|\-]{1,128}"
_USERNAME_ERROR_ID = "username-error"


def _page(title: str, body: str, status: int) -> web.Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · secureroute development issuer</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        '<p class="warn"><strong>Development issuer.</strong> No passwords: anyone who can reach this '
        "page can sign in as anyone. Never use it in production.</p>"
        f"{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", status=status, headers=_HEADERS)


def login_page(
    config: IssuerConfig,
    pending: PendingLogin,
    *,
    login_id: str,
    username: str = "",
    roles: tuple[str, ...] = (),
    error: str | None = None,
    username_error: str | None = None,
) -> web.Response:
    """The form: a username (becomes ``sub``), role checkboxes, approve or deny.

    ``username_error`` is shown next to the field and tied to it (``aria-invalid``,
    ``aria-describedby``), with the rejected value kept so it can be corrected."""
    checkboxes = "".join(
        f'<label><input type="checkbox" name="role" value="{escape(r)}"{" checked" if r in roles else ""}> '
        f"{escape(r)}</label>"
        for r in config.roles_offered
    )
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    field_error = (
        f'<p class="error" role="alert" id="{_USERNAME_ERROR_ID}">{escape(username_error)}</p>'
        if username_error
        else ""
    )
    invalid = f' aria-invalid="true" aria-describedby="{_USERNAME_ERROR_ID}"' if username_error else ""
    body = (
        f"{error_html}"
        f"<p><strong>{escape(pending.client_id)}</strong> asks for scope "
        f"<code>{escape(' '.join(pending.scopes))}</code> "
        f"on audience <code>{escape(pending.audience)}</code>.</p>"
        '<form method="post" action="/authorize">'
        f'<input type="hidden" name="login" value="{escape(login_id)}">'
        "<label>Username (becomes the token's <code>sub</code>)<br>"
        f'<input name="username" value="{escape(username)}" required autofocus maxlength="128" '
        f'pattern="{escape(USERNAME_PATTERN)}" autocomplete="username"{invalid}></label>'
        f"{field_error}<fieldset><legend>Roles</legend>{checkboxes}</fieldset>"
        '<button type="submit" name="action" value="approve">Sign in</button>'
        '<button type="submit" name="action" value="deny" formnovalidate>Deny</button>'
        "</form>"
    )
    return _page("Sign in", body, 200 if error is None and username_error is None else 400)


def error_page(message: str, *, status: int = 400) -> web.Response:
    """An error the user must see here, because redirecting would be unsafe (RFC 6749 §4.1.2.1)."""
    return _page("Authorization error", f'<p class="error" role="alert">{escape(message)}</p>', status)

"""The minimal HTML the browser sees: the development login form and the error page.

Every value is HTML-escaped; the pages carry a strict Content-Security-Policy, refuse to be
framed (clickjacking), and are never cached.

Usage:
    return login_page(config, pending, login_id="...")
    return error_page("redirect_uri is not registered for this client")
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from dev_issuer.config import IssuerConfig
from dev_issuer.grants import PendingLogin

__all__ = ["error_page", "login_page"]

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


def _page(title: str, body: str, status: int) -> web.Response:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
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
) -> web.Response:
    """The form: a username (becomes ``sub``), role checkboxes, approve or deny."""
    checkboxes = "".join(
        f'<label><input type="checkbox" name="role" value="{escape(r)}"{" checked" if r in roles else ""}> '
        f"{escape(r)}</label>"
        for r in config.roles_offered
    )
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"{error_html}"
        f"<p><strong>{escape(pending.client_id)}</strong> asks for scope "
        f"<code>{escape(' '.join(pending.scopes))}</code> "
        f"on audience <code>{escape(pending.audience)}</code>.</p>"
        '<form method="post" action="/authorize">'
        f'<input type="hidden" name="login" value="{escape(login_id)}">'
        "<label>Username (becomes the token's <code>sub</code>)<br>"
        f'<input name="username" value="{escape(username)}" required autofocus maxlength="128" '
        'pattern="[A-Za-z0-9._@+:|\\-]{1,128}" autocomplete="username"></label>'
        f"<fieldset><legend>Roles</legend>{checkboxes}</fieldset>"
        '<button type="submit" name="action" value="approve">Sign in</button>'
        '<button type="submit" name="action" value="deny" formnovalidate>Deny</button>'
        "</form>"
    )
    return _page("Sign in", body, 200 if error is None else 400)


def error_page(message: str, *, status: int = 400) -> web.Response:
    """An error the user must see here, because redirecting would be unsafe (RFC 6749 §4.1.2.1)."""
    return _page("Authorization error", f'<p class="error" role="alert">{escape(message)}</p>', status)

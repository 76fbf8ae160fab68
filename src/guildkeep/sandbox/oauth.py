"""Discord's OAuth2 authorization-code flow, in the sandbox: the consent page, the token endpoint and the
``/users/@me`` and ``/users/@me/guilds`` answers for a user's access token.

``/oauth2/authorize`` shows a page listing the sandbox's people (or approves at once as
``auto_approve_user`` when a test sets it) and redirects to ``redirect_uri`` with ``code`` and ``state``.
``/api/oauth2/token`` trades the code for a Bearer token, checking the
client id, secret and redirect URI as Discord does. Discord's OpenAPI description lists neither of these
two, so they are served beside the API routes; ``GET /users/@me/guilds`` is an API route and is checked
against the description like the others.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

if TYPE_CHECKING:
    from guildkeep.sandbox.server import SandboxServer
    from guildkeep.sandbox.state import User

TOKEN_LIFETIME = 7 * 24 * 3600
CODE_LIFETIME = 10 * 60


@dataclass
class Grant:
    user_id: int
    redirect_uri: str
    scope: str
    expires: float


@dataclass
class SandboxOAuth:
    """The application's OAuth2 side: its client secret, issued codes and access tokens."""

    server: SandboxServer
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    auto_approve_user: int | None = None
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)

    @property
    def client_id(self) -> int:
        return self.server.application_id

    # -- routes ---------------------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/oauth2/authorize", self.authorize)
        router.add_post("/api/oauth2/token", self.token)

    def user_for(self, authorization: str | None) -> User | None:
        """The user a ``Bearer`` access token stands for, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        grant = self.tokens.get(authorization[len("Bearer "):])
        if grant is None or grant.expires < time.time():
            return None
        return self.server.world.users.get(grant.user_id)

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != str(self.client_id):
            return self._page("Unknown application", "<p>Invalid OAuth2 application: unknown client_id.</p>", 400)
        if q.get("response_type") != "code":
            return self._page("Unsupported", "<p>Only response_type=code is supported.</p>", 400)
        redirect_uri = q.get("redirect_uri") or ""
        if not redirect_uri.startswith(("http://", "https://")):
            return self._page("Invalid redirect", "<p>Invalid OAuth2 redirect_uri.</p>", 400)
        chosen = q.get("user_id") or (str(self.auto_approve_user) if self.auto_approve_user else None)
        if chosen is not None:
            user = self.server.world.users.get(int(chosen)) if chosen.isdigit() else None
            if user is None or user.bot:
                return self._page("Unknown user", "<p>No such person in the sandbox.</p>", 400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = Grant(user.id, redirect_uri, q.get("scope") or "identify", time.time() + CODE_LIFETIME)
            params = {"code": code}
            if "state" in q:
                params["state"] = q["state"]
            glue = "&" if "?" in redirect_uri else "?"
            raise web.HTTPFound(redirect_uri + glue + urlencode(params))
        people = [u for u in self.server.world.users.values() if not u.bot and u.id != self.server.owner_user.id]
        buttons = "".join(
            f'<li><a class="who" href="?{html.escape(urlencode({**q, "user_id": u.id}))}">'
            f"Authorize as {html.escape(u.global_name or u.username)} ({html.escape(u.username)})</a></li>"
            for u in people
        )
        scope = html.escape(q.get("scope") or "identify")
        return self._page("Authorize", f"<p>{html.escape(self.server.bot_user.username)} wants: {scope}</p>"
                                       f"<ul>{buttons}</ul>")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return _error("invalid_client", 401)
        if str(client_id) != str(self.client_id) or secret != self.client_secret:
            return _error("invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type")
        grant = self.codes.pop(str(form.get("code") or ""), None)
        if grant is None or grant.expires < time.time() or grant.redirect_uri != form.get("redirect_uri"):
            return _error("invalid_grant", description='Invalid "code" in request.')
        access = secrets.token_urlsafe(24)
        self.tokens[access] = Grant(grant.user_id, grant.redirect_uri, grant.scope, time.time() + TOKEN_LIFETIME)
        return _json({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                      "refresh_token": secrets.token_urlsafe(24), "scope": grant.scope})

    async def my_guilds(self, request: web.Request) -> web.Response:
        user = self.user_for(request.headers.get("Authorization"))
        if user is None:  # a bot token: the guilds the bot is in
            user = self.server.bot_user
        out: list[dict[str, Any]] = []
        for guild in self.server.world.guilds.values():
            member = guild.members.get(user.id)
            if member is None:
                continue
            out.append({"id": str(guild.id), "name": guild.name, "icon": None, "banner": None,
                        "owner": guild.owner_id == user.id, "permissions": str(guild.base_permissions(member)),
                        "features": []})
        out.sort(key=lambda g: int(g["id"]))
        return _json(out)

    @staticmethod
    def _page(title: str, body: str, status: int = 200) -> web.Response:
        text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
        return web.Response(text=text, status=status, content_type="text/html")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(error: str, status: int = 400, description: str | None = None) -> web.Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return _json(body, status)

"""The web app: public pages per server and the admin dashboard, as one Starlette (ASGI) application.

Pages are rendered on the server with Jinja2; a little vanilla JavaScript (``static/app.js``) loads the next
leaderboard page in place. Every read and write goes through the module services (the same calls the slash
commands make), scoped to the guild id in the URL; a server that is unknown, or whose public pages are off,
answers 404 for its pages and its JSON alike.

The dashboard logs in with Discord's OAuth2 authorization-code flow (scopes ``identify guilds``): the
``state`` parameter is checked, the session is a signed cookie (HttpOnly, SameSite=Lax, Secure when the
base URL is https) holding the user and the ids of the servers where they have Manage Server, and every
form carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from guildkeep.config import Settings
from guildkeep.db import Database
from guildkeep.errors import DomainError, NotFoundError, ValidationError
from guildkeep.gacha.service import LEADERBOARD_KINDS, GachaService
from guildkeep.leveling import queries, rules
from guildkeep.leveling import settings as config
from guildkeep.leveling.cards import RankCardData, render_rank_card_async
from guildkeep.leveling.service import LevelingService
from guildkeep.web.service import UnknownServerError, WebService

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
PAGE_SIZE = 50
MAX_ADMIN_GUILDS = 100
SESSION_COOKIE = "guildkeep_session"
SESSION_MAX_AGE = 24 * 3600
WEEKDAYS = config.WEEKDAYS
# The dashboard's number fields: every numeric leveling setting, labelled from its declaration.
FORM_NUMBERS = tuple(n for n in config.NUMBERS if n != "quest_reset_day")  # the weekday is a list of names

AvatarLookup = Callable[[int], str | None]


@dataclass(frozen=True)
class Directory:
    """A server's channels and roles by name (from the bot's cache), so the dashboard offers names, not ids."""

    channels: list[tuple[int, str]]
    roles: list[tuple[int, str]]

    def names(self) -> dict[int, str]:
        return {**{i: f"#{n}" for i, n in self.channels}, **{i: f"@{n}" for i, n in self.roles}}


@dataclass
class WebContext:
    """What the pages read and write through. ``avatar_url`` (the bot's member cache when the web runs in the
    bot's process) gives a member's avatar URL on Discord's CDN; without it pages show initials. ``guild_name``
    (also from the bot) names the servers the bot is in, even before any of their data is stored."""

    db: Database
    settings: Settings
    leveling: LevelingService
    gacha: GachaService | None = None
    web: WebService | None = None
    avatar_url: AvatarLookup | None = None
    guild_name: Callable[[int], str | None] | None = None  # the bot's own guild list, when in its process
    directory: Callable[[int], Directory | None] | None = None  # the bot's channels and roles of a server

    def __post_init__(self) -> None:
        if self.web is None:
            self.web = WebService(self.db)


def base_url(settings: Settings) -> str:
    if settings.web_base_url:
        return settings.web_base_url
    return f"http://{settings.web_host}:{settings.web_port or 8080}"


def initials(name: str) -> str:
    parts = [p for p in re.split(r"[\s_.\-]+", name) if p]
    letters = "".join(p[0] for p in parts[:2]) or name[:1] or "?"
    return letters.upper()


def _fmt(value: int) -> str:
    return rules.compact_number(value)


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


def create_app(ctx: WebContext) -> Starlette:
    settings = ctx.settings
    web = ctx.web
    assert web is not None
    root = base_url(settings)
    secret = settings.web_session_secret.get_secret_value() if settings.web_session_secret else None
    if not secret:
        log.warning("GUILDKEEP_WEB_SESSION_SECRET is not set: sessions end when the web server restarts")
        secret = secrets.token_urlsafe(32)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["compact"] = _fmt
    env.globals["initials"] = initials

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = request.session.get("user")
        # Only a logged-in session gets a CSRF token: anonymous visitors of public pages get no cookie at all.
        body = env.get_template(name).render(request=request, user=user, csrf=_csrf(request) if user else "",
                                             oauth=bool(settings.web_client_id), **context)
        return HTMLResponse(body, status_code=status)

    def _csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return token

    async def form_checked(request: Request) -> Mapping[str, Any]:
        form = await request.form()
        sent = str(form.get("csrf") or "")
        expected = request.session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent, expected):
            raise Forbidden("This form has expired or did not come from this site; reload the page and try again.")
        return form

    # -------------------------------------------------------------------------------- public reads

    async def public(gid: int) -> str:
        try:
            name = await web.public_guild(gid)
        except UnknownServerError:
            raise HTTPException(404, "There is no public page for that server.") from None
        return (ctx.guild_name(gid) if ctx.guild_name else None) or name

    async def known_guilds(ids: list[int]) -> dict[int, str]:
        """Of these ids, the servers guildkeep is in (stored, or in the running bot's list), with names."""
        known = await web.known_guilds(ids)
        if ctx.guild_name is not None:
            for gid in ids:
                if name := ctx.guild_name(gid):
                    known[gid] = name
        return known

    def avatar(uid: int) -> str | None:
        if ctx.avatar_url is None:
            return None
        try:
            return ctx.avatar_url(uid)
        except (LookupError, AttributeError, ValueError):
            return None

    async def board(gid: int, after: str | None) -> dict[str, Any]:
        try:
            cursor = queries.Cursor.parse(after)
        except ValidationError as exc:
            raise HTTPException(400, str(exc)) from None
        page = await queries.leaderboard_after(ctx.db, gid, cursor, limit=PAGE_SIZE)
        curve = (await ctx.leveling.get_server_config(gid)).curve_rule
        rows = []
        for r in page.rows:
            level, into, span = curve.progress(r.xp)
            rows.append({"rank": r.rank, "user_id": str(r.user_id), "name": r.name, "xp": r.xp, "level": level,
                         "xp_into_level": into, "xp_for_level": span,
                         "progress": round(100 * into / span, 1) if span else 100.0,
                         "avatar_url": avatar(r.user_id), "initials": initials(r.name)})
        return {"entries": rows, "total": page.total, "next": str(page.next) if page.next else None}

    async def leaderboard_page(request: Request) -> Response:
        gid = request.path_params["gid"]
        name = await public(gid)
        data = await board(gid, request.query_params.get("after"))
        return render(request, "leaderboard.html", guild_id=gid, guild_name=name, **data,
                      first=not request.query_params.get("after"))

    async def leaderboard_api(request: Request) -> Response:
        gid = request.path_params["gid"]
        await public(gid)
        return JSONResponse({"guild_id": str(gid), **await board(gid, request.query_params.get("after"))})

    async def profile_data(gid: int, uid: int) -> dict[str, Any]:
        row = await queries.member_row(ctx.db, gid, uid)
        if row is None:
            raise HTTPException(404, "That member has no XP in this server.")
        view = await ctx.leveling.get_user_level(gid, uid)
        quests = await ctx.leveling.get_user_active_quests(gid, uid)
        earned = await ctx.leveling.get_user_achievements(gid, uid)
        return {
            "user_id": str(uid), "name": row.name, "rank": row.rank, "xp": view.xp, "level": view.level,
            "xp_into_level": view.xp_into_level, "xp_for_level": view.xp_for_level,
            "progress": round(100 * view.xp_into_level / view.xp_for_level, 1) if view.xp_for_level else 100.0,
            "messages": view.total_messages, "voice_minutes": view.voice_time_seconds // 60,
            "avatar_url": avatar(uid), "initials": initials(row.name),
            "quests": [{"name": q.quest.name, "description": q.quest.description, "type": q.quest.quest_type,
                        "progress": q.quest_specific_progress, "goal": q.quest.requirement_value,
                        "completed": q.completed, "reward_xp": q.quest.reward_xp} for q in quests],
            "achievements": [{"name": a.name, "description": a.description,
                              "earned_at": a.earned_at.isoformat() if a.earned_at else None} for a in earned],
        }

    async def profile_page(request: Request) -> Response:
        gid, uid = request.path_params["gid"], request.path_params["uid"]
        name = await public(gid)
        return render(request, "profile.html", guild_id=gid, guild_name=name, m=await profile_data(gid, uid))

    async def profile_api(request: Request) -> Response:
        gid, uid = request.path_params["gid"], request.path_params["uid"]
        await public(gid)
        return JSONResponse({"guild_id": str(gid), **await profile_data(gid, uid)})

    async def card_png(request: Request) -> Response:
        gid, uid = request.path_params["gid"], request.path_params["uid"]
        await public(gid)
        row = await queries.member_row(ctx.db, gid, uid)
        if row is None:
            raise HTTPException(404, "That member has no XP in this server.")
        view = await ctx.leveling.get_user_level(gid, uid)
        card = await ctx.leveling.get_card(gid, uid)
        png = await render_rank_card_async(RankCardData(row.name, view.level, view.xp_into_level,
                                                        view.xp_for_level, view.xp, row.rank, card))
        return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=60"})

    def need_gacha() -> GachaService:
        if ctx.gacha is None:
            raise HTTPException(404, "The collection game is not running here.")
        return ctx.gacha

    def _page_number(request: Request) -> int:
        raw = request.query_params.get("page", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
            raise HTTPException(400, "The page must be a whole number from 1.")
        return int(raw)

    async def gacha_data(request: Request, gid: int) -> dict[str, Any]:
        gacha = need_gacha()
        by = request.query_params.get("by", "level")
        if by not in LEADERBOARD_KINDS:
            raise HTTPException(400, f"Rank by one of: {', '.join(LEADERBOARD_KINDS)}.")
        try:
            currency = gacha.resolve_currency(request.query_params.get("currency"))
        except ValidationError as exc:
            raise HTTPException(400, str(exc)) from None
        page = await gacha.leaderboard(gid, by, page=_page_number(request), currency=currency)
        names = await _names(gid, [e.user_id for e in page.items])
        label = {"level": "Level", "xp": "XP", "currency": gacha.config.currency(currency).name}[by]
        return {"by": by, "label": label, "currency": currency, "page": page.page, "pages": page.pages,
                "total": page.total,
                "entries": [{"rank": e.rank, "user_id": str(e.user_id), "name": names.get(e.user_id, str(e.user_id)),
                             "value": e.value, "level": e.level} for e in page.items]}

    async def _names(gid: int, ids: list[int]) -> dict[int, str]:
        from sqlalchemy import select

        from guildkeep.identity.models import User

        if not ids:
            return {}
        async with ctx.db.session(read_only=True) as s:
            rows = (await s.execute(select(User.id, User.username, User.custom_name, User.discord_display_name)
                                    .where(User.id.in_(ids)))).all()
        return {r.id: r.custom_name or r.discord_display_name or r.username or str(r.id) for r in rows}

    async def gacha_page(request: Request) -> Response:
        gid = request.path_params["gid"]
        name = await public(gid)
        return render(request, "gacha.html", guild_id=gid, guild_name=name, kinds=LEADERBOARD_KINDS,
                      **await gacha_data(request, gid))

    async def gacha_api(request: Request) -> Response:
        gid = request.path_params["gid"]
        await public(gid)
        return JSONResponse({"guild_id": str(gid), **await gacha_data(request, gid)})

    async def auctions_data(request: Request, gid: int) -> dict[str, Any]:
        gacha = need_gacha()
        page = await gacha.browse(gid, page=_page_number(request))
        names = await _names(gid, [x.seller_id for x in page.items])
        return {"page": page.page, "pages": page.pages, "total": page.total, "listings": [
            {"listing_id": x.listing_id, "seller_id": str(x.seller_id),
             "seller": names.get(x.seller_id, str(x.seller_id)), "price": x.price, "currency": x.currency,
             "created_at": x.created_at.isoformat(), "esprit": {"name": x.esprit.name, "rarity": x.esprit.rarity,
                                                                "element": x.esprit.element,
                                                                "level": x.esprit.level}}
            for x in page.items]}

    async def auctions_page(request: Request) -> Response:
        gid = request.path_params["gid"]
        name = await public(gid)
        return render(request, "auctions.html", guild_id=gid, guild_name=name, **await auctions_data(request, gid))

    async def auctions_api(request: Request) -> Response:
        gid = request.path_params["gid"]
        await public(gid)
        return JSONResponse({"guild_id": str(gid), **await auctions_data(request, gid)})

    async def home(request: Request) -> Response:
        return render(request, "home.html")

    # ------------------------------------------------------------------------------------ login

    async def login(request: Request) -> Response:
        if not settings.web_client_id or not settings.web_client_secret:
            raise HTTPException(404, "The dashboard is not set up here (no OAuth2 client configured).")
        state = secrets.token_urlsafe(24)
        request.session["oauth_state"] = state
        query = urlencode({"client_id": settings.web_client_id, "redirect_uri": root + "/oauth/callback",
                           "response_type": "code", "scope": "identify guilds", "state": state, "prompt": "none"})
        return RedirectResponse(f"{settings.web_discord_url}/oauth2/authorize?{query}", status_code=303)

    async def callback(request: Request) -> Response:
        expected = request.session.pop("oauth_state", None)
        state = request.query_params.get("state", "")
        if not expected or not hmac.compare_digest(state, expected):
            raise HTTPException(400, "The login could not be verified (state mismatch); start again from Log in.")
        code = request.query_params.get("code")
        if not code:
            raise HTTPException(400, "Discord did not approve the login.")
        try:
            user, guilds = await _exchange(code)
            # Manage Server (or Administrator, or owning the server), as Discord reports it for this user.
            manageable = [int(g["id"]) for g in guilds
                          if g.get("owner") or int(g.get("permissions") or 0) & (MANAGE_GUILD | ADMINISTRATOR)]
            profile = {"id": str(int(user["id"])), "name": str(user.get("global_name") or user["username"])[:100]}
        except (aiohttp.ClientError, TimeoutError, LoginError, ValueError, KeyError, TypeError) as exc:
            log.warning("OAuth2 login failed: %s", exc)
            raise HTTPException(502, "Discord did not accept the login; try again.") from None
        request.session.clear()
        request.session["user"] = profile
        request.session["admin_of"] = [str(g) for g in manageable[:MAX_ADMIN_GUILDS]]
        request.session["csrf"] = secrets.token_urlsafe(24)
        return RedirectResponse("/dashboard", status_code=303)

    async def _exchange(code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        assert settings.web_client_secret is not None
        api = settings.web_discord_url + "/api"
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(api + "/oauth2/token", data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": root + "/oauth/callback",
                "client_id": settings.web_client_id,
                "client_secret": settings.web_client_secret.get_secret_value(),
            }) as resp:
                token = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(token, dict) or "access_token" not in token:
                    raise LoginError(f"token endpoint answered {resp.status}")
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            async with http.get(api + "/v10/users/@me", headers=headers) as resp:
                if resp.status != 200:
                    raise LoginError(f"/users/@me answered {resp.status}")
                user = await resp.json()
            async with http.get(api + "/v10/users/@me/guilds", headers=headers) as resp:
                if resp.status != 200:
                    raise LoginError(f"/users/@me/guilds answered {resp.status}")
                guilds = await resp.json()
        return user, guilds

    async def logout(request: Request) -> Response:
        await form_checked(request)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    # -------------------------------------------------------------------------------- dashboard

    def logged_in(request: Request) -> dict[str, Any] | None:
        return request.session.get("user")

    async def admin_guild(request: Request) -> tuple[int, str]:
        """The guild id of the URL when the logged-in user has Manage Server there (else 403/404)."""
        gid = request.path_params["gid"]
        if not logged_in(request):
            raise Forbidden("Log in with Discord to use the dashboard.")
        if str(gid) not in request.session.get("admin_of", []):
            raise Forbidden("You need the Manage Server permission in that server to change its settings.")
        known = await known_guilds([gid])
        if gid not in known:
            raise HTTPException(404, "guildkeep is not in that server.")
        return gid, known[gid]

    async def dashboard(request: Request) -> Response:
        if not logged_in(request):
            return RedirectResponse("/login", status_code=303)
        known = await known_guilds([int(g) for g in request.session.get("admin_of", [])])
        return render(request, "dashboard.html", guilds=sorted(known.items(), key=lambda kv: kv[1].casefold()))

    async def dashboard_guild(request: Request, *, error: str | None = None, status: int = 200) -> Response:
        gid, name = await admin_guild(request)
        cfg = await ctx.leveling.get_server_config(gid)
        directory = ctx.directory(gid) if ctx.directory else None
        return render(
            request, "guild_admin.html", status=status, guild_id=gid, guild_name=name, cfg=cfg.settings, error=error,
            numbers=[(n, config.describe(n), getattr(cfg.settings, n)) for n in FORM_NUMBERS],
            cooldowns=[(f"{source}_cooldown", f"{source.capitalize()} cooldown (s)", cfg.settings.cooldown(source))
                       for source in config.COOLDOWN_SOURCES],
            directory=directory, names=directory.names() if directory else {},
            saved=request.query_params.get("saved") == "1", modes=config.LEVEL_UP_MODES, curves=config.CURVES,
            weekdays=WEEKDAYS, public_pages=await web.public_pages(gid),
            level_roles=await ctx.leveling.list_level_roles(gid),
            quests=await ctx.leveling.get_guild_active_quests(gid),
            achievements=await ctx.leveling.list_achievements(gid),
            quest_types=rules.QUEST_TYPES, quest_requirements=rules.QUEST_REQUIREMENTS,
            refresh_cycles=rules.REFRESH_CYCLES, difficulties=rules.DIFFICULTIES,
            achievement_requirements=rules.ACHIEVEMENT_REQUIREMENTS,
        )

    def action(work: Callable[[int, Mapping[str, Any]], Awaitable[None]]) -> Callable[[Request], Awaitable[Response]]:
        """A dashboard form: login, Manage Server and CSRF are checked before anything changes; a domain error
        (the same text as the slash command's) shows on the page with nothing changed."""

        async def endpoint(request: Request) -> Response:
            gid, _name = await admin_guild(request)
            form = await form_checked(request)
            try:
                await work(gid, form)
            except DomainError as exc:
                return await dashboard_guild(request, error=str(exc), status=400)
            return RedirectResponse(f"/dashboard/{gid}?saved=1", status_code=303)

        return endpoint

    def _number(form: Mapping[str, Any], name: str) -> str | None:
        value = str(form.get(name) or "").strip()
        return value or None

    def _id(form: Mapping[str, Any], name: str, what: str) -> int:
        value = str(form.get(name) or "").strip()
        if not value.isdigit() or not 0 < int(value) < 2**63:
            raise ValidationError(f"{what} must be a Discord id (a long number).")
        return int(value)

    async def save_config(gid: int, form: Mapping[str, Any]) -> None:
        changes: dict[str, Any] = {}
        for name in FORM_NUMBERS:
            if (value := _number(form, name)) is not None:
                changes[name] = value
        for name in ("level_up_mode", "curve"):
            if form.get(name):
                changes[name] = str(form[name])
        if (day := form.get("quest_reset_day")) in WEEKDAYS:
            changes["quest_reset_day"] = WEEKDAYS.index(str(day))
        cooldowns = {s: v for s in config.COOLDOWN_SOURCES
                     if (v := _number(form, f"{s}_cooldown")) is not None}
        if cooldowns:
            changes["cooldowns"] = cooldowns
        if "level_up_message" in form:
            changes["level_up_message"] = str(form["level_up_message"]).strip() or None
        for name in config.CHANNELS:
            if name in form:
                changes[name] = _number(form, name)
        if "quests_enabled_present" in form:
            changes["quests_enabled"] = form.get("quests_enabled") == "on"
        if changes:
            await ctx.leveling.update_server_config_values(gid, changes)

    async def save_public(gid: int, form: Mapping[str, Any]) -> None:
        await web.set_public_pages(gid, form.get("public_pages") == "on")

    async def add_level_role(gid: int, form: Mapping[str, Any]) -> None:
        level = _number(form, "level")
        if level is None or not level.isdigit():
            raise ValidationError("The level must be a whole number.")
        await ctx.leveling.add_level_role(gid, _id(form, "role_id", "The role"), int(level),
                                          stacked=form.get("stacked") == "on")

    async def remove_level_role(gid: int, form: Mapping[str, Any]) -> None:
        await ctx.leveling.remove_level_role(gid, _id(form, "role_id", "The role"))

    def _target(form: Mapping[str, Any], refusal: str) -> tuple[str, int]:
        """(kind, id) from the form: a ``kind`` and a ``target_id``, or a picked ``channel:<id>``/``role:<id>``."""
        kind, raw = form.get("kind"), str(form.get("target_id") or "")
        if ":" in raw:
            kind, raw = raw.split(":", 1)
        if kind not in ("channel", "role"):
            raise ValidationError(refusal)
        return kind, _id({"target_id": raw}, "target_id", "The channel" if kind == "channel" else "The role")

    async def no_xp(gid: int, form: Mapping[str, Any]) -> None:
        kind, target = _target(form, "Pick a channel or a role.")
        await ctx.leveling.set_no_xp(gid, channel_id=target if kind == "channel" else None,
                                     role_id=target if kind == "role" else None, remove=form.get("remove") == "on")

    async def multiplier(gid: int, form: Mapping[str, Any]) -> None:
        kind, target = _target(form, "Pick exactly one role or channel.")
        value = _number(form, "value")
        try:
            number = float(value or "")
        except ValueError:
            raise ValidationError("A multiplier must be a number.") from None
        await ctx.leveling.set_multiplier(gid, number, role_id=target if kind == "role" else None,
                                          channel_id=target if kind == "channel" else None)

    def _whole(form: Mapping[str, Any], name: str, what: str) -> int:
        value = _number(form, name) or ""
        if not value.isdigit():
            raise ValidationError(f"{what} must be a whole number.")
        return int(value)

    async def create_quest(gid: int, form: Mapping[str, Any]) -> None:
        await ctx.leveling.create_quest(
            gid, str(form.get("name") or ""), str(form.get("description") or ""), str(form.get("quest_type") or ""),
            str(form.get("requirement_type") or ""), _whole(form, "requirement_value", "The goal"),
            _whole(form, "reward_xp", "The reward"), difficulty=str(form.get("difficulty") or "medium"),
            refresh_cycle=str(form.get("refresh_cycle") or "") or None)

    async def end_quest(gid: int, form: Mapping[str, Any]) -> None:
        await ctx.leveling.end_quest(gid, _whole(form, "quest_id", "The quest"))

    async def create_achievement(gid: int, form: Mapping[str, Any]) -> None:
        await ctx.leveling.create_achievement(
            gid, str(form.get("name") or ""), str(form.get("description") or ""),
            str(form.get("requirement_type") or ""), _whole(form, "requirement_value", "The goal"),
            _whole(form, "reward_xp", "The reward") if _number(form, "reward_xp") else 0)

    # ------------------------------------------------------------------------------------ errors

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "Something went wrong."
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        return render(request, "error.html", status=status, status_code=status, message=detail)

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotFoundError):
            exc = HTTPException(404, str(exc))
        return await http_error(request, exc)

    routes = [
        Route("/", home),
        Route("/guilds/{gid:int}", leaderboard_page),
        Route("/guilds/{gid:int}/members/{uid:int}", profile_page),
        Route("/guilds/{gid:int}/members/{uid:int}/card.png", card_png),
        Route("/guilds/{gid:int}/gacha", gacha_page),
        Route("/guilds/{gid:int}/auctions", auctions_page),
        Route("/api/guilds/{gid:int}/leaderboard", leaderboard_api),
        Route("/api/guilds/{gid:int}/members/{uid:int}", profile_api),
        Route("/api/guilds/{gid:int}/gacha/leaderboard", gacha_api),
        Route("/api/guilds/{gid:int}/auctions", auctions_api),
        Route("/login", login),
        Route("/oauth/callback", callback),
        Route("/logout", logout, methods=["POST"]),
        Route("/dashboard", dashboard),
        Route("/dashboard/{gid:int}", dashboard_guild),
        Route("/dashboard/{gid:int}/config", action(save_config), methods=["POST"]),
        Route("/dashboard/{gid:int}/public", action(save_public), methods=["POST"]),
        Route("/dashboard/{gid:int}/level-roles", action(add_level_role), methods=["POST"]),
        Route("/dashboard/{gid:int}/level-roles/remove", action(remove_level_role), methods=["POST"]),
        Route("/dashboard/{gid:int}/no-xp", action(no_xp), methods=["POST"]),
        Route("/dashboard/{gid:int}/multipliers", action(multiplier), methods=["POST"]),
        Route("/dashboard/{gid:int}/quests", action(create_quest), methods=["POST"]),
        Route("/dashboard/{gid:int}/quests/end", action(end_quest), methods=["POST"]),
        Route("/dashboard/{gid:int}/achievements", action(create_achievement), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                             max_age=SESSION_MAX_AGE, same_site="lax", https_only=root.startswith("https://"))]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: http_error, NotFoundError: not_found})


class LoginError(Exception):
    """Discord's OAuth2 endpoints did not answer as expected."""

"""Discord's documented limits, checked on everything the bot sends (answered as 50035 Invalid Form Body)."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from guildkeep.sandbox.errors import APIError, FormErrors

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
EMBED_FIELD_NAME_MAX = 256
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_MAX = 2048
EMBED_AUTHOR_MAX = 256
EMBED_TOTAL_MAX = 6000
ACTION_ROWS_MAX = 5
ROW_BUTTONS_MAX = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
SELECT_OPTIONS_MAX = 25
SELECT_PLACEHOLDER_MAX = 150
SELECT_OPTION_TEXT_MAX = 100
WEBHOOK_NAME_MAX = 80
WEBHOOKS_PER_CHANNEL = 15
FILES_MAX = 10
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
COMMAND_DESCRIPTION_MAX = 100
COMMAND_OPTIONS_MAX = 25
COMMAND_CHOICES_MAX = 25
GLOBAL_CHAT_COMMANDS_MAX = 100
MODAL_TITLE_MAX = 45
COLOR_MAX = 0xFFFFFF
# Embed URLs: which schemes each accepts (images may point at a file of the same message).
EMBED_URL_FIELDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("url",), ("http", "https")),
    (("image", "url"), ("http", "https", "attachment")),
    (("thumbnail", "url"), ("http", "https", "attachment")),
    (("author", "url"), ("http", "https")),
    (("author", "icon_url"), ("http", "https", "attachment")),
    (("footer", "icon_url"), ("http", "https", "attachment")),
)

FORBIDDEN_WEBHOOK_NAMES = ("clyde", "discord")


def _embed_length(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "") + len((embed.get("author") or {}).get("name") or "")
    for fld in embed.get("fields") or []:
        total += len(fld.get("name") or "") + len(fld.get("value") or "")
    return total


def check_url(errors: FormErrors, path: tuple[str | int, ...], value: Any, schemes: tuple[str, ...]) -> None:
    """A URL Discord will fetch or link: its scheme must be allowed and, for http(s), it needs a host."""
    if value is None:
        return
    if not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Must be a string.")
        return
    # Discord reads everything before the first ":" as the scheme, lowercased ("None" -> "none").
    scheme = value.split(":", 1)[0].lower()
    if scheme not in schemes:
        # The message lists the web schemes (and discord: for link buttons), not attachment:.
        listed = ", ".join(repr(s) for s in schemes if s != "attachment")
        errors.add(path, "URL_TYPE_INVALID_SCHEME", f'Scheme "{scheme}" is not supported. Scheme must be one of '
                   f"({listed}).")
        return
    rest = value.split(":", 1)[1] if ":" in value else ""
    if not rest.startswith("//") or len(rest) <= 2 or rest[2] in "/?#" or any(c.isspace() for c in value):
        errors.add(path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")


def check_color(errors: FormErrors, path: tuple[str | int, ...], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "NUMBER_TYPE_COERCE", f"Value \"{value}\" is not int.")
    elif value > COLOR_MAX:
        errors.add(path, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {COLOR_MAX}.")
    elif value < 0:
        errors.add(path, "NUMBER_TYPE_MIN", "int value should be greater than or equal to 0.")


def check_embeds(errors: FormErrors, embeds: list[dict[str, Any]] | None, root: str = "embeds") -> None:
    if not embeds:
        return
    errors.max_items((root,), embeds, EMBEDS_MAX)
    total = 0
    for i, embed in enumerate(embeds):
        errors.max_length((root, i, "title"), embed.get("title"), EMBED_TITLE_MAX)
        errors.max_length((root, i, "description"), embed.get("description"), EMBED_DESCRIPTION_MAX)
        errors.max_length((root, i, "footer", "text"), (embed.get("footer") or {}).get("text"), EMBED_FOOTER_MAX)
        errors.max_length((root, i, "author", "name"), (embed.get("author") or {}).get("name"), EMBED_AUTHOR_MAX)
        fields = embed.get("fields") or []
        errors.max_items((root, i, "fields"), fields, EMBED_FIELDS_MAX)
        for j, fld in enumerate(fields):
            errors.max_length((root, i, "fields", j, "name"), fld.get("name"), EMBED_FIELD_NAME_MAX, 1)
            errors.max_length((root, i, "fields", j, "value"), fld.get("value"), EMBED_FIELD_VALUE_MAX, 1)
        for keys, schemes in EMBED_URL_FIELDS:
            parent = embed if len(keys) == 1 else embed.get(keys[0])
            if isinstance(parent, dict):
                check_url(errors, (root, i, *keys), parent.get(keys[-1]), schemes)
        check_color(errors, (root, i, "color"), embed.get("color"))
        total += _embed_length(embed)
    if total > EMBED_TOTAL_MAX:
        errors.add((root,), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}")


IS_COMPONENTS_V2 = 1 << 15
SELECT_TYPES = (3, 5, 6, 7, 8)
LINK_STYLE = 5
PREMIUM_STYLE = 6


def _type_choices(errors: FormErrors, path: tuple[str | int, ...], allowed: tuple[int, ...]) -> None:
    listed = ", ".join(map(str, allowed)) + ("," if len(allowed) == 1 else "")
    errors.add(path, "UNION_TYPE_CHOICES", f'Value of field "type" must be one of ({listed}).')


def _bad_length(errors: FormErrors, path: tuple[str | int, ...], items: Any, low: int, high: int) -> None:
    """Discord's list rule: an empty (or missing) list is BASE_TYPE_REQUIRED, too many BASE_TYPE_MAX_LENGTH."""
    count = len(items) if isinstance(items, list) else 0
    if count == 0 and low > 0:
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
    elif count < low:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")
    elif count > high:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")


def _check_custom_id(errors: FormErrors, path: tuple[str | int, ...], comp: dict[str, Any], seen: set[str]) -> None:
    custom_id = comp.get("custom_id")
    errors.max_length((*path, "custom_id"), custom_id, CUSTOM_ID_MAX, 1)
    if isinstance(custom_id, str) and custom_id:
        if custom_id in seen:
            errors.add((*path, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED",
                       "Component custom id cannot be duplicated")
        seen.add(custom_id)


def _check_button(errors: FormErrors, path: tuple[str | int, ...], comp: dict[str, Any], seen: set[str]) -> None:
    errors.max_length((*path, "label"), comp.get("label"), BUTTON_LABEL_MAX)
    style = comp.get("style")
    both = comp.get("custom_id") is not None and comp.get("url") is not None
    if both:
        for key in ("custom_id", "url"):
            errors.add((*path, key), "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                       "A custom id and url cannot both be specified")
    if style == LINK_STYLE:
        if comp.get("custom_id") is not None and not both:
            errors.add((*path, "custom_id"), "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                       "A custom id and url cannot both be specified")
        if not comp.get("url"):
            errors.add((*path, "url"), "BASE_TYPE_REQUIRED", "This field is required")
        else:
            check_url(errors, (*path, "url"), comp.get("url"), ("http", "https", "discord"))
        return
    if style == PREMIUM_STYLE or both:
        return
    if not comp.get("custom_id"):
        errors.add((*path, "custom_id"), "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required")
    _check_custom_id(errors, path, comp, seen)


def _check_select(errors: FormErrors, path: tuple[str | int, ...], comp: dict[str, Any], seen: set[str]) -> None:
    _check_custom_id(errors, path, comp, seen)
    if not comp.get("custom_id"):
        errors.add((*path, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
    errors.max_length((*path, "placeholder"), comp.get("placeholder"), SELECT_PLACEHOLDER_MAX)
    low, high = comp.get("min_values", 1), comp.get("max_values", 1)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        errors.add((*path, "min_values"), "NUMBER_TYPE_MAX",
                   f"min_values value should be less than or equal to {high}.")
    if comp.get("type") != 3:
        return
    options = comp.get("options")
    _bad_length(errors, (*path, "options"), options, 1, SELECT_OPTIONS_MAX)
    if not options:
        return
    if isinstance(high, int) and high > len(options):  # more picks allowed than there are options
        errors.add((*path, "options"), "BASE_TYPE_MIN_LENGTH", f"Must be {high} or more in length.")
    values: set[Any] = set()
    for k, option in enumerate(options):
        errors.max_length((*path, "options", k, "label"), option.get("label"), SELECT_OPTION_TEXT_MAX, 1)
        errors.max_length((*path, "options", k, "value"), option.get("value"), SELECT_OPTION_TEXT_MAX, 1)
        if option.get("value") in values:
            errors.add((*path, "options", k), "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                       "The specified option value is already used")
        values.add(option.get("value"))


def check_components(errors: FormErrors, rows: list[dict[str, Any]] | None, root: str = "components", *,
                     flags: int = 0) -> None:
    """Message components: action rows (unless the message uses the v2 layout flag) of 1..5 buttons or one
    select; custom ids unique in the message; link buttons carry a url and no custom id, others a custom id."""
    if not rows:
        return
    errors.max_items((root,), rows, ACTION_ROWS_MAX)
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if row.get("type") != 1:
            if not flags & IS_COMPONENTS_V2:
                _type_choices(errors, (root, i), (1,))
            continue  # components v2 layouts are not validated further
        children = row.get("components") or []
        _bad_length(errors, (root, i, "components"), children, 1, ROW_BUTTONS_MAX)
        selects = [c for c in children if c.get("type") in SELECT_TYPES]
        if selects and len(children) > 1:
            errors.add((root, i, "components"), "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                       "The specified component exceeds the maximum width")
        for j, comp in enumerate(children):
            path = (root, i, "components", j)
            if comp.get("type") == 2:
                _check_button(errors, path, comp, seen)
            elif comp.get("type") in SELECT_TYPES:
                _check_select(errors, path, comp, seen)
            else:
                _type_choices(errors, path, (2, *SELECT_TYPES))


def check_message(body: dict[str, Any], *, files: int = 0, require_content: bool = True,
                  webhook: bool = False, root: tuple[str | int, ...] = ()) -> None:
    """A message create/edit body (channel message, webhook execute, interaction response: ``root=("data",)``)."""
    errors = FormErrors(root)
    errors.max_length(("content",), body.get("content"), CONTENT_MAX)
    check_embeds(errors, body.get("embeds"))
    check_components(errors, body.get("components"), flags=int(body.get("flags") or 0))
    if webhook:
        check_webhook_username(errors, body.get("username"), "username")
    if files > FILES_MAX:
        errors.add(("files",), "BASE_TYPE_MAX_LENGTH", f"Must be {FILES_MAX} or fewer in length.")
    errors.raise_if_any()
    empty = not (body.get("content") or body.get("embeds") or body.get("components") or files
                 or body.get("sticker_ids") or body.get("poll"))
    if require_content and empty:
        raise APIError(400, 50006, "Cannot send an empty message")


def check_webhook_username(errors: FormErrors, name: str | None, key: str) -> None:
    if name is None:
        return
    errors.max_length((key,), name, WEBHOOK_NAME_MAX, 1)
    lowered = name.lower() if isinstance(name, str) else ""
    for word in FORBIDDEN_WEBHOOK_NAMES:
        if word in lowered:
            errors.add((key,), "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{word}"')


def too_many_commands() -> APIError:
    return APIError(400, 30032, "Maximum number of application commands reached")


def check_commands(commands: list[dict[str, Any]]) -> None:
    """A bulk overwrite of application commands."""
    if sum(1 for c in commands if c.get("type", 1) == 1) > GLOBAL_CHAT_COMMANDS_MAX:
        raise too_many_commands()
    errors = FormErrors()
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        key = (cmd.get("type", 1), cmd.get("name", ""))
        if key in seen:
            errors.add((i, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
        seen.add(key)
        _check_one(errors, (i,), cmd)
    errors.raise_if_any()


def check_command(cmd: dict[str, Any]) -> None:
    """One application command (create or edit)."""
    errors = FormErrors()
    _check_one(errors, (), cmd)
    errors.raise_if_any()


def _check_one(errors: FormErrors, path: tuple[str | int, ...], cmd: dict[str, Any]) -> None:
    _check_command(errors, path, cmd, chat_input=cmd.get("type", 1) == 1)
    dmp = cmd.get("default_member_permissions")
    # Requests may send an integer (the spec's request schema) or a digit string; answers are strings.
    if dmp is not None and not (isinstance(dmp, int) or (isinstance(dmp, str) and dmp.isdigit())):
        errors.add((*path, "default_member_permissions"), "NUMBER_TYPE_COERCE", "Value is not int.")


def _valid_name(name: Any) -> bool:
    return isinstance(name, str) and bool(COMMAND_NAME_RE.match(name)) and name == name.lower()


def _check_command(errors: FormErrors, path: tuple[str | int, ...], cmd: dict[str, Any], *, chat_input: bool) -> None:
    if chat_input and not _valid_name(cmd.get("name") or ""):
        errors.add((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if chat_input:
        errors.max_length((*path, "description"), cmd.get("description"), COMMAND_DESCRIPTION_MAX, 1)
    options = cmd.get("options") or []
    errors.max_items((*path, "options"), options, COMMAND_OPTIONS_MAX)
    kinds = {o.get("type") in (1, 2) for o in options}
    if len(kinds) > 1:  # sub-commands (or groups) and plain options side by side
        errors.add((*path, "options"), "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                   "Sub-command and sub-command group option types are mutually exclusive to all other types")
    names: set[str] = set()
    seen_optional = False
    for j, option in enumerate(options):
        opath = (*path, "options", j)
        name = option.get("name")
        if name in names:
            errors.add((*opath, "name"), "APPLICATION_COMMAND_OPTIONS_NAME_INVALID",
                       f"Option name {name} is already used")
        names.add(name)
        if option.get("type") in (1, 2):
            _check_command(errors, opath, option, chat_input=True)
            continue
        if not _valid_name(name or ""):
            errors.add((*opath, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        errors.max_length((*opath, "description"), option.get("description"), COMMAND_DESCRIPTION_MAX, 1)
        errors.max_items((*opath, "choices"), option.get("choices"), COMMAND_CHOICES_MAX)
        if option.get("autocomplete") and option.get("choices"):
            errors.add((*opath, "autocomplete"), "APPLICATION_COMMAND_OPTION_CHOICES_AUTOCOMPLETE",
                       "Autocomplete and choices are mutually exclusive")
        if option.get("required"):
            if seen_optional:
                errors.add((*opath, "required"), "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                           "Required options must be placed before non-required options")
        else:
            seen_optional = True


def check_autocomplete(data: dict[str, Any]) -> None:
    errors = FormErrors()
    choices = data.get("choices") or []
    errors.max_items(("data", "choices"), choices, COMMAND_CHOICES_MAX)
    for i, choice in enumerate(choices):
        errors.max_length(("data", "choices", i, "name"), choice.get("name"), 100, 1)
    errors.raise_if_any()


def check_modal(data: dict[str, Any]) -> None:
    """A modal: title 1..45, custom id, 1..5 rows, each an action row holding one text input or a label."""
    errors = FormErrors()
    errors.max_length(("data", "title"), data.get("title"), MODAL_TITLE_MAX, 1)
    errors.max_length(("data", "custom_id"), data.get("custom_id"), CUSTOM_ID_MAX, 1)
    for key in ("title", "custom_id"):
        if data.get(key) is None:
            errors.add(("data", key), "BASE_TYPE_REQUIRED", "This field is required")
    rows = data.get("components")
    _bad_length(errors, ("data", "components"), rows, 1, ACTION_ROWS_MAX)
    seen: set[str] = set()
    for i, row in enumerate(rows or []):
        path = ("data", "components", i)
        inner: list[tuple[int | str, Any]]
        if row.get("type") == 1:
            children = row.get("components") or []
            _bad_length(errors, (*path, "components"), children, 1, 1)
            inner = [(j, c) for j, c in enumerate(children)]
        elif row.get("type") == 18:
            inner = [("component", row.get("component") or {})]
        elif row.get("type") == 10:
            continue  # text display
        else:
            _type_choices(errors, path, (1, 10, 18))
            continue
        for place, comp in inner:
            cpath: tuple[str | int, ...] = (
                (*path, "components", place) if row.get("type") == 1 else (*path, "component"))
            if row.get("type") == 1 and comp.get("type") != 4:
                _type_choices(errors, cpath, (4,))
                continue
            _check_custom_id(errors, cpath, comp, seen)
    errors.raise_if_any()


# -- rate limits ------------------------------------------------------------------------------------

GLOBAL_LIMIT = (50, 1.0)  # requests per second per bot (per IP without a token); interactions are exempt
DEFAULT_ROUTE_LIMIT = (50, 1.0)
# Per-route buckets as Discord answers them (requests, seconds), per top-level resource of the path
# (channel, guild, or webhook id + token). Routes sharing a name share a bucket.
ROUTE_LIMITS: dict[str, tuple[str, tuple[int, float]]] = {
    "POST /channels/{channel_id}/messages": ("message-create", (5, 5.0)),
    "PATCH /channels/{channel_id}/messages/{message_id}": ("message-edit", (5, 5.0)),
    "DELETE /channels/{channel_id}/messages/{message_id}": ("message-delete", (5, 1.0)),
    "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": ("reaction", (1, 0.25)),
    "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": ("reaction", (1, 0.25)),
    "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}": ("reaction", (1, 0.25)),
    "POST /channels/{channel_id}/typing": ("typing", (5, 5.0)),
    "POST /webhooks/{webhook_id}/{token}": ("webhook-execute", (5, 2.0)),
    "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}": ("member-role", (10, 10.0)),
    "DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}": ("member-role", (10, 10.0)),
    "PATCH /guilds/{guild_id}/members/{user_id}": ("member-edit", (10, 10.0)),
}
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id")


@dataclass
class _Window:
    reset_at: float
    remaining: int


@dataclass
class RateLimited(Exception):
    """A 429: how long to wait, and whether the global limit (not the route's bucket) was hit."""

    retry_after: float
    is_global: bool
    headers: dict[str, str]

    def payload(self) -> dict[str, Any]:
        # Discord's OpenAPI description requires a code on every error body (0: general error).
        return {"message": "You are being rate limited.", "retry_after": round(self.retry_after, 3),
                "global": self.is_global, "code": 0}


class RateLimits:
    """Discord's rate limits: per-route buckets per top-level resource (fixed windows from the first request),
    and the global limit per token. ``hit`` counts a request and returns the ``X-RateLimit-*`` headers for its
    answer, or raises ``RateLimited``. Bucket sizes are configurable: ``RateLimits(routes={"message-create":
    (5, 0.1)}, global_limit=(20, 1.0))``; ``scale`` shortens every window (0.01: Discord's limits 100x faster)."""

    def __init__(self, routes: dict[str, tuple[int, float]] | None = None, *,
                 global_limit: tuple[int, float] | None = GLOBAL_LIMIT,
                 default: tuple[int, float] = DEFAULT_ROUTE_LIMIT, scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, enabled: bool = True) -> None:
        self.sizes = dict(ROUTE_LIMITS.values())
        self.sizes.update(routes or {})
        self.global_limit = global_limit
        self.default = default
        self.scale = scale
        self.clock = clock
        self.enabled = enabled
        self._windows: dict[tuple[str, str], _Window] = {}
        self.served_429 = 0

    def bucket(self, method: str, route: str) -> tuple[str, tuple[int, float]]:
        name, _size = ROUTE_LIMITS.get(f"{method} {route}", (f"{method} {route}", self.default))
        limit, window = self.sizes.get(name, self.default)
        return name, (limit, window * self.scale)

    def _take(self, key: tuple[str, str], size: tuple[int, float], now: float) -> tuple[_Window, bool]:
        limit, window = size
        state = self._windows.get(key)
        if state is None or now >= state.reset_at:
            state = self._windows[key] = _Window(now + window, limit)
        if state.remaining <= 0:
            return state, False
        state.remaining -= 1
        return state, True

    def hit(self, method: str, route: str, params: dict[str, str], auth: str | None, *,
            interaction: bool = False) -> dict[str, str]:
        if not self.enabled:
            return {}
        now = self.clock()
        wall = time.time()
        if self.global_limit is not None and not interaction:
            limit, window = self.global_limit
            state, ok = self._take(("global", auth or "ip"), (limit, window * self.scale), now)
            if not ok:
                self.served_429 += 1
                retry = state.reset_at - now
                raise RateLimited(retry, True, {"Retry-After": str(math.ceil(retry)), "X-RateLimit-Global": "true",
                                                "X-RateLimit-Scope": "global"})
        name, (limit, window) = self.bucket(method, route)
        major = ":".join(params.get(p, "") for p in MAJOR_PARAMETERS)
        if "webhook_id" in params:
            major += ":" + params.get("token", "")
        state, ok = self._take((name, major), (limit, window), now)
        after = max(state.reset_at - now, 0.0)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(state.remaining),
            "X-RateLimit-Reset": f"{wall + after:.3f}",
            "X-RateLimit-Reset-After": f"{after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(name.encode()).hexdigest()[:32],
        }
        if not ok:
            self.served_429 += 1
            raise RateLimited(after, False, {**headers, "Retry-After": str(math.ceil(after)),
                                             "X-RateLimit-Scope": "user"})
        return headers

"""The playground's world on disk: servers, channels, members, roles, messages and webhooks survive a
restart with the same ids, so they stay consistent with what the bot stored about them.

The state is one JSON file beside the bot's SQLite database (``data/guildkeep.db`` ->
``data/guildkeep.playground.json``), or ``data/<database>.playground.json`` in the working directory
for PostgreSQL; an in-memory database keeps nothing, and neither does its world. Files the bot sent
(images) go in a folder next to it (``….playground-files/``) so the JSON stays small enough to be
rewritten after every line. Every write is atomic: a temporary file, then a rename.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from guildkeep.sandbox.server import SandboxServer
from guildkeep.sandbox.state import (
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Overwrite,
    Role,
    User,
    VoiceState,
    Webhook,
    World,
)

FORMAT = 1
#: Messages kept per channel (the newest): enough history to scroll back, a file that stays quick to write.
MESSAGES_PER_CHANNEL = 200
_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in
                                (User, Role, VoiceState, Member, Overwrite, Channel, Attachment, Message, Webhook)}


class StateError(Exception):
    """The state file cannot be read; the message says which file and why."""


def state_path(url: URL, cwd: Path | None = None) -> Path | None:
    """Where the world of the playground running on database ``url`` is kept (None: nowhere)."""
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:") or str(url.database).startswith("file::memory:"):
            return None
        db_file = Path(str(url.database))
        return db_file.with_name(f"{db_file.stem}.playground.json")
    return (cwd or Path.cwd()) / "data" / f"{url.database or 'postgres'}.playground.json"


# -- encoding ---------------------------------------------------------------------------------------


def _enc(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    if isinstance(value, User):  # users are stored once, referenced everywhere else
        return {"$user": value.id}
    if is_dataclass(value) and not isinstance(value, type):
        return {"$type": type(value).__name__, **{f.name: _enc(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _enc(v) for k, v in value.items()}
        return {"$map": [[_enc(k), _enc(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple | set | frozenset):
        return [_enc(v) for v in value]
    return value


def _dec(value: Any, users: dict[int, User]) -> Any:
    if isinstance(value, list):
        return [_dec(v, users) for v in value]
    if not isinstance(value, dict):
        return value
    if "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if "$b64" in value:
        return base64.b64decode(value["$b64"])
    if "$user" in value:
        return users[value["$user"]]
    if "$map" in value:
        return {_dec(k, users): _dec(v, users) for k, v in value["$map"]}
    if "$type" in value:
        cls = _TYPES[value["$type"]]
        # Fields added since the file was written take their defaults; fields since removed are ignored.
        return cls(**{f.name: _dec(value[f.name], users) for f in fields(cls) if f.init and f.name in value})
    return {k: _dec(v, users) for k, v in value.items()}


def snapshot(server: SandboxServer, files: Path | None = None, **extra: Any) -> dict[str, Any]:
    """The world as plain JSON data. With ``files``, attachment bytes are written there (once each)
    instead of into the data; ``extra`` keys are kept as they are (the playground's clock offset)."""
    world = server.world
    guilds = []
    for guild in world.guilds.values():
        guilds.append({
            "id": guild.id, "name": guild.name, "owner_id": guild.owner_id,
            "roles": [_enc(r) for r in guild.roles.values()],
            "members": [_enc(m) for m in guild.members.values()],
            "channels": list(guild.channels),  # the channels themselves are in the world's list
        })
    messages = []
    for channel_messages in world.messages.values():
        kept = [m for m in channel_messages if not m.deleted and not m.ephemeral][-MESSAGES_PER_CHANNEL:]
        for message in kept:
            data = _enc(message)
            if files is not None:
                data["attachments"] = [_attachment_ref(a, files) for a in message.attachments]
            messages.append(data)
    return {
        "format": FORMAT,
        "bot_user_id": server.bot_user.id,
        "application_id": server.application_id,
        "owner_user_id": server.owner_user.id,
        "snowflake_last": world.snowflake._last,
        "users": [_user_data(u) for u in world.users.values()],
        "channels": [_enc(c) for c in world.channels.values()],
        "guilds": guilds,
        "messages": messages,
        "webhooks": [_enc(w) for w in world.webhooks.values()],
        **extra,
    }


def _user_data(user: User) -> dict[str, Any]:
    return {"$type": "User", **{f.name: getattr(user, f.name) for f in fields(user)}}


def _attachment_ref(attachment: Attachment, files: Path) -> dict[str, Any]:
    data = _enc(attachment)
    name = f"{attachment.id}"
    target = files / name
    if not target.exists():
        files.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, attachment.data)
    data["data"] = {"$file": name}
    return data


def restore(server: SandboxServer, data: dict[str, Any], files: Path | None = None) -> None:
    """Replace the (fresh, unstarted-bot) server's world with a snapshot's: same ids, same bot user."""
    if data.get("format") != FORMAT:
        raise StateError(f"unknown state format {data.get('format')!r} (this version reads {FORMAT})")
    world = World()
    world.base_url = server.world.base_url
    users: dict[int, User] = {}
    for raw in data["users"]:
        user = User(**{f.name: raw[f.name] for f in fields(User) if f.name in raw})
        users[user.id] = user
    world.users = users
    for raw in data["channels"]:
        channel: Channel = _dec(raw, users)
        world.channels[channel.id] = channel
    for raw in data["guilds"]:
        guild = Guild(raw["id"], raw["name"], raw["owner_id"])
        for role in (_dec(r, users) for r in raw["roles"]):
            guild.roles[role.id] = role
        for member in (_dec(m, users) for m in raw["members"]):
            guild.members[member.user.id] = member
        for channel_id in raw["channels"]:
            guild.channels[channel_id] = world.channels[channel_id]
        world.guilds[guild.id] = guild
    for raw in data["messages"]:
        for attachment in raw.get("attachments") or []:
            ref = attachment.get("data")
            if isinstance(ref, dict) and "$file" in ref:
                path = (files or Path()) / ref["$file"]
                attachment["data"] = {"$b64": base64.b64encode(path.read_bytes()).decode() if path.exists() else ""}
        message: Message = _dec(raw, users)
        for attachment in message.attachments:
            attachment.base_url = world.base_url
            world.attachments[attachment.id] = attachment
        world.channel_messages(message.channel_id).append(message)
    for raw in data["webhooks"]:
        webhook: Webhook = _dec(raw, users)
        world.webhooks[webhook.id] = webhook
    world.snowflake._last = max(int(data.get("snowflake_last") or 0), world.snowflake._last)
    server.world = world
    server.bot_user = users[data["bot_user_id"]]
    server.application_id = int(data["application_id"])
    server.owner_user = users[data["owner_user_id"]]


# -- the file ---------------------------------------------------------------------------------------


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class WorldFile:
    """One playground's state file and its folder of attachment files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = path.with_name(path.name.removesuffix(".json") + "-files")

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(f"cannot read the playground state {self.path}: {exc}; move it away to start over"
                             ) from exc
        if not isinstance(data, dict):
            raise StateError(f"{self.path} is not a playground state file; move it away to start over")
        return data

    def save(self, server: SandboxServer, **extra: Any) -> None:
        data = snapshot(server, self.files, **extra)
        _atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode())
        self._prune({str(a["id"]) for m in data["messages"] for a in m.get("attachments") or []})

    def restore(self, server: SandboxServer, data: dict[str, Any]) -> None:
        try:
            restore(server, data, self.files)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"the playground state {self.path} is damaged ({exc!r}); move it away to start over"
                             ) from exc

    def _prune(self, keep: set[str]) -> None:
        if not self.files.is_dir():
            return
        for child in self.files.iterdir():
            if child.name not in keep and not child.name.startswith("."):
                with contextlib.suppress(OSError):
                    child.unlink()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._prune(set())


__all__ = ["MESSAGES_PER_CHANNEL", "StateError", "WorldFile", "restore", "snapshot", "state_path"]

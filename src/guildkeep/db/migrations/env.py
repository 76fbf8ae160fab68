"""Alembic environment. guildkeep runs migrations through `guildkeep.db.migrate`, which hands in a connection."""

from __future__ import annotations

from alembic import context

from guildkeep.db.registry import load_models

config = context.config
target_metadata = load_models()


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Tables that exist in the database but belong to no model (e.g. left by an external tool) are ignored.
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith("_"))


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `guildkeep db ...`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object,
        user_module_prefix="guildkeep.db.types.",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run `guildkeep db upgrade`")
run_migrations_online()

"""Which modules own tables. Importing them registers their models on `Base.metadata`.

Every package directly under `guildkeep` that has a `models.py` is a module with tables; they are
found by walking the package, so adding a module needs no edit here.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from sqlalchemy import MetaData

import guildkeep
from guildkeep.db.base import Base


def model_modules() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(guildkeep.__path__):
        if not info.ispkg or info.name in {"db", "discord", "sandbox"}:
            continue
        spec = importlib.util.find_spec(f"guildkeep.{info.name}.models")
        if spec is not None:
            names.append(f"guildkeep.{info.name}.models")
    return sorted(names)


CORE_MODELS = ("guildkeep.db.instances",)  # the data core's own tables (bot heartbeats)


def load_models() -> MetaData:
    for name in (*CORE_MODELS, *model_modules()):
        importlib.import_module(name)
    return Base.metadata

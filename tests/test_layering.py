"""The layering at run time: importing a module, the core or the sandbox loads no discord and no bot code.

`make lint` checks the same contract statically (lint-imports); this catches what a static check cannot
see, such as an ``importlib`` import done while a package loads.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys

import guildkeep.sandbox

MODULES = ("leveling", "gacha", "characters", "companion", "story", "campaign", "scheduler", "llm", "privacy",
           "identity")
CORE = ("guildkeep.db", "guildkeep.db.backup", "guildkeep.db.migrate", "guildkeep.db.instances", "guildkeep.db.tally",
        "guildkeep.errors",
        "guildkeep.results", "guildkeep.config", "guildkeep.text", "guildkeep.clock", "guildkeep.cache",
        "guildkeep.signals")
BOT = ("discord", "guildkeep.discord", "guildkeep.testing", "guildkeep.playground", "guildkeep.cli")


def _present(names: list[str]) -> list[str]:
    """Those of ``names`` that exist (a module may not have every file)."""
    found = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # its package does not exist
            spec = None
        if spec is not None:
            found.append(name)
    return found


def _loaded_after_import(names: list[str]) -> list[str]:
    """The modules a fresh interpreter has loaded after importing ``names``."""
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def _under(loaded: list[str], roots: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == r or m.startswith(r + ".") for r in roots)]


def test_modules_and_core_load_no_discord() -> None:
    names = _present([f"guildkeep.{m}.{part}" for m in MODULES for part in ("models", "rules", "service", "privacy")])
    assert "guildkeep.story.service" in names  # the list is not empty by accident
    loaded = _loaded_after_import([*names, *CORE])
    assert _under(loaded, BOT) == []


def test_core_loads_no_module() -> None:
    loaded = _loaded_after_import(list(CORE))
    assert _under(loaded, tuple(f"guildkeep.{m}" for m in MODULES)) == []


def test_sandbox_loads_no_bot_code() -> None:
    names = [f"guildkeep.sandbox.{info.name}" for info in pkgutil.iter_modules(guildkeep.sandbox.__path__)]
    assert {"guildkeep.sandbox.server", "guildkeep.sandbox.driver", "guildkeep.sandbox.demo"} <= set(names)
    loaded = _loaded_after_import(names)
    forbidden = (*BOT, "guildkeep.db", "guildkeep.web", *(f"guildkeep.{m}" for m in MODULES))
    assert _under(loaded, forbidden) == []


def test_the_check_sees_a_violation() -> None:
    """The harness does load the bot: the check above would notice a sandbox module that did."""
    loaded = _loaded_after_import(["guildkeep.testing.harness"])
    assert "guildkeep.discord.bot" in loaded
    assert "discord" in loaded

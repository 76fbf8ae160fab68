"""The test harness: the sandbox (a fake Discord) with the real bot connected, in this process.

``harness.SandboxEnv`` starts both; ``plugin`` is the pytest plugin with the ``discord_env`` and ``driver``
fixtures. The sandbox itself (``guildkeep.sandbox``) knows no bot; this package is where the two meet.
"""

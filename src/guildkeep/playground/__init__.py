"""``guildkeep playground``: the sandbox, the demo server and the real bot, driven from a terminal.

``console`` runs the lines, ``editor`` is the terminal's line editor, ``reset`` removes what the bot stored
about the playground's servers and members. The sandbox itself (``guildkeep.sandbox``) knows no bot.
"""

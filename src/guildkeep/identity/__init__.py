"""Shared identity: guilds, users and guild members, which every module may reference."""

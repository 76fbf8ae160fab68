"""Stories: per-server worlds with locations and events, one story per channel, player-NPC relationships,
and an optional language-model narrator. Characters are the platform's (`guildkeep.characters`)."""

"""RPG campaigns: one per channel, a GM and players, one character per player, the GM's NPCs, speech."""

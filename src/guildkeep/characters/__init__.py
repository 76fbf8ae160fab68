"""Characters (personas): global, owned by their creator, with per-server overrides, and the log of
what was said as them through a channel webhook (who, where, when; never the text)."""

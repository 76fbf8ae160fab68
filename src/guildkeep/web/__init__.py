"""The web pages: public leaderboards per server and the admin dashboard (docs/web.md)."""

"""The durable scheduler: timed and recurring jobs stored in the database, claimed by one worker each.

``models`` holds the jobs table, ``rules`` the pure date arithmetic (next occurrence, backoff, shard
of a guild), ``service`` the transactions (schedule, claim, complete, fail, cancel, retry) and
``worker`` the `Scheduler` loop a bot process runs. See docs/scheduler.md.
"""

#!/usr/bin/env bash
# Make sure the Redis server the tests use (cache invalidation bus) is reachable; start the local one if it
# is down. The tests read GUILDKEEP_TEST_REDIS_URL (default redis://127.0.0.1:6379/15) and fail without it.
set -euo pipefail

url="${GUILDKEEP_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
case "$url" in
  redis://127.0.0.1:6379*|redis://localhost:6379*) ;;
  *) echo "GUILDKEEP_TEST_REDIS_URL points at another server; not managing a local one"; exit 0 ;;
esac

ready() { redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; }

if ready; then
  echo "Redis is up at 127.0.0.1:6379"
  exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "Redis is down at 127.0.0.1:6379 and redis-server is not installed; install it or set GUILDKEEP_TEST_REDIS_URL" >&2
  exit 1
fi

echo "Redis is down at 127.0.0.1:6379; starting the local server"
mkdir -p /var/lib/redis /var/log/redis
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log

for _ in $(seq 1 60); do
  if ready; then
    echo "Redis is up at 127.0.0.1:6379"
    exit 0
  fi
  sleep 0.5
done
echo "Redis did not come up at 127.0.0.1:6379 (see /var/log/redis/ci.log)" >&2
exit 1

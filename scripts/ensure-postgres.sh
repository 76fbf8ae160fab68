#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is reachable; start the local one if it is down.
# The target comes from GUILDKEEP_TEST_POSTGRES_URL (default: 127.0.0.1:5432).
set -euo pipefail

url="${GUILDKEEP_TEST_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$host" ] && port=5432

ready() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$host" -p "$port"
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

if ready; then
  echo "PostgreSQL is up at $host:$port"
  exit 0
fi

case "$host" in
  127.0.0.1|localhost|::1) ;;
  *) echo "PostgreSQL at $host:$port is not reachable and is not local; start it or set GUILDKEEP_TEST_POSTGRES_URL" >&2
     exit 1 ;;
esac

if ! ls /etc/postgresql >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is not installed; installing it from the distribution's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL is not installed and cannot be installed here; set GUILDKEEP_TEST_POSTGRES_URL" >&2
    exit 1
  fi
fi

echo "PostgreSQL is down at $host:$port; starting the local cluster"
if command -v pg_ctlcluster >/dev/null 2>&1; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi

for _ in $(seq 1 60); do
  if ready; then
    echo "PostgreSQL is up at $host:$port"
    exit 0
  fi
  sleep 0.5
done
echo "PostgreSQL did not come up at $host:$port" >&2
exit 1

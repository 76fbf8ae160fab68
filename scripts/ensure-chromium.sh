#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (Playwright drives it; nothing is downloaded
# outside the package manager). Does nothing when it is already there.
set -euo pipefail
BROWSER="${GUILDKEEP_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$BROWSER" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi
echo "installing chromium with apt-get (browser tests need it)"
$SUDO apt-get install -y chromium >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y chromium >/dev/null; }
[ -x "$BROWSER" ] || { echo "chromium is still missing at $BROWSER" >&2; exit 1; }

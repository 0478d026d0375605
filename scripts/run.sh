#!/usr/bin/env bash
# `make run`: the embedded default (SQLite, in-process scheduler and channel layer) served by
# daphne. The console's URL and how to sign in are the last lines printed, once the server
# answers, so they never scroll away; afterwards the log holds one line per request (the
# console's own request log; daphne's access log is off) and nothing while idle.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://$HOST:$PORT}

"$PY" manage.py migrate --noinput -v 0
banner=$("$PY" manage.py ensure_admin)
"$(dirname "$PY")/daphne" --access-log /dev/null -b "$HOST" -p "$PORT" mdm.asgi:application &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' INT TERM EXIT
for _ in $(seq 1 600); do
  kill -0 "$server" 2>/dev/null || { wait "$server"; exit 1; }
  "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://$HOST:$PORT/healthz" \
    2>/dev/null && break
  sleep 0.2
done
echo
echo "$banner"
echo "Serving $PUBLIC_BASE_URL/ (HTTP and WebSockets; Ctrl-C stops)"
wait "$server"

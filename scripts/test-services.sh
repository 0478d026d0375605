#!/usr/bin/env bash
# Installs (when missing) and starts (when stopped) what the test suite needs: PostgreSQL, Redis,
# Chromium, the JDK jars of the agent core, the Android build tools that make test APKs, Node.js
# (the APK uploader's bundle) and nginx (the shipped proxy's routing, mdm/tests/test_nginx_routing.py).
# Idempotent: a second run installs and starts nothing.
set -euo pipefail

need_root() { if [ "$(id -u)" != 0 ]; then echo "run as root (or with sudo): $*" >&2; exit 1; fi; }

packages=(postgresql redis-server chromium fonts-dejavu-core default-jdk-headless junit4 libhamcrest-java
          libandroid-json-java aapt zipalign apksigner android-framework-res zbar-tools wrk nginx)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# javac may come from a JDK that is not Debian's default-jdk-headless.
if command -v javac >/dev/null; then
  missing=("${missing[@]/default-jdk-headless}")
fi
# Node.js and npm build the APK uploader's bundle (make uploader-check): any node >= 18 will do, so
# Debian's packages are installed only when no node or npm is on the PATH.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  need_root "apt-get install ${missing[*]}"
  echo "Installing: ${missing[*]}"
  # Install before (re)starting PostgreSQL: an upgrade of libpq can disturb a running server.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL: start the cluster if it is down.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  echo "Starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
# A role for the tests (works with trust or password auth).
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='mdm'\"" | grep -q 1; then
  su postgres -c "psql -q -c \"CREATE ROLE mdm LOGIN SUPERUSER PASSWORD 'mdm'\""
fi
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='mdm'\"" | grep -q 1; then
  su postgres -c "createdb -O mdm mdm"
fi

# Redis: start it if it is down.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 1; done
fi
echo "services ready: PostgreSQL $(pg_isready -h 127.0.0.1 -p 5432), Redis $(redis-cli ping)"

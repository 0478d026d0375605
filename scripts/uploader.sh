#!/usr/bin/env bash
# The APK uploader's bundle (apks/uploader -> static/apks/uploader.js), like NetBox's committed
# assets: the bundle is in git so the server needs no Node.js, and make test proves it is what the
# source builds.
#   scripts/uploader.sh build   npm ci, the unit tests, then write static/apks/uploader.js
#   scripts/uploader.sh check   npm ci, the unit tests, build into a temporary file and fail when
#                               it differs from the committed bundle
set -euo pipefail
mode=${1:-check}
cd "$(dirname "$0")/../apks/uploader"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "Node.js and npm are needed: make system-deps installs them" >&2
  exit 1
fi
bundle=../../static/apks/uploader.js
# --ignore-scripts: no package's install script runs (esbuild finds its binary in its
# platform package without one).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npm test --silent
case "$mode" in
  build)
    node build.mjs "$bundle"
    echo "built static/apks/uploader.js ($(wc -c <"$bundle") bytes)"
    ;;
  check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    node build.mjs "$tmp/uploader.js"
    if ! cmp -s "$tmp/uploader.js" "$bundle"; then
      echo "static/apks/uploader.js is not what apks/uploader/src builds: run 'make uploader' and commit the bundle" >&2
      exit 1
    fi
    echo "uploader bundle: static/apks/uploader.js is what apks/uploader/src builds"
    ;;
  *)
    echo "usage: $0 build|check" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine (system packages, npm dependencies),
# then runs type-check, lint, build and every test. The README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- system packages the tests use: real openssl, a real Secret Service on a private D-Bus, and
#     Debian's python3-grpcio as a gRPC client we did not write ---
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v dbus-run-session >/dev/null 2>&1 || need+=(dbus-daemon)
command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
command -v secret-tool >/dev/null 2>&1 || need+=(libsecret-tools)
/usr/bin/python3 -c "import grpc" >/dev/null 2>&1 || need+=(python3-grpcio)
# Debian's ngtcp2 client: a QUIC peer we did not write, for the handshake-coalesced-streams regression test
command -v gtlsclient >/dev/null 2>&1 || need+=(ngtcp2-client)
# systemd-analyze verifies the units `daemon install-service` and `node install --service` write
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# Debian's chromium, driven by playwright-core for the console's browser test
[ -x /usr/bin/chromium ] || need+=(chromium)
# Debian's PostgreSQL server: the store contract tests initdb a real one into a temporary directory
# (Debian keeps initdb off PATH, under /usr/lib/postgresql/<version>/bin)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  echo "test.sh: installing system packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- npm dependencies, from the lockfile, whenever it changed since the last install ---
# `npm install` rather than `npm ci`: npm 11.19 writes lockfiles without Biome's other-platform
# optional packages and then its own `npm ci` rejects them as out of sync (npm/cli#9083).
stamp=node_modules/.palyra-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "test.sh: npm install (from package-lock.json)"
  npm install --no-audit --no-fund
  echo "$want" >"$stamp"
fi

echo "test.sh: type-check, lint, build"
npx tsc --noEmit
npx tsc -p web --noEmit
npx biome check .
npm run build --silent

echo "test.sh: tests"
# A hung test must fail the run, not stall CI: each test has 5 min (package.json), the whole suite 25.
timeout --kill-after=30s 25m npm test

echo "test.sh: smoke on Node 22 (build, pairing, node runtime and vault end to end)"
scripts/node-smoke.sh 22

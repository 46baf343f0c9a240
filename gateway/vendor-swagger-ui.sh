#!/bin/sh
# vendor-swagger-ui.sh: copies Swagger UI (npm swagger-ui-dist) into
# frontend/vendor/swagger-ui/, which the gateway serves at /docs/ (no CDN at
# run time). Run after `npm ci` at the repository root (npm runs it as
# postinstall).
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/node_modules/swagger-ui-dist"
dst="$root/frontend/vendor/swagger-ui"
if [ ! -f "$src/swagger-ui-bundle.js" ]; then
    echo "vendor-swagger-ui.sh: $src is missing: run 'npm ci' at the repository root" >&2
    exit 1
fi
mkdir -p "$dst"
for f in swagger-ui-bundle.js swagger-ui.css favicon-16x16.png favicon-32x32.png LICENSE; do
    cp "$src/$f" "$dst/$f"
done
echo "vendor-swagger-ui.sh: vendored swagger-ui-dist $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$src/package.json" | head -1) into frontend/vendor/swagger-ui/"

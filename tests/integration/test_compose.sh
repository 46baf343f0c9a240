#!/usr/bin/env bash
# docker-compose.yml must stay valid. `docker-compose config` parses and
# validates it against the Compose schema without a Docker daemon, so this
# runs anywhere docker-compose is installed (./dev test installs it). A
# missing docker-compose is a failure, not a skip: the check would otherwise
# silently stop guarding the file.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
compose="$root/docker-compose.yml"

fail() { echo "FAIL: $*" >&2; exit 1; }

command -v docker-compose >/dev/null || fail "docker-compose is not installed (apt-get install docker-compose)"
[[ -f $compose ]] || fail "$compose not found"
[[ -f $root/Dockerfile ]] || fail "$root/Dockerfile not found (docker-compose.yml builds from it)"

docker-compose -f "$compose" config -q || fail "docker-compose config rejected $compose"

# The three parts of the stack must all be there.
services=$(docker-compose -f "$compose" config --services) || fail "docker-compose config --services failed"
listed=$(paste -sd ' ' <<<"$services")
for want in nats greeting_service gateway; do
  grep -qx "$want" <<<"$services" || fail "service '$want' missing from $compose (have: $listed)"
done

echo "ok: $compose is valid (services: $listed)"

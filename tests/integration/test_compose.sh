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
for want in nats-1 nats-2 nats-3 postgres greeting_service thing_service websocket_test gateway haproxy; do
  grep -qx "$want" <<<"$services" || fail "service '$want' missing from $compose (have: $listed)"
done

# The cluster: each NATS node routes to the two others with JetStream on;
# every natsrpc service and the gateway run two replicas (Compose v2, or
# v1 with --compatibility, which turns deploy.replicas into scale); only
# haproxy publishes the HTTP port, and it health-checks /healthz.
python3 - "$compose" "$root/deploy/haproxy.cfg" <<'PY' || fail "cluster checks failed"
import os, re, subprocess, sys, yaml
compose, haproxy = sys.argv[1], sys.argv[2]
cfg = yaml.safe_load(subprocess.run(["docker-compose", "--compatibility", "-f", compose, "config"],
                                    check=True, capture_output=True, text=True).stdout)
svcs = cfg["services"]
problems = []
for i in (1, 2, 3):
    cmd = svcs["nats-%d" % i]["command"]
    routes = cmd[cmd.index("--routes") + 1].split(",")
    others = {"nats://nats-%d:6222" % j for j in (1, 2, 3) if j != i}
    if set(routes) != others:
        problems.append("nats-%d routes %s, not %s" % (i, routes, sorted(others)))
    if "-js" not in cmd:
        problems.append("nats-%d runs without JetStream" % i)
for name in ("greeting_service", "thing_service", "websocket_test", "gateway"):
    s = svcs[name]
    if s.get("deploy", {}).get("replicas") != 2 and s.get("scale") != 2:
        problems.append("%s does not run two replicas" % name)
    if "nats-1:4222" not in s["environment"]["NATS_URL"] or "nats-3:4222" not in s["environment"]["NATS_URL"]:
        problems.append("%s does not list every NATS node" % name)
    if name != "haproxy" and s.get("ports"):
        problems.append("%s publishes ports; only haproxy should" % name)
# NATS credentials: every node runs with deploy/nats-server.conf, every
# natsrpc process connects as its own user of that file.
conf_path = os.path.join(os.path.dirname(haproxy), "nats-server.conf")
conf = open(conf_path).read()
users = set(re.findall(r"^\s*user:\s*(\S+)", conf, re.M))
for i in (1, 2, 3):
    node = svcs["nats-%d" % i]
    cmd = node["command"]
    if "-c" not in cmd or cmd[cmd.index("-c") + 1] != "/etc/nats/natsrpc.conf":
        problems.append("nats-%d does not run with -c /etc/nats/natsrpc.conf" % i)
    if not any(v.endswith("deploy/nats-server.conf:/etc/nats/natsrpc.conf:ro") for v in node.get("volumes", [])):
        problems.append("nats-%d does not mount deploy/nats-server.conf read-only" % i)
    # the server reads the passwords from its environment
    env = dict(os.environ, **{k: str(v) for k, v in (node.get("environment") or {}).items()})
    r = subprocess.run(["nats-server", "-c", conf_path, "-t"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        problems.append("nats-%d: nats-server -t rejects deploy/nats-server.conf with its environment: %s"
                        % (i, (r.stdout + r.stderr).strip()))
for name in ("greeting_service", "thing_service", "websocket_test", "gateway"):
    env = svcs[name]["environment"]
    if env.get("NATS_USER") not in users:
        problems.append("%s connects as NATS user %r, not one of %s" % (name, env.get("NATS_USER"), sorted(users)))
    if not env.get("NATS_PASSWORD"):
        problems.append("%s has no NATS_PASSWORD" % name)
    # its user may read only the replies under its own prefix
    if env.get("NATS_INBOX_PREFIX") != "_INBOX." + str(env.get("NATS_USER")):
        problems.append("%s has NATS_INBOX_PREFIX %r, not _INBOX.<its user>"
                        % (name, env.get("NATS_INBOX_PREFIX")))
    if "_INBOX.%s.>" % env.get("NATS_USER") not in conf:
        problems.append("deploy/nats-server.conf gives %s no inbox of its own" % name)
if not svcs["haproxy"].get("ports"):
    problems.append("haproxy publishes no port")
text = open(haproxy).read()
for want in ("option httpchk GET /healthz", "server-template gateway", "resolvers docker"):
    if want not in text:
        problems.append("deploy/haproxy.cfg lacks %r" % want)
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY

# .dockerignore keeps local state and build output out of the build context
# (.run/pg/data, build trees, node_modules) and lets in everything the
# Dockerfile copies. docker-compose 1.29 builds through docker-py, so its
# own matcher decides, run on a scratch tree with both kinds of paths.
[[ -f $root/.dockerignore ]] || fail "$root/.dockerignore not found"
python3 - "$root" <<'PY' || fail ".dockerignore check failed"
import os, re, sys, tempfile
from docker.utils.build import exclude_paths

root = sys.argv[1]
# docker-py's reading of .dockerignore (docker/api/build.py)
with open(os.path.join(root, ".dockerignore")) as f:
    patterns = [l.strip() for l in f.read().splitlines()]
patterns = [p for p in patterns if p and p[0] != "#"]

must_leave = [".run/pg/data/PG_VERSION", ".run/pids", "build/bin/natsrpc", "build-asan/bin/natsrpc",
              "build-fuzz/bin/fuzz_wire", "node_modules/autobahn/package.json",
              "tests/node/node_modules/ajv/package.json"]
# every source of a COPY without --from, as a file or a folder with a file
must_stay = []
with open(os.path.join(root, "Dockerfile")) as f:
    for line in f:
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            for src in words[1:-1]:
                must_stay.append(src + "x.c" if src.endswith("/") else src)

with tempfile.TemporaryDirectory() as tree:
    for path in must_leave + must_stay + ["Dockerfile"]:
        os.makedirs(os.path.dirname(os.path.join(tree, path)), exist_ok=True)
        open(os.path.join(tree, path), "w").close()
    sent = exclude_paths(tree, list(patterns))
problems = ["sent to the daemon: " + p for p in must_leave if p in sent]
problems += ["left out, but the Dockerfile copies it: " + p for p in must_stay if p not in sent]
for p in problems:
    print("FAIL: .dockerignore: " + p, file=sys.stderr)
sys.exit(1 if problems or not must_stay else 0)
PY

echo "ok: $compose is valid (services: $listed); .dockerignore keeps state and builds out"

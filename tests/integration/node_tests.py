"""Running the Node.js checks of tests/node/ from the integration tests."""

import os
import shutil
import subprocess
import unittest

import harness

NODE_DIR = os.path.normpath(os.path.join(harness.HERE, "..", "node"))


def node_script(script):
    """argv prefix for a script in tests/node/. Missing node or packages fail
    under CTest (NRPC_BIN_DIR set) and skip when run by hand."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node not found on PATH (apt-get install nodejs npm)"
    elif not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@nats-io", "services")):
        missing = "tests/node packages not installed (npm ci --prefix tests/node)"
    if missing:
        if os.environ.get("NRPC_BIN_DIR"):
            raise AssertionError(missing)
        raise unittest.SkipTest(missing)
    return [node, os.path.join(NODE_DIR, script)]


def run_node(case, script, args, env, timeout=60):
    try:
        r = subprocess.run(node_script(script) + list(args), cwd=NODE_DIR, env=dict(os.environ, **env),
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        case.fail("node %s did not finish within %d s" % (script, timeout))
    out, err = r.stdout.decode(), r.stderr.decode()
    case.assertEqual(r.returncode, 0, "node %s %s -> exit %d\nstdout: %s\nstderr: %s"
                     % (script, " ".join(args), r.returncode, out, err))
    return out

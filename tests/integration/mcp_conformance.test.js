'use strict';
// Issue 17: the official MCP conformance suite (@modelcontextprotocol/
// conformance, server mode, Node 22) against /mcp through nginx. The
// scenarios that apply to a tools-only gateway:
//   server-initialize, ping, tools-list — the lifecycle and the listing
//   dns-rebinding-protection — a foreign Origin is 403, localhost is served
//   server-sse-multiple-streams — concurrent POSTs of one session
// Out of scope (docs/mcp-endpoint.md): tools-call-* and the elicitation,
// sampling and json-schema ones call the suite's own reference tools
// (test_simple_text, ...), which a gateway does not have (ours are named
// <server>__<tool>); logging-set-level, completion-complete, resources-*
// and prompts-* are capabilities /mcp does not offer.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const h = require('./lib');
const { NODE22 } = require('./lib/everything');

const RUNNER = path.join(__dirname, '..', 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const SCENARIOS = ['server-initialize', 'ping', 'tools-list', 'dns-rebinding-protection', 'server-sse-multiple-streams'];

function run(url, scenario, cwd) {
  return new Promise((resolve) => {
    execFile(NODE22, [RUNNER, 'server', '--url', url, '--scenario', scenario],
             { cwd, timeout: 120000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? -1) : 0, out: stdout + stderr });
    });
  });
}

test('MCP conformance suite, server scenarios, against /mcp through nginx', { timeout: 300000 }, async (t) => {
  const dir = h.mkTmpDir('mcp-conformance');
  const stack = await h.startStack({
    config: `
backends:
  fake: {kind: openai, base_url: http://127.0.0.1:9/v1, api_key: sk-x}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, args: [], timeout: 20}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo]}
`,
  });
  t.after(() => stack.stop());
  for (const scenario of SCENARIOS) {
    await t.test(scenario, async () => {
      const r = await run(`${stack.url}/mcp`, scenario, dir);
      assert.equal(r.code, 0, r.out);
      const m = r.out.match(/Passed: (\d+)\/(\d+), (\d+) failed/);
      assert.ok(m, r.out);
      assert.ok(Number(m[2]) > 0 && m[1] === m[2] && m[3] === '0', r.out);
    });
  }
});

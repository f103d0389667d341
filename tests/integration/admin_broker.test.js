'use strict';
// Issue 12 item 4: a responder thread lends its services to the handlers; the
// admin tool listing uses the thread's broker client instead of opening a new
// one (two Redis connections) on every request.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');

const ADMIN = 'admin-key-broker-0123456789';
const hasBroker = fs.existsSync(path.join(h.binDir(), 'mcp-broker'));

// Connections Redis has accepted since it started (INFO stats).
async function connectionsReceived(stack) {
  const info = String(await stack.redis('INFO', 'stats'));
  const m = /total_connections_received:(\d+)/.exec(info);
  assert.ok(m, `INFO stats without total_connections_received:\n${info}`);
  return Number(m[1]);
}

describe('admin tool listing on the thread\'s broker client', { skip: !hasBroker && 'mcp-broker not built' }, () => {
  let stack, up;
  before(async () => {
    up = await h.fakeUpstream();
    // one responder thread: every request below runs on the same services
    stack = await h.startStack({ config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo]}
`, upstream: up, workers: 1, threads: 1, env: { ADMIN_API_KEY: ADMIN } });
  });
  after(async () => { await stack?.stop(); await up?.close(); });

  const tools = () => h.request(`${stack.url}/admin/mcp/demo/tools`,
                                { headers: { authorization: `Bearer ${ADMIN}` } });

  test('repeated listings open no new Redis connections', async () => {
    const first = await tools();       // the thread's client connects here (lazily)
    assert.equal(first.status, 200, first.text);
    assert.ok(first.json.data.length > 0);
    const before = await connectionsReceived(stack);
    const N = 6;
    for (let i = 0; i < N; i++) {
      const r = await tools();
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.data.map((t) => t.name), first.json.data.map((t) => t.name));
    }
    const opened = (await connectionsReceived(stack)) - before;
    // our own INFO connection counts once; a client per request would add 2 * N
    assert.ok(opened <= 2, `${opened} Redis connections opened by ${N} tool listings`);
  });

  test('with the broker gone, the listing says so in OpenAI\'s shape', async () => {
    await stack.killBroker();
    await stack.redis('DEL', `${stack.prefix}mcp:catalog:demo`);
    const r = await tools();
    const e = h.assertOpenAIError(assert, r, 503, { type: 'api_error' });
    assert.equal(e.code, 'mcp_broker_unavailable');
    assert.match(e.message, /mcp-broker is not running/);
  });
});

'use strict';
// Issue 17: aiproxy as an MCP server. The official MCP TypeScript SDK client
// (StreamableHTTPClientTransport) talks to /mcp and /mcp/{assistant} through
// nginx with a Bearer key: it lists the tools of mcp-demo and
// server-everything, calls get-sum, gets progress for a long-running tool;
// the transport's HTTP errors (401, 400, 404, 405, 406, 415) and JSON-RPC
// codes; a session initialised on one stack is served by another stack that
// shares its Redis.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');
const { NODE22, EVERYTHING } = require('./lib/everything');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ToolListChangedNotificationSchema } = require('@modelcontextprotocol/sdk/types.js');

const KEY = 'sk-mcp-test';
const ADMIN = 'adm-mcp-test';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: http://127.0.0.1:9/v1, api_key: sk-x}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, args: [--test-tools], timeout: 20}
  ev: {transport: stdio, command: ${NODE22}, args: [${EVERYTHING}, stdio], timeout: 30}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo], tools: {allow: [demo__echo, demo__add, demo__progress]}}
proxy_api_keys:
  - ${KEY}
`;

async function connect(url, key = KEY) {
  const client = new Client({ name: 'mcp-endpoint-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

async function post(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${KEY}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

async function initialize(url) {
  const r = await post(url, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  assert.equal(r.status, 200, r.text);
  return r.headers.get('mcp-session-id');
}

test('the MCP SDK client through nginx: tools of mcp-demo and server-everything, get-sum, progress, errors', { timeout: 180000 }, async (t) => {
  const stack = await h.startStack({ config: CONFIG, env: { ADMIN_API_KEY: ADMIN } });
  t.after(() => stack.stop());
  const mcpUrl = `${stack.url}/mcp`;

  await t.test('/mcp lists every server\'s tools as <server>__<tool> and calls get-sum', async () => {
    const { client, transport } = await connect(mcpUrl);
    try {
      assert.ok(transport.sessionId, 'no Mcp-Session-Id was issued');
      assert.equal(client.getServerCapabilities().tools.listChanged, true);
      const names = [];
      let cursor;
      do {
        const page = await client.listTools(cursor ? { cursor } : {});
        names.push(...page.tools.map((x) => x.name));
        cursor = page.nextCursor;
      } while (cursor);
      for (const n of ['demo__echo', 'demo__add', 'ev__get-sum', 'ev__echo']) assert.ok(names.includes(n), `${n} not in ${names}`);
      const r = await client.callTool({ name: 'ev__get-sum', arguments: { a: 2, b: 3 } });
      assert.match(r.content[0].text, /\b5\b/, JSON.stringify(r));
      const e = await client.callTool({ name: 'demo__echo', arguments: { text: 'hi there' } });
      assert.match(e.content[0].text, /hi there/);
      await assert.rejects(client.callTool({ name: 'nope__nothing', arguments: {} }), (err) => err.code === -32602);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  });

  await t.test('/mcp/{assistant} offers exactly the assistant\'s tools, under the agent\'s names', async () => {
    const { client, transport } = await connect(`${mcpUrl}/helper`);
    try {
      const names = (await client.listTools()).tools.map((x) => x.name).sort();
      assert.deepEqual(names, ['demo__add', 'demo__echo', 'demo__progress']);
      await assert.rejects(client.callTool({ name: 'ev__get-sum', arguments: { a: 1, b: 2 } }), (err) => err.code === -32602);
      const r = await client.callTool({ name: 'demo__add', arguments: { a: 40, b: 2 } });
      assert.match(r.content[0].text, /\b42\b/);
    } finally {
      await client.close();
    }
  });

  await t.test('a progress token gets notifications/progress relayed before the result', async () => {
    const { client } = await connect(`${mcpUrl}/helper`);
    try {
      const seen = [];
      const r = await client.callTool({ name: 'demo__progress', arguments: { seconds: 3, every_ms: 500 } }, undefined, {
        onprogress: (p) => seen.push(p), timeout: 60000,
      });
      assert.match(r.content[0].text, /progressed/, JSON.stringify(r));
      assert.ok(seen.length >= 2, `progress reports seen: ${JSON.stringify(seen)}`);
      assert.ok(seen.every((p) => typeof p.progress === 'number'));
    } finally {
      await client.close();
    }
  });

  await t.test('the GET stream carries notifications/tools/list_changed after an admin edit adds a server', async () => {
    const { client, transport } = await connect(mcpUrl);
    try {
      let resolve;
      const changed = new Promise((res) => { resolve = res; });
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve(true));
      // the SDK opens the GET stream once initialized is through: wait until the responder holds it
      const before = (await client.listTools()).tools.length;
      assert.ok(before > 0);
      let n = 0;
      await h.waitFor(async () => {
        n += 1;
        const r = await h.request(`${stack.url}/admin/mcp/extra`, {
          method: 'PUT', headers: { authorization: `Bearer ${ADMIN}` },
          body: { transport: 'http', url: `http://127.0.0.1:9/mcp${n}` },
        });
        assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.json));
        return Promise.race([changed, new Promise((res) => setTimeout(() => res(false), 2000))]);
      }, { timeoutMs: 30000, what: 'notifications/tools/list_changed' });
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  });

  await t.test('notifications/cancelled stops a running tools/call (sent on another request)', async () => {
    const sid = await initialize(mcpUrl);
    const hdr = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const t0 = Date.now();
    const call = post(mcpUrl, { jsonrpc: '2.0', id: 'slow-1', method: 'tools/call',
                                params: { name: 'demo__sleep', arguments: { ms: 60000 } } }, hdr);
    // cancel until the call has ended (a cancel that came before the call
    // started is kept for it: the call sees it at its first poll)
    const c = await post(mcpUrl, { jsonrpc: '2.0', method: 'notifications/cancelled',
                                   params: { requestId: 'slow-1', reason: 'test' } }, hdr);
    assert.equal(c.status, 202);
    const r = await call;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, 'slow-1');
    assert.equal(r.json.error.code, -32800, r.text);
    assert.ok(Date.now() - t0 < 50000, 'the call ran to its end');
  });

  await t.test('auth: no key is a 401 with WWW-Authenticate', async () => {
    const r = await fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer/);
    await r.text();
  });

  await t.test('transport errors: 415, 406, 400 parse error, 400 no session, 404 unknown session, 405 GET, DELETE ends it', async () => {
    let r = await post(mcpUrl, '{}', { 'content-type': 'text/plain' });
    assert.equal(r.status, 415);
    assert.equal(r.json.error.code, -32600);
    r = await post(mcpUrl, '{}', { accept: 'text/html' });
    assert.equal(r.status, 406);
    r = await post(mcpUrl, '{"jsonrpc":');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32700);
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    assert.equal(r.status, 400);
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': 'f'.repeat(32) });
    assert.equal(r.status, 404);
    assert.equal(r.json.id, 2);
    const sid = await initialize(mcpUrl);
    assert.match(sid, /^[0-9a-f]{32}$/);
    r = await post(mcpUrl, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid });
    assert.equal(r.status, 202);
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 3, result: {} });
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 4, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
    assert.equal(r.status, 400);
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 5, method: 'no/such' }, { 'mcp-session-id': sid });
    assert.equal(r.json.error.code, -32601);
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 6, method: 'tools/list', params: { cursor: 'x' } }, { 'mcp-session-id': sid });
    assert.equal(r.json.error.code, -32602);
    r = await post(mcpUrl, [{ jsonrpc: '2.0', id: 7, method: 'ping' }], { 'mcp-session-id': sid });
    assert.equal(r.status, 400);
    // a session of /mcp is not one of /mcp/helper
    r = await post(`${mcpUrl}/helper`, { jsonrpc: '2.0', id: 8, method: 'ping' }, { 'mcp-session-id': sid });
    assert.equal(r.status, 404);
    let g = await fetch(mcpUrl, { headers: { authorization: `Bearer ${KEY}`, accept: 'application/json', 'mcp-session-id': sid } });
    assert.equal(g.status, 406);
    await g.text();
    g = await fetch(mcpUrl, { headers: { authorization: `Bearer ${KEY}`, accept: 'text/event-stream', 'mcp-session-id': 'a'.repeat(32) } });
    assert.equal(g.status, 404);
    await g.text();
    r = await post(mcpUrl, '{}', { origin: 'http://evil.example.com' });
    assert.equal(r.status, 403);
    const d = await fetch(mcpUrl, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}`, 'mcp-session-id': sid } });
    assert.equal(d.status, 204);
    await d.text();
    r = await post(mcpUrl, { jsonrpc: '2.0', id: 9, method: 'ping' }, { 'mcp-session-id': sid });
    assert.equal(r.status, 404);
    r = await post(`${mcpUrl}/nobody`, { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(r.status, 404);
  });
});

test('a session initialised on stack A is served on stack B (one Redis)', { timeout: 120000 }, async (t) => {
  const a = await h.startStack({ config: CONFIG });
  t.after(() => a.stop());
  const b = await h.startStack({ config: CONFIG, redisUrl: a.redisUrl, broker: false });
  t.after(() => b.stop());
  const { client, transport } = await connect(`${a.url}/mcp/helper`);
  const sid = transport.sessionId;
  let r;
  try {
    r = await post(`${b.url}/mcp/helper`, {
      jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'demo__echo', arguments: { text: 'across stacks' } },
    }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  } finally {
    await transport.terminateSession();
    await client.close();
  }
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('mcp-session-id'), sid);
  assert.match(r.json.result.content[0].text, /across stacks/);
});

// Apache (mod_proxy_fcgi) and lighttpd pass /mcp as nginx does: the SSE
// answer of a call with a progress token reaches the client event by event
// (the first progress arrives while the 3 s tool still runs), not buffered
// to the end.
for (const webserver of ['apache', 'lighttpd']) {
  test(`/mcp through ${webserver}: the SDK client lists, calls, and gets progress as it happens`, { timeout: 120000 }, async (t) => {
    const stack = await h.startStack({ config: CONFIG, webserver });
    t.after(() => stack.stop());
    const { client, transport } = await connect(`${stack.url}/mcp/helper`);
    let first = 0, end = 0, r;
    try {
      const names = (await client.listTools()).tools.map((x) => x.name).sort();
      assert.deepEqual(names, ['demo__add', 'demo__echo', 'demo__progress']);
      r = await client.callTool({ name: 'demo__progress', arguments: { seconds: 3, every_ms: 500 } }, undefined, {
        onprogress: () => { if (!first) first = Date.now(); }, timeout: 60000,
      });
      end = Date.now();
    } finally {
      await transport.terminateSession();   // ends the GET stream too
      await client.close();
    }
    assert.match(r.content[0].text, /progressed/);
    assert.ok(first > 0, 'no progress reached the client');
    assert.ok(end - first >= 1000, `the first progress came ${end - first} ms before the result: buffered`);
  });
}

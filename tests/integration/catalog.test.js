'use strict';
// Issue 15 items 2, 3 and 7: what the broker keeps of an MCP server's
// catalog, the names under which its tools reach the model, and the order
// of the MCP lifecycle messages.
//  - Stable names: a server listing the same tools in two orders yields the
//    same offered names, as the fake upstream sees them; colliding names get
//    a hash suffix (never "_2"), café is transliterated, 工具 and a name past
//    64 characters get a hash; a client tool keeps its name over ours.
//  - Full catalogs: server-everything's simulate-research-query (execution.
//    taskSupport "required") is not offered; /admin/mcp/{name}/tools keeps
//    title, annotations, outputSchema and execution.
//  - notifications/initialized reaches an HTTP server (streamable and legacy
//    SSE) before tools/list, checked through mcp-probe (the broker's session
//    and transports).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const http = require('node:http');
const { execFile } = require('node:child_process');
const h = require('./lib');
const { NODE22, EVERYTHING } = require('./lib/everything');

const MCP_NAMES = path.join(__dirname, 'lib', 'mcp-names.js');
const ADMIN = 'admin-key-catalog-0123456789';
const hasBroker = fs.existsSync(path.join(h.binDir(), 'mcp-broker'));

const chat = (stack, model, extra = {}) => h.request(`${stack.baseURL}/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
});
const admin = (stack, p) => h.request(`${stack.url}/admin${p}`, {
  headers: { authorization: `Bearer ${ADMIN}` },
});

// A stack whose one MCP server is mcp-names listing its tools in `order`.
function namesStack(up, order) {
  return h.startStack({ upstream: up, env: { ADMIN_API_KEY: ADMIN }, config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x}
mcp_servers:
  names: {transport: stdio, command: ${NODE22}, args: ['${MCP_NAMES}', ${order}]}
assistants:
  - {name: namer, backend: fake, model: m, mcp_servers: [names]}
` });
}

// The offered name of each MCP tool (by its raw name, the description) in
// what the upstream was sent, and the client's tools (description "client").
function offered(body) {
  const mine = {}, client = [];
  for (const t of body.tools || []) {
    if (t.function.description === 'client') client.push(t.function.name);
    else mine[t.function.description] = t.function.name;
  }
  return { mine, client };
}

describe('stable tool names', { skip: !hasBroker && 'mcp-broker not built' }, () => {
  let fwd, rev, upF, upR;
  before(async () => {
    upF = await h.fakeUpstream();
    upR = await h.fakeUpstream();
    [fwd, rev] = await Promise.all([namesStack(upF, 'fwd'), namesStack(upR, 'rev')]);
  });
  after(async () => {
    await Promise.all([fwd?.stop(), rev?.stop()]);
    await upF?.close();
    await upR?.close();
  });

  test('the same tools listed in two orders are offered under the same names', async () => {
    upF.enqueue({ json: h.completion({ content: 'ok' }) });
    upR.enqueue({ json: h.completion({ content: 'ok' }) });
    const [a, b] = await Promise.all([chat(fwd, 'namer'), chat(rev, 'namer')]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    const f = offered(upF.requests.at(-1).body).mine, r = offered(upR.requests.at(-1).body).mine;
    assert.deepEqual(f, r);
    assert.deepEqual(f, {
      'get.data': 'names__get_data_c10f55',       // they collide: both get a hash
      get_data: 'names__get_data_0656fe',
      lookup: 'names__lookup',
      'café': 'names__cafe',                      // transliterated, no hash
      '工具': 'names___359ce1',                    // nothing to transliterate: a hash
      ['x'.repeat(80)]: `names__${'x'.repeat(50)}_15dbfe`,   // cut to 64 with a hash
    });
    for (const n of Object.values(f)) assert.match(n, /^[A-Za-z0-9_-]{1,64}$/);
  });

  test('a client tool keeps its name; ours gets the hash, and the listing agrees', async () => {
    upF.enqueue({ json: h.completion({ content: 'ok' }) });
    const res = await chat(fwd, 'namer', { tools: [{ type: 'function', function: {
      name: 'names__lookup', description: 'client', parameters: { type: 'object', properties: {} } } }] });
    assert.equal(res.status, 200, res.text);
    const { mine, client } = offered(upF.requests.at(-1).body);
    assert.deepEqual(client, ['names__lookup']);
    assert.equal(mine.lookup, 'names__lookup_c548ab');
    assert.equal(mine['get.data'], 'names__get_data_c10f55');   // the others do not move
    // the admin listing (no client tools) shows the names the model gets
    const l = await admin(fwd, '/assistants/namer/tools');
    assert.equal(l.status, 200, l.text);
    const byTool = Object.fromEntries(l.json.data.map((t) => [t.tool, t.name]));
    assert.equal(byTool.lookup, 'names__lookup');
    assert.equal(byTool['get_data'], 'names__get_data_0656fe');
    assert.equal(l.json.count, 6);
  });
});

describe('full catalogs: server-everything', { skip: !hasBroker && 'mcp-broker not built' }, () => {
  let stack, up;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ upstream: up, env: { ADMIN_API_KEY: ADMIN }, config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x}
mcp_servers:
  ev: {transport: stdio, command: ${NODE22}, args: ['${EVERYTHING}', stdio], timeout: 30}
assistants:
  - {name: ev, backend: fake, model: m, mcp_servers: [ev]}
` });
  });
  after(async () => { await stack?.stop(); await up?.close(); });

  test('/admin/mcp/{name}/tools keeps title, annotations, outputSchema, execution', async () => {
    const r = await admin(stack, '/mcp/ev/tools');
    assert.equal(r.status, 200, r.text);
    const by = Object.fromEntries(r.json.data.map((t) => [t.name, t]));
    const research = by['simulate-research-query'];
    assert.ok(research, `tools: ${Object.keys(by)}`);
    assert.deepEqual(research.execution, { taskSupport: 'required' });
    assert.equal(research.title, 'Simulate Research Query');
    assert.equal(research.annotations.readOnlyHint, false);
    assert.match(research.not_offered, /taskSupport/);
    assert.equal(typeof by['get-structured-content'].outputSchema, 'object');
    assert.equal(by['get-structured-content'].outputSchema.type, 'object');
    assert.equal(typeof by['get-sum'].annotations, 'object');
    assert.equal(by['get-sum'].not_offered, undefined);
  });

  test('simulate-research-query is not offered to the model, and the listing says why', async () => {
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    const res = await chat(stack, 'ev');
    assert.equal(res.status, 200, res.text);
    const names = up.requests.at(-1).body.tools.map((t) => t.function.name);
    assert.ok(names.includes('ev__get-sum'), `offered: ${names}`);
    assert.ok(!names.some((n) => n.startsWith('ev__simulate-research-query')), `offered: ${names}`);
    const l = await admin(stack, '/assistants/ev/tools');
    assert.equal(l.status, 200, l.text);
    const entry = l.json.data.find((t) => t.tool === 'simulate-research-query');
    assert.equal(entry.offered, false);
    assert.equal(entry.filtered_by, 'execution.taskSupport');
    assert.match(entry.reason, /task/);
    assert.equal(l.json.count, names.length);
  });
});

// Runs mcp-probe; resolves {code, json, stderr}.
function probe(args) {
  return new Promise((resolve) => {
    execFile(path.join(h.binDir(), 'mcp-probe'), args, { timeout: 60000 }, (err, stdout, stderr) => {
      let json = null;
      try { json = JSON.parse(stdout); } catch (_) { /* none */ }
      resolve({ code: err ? (err.code ?? -1) : 0, json, stderr });
    });
  });
}

// An MCP server over streamable HTTP ('http') or legacy SSE ('sse') that
// records the methods it is sent, and holds its answer to
// notifications/initialized for HOLD_MS: whatever arrives meanwhile was sent
// before the client knew the server had it (the window only makes the race
// visible; the assertion is that nothing arrives in it).
const HOLD_MS = 1500;
async function orderServer(kind) {
  const s = { seen: [], early: [], holding: false };
  let stream = null;
  const answer = (res, msg, result) => {
    const text = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result });
    if (kind === 'sse') { stream.write(`event: message\ndata: ${text}\n\n`); res.writeHead(202); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'S1' });
    res.end(text);
  };
  s.srv = http.createServer((req, res) => {
    if (req.method === 'GET' && kind === 'sse') {
      stream = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\ndata: /messages\n\n');
      return;
    }
    if (req.method !== 'POST') { res.writeHead(req.method === 'DELETE' ? 200 : 405); res.end(); return; }
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      s.seen.push(msg.method);
      if (s.holding) s.early.push(msg.method);
      if (msg.method === 'initialize') {
        answer(res, msg, { protocolVersion: '2025-06-18', capabilities: { tools: {} },
                           serverInfo: { name: 'order', version: '1' } });
      } else if (msg.method === 'notifications/initialized') {
        s.holding = true;
        setTimeout(() => { s.holding = false; res.writeHead(202); res.end(); }, HOLD_MS);
      } else if (msg.method === 'tools/list') {
        answer(res, msg, { tools: [{ name: 't', inputSchema: { type: 'object' } }] });
      } else {
        res.writeHead(202); res.end();
      }
    });
  });
  await new Promise((r) => s.srv.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${s.srv.address().port}/${kind === 'sse' ? 'sse' : 'mcp'}`;
  s.close = () => { s.srv.closeAllConnections(); s.srv.close(); };
  return s;
}

describe('notifications/initialized comes before tools/list', { skip: !hasBroker && 'mcp-broker not built' }, () => {
  for (const kind of ['http', 'sse']) {
    test(`over ${kind === 'http' ? 'streamable HTTP' : 'legacy SSE'}`, async () => {
      const s = await orderServer(kind);
      try {
        const r = await probe(['--transport', kind, '--timeout', '20', s.url]);
        assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(s.seen.slice(0, 3), ['initialize', 'notifications/initialized', 'tools/list']);
        assert.deepEqual(s.early, [], 'sent before the server had notifications/initialized');
      } finally {
        s.close();
      }
    });
  }
});

'use strict';
// Issue 19 items 3 and 4: request ids end to end and the JSON access log.
// Through nginx, the real broker, mcp-demo over stdio and a streamable-HTTP
// MCP server of our own (it records what it gets): the client's X-Request-Id
// comes back (a hostile one is replaced), a made one has the documented shape,
// and the id reaches the upstream, the broker's log, the MCP servers (_meta
// and the POST's header) and the end of every error message. With
// AIPROXY_LOG_FORMAT=json every line of the responder's and the broker's log
// is one JSON object, with one access line per request.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib');

const MADE = /^req_[A-Za-z0-9]{24}$/;
const KEY = 'sk-test-client';
const AUTH = { authorization: `Bearer ${KEY}` };

// A streamable-HTTP MCP server with one tool, "whoami", that records the
// headers and params of every tools/call it gets.
async function recordingMcp() {
  const s = { calls: [] };
  s.srv = http.createServer((req, res) => {
    if (req.method !== 'POST') { res.writeHead(req.method === 'DELETE' ? 200 : 405); res.end(); return; }
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      const answer = (result) => {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'S1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      };
      if (msg.method === 'initialize') {
        answer({ protocolVersion: '2025-06-18', capabilities: { tools: {} },
                 serverInfo: { name: 'recorder', version: '1' } });
      } else if (msg.method === 'tools/list') {
        answer({ tools: [{ name: 'whoami', inputSchema: { type: 'object' } }] });
      } else if (msg.method === 'tools/call') {
        s.calls.push({ headers: req.headers, params: msg.params });
        answer({ content: [{ type: 'text', text: 'you are you' }] });
      } else {
        res.writeHead(202); res.end();
      }
    });
  });
  await new Promise((r) => s.srv.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${s.srv.address().port}/mcp`;
  s.close = () => { s.srv.closeAllConnections(); s.srv.close(); };
  return s;
}

function config(webUrl) {
  return `
proxy_api_keys: [${KEY}]
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-upstream-secret, timeout: 30}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}, args: [--test-tools]}
  web: {transport: http, url: "${webUrl}"}
assistants:
  - {name: plain, backend: fake, model: up-model}
  - {name: tooly, backend: fake, model: up-model, mcp_servers: [demo, web]}
`;
}

// The upstream's side of one tool round: demo's add and web's whoami, then
// the answer.
function toolScript(up, stream) {
  const calls = [{ id: 'c1', name: 'demo__add', arguments: { a: 2, b: 3 } },
                 { id: 'c2', name: 'web__whoami', arguments: {} }];
  up.enqueue(stream ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) });
  up.enqueue(stream ? { sse: h.textChunks(['It is ', '5.']) } : { json: h.completion({ content: 'It is 5.' }) });
}

function assertEndsWithId(message, id) {
  assert.ok(message.endsWith(` (request id ${id})`), `message does not end with the id ${id}: ${message}`);
}

describe('request ids', () => {
  let up, web, stack, client;

  before(async () => {
    up = await h.fakeUpstream();
    web = await recordingMcp();
    stack = await h.startStack({ config: config(web.url), upstream: up,
                                 env: { AIPROXY_MAX_BODY: '65536' } });
    client = stack.openai({ apiKey: KEY });
  });
  after(async () => { await stack?.stop(); await up?.close(); web?.close(); });

  test('the id the client sent comes back and reaches the upstream', async () => {
    const mine = 'client-1.2:3@host/x+y=z_w';
    up.enqueue({ json: h.completion({ content: 'hi' }) });
    const { data, response } = await client.chat.completions.create(
      { model: 'plain', messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'X-Request-Id': mine } }).withResponse();
    assert.equal(data.choices[0].message.content, 'hi');
    assert.equal(response.headers.get('x-request-id'), mine);
    assert.equal(up.requests.at(-1).headers['x-request-id'], mine);
  });

  test('a hostile id is replaced, never echoed', async () => {
    for (const bad of ['has space', 'quote"d', '<script>', 'x'.repeat(129), 'semi;colon', '']) {
      const r = await h.request(`${stack.url}/health`, { headers: { 'X-Request-Id': bad } });
      assert.equal(r.status, 200);
      assert.match(r.headers['x-request-id'], MADE, `for ${JSON.stringify(bad)}`);
    }
  });

  test('a made id has the documented shape and differs per request', async () => {
    const seen = new Set();
    for (let i = 0; i < 5; i++) {
      up.enqueue({ json: h.completion({ content: 'x' }) });
      const { response } = await client.chat.completions.create(
        { model: 'plain', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      const id = response.headers.get('x-request-id');
      assert.match(id, MADE);
      assert.equal(up.requests.at(-1).headers['x-request-id'], id);
      seen.add(id);
    }
    assert.equal(seen.size, 5);
  });

  for (const stream of [false, true]) {
    test(`a tool round (${stream ? 'stream' : 'whole'}): the broker's log and both MCP servers see the id`, async () => {
      const mine = `tools-${stream ? 's' : 'w'}-${process.pid}`;
      const before = web.calls.length;
      toolScript(up, stream);
      const r = stream
        ? await h.sseRequest(`${stack.baseURL}/chat/completions`,
          { model: 'tooly', stream: true, messages: [{ role: 'user', content: 'add' }] },
          { headers: { ...AUTH, 'X-Request-Id': mine } })
        : await h.request(`${stack.baseURL}/chat/completions`, {
          method: 'POST', headers: { ...AUTH, 'X-Request-Id': mine },
          body: { model: 'tooly', messages: [{ role: 'user', content: 'add' }] } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-request-id'], mine);
      // both upstream turns carried it
      const turns = up.requests.slice(-2);
      for (const t of turns) assert.equal(t.headers['x-request-id'], mine);
      // the HTTP MCP server: _meta and the POST's header
      assert.equal(web.calls.length, before + 1);
      const call = web.calls.at(-1);
      assert.equal(call.params._meta['io.aiproxy/request_id'], mine);
      assert.equal(call.headers['x-request-id'], mine);
      // the broker's lines about the calls, and mcp-demo's own stderr line
      await h.waitFor(() => {
        const log = stack.logs('broker');
        return log.includes(`mcp-demo: tools/call add request_id=${mine}`) &&
          new RegExp(`call [0-9a-f]{32} \\(tool 'add'\\) started rid=${mine}`).test(log) &&
          new RegExp(`call [0-9a-f]{32} \\(tool 'add'\\) done after \\d+ ms rid=${mine}`).test(log) &&
          new RegExp(`call [0-9a-f]{32} \\(tool 'whoami'\\) done after \\d+ ms rid=${mine}`).test(log);
      }, { timeoutMs: 10000, what: `the broker's log lines for ${mine}` }).catch((e) => {
        throw new Error(`${e.message}\n${stack.tail('broker')}`);
      });
    });
  }

  test('error bodies end with the id, on every surface, and carry the header', async () => {
    const mine = 'err-check-1';
    const H = { ...AUTH, 'X-Request-Id': mine };
    // OpenAI: unknown model (404)
    let r = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', headers: H, body: { model: 'nope', messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-request-id'], mine);
    assertEndsWithId(r.json.error.message, mine);
    // Anthropic's shape
    r = await h.request(`${stack.baseURL}/messages`, {
      method: 'POST', headers: H, body: { model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(r.status, 404);
    assert.equal(r.json.type, 'error');
    assertEndsWithId(r.json.error.message, mine);
    // Responses
    r = await h.request(`${stack.baseURL}/responses`, {
      method: 'POST', headers: H, body: { model: 'nope', input: 'x' } });
    assert.equal(r.status, 404);
    assertEndsWithId(r.json.error.message, mine);
    // an upstream failure mid-stream: the error event's message
    up.enqueue({ status: 500, json: h.errorBody('upstream broke', 'server_error') });
    const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
      { model: 'plain', stream: true, messages: [{ role: 'user', content: 'x' }] }, { headers: H });
    const errEv = s.events.find((e) => e.json && e.json.error);
    if (errEv) assertEndsWithId(errEv.json.error.message, mine);
    else assertEndsWithId(JSON.parse(s.text).error.message, mine);
    // errors after a stream started: the in-stream error events of each surface
    for (const [path, body] of [
      ['/chat/completions', { model: 'plain', stream: true, messages: [{ role: 'user', content: 'x' }] }],
      ['/messages', { model: 'plain', stream: true, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }],
      ['/responses', { model: 'plain', stream: true, input: 'x', store: false }],
    ]) {
      up.enqueue({ sse: h.textChunks(['one ', 'two ', 'three']), closeAfter: 1 });
      const mid = await h.sseRequest(`${stack.baseURL}${path}`, body, { headers: H });
      assert.equal(mid.status, 200, path);
      const ev = mid.events.find((e) => e.json && (e.json.error || (e.json.response && e.json.response.error)));
      assert.ok(ev, `${path}: no error event in ${mid.text}`);
      assertEndsWithId((ev.json.error || ev.json.response.error).message, mine);
    }
    // /mcp: a JSON-RPC error's message
    r = await h.request(`${stack.url}/mcp`, {
      method: 'POST', headers: { ...H, accept: 'application/json, text/event-stream' },
      body: { jsonrpc: '2.0', id: 1, method: 'no/such/method' } });
    assert.equal(r.headers['x-request-id'], mine);
    assertEndsWithId(r.json.error.message, mine);
    // the core's answers: unknown route (404), wrong method (405), no key (401)
    r = await h.request(`${stack.url}/no/such/route`, { headers: { 'X-Request-Id': mine } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-request-id'], mine);
    assertEndsWithId(r.json.error.message, mine);
    r = await h.request(`${stack.baseURL}/chat/completions`, { headers: H });
    assert.equal(r.status, 405);
    assert.equal(r.headers['x-request-id'], mine);
    assertEndsWithId(r.json.error.message, mine);
    r = await h.request(`${stack.baseURL}/models`, { headers: { 'X-Request-Id': mine } });
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-request-id'], mine);
    assertEndsWithId(r.json.error.message, mine);
    r = await h.request(`${stack.url}/admin/assistants`, { headers: { 'X-Request-Id': mine } });
    assert.ok(r.status === 401 || r.status === 403, `admin: ${r.status}`);
    assert.equal(r.headers['x-request-id'], mine);
    assertEndsWithId(r.json.error.message, mine);
  });

  test('413 (nginx answers it) carries the header; so do /health and GET /', async () => {
    const big = { model: 'plain', messages: [{ role: 'user', content: 'x'.repeat(100000) }] };
    let r = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', headers: { ...AUTH, 'X-Request-Id': 'big-1' }, body: big });
    assert.equal(r.status, 413);
    assert.equal(r.headers['x-request-id'], 'big-1');
    r = await h.request(`${stack.baseURL}/chat/completions`, { method: 'POST', headers: AUTH, body: big });
    assert.equal(r.status, 413);
    assert.match(r.headers['x-request-id'], /^req_[0-9a-f]{32}$/);
    for (const p of ['/health', '/']) {
      r = await h.request(`${stack.url}${p}`);
      assert.equal(r.status, 200);
      assert.match(r.headers['x-request-id'], MADE);
    }
  });

  test('responder warnings about a request carry rid=', async () => {
    const mine = 'warn-check-1';
    up.enqueue({ body: 'not json at all' });
    const r = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', headers: { ...AUTH, 'X-Request-Id': mine },
      body: { model: 'plain', messages: [{ role: 'user', content: 'x' }] } });
    assert.ok(r.status >= 500, `status ${r.status}`);
    assertEndsWithId(r.json.error.message, mine);
    // the access line of the request names it too
    await h.waitFor(() => stack.logs('fcgi').includes(`POST /v1/chat/completions ${r.status}`) &&
      stack.logs('fcgi').split('\n').some((l) => l.includes(`rid=${mine}`)),
    { timeoutMs: 10000, what: 'the access line with rid=' });
  });
});

describe('request ids behind other web servers', () => {
  for (const webserver of ['nginx', 'apache', 'lighttpd']) {
    test(`${webserver}: the header survives, on answers and errors`, async (t) => {
      const up = await h.fakeUpstream();
      let stack;
      try {
        stack = await h.startStack({ config: config('http://127.0.0.1:9/mcp'), upstream: up,
                                     broker: false, webserver });
      } catch (e) {
        await up.close();
        if (/ENOENT|not found|missing/i.test(e.message)) { t.skip(`${webserver} not installed`); return; }
        throw e;
      }
      try {
        up.enqueue({ json: h.completion({ content: 'hi' }) });
        let r = await h.request(`${stack.baseURL}/chat/completions`, {
          method: 'POST', headers: { ...AUTH, 'X-Request-Id': `ws-${webserver}` },
          body: { model: 'plain', messages: [{ role: 'user', content: 'hi' }] } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-request-id'], `ws-${webserver}`);
        assert.equal(up.requests.at(-1).headers['x-request-id'], `ws-${webserver}`);
        r = await h.request(`${stack.baseURL}/models`, { headers: { 'X-Request-Id': 'bad id' } });
        assert.equal(r.status, 401);
        assert.match(r.headers['x-request-id'], MADE);
        assertEndsWithId(r.json.error.message, r.headers['x-request-id']);
      } finally {
        await stack.stop();
        await up.close();
      }
    });
  }
});

const ACCESS_FIELDS = ['time', 'level', 'msg', 'component', 'request_id', 'method', 'route', 'path',
  'assistant', 'key', 'status', 'client_gone', 'total_ms', 'upstream_ms', 'tools_ms', 'ttft_ms',
  'prompt_tokens', 'completion_tokens', 'tool_calls', 'tool_rounds', 'bytes_out'];

// Every non-empty line of `text` as JSON (fails on the first that is not),
// but the harness's own "--- <time> <command>" line at each process start.
function jsonLines(text, name) {
  return text.split('\n').filter((l) => l.trim() && !l.startsWith('--- ')).map((l) => {
    try { return JSON.parse(l); } catch (e) { throw new Error(`${name} log line is not JSON: ${l}`); }
  });
}

describe('AIPROXY_LOG_FORMAT=json', () => {
  let up, web, stack, client;

  before(async () => {
    up = await h.fakeUpstream();
    web = await recordingMcp();
    stack = await h.startStack({ config: config(web.url), upstream: up,
                                 env: { AIPROXY_LOG_FORMAT: 'json' } });
    client = stack.openai({ apiKey: KEY });
  });
  after(async () => { await stack?.stop(); await up?.close(); web?.close(); });

  test('a scripted run: every log line is JSON, one access line per request', async () => {
    // 1. whole, with usage
    up.enqueue({ json: h.completion({ content: 'hi', usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } }) });
    const { response } = await client.chat.completions.create(
      { model: 'plain', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const wholeId = response.headers.get('x-request-id');
    // 2. a stream with a tool round
    toolScript(up, true);
    const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
      { model: 'tooly', stream: true, messages: [{ role: 'user', content: 'add' }] },
      { headers: { ...AUTH, 'X-Request-Id': 'json-tools' } });
    assert.equal(h.contentOf(s), 'It is 5.');
    // 3. an error
    const bad = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', headers: { ...AUTH, 'X-Request-Id': 'json-404' },
      body: { model: 'nope', messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(bad.status, 404);
    // 4. a client that leaves mid-stream
    up.enqueue({ sse: h.textChunks(['one ', 'two ', 'three']), hangAfter: 1 });
    const gone = await h.sseRequest(`${stack.baseURL}/chat/completions`,
      { model: 'plain', stream: true, messages: [{ role: 'user', content: 'x' }] },
      { headers: { ...AUTH, 'X-Request-Id': 'json-gone' }, stopWhen: (ev) => ev.json && ev.json.choices });
    assert.ok(gone.stopped);
    // 5. a path with bytes a log must escape
    await h.request(`${stack.url}/no/%22quote%22/%0a/%ff`, { headers: { 'X-Request-Id': 'json-esc' } });

    const access = () => jsonLines(stack.logs('fcgi'), 'fcgi').filter((o) => o.msg === 'access');
    await h.waitFor(() => ['json-tools', 'json-404', 'json-gone', 'json-esc', wholeId]
      .every((id) => access().some((o) => o.request_id === id)),
    { timeoutMs: 20000, what: 'the access lines of the run' });

    const lines = jsonLines(stack.logs('fcgi'), 'fcgi');
    for (const o of lines) {
      for (const k of ['time', 'level', 'msg', 'component']) assert.ok(k in o, `${k} missing: ${JSON.stringify(o)}`);
      assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const by = (id) => access().find((o) => o.request_id === id);
    for (const o of access()) {
      for (const k of ACCESS_FIELDS) assert.ok(k in o, `${k} missing: ${JSON.stringify(o)}`);
      assert.equal(o.level, 'info');
    }
    const whole = by(wholeId);
    assert.equal(whole.route, '/v1/chat/completions');
    assert.equal(whole.assistant, 'plain');
    assert.equal(whole.status, 200);
    assert.equal(whole.client_gone, false);
    assert.equal(whole.prompt_tokens, 7);
    assert.equal(whole.completion_tokens, 3);
    // who: req->info.principal (null until the auth chain names one), never the secret
    assert.ok(whole.key === null || (typeof whole.key === 'string' && !whole.key.includes(KEY)),
      `key: ${whole.key}`);
    assert.ok(whole.bytes_out > 0);
    assert.ok(whole.total_ms >= whole.upstream_ms);
    const tools = by('json-tools');
    assert.equal(tools.tool_calls, 2);
    assert.equal(tools.tool_rounds, 1);
    assert.ok(tools.ttft_ms > 0, `ttft_ms: ${tools.ttft_ms}`);
    assert.equal(by('json-404').status, 404);
    assert.equal(by('json-gone').client_gone, true);
    const esc = by('json-esc');
    assert.equal(esc.status, 404);
    assert.equal(esc.route, null);
    assert.ok(esc.path.startsWith('/no/'), esc.path);
    // no secret anywhere in the log
    assert.ok(!stack.logs('fcgi').includes('sk-upstream-secret'));
    assert.ok(!stack.logs('fcgi').includes(KEY));
  });

  test("the broker's lines are JSON too, with the call's request_id", async () => {
    await h.waitFor(() => jsonLines(stack.logs('broker'), 'broker')
      .some((o) => o.request_id === 'json-tools' && /\(tool 'add'\) done/.test(o.msg)),
    { timeoutMs: 10000, what: "the broker's JSON line for the call" });
    for (const o of jsonLines(stack.logs('broker'), 'broker')) {
      assert.equal(o.component, 'mcp-broker');
      assert.ok(o.time && o.level && typeof o.msg === 'string');
    }
  });
});

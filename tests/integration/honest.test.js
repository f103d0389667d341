'use strict';
// Issue 11 (part E), through nginx into the sanitizer-built responders:
// errors keep the gateway's internals (credentials in an upstream URL, the
// Redis socket path) to the gateway; an upstream answer that was cut is
// reported as an error, never as a finished answer; a token budget below 1 is
// refused.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');

const USER = [{ role: 'user', content: 'hi' }];
const SECRETS = ['PASS', 'SECRET', 'user:'];

function assertNoSecret(text, what) {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${what} shows '${s}': ${text}`);
}

// The text of every content delta of a raw SSE answer.
const contentOf = (s) => s.events.map((e) => e.json?.choices?.[0]?.delta?.content || '').join('');
// The message of the error event that ends a stream after it started (issue
// 13: OpenAI's data: {"error":{...}}, with no [DONE] after it).
function streamError(s) {
  const last = s.events.at(-1)?.json;
  assert.ok(last?.error, `the stream ends with an error event: ${s.text}`);
  assert.equal(s.done, false, 'no [DONE] after the error');
  return last.error.message;
}

describe('errors keep internals to the gateway', () => {
  let up, stack, dead;
  before(async () => {
    up = await h.fakeUpstream();
    dead = await h.closedPort();
    // base URLs with a password in the userinfo and a key in the query string
    stack = await h.startStack({
      config: `
backends:
  dead:
    kind: openai
    base_url: "http://user:PASS@127.0.0.1:${dead}/v1?key=SECRET"
    api_key: sk-x
    timeout: 10
  live:
    kind: openai
    base_url: "http://user:PASS@127.0.0.1:${up.port}/v1?key=SECRET"
    api_key: sk-x
    timeout: 10
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: dead, backend: dead, model: m}
  - {name: live, backend: live, model: m}
  - {name: tooly, backend: live, model: m, mcp_servers: [demo]}
`,
      upstream: up,
    });
  });
  after(async () => {
    await stack?.stop();
    await up?.close();
  });

  test('an unreachable upstream: the 502 names the host, not the credentials', async () => {
    const url = `${stack.baseURL}/chat/completions`;
    const r = await h.request(url, { method: 'POST', body: { model: 'dead', messages: USER } });
    h.assertOpenAIError(assert, r, 502, { type: 'api_error' });
    assert.match(r.json.error.message, /127\.0\.0\.1/);
    assertNoSecret(r.text, 'the 502');
    // streamed: the stream starts once the request is accepted (issue 13),
    // so the same error is its error event
    const s = await h.sseRequest(url, { model: 'dead', messages: USER, stream: true });
    assert.equal(s.status, 200);
    assert.match(streamError(s), /upstream http:\/\/127\.0\.0\.1:\d+\/v1\b/);
    assertNoSecret(s.text, 'the streamed error');
  });

  test('an upstream that fails mid-stream: the in-stream error shows no credentials', async () => {
    // the connection drops once the client has seen content (so the stream has started)
    const flag = { seen: false };
    up.enqueue(async (rec, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const c of h.textChunks(['partial ', 'answer ']).slice(0, 3)) res.write(`data: ${JSON.stringify(c)}\n\n`);
      await h.waitFor(() => flag.seen, { timeoutMs: 15000, what: 'the client to receive content' });
      res.socket.destroy();
    });
    const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
                                 { model: 'live', messages: USER, stream: true }, {
      stopWhen: (ev) => { if (ev.json?.choices?.[0]?.delta?.content) flag.seen = true; return false; },
    });
    assert.equal(s.status, 200, s.text);
    const text = contentOf(s);
    assert.ok(text.startsWith('partial answer '), text);
    assert.match(streamError(s), /upstream http:\/\/127\.0\.0\.1:\d+\/v1 failed/);
    assertNoSecret(s.text, 'the stream');
  });

  test('no log line holds the upstream credentials', async () => {
    assertNoSecret(await stack.logs('fcgi'), 'the responder log');
  });

  test('Redis down: /health, /admin and /v1 answers do not show the socket path', async () => {
    await stack.killRedis();
    const health = await h.waitFor(async () => {
      const r = await h.request(`${stack.url}/health`);
      return r.status === 503 && r.json?.redis === 'unreachable' ? r : null;
    }, { timeoutMs: 15000, what: '/health to report Redis unreachable' });
    const admin = await h.request(`${stack.url}/admin/assistants`);
    h.assertOpenAIError(assert, admin, 503, { type: 'api_error' });
    // /v1 goes on from the snapshot, but the MCP catalog needs Redis
    const chat = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', body: { model: 'tooly', messages: USER },
    });
    h.assertOpenAIError(assert, chat, 503, { type: 'api_error' });
    for (const [what, r] of [['/health', health], ['/admin', admin], ['/v1', chat]]) {
      assert.ok(!r.text.includes(stack.dir), `${what} shows the stack dir: ${r.text}`);
      assert.ok(!r.text.includes('redis.sock'), `${what} shows the socket: ${r.text}`);
      assert.match(r.text, /Redis/, `${what} still says what failed`);
    }
    // the detail is in the log for the operator
    await h.waitFor(async () => (await stack.logs('fcgi')).includes('redis.sock'),
                    { timeoutMs: 10000, what: 'the socket path in the responder log' });
  });
});

describe('a cut upstream answer is an error, not a finished answer', () => {
  let up, stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({
      config: `
backends:
  gpt: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-x, timeout: 10}
  claude: {kind: anthropic, base_url: \${UPSTREAM_URL}, api_key: sk-ant, timeout: 10}
assistants:
  - {name: gpt, backend: gpt, model: m}
  - {name: claude, backend: claude, model: m, max_tokens: 100}
`,
      upstream: up, broker: false,
    });
  });
  after(async () => {
    await stack?.stop();
    await up?.close();
  });

  const url = () => `${stack.baseURL}/chat/completions`;
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const claudeEvents = (parts) => [
    ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [],
                                     usage: { input_tokens: 3, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...parts.map((p) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: p } })),
    ev('content_block_stop', { index: 0 }),
    ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }),
    ev('message_stop', {}),
  ];

  test('OpenAI dialect: a stream that stops without finish_reason or [DONE]', async () => {
    // role, 'partial ', 'answer ': then a clean end of the response
    up.enqueue({ sse: h.textChunks(['partial ', 'answer ']), cut: 3 });
    const s = await h.sseRequest(url(), { model: 'gpt', messages: USER, stream: true });
    assert.equal(s.status, 200);
    const text = contentOf(s);
    assert.ok(text.startsWith('partial answer '), text);
    assert.match(streamError(s), /cut/);
    // the control: the same stream whole ends with the upstream's finish_reason and no error
    up.enqueue({ sse: h.textChunks(['partial ', 'answer ']) });
    const whole = await h.sseRequest(url(), { model: 'gpt', messages: USER, stream: true });
    assert.equal(contentOf(whole), 'partial answer ');
    assert.ok(whole.done);
  });

  test('OpenAI dialect: cut before any content is an upstream_truncated error', async () => {
    up.enqueue({ sse: h.textChunks(['never sent']), cut: 1 });
    const s = await h.sseRequest(url(), { model: 'gpt', messages: USER, stream: true });
    // the stream started when the request was accepted (issue 13): an error event
    assert.equal(s.status, 200);
    streamError(s);
    assert.equal(s.events.at(-1).json.error.code, 'upstream_truncated');
  });

  test('Anthropic dialect: a stream that ends without message_stop', async () => {
    const evs = claudeEvents(['partial ', 'answer ']);
    up.enqueue({ sse: evs, cut: evs.length - 1 });   // everything but message_stop
    const s = await h.sseRequest(url(), { model: 'claude', messages: USER, stream: true });
    assert.equal(s.status, 200);
    const text = contentOf(s);
    assert.ok(text.startsWith('partial answer '), text);
    assert.match(streamError(s), /message_stop/);
    up.enqueue({ sse: claudeEvents(['whole']), done: false });
    const whole = await h.sseRequest(url(), { model: 'claude', messages: USER, stream: true });
    assert.equal(contentOf(whole), 'whole');
  });

  test('a whole answer cut short is a 502', async () => {
    up.enqueue({ json: h.completion({ content: 'this answer is cut' }), cut: 40 });
    const r = await h.request(url(), { method: 'POST', body: { model: 'gpt', messages: USER } });
    h.assertOpenAIError(assert, r, 502, { type: 'api_error' });
  });

  test('max_tokens and max_completion_tokens below 1 are refused', async () => {
    for (const [field, value] of [['max_tokens', -1], ['max_tokens', 0], ['max_completion_tokens', -1]]) {
      const r = await h.request(url(), { method: 'POST',
                                         body: { model: 'gpt', messages: USER, [field]: value } });
      h.assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
      assert.equal(r.json.error.param, field);
    }
    assert.equal(up.requests.filter((q) => q.body?.max_tokens < 1).length, 0);
  });
});

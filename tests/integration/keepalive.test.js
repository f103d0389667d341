'use strict';
// Issue 13 item 1: streams start at once and never go silent. A streamed
// request whose model calls a 20 s MCP tool, through nginx (default config)
// and through a TCP proxy that cuts connections idle for 10 s, as a load
// balancer does: the stream starts (headers and first event) within a second,
// keep-alives (': keep-alive' comments on /v1/chat/completions, Anthropic's
// ping on /v1/messages) fill the silence, and the openai and
// @anthropic-ai/sdk clients yield exactly the answer, skipping the
// keep-alives. An error after the stream started reaches each SDK as its
// own exception, carrying the upstream's message.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const h = require('./lib');

const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo: {command: \${MCP_DEMO}, args: [--test-tools]}
assistants:
  - {name: helper, backend: fake, model: m, mcp_servers: [demo]}
  - {name: brisk, backend: fake, model: m, mcp_servers: [demo], stream_keepalive_ms: 1000}
  - {name: quiet, backend: fake, model: m, mcp_servers: [demo], stream_keepalive_ms: 0}
`;
const USER = [{ role: 'user', content: 'Take your time.' }];
const IDLE_CUT_MS = 10000;

// A TCP proxy in front of nginx that cuts a connection once no byte went
// either way for idleMs, and records when each byte from the server arrived.
async function idleProxy(target, idleMs) {
  const conns = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const c = { chunks: [], cut: false };
    conns.push(c);
    const upstream = net.connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    let timer;
    const kick = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { c.cut = true; client.destroy(); upstream.destroy(); }, idleMs);
    };
    kick();
    client.on('data', (d) => { kick(); upstream.write(d); });
    upstream.on('data', (d) => { kick(); c.chunks.push({ at: performance.now(), text: d.toString() }); client.write(d); });
    const end = () => { clearTimeout(timer); client.destroy(); upstream.destroy(); };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    conns,
    // every chunk the server sent, in order, across connections
    chunks: () => conns.flatMap((c) => c.chunks).sort((a, b) => a.at - b.at),
    cut: () => conns.some((c) => c.cut),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// The first byte after `t0` and the longest silence from t0 to the last byte.
function timing(chunks, t0) {
  let prev = t0, maxGap = 0;
  for (const c of chunks) {
    maxGap = Math.max(maxGap, c.at - prev);
    prev = c.at;
  }
  return { first: chunks.length ? chunks[0].at - t0 : Infinity, maxGap };
}

// The upstream: a turn that (after some text, when `before` is set) calls
// demo__sleep(ms), then a turn that answers; both streamed.
function scriptSleep(up, ms, before) {
  const calls = h.toolCallChunks([{ id: 'call_sleep', name: 'demo__sleep', arguments: { ms } }]);
  const first = before ? [h.chunk({ role: 'assistant', content: before }), ...calls.slice(1)] : calls;
  up.enqueue({ sse: first });
  up.enqueue((rec) => {
    const tool = rec.body.messages.find((m) => m.role === 'tool');
    return { sse: h.textChunks(['The tool ', `said: ${tool ? tool.content : 'nothing'}`]) };
  });
}

let up, stack;
before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({ config: CONFIG, upstream: up });
});
after(async () => {
  await stack?.stop();
  await up?.close();
});

const target = () => ({ host: '127.0.0.1', port: stack.port });

describe('a 20 s tool through a proxy that cuts connections idle for 10 s (default 5 s keep-alive)', () => {
  test('openai SDK: first byte within a second, no silence past the interval, exact answer', async () => {
    const proxy = await idleProxy(target(), IDLE_CUT_MS);
    try {
      scriptSleep(up, 20000);
      const client = new OpenAI({ apiKey: 'sk-any', baseURL: `${proxy.url}/v1`, maxRetries: 0, timeout: 120000 });
      const t0 = performance.now();
      const stream = await client.chat.completions.create({ model: 'helper', messages: USER, stream: true });
      let text = '';
      const roles = [];
      for await (const c of stream) {
        const d = c.choices[0]?.delta;
        if (d?.role) roles.push(d.role);
        if (d?.content) text += d.content;
      }
      assert.equal(text, 'The tool said: slept 20000 ms');
      assert.deepEqual(roles, ['assistant'], 'one role chunk, the one sent at the start');
      assert.equal(proxy.cut(), false, 'the idle proxy cut the connection');
      const t = timing(proxy.chunks(), t0);
      assert.ok(t.first < 1000, `first byte after ${t.first.toFixed(0)} ms`);
      assert.ok(t.maxGap < 5000 + 2000, `a ${t.maxGap.toFixed(0)} ms silence with a 5 s keep-alive`);
      const raw = proxy.chunks().map((c) => c.text).join('');
      assert.ok((raw.match(/\n: keep-alive\n\n/g) || []).length >= 3, 'keep-alive comments were sent');
      assert.ok(!raw.includes('event: ping'));
    } finally {
      await proxy.close();
    }
  });

  test('@anthropic-ai/sdk: the same, with text before the tool call, pings skipped', async () => {
    const proxy = await idleProxy(target(), IDLE_CUT_MS);
    try {
      scriptSleep(up, 20000, 'Let me check.');
      const client = new Anthropic({ apiKey: 'sk-any', baseURL: proxy.url, maxRetries: 0, timeout: 120000 });
      const t0 = performance.now();
      const stream = await client.messages.create({ model: 'helper', max_tokens: 100, messages: USER, stream: true });
      let text = '';
      const types = [];
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      }
      assert.equal(text, 'Let me check.\n\nThe tool said: slept 20000 ms');
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.ok(!types.includes('ping'), 'the SDK yields no ping');
      assert.equal(proxy.cut(), false, 'the idle proxy cut the connection');
      const t = timing(proxy.chunks(), t0);
      assert.ok(t.first < 1000, `first byte after ${t.first.toFixed(0)} ms`);
      assert.ok(t.maxGap < 5000 + 2000, `a ${t.maxGap.toFixed(0)} ms silence with a 5 s keep-alive`);
      const raw = proxy.chunks().map((c) => c.text).join('');
      assert.ok((raw.match(/event: ping\ndata: \{"type": "ping"\}\n\n/g) || []).length >= 3, 'pings were sent');
      assert.ok(!raw.includes('\n: keep-alive\n'), 'no chat-completions keep-alive on /v1/messages');
    } finally {
      await proxy.close();
    }
  });
});

describe('the keep-alive interval per assistant', () => {
  test('stream_keepalive_ms: 1000 leaves no silence past ~1 s while a 5 s tool runs', async () => {
    const proxy = await idleProxy(target(), IDLE_CUT_MS);
    try {
      scriptSleep(up, 5000);
      const client = new OpenAI({ apiKey: 'sk-any', baseURL: `${proxy.url}/v1`, maxRetries: 0 });
      const t0 = performance.now();
      const stream = await client.chat.completions.create({ model: 'brisk', messages: USER, stream: true });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content || '';
      assert.equal(text, 'The tool said: slept 5000 ms');
      const t = timing(proxy.chunks(), t0);
      assert.ok(t.first < 1000, `first byte after ${t.first.toFixed(0)} ms`);
      assert.ok(t.maxGap < 1000 + 1000, `a ${t.maxGap.toFixed(0)} ms silence with a 1 s keep-alive`);
      const raw = proxy.chunks().map((c) => c.text).join('');
      assert.ok((raw.match(/\n: keep-alive\n\n/g) || []).length >= 3, raw);
    } finally {
      await proxy.close();
    }
  });

  test('stream_keepalive_ms: 0 sends none, yet the stream still starts at once', async () => {
    scriptSleep(up, 1500);
    const t0 = performance.now();
    let first = null;
    const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
                                 { model: 'quiet', messages: USER, stream: true },
                                 { stopWhen: (ev) => { first ??= ev.at; return false; } });
    assert.equal(s.status, 200);
    assert.ok(first - t0 < 1000, `first event after ${(first - t0).toFixed(0)} ms`);
    assert.equal(h.contentOf(s), 'The tool said: slept 1500 ms');
    assert.ok(!s.text.includes(': keep-alive'), s.text);
  });
});

describe('an error after the stream started reaches the SDK as an exception', () => {
  const refusal = () => ({ status: 400, json: h.errorBody('Upstream says: your prompt is too long (kaboom-13)',
                                                          'invalid_request_error', 'context_length_exceeded', 'messages') });

  test('openai SDK: APIError with the upstream message; the stream had started', async () => {
    up.enqueue(refusal());
    const client = new OpenAI({ apiKey: 'sk-any', baseURL: stack.baseURL, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'helper', messages: USER, stream: true });
    const seen = [];
    await assert.rejects(async () => { for await (const c of stream) seen.push(c); }, (e) => {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.match(e.message, /kaboom-13/);
      assert.equal(e.type, 'invalid_request_error');
      return true;
    });
    assert.equal(seen.length, 1, 'the role chunk came first');
    assert.equal(seen[0].choices[0].delta.role, 'assistant');
    // on the wire: the error event, then nothing (no finish_reason, no [DONE])
    up.enqueue(refusal());
    const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
                                 { model: 'helper', messages: USER, stream: true });
    assert.equal(s.status, 200);
    const last = s.events.at(-1);
    assert.match(last.json.error.message, /kaboom-13/);
    assert.equal(s.done, false);
  });

  test('@anthropic-ai/sdk: APIError of type invalid_request_error with the upstream message', async () => {
    up.enqueue(refusal());
    const client = new Anthropic({ apiKey: 'sk-any', baseURL: stack.url, maxRetries: 0 });
    const stream = await client.messages.create({ model: 'helper', max_tokens: 100, messages: USER, stream: true });
    const types = [];
    await assert.rejects(async () => { for await (const ev of stream) types.push(ev.type); }, (e) => {
      assert.ok(e instanceof Anthropic.APIError, String(e));
      assert.match(e.message, /kaboom-13/);
      assert.equal(e.type, 'invalid_request_error');
      return true;
    });
    assert.deepEqual(types, ['message_start']);
  });

  test('an error before READY (unknown assistant) stays an HTTP error', async () => {
    const client = new OpenAI({ apiKey: 'sk-any', baseURL: stack.baseURL, maxRetries: 0 });
    await assert.rejects(client.chat.completions.create({ model: 'nobody', messages: USER, stream: true }),
                         (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  });
});

describe('AIPROXY_STREAM_KEEPALIVE_MS, the responders\' interval', () => {
  let up2, stack2;
  before(async () => {
    up2 = await h.fakeUpstream();
    stack2 = await h.startStack({
      config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
assistants:
  - {name: plain, backend: fake, model: m}
`, upstream: up2, broker: false, env: { AIPROXY_STREAM_KEEPALIVE_MS: '400' } });
  });
  after(async () => {
    await stack2?.stop();
    await up2?.close();
  });

  test('an upstream that thinks, then goes quiet mid-turn, gets keep-alives both times', async () => {
    // 1.5 s before the first chunk, 1.5 s between the content chunks
    up2.enqueue({ sse: h.textChunks(['one ', 'two']), firstDelayMs: 1500, delayMs: 1500 });
    const t0 = performance.now();
    const s = await h.sseRequest(`${stack2.baseURL}/chat/completions`,
                                 { model: 'plain', messages: USER, stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.firstByteAt - t0 < 1000, `first byte after ${(s.firstByteAt - t0).toFixed(0)} ms`);
    assert.equal(h.contentOf(s), 'one two');
    assert.ok(s.done);
    const body = s.text;
    const before1 = body.slice(0, body.indexOf('"one "'));
    const between = body.slice(body.indexOf('"one "'), body.indexOf('"two"'));
    assert.ok((before1.match(/\n: keep-alive\n\n/g) || []).length >= 2, `before the first content: ${before1}`);
    assert.ok((between.match(/\n: keep-alive\n\n/g) || []).length >= 2, `mid-turn: ${between}`);
  });

  test('a bad value stops the responder at start with the knob named', () => {
    const { spawnSync } = require('node:child_process');
    const path = require('node:path');
    const r = spawnSync(path.join(h.binDir(), 'aiproxy-fcgi'), ['-s', `unix:${stack2.dir}/never.sock`],
                        { env: { ...process.env, AIPROXY_STREAM_KEEPALIVE_MS: 'soon' }, encoding: 'utf8',
                          timeout: 10000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /AIPROXY_STREAM_KEEPALIVE_MS=soon: want 0\.\.600000 ms/);
  });
});

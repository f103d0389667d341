'use strict';
// Issue 2: the walking skeleton end to end — the openai client and curl
// against nginx → aiproxy-fcgi → a scripted fake upstream, and every error
// case of point 6 in OpenAI's shape.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');

const USAGE = { prompt_tokens: 21, completion_tokens: 5, total_tokens: 26 };

function config(closedPort) {
  return `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: sk-upstream-secret
    default_headers:
      X-Test-Header: from-config
    timeout: 20
  unreachable:
    kind: openai
    base_url: http://127.0.0.1:${closedPort}/v1
    timeout: 5
  slow:
    kind: openai
    base_url: \${UPSTREAM_URL}
    timeout: 1
assistants:
  - name: helper
    backend: fake
    model: up-model-1
    description: A helpful test assistant
    system_prompt: You are the helper.
    temperature: 0.2
    top_p: 0.9
    max_tokens: 50
    extra_body:
      custom_flag: true
      nested:
        a: 1
  - name: plain
    backend: fake
    model: up-model-2
    description: No system prompt, no defaults
  - name: down
    backend: unreachable
    model: m
  - name: slowpoke
    backend: slow
    model: m
`;
}

describe('skeleton: models, completions and every error case', () => {
  let up;
  let stack;
  let client;

  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: config(await h.closedPort()), upstream: up, broker: false });
    client = stack.openai();
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  const post = (body, headers) => h.curl([
    '-X', 'POST', '-H', 'Content-Type: application/json', ...(headers || []),
    '--data-binary', typeof body === 'string' ? body : JSON.stringify(body),
    `${stack.url}/v1/chat/completions`,
  ]);

  test('GET /health answers 200 JSON (curl)', async () => {
    const r = await h.curl([`${stack.url}/health`]);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json, `not JSON: ${r.text}`);
  });

  test('GET / lists the endpoints', async () => {
    const r = await h.curl([`${stack.url}/`]);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json, `not JSON: ${r.text}`);
    assert.match(r.text, /\/v1\/chat\/completions/);
    assert.match(r.text, /\/v1\/models/);
  });

  test('models.list (openai client) lists every assistant with its fields', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.slice().sort(), ['down', 'helper', 'plain', 'slowpoke']);
    const r = await h.request(`${stack.url}/v1/models`);
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'list');
    const helper = r.json.data.find((m) => m.id === 'helper');
    assert.equal(helper.object, 'model');
    assert.equal(helper.description, 'A helpful test assistant');
    assert.equal(helper.backend, 'fake');
    assert.deepEqual(helper.mcp_servers, []);
  });

  test('chat completion through an assistant: system prompt injected, parameters merged', async () => {
    up.enqueue({ json: h.completion({ content: 'Hi there, human.', usage: USAGE, model: 'up-model-1' }) });
    const before = up.requests.length;
    const res = await client.chat.completions.create({
      model: 'helper',
      messages: [{ role: 'user', content: 'hello' }],
      temperature: 0.7,
      seed: 42,
      stop: ['END'],
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      response_format: { type: 'json_object' },
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.model, 'helper');
    assert.equal(res.choices[0].message.role, 'assistant');
    assert.equal(res.choices[0].message.content, 'Hi there, human.');
    assert.equal(res.choices[0].finish_reason, 'stop');
    assert.deepEqual(res.usage && {
      prompt_tokens: res.usage.prompt_tokens, completion_tokens: res.usage.completion_tokens,
      total_tokens: res.usage.total_tokens,
    }, USAGE);

    assert.equal(up.requests.length, before + 1, 'exactly one upstream call');
    const rq = up.requests[before];
    assert.equal(rq.method, 'POST');
    assert.equal(rq.path, '/v1/chat/completions');
    assert.equal(rq.headers.authorization, 'Bearer sk-upstream-secret');
    assert.equal(rq.headers['x-test-header'], 'from-config');
    const b = rq.body;
    assert.ok(b, `upstream body is not JSON: ${rq.raw}`);
    assert.equal(b.model, 'up-model-1');
    assert.deepEqual(b.messages.map((m) => [m.role, m.content]),
                     [['system', 'You are the helper.'], ['user', 'hello']]);
    assert.equal(b.temperature, 0.7, 'client temperature overrides the assistant default');
    assert.equal(b.top_p, 0.9, 'assistant default kept');
    assert.equal(b.max_tokens, 50, 'assistant default kept');
    assert.equal(b.seed, 42);
    assert.deepEqual(b.stop, ['END']);
    assert.equal(b.presence_penalty, 0.5);
    assert.equal(b.frequency_penalty, 0.25);
    assert.deepEqual(b.response_format, { type: 'json_object' });
    assert.equal(b.custom_flag, true, 'extra_body merged');
    assert.deepEqual(b.nested, { a: 1 }, 'extra_body merged');
    assert.ok(!b.stream, 'non-streaming upstream call');
  });

  test('a client system message is kept and the assistant prompt is not added', async () => {
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    const before = up.requests.length;
    const r = await h.request(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      body: { model: 'helper', messages: [{ role: 'system', content: 'Client system.' },
                                          { role: 'user', content: 'q' }], max_tokens: 7 },
    });
    assert.equal(r.status, 200, r.text);
    const b = up.requests[before].body;
    assert.deepEqual(b.messages.map((m) => [m.role, m.content]),
                     [['system', 'Client system.'], ['user', 'q']]);
    assert.equal(b.max_tokens, 7, 'client max_tokens overrides the default');
  });

  test('an assistant without system prompt sends the messages as they are', async () => {
    up.enqueue({ json: h.completion({ content: 'plain answer' }) });
    const before = up.requests.length;
    const res = await client.chat.completions.create({
      model: 'plain', messages: [{ role: 'user', content: 'just this' }],
    });
    assert.equal(res.choices[0].message.content, 'plain answer');
    assert.equal(res.model, 'plain');
    const b = up.requests[before].body;
    assert.equal(b.model, 'up-model-2');
    assert.deepEqual(b.messages.map((m) => [m.role, m.content]), [['user', 'just this']]);
    assert.equal(b.temperature, undefined, 'no default invented');
  });

  describe('400 invalid requests never reach the upstream', () => {
    const cases = [
      ['body not JSON', '{"model": "helper", "messages": [', null],
      ['body is a JSON array', '[1,2]', null],
      ['model missing', { messages: [{ role: 'user', content: 'x' }] }, 'model'],
      ['model of the wrong type', { model: 123, messages: [{ role: 'user', content: 'x' }] }, 'model'],
      ['messages missing', { model: 'helper' }, 'messages'],
      ['messages of the wrong type', { model: 'helper', messages: 'hello' }, 'messages'],
    ];
    for (const [name, body, param] of cases) {
      test(name, async () => {
        const before = up.requests.length;
        const r = await post(body);
        const e = h.assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
        if (param) assert.match(`${e.param} ${e.message}`, new RegExp(param));
        assert.equal(up.requests.length, before, 'the upstream was called');
      });
    }
  });

  test('the openai client gets a BadRequestError for missing messages', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'helper' }),
                         (err) => err.status === 400 && /messages/.test(err.message));
  });

  test('404 unknown assistant points to GET /v1/models', async () => {
    const r = await post({ model: 'no-such-assistant', messages: [{ role: 'user', content: 'x' }] });
    const e = h.assertOpenAIError(assert, r, 404, { type: 'invalid_request_error' });
    assert.match(e.message, /no-such-assistant/);
    assert.match(e.message, /\/v1\/models/);
    await assert.rejects(
      client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (err) => err.status === 404);
  });

  test('404 unknown route', async () => {
    for (const p of ['/v1/nothing-here', '/v2/chat/completions']) {
      const r = await h.curl([`${stack.url}${p}`]);
      h.assertOpenAIError(assert, r, 404, { type: 'invalid_request_error' });
    }
  });

  test('405 wrong method', async () => {
    let r = await h.curl([`${stack.url}/v1/chat/completions`]);
    h.assertOpenAIError(assert, r, 405, { type: 'invalid_request_error' });
    r = await h.curl(['-X', 'DELETE', `${stack.url}/v1/models`]);
    h.assertOpenAIError(assert, r, 405, { type: 'invalid_request_error' });
  });

  // Issue 12: dispatch, Allow, 404 and the index all come from one route table.
  test('the route table through the web server: index, Allow, HEAD', async () => {
    const idx = await h.request(`${stack.url}/`);
    assert.equal(idx.status, 200, idx.text);
    assert.deepEqual(idx.json.endpoints.map((e) => `${e.method} ${e.path}`), [
      'GET /', 'GET /health', 'GET /metrics', 'GET /v1/models', 'GET /v1/models/{id}',
      'POST /v1/chat/completions', 'POST /v1/messages',
      'POST /v1/responses', 'GET, DELETE /v1/responses/{id}',
      'GET, POST, DELETE /mcp', 'GET, POST, DELETE /mcp/{assistant}',
      '* /admin/...',
    ]);
    for (const e of idx.json.endpoints) assert.ok(e.description, `no description for ${e.path}`);
    for (const [method, path, allow] of [['GET', '/v1/messages', 'POST'],
      ['HEAD', '/v1/chat/completions', 'POST'], ['POST', '/v1/models/helper', 'GET, HEAD'],
      ['PUT', '/health', 'GET, HEAD']]) {
      const r = await h.request(`${stack.url}${path}`, { method });
      assert.equal(r.status, 405, `${method} ${path}: ${r.status} ${r.text}`);
      assert.equal(r.headers.allow, allow, `${method} ${path}`);
      if (method !== 'HEAD') assert.equal(r.json.error.code, 'method_not_allowed');
    }
    const head = await h.request(`${stack.url}/health`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    const none = await h.request(`${stack.url}/v1/models/`);
    h.assertOpenAIError(assert, none, 404, { type: 'invalid_request_error' });
    assert.equal(none.json.error.code, 'unknown_route');
  });

  describe('upstream errors are passed on with their status and message', () => {
    const cases = [
      [400, 'invalid_request_error', "Invalid value for 'temperature': fake-upstream-400"],
      [401, 'authentication_error', 'Incorrect API key provided: fake-upstream-401'],
      [429, 'rate_limit_error', 'Rate limit reached: fake-upstream-429'],
      [500, 'server_error', 'The server had an error: fake-upstream-500'],
      [503, 'server_error', 'The engine is overloaded: fake-upstream-503'],
    ];
    for (const [status, type, message] of cases) {
      test(`upstream ${status}`, async () => {
        up.enqueue({ status, json: h.errorBody(message, type) });
        const r = await post({ model: 'helper', messages: [{ role: 'user', content: 'x' }] });
        const e = h.assertOpenAIError(assert, r, status);
        assert.ok(e.message.includes(message), `upstream message lost: ${e.message}`);
      });
    }

    // Issue 13 item 7: the upstream's param and code reach the client as they
    // were (OpenAI's refusal of a 129-tool array names both).
    test('the openai client sees the upstream param and code (400)', async () => {
      up.enqueue({ status: 400, json: { error: { message: "Invalid 'tools': array too long.",
        type: 'invalid_request_error', param: 'tools', code: 'array_above_max_length' } } });
      await assert.rejects(
        client.chat.completions.create({ model: 'helper', messages: [{ role: 'user', content: 'x' }] }),
        (err) => err.status === 400 && err.param === 'tools' && err.code === 'array_above_max_length' &&
                 /array too long/.test(err.message));
    });

    test('the openai client sees the upstream status (429)', async () => {
      up.enqueue({ status: 429, json: h.errorBody('Slow down: via-sdk', 'rate_limit_error') });
      await assert.rejects(
        client.chat.completions.create({ model: 'helper', messages: [{ role: 'user', content: 'x' }] }),
        (err) => err.status === 429 && /Slow down: via-sdk/.test(err.message));
    });
  });

  test('502 when the upstream is unreachable', async () => {
    const r = await post({ model: 'down', messages: [{ role: 'user', content: 'x' }] });
    h.assertOpenAIError(assert, r, 502, { type: 'api_error' });
  });

  test('502 when the upstream answers garbage', async () => {
    up.enqueue({ status: 200, headers: { 'content-type': 'application/json' },
                 body: '<html>definitely not a completion' });
    let r = await post({ model: 'helper', messages: [{ role: 'user', content: 'x' }] });
    h.assertOpenAIError(assert, r, 502, { type: 'api_error' });
    // A connection closed without any answer. Every attempt gets the same
    // (libcurl may legitimately retry once on a reused connection).
    up.handle(() => ({ destroy: true }));
    try {
      r = await post({ model: 'helper', messages: [{ role: 'user', content: 'x' }] });
    } finally {
      up.handle(null);
    }
    h.assertOpenAIError(assert, r, 502, { type: 'api_error' });
  });

  test('504 when the upstream does not answer within the backend timeout', async () => {
    up.enqueue({ hang: true });
    const before = up.requests.length;
    const r = await post({ model: 'slowpoke', messages: [{ role: 'user', content: 'x' }] });
    h.assertOpenAIError(assert, r, 504, { type: 'api_error' });
    const rec = up.requests[before];
    assert.ok(rec, 'the upstream was called');
    await up.waitClosed(rec, 10000); // the transfer was abandoned, not left open
  });

  test('after every error the responders still serve', async () => {
    up.enqueue({ json: h.completion({ content: 'still alive' }) });
    const res = await client.chat.completions.create({
      model: 'helper', messages: [{ role: 'user', content: 'ping' }],
    });
    assert.equal(res.choices[0].message.content, 'still alive');
    const r = await h.curl([`${stack.url}/health`]);
    assert.equal(r.status, 200);
  });
});

describe('skeleton: body limit', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({
      config: config(await h.closedPort()), upstream: up, broker: false, env: { AIPROXY_MAX_BODY: '4096' },
    });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('413 for a body over AIPROXY_MAX_BODY, and the next request works', async () => {
    const big = { model: 'helper', messages: [{ role: 'user', content: 'x'.repeat(20000) }] };
    const r = await h.request(`${stack.url}/v1/chat/completions`, { method: 'POST', body: big });
    h.assertOpenAIError(assert, r, 413, { type: 'invalid_request_error' });
    assert.equal(up.requests.length, 0, 'the upstream was called');
    up.enqueue({ json: h.completion({ content: 'small is fine' }) });
    const ok = await stack.openai().chat.completions.create({
      model: 'helper', messages: [{ role: 'user', content: 'short' }],
    });
    assert.equal(ok.choices[0].message.content, 'small is fine');
  });

  test('a chunked body (no Content-Length) is read to its end, and capped the same way', async () => {
    const chunked = { 'transfer-encoding': 'chunked' };
    const big = { model: 'helper', messages: [{ role: 'user', content: 'x'.repeat(20000) }] };
    let r = await h.request(`${stack.url}/v1/chat/completions`, { method: 'POST', body: big, headers: chunked });
    h.assertOpenAIError(assert, r, 413, { type: 'invalid_request_error' });
    const before = up.requests.length;
    up.enqueue({ json: h.completion({ content: 'chunked is fine' }) });
    r = await h.request(`${stack.url}/v1/chat/completions`, {
      method: 'POST', headers: chunked,
      body: { model: 'helper', messages: [{ role: 'user', content: 'short and chunked' }] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'chunked is fine');
    assert.equal(up.requests.length, before + 1);
    assert.equal(up.requests.at(-1).body.messages.at(-1).content, 'short and chunked');
  });
});

describe('skeleton: Redis down', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: config(await h.closedPort()), upstream: up, broker: false });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('Redis gone: /v1 goes on from the last known registry, /health says degraded, no crash', async () => {
    up.handle(() => ({ json: h.completion({ content: 'still here' }) }));
    await stack.killRedis();
    const health = await h.request(`${stack.url}/health`);
    assert.equal(health.status, 503, 'health reports the outage');
    assert.equal(health.json.status, 'degraded');
    assert.equal(health.json.redis, 'unreachable');
    assert.match(health.json.serving, /last known registry/);
    // every responder thread holds a snapshot from its start, so every
    // request is served, whichever thread takes it
    for (let i = 0; i < 12; i++) {
      const models = await h.request(`${stack.url}/v1/models`);
      assert.equal(models.status, 200, models.text);
      assert.ok(models.json.data.some((m) => m.id === 'helper'));
    }
    const r = await stack.openai().chat.completions.create({
      model: 'helper', messages: [{ role: 'user', content: 'x' }],
    });
    assert.equal(r.choices[0].message.content, 'still here');
    // unknown assistants are still refused from the snapshot
    const bad = await h.request(`${stack.url}/v1/chat/completions`, {
      method: 'POST', body: { model: 'nope', messages: [{ role: 'user', content: 'x' }] },
    });
    h.assertOpenAIError(assert, bad, 404, {});
    // the admin API waits for Redis: its answers would be stale, its writes lost
    const admin = await h.request(`${stack.url}/admin/config`);
    h.assertOpenAIError(assert, admin, 503, { type: 'api_error' });
  });

});

'use strict';
// POST /v1/messages: the official @anthropic-ai/sdk as the client, against a
// whole stack (nginx, responder, broker, mcp-demo) on a fake OpenAI-dialect
// upstream. Plain and streamed answers, an MCP tool loop the client never
// sees, a client-supplied tool round trip, and errors in Anthropic's shape as
// the SDK surfaces them. docs/messages.md has the rules.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Anthropic = require('@anthropic-ai/sdk');
const h = require('./lib');

const KEY = 'sk-msgin-client';
const CONFIG = `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: sk-upstream-secret
    timeout: 30
mcp_servers:
  demo:
    transport: stdio
    command: \${MCP_DEMO}
assistants:
  - name: helper
    backend: fake
    model: up-model-1
    system_prompt: You are the helper.
  - name: tooly
    backend: fake
    model: up-model-2
    mcp_servers: [demo]
proxy_api_keys: [${KEY}]
`;

const USER = [{ role: 'user', content: 'hello' }];
const WEATHER = { name: 'get_weather', description: 'the weather in a city',
                  input_schema: { type: 'object', properties: { city: { type: 'string' } },
                                  required: ['city'] } };

let up, stack, client;

before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({ config: CONFIG, upstream: up });
  client = new Anthropic({ apiKey: KEY, baseURL: stack.url, maxRetries: 0 });
});
after(async () => { await stack?.stop(); await up?.close(); });

// The upstream request made by the last client call.
const last = () => up.requests[up.requests.length - 1];

describe('answers', () => {
  test('a plain message: text block, end_turn, usage, msg_ id; the upstream gets OpenAI chat', async () => {
    up.enqueue({ json: h.completion({ content: 'Hello there',
                                      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } }) });
    const msg = await client.messages.create({
      model: 'helper', max_tokens: 50, system: 'Be brief.', messages: USER,
      stop_sequences: ['END'], temperature: 0.2, top_k: 5, metadata: { user_id: 'u-1' },
    });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.match(msg.id, /^msg_[A-Za-z0-9]{24}$/);
    assert.equal(msg.model, 'helper');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello there' }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.stop_sequence, null);
    assert.deepEqual(msg.usage, { input_tokens: 9, output_tokens: 3 });
    const body = last().body;
    assert.equal(body.model, 'up-model-1');
    assert.deepEqual(body.messages, [{ role: 'system', content: 'Be brief.' },
                                     { role: 'user', content: 'hello' }]);
    assert.equal(body.max_tokens, 50);
    assert.deepEqual(body.stop, ['END']);
    assert.equal(body.temperature, 0.2);
    assert.equal(body.user, 'u-1');
    assert.equal(body.top_k, undefined, 'top_k has no OpenAI spelling: dropped');
  });

  test('finish_reason length comes back as max_tokens', async () => {
    up.enqueue({ json: h.completion({ content: 'cut', finish_reason: 'length' }) });
    const msg = await client.messages.create({ model: 'helper', max_tokens: 2, messages: USER });
    assert.equal(msg.stop_reason, 'max_tokens');
  });

  test('an image block reaches the upstream as an image_url part', async () => {
    up.enqueue({ json: h.completion({ content: 'a red dot' }) });
    await client.messages.create({ model: 'helper', max_tokens: 20, messages: [{ role: 'user', content: [
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'text', text: 'what is it?' }] }] });
    assert.deepEqual(last().body.messages[1].content, [
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      { type: 'text', text: 'what is it?' }]);
  });

  test('streaming: the SDK stream helper assembles the same text, one message id', async () => {
    const parts = ['Hel', 'lo ', 'wor', 'ld'];
    up.enqueue({ json: h.completion({ content: parts.join('') }) });
    const plain = await client.messages.create({ model: 'helper', max_tokens: 50, messages: USER });

    up.enqueue({ sse: h.textChunks(parts, { usage: { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 } }) });
    const pieces = [];
    const stream = client.messages.stream({ model: 'helper', max_tokens: 50, messages: USER });
    stream.on('text', (t) => pieces.push(t));
    const fin = await stream.finalMessage();
    assert.equal(pieces.join(''), plain.content[0].text);
    assert.deepEqual(fin.content, plain.content);
    assert.equal(fin.stop_reason, 'end_turn');
    assert.match(fin.id, /^msg_/);
    assert.deepEqual(fin.usage, { input_tokens: 4, output_tokens: 6 });
    assert.equal(last().body.stream, true);
  });

  test('streaming: raw events in Anthropic order, as text/event-stream', async () => {
    up.enqueue({ sse: h.textChunks(['a', 'b']) });
    const res = await client.messages.create({ model: 'helper', max_tokens: 50, messages: USER,
                                               stream: true }).withResponse();
    assert.match(res.response.headers.get('content-type'), /text\/event-stream/);
    const types = [];
    const ids = new Set();
    for await (const ev of res.data) {
      types.push(ev.type);
      if (ev.type === 'message_start') ids.add(ev.message.id);
    }
    assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta',
                             'content_block_delta', 'content_block_stop', 'message_delta',
                             'message_stop']);
    assert.equal(ids.size, 1);
  });
});

describe('tools', () => {
  // The upstream asks for the demo's add(2,3), then answers with its result.
  const mcpScript = (streaming) => async (rec) => {
    const tools = (rec.body.tools || []).map((t) => t.function.name);
    const add = tools.find((n) => n.endsWith('add'));
    const results = rec.body.messages.filter((m) => m.role === 'tool');
    if (results.length === 0) {
      if (!add) return { status: 400, json: h.errorBody(`tools offered: ${tools}`) };
      const calls = [{ name: add, arguments: { a: 2, b: 3 } }];
      return streaming ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) };
    }
    const answer = `sum=${/5/.test(String(results[0].content)) ? 5 : '?'}`;
    return streaming ? { sse: h.textChunks(['sum', answer.slice(3)]) } : { json: h.completion({ content: answer }) };
  };

  test('an MCP tool loop through the broker: the client sees only the final answer', async () => {
    up.handle(mcpScript(false));
    let msg;
    try {
      msg = await client.messages.create({ model: 'tooly', max_tokens: 100, messages: USER });
    } finally { up.handle(null); }
    assert.deepEqual(msg.content, [{ type: 'text', text: 'sum=5' }]);
    assert.equal(msg.stop_reason, 'end_turn');

    up.handle(mcpScript(true));
    let fin;
    try {
      fin = await client.messages.stream({ model: 'tooly', max_tokens: 100, messages: USER }).finalMessage();
    } finally { up.handle(null); }
    assert.deepEqual(fin.content, [{ type: 'text', text: 'sum=5' }]);
    assert.equal(fin.stop_reason, 'end_turn');
  });

  for (const streaming of [false, true]) {
    test(`a client-supplied tool round trip (${streaming ? 'streamed' : 'not streamed'})`, async () => {
      const call = { id: `call_w${streaming ? 's' : 'p'}`, name: 'get_weather', arguments: { city: 'Oslo' } };
      up.enqueue(streaming ? { sse: h.toolCallChunks([call]) } : { json: h.completion({ tool_calls: [call] }) });
      const params = { model: 'helper', max_tokens: 100, tools: [WEATHER],
                       tool_choice: { type: 'auto' }, messages: [{ role: 'user', content: 'Weather in Oslo?' }] };
      const first = streaming ? await client.messages.stream(params).finalMessage()
                              : await client.messages.create(params);
      assert.equal(first.stop_reason, 'tool_use');
      const uses = first.content.filter((b) => b.type === 'tool_use');
      assert.deepEqual(uses, [{ type: 'tool_use', id: call.id, name: 'get_weather', input: { city: 'Oslo' } }]);
      const offered = last().body.tools.find((t) => t.function.name === 'get_weather');
      assert.deepEqual(offered.function.parameters, WEATHER.input_schema);
      assert.equal(last().body.tool_choice, 'auto');

      up.enqueue(streaming ? { sse: h.textChunks(['It rains ', 'in Oslo']) }
                           : { json: h.completion({ content: 'It rains in Oslo' }) });
      const second = {
        ...params,
        messages: [...params.messages, { role: 'assistant', content: first.content },
                   { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'rain, 7C' }] }],
      };
      const fin = streaming ? await client.messages.stream(second).finalMessage()
                            : await client.messages.create(second);
      assert.deepEqual(fin.content, [{ type: 'text', text: 'It rains in Oslo' }]);
      assert.equal(fin.stop_reason, 'end_turn');
      const msgs = last().body.messages;
      const asst = msgs.find((m) => m.role === 'assistant');
      assert.equal(asst.tool_calls[0].id, call.id);
      assert.deepEqual(JSON.parse(asst.tool_calls[0].function.arguments), { city: 'Oslo' });
      assert.deepEqual(msgs[msgs.length - 1], { role: 'tool', tool_call_id: call.id, content: 'rain, 7C' });
    });
  }
});

describe('errors in Anthropic\'s shape', () => {
  const raw = (body, headers = {}) => h.request(`${stack.url}/v1/messages`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', ...headers },
  });
  const assertShape = (res, status, type, re) => {
    assert.equal(res.status, status, res.text);
    assert.equal(res.json.type, 'error');
    assert.equal(res.json.error.type, type);
    assert.match(res.json.error.message, re);
  };

  test('missing max_tokens: 400 invalid_request_error naming the field', async () => {
    const n = up.requests.length;
    await assert.rejects(client.messages.create({ model: 'helper', messages: USER }), (e) => {
      assert.ok(e instanceof Anthropic.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.type, 'invalid_request_error');
      assert.match(e.message, /max_tokens/);
      return true;
    });
    assertShape(await raw({ model: 'helper', messages: USER }), 400, 'invalid_request_error', /max_tokens/);
    assert.equal(up.requests.length, n, 'nothing reached the upstream');
  });

  test('a bad block: 400 naming the block', async () => {
    assertShape(await raw({ model: 'helper', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }),
                400, 'invalid_request_error', /messages\[0\]\.content\[0\]/);
    assertShape(await raw({ model: 'helper', max_tokens: 5, messages: USER, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }),
                400, 'invalid_request_error', /server tool/);
  });

  test('an unknown model: 404 not_found_error', async () => {
    await assert.rejects(client.messages.create({ model: 'nobody', max_tokens: 5, messages: USER }), (e) => {
      assert.ok(e instanceof Anthropic.NotFoundError, String(e));
      assert.equal(e.type, 'not_found_error');
      assert.match(e.message, /nobody/);
      return true;
    });
  });

  test('a bad key: 401 authentication_error; no key: 401 too', async () => {
    const bad = new Anthropic({ apiKey: 'sk-wrong', baseURL: stack.url, maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: 'helper', max_tokens: 5, messages: USER }), (e) => {
      assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
      assert.equal(e.type, 'authentication_error');
      return true;
    });
    assertShape(await raw({ model: 'helper', max_tokens: 5, messages: USER }, { 'x-api-key': '' }),
                401, 'authentication_error', /Missing API key/);
  });

  test('an upstream 429 passes on as rate_limit_error, streamed or not', async () => {
    up.enqueue({ status: 429, json: h.errorBody('Rate limit reached: msgin', 'rate_limit_error') });
    await assert.rejects(client.messages.create({ model: 'helper', max_tokens: 5, messages: USER }), (e) => {
      assert.ok(e instanceof Anthropic.RateLimitError, String(e));
      assert.equal(e.type, 'rate_limit_error');
      return true;
    });
    // streamed: the stream started when the request was accepted (issue 13),
    // so the 429 is its error event, which the SDK raises with the type
    up.enqueue({ status: 429, json: h.errorBody('Rate limit reached: msgin-s', 'rate_limit_error') });
    await assert.rejects(client.messages.stream({ model: 'helper', max_tokens: 5, messages: USER }).finalMessage(),
                         (e) => {
                           assert.ok(e instanceof Anthropic.APIError, String(e));
                           assert.equal(e.type, 'rate_limit_error');
                           assert.match(e.message, /msgin-s/);
                           return true;
                         });
  });

  test('a failure after the stream started: an error event the SDK raises', async () => {
    // The upstream sends content, waits until the client has seen it (so the
    // stream has surely started), then drops the connection.
    const flag = { seen: false };
    up.enqueue(async (rec, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const c of h.textChunks(['partial ']).slice(0, 2)) res.write(`data: ${JSON.stringify(c)}\n\n`);
      await h.waitFor(() => flag.seen, { timeoutMs: 15000, what: 'the client to receive text' });
      res.socket.destroy();
    });
    const stream = client.messages.stream({ model: 'helper', max_tokens: 5, messages: USER });
    const seen = [];
    stream.on('text', (t) => { seen.push(t); flag.seen = true; });
    await assert.rejects(stream.finalMessage(), (e) => {
      assert.ok(e instanceof Anthropic.APIError, String(e));
      assert.match(e.message, /upstream|stream|connection/i);
      return true;
    });
    assert.equal(seen.join(''), 'partial ');
  });

  test('the OpenAI route is unchanged: its errors keep OpenAI\'s shape', async () => {
    const res = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', body: JSON.stringify({ model: 'nobody', messages: USER }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'model_not_found');
  });
});

'use strict';
// Issue 16: POST /v1/responses, the OpenAI Responses API, through nginx with
// the official openai client, the real broker and mcp-demo: a plain answer,
// the MCP tool loop as mcp_call items, a client function tool round trip,
// the refusals, and the event stream (responses.stream).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const h = require('./lib');

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
    args: [--test-tools]
assistants:
  - name: tooly
    backend: fake
    model: up-model
    system_prompt: You are tooly.
    mcp_servers: [demo]
  - name: slow
    backend: fake
    model: up-model
    stream_keepalive_ms: 200
`;

let up, stack, client;

before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({ config: CONFIG, upstream: up });
  client = stack.openai();
});
after(async () => { await stack?.stop(); await up?.close(); });

// The upstream's side of an MCP loop: add(2, 3), then the answer.
function mcpScript(stream) {
  const calls = [{ id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 3 } }];
  up.enqueue(stream ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) });
  up.enqueue(stream ? { sse: h.textChunks(['It is ', '5.'], { usage: { prompt_tokens: 20, completion_tokens: 4, total_tokens: 24 } }) }
    : { json: h.completion({ content: 'It is 5.', usage: { prompt_tokens: 20, completion_tokens: 4, total_tokens: 24 } }) });
}

function lastBody() { return up.requests[up.requests.length - 1].body; }

describe('POST /v1/responses (not streamed)', () => {
  test('a plain answer: response object, output_text, usage; input and instructions reach the upstream', async () => {
    up.enqueue({ json: h.completion({ content: 'Hello, Ada.' }) });
    const r = await client.responses.create({ model: 'tooly', input: 'Hi, I am Ada', instructions: 'Be brief.' });
    assert.match(r.id, /^resp_[A-Za-z0-9]{24}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'tooly');
    assert.equal(r.output_text, 'Hello, Ada.');
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output[0].role, 'assistant');
    assert.deepEqual(r.output[0].content.map((c) => [c.type, c.text]), [['output_text', 'Hello, Ada.']]);
    assert.deepEqual([r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens], [11, 7, 18]);
    assert.equal(r.error, null);
    const msgs = lastBody().messages;
    // the assistant's own prompt first, then the instructions, then the input
    assert.deepEqual(msgs.map((m) => [m.role, m.content]),
      [['system', 'You are tooly.'], ['system', 'Be brief.'], ['user', 'Hi, I am Ada']]);
  });

  test('input items: messages with input_text parts, developer as system; max_output_tokens and text.format translated', async () => {
    up.enqueue({ json: h.completion({ content: '{"ok":true}', finish_reason: 'length' }) });
    const r = await client.responses.create({
      model: 'tooly',
      input: [{ role: 'developer', content: 'Answer in JSON.' },
              { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'status?' }] }],
      max_output_tokens: 50, temperature: 0.2,
      text: { format: { type: 'json_schema', name: 'st', schema: { type: 'object' }, strict: true } },
    });
    const b = lastBody();
    assert.equal(b.max_tokens, 50);
    assert.equal(b.temperature, 0.2);
    assert.deepEqual(b.response_format, { type: 'json_schema', json_schema: { name: 'st', schema: { type: 'object' }, strict: true } });
    assert.deepEqual(b.messages.map((m) => m.role), ['system', 'system', 'user'], JSON.stringify(b.messages));
    assert.deepEqual(b.messages.at(-1).content, [{ type: 'text', text: 'status?' }]);
    // cut by max tokens: incomplete, with the reason
    assert.equal(r.status, 'incomplete');
    assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  });

  test('the MCP tool loop: an mcp_call item per call, then the message; usage summed', async () => {
    mcpScript(false);
    const r = await client.responses.create({ model: 'tooly', input: 'add 2 and 3' });
    assert.deepEqual(r.output.map((o) => o.type), ['mcp_call', 'message']);
    const c = r.output[0];
    assert.match(c.id, /^mcp_/);
    assert.equal(c.server_label, 'demo');
    assert.equal(c.name, 'add');
    assert.deepEqual(JSON.parse(c.arguments), { a: 2, b: 3 });
    assert.equal(c.output, '5');
    assert.equal(c.error, null);
    assert.equal(c.status, 'completed');
    assert.equal(Object.hasOwn(c, '_call_id'), false);
    assert.equal(r.output_text, 'It is 5.');
    assert.equal(r.usage.total_tokens, 18 + 24);
  });

  test('a client function tool: a function_call item ends the loop; function_call_output continues it', async () => {
    const tools = [{ type: 'function', name: 'get_weather', description: 'weather', strict: false,
                     parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
    up.enqueue({ json: h.completion({ tool_calls: [{ id: 'call_w', name: 'get_weather', arguments: { city: 'Oslo' } }] }) });
    const r1 = await client.responses.create({ model: 'tooly', input: 'weather in Oslo?', tools });
    const fc = r1.output.find((o) => o.type === 'function_call');
    assert.ok(fc, JSON.stringify(r1.output));
    assert.equal(fc.call_id, 'call_w');
    assert.equal(fc.name, 'get_weather');
    assert.deepEqual(JSON.parse(fc.arguments), { city: 'Oslo' });
    const up1 = lastBody();
    assert.ok(up1.tools.some((t) => t.function.name === 'get_weather'));
    assert.ok(up1.tools.some((t) => t.function.name.startsWith('demo__')), 'the assistant MCP tools are added');

    up.enqueue({ json: h.completion({ content: 'Sunny in Oslo.' }) });
    const r2 = await client.responses.create({
      model: 'tooly', tools,
      input: [{ role: 'user', content: 'weather in Oslo?' }, fc,
              { type: 'function_call_output', call_id: 'call_w', output: 'sunny, 21C' }],
    });
    assert.equal(r2.output_text, 'Sunny in Oslo.');
    const msgs = lastBody().messages;
    const asst = msgs.find((m) => m.role === 'assistant');
    assert.equal(asst.tool_calls[0].id, 'call_w');
    assert.equal(asst.tool_calls[0].function.name, 'get_weather');
    const tool = msgs.find((m) => m.role === 'tool');
    assert.deepEqual([tool.tool_call_id, tool.content], ['call_w', 'sunny, 21C']);
  });

  test('a client MCP tool, an unknown model and a bad input are OpenAI-shaped errors', async () => {
    const n = up.requests.length;
    await assert.rejects(client.responses.create({
      model: 'tooly', input: 'x', tools: [{ type: 'mcp', server_label: 'x', server_url: 'https://example.com/mcp' }],
    }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools[0]' && /MCP/.test(e.message));
    await assert.rejects(client.responses.create({ model: 'nope', input: 'x' }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    await assert.rejects(client.responses.create({ model: 'tooly', input: 42 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
    assert.equal(up.requests.length, n, 'nothing reached the upstream');
  });
});

describe('POST /v1/responses (streamed)', () => {
  test('responses.stream: the documented events in order, sequence numbers, text equal to the non-streamed answer', async () => {
    mcpScript(false);
    const plain = await client.responses.create({ model: 'tooly', input: 'add 2 and 3' });
    mcpScript(true);
    const s = client.responses.stream({ model: 'tooly', input: 'add 2 and 3' });
    const events = [];
    for await (const e of s) events.push(e);
    const fin = await s.finalResponse();
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.deepEqual(events.map((e) => e.type), [
      'response.created', 'response.in_progress',
      'response.output_item.added', 'response.mcp_call_arguments.delta',
      'response.mcp_call_arguments.done', 'response.mcp_call.in_progress',
      'response.mcp_call.completed', 'response.output_item.done',
      'response.output_item.added', 'response.content_part.added',
      'response.output_text.delta', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
      'response.completed',
    ]);
    assert.equal(fin.output_text, plain.output_text);
    assert.deepEqual(fin.output.map((o) => o.type), ['mcp_call', 'message']);
    assert.equal(fin.output[0].output, '5');
    assert.equal(fin.id, events[0].response.id);
    assert.equal(fin.usage.total_tokens, 24);   // the tool round's chunks carry no usage
  });

  test('a streamed function_call: arguments delta and done, then response.completed', async () => {
    up.enqueue({ sse: h.toolCallChunks([{ id: 'call_w', name: 'get_weather', arguments: { city: 'Oslo' } }]) });
    const s = client.responses.stream({ model: 'tooly', input: 'weather?',
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} }, strict: false }] });
    const types = [];
    for await (const e of s) types.push(e.type);
    const fin = await s.finalResponse();
    assert.deepEqual(types.slice(2), ['response.output_item.added', 'response.function_call_arguments.delta',
      'response.function_call_arguments.done', 'response.output_item.done', 'response.completed']);
    assert.equal(fin.output[0].type, 'function_call');
    assert.deepEqual(JSON.parse(fin.output[0].arguments), { city: 'Oslo' });
  });

  test('keep-alives while the upstream thinks: SSE comments after response.created, then the answer', async () => {
    up.enqueue({ sse: h.textChunks(['late']), firstDelayMs: 1500 });
    const res = await h.request(`${stack.baseURL}/responses`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-any' },
      body: JSON.stringify({ model: 'slow', input: 'hi', stream: true }),
    });
    assert.equal(res.status, 200);
    const text = res.text;
    const firstKeep = text.indexOf('\n: keep-alive\n\n');
    assert.ok(firstKeep > text.indexOf('event: response.created'), text.slice(0, 400));
    assert.ok((text.match(/\n: keep-alive\n\n/g) || []).length >= 2, 'keep-alives were sent');
    assert.ok(text.indexOf('event: response.output_text.delta') > firstKeep);
    assert.match(text, /event: response\.completed\n/);
  });

  test('an upstream failure after the stream started is the error event the SDK raises', async () => {
    up.enqueue({ status: 429, json: h.errorBody('slow down', 'rate_limit_error', 'rate_limit_exceeded') });
    const s = client.responses.stream({ model: 'tooly', input: 'hi' });
    await assert.rejects((async () => { for await (const _ of s); })(), (e) => e instanceof OpenAI.APIError && /slow down/.test(e.message));
  });
});

describe('stored responses (store: true by default)', () => {
  test('retrieve, inputItems.list and delete; then 404 in OpenAI shape', async () => {
    up.enqueue({ json: h.completion({ content: 'Stored answer.' }) });
    const r = await client.responses.create({ model: 'tooly', input: 'keep this' });
    assert.equal(r.store, true);
    const got = await client.responses.retrieve(r.id);
    assert.deepEqual(got, r);
    const items = await client.responses.inputItems.list(r.id);
    assert.equal(items.data.length, 1);
    assert.equal(items.data[0].type, 'message');
    assert.equal(items.data[0].role, 'user');
    assert.deepEqual(items.data[0].content, [{ type: 'input_text', text: 'keep this' }]);
    assert.match(items.data[0].id, /^msg_/);
    const ttl = Number(await stack.redis('TTL', `${stack.prefix}resp:${r.id}`));
    assert.ok(ttl > 29 * 24 * 3600 && ttl <= 30 * 24 * 3600, `ttl ${ttl}`);
    const del = await client.responses.delete(r.id);
    assert.deepEqual(del, { id: r.id, object: 'response', deleted: true });
    await assert.rejects(client.responses.retrieve(r.id),
      (e) => e instanceof OpenAI.NotFoundError && e.type === 'invalid_request_error');
  });

  test('store: false keeps nothing; another key cannot read a stored response', async () => {
    up.enqueue({ json: h.completion({ content: 'Not kept.' }) });
    const r = await client.responses.create({ model: 'tooly', input: 'forget this', store: false });
    await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    up.enqueue({ json: h.completion({ content: 'Mine.' }) });
    const mine = await client.responses.create({ model: 'tooly', input: 'mine' });
    const other = new OpenAI({ apiKey: 'sk-someone-else', baseURL: stack.baseURL, maxRetries: 0 });
    await assert.rejects(other.responses.retrieve(mine.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(other.responses.create({ model: 'tooly', input: 'go on', previous_response_id: mine.id }),
      (e) => e instanceof OpenAI.NotFoundError && e.param === 'previous_response_id');
  });

  test('previous_response_id continues a conversation on another stack sharing the Redis', async () => {
    const stack2 = await h.startStack({ config: CONFIG, upstream: up, redisUrl: stack.redisUrl });
    try {
      const client2 = stack2.openai();
      up.enqueue({ json: h.completion({ content: 'Nice to meet you, Ada.' }) });
      const r1 = await client.responses.create({ model: 'tooly', input: 'My name is Ada.', instructions: 'Be kind.' });
      up.enqueue({ json: h.completion({ content: 'Your name is Ada.' }) });
      const r2 = await client2.responses.create({ model: 'tooly', input: 'What is my name?', previous_response_id: r1.id });
      assert.equal(r2.previous_response_id, r1.id);
      assert.equal(r2.output_text, 'Your name is Ada.');
      // the first turn's instructions are not carried over, its conversation is
      assert.deepEqual(lastBody().messages.map((m) => [m.role, m.content]), [
        ['system', 'You are tooly.'],
        ['user', 'My name is Ada.'], ['assistant', 'Nice to meet you, Ada.'], ['user', 'What is my name?']]);
    } finally {
      await stack2.stop();
    }
  });
});

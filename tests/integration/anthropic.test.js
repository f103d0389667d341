'use strict';
// Issue 5: an assistant on a native Anthropic (Messages API) upstream, used
// through the official openai client: plain and tool-using prompts, streamed
// and not, give the same results as an OpenAI-dialect upstream, and the
// upstream receives exactly the Messages requests docs/anthropic.md describes.
const test = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { startStack, fakeUpstream, completion, textChunks, toolCallChunks } = require('./lib');

const CONFIG = `
backends:
  claude:
    kind: anthropic
    base_url: \${UPSTREAM_URL}/
    api_key: sk-ant-test-key
    default_headers:
      anthropic-beta: test-beta-1
  gpt:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: sk-openai-test
mcp_servers:
  demo:
    command: \${MCP_DEMO}
assistants:
  - name: claude-helper
    backend: claude
    model: claude-test-model
    system_prompt: You are terse.
    mcp_servers: [demo]
  - name: gpt-helper
    backend: gpt
    model: gpt-test-model
    system_prompt: You are terse.
    mcp_servers: [demo]
  - name: claude-capped
    backend: claude
    model: claude-test-model
    system_prompt: You are terse.
    mcp_servers: [demo]
    max_tool_iterations: 1
  - name: claude-plain
    backend: claude
    model: claude-test-model
    system_prompt: You are terse.
  - name: gpt-plain
    backend: gpt
    model: gpt-test-model
    system_prompt: You are terse.
proxy_api_keys: [sk-test-client]
`;

// ---- Anthropic-shaped answers ----

let seq = 0;
function message(content, stop_reason, usage = { input_tokens: 12, output_tokens: 5 }) {
  return { id: `msg_fake${++seq}`, type: 'message', role: 'assistant', model: 'claude-test-model',
           content, stop_reason, stop_sequence: null, usage };
}

const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

// A streamed text answer, split in `parts`, with a ping in the middle.
function textEvents(parts, { input = 12, output = 5, stop = 'end_turn' } = {}) {
  const out = [
    ev('message_start', { message: { id: `msg_fake${++seq}`, type: 'message', role: 'assistant',
                                     content: [], model: 'claude-test-model', stop_reason: null,
                                     usage: { input_tokens: input, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
  ];
  for (const p of parts) out.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: p } }));
  out.push(ev('content_block_stop', { index: 0 }),
           ev('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output } }),
           ev('message_stop', {}));
  return out;
}

// A streamed tool_use answer: some text, then one tool_use block whose input
// arrives in two input_json_delta pieces.
function toolEvents(text, { id, name, input }) {
  const json = JSON.stringify(input);
  const half = Math.floor(json.length / 2);
  return [
    ev('message_start', { message: { id: `msg_fake${++seq}`, type: 'message', role: 'assistant', content: [],
                                     usage: { input_tokens: 30, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id, name, input: {} } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '' } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: json.slice(0, half) } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: json.slice(half) } }),
    ev('content_block_stop', { index: 1 }),
    ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 20 } }),
    ev('message_stop', {}),
  ];
}

const PROMPT = [
  { role: 'user', content: 'Hi' },
  { role: 'developer', content: 'Be exact.' },
  { role: 'user', content: 'add 2 and 3' },
];

let up;
let stack;

// This test's upstream answers, in order. Set as the fallback handler rather
// than queued, so answers a failed test did not use cannot leak into the next.
function serve(...scripts) {
  const q = [...scripts];
  up.handle(() => (q.length ? q.shift()
    : { status: 500, json: { type: 'error', error: { type: 'api_error', message: 'fake upstream: no answer left' } } }));
}

test.before(async () => {
  up = await fakeUpstream();
  stack = await startStack({ config: CONFIG, upstream: up, upstreamUrl: up.baseURL });
});

test.after(async () => {
  if (stack) await stack.stop();
  if (up) await up.close();
});

// The request every Anthropic call must look like (headers and body framing).
// tools: 'demo' (the MCP demo server's tools, auto), or null (none offered).
function assertAnthropicRequest(rec, { stream, tools = 'demo' }) {
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, '/v1/messages');
  assert.equal(rec.headers['x-api-key'], 'sk-ant-test-key');
  assert.equal(rec.headers['anthropic-version'], '2023-06-01');
  assert.equal(rec.headers['anthropic-beta'], 'test-beta-1');
  assert.match(rec.headers['content-type'], /^application\/json/);
  assert.equal(rec.headers.authorization, undefined, 'no OpenAI bearer key goes to Anthropic');
  const b = rec.body;
  assert.ok(b, `upstream body is JSON: ${rec.raw}`);
  assert.equal(b.model, 'claude-test-model');
  assert.equal(b.system, 'You are terse.\n\nBe exact.');
  assert.equal(b.max_tokens, 4096);
  if (stream) assert.equal(b.stream, true);
  else assert.equal(b.stream, undefined);
  for (const k of ['stream_options', 'n', 'seed', 'max_completion_tokens', 'presence_penalty']) {
    assert.equal(b[k], undefined, `${k} is not sent to Anthropic`);
  }
  if (tools === null) {
    assert.equal(b.tools, undefined);
    assert.equal(b.tool_choice, undefined);
    return;
  }
  if (tools === 'client') return; // the test checks them itself
  assert.deepEqual(b.tool_choice, { type: 'auto' });
  const add = b.tools.find((t) => t.name === 'demo__add');
  assert.ok(add, `demo__add offered: ${JSON.stringify(b.tools.map((t) => t.name))}`);
  assert.equal(add.description, 'Add two numbers a and b');
  assert.deepEqual(add.input_schema.properties, { a: { type: 'number' }, b: { type: 'number' } });
  for (const t of b.tools) assert.deepEqual(Object.keys(t).sort(), ['description', 'input_schema', 'name']);
}

const FIRST_TURN = [{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'add 2 and 3' }] }];

function toolHistory(text, id) {
  return [
    ...FIRST_TURN,
    { role: 'assistant', content: [{ type: 'text', text },
                                   { type: 'tool_use', id, name: 'demo__add', input: { a: 2, b: 3 } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: '5' }] },
  ];
}

async function collect(stream) {
  let text = '';
  let finish = null;
  const ids = new Set();
  for await (const c of stream) {
    ids.add(c.id);
    for (const ch of c.choices) {
      if (ch.delta && ch.delta.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, finish, ids };
}

test('plain prompt: same answer as an OpenAI upstream, exact Messages request', async () => {
  const client = stack.openai();
  const n0 = up.requests.length;
  serve({ json: message([{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'from Claude' }], 'end_turn') });
  const r = await client.chat.completions.create({ model: 'claude-plain', messages: PROMPT,
                                                   seed: 7, presence_penalty: 0.1 });
  assert.equal(r.choices[0].message.content, 'Hello from Claude');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.deepEqual(r.usage && [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens],
                   [12, 5, 17]);
  assert.equal(up.requests.length, n0 + 1);
  const rec = up.requests[n0];
  assertAnthropicRequest(rec, { stream: false, tools: null });
  assert.deepEqual(rec.body.messages, FIRST_TURN);

  // the same prompt on the OpenAI dialect gives the same result
  serve({ json: completion({ content: 'Hello from Claude', usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } }) });
  const o = await client.chat.completions.create({ model: 'gpt-plain', messages: PROMPT });
  assert.equal(up.requests[n0 + 1].path, '/v1/chat/completions');
  assert.equal(o.choices[0].message.content, r.choices[0].message.content);
  assert.equal(o.choices[0].finish_reason, r.choices[0].finish_reason);
  assert.deepEqual(o.usage, r.usage);
});

test('client tools: tool_use handed back, then tool_use/tool_result history translated', async () => {
  const client = stack.openai();
  const n0 = up.requests.length;
  const tools = [{ type: 'function', function: { name: 'lookup', description: 'Look a word up',
                   parameters: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] } } }];
  serve({ json: message([{ type: 'tool_use', id: 'toolu_C1', name: 'lookup', input: { word: 'gateway' } }],
                             'tool_use') });
  const r = await client.chat.completions.create({ model: 'claude-plain', messages: PROMPT, tools,
                                                   tool_choice: 'required', parallel_tool_calls: false });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(r.choices[0].message.tool_calls.map((c) => [c.id, c.type, c.function.name, JSON.parse(c.function.arguments)]),
                   [['toolu_C1', 'function', 'lookup', { word: 'gateway' }]]);
  const first = up.requests[n0].body;
  assert.deepEqual(first.tools, [{ name: 'lookup', description: 'Look a word up',
                                   input_schema: tools[0].function.parameters }]);
  assert.deepEqual(first.tool_choice, { type: 'any', disable_parallel_tool_use: true });
  assert.equal(first.parallel_tool_calls, undefined);

  serve({ json: message([{ type: 'text', text: 'A gateway is a door.' }], 'end_turn') });
  const r2 = await client.chat.completions.create({ model: 'claude-plain', tools, messages: [
    ...PROMPT,
    r.choices[0].message,
    { role: 'tool', tool_call_id: 'toolu_C1', content: 'a door' },
    { role: 'user', content: [{ type: 'text', text: 'so?' },
                              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
  ] });
  assert.equal(r2.choices[0].message.content, 'A gateway is a door.');
  const second = up.requests[n0 + 1];
  assertAnthropicRequest(second, { stream: false, tools: 'client' });
  assert.deepEqual(second.body.messages, [
    ...FIRST_TURN,
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_C1', name: 'lookup', input: { word: 'gateway' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_C1', content: 'a door' },
                              { type: 'text', text: 'so?' },
                              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] },
  ]);
  assert.deepEqual(second.body.tool_choice, { type: 'auto' });
});

test('tool-using prompt: tool_use runs demo add, tool_result goes back paired', async () => {
  const client = stack.openai();
  const n0 = up.requests.length;
  serve(
    { json: message([{ type: 'text', text: 'Let me add.' },
                     { type: 'tool_use', id: 'toolu_01A', name: 'demo__add', input: { a: 2, b: 3 } }], 'tool_use',
                    { input_tokens: 30, output_tokens: 20 }) },
    { json: message([{ type: 'text', text: 'The sum is 5.' }], 'end_turn', { input_tokens: 50, output_tokens: 6 }) },
  );
  const r = await client.chat.completions.create({ model: 'claude-helper', messages: PROMPT });
  // the loop keeps the text of every turn (as a stream would have shown it)
  assert.equal(r.choices[0].message.content, 'Let me add.\n\nThe sum is 5.');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens], [80, 26]);
  assert.equal(up.requests.length, n0 + 2);
  assertAnthropicRequest(up.requests[n0], { stream: false });
  assert.deepEqual(up.requests[n0].body.messages, FIRST_TURN);
  const second = up.requests[n0 + 1];
  assertAnthropicRequest(second, { stream: false });
  assert.deepEqual(second.body.messages, toolHistory('Let me add.', 'toolu_01A'));

  // the OpenAI dialect: same final answer
  const call = completion({ tool_calls: [{ id: 'call_1', name: 'demo__add', arguments: { a: 2, b: 3 } }] });
  call.choices[0].message.content = 'Let me add.';
  serve({ json: call }, { json: completion({ content: 'The sum is 5.' }) });
  const o = await client.chat.completions.create({ model: 'gpt-helper', messages: PROMPT });
  assert.equal(o.choices[0].message.content, r.choices[0].message.content);
  assert.equal(o.choices[0].finish_reason, r.choices[0].finish_reason);
  const otool = up.requests[n0 + 3].body.messages.find((m) => m.role === 'tool');
  assert.equal(otool.content, '5', 'both dialects feed back the same tool result');
});

test('round cap: the last turn keeps its tool history, tools redeclared with tool_choice none', async () => {
  const client = stack.openai();
  const n0 = up.requests.length;
  serve(
    { json: message([{ type: 'tool_use', id: 'toolu_cap', name: 'demo__add', input: { a: 2, b: 3 } }], 'tool_use') },
    { json: message([{ type: 'text', text: 'It is 5.' }], 'end_turn') },
  );
  const r = await client.chat.completions.create({ model: 'claude-capped', messages: PROMPT });
  assert.equal(r.choices[0].message.content, 'It is 5.');
  assert.equal(up.requests.length, n0 + 2);
  const last = up.requests[n0 + 1].body;
  // without tool definitions the Messages API refuses tool_use/tool_result history
  assert.deepEqual(last.tools, [{ name: 'demo__add', input_schema: { type: 'object', properties: {} } }]);
  assert.deepEqual(last.tool_choice, { type: 'none' });
  assert.deepEqual(last.messages.slice(1), [
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_cap', name: 'demo__add', input: { a: 2, b: 3 } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_cap', content: '5' }] },
  ]);
});

test('streaming plain prompt assembles the same text', async () => {
  const client = stack.openai();
  const n0 = up.requests.length;
  serve({ sse: textEvents(['Hel', 'lo from', ' Claude']), done: false });
  const s = await collect(await client.chat.completions.create({ model: 'claude-plain', messages: PROMPT,
                                                                 stream: true }));
  assert.equal(s.text, 'Hello from Claude');
  assert.equal(s.finish, 'stop');
  assert.equal(s.ids.size, 1);
  assertAnthropicRequest(up.requests[n0], { stream: true, tools: null });
  assert.deepEqual(up.requests[n0].body.messages, FIRST_TURN);

  serve({ sse: textChunks(['Hel', 'lo from', ' Claude']) });
  const o = await collect(await client.chat.completions.create({ model: 'gpt-plain', messages: PROMPT,
                                                                 stream: true }));
  assert.equal(o.text, s.text);
  assert.equal(o.finish, s.finish);
});

test('streaming tool-using prompt: input_json_delta pieces make the call', async () => {
  const client = stack.openai();
  const n0 = up.requests.length;
  serve(
    { sse: toolEvents('Adding.', { id: 'toolu_02B', name: 'demo__add', input: { a: 2, b: 3 } }), done: false },
    { sse: textEvents(['The sum', ' is 5.']), done: false },
  );
  const s = await collect(await client.chat.completions.create({ model: 'claude-helper', messages: PROMPT,
                                                                 stream: true }));
  assert.equal(s.text, 'Adding.\n\nThe sum is 5.');
  assert.equal(s.finish, 'stop');
  assert.equal(up.requests.length, n0 + 2);
  assertAnthropicRequest(up.requests[n0 + 1], { stream: true });
  assert.deepEqual(up.requests[n0 + 1].body.messages, toolHistory('Adding.', 'toolu_02B'));

  serve(
    { sse: toolCallChunks([{ id: 'call_2', name: 'demo__add', arguments: { a: 2, b: 3 } }]) },
    { sse: textChunks(['The sum', ' is 5.']) },
  );
  const o = await collect(await client.chat.completions.create({ model: 'gpt-helper', messages: PROMPT,
                                                                 stream: true }));
  assert.ok(o.text.endsWith('The sum is 5.'));
  assert.equal(o.finish, s.finish);
});

test('Anthropic errors keep their status and message', async () => {
  const client = stack.openai();
  const cases = [
    { status: 529, type: 'overloaded_error', message: 'Overloaded' },
    { status: 429, type: 'rate_limit_error', message: 'Number of request tokens has exceeded your rate limit' },
    { status: 401, type: 'authentication_error', message: 'invalid x-api-key' },
  ];
  for (const c of cases) {
    serve({ status: c.status, json: { type: 'error', error: { type: c.type, message: c.message } } });
    await assert.rejects(client.chat.completions.create({ model: 'claude-plain', messages: PROMPT }), (e) => {
      assert.equal(e.status, c.status, `${c.type}: ${e.message}`);
      assert.ok(e.message.includes(c.message), e.message);
      assert.equal(e.error && e.error.type, c.status === 529 ? 'api_error' : c.type);
      return true;
    });
  }
});

// The stream starts once the request is accepted (issue 13), so an upstream
// error event is the stream's error event: an APIError in the SDK.
test('a streamed error event before any text reaches the SDK as an APIError with its message', async () => {
  const client = stack.openai();
  serve({ sse: [
    ev('message_start', { message: { id: 'msg_e', type: 'message', role: 'assistant', content: [],
                                     usage: { input_tokens: 3, output_tokens: 0 } } }),
    ev('error', { error: { type: 'overloaded_error', message: 'Overloaded right now' } }),
  ], done: false });
  await assert.rejects(async () => {
    const s = await client.chat.completions.create({ model: 'claude-plain', messages: PROMPT, stream: true });
    await collect(s);
  }, (e) => {
    assert.ok(String(e.message).includes('Overloaded right now'), e.message);
    assert.ok(e instanceof OpenAI.APIError, String(e));
    return true;
  });
});

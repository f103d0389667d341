'use strict';
// Issue 13 item 3: tool events, opt-in. Through nginx with the real broker and
// mcp-demo, a two-round tool loop (add, then echo plus an unknown tool) seen
// by a UI-style consumer: the openai SDK's raw chunks (chat completions) and
// the Anthropic SDK's raw events (/v1/messages). Off, the stream is what it
// was; on, unmodified SDKs (openai, @anthropic-ai/sdk, the Vercel AI SDK,
// LangChain) still read the answer. docs/tool-events.md has the wire format.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Anthropic = require('@anthropic-ai/sdk');
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
    mcp_servers: [demo]
  - name: shown
    backend: fake
    model: up-model
    mcp_servers: [demo]
    tool_events: true
`;

const USER = [{ role: 'user', content: 'add 2 and 3, then echo hi' }];
const ON = { 'X-Aiproxy-Tool-Events': '1' };
const ADMIN = 'adm-tool-events';

let up, stack, client, anthropic;

before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({ config: CONFIG, upstream: up, env: { ADMIN_API_KEY: ADMIN } });
  client = stack.openai();
  anthropic = new Anthropic({ apiKey: 'sk-any', baseURL: stack.url, maxRetries: 0 });
});
after(async () => { await stack?.stop(); await up?.close(); });

// The upstream's side of the two-round loop: round 0 calls add, round 1
// calls echo and a tool that does not exist, then the model answers.
function script(stream) {
  const rounds = [
    [{ id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 3 } }],
    [{ id: 'call_echo', name: 'demo__echo', arguments: { text: 'hi' } },
     { id: 'call_nope', name: 'demo__nope', arguments: {} }],
  ];
  for (const calls of rounds)
    up.enqueue(stream ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) });
  up.enqueue(stream ? { sse: h.textChunks(['It is ', '5.']) } : { json: h.completion({ content: 'It is 5.' }) });
}

// What a UI would print for one event.
function line(e) {
  const who = `${e.round} ${e.call_id} ${e.server ?? '-'}/${e.tool ?? '-'}`;
  if (e.type === 'tool.started') return `started ${who} ${e.arguments}`;
  if (e.type === 'tool.progress') return `progress ${who} ${e.progress}/${e.total}`;
  return `finished ${who} ${e.ok ? 'ok' : 'error'} ${e.result_preview}`;
}

// The expected story of the loop (no progress: mcp-demo's add and echo
// report none). The unknown tool is answered without the broker, so it
// finishes first, at once.
const STORY = [
  'started 0 call_add demo/add {"a":2,"b":3}',
  'finished 0 call_add demo/add ok 5',
  'started 1 call_echo demo/echo {"text":"hi"}',
  'started 1 call_nope -/- {}',
  "finished 1 call_nope -/- error [tool error] unknown tool 'demo__nope': call one of the tools offered",
  'finished 1 call_echo demo/echo ok hi',
];

function checkEvents(events) {
  assert.deepEqual(events.map(line), STORY);
  for (const e of events) {
    assert.equal(e.name, e.call_id === 'call_add' ? 'demo__add'
      : e.call_id === 'call_echo' ? 'demo__echo' : 'demo__nope');
    if (e.type === 'tool.finished') {
      assert.equal(typeof e.duration_ms, 'number');
      assert.equal(e.truncated, false);
      if (e.call_id === 'call_nope') assert.equal(e.duration_ms, 0);
    }
  }
}

// A stream's chunks without what differs between two runs (id, created).
const norm = (chunks) => chunks.map(({ id, created, ...rest }) => rest);

describe('chat completions', () => {
  test('a UI-style consumer on the openai SDK sees started/finished for each call of two rounds, in order', async () => {
    script(true);
    const stream = await client.chat.completions.create(
      { model: 'tooly', messages: USER, stream: true }, { headers: ON });
    const events = [];
    const ids = new Set();
    let text = '';
    for await (const chunk of stream) {
      ids.add(chunk.id);
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.aiproxy_tool_event) {
        // the carrier: a chunk that adds nothing for any SDK
        assert.deepEqual(chunk.choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: null }]);
        events.push(chunk.aiproxy_tool_event);
      } else {
        text += chunk.choices[0]?.delta?.content ?? '';
      }
    }
    assert.equal(text, 'It is 5.');
    assert.equal(ids.size, 1, 'one stream, one id');
    checkEvents(events);
  });

  test('off, the stream is the same as before; on, it is that stream plus the carriers', async () => {
    const run = async (headers, body = {}) => {
      script(true);
      const s = await h.sseRequest(`${stack.baseURL}/chat/completions`,
        { model: 'tooly', messages: USER, stream: true, ...body }, { headers });
      assert.equal(s.status, 200, s.text);
      assert.ok(s.done);
      return h.chunksOf(s);
    };
    const plain = await run({});
    const off = await run({ 'X-Aiproxy-Tool-Events': '0' });
    const offBody = await run({}, { aiproxy: { tool_events: false } });
    const on = await run(ON);
    assert.ok(plain.every((c) => !('aiproxy_tool_event' in c)));
    assert.deepEqual(norm(off), norm(plain));
    assert.deepEqual(norm(offBody), norm(plain));
    assert.equal(on.filter((c) => c.aiproxy_tool_event).length, STORY.length);
    assert.deepEqual(norm(on.filter((c) => !c.aiproxy_tool_event)), norm(plain));
    // the option is ours: never sent upstream
    assert.ok(up.requests.slice(-3).every((r) => !('aiproxy' in r.body)));
  });

  test("the openai SDK's stream helper and its final completion still work with events on", async () => {
    script(true);
    const s = client.chat.completions.stream({ model: 'tooly', messages: USER }, { headers: ON });
    const final = await s.finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'It is 5.');
    assert.equal(final.choices[0].finish_reason, 'stop');
  });

  test('non-streamed: aiproxy_tool_events only when asked (body field), the same list', async () => {
    script(false);
    const on = await client.chat.completions.create(
      { model: 'tooly', messages: USER, aiproxy: { tool_events: true } });
    assert.equal(on.choices[0].message.content, 'It is 5.');
    checkEvents(on.aiproxy_tool_events);
    assert.ok(!('aiproxy' in up.requests[up.requests.length - 1].body));
    script(false);
    const off = await client.chat.completions.create({ model: 'tooly', messages: USER });
    assert.equal(off.choices[0].message.content, 'It is 5.');
    assert.ok(!('aiproxy_tool_events' in off));
  });

  test("an assistant's tool_events: true turns them on; a request can still say no", async () => {
    script(false);
    const on = await client.chat.completions.create({ model: 'shown', messages: USER });
    checkEvents(on.aiproxy_tool_events);
    script(false);
    const off = await client.chat.completions.create({ model: 'shown', messages: USER },
                                                     { headers: { 'X-Aiproxy-Tool-Events': '0' } });
    assert.ok(!('aiproxy_tool_events' in off));
    // with no tool call the list is there and empty
    up.enqueue({ json: h.completion({ content: 'no tools' }) });
    const none = await client.chat.completions.create({ model: 'shown', messages: USER });
    assert.deepEqual(none.aiproxy_tool_events, []);
  });

  test('the admin API takes tool_events like the other assistant fields: a boolean, else 422', async () => {
    const put = (body) => h.request(`${stack.url}/admin/assistants/late`, {
      method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body) });
    const bad = await put({ backend: 'fake', model: 'up-model', mcp_servers: ['demo'], tool_events: 'yes' });
    const e = h.assertOpenAIError(assert, bad, 422, { type: 'invalid_request_error' });
    assert.equal(e.param, 'tool_events');
    const ok = await put({ backend: 'fake', model: 'up-model', mcp_servers: ['demo'], tool_events: true });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.tool_events, true);
    script(false);
    const r = await client.chat.completions.create({ model: 'late', messages: USER });
    checkEvents(r.aiproxy_tool_events);
  });

  test('a typo in the header or the field is a 400, not a silent off', async () => {
    const r1 = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'X-Aiproxy-Tool-Events': 'yes please' },
      body: JSON.stringify({ model: 'tooly', messages: USER }) });
    h.assertOpenAIError(assert, r1, 400, { type: 'invalid_request_error', messageMatch: /X-Aiproxy-Tool-Events/ });
    const r2 = await h.request(`${stack.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tooly', messages: USER, aiproxy: { tool_events: 'yes' } }) });
    h.assertOpenAIError(assert, r2, 400, { type: 'invalid_request_error', messageMatch: /tool_events/ });
    assert.equal(r2.json.error.param, 'aiproxy.tool_events');
  });
});

// A fetch for an SDK's options that keeps a copy of each response body, so
// a test can see that the events were on the wire the SDK read.
function teeFetch() {
  const bodies = [];
  const f = async (url, init) => {
    const res = await fetch(url, init);
    bodies.push(res.clone().text());
    return res;
  };
  return { fetch: f, bodies };
}
const carriers = async (tee) => ((await tee.bodies[0]).match(/"aiproxy_tool_event":/g) || []).length;

describe('progress', () => {
  test("a tool's MCP progress reaches the client as tool.progress events between started and finished", async () => {
    up.enqueue({ sse: h.toolCallChunks([{ id: 'call_p', name: 'demo__progress',
                                         arguments: { seconds: 1, every_ms: 200 } }]) });
    up.enqueue({ sse: h.textChunks(['done']) });
    const stream = await client.chat.completions.create(
      { model: 'tooly', messages: USER, stream: true }, { headers: ON });
    const events = [];
    let text = '';
    for await (const chunk of stream) {
      if (chunk.aiproxy_tool_event) events.push(chunk.aiproxy_tool_event);
      else text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'done');
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'tool.started');
    assert.equal(types.at(-1), 'tool.finished');
    const progress = events.filter((e) => e.type === 'tool.progress');
    // the broker relays at most ~10 reports a second, keeping the latest:
    // the 5 reports of this call all fit, but allow coalescing
    assert.ok(progress.length >= 1, JSON.stringify(events));
    for (const e of progress) {
      assert.equal(e.call_id, 'call_p');
      assert.equal(e.server, 'demo');
      assert.equal(e.tool, 'progress');
      assert.equal(typeof e.progress, 'number');
    }
    const seen = progress.map((e) => e.progress);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), 'progress only goes up');
    assert.equal(events.at(-1).ok, true);
    assert.match(events.at(-1).result_preview, /^progressed 1000 ms with 5 progress reports/);
  });
});

describe('other SDKs with events on', () => {
  test('the Vercel AI SDK (streamText, the header) reads the answer', async () => {
    const { streamText } = require('ai');
    const { createOpenAI } = require('@ai-sdk/openai');
    const tee = teeFetch();
    const provider = createOpenAI({ baseURL: stack.baseURL, apiKey: 'sk-any', fetch: tee.fetch });
    script(true);
    const result = streamText({ model: provider.chat('tooly'), prompt: 'add', headers: ON, maxRetries: 0 });
    let text = '';
    for await (const part of result.textStream) text += part;
    assert.equal(text, 'It is 5.');
    assert.equal(await result.finishReason, 'stop');
    assert.equal(await carriers(tee), STORY.length);
  });

  test('LangChain (ChatOpenAI.stream, the body field via modelKwargs) reads the answer', async () => {
    const { ChatOpenAI } = require('@langchain/openai');
    const tee = teeFetch();
    const model = new ChatOpenAI({ model: 'tooly', apiKey: 'sk-any', maxRetries: 0,
                                   configuration: { baseURL: stack.baseURL, fetch: tee.fetch },
                                   modelKwargs: { aiproxy: { tool_events: true } } });
    script(true);
    let text = '';
    for await (const c of await model.stream('add')) text += c.content;
    assert.equal(text, 'It is 5.');
    assert.equal(await carriers(tee), STORY.length);
  });
  test('the OpenAI Agents SDK (chat completions model, streamed run) reads the answer', async () => {
    const { Agent, run, OpenAIChatCompletionsModel, setTracingDisabled } = require('@openai/agents');
    setTracingDisabled(true);
    const tee = teeFetch();
    const oc = stack.openai({ defaultHeaders: ON, fetch: tee.fetch });
    const agent = new Agent({ name: 'ui', model: new OpenAIChatCompletionsModel(oc, 'tooly') });
    script(true);
    const result = await run(agent, 'add', { stream: true });
    for await (const _ of result) { /* drain */ }
    await result.completed;
    assert.equal(result.finalOutput, 'It is 5.');
    assert.equal(await carriers(tee), STORY.length);
  });
});

describe('/v1/messages', () => {
  const MSG = { model: 'tooly', max_tokens: 100, messages: USER };

  test('a UI-style consumer on the Anthropic SDK sees the same events; MessageStream ignores them', async () => {
    script(true);
    const stream = anthropic.messages.stream(MSG, { headers: ON });
    const events = [];
    for await (const ev of stream) {
      if (ev.type === 'aiproxy_tool_event') events.push(ev.aiproxy_tool_event);
    }
    const final = await stream.finalMessage();
    assert.deepEqual(final.content, [{ type: 'text', text: 'It is 5.' }]);
    assert.equal(final.stop_reason, 'end_turn');
    checkEvents(events);
  });

  test('non-streamed: the body field gives aiproxy_tool_events; off, no field', async () => {
    script(false);
    const on = await anthropic.messages.create({ ...MSG, aiproxy: { tool_events: true } });
    assert.equal(on.content[0].text, 'It is 5.');
    checkEvents(on.aiproxy_tool_events);
    assert.ok(!('aiproxy' in up.requests[up.requests.length - 1].body));
    script(false);
    const off = await anthropic.messages.create(MSG);
    assert.ok(!('aiproxy_tool_events' in off));
  });

  test('off, the raw stream has no event of ours', async () => {
    script(true);
    const s = await h.sseRequest(`${stack.url}/v1/messages`, { ...MSG, stream: true });
    assert.equal(s.status, 200, s.text);
    assert.ok(!s.text.includes('aiproxy'));
    assert.match(s.text, /event: message_stop/);
  });
});

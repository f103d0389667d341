'use strict';
// Issue 13 item 4, mixed turns: one model turn calls an MCP tool (demo__add)
// and a client tool (get_weather). The gateway runs demo__add, keeps the
// round in Redis, and gives the client only get_weather; when the client
// sends its result, the upstream gets the whole round back: the assistant
// message with both calls, the MCP result, then the client's result. Through
// nginx, with the openai and @anthropic-ai/sdk clients, streamed and not, on
// an OpenAI-dialect upstream and (for the tool_result pairing) an Anthropic
// one. docs/agent.md "Mixed turns" has the rules.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Anthropic = require('@anthropic-ai/sdk');
const h = require('./lib');

const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
  claude: {kind: anthropic, base_url: \${UPSTREAM_URL}/, api_key: sk-ant-up}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: mixer, backend: fake, model: up-model, mcp_servers: [demo]}
  - {name: other, backend: fake, model: up-model, mcp_servers: [demo]}
  - {name: claude-mixer, backend: claude, model: claude-test-model, mcp_servers: [demo]}
`;

const ASK = 'Add 2 and 3, and tell me the weather in Oslo.';
const OAI_WEATHER = { type: 'function', function: { name: 'get_weather', description: 'weather',
                      parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const ANT_WEATHER = { name: 'get_weather', description: 'weather',
                      input_schema: { type: 'object', properties: { city: { type: 'string' } } } };

let up, stack, oai, ant, seq = 0;

before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({ config: CONFIG, upstream: up });
  oai = stack.openai();
  ant = new Anthropic({ apiKey: 'sk-test-client', baseURL: stack.url, maxRetries: 0 });
});
after(async () => { await stack?.stop(); await up?.close(); });

// The upstream's turn 1: demo__add and get_weather at once.
function mixedTurn(streaming) {
  const n = ++seq;
  const calls = [{ id: `call_add${n}`, name: 'demo__add', arguments: { a: 2, b: 3 } },
                 { id: `call_wx${n}`, name: 'get_weather', arguments: { city: 'Oslo' } }];
  up.enqueue(streaming ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) });
  return calls[0].id;
}

function answer(streaming, text) {
  up.enqueue(streaming ? { sse: h.textChunks([text]) } : { json: h.completion({ content: text }) });
}

async function mixedKeys() {
  return (await stack.redis('KEYS', `${stack.prefix}mixed:*`)) || [];
}

// What the upstream must see in the follow-up (OpenAI dialect): the whole
// round, every call answered, ours before the client's.
function assertRoundBack(msgs, addId, clientId, clientResult) {
  const at = msgs.findIndex((m) => m.role === 'assistant' && m.tool_calls);
  assert.ok(at > 0, JSON.stringify(msgs));
  assert.deepEqual(msgs[at].tool_calls.map((c) => [c.id, c.function.name]),
                   [[addId, 'demo__add'], [clientId, 'get_weather']]);
  assert.deepEqual(msgs.slice(at + 1, at + 3).map((m) => [m.role, m.tool_call_id]),
                   [['tool', addId], ['tool', clientId]]);
  assert.equal(msgs[at + 1].content, '5');
  assert.equal(msgs[at + 2].content, clientResult);
}

// openai SDK: turn 1, the client's view; returns {message, call}.
async function oaiTurn(streaming, params) {
  if (!streaming) {
    const r = await oai.chat.completions.create(params);
    return { message: r.choices[0].message, finish: r.choices[0].finish_reason };
  }
  const r = await oai.chat.completions.stream(params).finalChatCompletion();
  return { message: r.choices[0].message, finish: r.choices[0].finish_reason };
}

describe('mixed turns', () => {
  for (const streaming of [false, true]) {
    const how = streaming ? 'streamed' : 'not streamed';

    test(`openai SDK (${how}): the MCP call runs, the client sees only its call, the follow-up gets the round back`, async () => {
      const n0 = up.requests.length;
      const addId = mixedTurn(streaming);
      const params = { model: 'mixer', messages: [{ role: 'user', content: ASK }], tools: [OAI_WEATHER] };
      const first = await oaiTurn(streaming, params);
      assert.equal(first.finish, 'tool_calls');
      assert.deepEqual(first.message.tool_calls.map((c) => c.function.name), ['get_weather']);
      const call = first.message.tool_calls[0];
      assert.match(call.id, /^call_mx[0-9a-f]{24}_0$/);
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });
      assert.equal(up.requests.length, n0 + 1, 'the MCP call ran without another upstream turn');
      const key = (await mixedKeys()).find((k) => k.endsWith(call.id.slice(7, 31)));
      assert.ok(key, 'the round is kept under the id\'s token');
      const ttl = await stack.redis('TTL', key);
      assert.ok(ttl > 0 && ttl <= 3600, `TTL ${ttl}`);

      answer(streaming, 'It is 5, and rainy in Oslo.');
      const second = {
        ...params,
        messages: [...params.messages,
                   { role: 'assistant', content: first.message.content ?? null,
                     tool_calls: first.message.tool_calls.map(({ id, type, function: f }) =>
                       ({ id, type, function: { name: f.name, arguments: f.arguments } })) },
                   { role: 'tool', tool_call_id: call.id, content: 'rain, 7C' }],
      };
      const fin = await oaiTurn(streaming, second);
      assert.equal(fin.message.content, 'It is 5, and rainy in Oslo.');
      assert.equal(fin.finish, 'stop');
      assert.equal(up.requests.length, n0 + 2);
      assertRoundBack(up.requests[n0 + 1].body.messages, addId, call.id, 'rain, 7C');
    });

    test(`@anthropic-ai/sdk (${how}): tool_use only for the client's tool, the round back on its tool_result`, async () => {
      const n0 = up.requests.length;
      const addId = mixedTurn(streaming);
      const params = { model: 'mixer', max_tokens: 200, tools: [ANT_WEATHER],
                       messages: [{ role: 'user', content: ASK }] };
      const first = streaming ? await ant.messages.stream(params).finalMessage()
                              : await ant.messages.create(params);
      assert.equal(first.stop_reason, 'tool_use');
      const uses = first.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 1);
      assert.equal(uses[0].name, 'get_weather');
      assert.deepEqual(uses[0].input, { city: 'Oslo' });
      assert.match(uses[0].id, /^call_mx[0-9a-f]{24}_0$/);
      assert.equal(up.requests.length, n0 + 1);

      answer(streaming, 'It is 5, and rainy.');
      const second = {
        ...params,
        messages: [...params.messages, { role: 'assistant', content: first.content },
                   { role: 'user', content: [{ type: 'tool_result', tool_use_id: uses[0].id,
                                               content: 'rain, 7C' }] }],
      };
      const fin = streaming ? await ant.messages.stream(second).finalMessage()
                            : await ant.messages.create(second);
      assert.deepEqual(fin.content, [{ type: 'text', text: 'It is 5, and rainy.' }]);
      assert.equal(fin.stop_reason, 'end_turn');
      assertRoundBack(up.requests[n0 + 1].body.messages, addId, uses[0].id, 'rain, 7C');
    });
  }

  test('an Anthropic upstream gets every tool_use answered: our tool_result first, in one user turn', async () => {
    const n0 = up.requests.length;
    const msg = (content, stop_reason) => ({ id: `msg_mx${++seq}`, type: 'message', role: 'assistant',
                                             model: 'claude-test-model', content, stop_reason,
                                             stop_sequence: null, usage: { input_tokens: 9, output_tokens: 4 } });
    up.enqueue({ json: msg([{ type: 'text', text: 'Both.' },
                            { type: 'tool_use', id: 'toolu_add', name: 'demo__add', input: { a: 2, b: 3 } },
                            { type: 'tool_use', id: 'toolu_wx', name: 'get_weather', input: { city: 'Oslo' } }],
                           'tool_use') });
    const params = { model: 'claude-mixer', messages: [{ role: 'user', content: ASK }], tools: [OAI_WEATHER] };
    const first = await oai.chat.completions.create(params);
    const call = first.choices[0].message.tool_calls[0];
    assert.equal(first.choices[0].message.tool_calls.length, 1);
    assert.equal(call.function.name, 'get_weather');

    up.enqueue({ json: msg([{ type: 'text', text: 'It is 5, and rainy.' }], 'end_turn') });
    const fin = await oai.chat.completions.create({
      ...params,
      messages: [...params.messages, first.choices[0].message,
                 { role: 'tool', tool_call_id: call.id, content: 'rain, 7C' }],
    });
    assert.equal(fin.choices[0].message.content, 'It is 5, and rainy.');
    const sent = up.requests[n0 + 1].body.messages;
    assert.deepEqual(sent.slice(1), [
      { role: 'assistant', content: [{ type: 'text', text: 'Both.' },
                                     { type: 'tool_use', id: 'toolu_add', name: 'demo__add', input: { a: 2, b: 3 } },
                                     { type: 'tool_use', id: call.id, name: 'get_weather', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_add', content: '5' },
                                { type: 'tool_result', tool_use_id: call.id, content: 'rain, 7C' }] },
    ]);
  });

  test('the round gone (TTL, Redis lost) or asked for by another assistant: the client\'s conversation goes up as it is', async () => {
    for (const [who, drop] of [['mixer', true], ['other', false]]) {
      const n0 = up.requests.length;
      mixedTurn(false);
      const params = { model: 'mixer', messages: [{ role: 'user', content: ASK }], tools: [OAI_WEATHER] };
      const first = await oai.chat.completions.create(params);
      const m = first.choices[0].message;
      if (drop) {
        const keys = await mixedKeys();
        assert.ok(keys.length > 0);
        await stack.redis('DEL', ...keys);
      }
      answer(false, 'Rainy.');
      const client = [...params.messages, m, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: 'rain' }];
      const fin = await oai.chat.completions.create({ ...params, model: who, messages: client });
      assert.equal(fin.choices[0].message.content, 'Rainy.');
      const sent = up.requests[n0 + 1].body.messages;
      assert.deepEqual(sent.map((x) => x.role), ['user', 'assistant', 'tool']);
      assert.deepEqual(sent[1].tool_calls.map((c) => c.id), [m.tool_calls[0].id]);
    }
  });
});

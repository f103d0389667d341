'use strict';
// Issue 16, "Done when" 2 and 3: the Responses surface as the clients that
// default to it use it, through nginx: the OpenAI Agents SDK (an agent with a
// function tool on an assistant that also has MCP tools, streamed and not),
// the Vercel AI SDK's openai(model) (Responses by default), and the same
// loop on an Anthropic backend.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');

const CONFIG = `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    api_key: sk-upstream-secret
  claude:
    kind: anthropic
    base_url: \${UPSTREAM_URL}/
    api_key: sk-ant-test-key
mcp_servers:
  demo:
    transport: stdio
    command: \${MCP_DEMO}
    args: [--test-tools]
assistants:
  - {name: tooly, backend: fake, model: up-model, mcp_servers: [demo]}
  - {name: claude-tooly, backend: claude, model: claude-test-model, mcp_servers: [demo]}
`;

let up, stack, agentsClient;
const paths = [];
before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({ config: CONFIG, upstream: up });
});
after(async () => { await stack?.stop(); await up?.close(); });

// Round 1 the MCP tool add, round 2 the client's function tool, then (after
// the SDK ran it) the answer. `stream` picks the upstream's shape.
function agentScript(stream) {
  const r1 = [{ id: 'call_add', name: 'demo__add', arguments: { a: 2, b: 3 } }];
  const r2 = [{ id: 'call_w', name: 'get_weather', arguments: { city: 'Oslo' } }];
  for (const calls of [r1, r2])
    up.enqueue(stream ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) });
  up.enqueue(stream ? { sse: h.textChunks(['5, and ', 'sunny.']) } : { json: h.completion({ content: '5, and sunny.' }) });
}

describe('@openai/agents with its default model settings (Responses API)', () => {
  for (const stream of [false, true]) {
    test(`an agent with a function tool on an assistant with MCP tools (${stream ? 'streamed' : 'not streamed'})`, async () => {
      const { Agent, run, tool, setDefaultOpenAIClient, setTracingDisabled } = require('@openai/agents');
      const { z } = require('zod');
      setTracingDisabled(true);
      // one client for both runs: the SDK keeps the provider it first made
      agentsClient ??= stack.openai();
      agentsClient.fetch = (url, init) => { paths.push(new URL(String(url)).pathname); return fetch(url, init); };
      setDefaultOpenAIClient(agentsClient);
      paths.length = 0;
      const seen = [];
      const weather = tool({
        name: 'get_weather', description: 'the weather in a city',
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => { seen.push(city); return 'sunny'; },
      });
      const agent = new Agent({ name: 'a', model: 'tooly', instructions: 'Help.', tools: [weather] });
      agentScript(stream);
      const n0 = up.requests.length;
      let result;
      if (stream) {
        result = await run(agent, 'add 2 and 3, and the weather in Oslo', { stream: true });
        for await (const _ of result) { /* drain */ }
        await result.completed;
      } else {
        result = await run(agent, 'add 2 and 3, and the weather in Oslo');
      }
      assert.equal(result.finalOutput, '5, and sunny.');
      assert.deepEqual(seen, ['Oslo']);
      assert.deepEqual(paths, ['/v1/responses', '/v1/responses'], 'the SDK spoke the Responses API');
      assert.equal(up.requests.length - n0, 3);
      const last = up.requests.at(-1).body.messages;
      assert.ok(last.some((m) => m.role === 'tool' && m.tool_call_id === 'call_w' && /sunny/.test(JSON.stringify(m.content))));
    });
  }
});

describe('the Vercel AI SDK, openai(model): Responses by default', () => {
  test('generateText and streamText', async () => {
    const { generateText, streamText } = require('ai');
    const { createOpenAI } = require('@ai-sdk/openai');
    const urls = [];
    const openai = createOpenAI({ baseURL: stack.baseURL, apiKey: 'sk-any',
      fetch: (url, init) => { urls.push(String(url)); return fetch(url, init); } });
    const n0 = up.requests.length;
    up.enqueue({ json: h.completion({ content: 'Hello from the loop.' }) });
    const g = await generateText({ model: openai('tooly'), prompt: 'hi', maxRetries: 0 });
    assert.equal(g.text, 'Hello from the loop.');
    up.enqueue({ sse: h.textChunks(['Hello ', 'from ', 'the loop.']) });
    const s = streamText({ model: openai('tooly'), prompt: 'hi', maxRetries: 0 });
    assert.equal(await s.text, 'Hello from the loop.');
    assert.equal(up.requests.length - n0, 2);
    assert.deepEqual(urls, [`${stack.baseURL}/responses`, `${stack.baseURL}/responses`]);
    assert.ok(up.requests.slice(n0).every((r) => r.path.endsWith('/chat/completions')));
  });
});

describe('an Anthropic backend', () => {
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const msg = (content, stop) => ({ json: { id: 'msg_x', type: 'message', role: 'assistant', model: 'claude-test-model',
    content, stop_reason: stop, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 5 } } });

  test('the MCP loop shows as mcp_call items, streamed and not, with the same text', async () => {
    const client = stack.openai();
    const toolUse = [{ type: 'tool_use', id: 'toolu_1', name: 'demo__add', input: { a: 2, b: 3 } }];
    up.enqueue(msg(toolUse, 'tool_use'), msg([{ type: 'text', text: 'It is 5.' }], 'end_turn'));
    const r = await client.responses.create({ model: 'claude-tooly', input: 'add 2 and 3' });
    assert.deepEqual(r.output.map((o) => o.type), ['mcp_call', 'message']);
    assert.equal(r.output[0].output, '5');
    assert.equal(r.output_text, 'It is 5.');
    assert.ok(up.requests.at(-1).path.endsWith('/messages'));

    up.enqueue(msg(toolUse, 'tool_use'));
    up.enqueue({ sse: [
      ev('message_start', { message: { id: 'msg_s', type: 'message', role: 'assistant', content: [], usage: { input_tokens: 10, output_tokens: 1 } } }),
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'It is ' } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: '5.' } }),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5 } }),
      ev('message_stop', {}),
    ], done: false });
    const s = client.responses.stream({ model: 'claude-tooly', input: 'add 2 and 3' });
    for await (const _ of s) { /* drain */ }
    const fin = await s.finalResponse();
    assert.deepEqual(fin.output.map((o) => o.type), ['mcp_call', 'message']);
    assert.equal(fin.output_text, r.output_text);
  });
});

'use strict';
// Issue 15 item 4: requests from MCP servers to the gateway. A tool's
// sampling/createMessage is answered by the calling assistant's own backend
// (the scripted upstream sees it as one more request, without tools); an
// assistant with allow_sampling: false refuses it; elicitation is declined at
// once; roots/list answers the server's configured roots; a sampling request
// outside any tool call is refused.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const h = require('./lib');
const fs = require('node:fs');
const { NODE22, EVERYTHING, startEverything } = require('./lib/everything');
const { stopProc } = require('./lib/procs');

const SRVREQ = path.join(__dirname, 'lib', 'srvreq-mcp.js');

test('MCP server requests through the gateway', { timeout: 180000 }, async (t) => {
  const dir = h.mkTmpDir('sampling');
  const shttp = await startEverything('streamableHttp', dir);
  const up = await h.fakeUpstream();
  const stack = await h.startStack({
    upstream: up,
    config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  ev: {transport: stdio, command: ${NODE22}, args: [${EVERYTHING}, stdio], timeout: 30,
       roots: [{uri: "file:///srv/project", name: project}]}
  sr: {transport: stdio, command: ${NODE22}, args: [${SRVREQ}], timeout: 30}
  evh: {transport: streamable-http, url: "http://127.0.0.1:${shttp.port}/mcp", timeout: 30}
assistants:
  - {name: samp, backend: fake, model: model-a, max_tokens: 1000, mcp_servers: [ev, sr]}
  - {name: samph, backend: fake, model: model-h, mcp_servers: [evh]}
  - {name: nosamp, backend: fake, model: model-b, allow_sampling: false, mcp_servers: [ev]}
`,
  });
  t.after(async () => {
    await stack.stop();
    await up.close();
    await stopProc(shttp.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // one tool call by the model, then the final answer quotes the tool result
  async function viaTool(assistant, name, args, between) {
    up.enqueue({ json: h.completion({ tool_calls: [{ id: 'call_1', name, arguments: args }] }) });
    for (const s of between || []) up.enqueue(s);
    let toolText = null;
    up.enqueue((rec) => {
      toolText = rec.body.messages.find((m) => m.role === 'tool' && m.tool_call_id === 'call_1')?.content;
      return { json: h.completion({ content: 'done' }) };
    });
    const before = up.requests.length;
    const r = await stack.openai().chat.completions.create({
      model: assistant, messages: [{ role: 'user', content: 'go' }],
    });
    assert.equal(r.choices[0].message.content, 'done');
    assert.ok(toolText !== null, 'no tool result was fed back');
    return { toolText, requests: up.requests.slice(before) };
  }

  await t.test('sampling/createMessage is answered by the assistant\'s own backend', async () => {
    let sampled = null;
    const { toolText, requests } = await viaTool('samp', 'ev__trigger-sampling-request',
      { prompt: 'tell me a riddle', maxTokens: 42 }, [(rec) => {
        sampled = rec.body;
        return { json: h.completion({ content: 'SAMPLED-ANSWER-7' }) };
      }]);
    assert.equal(requests.length, 3, 'the tool turn, the sampling request, the final turn');
    assert.ok(sampled, 'the upstream never saw the sampling request');
    assert.equal(sampled.model, 'model-a');
    assert.equal(sampled.max_tokens, 42);
    assert.equal(sampled.tools, undefined, 'sampling offers no tools');
    assert.deepEqual(sampled.messages.map((m) => m.role), ['system', 'user']);
    assert.equal(sampled.messages[0].content, 'You are a helpful test server.');
    assert.match(sampled.messages[1].content, /tell me a riddle/);
    assert.match(toolText, /SAMPLED-ANSWER-7/, toolText);
    assert.match(toolText, /"model": "model-a"/, toolText);
    assert.match(toolText, /"stopReason": "endTurn"/, toolText);
  });

  await t.test('the same over streamable HTTP', async () => {
    let sampled = null;
    const { toolText } = await viaTool('samph', 'evh__trigger-sampling-request',
      { prompt: 'over http', maxTokens: 7 }, [(rec) => {
        sampled = rec.body;
        return { json: h.completion({ content: 'HTTP-SAMPLED' }) };
      }]);
    assert.ok(sampled, 'the upstream never saw the sampling request');
    assert.equal(sampled.model, 'model-h');
    assert.equal(sampled.max_tokens, 7);
    assert.match(sampled.messages[1].content, /over http/);
    assert.match(toolText, /HTTP-SAMPLED/, toolText);
  });

  await t.test('allow_sampling: false refuses with a clear error and calls no LLM for it', async () => {
    const { toolText, requests } = await viaTool('nosamp', 'ev__trigger-sampling-request',
      { prompt: 'x', maxTokens: 5 });
    assert.equal(requests.length, 2, 'no upstream request for the refused sampling');
    assert.match(toolText, /does not allow sampling \(allow_sampling: false\)/, toolText);
  });

  await t.test('roots/list answers the server\'s configured roots', async () => {
    const { toolText } = await viaTool('samp', 'ev__get-roots-list', {});
    assert.match(toolText, /file:\/\/\/srv\/project/, toolText);
    assert.match(toolText, /project/, toolText);
  });

  await t.test('the broker declares sampling and roots, not elicitation', async () => {
    const { toolText } = await viaTool('samp', 'sr__caps', {});
    const caps = JSON.parse(toolText);
    assert.deepEqual(caps.sampling, {});
    assert.deepEqual(caps.roots, { listChanged: false });
    assert.equal(caps.elicitation, undefined);
  });

  await t.test('elicitation/create is declined at once', async () => {
    const { toolText } = await viaTool('samp', 'sr__ask', {});
    assert.deepEqual(JSON.parse(toolText), { result: { action: 'decline' } });
  });

  await t.test('roots/list with no roots configured answers an empty list', async () => {
    const { toolText } = await viaTool('samp', 'sr__roots', {});
    assert.deepEqual(JSON.parse(toolText), { result: { roots: [] } });
  });

  await t.test('sampling outside a tool call is refused with a JSON-RPC error', async () => {
    const { toolText } = await viaTool('samp', 'sr__early', {});
    const early = JSON.parse(toolText);
    assert.ok(early && early.error, toolText);
    assert.match(early.error.message, /only during a tool call/);
  });
});

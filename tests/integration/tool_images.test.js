'use strict';
// Issue 15 item 1: what the model sees of an MCP tool result, by backend
// capability. server-everything's get-tiny-image returns text, a PNG and
// text; through nginx and the real loop the scripted upstream must receive
// the PNG as an Anthropic image block inside tool_result, as an image_url
// part of a user message after the tool message (OpenAI chat completions,
// tool_images on), or as today's placeholder (tool_images off, the openai
// default, or an assistant that turns it off). Resource links and embedded
// resources arrive as readable text, not JSON. The tests inspect what the
// fake upstream received.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib');
const { NODE22, EVERYTHING } = require('./lib/everything');

const TOOL = 'ev__get-tiny-image';
const PLACEHOLDER = '[binary image/png content omitted]';

let up;
let stack;

test.before(async () => {
  up = await h.fakeUpstream();
  stack = await h.startStack({
    upstream: up,
    config: `
backends:
  claude: {kind: anthropic, base_url: \${UPSTREAM_URL}/, api_key: sk-ant}
  gpt: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up, tool_images: true}
  plain: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  ev: {transport: stdio, command: ${NODE22}, args: [${EVERYTHING}, stdio], timeout: 30}
assistants:
  - {name: claude-ev, backend: claude, model: c, mcp_servers: [ev]}
  - {name: claude-blind, backend: claude, model: c, mcp_servers: [ev], tool_images: false}
  - {name: gpt-ev, backend: gpt, model: g, mcp_servers: [ev]}
  - {name: plain-ev, backend: plain, model: p, mcp_servers: [ev]}
`,
  });
});

test.after(async () => {
  if (stack) await stack.stop();
  if (up) await up.close();
});

let seq = 0;
function anthMessage(content, stop_reason) {
  return { id: `msg_${++seq}`, type: 'message', role: 'assistant', model: 'c', content,
           stop_reason, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } };
}

// One turn that calls `tool` with `args`, in the backend's dialect.
function callTurn(kind, tool, args = {}) {
  if (kind === 'anthropic')
    return { json: anthMessage([{ type: 'tool_use', id: 'toolu_1', name: tool, input: args }], 'tool_use') };
  return { json: h.completion({ tool_calls: [{ id: 'call_1', name: tool, arguments: args }] }) };
}

function answerTurn(kind, text) {
  if (kind === 'anthropic') return { json: anthMessage([{ type: 'text', text }], 'end_turn') };
  return { json: h.completion({ content: text }) };
}

// Asks `assistant` to call `tool`; resolves the second upstream request's body
// (the one carrying the tool result) and the client's answer.
async function roundTrip(assistant, kind, tool, args) {
  const from = up.requests.length;
  up.enqueue(callTurn(kind, tool, args));
  up.enqueue(answerTurn(kind, 'seen'));
  const r = await stack.openai().chat.completions.create({
    model: assistant, messages: [{ role: 'user', content: 'show me the image' }],
  });
  assert.equal(r.choices[0].message.content, 'seen');
  await up.waitRequests(from + 2);
  return up.requests[from + 1].body;
}

const TINY = /^iVBORw0KGgo[A-Za-z0-9+/=]+$/;

test('anthropic backend: the PNG is an image block inside tool_result', { timeout: 60000 }, async () => {
  const body = await roundTrip('claude-ev', 'anthropic', TOOL);
  const results = body.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : []))
    .filter((b) => b.type === 'tool_result');
  assert.equal(results.length, 1, JSON.stringify(body.messages));
  const blocks = results[0].content;
  assert.ok(Array.isArray(blocks), JSON.stringify(results[0]));
  const img = blocks.find((b) => b.type === 'image');
  assert.ok(img, `no image block in ${JSON.stringify(blocks)}`);
  assert.equal(img.source.type, 'base64');
  assert.equal(img.source.media_type, 'image/png');
  assert.match(img.source.data, TINY);
  // the text around it stays, in order, and no placeholder
  assert.equal(blocks[0].type, 'text');
  assert.match(blocks[0].text, /Here's the image you requested/);
  assert.ok(blocks.indexOf(img) > 0);
  assert.ok(!JSON.stringify(blocks).includes('content omitted'));
});

test('openai backend with tool_images: a user message with an image_url part follows the tool message', { timeout: 60000 }, async () => {
  const body = await roundTrip('gpt-ev', 'openai', TOOL);
  const i = body.messages.findIndex((m) => m.role === 'tool' && m.tool_call_id === 'call_1');
  assert.ok(i > 0, JSON.stringify(body.messages));
  const tool = body.messages[i];
  assert.equal(typeof tool.content, 'string', 'tool messages carry text only');
  assert.match(tool.content, /Here's the image you requested/);
  assert.match(tool.content, /\[image 1: in the next user message\]/);
  const user = body.messages[i + 1];
  assert.equal(user?.role, 'user', JSON.stringify(body.messages));
  assert.ok(Array.isArray(user.content));
  assert.equal(user.content[0].type, 'text');
  assert.match(user.content[0].text, /tool call call_1/);
  const part = user.content.find((p) => p.type === 'image_url');
  assert.ok(part, JSON.stringify(user.content));
  const m = /^data:image\/png;base64,(.*)$/.exec(part.image_url.url);
  assert.ok(m, part.image_url.url.slice(0, 60));
  assert.match(m[1], TINY);
  assert.equal(i + 2, body.messages.length, 'the user message is the last one');
});

test('openai backend by default, and an assistant that switches it off: the placeholder', { timeout: 60000 }, async () => {
  const body = await roundTrip('plain-ev', 'openai', TOOL);
  const tool = body.messages.find((m) => m.role === 'tool');
  assert.equal(typeof tool.content, 'string');
  assert.ok(tool.content.includes(PLACEHOLDER), tool.content);
  assert.ok(!JSON.stringify(body).includes('image_url'));
  assert.equal(body.messages.at(-1).role, 'tool');

  const ab = await roundTrip('claude-blind', 'anthropic', TOOL);
  const result = ab.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : []))
    .find((b) => b.type === 'tool_result');
  assert.equal(typeof result.content, 'string', JSON.stringify(result));
  assert.ok(result.content.includes(PLACEHOLDER), result.content);
  assert.ok(!JSON.stringify(ab).includes('"image"'));
});

test('resource links and embedded resources reach the model as readable text', { timeout: 60000 }, async () => {
  let body = await roundTrip('plain-ev', 'openai', 'ev__get-resource-links', { count: 2 });
  let tool = body.messages.find((m) => m.role === 'tool').content;
  assert.match(tool, /^\[resource link\] .+: demo:\/\/resource\/\S+ \(text\/plain\)/m, tool);
  assert.ok(!tool.includes('"type":"resource_link"'), tool);

  body = await roundTrip('plain-ev', 'openai', 'ev__get-resource-reference',
                         { resourceType: 'Text', resourceId: 1 });
  tool = body.messages.find((m) => m.role === 'tool').content;
  assert.match(tool, /Resource 1: This is a plaintext resource created at/, tool);
  assert.ok(!tool.includes('"type":"resource"'), tool);

  body = await roundTrip('plain-ev', 'openai', 'ev__get-resource-reference',
                         { resourceType: 'Blob', resourceId: 1 });
  tool = body.messages.find((m) => m.role === 'tool').content;
  assert.match(tool, /\[binary \S+ resource demo:\/\/resource\/\S+ omitted, \d+ bytes\]/, tool);
});

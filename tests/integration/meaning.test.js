'use strict';
// Issue 11 (D): every input keeps its meaning, through nginx into the
// sanitizer-built responders and, for tool calls, the broker and an MCP
// server that shows the bytes it got (lib/mcp-raw.js):
// - integers past 64 bits pass as written (json-c clamped them to
//   18446744073709551615) from the client to the upstream, from the model's
//   tool arguments to the MCP server, and from the MCP result back;
// - a ${VAR} giving True stays "True" (it became true);
// - a NUL inside a model name or ?apikey= is a 400 naming the field (it cut
//   them), and a NUL in content reaches the upstream (it was cut there);
// - what we echo is valid UTF-8 (a model name with 0xFF, an upstream's bytes);
// - 75k client tools are answered (the duplicate check was quadratic).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');

const BIG = '100000000000000000000000';
const CLAMPED = '18446744073709551615';
const MCP_RAW = path.join(__dirname, 'lib', 'mcp-raw.js');

const utf8 = new TextDecoder('utf-8', { fatal: true });
const validUtf8 = (buf) => { try { utf8.decode(buf); return true; } catch (_) { return false; } };

function chat(stack, body, query = '') {
  return h.request(`${stack.url}/v1/chat/completions${query}`, {
    method: 'POST', body: Buffer.isBuffer(body) ? body : Buffer.from(body), timeoutMs: 300000,
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-meaning' },
  });
}

// CPU seconds (user + system) the responders have used so far.
function responderCpu(stack) {
  const tick = 100;   // USER_HZ on Linux
  let sum = 0;
  for (const pid of [stack.procs.fcgi.pid, ...stack.responderPids()]) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += (Number(f[11]) + Number(f[12])) / tick;
    } catch (_) { /* gone */ }
  }
  return sum;
}

describe('every input keeps its meaning', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({
      config: `
backends:
  fake:
    kind: openai
    base_url: \${UPSTREAM_URL}
    timeout: 30
    default_headers:
      X-Flag: \${AIP_MEANING_FLAG}
mcp_servers:
  raw: {command: node, args: ['${MCP_RAW}']}
assistants:
  - {name: plain, backend: fake, model: m}
  - {name: tooled, backend: fake, model: m, mcp_servers: [raw]}
proxy_api_keys: [sk-meaning]
`,
      upstream: up, env: { AIP_MEANING_FLAG: 'True' },
    });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test('a big integer in the client body reaches the upstream as written', async () => {
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    const res = await chat(stack, `{"model":"plain","messages":[{"role":"user","content":"hi"}],` +
      `"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"maximum":${BIG},"minimum":-${BIG}}}}}`);
    assert.equal(res.status, 200, res.text);
    const raw = up.requests.at(-1).raw;
    assert.ok(raw.includes(`"maximum":${BIG}`) && raw.includes(`"minimum":-${BIG}`), raw);
    assert.ok(!raw.includes(CLAMPED), raw);
    // where an integer is required, a big one is refused rather than clamped
    const bad = await chat(stack, `{"model":"plain","messages":[{"role":"user","content":"hi"}],"max_tokens":${BIG}}`);
    const e = h.assertOpenAIError(assert, bad, 400, {});
    assert.equal(e.param, 'max_tokens');
  });

  test('big integers in tool arguments reach the MCP server as written, and its result comes back so', async () => {
    up.enqueue({ json: h.completion({ tool_calls: [{ id: 'call_1', name: 'raw__raw',
      arguments: `{"a":${BIG},"b":-${BIG},"c":[${BIG}9]}` }] }) });
    up.enqueue((rec) => ({ json: h.completion({ content:
      rec.body.messages.filter((m) => m.role === 'tool').map((m) => m.content).join('|') }) }));
    const res = await chat(stack, '{"model":"tooled","messages":[{"role":"user","content":"go"}]}');
    assert.equal(res.status, 200, res.text);
    const fed = up.requests.at(-1).raw;          // the tool message the loop fed back
    // what the MCP server received (spliced into its result as text)
    assert.ok(fed.includes(`\\"a\\":${BIG},\\"b\\":-${BIG},\\"c\\":[${BIG}9]`), fed);
    // what the MCP server answered
    assert.ok(fed.includes('\\"big\\":100000000000000000000001'), fed);
    assert.ok(!fed.includes(CLAMPED), fed);
  });

  test('a ${VAR} giving True reaches the upstream as True', async () => {
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    const res = await chat(stack, '{"model":"plain","messages":[{"role":"user","content":"hi"}]}');
    assert.equal(res.status, 200, res.text);
    assert.equal(up.requests.at(-1).headers['x-flag'], 'True');
  });

  test('a NUL inside the model or ?apikey= is a 400 naming it; in content it is kept', async () => {
    const n = up.requests.length;
    let res = await chat(stack, '{"model":"plain\\u0000evil","messages":[{"role":"user","content":"hi"}]}');
    assert.equal(h.assertOpenAIError(assert, res, 400, {}).param, 'model');
    res = await h.request(`${stack.url}/v1/chat/completions?apikey=sk-meaning%00junk`, {
      method: 'POST', body: { model: 'plain', messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(h.assertOpenAIError(assert, res, 400, {}).param, 'apikey');
    assert.equal(up.requests.length, n, 'a refused request reached the upstream');
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    res = await h.request(`${stack.url}/v1/chat/completions?apikey=sk-meaning`, {
      method: 'POST', body: { model: 'plain', messages: [{ role: 'user', content: 'x\u0000y' }] } });
    assert.equal(res.status, 200, res.text);
    assert.equal(up.requests.at(-1).body.messages.at(-1).content, 'x\u0000y');
  });

  test('/v1/messages: a NUL in the model or ?apikey= is a 400; in the system prompt it is kept', async () => {
    const msgs = (body, query = '', key = 'sk-meaning') => h.request(`${stack.url}/v1/messages${query}`, {
      method: 'POST', body: Buffer.from(body),
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01',
                 ...(key ? { 'x-api-key': key } : {}) } });
    const n = up.requests.length;
    let res = await msgs('{"model":"plain\\u0000evil","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}');
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.type, 'error');
    assert.match(res.json.error.message, /model.*NUL/);
    res = await msgs('{"model":"plain","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
      '?apikey=sk-meaning%00junk', null);
    assert.equal(res.status, 400, res.text);
    assert.match(res.json.error.message, /apikey/);
    assert.equal(up.requests.length, n, 'a refused request reached the upstream');
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    res = await msgs('{"model":"plain","max_tokens":5,"system":[{"type":"text","text":"be\\u0000brief"}],' +
      '"messages":[{"role":"user","content":[{"type":"text","text":"x\\u0000y"}]}]}');
    assert.equal(res.status, 200, res.text);
    const sent = up.requests.at(-1).body.messages;
    assert.equal(sent[0].content, 'be\u0000brief');
    assert.equal(JSON.stringify(sent.at(-1).content).includes('x\\u0000y'), true, JSON.stringify(sent));
  });

  test('what we echo is valid UTF-8: a model name with 0xFF, an upstream\'s bytes', async () => {
    let res = await chat(stack, Buffer.concat([Buffer.from('{"model":"nope'), Buffer.from([0xff]),
      Buffer.from('","messages":[{"role":"user","content":"hi"}]}')]));
    assert.ok(res.status >= 400 && res.status < 500, res.text);
    assert.ok(validUtf8(res.raw), `invalid UTF-8 in ${res.raw.toString('latin1')}`);
    assert.match(res.json.error.message, /nope\uFFFD/);
    up.enqueue({ status: 502, headers: { 'content-type': 'text/plain' },
      body: Buffer.concat([Buffer.from('bad '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(' gateway')]) });
    res = await chat(stack, '{"model":"plain","messages":[{"role":"user","content":"hi"}]}');
    assert.ok(res.status >= 500, res.text);
    assert.ok(validUtf8(res.raw), `invalid UTF-8 in ${res.raw.toString('latin1')}`);
    h.assertOpenAIError(assert, res, res.status, {});
  });

  test('75k client tools in one body are answered', async (t) => {
    const tools = Array.from({ length: 75000 }, (_, i) => ({ type: 'function', function: { name: `t${i}` } }));
    tools.push({ type: 'function', function: { name: 't0' } });   // a duplicate, placed last
    const body = JSON.stringify({ model: 'tooled', messages: [{ role: 'user', content: 'hi' }], tools });
    up.enqueue({ json: h.completion({ content: 'ok' }) });
    const cpu0 = responderCpu(stack);
    const res = await chat(stack, body);
    t.diagnostic(`body ${body.length} bytes; responder CPU ${(responderCpu(stack) - cpu0).toFixed(2)} s`);
    assert.ok(res.status === 200 || res.status === 400, `${res.status}: ${res.text.slice(0, 300)}`);
    if (res.status === 400) h.assertOpenAIError(assert, res, 400, {});
  });
});

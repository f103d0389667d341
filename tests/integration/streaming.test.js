'use strict';
// Issue 4: stream:true through nginx, unbuffered, one response lifecycle,
// errors before and after the first byte, client hang-up, tool rounds.
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
    description: the C demo MCP server
assistants:
  - name: helper
    backend: fake
    model: up-model-1
    system_prompt: You are the helper.
  - name: tooly
    backend: fake
    model: up-model-2
    mcp_servers: [demo]
`;

const USER = [{ role: 'user', content: 'hello' }];

// Asserts every chunk is a valid chat.completion.chunk of one stream;
// returns the chunks.
function assertChunkSchema(s, model) {
  assert.equal(s.status, 200, s.text);
  assert.match(s.headers['content-type'] || '', /text\/event-stream/);
  assert.ok(s.done, 'the stream ends with data: [DONE]');
  assert.equal(s.events[s.events.length - 1].data, '[DONE]', '[DONE] is the last event');
  const chunks = h.chunksOf(s);
  assert.equal(chunks.length, s.events.length - 1, 'every event but [DONE] is JSON');
  assert.ok(chunks.length >= 2);
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1, `one id for the whole stream, saw ${[...ids]}`);
  let finishedAt = -1;
  chunks.forEach((c, i) => {
    assert.equal(typeof c.id, 'string');
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(typeof c.created, 'number');
    assert.equal(c.model, model);
    assert.ok(Array.isArray(c.choices), `chunk ${i} has no choices array`);
    for (const ch of c.choices) {
      assert.equal(ch.index, 0);
      assert.ok(ch.delta && typeof ch.delta === 'object', `chunk ${i} has no delta`);
      assert.ok('finish_reason' in ch, `chunk ${i} has no finish_reason`);
      if (ch.finish_reason !== null) {
        assert.equal(finishedAt, -1, 'only one chunk carries a finish_reason');
        finishedAt = i;
      }
      assert.equal(ch.delta.tool_calls, undefined, 'internal tool rounds never reach the client');
    }
  });
  assert.ok(finishedAt >= 0, 'a last chunk carries finish_reason');
  // After the finish chunk only a usage chunk (choices: []) may follow.
  for (const c of chunks.slice(finishedAt + 1)) assert.deepEqual(c.choices, []);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant', 'the first chunk has role assistant');
  return chunks;
}

describe('streaming', () => {
  let up;
  let stack;
  let client;

  before(async () => {
    up = await h.fakeUpstream();
    stack = await h.startStack({ config: CONFIG, upstream: up });
    client = stack.openai();
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  const url = () => `${stack.baseURL}/chat/completions`;

  test('the openai client assembles the same text streaming and not', async () => {
    const parts = ['Hello', ' world', ', streamed', ' answer.'];
    up.enqueue({ json: h.completion({ content: parts.join('') }) });
    up.enqueue({ sse: h.textChunks(parts) });
    const plain = await client.chat.completions.create({ model: 'helper', messages: USER });
    const before = up.requests.length;
    const stream = await client.chat.completions.create({ model: 'helper', messages: USER, stream: true });
    let text = '';
    let last;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content || '';
      if (c.choices[0]?.finish_reason) last = c.choices[0].finish_reason;
    }
    assert.equal(text, plain.choices[0].message.content);
    assert.equal(last, 'stop');
    const rq = up.requests[before];
    assert.equal(rq.body.stream, true, 'the upstream is called with streaming on');
    assert.equal(rq.body.messages[0].role, 'system', 'system prompt injected when streaming too');
  });

  test('chunk schema: one id, finish_reason null until the last, [DONE]', async () => {
    // Upstream SSE with the awkward parts: comments, keep-alives, \r\n line
    // ends, two events in one write, one event split over two writes.
    const ch = h.textChunks(['one ', 'two ', 'three ', 'four']);
    const ev = (c) => `data: ${JSON.stringify(c)}\n\n`;
    const split = ev(ch[2]);
    up.enqueue({ sse: [
      ': this is a comment\n\n',
      ev(ch[0]),
      `data: ${JSON.stringify(ch[1])}\r\n\r\n`,
      ': keep-alive\n\n',
      split.slice(0, 17),
      split.slice(17) + ev(ch[3]).replace(/\n/g, '\r\n'),
      ev(ch[4]) + ev(ch[5]),
    ], delayMs: 5 });
    const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true });
    assertChunkSchema(s, 'helper');
    assert.equal(h.contentOf(s), 'one two three four');
    assert.match(s.headers['cache-control'] || '', /no-cache/);
  });

  test('include_usage: a last chunk with choices [] and the usage', async () => {
    const usage = { prompt_tokens: 31, completion_tokens: 4, total_tokens: 35 };
    up.enqueue({ sse: h.textChunks(['a', 'b'], { usage }) });
    const s = await h.sseRequest(url(), {
      model: 'helper', messages: USER, stream: true, stream_options: { include_usage: true },
    });
    const chunks = assertChunkSchema(s, 'helper');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage, 'the last chunk carries usage');
    assert.equal(last.usage.prompt_tokens, usage.prompt_tokens);
    assert.equal(last.usage.completion_tokens, usage.completion_tokens);
    assert.equal(last.usage.total_tokens, usage.total_tokens);
    assert.equal(h.contentOf(s), 'ab');
  });

  test('each chunk reaches the client before the upstream sends the next one', async () => {
    const parts = ['first', ' second', ' third', ' fourth'];
    up.enqueue({ sse: h.textChunks(parts), delayMs: 150 });
    const before = up.requests.length;
    const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true });
    assertChunkSchema(s, 'helper');
    const rec = up.requests[before];
    // rec.sent[i] is when the upstream wrote event i (role chunk = 0, the
    // parts are 1..4); times are on the same clock as the client's.
    const firstContent = s.events.find((e) => e.json && e.json.choices[0]?.delta?.content);
    assert.ok(firstContent, 'a content chunk arrived');
    assert.ok(firstContent.at < rec.sent[2],
              `first content chunk arrived ${(firstContent.at - rec.sent[1]).toFixed(1)} ms after ` +
              `the upstream sent it, after the upstream had already sent the next one`);
    assert.ok(firstContent.at < rec.finishedAt, 'content arrived before the upstream finished');
  });

  test('a client that hangs up after the first chunk closes the upstream transfer', async () => {
    const parts = Array.from({ length: 100 }, (_, i) => `p${i} `);
    up.enqueue({ sse: h.textChunks(parts), delayMs: 100 });
    const before = up.requests.length;
    const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true },
      { stopWhen: (ev) => !!(ev.json && ev.json.choices[0]?.delta?.content) });
    assert.ok(s.stopped, 'we hung up after the first content chunk');
    const rec = up.requests[before];
    await up.waitClosed(rec, 15000);
    assert.ok(rec.aborted, 'the upstream connection closed before the answer was complete');
    assert.ok(rec.sent.length < parts.length, 'the upstream did not have to send everything');
    up.enqueue({ json: h.completion({ content: 'next one works' }) });
    const res = await client.chat.completions.create({ model: 'helper', messages: USER });
    assert.equal(res.choices[0].message.content, 'next one works');
  });

  // The upstream sends the role chunk and two content chunks, waits until the
  // client has seen content (so the stream has surely started), then fails.
  const failAfterClientSawContent = (flag, fail) => async (rec, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const c of h.textChunks(['partial ', 'answer ']).slice(0, 3)) {
      res.write(`data: ${JSON.stringify(c)}\n\n`);
    }
    await h.waitFor(() => flag.seen, { timeoutMs: 15000, what: 'the client to receive content' });
    fail(res);
  };
  for (const [what, fail] of [
    ['upstream drops the connection', (res) => res.socket.destroy()],
    ['upstream sends invalid data', (res) => res.end('data: {this is not json\n\n')],
  ]) {
    // Issue 13: an error after the stream started is OpenAI's own error event
    // (data: {"error":{...}}), which the SDKs raise; nothing follows it, so no
    // client takes the cut answer for a finished one (it used to be an
    // "[aiproxy error]" content chunk and [DONE], which the SDK swallowed).
    test(`error mid-stream (${what}) ends the stream with an error event the SDK raises`, async () => {
      let flag = { seen: false };
      up.enqueue(failAfterClientSawContent(flag, fail));
      const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true }, {
        stopWhen: (ev) => { if (ev.json && ev.json.choices?.[0]?.delta?.content) flag.seen = true; return false; },
      });
      assert.equal(s.status, 200, s.text);
      assert.equal(s.done, false, 'no [DONE] after an error');
      const last = s.events.at(-1).json;
      assert.ok(last.error && typeof last.error.message === 'string', JSON.stringify(last));
      assert.equal(last.error.type, 'api_error');
      const chunks = h.chunksOf(s).slice(0, -1);
      assert.ok(chunks.every((c) => c.choices[0].finish_reason === null), 'no finish_reason');
      assert.ok(h.contentOf({ events: s.events.slice(0, -1) }).startsWith('partial answer '));
      // and through the SDK: the content, then an APIError
      flag = { seen: false };
      up.enqueue(failAfterClientSawContent(flag, fail));
      const stream = await client.chat.completions.create({ model: 'helper', messages: USER, stream: true });
      let sdkText = '';
      await assert.rejects(async () => {
        for await (const c of stream) {
          const d = c.choices[0]?.delta?.content;
          if (d) { sdkText += d; flag.seen = true; }
        }
      }, (e) => e instanceof OpenAI.APIError && e.type === 'api_error' && e.message.length > 0);
      assert.equal(sdkText, 'partial answer ');
    });
  }

  test('an error before the stream starts is an ordinary HTTP error; an upstream refusal after it an error event', async () => {
    const r404 = await h.sseRequest(url(), { model: 'nobody', messages: USER, stream: true });
    assert.equal(r404.status, 404);
    assert.ok(JSON.parse(r404.text).error);
    // the stream starts once the request is accepted (issue 13), before the
    // upstream answers: its 429 is then the stream's error event
    up.enqueue({ status: 429, json: h.errorBody('Rate limit reached: stream-429', 'rate_limit_error') });
    const s = await h.sseRequest(url(), { model: 'helper', messages: USER, stream: true });
    assert.equal(s.status, 200, s.text);
    assert.match(s.events.at(-1).json.error.message, /stream-429/);
    assert.equal(s.events.at(-1).json.error.type, 'rate_limit_error');
    up.enqueue({ status: 500, json: h.errorBody('boom: stream-500', 'server_error') });
    const stream = await client.chat.completions.create({ model: 'helper', messages: USER, stream: true });
    await assert.rejects(async () => { for await (const c of stream) void c; },
                         (err) => err instanceof OpenAI.APIError && /stream-500/.test(err.message));
  });

  test('two tool rounds inside one stream: same text as non-streaming, one lifecycle', async () => {
    // The upstream asks for add(2,3), then uppercase("abc"), then answers
    // with what the tools returned. Tools are found by name suffix in the
    // tools offered to it.
    const script = (streaming) => async (rec) => {
      const tools = (rec.body.tools || []).map((t) => t.function.name);
      const find = (suffix) => tools.find((n) => n.endsWith(suffix));
      const msgs = rec.body.messages;
      const results = msgs.filter((m) => m.role === 'tool').map((m) =>
        (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)));
      let calls = null;
      if (results.length === 0) calls = [{ name: find('add'), arguments: { a: 2, b: 3 } }];
      else if (results.length === 1) calls = [{ name: find('uppercase'), arguments: { text: 'abc' } }];
      if (calls) {
        if (calls.some((c) => !c.name)) return { status: 400, json: h.errorBody(`tools offered: ${tools}`) };
        return streaming ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) };
      }
      const answer = `sum=${/5/.test(results[0]) ? 5 : '?'} upper=${/ABC/.test(results[1]) ? 'ABC' : '?'}`;
      return streaming ? { sse: h.textChunks(['sum=', answer.slice(4, 5), answer.slice(5)]) }
                       : { json: h.completion({ content: answer }) };
    };
    up.handle(script(false));
    let plain;
    try {
      plain = await client.chat.completions.create({ model: 'tooly', messages: USER });
    } finally { up.handle(null); }
    assert.equal(plain.choices[0].message.content, 'sum=5 upper=ABC');

    const before = up.requests.length;
    up.handle(script(true));
    let s;
    try {
      s = await h.sseRequest(url(), { model: 'tooly', messages: USER, stream: true });
    } finally { up.handle(null); }
    assertChunkSchema(s, 'tooly');
    assert.equal(h.contentOf(s), plain.choices[0].message.content);
    assert.equal(up.requests.length - before, 3, 'three upstream turns');
    for (const rq of up.requests.slice(before)) assert.equal(rq.body.stream, true);
  });
});

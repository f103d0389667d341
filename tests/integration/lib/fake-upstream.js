'use strict';
// fakeUpstream(): a scripted OpenAI-compatible server on 127.0.0.1:PORT.
//
//   const up = await fakeUpstream();
//   up.enqueue({ json: completion({ content: 'hi' }) });        // next request
//   up.enqueue({ sse: textChunks(['Hel', 'lo']), delayMs: 200 }); // the one after
//   up.handle((rec, res) => ({ status: 500, json: errorBody('boom') })); // when queue is empty
//   ... up.requests[0].body.messages ...
//   await up.close();
//
// Scripts (served in order; a function gets (rec, res) and returns a script or
// answers itself on `res` and returns undefined):
//   {status=200, json, headers}          JSON answer
//   {status=200, body, headers}          raw body (string/Buffer), for garbage
//   {sse: [ev...], delayMs=0, done=true, closeAfter, hangAfter, firstDelayMs}
//        each ev: object -> "data: JSON\n\n"; string -> written as is (so
//        ": keep-alive\n\n" or "event: x\ndata: y\r\n\r\n" are possible);
//        then "data: [DONE]\n\n" unless done=false; closeAfter=n destroys the
//        socket after n events; hangAfter=n stops writing after n events.
//   {sse: [ev...], cut: n}                a stream that just stops: the first n
//        events, then a clean end of the response (no [DONE], and no
//        finish_reason or message_stop unless the events carry one)
//   {status, json|body, cut: n}           a whole answer cut: the full
//        Content-Length, the first n bytes of the body, then the connection
//        closes
//   {hang: true}                          never answers (until close())
//   {destroy: true}                       closes the connection at once
//   {delayMs, ...other}                   waits before answering
// Every request is recorded in up.requests as rec = {method, url, path,
// headers, raw, body (parsed JSON or null), at, sent: [times of each SSE
// event write], finishedAt, closedAt, aborted (client closed before we
// finished)}. Times are performance.now() milliseconds.
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { waitFor } = require('./util');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fakeUpstream({ record = true, port = 0 } = {}) {
  const queue = [];
  let fallback = null;
  const requests = [];
  const sockets = new Set();
  const waiters = [];

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => serve(req, res, Buffer.concat(chunks)));
  });
  server.keepAliveTimeout = 60000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function serve(req, res, raw) {
    const rec = {
      method: req.method, url: req.url, path: req.url.split('?')[0], headers: req.headers,
      raw: null, body: null, at: performance.now(), sent: [], finishedAt: null,
      closedAt: null, aborted: false,
    };
    if (record) {
      rec.raw = raw.toString('utf8');
      try { rec.body = JSON.parse(rec.raw); } catch (_) { rec.body = null; }
      requests.push(rec);
      for (const w of waiters.splice(0)) w();
    }
    res.on('close', () => {
      rec.closedAt = performance.now();
      if (!res.writableFinished) rec.aborted = true;
    });
    let script = queue.length ? queue.shift() : fallback;
    if (!script) {
      script = { status: 500, json: errorBody('fake upstream: no scripted response left', 'server_error') };
    }
    try {
      if (typeof script === 'function') {
        script = await script(rec, res);
        if (script === undefined) return; // answered by the function
      }
      await answer(script, rec, res);
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(errorBody(`fake upstream script failed: ${e.message}`)));
      } else {
        res.destroy();
      }
    }
  }

  async function answer(s, rec, res) {
    if (s.delayMs && !s.sse) await sleep(s.delayMs);
    if (s.hang) return; // the socket stays open until the client or close() ends it
    if (s.destroy) { res.socket.destroy(); return; }
    const headers = { ...(s.headers || {}) };
    if (s.sse) {
      res.writeHead(s.status || 200, {
        'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers,
      });
      res.flushHeaders();
      const evs = s.sse.map((ev) => (typeof ev === 'string' ? ev : `data: ${JSON.stringify(ev)}\n\n`));
      if (s.done !== false && s.cut === undefined) evs.push('data: [DONE]\n\n');
      if (s.cut !== undefined) evs.splice(s.cut);
      for (let i = 0; i < evs.length; i++) {
        if (s.closeAfter !== undefined && i >= s.closeAfter) { res.socket.destroy(); return; }
        if (s.hangAfter !== undefined && i >= s.hangAfter) return;
        const wait = i === 0 ? (s.firstDelayMs || 0) : (s.delayMs || 0);
        if (wait) await sleep(wait);
        if (res.destroyed || rec.closedAt !== null) return; // client went away
        res.write(evs[i]);
        rec.sent.push(performance.now());
      }
      res.end();
      rec.finishedAt = performance.now();
      return;
    }
    let body = s.body;
    if (s.json !== undefined) {
      body = JSON.stringify(s.json);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/json';
      }
    }
    if (body === undefined) body = '';
    headers['content-length'] = Buffer.byteLength(body);
    res.writeHead(s.status || 200, headers);
    if (s.cut !== undefined) {
      res.write(Buffer.from(body).subarray(0, s.cut));
      rec.sent.push(performance.now());
      await new Promise((r) => res.write('', r));   // flushed before the close
      res.socket.destroy();
      return;
    }
    res.end(body);
    rec.sent.push(performance.now());
    rec.finishedAt = performance.now();
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const addr = server.address();
  const url = `http://127.0.0.1:${addr.port}`;

  return {
    port: addr.port,
    url,
    baseURL: `${url}/v1`,
    requests,
    enqueue(...scripts) { queue.push(...scripts); return this; },
    handle(fn) { fallback = fn; return this; },
    pending() { return queue.length; },
    // Waits until n requests were received (bounded).
    async waitRequests(n, timeoutMs = 10000) {
      await waitFor(() => requests.length >= n, { timeoutMs, what: `${n} upstream request(s)` });
      return requests[n - 1];
    },
    // Waits until the connection of `rec` was closed (bounded); returns rec.
    async waitClosed(rec, timeoutMs = 10000) {
      await waitFor(() => rec.closedAt !== null, { timeoutMs, what: `upstream request ${rec.url} to be closed` });
      return rec;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(() => r()));
    },
  };
}

// ---- builders for OpenAI-shaped answers ----

let seq = 0;
const newId = (p) => `${p}-fake${++seq}`;

// A chat.completion. tool_calls: [{id, name, arguments (object or string)}].
function completion({ content = 'Hello from upstream', model = 'up-model', usage,
                      tool_calls, finish_reason, id } = {}) {
  const msg = { role: 'assistant', content: tool_calls ? null : content };
  if (tool_calls) msg.tool_calls = tool_calls.map(toolCall);
  return {
    id: id || newId('chatcmpl'),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: msg, logprobs: null,
                finish_reason: finish_reason || (tool_calls ? 'tool_calls' : 'stop') }],
    usage: usage || { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  };
}

function toolCall({ id, name, arguments: args = {} }) {
  return { id: id || newId('call'), type: 'function',
           function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
}

// One chat.completion.chunk with the given delta.
function chunk(delta, { finish_reason = null, model = 'up-model', id = 'chatcmpl-fakestream',
                        usage } = {}) {
  const c = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model,
              choices: [{ index: 0, delta, logprobs: null, finish_reason }] };
  if (usage !== undefined) c.usage = usage;
  return c;
}

// Chunks for a streamed text answer: role chunk, one chunk per part, a final
// chunk with finish_reason; with usage, a last chunk with choices [] and usage.
function textChunks(parts, { usage, model, id } = {}) {
  const o = { model, id };
  const out = [chunk({ role: 'assistant', content: '' }, o)];
  for (const p of parts) out.push(chunk({ content: p }, o));
  out.push(chunk({}, { ...o, finish_reason: 'stop' }));
  if (usage) out.push({ ...chunk({}, o), choices: [], usage });
  return out;
}

// Chunks for a streamed tool-call answer; each call's arguments are split in
// two pieces to exercise accumulation by index.
function toolCallChunks(calls, { model, id } = {}) {
  const o = { model, id };
  const out = [chunk({ role: 'assistant', content: null }, o)];
  calls.forEach((c, index) => {
    const tc = toolCall(c);
    const a = tc.function.arguments;
    const half = Math.floor(a.length / 2);
    out.push(chunk({ tool_calls: [{ index, id: tc.id, type: 'function',
                                    function: { name: tc.function.name, arguments: a.slice(0, half) } }] }, o));
    out.push(chunk({ tool_calls: [{ index, function: { arguments: a.slice(half) } }] }, o));
  });
  out.push(chunk({}, { ...o, finish_reason: 'tool_calls' }));
  return out;
}

// OpenAI's error body.
function errorBody(message, type = 'invalid_request_error', code = null, param = null) {
  return { error: { message, type, param, code } };
}

module.exports = { fakeUpstream, completion, toolCall, chunk, textChunks, toolCallChunks, errorBody };

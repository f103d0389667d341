'use strict';
// A raw SSE client for streaming tests: sees every event and when it arrived,
// which the SDK hides.
//
//   const s = await sseRequest(`${stack.baseURL}/chat/completions`, body,
//                              { stopWhen: (ev, all) => ev.json && ... });
//   s.status, s.headers, s.events = [{data, json, at}], s.done (saw [DONE]),
//   s.stopped (we hung up because stopWhen returned true), s.text (raw body
//   when the answer was not an event stream).
const http = require('node:http');
const { performance } = require('node:perf_hooks');

function sseRequest(url, body, { headers = {}, stopWhen, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    const out = { status: 0, headers: {}, events: [], done: false, stopped: false, text: '',
                  firstByteAt: null, endAt: null };
    let buf = '';
    let finished = false;
    const finish = (err) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      out.endAt = performance.now();
      if (err) reject(err); else resolve(out);
    };
    const req = http.request(url, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    }, (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      const isSSE = /text\/event-stream/.test(res.headers['content-type'] || '');
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (out.firstByteAt === null) out.firstByteAt = performance.now();
        out.text += d;
        if (!isSSE) return;
        buf += d;
        const at = performance.now();
        for (;;) {
          const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
          if (!m) break;
          const block = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          const data = block.split(/\r\n|\n|\r/)
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, ''))
            .join('\n');
          if (!block.split(/\r\n|\n|\r/).some((l) => l.startsWith('data:'))) continue; // comment
          const ev = { data, json: null, at };
          if (data === '[DONE]') out.done = true;
          else { try { ev.json = JSON.parse(data); } catch (_) { /* kept raw */ } }
          out.events.push(ev);
          if (stopWhen && stopWhen(ev, out.events)) {
            out.stopped = true;
            req.destroy();
            finish();
            return;
          }
        }
      });
      res.on('end', () => finish());
      res.on('error', (e) => (out.stopped ? finish() : finish(e)));
      res.on('close', () => finish());
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(new Error(`stream from ${url} did not end within ${timeoutMs} ms ` +
                       `(${out.events.length} events so far)`));
    }, timeoutMs);
    req.on('error', (e) => (out.stopped ? finish() : finish(e)));
    req.end(payload);
  });
}

// The chunks (parsed JSON events) of a stream, without [DONE].
const chunksOf = (s) => s.events.filter((e) => e.json).map((e) => e.json);

// The assembled content of a stream's chunks.
function contentOf(s) {
  return chunksOf(s).map((c) => (c.choices || []).map((ch) => (ch.delta && ch.delta.content) || '').join('')).join('');
}

module.exports = { sseRequest, chunksOf, contentOf };

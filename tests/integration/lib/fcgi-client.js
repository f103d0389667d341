'use strict';
// A minimal FastCGI client straight to the responders' socket, bypassing the
// web server: to see what the responder itself does with a request whose body
// has not (all) arrived, which a buffering web server would hide.
const net = require('node:net');

const BEGIN = 1;
const PARAMS = 4;
const STDIN = 5;
const STDOUT = 6;
const END = 3;

function record(type, content) {
  const pad = (8 - (content.length % 8)) % 8;
  const h = Buffer.from([1, type, 0, 1, content.length >> 8, content.length & 0xff, pad, 0]);
  return Buffer.concat([h, content, Buffer.alloc(pad)]);
}

function nvLen(n) {
  if (n < 128) return Buffer.from([n]);
  return Buffer.from([((n >> 24) & 0x7f) | 0x80, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

function params(obj) {
  const parts = [];
  for (const [k, v] of Object.entries(obj)) {
    const kb = Buffer.from(k);
    const vb = Buffer.from(String(v));
    parts.push(nvLen(kb.length), nvLen(vb.length), kb, vb);
  }
  return Buffer.concat(parts);
}

// fcgiOpen(socketPath, params) → {stdout: Promise<{status, headers, body,
// json}> (resolves at END_REQUEST), write(buf) → Promise (flushed),
// endStdin(), again(params, body) → Promise (the next request on the same
// connection), destroy()}.
// Sends BEGIN_REQUEST (responder, keep-alive) and the params at once; the
// body goes in with write() and endStdin(), when the test chooses.
function fcgiOpen(socketPath, p) {
  const sock = net.createConnection(socketPath);
  let buf = Buffer.alloc(0);
  const out = [];
  let answered;             // resolves the answer being read
  let failed;
  const stdout = new Promise((resolve, reject) => {
    answered = resolve;
    failed = reject;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 8) {
        const len = (buf[4] << 8) | buf[5];
        const total = 8 + len + buf[6];
        if (buf.length < total) break;
        const type = buf[1];
        const content = buf.subarray(8, 8 + len);
        buf = buf.subarray(total);
        if (type === STDOUT) out.push(content);
        if (type === END) {
          const text = Buffer.concat(out).toString('utf8');
          const sep = text.indexOf('\r\n\r\n');
          const head = sep >= 0 ? text.slice(0, sep) : text;
          const headers = {};
          for (const line of head.split('\r\n')) {
            const i = line.indexOf(':');
            if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
          }
          const status = Number((headers.status || '200').split(' ')[0]);
          const body = sep >= 0 ? text.slice(sep + 4) : '';
          let json = null;
          try { json = JSON.parse(body); } catch (_) { /* not JSON */ }
          out.length = 0;
          answered({ status, headers, body, json });
        }
      }
    });
    sock.on('error', (e) => failed(e));
    sock.on('close', () => failed(new Error('FastCGI connection closed before END_REQUEST')));
  });
  stdout.catch(() => {});
  sock.write(Buffer.concat([
    record(BEGIN, Buffer.from([0, 1, 1, 0, 0, 0, 0, 0])),   // role responder, keep conn
    record(PARAMS, params(p)), record(PARAMS, Buffer.alloc(0)),
  ]));
  return {
    stdout,
    // resolves once the record is handed to the kernel (connected and written)
    write: (b) => new Promise((resolve) => sock.write(record(STDIN, Buffer.from(b)), () => resolve())),
    endStdin: () => sock.write(record(STDIN, Buffer.alloc(0))),
    destroy: () => sock.destroy(),
    // another whole request (params, then the body and its end) on the same
    // kept connection, after the previous answer: resolves like stdout
    again: (p2, body = '') => {
      const next = new Promise((resolve, reject) => { answered = resolve; failed = reject; });
      next.catch(() => {});
      const recs = [record(BEGIN, Buffer.from([0, 1, 1, 0, 0, 0, 0, 0])),
        record(PARAMS, params(p2)), record(PARAMS, Buffer.alloc(0))];
      if (body) recs.push(record(STDIN, Buffer.from(body)));
      recs.push(record(STDIN, Buffer.alloc(0)));
      sock.write(Buffer.concat(recs));
      return next;
    },
    closed: () => new Promise((resolve) => (sock.destroyed ? resolve() : sock.once('close', resolve))),
  };
}

module.exports = { fcgiOpen };

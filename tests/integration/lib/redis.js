'use strict';
// A one-shot Redis command over the stack's unix socket (RESP2), for tests
// that look at or poke the registry: await redisCommand(sock, 'GET', 'k').
// Replies: string, number, null, array; an error reply rejects.
const net = require('node:net');

// Parses one reply from Buffer `buf` at byte offset i: {v, end} or null when
// incomplete.
function parse(buf, i) {
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.subarray(i + 1, nl).toString('utf8');
  const next = nl + 2;
  switch (type) {
    case '+': return { v: line, end: next };
    case '-': return { v: new Error(line), end: next };
    case ':': return { v: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { v: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { v: buf.subarray(next, next + n).toString('utf8'), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { v: null, end: next };
      const arr = [];
      let at = next;
      for (let k = 0; k < n; k++) {
        const r = parse(buf, at);
        if (!r) return null;
        arr.push(r.v);
        at = r.end;
      }
      return { v: arr, end: at };
    }
    default: throw new Error(`redis: bad reply byte ${JSON.stringify(type)}`);
  }
}

function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) { const s = String(a); out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`; }
  return out;
}

// `sock` is a unix socket path, or {host, port[, password]} (TCP; with a
// password the command is preceded by AUTH, whose reply is skipped).
function redisCommand(sock, ...args) {
  return new Promise((resolve, reject) => {
    const password = typeof sock === 'object' ? sock.password : undefined;
    const c = net.createConnection(typeof sock === 'object' ? { host: sock.host || '127.0.0.1', port: sock.port } : sock);
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { c.destroy(); reject(new Error(`redis ${args[0]}: timeout`)); }, 5000);
    c.on('connect', () => {
      c.write((password ? encode(['AUTH', password]) : '') + encode(args));
    });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let r;
      try {
        r = parse(buf, 0);
        if (r && password) r = parse(buf, r.end);
      } catch (e) { clearTimeout(t); c.destroy(); reject(e); return; }
      if (!r) return;
      clearTimeout(t);
      c.destroy();
      if (r.v instanceof Error) reject(r.v); else resolve(r.v);
    });
    c.on('error', (e) => { clearTimeout(t); reject(e); });
  });
}

// SUBSCRIBE to `channel` over `sock`: resolves, once Redis confirmed the
// subscription, to {messages, close()}; messages collects each message's
// text in arrival order. The caller closes it.
function redisSubscribe(sock, channel) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    const messages = [];
    let buf = Buffer.alloc(0), subscribed = false;
    const t = setTimeout(() => { c.destroy(); reject(new Error(`redis SUBSCRIBE ${channel}: timeout`)); }, 5000);
    c.on('connect', () => {
      c.write(`*2\r\n$9\r\nSUBSCRIBE\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`);
    });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        let r;
        try { r = parse(buf, 0); } catch (e) { c.destroy(); reject(e); return; }
        if (!r) return;
        buf = buf.subarray(r.end);
        if (Array.isArray(r.v) && r.v[0] === 'message') messages.push(r.v[2]);
        if (Array.isArray(r.v) && r.v[0] === 'subscribe' && !subscribed) {
          subscribed = true;
          clearTimeout(t);
          resolve({ messages, close: () => c.destroy() });
        }
      }
    });
    c.on('error', (e) => { clearTimeout(t); if (!subscribed) reject(e); });
  });
}

module.exports = { redisCommand, redisSubscribe };

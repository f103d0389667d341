'use strict';
// Raw HTTP helpers for error cases the SDK would hide: request() with node's
// http client, curl() through the real curl binary.
const http = require('node:http');
const { execFile } = require('node:child_process');

// request(url, {method, headers, body (string|Buffer|object→JSON), timeoutMs})
// → {status, headers, text, json (parsed or null), raw (the body's bytes)}.
function request(url, { method = 'GET', headers = {}, body, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    let payload = body;
    const h = { ...headers };
    if (payload !== undefined && typeof payload === 'object' && !Buffer.isBuffer(payload)) {
      payload = JSON.stringify(payload);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    }
    const req = http.request(url, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, raw });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request to ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// curl(args) runs `curl -sS <args>` and appends the status code; resolves
// {status, text, json, stderr}. Example: curl(['-X', 'POST', '--data', 'x', url]).
function curl(args, { timeoutMs = 30000 } = {}) {
  const marker = '\n__HTTP_STATUS__';
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)),
                      '-w', `${marker}%{http_code}`, ...args],
             { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf(marker);
      if (i < 0) { reject(err || new Error(`curl printed no status: ${stderr}`)); return; }
      const text = stdout.slice(0, i);
      const status = Number(stdout.slice(i + marker.length));
      let json = null;
      try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
      resolve({ status, text, json, stderr });
    });
  });
}

// Asserts an OpenAI-shaped error body; returns the error object.
function assertOpenAIError(assert, res, status, { type, messageMatch } = {}) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${res.text}`);
  const e = res.json.error;
  assert.ok(e && typeof e === 'object', `no "error" object in ${res.text}`);
  for (const k of ['message', 'type', 'param', 'code']) {
    assert.ok(k in e, `error.${k} missing in ${res.text}`);
  }
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, 'error.message is empty');
  assert.equal(typeof e.type, 'string');
  if (type) assert.equal(e.type, type, `error.type for ${status}`);
  if (messageMatch) assert.match(e.message, messageMatch);
  return e;
}

module.exports = { request, curl, assertOpenAIError };

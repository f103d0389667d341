'use strict';
// Whatever a client sends, the responder answers with a clear OpenAI-shaped
// error (or a real answer) and never crashes, hangs or leaks: a few hundred
// malformed requests from a fixed seed (so a failure replays the same way)
// through nginx into the sanitizer-built responders; stop() then fails the
// test on any ASan/UBSan/LSan report or crash.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./lib');

const SEED = 20261125;
const ROUNDS = 300;

// mulberry32: small, deterministic PRNG.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID = { model: 'helper', messages: [{ role: 'user', content: 'hi' }] };

// Each maker returns a body (string or Buffer) that must NOT be a valid
// request, so the answer must be a 4xx before any upstream call.
function makers(r) {
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const junk = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
  const deep = (n, open, close) => open.repeat(n) + close.repeat(n);
  const s = JSON.stringify(VALID);
  return [
    () => junk(1 + Math.floor(r() * 200)),
    () => s.slice(0, Math.floor(r() * (s.length - 1))),                  // truncated JSON
    () => deep(10 + Math.floor(r() * 5000), '[', ']'),
    () => `{"model":"helper","messages":${deep(200 + Math.floor(r() * 3000), '[', ']')}}`,
    () => JSON.stringify({ ...VALID, model: pick([null, 1, [], {}, true, '']) }),
    () => JSON.stringify({ ...VALID, messages: pick([null, 'x', {}, [], [1], [null], [{}], [{ role: 7 }],
      [{ role: 'wizard', content: 'x' }], [{ role: 'user', content: 5 }]]) }),
    () => JSON.stringify({ ...VALID, stream: pick(['yes', 1, {}, []]) }),
    () => JSON.stringify({ ...VALID, temperature: pick(['hot', [], {}]) }),
    () => JSON.stringify({ ...VALID, max_tokens: pick([1.5, 'many', -0.5, {}]) }),
    () => JSON.stringify({ ...VALID, stop: pick([1, [1, 2], {}]) }),
    () => JSON.stringify({ ...VALID, tools: pick(['x', 1, {}]) }),
    () => JSON.stringify({ ...VALID, model: 'no-such-assistant-' + Math.floor(r() * 1e6) }),
    () => Buffer.concat([Buffer.from('{"model":"helper","messages":[{"role":"user","content":"'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x00, 0xa0]), Buffer.from('"}]}')]),
    () => s + s,                                                          // trailing junk
    () => '"' + 'a'.repeat(Math.floor(r() * 5000)),                     // unterminated string
    () => JSON.stringify(VALID).replace('}]', '}],"temperature":1e999999'),   // infinity has no JSON spelling
  ];
}

describe('hostile input never crashes a responder', () => {
  let up;
  let stack;
  before(async () => {
    up = await h.fakeUpstream();
    up.handle(() => ({ json: h.completion({ content: 'ok' }) }));
    stack = await h.startStack({
      config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, timeout: 10}
assistants:
  - {name: helper, backend: fake, model: m}
`,
      upstream: up, broker: false, threads: 4, env: { AIPROXY_MAX_BODY: '65536' },
    });
  });
  after(async () => {
    if (stack) await stack.stop();
    if (up) await up.close();
  });

  test(`${ROUNDS} malformed bodies: each a 4xx in OpenAI's shape, none reaches the upstream`, async () => {
    const r = rng(SEED);
    const make = makers(r);
    for (let i = 0; i < ROUNDS; i++) {
      const k = Math.floor(r() * make.length);
      const body = make[k]();
      const res = await h.request(`${stack.url}/v1/chat/completions`, {
        method: 'POST', body: Buffer.isBuffer(body) ? body : Buffer.from(body),
        headers: { 'content-type': pick(r, ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) },
      });
      assert.ok(res.status >= 400 && res.status < 500, `case ${k} round ${i}: status ${res.status}: ${res.text.slice(0, 200)}`);
      assert.ok(res.json && res.json.error && typeof res.json.error.message === 'string' &&
        'type' in res.json.error && 'param' in res.json.error && 'code' in res.json.error,
      `case ${k} round ${i}: not an OpenAI error: ${res.text.slice(0, 200)}`);
    }
    assert.equal(up.requests.length, 0, 'a malformed request reached the upstream');
    const ok = await stack.openai().chat.completions.create(VALID);
    assert.equal(ok.choices[0].message.content, 'ok');
  });

  test('odd methods, paths and query strings are answered, never dropped', async () => {
    const cases = [
      ['DELETE', '/v1/chat/completions', 405], ['PUT', '/v1/models', 405], ['PATCH', '/health', 405],
      ['GET', '/v1/../../etc/passwd', 404], ['GET', '/v1/models/' + 'x'.repeat(3000), 404],
      ['GET', '/v1/models?apikey=%zz%&&==&' + 'q='.repeat(200), 200], ['GET', '/%00', 404],
      ['GET', '/v1/models/%2e%2e%2f', 404], ['OPTIONS', '/v1/chat/completions', 405],
    ];
    for (const [method, path, want] of cases) {
      const res = await h.request(`${stack.url}${path}`, { method });
      if (want === 404 && res.status === 400) continue;   // nginx may refuse a path itself
      assert.equal(res.status, want, `${method} ${path.slice(0, 60)}: ${res.text.slice(0, 200)}`);
      if (want >= 400) h.assertOpenAIError(assert, res, want, {});
    }
  });

  test('a client that sends half a body and hangs up leaves the responders serving', async () => {
    const port = Number(new URL(stack.url).port);
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1', () => {
          sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            'Content-Length: 5000\r\n\r\n{"model":"helper","mess');
          sock.end();
          sock.destroy();
          resolve();
        });
        sock.on('error', resolve);
      });
    }
    // every thread must be free again: as many concurrent valid requests as threads
    const all = await Promise.all(Array.from({ length: 4 }, () => stack.openai().chat.completions.create(VALID)));
    for (const a of all) assert.equal(a.choices[0].message.content, 'ok');
  });
});

function pick(r, xs) {
  return xs[Math.floor(r() * xs.length)];
}

'use strict';
// Issue 12 item 8: the multi-threaded responder's paths at once — plain and
// streamed chats, tool rounds through the broker (plain and streamed), admin
// PUTs that bump the registry every thread reads, and SIGHUPs that re-open the
// log under them — against 2 workers x 32 threads. Under `make tsan` the
// responders are ThreadSanitizer builds and stack.stop() fails on any
// "WARNING: ThreadSanitizer" they printed; under the ASan run it is a plain
// concurrency test: every answer must still be the right one.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');

const ADMIN = 'admin-key-tsan-0123456789';
const KEY = 'sk-tsan-client';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo: {transport: stdio, command: \${MCP_DEMO}}
assistants:
  - {name: helper, backend: fake, model: up-model, mcp_servers: [demo]}
proxy_api_keys: [${KEY}]
`;

const lastUser = (body) => body.messages.filter((m) => m.role === 'user').at(-1).content;

// Answers by what the request holds, so any interleaving gets the right reply:
// tool results -> their text; "add A B" -> a demo__add call; else an echo.
function answer(rec) {
  const b = rec.body;
  const tools = b.messages.filter((m) => m.role === 'tool');
  const m = /^add (\d+) (\d+)$/.exec(lastUser(b));
  if (tools.length) {
    const text = `sum ${tools.map((t) => t.content).join(',')}`;
    return b.stream ? { sse: h.textChunks([text]) } : { json: h.completion({ content: text }) };
  }
  if (m) {
    const calls = [{ name: 'demo__add', arguments: { a: Number(m[1]), b: Number(m[2]) } }];
    return b.stream ? { sse: h.toolCallChunks(calls) } : { json: h.completion({ tool_calls: calls }) };
  }
  const text = `echo ${lastUser(b)}`;
  return b.stream ? { sse: h.textChunks(['echo ', lastUser(b)]), delayMs: 2 }
                  : { json: h.completion({ content: text }) };
}

describe('tsan: concurrent chats, streams, tool calls, admin writes and SIGHUP', () => {
  let up; let stack; let logPath;
  const auth = { authorization: `Bearer ${KEY}` };

  before(async () => {
    up = await h.fakeUpstream();
    up.handle(answer);
    logPath = path.join(h.mkTmpDir('tsan-log'), 'fcgi-file.log');
    stack = await h.startStack({
      config: CONFIG, upstream: up, workers: 2, threads: 32,
      fcgiArgs: ['--log', logPath],
      // 28 completions at once, however nginx spreads them, fit in one
      // worker's 32 - 4 reserved threads (no 503 overloaded), and a slow
      // (sanitized) thread must not turn a queued one into a 503 either
      env: { ADMIN_API_KEY: ADMIN, AIPROXY_QUEUE_WAIT_MS: '60000' },
    });
  });
  after(async () => {
    await stack?.stop();
    await up?.close();
    if (logPath && !process.env.AIPROXY_KEEP_TMP) fs.rmSync(path.dirname(logPath), { recursive: true, force: true });
  });

  const chat = (body) => h.request(`${stack.baseURL}/chat/completions`,
    { method: 'POST', headers: auth, body: { model: 'helper', ...body } });
  const stream = (content) => h.sseRequest(`${stack.baseURL}/chat/completions`,
    { model: 'helper', stream: true, messages: [{ role: 'user', content }] }, { headers: auth });
  const admin = (method, p, body) => h.request(`${stack.url}${p}`,
    { method, headers: { authorization: `Bearer ${ADMIN}` }, body });

  // Rotates the log (rename, SIGHUP to the master, which forwards it to the
  // workers) and waits until the responders write to the new file.
  async function rotate(n) {
    fs.renameSync(logPath, `${logPath}.${n}`);
    process.kill(stack.procs.fcgi.pid, 'SIGHUP');
    await h.waitFor(async () => {
      await h.request(`${stack.url}/health`);
      return fs.existsSync(logPath) && /GET \/health 200/.test(fs.readFileSync(logPath, 'utf8'));
    }, { timeoutMs: 20000, what: `a request logged in the re-opened ${logPath}` });
  }

  test('every answer is right while all of it runs at once', async () => {
    // one tool round first: the broker starts demo on first use
    const warm = await chat({ messages: [{ role: 'user', content: 'add 1 1' }] });
    assert.equal(warm.status, 200, warm.text);
    assert.equal(warm.json.choices[0].message.content, 'sum 2');
    const jobs = [];
    for (let i = 0; i < 8; i++) {
      jobs.push(chat({ messages: [{ role: 'user', content: `plain ${i}` }] }).then((r) => {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, `echo plain ${i}`);
      }));
      jobs.push(stream(`streamed ${i}`).then((s) => {
        assert.equal(s.status, 200);
        assert.ok(s.done, 'the stream ended with [DONE]');
        assert.equal(h.contentOf(s), `echo streamed ${i}`);
      }));
      jobs.push(chat({ messages: [{ role: 'user', content: `add ${i} ${i + 1}` }] }).then((r) => {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, `sum ${2 * i + 1}`);
      }));
    }
    for (let i = 0; i < 4; i++) {
      jobs.push(stream(`add ${10 * i} 5`).then((s) => {
        assert.equal(s.status, 200);
        assert.ok(s.done, 'the stream ended with [DONE]');
        assert.equal(h.contentOf(s), `sum ${10 * i + 5}`);
      }));
    }
    // admin writes bump the registry version every thread reloads from
    jobs.push((async () => {
      for (let i = 0; i < 6; i++) {
        const r = await admin('PUT', `/admin/assistants/extra-${i}`,
          { backend: 'fake', model: `m-${i}`, system_prompt: `extra ${i}` });
        assert.equal(r.status, 201, r.text);
        const g = await admin('GET', '/admin/config');
        assert.equal(g.status, 200, g.text);
        assert.ok(g.json.assistants[`extra-${i}`], `extra-${i} in the config`);
      }
    })());
    jobs.push(rotate(1));
    await Promise.all(jobs);
    await rotate(2);
    // the new assistants are served, by whichever worker answers
    const r = await chat({ model: 'extra-5', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'echo hi');
    assert.match(fs.readFileSync(`${logPath}.1`, 'utf8'), /POST \/v1\/chat\/completions 200/);
  });
});

'use strict';
// Issue 14, item 4: the MCP broker on demand. No broker is started by the
// harness (broker: false); with `broker: {autostart: true}` a responder that
// finds none listening starts one (detached, guarded by the lock
// <prefix>broker:autostart), and the request that noticed goes on with it.
// The brokers these tests cause are not children of the harness: they are
// found by pid (/proc: an mcp-broker whose REDIS_URL is this stack's Redis)
// and stopped here, their log checked for sanitizer reports.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { startStack, fakeUpstream, completion, waitFor, SANITIZER_PATTERNS } = require('./lib');

const config = (broker) => `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo: {command: \${MCP_DEMO}, args: [--test-tools]}
assistants:
  - {name: helper, backend: fake, model: up-model, mcp_servers: [demo]}
proxy_api_keys: [sk-test-client]
${broker}
`;

// The model asks for one tool per request, chosen by the user's text
// ("sleep N" or a number n → add(n, 1)), then answers with what the tool said.
function scriptModel(up) {
  up.handle((rec) => {
    const tools = rec.body.messages.filter((m) => m.role === 'tool');
    if (tools.length) return { json: completion({ content: tools.map((m) => m.content).join(' | ') }) };
    const text = rec.body.messages.at(-1).content;
    const m = /^sleep (\d+)$/.exec(text);
    const call = m ? { id: 'c1', name: 'demo__sleep', arguments: { ms: Number(m[1]) } }
                   : { id: 'c1', name: 'demo__add', arguments: { a: Number(text), b: 1 } };
    return { json: completion({ tool_calls: [call] }) };
  });
}

function ask(stack, text) {
  return stack.openai().chat.completions.create({ model: 'helper', messages: [{ role: 'user', content: text }] });
}

// The live mcp-broker processes on this stack's Redis: [{pid}] (zombies,
// reaped by nobody in a container without an init, do not count).
function brokersOf(stack) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv0 = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0];
      if (!argv0.endsWith('/mcp-broker')) continue;
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.includes(`REDIS_URL=${stack.redisUrl}`)) out.push({ pid: Number(d), env });
    } catch (_) { /* gone meanwhile, or not ours to read */ }
  }
  return out;
}

const gone = (pid) => {
  try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z'; } catch (_) { return true; }
};

// SIGTERM (or `signal`) to every broker of the stack, waiting until each is gone.
async function stopBrokers(stack, signal = 'SIGTERM') {
  const pids = brokersOf(stack).map((b) => b.pid);
  for (const pid of pids) { try { process.kill(pid, signal); } catch (_) { /* gone */ } }
  await waitFor(() => pids.every(gone), { timeoutMs: 15000, what: `brokers ${pids} to exit on ${signal}` })
    .catch((e) => {
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch (_) { /* gone */ } }
      throw e;
    });
  return pids;
}

// After a test, passed or not: the responders first (no request can start a
// broker after that), then every broker still there, by pid.
async function cleanUp(stack, up) {
  try {
    await stack.stop();
  } finally {
    await stopBrokers(stack, 'SIGKILL');
    await up.close();
  }
}

function brokerLog(stack) {
  try { return fs.readFileSync(path.join(stack.dir, 'mcp-broker.log'), 'utf8'); } catch (_) { return ''; }
}

function assertCleanLog(stack) {
  const log = brokerLog(stack);
  for (const pat of SANITIZER_PATTERNS) assert.ok(!log.includes(pat), `mcp-broker.log: ${pat}\n${log}`);
}

async function lockRecord(stack) {
  const v = await stack.redis('GET', 'aiproxy:broker:autostart');
  return v ? JSON.parse(v) : null;
}

test('without broker.autostart: 503 at once, and no broker is started', async (t) => {
  const up = await fakeUpstream();
  scriptModel(up);
  const stack = await startStack({ config: config(''), upstream: up, broker: false });
  t.after(() => cleanUp(stack, up));

  const t0 = performance.now();
  const e = await ask(stack, '1').then(() => null, (x) => x);
  const took = performance.now() - t0;
  assert.ok(e, 'expected an error');
  assert.equal(e.status, 503);
  assert.match(e.message, /mcp-broker is not running; start it/);
  // the default AIPROXY_BROKER_WAIT_MS (2 s) and a wide margin, far below a start
  assert.ok(took < 2000 + 3000, `took ${took} ms`);
  assert.deepEqual(brokersOf(stack), []);
  assert.equal(await stack.redis('EXISTS', 'aiproxy:broker:autostart'), 0);
});

test('broker.autostart: 50 concurrent requests start exactly one broker; a killed one is replaced', async (t) => {
  const up = await fakeUpstream();
  scriptModel(up);
  // 2 workers: the lock must hold across processes as well as threads; each
  // has room for all 50 (56 completion slots: threads - threads/8), however
  // the web server spreads them, and a request may queue while a loaded
  // machine starts the broker (the queue wait, not admission, is not tested here)
  const stack = await startStack({ config: config('broker: {autostart: true}'), upstream: up, broker: false,
                                   workers: 2, threads: 64, env: { AIPROXY_QUEUE_WAIT_MS: '30000' } });
  t.after(() => cleanUp(stack, up));
  assert.deepEqual(brokersOf(stack), []);

  await t.test('50 concurrent tool-using requests all succeed', async () => {
    // all settled before asserting: none may still be starting a broker after
    const rs = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ask(stack, String(i))));
    rs.forEach((r, i) => {
      assert.equal(r.status, 'fulfilled', `request ${i}: ${r.reason}`);
      assert.equal(r.value.choices[0].message.content, String(i + 1));
    });
  });

  let first;
  await t.test('exactly one broker runs, and its record in the lock names its pid', async () => {
    const bs = brokersOf(stack);
    assert.equal(bs.length, 1, `brokers: ${JSON.stringify(bs.map((b) => b.pid))}`);
    first = bs[0].pid;
    const rec = await lockRecord(stack);
    assert.equal(rec && rec.pid, first, JSON.stringify(rec));
    assert.ok(bs[0].env.some((kv) => kv.startsWith('AIPROXY_BROKER_TOKEN=')));
    assert.ok(!bs[0].env.some((kv) => kv.startsWith('HTTP_')));
    assert.deepEqual(await stack.redis('PUBSUB', 'NUMSUB', 'aiproxy:mcp:calls'), ['aiproxy:mcp:calls', 1]);
    assert.equal((stack.logs('fcgi').match(/no mcp-broker was listening: started/g) || []).length, 1,
                 stack.logs('fcgi'));
    // detached: another session than the responders' (setsid, then a second
    // fork: it is not the session's leader), no descriptor of the responder's
    const statOf = (pid) => { const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' '); };
    const [, , , sid] = statOf(first);
    assert.notEqual(Number(sid), first, 'not a session leader');
    for (const pid of stack.responderPids()) assert.notEqual(statOf(pid)[3], sid, 'a session of its own');
    assert.equal(fs.readlinkSync(`/proc/${first}/fd/0`), '/dev/null');
    assert.equal(fs.readlinkSync(`/proc/${first}/fd/2`), path.join(stack.dir, 'mcp-broker.log'));
    const fds = fs.readdirSync(`/proc/${first}/fd`).map((f) => fs.readlinkSync(`/proc/${first}/fd/${f}`));
    assert.ok(!fds.some((l) => l.endsWith('fcgi.sock')), fds.join(' '));
    assert.match(brokerLog(stack), /started on demand/);
  });

  await t.test('killed (SIGKILL): the next request starts a new one', async () => {
    process.kill(first, 'SIGKILL');
    await waitFor(() => gone(first), { timeoutMs: 10000, what: 'the killed broker to go' });
    const r = await ask(stack, '41');
    assert.equal(r.choices[0].message.content, '42');
    const bs = brokersOf(stack);
    assert.equal(bs.length, 1, `brokers: ${JSON.stringify(bs.map((b) => b.pid))}`);
    assert.notEqual(bs[0].pid, first);
    await waitFor(async () => (await lockRecord(stack))?.pid === bs[0].pid,
                  { timeoutMs: 5000, what: 'the new broker to hold the lock' });
  });

  await t.test('SIGTERM: it stops cleanly and gives the lock back', async () => {
    await stopBrokers(stack);
    assert.equal(await stack.redis('EXISTS', 'aiproxy:broker:autostart'), 0);
    assertCleanLog(stack);
  });
});

test('broker.idle_exit_s: a broker started on demand leaves when idle, never mid-call', async (t) => {
  const up = await fakeUpstream();
  scriptModel(up);
  const stack = await startStack({ config: config('broker: {autostart: true, idle_exit_s: 1}'), upstream: up,
                                   broker: false });
  t.after(() => cleanUp(stack, up));

  const r = await ask(stack, '1');
  assert.equal(r.choices[0].message.content, '2');
  const [b1] = brokersOf(stack);
  assert.ok(b1, 'a broker was started');

  await t.test('a call longer than the idle time finishes', async () => {
    const r2 = await ask(stack, 'sleep 2500');
    assert.equal(r2.choices[0].message.content, 'slept 2500 ms');
  });

  await t.test('idle: it stops by itself and gives the lock back', async () => {
    await waitFor(() => gone(b1.pid), { timeoutMs: 20000, what: 'the idle broker to exit' });
    assert.equal(await stack.redis('EXISTS', 'aiproxy:broker:autostart'), 0);
    const log = brokerLog(stack);
    assert.match(log, /idle for 1 s: stopping/);
    // one start: the sleep ran on the first broker, not on a second one
    assert.equal((log.match(/started on demand/g) || []).length, 1, log);
  });

  await t.test('and the next request starts it again', async () => {
    const r3 = await ask(stack, '9');
    assert.equal(r3.choices[0].message.content, '10');
    const bs = brokersOf(stack);
    assert.equal(bs.length, 1);
    assert.notEqual(bs[0].pid, b1.pid);
    await waitFor(() => gone(bs[0].pid), { timeoutMs: 20000, what: 'the second broker to idle out' });
    assertCleanLog(stack);
  });
});

// A shared host: the responder is a CGI program (Apache mod_cgid), which
// reads its settings from the environment the web server passes (SetEnv), not
// from the config file; one request with no broker starts one, the next uses it.
test('CGI mode (Apache mod_cgid): AIPROXY_BROKER_AUTOSTART=1 from the environment starts one broker', async (t) => {
  const up = await fakeUpstream();
  scriptModel(up);
  // the CGI program runs as the web server's user: its broker log must be
  // somewhere that user may write
  const logDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'aiproxy-cgi-broker-'));
  fs.chmodSync(logDir, 0o777);
  const logFile = path.join(logDir, 'mcp-broker.log');
  const stack = await startStack({ config: config(''), upstream: up, broker: false, webserver: 'apache-cgi',
                                   env: { AIPROXY_BROKER_AUTOSTART: '1', AIPROXY_BROKER_LOG: logFile } });
  t.after(async () => {
    try { await cleanUp(stack, up); } finally { fs.rmSync(logDir, { recursive: true, force: true }); }
  });
  const r = await ask(stack, '1');
  assert.equal(r.choices[0].message.content, '2');
  const bs = brokersOf(stack);
  assert.equal(bs.length, 1, `brokers: ${JSON.stringify(bs.map((b) => b.pid))}`);
  await waitFor(async () => (await lockRecord(stack))?.pid === bs[0].pid,
                { timeoutMs: 5000, what: 'the broker to hold the lock' });
  const r2 = await ask(stack, '5');
  assert.equal(r2.choices[0].message.content, '6');
  assert.deepEqual(brokersOf(stack).map((b) => b.pid), [bs[0].pid], 'the second request used the same broker');
  const log = fs.readFileSync(logFile, 'utf8');
  assert.match(log, /started on demand/);
  for (const pat of SANITIZER_PATTERNS) assert.ok(!log.includes(pat), `mcp-broker.log: ${pat}\n${log}`);
});

'use strict';
// Issue 20 item 4: Redis Sentinel failover. One master, one replica and three
// Sentinels on loopback ports (a short down-after-milliseconds); a stack
// (responders, broker, a tool assistant) with
// REDIS_URL=redis+sentinel://s1,s2,s3/mym. Steady requests run while the
// master is SIGKILLed; once the Sentinels name the replica, the stack serves
// again (chat, a tool call, admin reads and writes) without a restart, the
// registry written before the kill is intact, and every request during the
// switch got 200 or 503 — never a hang, a crash or another status. Then the
// old master comes back (the Sentinels make it a replica) and a switchover
// (SENTINEL FAILOVER) moves the master back while both are alive: followed
// the same way.
//
// Sentinel is Debian's redis-sentinel package (scripts/deps.sh installs it);
// without it, `redis-server --sentinel` is the same program. The test skips
// when neither can run.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./lib');
const { startProc, stopProc, isRunning } = require('./lib/procs');
const { redisCommand } = require('./lib/redis');

const ADMIN = 'admin-key-sentinel-0123';
const PASSWORD = 'master-pw-Zq81x';   // the master's; must never reach a log line
const MASTER = 'mym';
const CONFIG = `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  demo:
    command: \${MCP_DEMO}
    args: [--test-tools]
assistants:
  - {name: helper, backend: fake, model: up-model, mcp_servers: [demo]}
proxy_api_keys: [sk-test-client]
`;

// How to start a Sentinel here: [cmd, leading args], or null.
function sentinelCommand() {
  for (const [cmd, args] of [['redis-sentinel', []], ['redis-server', ['--sentinel']]]) {
    const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return [cmd, args];
  }
  return null;
}

function scriptUpstream(up) {
  up.handle((rec) => {
    const msgs = rec.body.messages || [];
    const tools = msgs.filter((m) => m.role === 'tool');
    if (tools.length) return { json: h.completion({ content: tools.map((m) => m.content).join(' | ') }) };
    const last = msgs.filter((m) => m.role === 'user').at(-1);
    if (last && last.content === 'add') {
      return { json: h.completion({ tool_calls: [{ id: 'c1', name: 'demo__add', arguments: { a: 2, b: 3 } }] }) };
    }
    return { json: h.completion({ content: 'hi' }) };
  });
}

// One request without the SDK (no retries, every status seen): {status, text}.
async function chatRaw(stack, content, timeoutMs = 30000) {
  const r = await h.request(`${stack.baseURL}/chat/completions`, {
    method: 'POST', headers: { authorization: 'Bearer sk-test-client' },
    body: { model: 'helper', messages: [{ role: 'user', content }] }, timeoutMs,
  });
  return r;
}

function admin(stack, method, p, body) {
  return h.request(`${stack.url}${p}`, { method, headers: { authorization: `Bearer ${ADMIN}` }, body });
}

class RedisSet {
  constructor() {
    this.dir = h.mkTmpDir('sentinel');
    this.procs = {};
  }

  spawn(name, cmd, args) {
    this.procs[name] = startProc(name, cmd, args, { env: process.env, cwd: this.dir,
                                                    logPath: path.join(this.dir, `${name}.log`) });
    return this.procs[name];
  }

  node(port) { return { port, password: PASSWORD }; }

  common() {
    return ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir,
            '--requirepass', PASSWORD, '--masterauth', PASSWORD];
  }

  // The first master (again, after a kill: it comes back as a master with no
  // data, as a rebooted box would, and the Sentinels make it a replica).
  startMaster() {
    return this.spawn('master', 'redis-server', ['--port', String(this.mport), ...this.common()]);
  }

  async start(sentinelCmd) {
    this.mport = await h.freePort();
    this.rport = await h.freePort();
    this.startMaster();
    this.spawn('replica', 'redis-server', ['--port', String(this.rport), ...this.common(),
                                           '--replicaof', '127.0.0.1', String(this.mport)]);
    await h.waitFor(async () => {
      try {
        const info = await redisCommand(this.node(this.rport), 'INFO', 'replication');
        return /master_link_status:up/.test(info);
      } catch (_) { return false; }
    }, { timeoutMs: 15000, what: 'the replica to sync with the master' });
    this.sports = [];
    for (let i = 0; i < 3; i++) {
      const port = await h.freePort();
      const conf = path.join(this.dir, `sentinel${i}.conf`);
      fs.writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${this.dir}`,
        `sentinel monitor ${MASTER} 127.0.0.1 ${this.mport} 2`,
        `sentinel auth-pass ${MASTER} ${PASSWORD}`,
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        `sentinel parallel-syncs ${MASTER} 1`, '',
      ].join('\n'));
      this.spawn(`sentinel${i}`, sentinelCmd[0], [conf, ...sentinelCmd[1]]);
      this.sports.push(port);
    }
    // a failover needs each Sentinel to know the replica and the other two
    await h.waitFor(async () => {
      for (const port of this.sports) {
        let m;
        try { m = await redisCommand({ port }, 'SENTINEL', 'MASTER', MASTER); } catch (_) { return false; }
        const f = {};
        for (let i = 0; i + 1 < m.length; i += 2) f[m[i]] = m[i + 1];
        if (f['num-slaves'] !== '1' || f['num-other-sentinels'] !== '2') return false;
      }
      return true;
    }, { timeoutMs: 30000, intervalMs: 200, what: 'the Sentinels to find the replica and each other' });
  }

  url() {
    return `redis+sentinel://:${PASSWORD}@${this.sports.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER}`;
  }

  // The master's port as each Sentinel names it.
  async masterPorts() {
    const out = [];
    for (const port of this.sports) {
      try { out.push(Number((await redisCommand({ port }, 'SENTINEL', 'get-master-addr-by-name', MASTER))[1])); } catch (_) { out.push(null); }
    }
    return out;
  }

  async stop() {
    for (const p of Object.values(this.procs)) if (isRunning(p)) await stopProc(p, { timeoutMs: 5000 });
    if (!process.env.AIPROXY_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Runs `during` while two clients send requests one after another (a tool
// call every other one), then waits (bounded) until the load is served again;
// every request must have got 200 or 503 in OpenAI's error shape. Returns the
// statuses.
async function underLoad(stack, during) {
  const statuses = [];
  let running = true;
  const load = [0, 1].map(async (k) => {
    for (let i = 0; running; i++) {
      let r;
      try {
        r = await chatRaw(stack, (i + k) % 2 ? 'add' : 'hello', 30000);
      } catch (e) {
        statuses.push(`error: ${e.message}`);
        continue;
      }
      statuses.push(r.status);
      if (r.status !== 200 && r.status !== 503) statuses.push(`body: ${r.text}`);
      if (r.status === 503 && !(r.json && r.json.error && r.json.error.message)) {
        statuses.push(`503 not in OpenAI's error shape: ${r.text}`);
      }
      if (r.status !== 200) await h.sleep(50);
    }
  });
  try {
    await h.waitFor(() => statuses.length >= 6, { timeoutMs: 15000, what: 'the load to start' });
    const t0 = Date.now();
    await during();
    statuses.switchedMs = Date.now() - t0;
    const mark = statuses.length;
    await h.waitFor(() => statuses.slice(mark).filter((s) => s === 200).length >= 4,
                    { timeoutMs: 20000, intervalMs: 50, what: 'the load to be served again' });
    statuses.servedMs = Date.now() - t0;
  } finally {
    running = false;
    await Promise.all(load);
  }
  const odd = statuses.filter((s) => s !== 200 && s !== 503);
  assert.deepEqual(odd, [], `requests during the switch: ${JSON.stringify(statuses)}`);
  return statuses;
}

function summary(statuses) {
  return `${statuses.length} requests: ${statuses.filter((s) => s === 200).length} x 200, ` +
         `${statuses.filter((s) => s === 503).length} x 503; the Sentinels named the new master ` +
         `${statuses.switchedMs} ms after the fault, 4 more 200s by ${statuses.servedMs} ms`;
}

// Bounded wait until chat, a tool call and an admin read all work, three
// rounds in a row (a responder thread whose reconnect failed during the switch
// tries again after its back-off, REG_RETRY_MS).
async function servesAgain(stack, model) {
  let streak = 0, last = '';
  await h.waitFor(async () => {
    const a = await chatRaw(stack, 'hello');
    const b = await chatRaw(stack, 'add');
    const c = await admin(stack, 'GET', '/admin/assistants/before-kill');
    const good = a.status === 200 && b.status === 200 && b.json.choices[0].message.content === '5' &&
                 c.status === 200 && c.json.model === model;
    if (!good) last = `${a.status} ${b.status} ${c.status} ${c.text}`;
    streak = good ? streak + 1 : 0;
    return streak >= 3;
  }, { timeoutMs: 15000, intervalMs: 20, what: 'chat, a tool call and an admin read to work again' })
    .catch((e) => { throw new Error(`${e.message}; last: ${last}`); });
}

const sentinelCmd = sentinelCommand();

test('Redis Sentinel: a master killed under load, the stack follows the failover', {
  skip: sentinelCmd ? false : 'redis-sentinel is not installed (apt-get install redis-sentinel; scripts/deps.sh does)',
}, async (t) => {
  const set = new RedisSet();
  let up, stack;
  t.after(async () => {
    try { if (stack) await stack.stop(); } finally {
      try { if (up) await up.close(); } finally { await set.stop(); }
    }
  });
  await set.start(sentinelCmd);
  up = await h.fakeUpstream();
  scriptUpstream(up);
  stack = await h.startStack({ config: CONFIG, upstream: up, threads: 4, redisUrl: set.url(),
                               env: { ADMIN_API_KEY: ADMIN } });
  const calls = `${stack.prefix}mcp:calls`;
  await h.waitFor(async () => {
    try { return (await redisCommand(set.node(set.mport), 'PUBSUB', 'NUMSUB', calls))[1] > 0; } catch (_) { return false; }
  }, { timeoutMs: 15000, what: 'the broker to subscribe on the master' });

  await t.test('before: chat, a tool call and an admin write, all through Sentinel', async () => {
    let r = await chatRaw(stack, 'hello');
    assert.equal(r.status, 200, r.text);
    r = await chatRaw(stack, 'add');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, '5');
    const put = await admin(stack, 'PUT', '/admin/assistants/before-kill', { backend: 'fake', model: 'm1' });
    assert.equal(put.status, 201, put.text);
    // written on the master, replicated before the kill
    await h.waitFor(async () => {
      const v = await redisCommand(set.node(set.rport), 'HGET', `${stack.prefix}reg:assistants`, 'before-kill');
      return v !== null;
    }, { timeoutMs: 10000, what: 'the admin write to reach the replica' });
  });

  await t.test('the master is SIGKILLed under steady load: served again, nothing but 200 or 503', async () => {
    const statuses = await underLoad(stack, async () => {
      await stopProc(set.procs.master, { signal: 'SIGKILL', timeoutMs: 5000 });
      await h.waitFor(async () => (await set.masterPorts()).every((p) => p === set.rport),
                      { timeoutMs: 30000, intervalMs: 100, what: 'every Sentinel to name the replica as master' });
    });
    t.diagnostic(`SIGKILL: ${summary(statuses)}`);
  });

  await t.test('after: chat, a tool call, the registry intact, admin writes go to the new master', async () => {
    await servesAgain(stack, 'm1');
    const put = await admin(stack, 'PUT', '/admin/assistants/after-failover', { backend: 'fake', model: 'm2' });
    assert.equal(put.status, 201, put.text);
    assert.notEqual(await redisCommand(set.node(set.rport), 'HGET', `${stack.prefix}reg:assistants`, 'after-failover'), null);
    const models = await h.request(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer sk-test-client' } });
    const ids = models.json.data.map((m) => m.id);
    assert.ok(ids.includes('before-kill') && ids.includes('after-failover'), ids.join(','));
    // the broker follows too: it listens for calls on the new master
    assert.ok((await redisCommand(set.node(set.rport), 'PUBSUB', 'NUMSUB', calls))[1] > 0);
  });

  await t.test('the old master comes back as a replica; a switchover (SENTINEL FAILOVER) is followed too', async () => {
    set.startMaster();
    await h.waitFor(async () => {
      try {
        return /role:slave[\s\S]*master_link_status:up/.test(await redisCommand(set.node(set.mport), 'INFO', 'replication'));
      } catch (_) { return false; }
    }, { timeoutMs: 60000, intervalMs: 200, what: 'the Sentinels to make the old master a replica of the new one' });
    const statuses = await underLoad(stack, async () => {
      // refused (NOGOODSLAVE) until the Sentinels have fresh news of the replica
      await h.waitFor(async () => {
        try { return (await redisCommand({ port: set.sports[0] }, 'SENTINEL', 'FAILOVER', MASTER)) === 'OK'; } catch (_) { return false; }
      }, { timeoutMs: 30000, intervalMs: 500, what: 'a Sentinel to accept SENTINEL FAILOVER' });
      await h.waitFor(async () => (await set.masterPorts()).every((p) => p === set.mport),
                      { timeoutMs: 30000, intervalMs: 100, what: 'every Sentinel to name the old master again' });
    });
    t.diagnostic(`switchover: ${summary(statuses)}`);
    await servesAgain(stack, 'm1');
    const put = await admin(stack, 'PUT', '/admin/assistants/after-switchover', { backend: 'fake', model: 'm3' });
    assert.equal(put.status, 201, put.text);
    assert.notEqual(await redisCommand(set.node(set.mport), 'HGET', `${stack.prefix}reg:assistants`, 'after-switchover'), null);
    assert.notEqual(await redisCommand(set.node(set.mport), 'HGET', `${stack.prefix}reg:assistants`, 'after-failover'), null);
    await h.waitFor(async () => (await redisCommand(set.node(set.mport), 'PUBSUB', 'NUMSUB', calls))[1] > 0,
                    { timeoutMs: 10000, what: 'the broker to listen on the master again' });
  });

  await t.test('no password in any log', async () => {
    const logs = stack.logs();
    assert.ok(!logs.includes(PASSWORD), 'the master password reached a log');
    assert.match(logs, /Redis|redis/);     // the failover was logged (connection lost, reconnecting)
  });
});

'use strict';
// startStack(): one private aiproxy deployment per call — redis-server on a
// unix socket, mcp-broker, aiproxy-fcgi responders, a web server from the
// shipped templates (nginx by default; opts.webserver: see webservers.js) — in
// its own /tmp directory, ready when GET /health answers 200.
//
//   const stack = await startStack({ config: yamlText, upstreamUrl: up.baseURL });
//   ... stack.url, stack.baseURL, stack.openai() ...
//   await stack.stop();   // fails on any ASan / LSan / UBSan report or crash
//
// Binaries come from AIPROXY_BIN_DIR (default build/asan/bin). The config text
// may reference ${MCP_DEMO} (path of mcp-demo) and ${UPSTREAM_URL} (the
// upstreamUrl option); other ${VAR}s are left for aiproxy's own expansion.
// Set AIPROXY_KEEP_TMP=1 to keep every stack directory (logs) after stop().
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const http = require('node:http');
const { REPO_ROOT, binDir, freePort, waitFor, mkTmpDir } = require('./util');
const { startProc, stopProc, isRunning } = require('./procs');
const { frontendSpec, WEBSERVERS } = require('./webservers');
const { redisCommand } = require('./redis');

// 'WARNING: ThreadSanitizer' heads every TSan report (a data race, a lock-order
// inversion, a signal-unsafe call in a handler): the TSan run (make tsan) fails on it.
const SANITIZER_PATTERNS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
                            'WARNING: ThreadSanitizer', 'ERROR: ThreadSanitizer'];

function redisPing(sock, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const c = net.createConnection(sock);
    const t = setTimeout(() => { c.destroy(); resolve(false); }, timeoutMs);
    let data = '';
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => {
      data += d;
      if (data.includes('\r\n')) { clearTimeout(t); c.destroy(); resolve(data.startsWith('+PONG')); }
    });
    c.on('error', () => { clearTimeout(t); resolve(false); });
  });
}

// GET url, resolves {status, body} or null on connection trouble.
function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

function substitute(config, vars) {
  return config.replace(/\$\{(MCP_DEMO|UPSTREAM_URL)\}/g, (all, name) => {
    if (vars[name] === undefined) {
      throw new Error(`startStack: config uses ${all} but no value was given ` +
                      '(pass upstreamUrl / an upstream)');
    }
    return vars[name];
  });
}

class Stack {
  constructor(opts) {
    this.opts = opts;
    this.bin = binDir();
    this.dir = mkTmpDir('stack');
    this.workers = opts.workers || 1;
    this.threads = opts.threads || 8;
    this.prefix = opts.prefix || 'aiproxy:';
    this.procs = {};          // name -> current handle
    this.history = [];        // every handle ever started (for crash checks)
    this.ownRedis = !opts.redisUrl;
    this.redisSock = path.join(this.dir, 'redis.sock');
    this.redisUrl = opts.redisUrl || `unix://${this.redisSock}`;
    this.fcgiSock = path.join(this.dir, 'fcgi.sock');
    this.configPath = path.join(this.dir, 'config.yaml');
    this.stopped = false;
    // AIPROXY_TEST_WEBSERVER puts a whole file behind another kind, e.g.
    // apache-cgi: tests that name none run in CGI mode (one process a request)
    this.webserver = opts.webserver || process.env.AIPROXY_TEST_WEBSERVER || 'nginx';
    this.web = null;          // frontendSpec(): {name, cmd, args, logs, spawnsResponders}
    // As root, Apache serves from an unprivileged user (it refuses to run as
    // root): that user must reach the sockets in this private directory.
    this.shareSockets = this.webserver.startsWith('apache') && process.getuid && process.getuid() === 0;
    if (this.shareSockets) fs.chmodSync(this.dir, 0o755);
  }

  env(extra = {}) {
    const env = { ...process.env };
    const asan = 'detect_leaks=1:abort_on_error=0';
    env.ASAN_OPTIONS = process.env.ASAN_OPTIONS || asan;
    env.UBSAN_OPTIONS = process.env.UBSAN_OPTIONS || 'print_stacktrace=1';
    const supp = path.join(REPO_ROOT, 'tests', 'lsan.supp');
    if (!process.env.LSAN_OPTIONS && fs.existsSync(supp)) env.LSAN_OPTIONS = `suppressions=${supp}`;
    env.REDIS_URL = this.redisUrl;
    env.AIPROXY_REDIS_PREFIX = this.prefix;
    env.AIPROXY_HOME = REPO_ROOT;
    for (const [k, v] of Object.entries({ ...(this.opts.env || {}), ...extra })) {
      if (v === null || v === undefined) delete env[k];
      else env[k] = String(v);
    }
    return env;
  }

  spawn(name, cmd, args) {
    const h = startProc(name, cmd, args, {
      env: this.env(), cwd: this.dir, logPath: path.join(this.dir, `${name}.log`),
    });
    this.procs[name] = h;
    this.history.push(h);
    return h;
  }

  async start() {
    const vars = {
      MCP_DEMO: path.join(this.bin, 'mcp-demo'),
      UPSTREAM_URL: this.opts.upstreamUrl || (this.opts.upstream && this.opts.upstream.baseURL),
    };
    if (typeof this.opts.config !== 'string') throw new Error('startStack: config (YAML text) is required');
    fs.writeFileSync(this.configPath, substitute(this.opts.config, vars));
    for (const b of ['aiproxy-fcgi', ...(this.opts.broker === false ? [] : ['mcp-broker'])]) {
      if (!fs.existsSync(path.join(this.bin, b))) {
        throw new Error(`startStack: ${path.join(this.bin, b)} missing (build it: make SAN=1, or set AIPROXY_BIN_DIR)`);
      }
    }
    if (this.ownRedis) await this.startRedis();
    if (this.opts.broker !== false) this.startBroker();
    await this.prepareFrontend();
    if (!this.web.spawnsResponders) {
      this.startResponders();
    }
    this.startFrontend();
    await this.waitHealthy();
    if (this.opts.broker !== false && this.ownRedis) await this.waitBroker();
  }

  // One Redis command on the stack's own Redis: await stack.redis('GET', k).
  redis(...args) {
    if (!this.ownRedis) throw new Error('stack.redis: only for the stack\'s own Redis');
    return redisCommand(this.redisSock, ...args);
  }

  // Waits until a broker announced itself: its liveness key
  // <prefix>broker:<id> (set right after it subscribed, mcp-broker/lease.h).
  async waitBroker({ timeoutMs = 20000 } = {}) {
    await waitFor(async () => {
      const h = this.procs.broker;
      if (h && !isRunning(h)) throw new Error(`mcp-broker exited (${JSON.stringify(h.exitInfo)}):\n${this.tail('broker')}`);
      const keys = await this.redis('KEYS', `${this.prefix}broker:*`);
      // broker:autostart is the on-demand lock (issue 14), not a broker
      return Array.isArray(keys) && keys.some((k) => k !== `${this.prefix}broker:autostart`);
    }, { timeoutMs, what: 'mcp-broker to announce itself in Redis' });
  }

  async startRedis() {
    try { fs.unlinkSync(this.redisSock); } catch (_) { /* none */ }
    this.spawn('redis', 'redis-server', [
      '--port', '0', '--unixsocket', this.redisSock, '--unixsocketperm', this.shareSockets ? '777' : '700',
      '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no',
    ]);
    const h = this.procs.redis;
    await waitFor(async () => {
      if (!isRunning(h)) throw new Error(`redis-server exited: ${this.tail('redis')}`);
      return redisPing(this.redisSock);
    }, { timeoutMs: 10000, what: 'redis-server to answer PING' });
  }

  // Stops Redis (for "Redis down" tests). The rest of the stack keeps running.
  async killRedis() {
    await stopProc(this.procs.redis, { timeoutMs: 5000 });
  }

  // Starts a broker; await stack.waitBroker() before relying on it.
  startBroker() {
    return this.spawn('broker', path.join(this.bin, 'mcp-broker'), ['-c', this.configPath]);
  }

  async killBroker({ signal = 'SIGTERM' } = {}) {
    return stopProc(this.procs.broker, { signal, timeoutMs: 10000 });
  }

  startResponders() {
    if (this.web && this.web.spawnsResponders) throw new Error(`the ${this.webserver} stack's responders are spawned by the web server`);
    return this.spawn('fcgi', path.join(this.bin, 'aiproxy-fcgi'), [
      '-c', this.configPath, '-s', `unix:${this.fcgiSock}`,
      '-w', String(this.workers), '-t', String(this.threads),
      ...(this.opts.fcgiArgs || []),
      // as root behind Apache, its unprivileged user must reach the socket
      ...(this.shareSockets ? ['--socket-mode', '0666'] : []),
    ]);
  }

  // Stops the responders (SIGTERM), starts them again, waits for /health.
  async restartResponders() {
    await stopProc(this.procs.fcgi, { timeoutMs: 10000 });
    try { fs.unlinkSync(this.fcgiSock); } catch (_) { /* gone */ }
    this.startResponders();
    await this.waitHealthy();
  }

  // Renders the web server's config (webservers.js) into the stack dir.
  async prepareFrontend() {
    this.port = this.opts.port || await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.baseURL = `${this.url}/v1`;
    this.web = frontendSpec(this.webserver, {
      runDir: this.dir, port: this.port, fcgiSocket: this.fcgiSock, configPath: this.configPath,
      binDir: this.bin, workers: this.workers, threads: this.threads,
      maxBody: (this.opts.env && this.opts.env.AIPROXY_MAX_BODY) || process.env.AIPROXY_MAX_BODY,
      env: this.env(), extraEnv: this.opts.env,
    });
  }

  startFrontend() {
    return this.spawn(this.web.name, this.web.cmd, this.web.args);
  }

  // Pids of the processes that serve requests: the pool's workers (children
  // of the aiproxy-fcgi master), or the responders a web server spawned (its
  // descendants named aiproxy-fcgi).
  responderPids() {
    const parent = this.web.spawnsResponders ? this.procs[this.web.name] : this.procs.fcgi;
    if (!parent || !isRunning(parent)) return [];
    const kids = new Map();    // ppid -> [{pid, comm}]
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      let stat;
      try { stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch (_) { continue; }
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const ppid = Number(fields[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push({ pid: Number(d), comm });
    }
    const out = [];
    const walk = (pid) => {
      for (const k of kids.get(pid) || []) {
        // CGI: aiproxy.cgi is the symlink's name (what comm shows)
        if (k.comm.startsWith('aiproxy-fcgi') || k.comm.startsWith('aiproxy.cgi')) out.push(k.pid);
        else walk(k.pid);   // apache's worker children, lighttpd's shells
      }
    };
    walk(parent.pid);
    return out.sort((a, b) => a - b);
  }

  async waitHealthy({ timeoutMs = 30000 } = {}) {
    await waitFor(async () => {
      for (const name of [this.web.name, 'fcgi']) {
        const h = this.procs[name];
        if (h && !isRunning(h)) {
          throw new Error(`${name} exited (${JSON.stringify(h.exitInfo)}):\n${this.tail(name)}`);
        }
      }
      const r = await httpGet(`${this.url}/health`);
      return r && r.status === 200;
    }, { timeoutMs, what: `${this.url}/health to answer 200` }).catch((e) => {
      throw new Error(`${e.message}\n${this.logs()}`);
    });
  }

  logNames() {
    return ['redis', 'broker', 'fcgi', ...(this.web ? this.web.logs : ['nginx', 'nginx-error'])];
  }

  // logs() -> every log of the stack as one text; logs(name) -> one of
  // redis, broker, fcgi, and the web server's: nginx, nginx-error, apache,
  // apache-error (where mod_fcgid's responders write), lighttpd,
  // lighttpd-error.
  logs(name) {
    const names = name ? [name] : this.logNames();
    return names.map((n) => {
      let t = '';
      try { t = fs.readFileSync(path.join(this.dir, `${n}.log`), 'utf8'); } catch (_) { return ''; }
      return name ? t : `===== ${n}.log =====\n${t}`;
    }).join('\n');
  }

  tail(name, lines = 40) {
    return this.logs(name).split('\n').slice(-lines).join('\n');
  }

  // Sanitizer reports and crashes seen so far, as text lines ([] when clean).
  problems() {
    const found = [];
    for (const n of this.logNames()) {
      const text = this.logs(n);
      for (const pat of SANITIZER_PATTERNS) {
        const i = text.indexOf(pat);
        if (i >= 0) found.push(`${n}.log: ${pat}:\n${text.slice(Math.max(0, i - 200), i + 3000)}`);
      }
    }
    for (const h of this.history) {
      if (h.crashed) found.push(`${h.name} (pid ${h.pid}) crashed with ${h.crashed}`);
      if (h.neededKill) found.push(`${h.name} (pid ${h.pid}) ignored SIGTERM for 10 s and was killed`);
    }
    if (this.strayResponders && this.strayResponders.length) {
      found.push(`responders ${this.strayResponders.join(', ')} outlived ${this.webserver} by 10 s and were killed`);
    }
    return found;
  }

  // Stops everything (nginx, responders, broker, Redis: SIGTERM, bounded wait,
  // SIGKILL), then throws if any log holds a sanitizer report or a process
  // crashed. Safe to call twice.
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    // Responders a web server spawned may outlive it by a moment (draining,
    // then LeakSanitizer at exit): wait for them before reading the logs.
    const spawned = this.web && this.web.spawnsResponders ? this.responderPids() : [];
    const gone = (pid) => {
      try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z'; } catch (_) { return true; }
    };
    await stopProc(this.procs[this.web ? this.web.name : 'nginx'], { timeoutMs: 10000 });
    await this.stopDetached(gone);
    for (const n of ['fcgi', 'broker', 'redis']) {
      await stopProc(this.procs[n], { timeoutMs: 10000 });
    }
    await waitFor(() => spawned.every(gone), { timeoutMs: 10000, what: 'the spawned responders to exit' })
      .catch(() => {
        for (const pid of spawned) { try { process.kill(pid, 'SIGKILL'); } catch (_) { /* gone */ } }
        this.strayResponders = [...(this.strayResponders || []), ...spawned.filter((p) => !gone(p))];
      });
    const found = this.problems();
    if (found.length) {
      throw new Error(`aiproxy stack in ${this.dir} reported problems:\n${found.join('\n\n')}`);
    }
    if (!process.env.AIPROXY_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // The live pids in the web server's pid files (the CGI front's pool: a
  // detached aiproxy-fcgi, nobody's child), checked by name, and any other
  // aiproxy-fcgi whose command line names web.detachedMatch (its socket): a
  // pool started beside the recorded one is found too.
  detachedPids() {
    const out = new Set();
    for (const f of (this.web && this.web.pidFiles) || []) {
      let pid;
      try { pid = Number(fs.readFileSync(f, 'utf8').trim()); } catch (_) { continue; }
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch (_) { continue; }
      if (pid > 0 && cmd.includes('aiproxy-fcgi')) out.add(pid);
    }
    const match = this.web && this.web.detachedMatch;
    if (match) {
      for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        let cmd;
        try { cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'); } catch (_) { continue; }
        if (path.basename(cmd[0] || '') === 'aiproxy-fcgi' && cmd.includes(match)) out.add(Number(d));
      }
    }
    return [...out];
  }

  // SIGTERM to each of them, a bounded wait, then SIGKILL (a problem).
  async stopDetached(gone) {
    const pids = this.detachedPids().filter((p) => !gone(p));
    for (const pid of pids) { try { process.kill(pid, 'SIGTERM'); } catch (_) { /* gone */ } }
    await waitFor(() => pids.every(gone), { timeoutMs: 10000, what: 'the detached responders to exit' })
      .catch(() => {
        for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch (_) { /* gone */ } }
        this.strayResponders = [...(this.strayResponders || []), ...pids.filter((p) => !gone(p))];
      });
  }

  // The official client pointed at this stack. No retries: tests see each
  // status as it is.
  openai(opts = {}) {
    const OpenAI = require('openai');
    const Ctor = OpenAI.default || OpenAI.OpenAI || OpenAI;
    return new Ctor({ baseURL: this.baseURL, apiKey: 'sk-test-client', maxRetries: 0,
                      timeout: 60000, ...opts });
  }
}

// opts: {config (YAML text, required), upstreamUrl | upstream (a fakeUpstream),
// env: {VAR: value|null}, workers (1), threads (8), fcgiArgs ([] more arguments
// for aiproxy-fcgi, e.g. ['--log', file]), broker (true), prefix,
// webserver ('nginx' | 'apache' | 'apache-fcgid' | 'lighttpd' | 'lighttpd-spawn';
// in the spawn modes workers x threads sizes the web server's process pool),
// redisUrl (use that Redis instead of starting one), port}.
// Resolves a started Stack; on failure everything started is stopped and the
// error carries the logs.
async function startStack(opts = {}) {
  const kind = opts.webserver || process.env.AIPROXY_TEST_WEBSERVER;
  if (kind && !WEBSERVERS.includes(kind)) {
    throw new Error(`startStack: unknown webserver '${kind}' (one of ${WEBSERVERS.join(', ')})`);
  }
  const s = new Stack(opts);
  try {
    await s.start();
  } catch (e) {
    const logs = s.logs();
    await s.stop().catch(() => {});
    if (!process.env.AIPROXY_KEEP_TMP) fs.rmSync(s.dir, { recursive: true, force: true });
    if (!e.message.includes('=====')) e.message += `\n${logs}`;
    throw e;
  }
  return s;
}

module.exports = { startStack, Stack, SANITIZER_PATTERNS };

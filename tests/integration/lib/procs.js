'use strict';
// Child processes of the harness: each one logs to a file, is tracked in one
// set, and is killed by an exit handler if a test forgets (or crashes before)
// stopping it. Crashes (SIGSEGV, SIGABRT, ...) are remembered so stop() can
// fail the test.
const { spawn } = require('node:child_process');
const fs = require('node:fs');

const live = new Set();
let handlersInstalled = false;

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const p of live) {
      try { p.child.kill('SIGKILL'); } catch (_) { /* already gone */ }
    }
  });
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.once(sig, () => process.exit(code)); // 'exit' above kills the children
  }
}

const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP']);

// Starts `cmd args` with stdout+stderr appended to logPath. Returns a handle:
// {name, child, pid, exited (promise of {code, signal}), exitInfo, crashed,
//  stoppedByUs}. A binary that cannot be started rejects `exited` with no
// crash; `spawnError` says why.
function startProc(name, cmd, args, { env, cwd, logPath }) {
  installHandlers();
  const fd = fs.openSync(logPath, 'a');
  fs.writeSync(fd, `--- ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env, cwd });
  fs.closeSync(fd);
  const h = { name, cmd, args, child, pid: child.pid, logPath, exitInfo: null,
              crashed: null, stoppedByUs: false, spawnError: null };
  live.add(h);
  h.exited = new Promise((resolve) => {
    child.on('error', (err) => {
      h.spawnError = err;
      h.exitInfo = { code: null, signal: null, error: err };
      live.delete(h);
      resolve(h.exitInfo);
    });
    child.on('exit', (code, signal) => {
      h.exitInfo = { code, signal };
      if (signal && CRASH_SIGNALS.has(signal)) h.crashed = signal;
      live.delete(h);
      resolve(h.exitInfo);
    });
  });
  return h;
}

function isRunning(h) {
  return h && !h.exitInfo;
}

// SIGTERM (or `signal`), wait up to timeoutMs, then SIGKILL. Resolves with
// {code, signal, killed: true when SIGKILL was needed}.
async function stopProc(h, { signal = 'SIGTERM', timeoutMs = 10000 } = {}) {
  if (!h) return null;
  if (h.exitInfo) return h.exitInfo;
  h.stoppedByUs = true;
  try { h.child.kill(signal); } catch (_) { /* raced with exit */ }
  let timer;
  const timedOut = new Promise((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
  const r = await Promise.race([h.exited, timedOut]);
  clearTimeout(timer);
  if (r === 'timeout') {
    try { h.child.kill('SIGKILL'); } catch (_) { /* gone */ }
    const info = await h.exited;
    h.neededKill = true;
    return { ...info, killed: true };
  }
  return r;
}

module.exports = { startProc, stopProc, isRunning, live };

'use strict';
// pool.js — memory of a responder pool as total PSS: the master and every
// descendant, each process's Pss from /proc/<pid>/smaps_rollup summed, so
// shared pages (libraries, copy-on-write after fork) are split between the
// processes that map them instead of being counted once per process.
const fs = require('node:fs');

// pid -> [child pids], from /proc/<pid>/task/<tid>/children.
function children(pid) {
  const out = [];
  let tids = [];
  try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch (_) { return out; }
  for (const t of tids) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (s) out.push(...s.split(/\s+/).map(Number));
    } catch (_) { /* thread gone */ }
  }
  return out;
}

// The Pss line of smaps_rollup in KiB; 0 when the process is gone.
function pssOf(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch (_) {
    return 0;
  }
}

// {kib, procs}: the summed PSS of `root` and its descendants.
function pss(root) {
  const seen = new Set();
  const todo = [root];
  let kib = 0;
  while (todo.length) {
    const p = todo.pop();
    if (seen.has(p)) continue;
    seen.add(p);
    kib += pssOf(p);
    todo.push(...children(p));
  }
  return { kib, procs: seen.size };
}

module.exports = { pss };

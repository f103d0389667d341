'use strict';
// Issue 11 (B): `make run` (scripts/run.sh) keeps admin edits across its own
// restart: its private Redis persists to the run directory (AOF), and the
// config file only seeds an empty registry, so the second start does not
// overwrite the edited one. Runs the real script, with AIPROXY_RUN_DIR in a
// temp dir, a free port, and the binaries under test.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib');
const { startProc, stopProc } = require('./lib/procs');

const ADMIN = 'admin-key-run-script-0123';

test('make run: admin edits survive a restart of scripts/run.sh', async (t) => {
  const up = await h.fakeUpstream();
  up.handle(() => ({ json: h.completion({ content: 'hi' }) }));
  const dir = h.mkTmpDir('runsh');
  const port = await h.freePort();
  const url = `http://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, 'config.yaml'), `
backends:
  fake: {kind: openai, base_url: ${up.baseURL}, api_key: sk-up}
assistants:
  - {name: from-file, backend: fake, model: m}
proxy_api_keys: [sk-test-client]
`);
  const env = {
    ...process.env,
    AIPROXY_RUN_DIR: path.join(dir, 'run'),
    AIPROXY_CONFIG: path.join(dir, 'config.yaml'),
    AIPROXY_LISTEN: `127.0.0.1:${port}`,
    AIPROXY_BIN_DIR: h.binDir(),
    AIPROXY_WORKERS: '1',
    AIPROXY_THREADS: '4',
    AIPROXY_WEBSERVER: 'nginx',
    ADMIN_API_KEY: ADMIN,
  };
  delete env.REDIS_URL;
  const log = path.join(dir, 'run.log');
  let proc = null;
  const start = async () => {
    proc = startProc('run.sh', 'bash', [path.join(h.REPO_ROOT, 'scripts/run.sh')], { env, cwd: h.REPO_ROOT, logPath: log });
    await h.waitFor(async () => {
      if (proc.exitInfo) throw new Error(`run.sh exited: ${fs.readFileSync(log, 'utf8')}`);
      return (await h.request(`${url}/health`, { timeoutMs: 2000 }).catch(() => ({}))).status === 200;
    }, { timeoutMs: 60000, what: 'run.sh to answer /health' });
  };
  const stop = async () => {
    const info = await stopProc(proc, { timeoutMs: 20000 });
    assert.equal(info.code, 0, `run.sh exit: ${JSON.stringify(info)}\n${fs.readFileSync(log, 'utf8')}`);
  };
  const models = async () => {
    const r = await h.request(`${url}/v1/models`, { headers: { authorization: 'Bearer sk-test-client' } });
    assert.equal(r.status, 200, r.text);
    return r.json.data.map((m) => m.id).sort();
  };
  t.after(async () => {
    if (proc && !proc.exitInfo) await stopProc(proc, { timeoutMs: 20000 });
    await up.close();
    const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    for (const pat of h.SANITIZER_PATTERNS) assert.ok(!text.includes(pat), `run.log: ${pat}\n${text}`);
    if (!process.env.AIPROXY_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  });

  await start();
  assert.deepEqual(await models(), ['from-file']);
  const put = await h.request(`${url}/admin/assistants/added-by-admin`, {
    method: 'PUT', headers: { authorization: `Bearer ${ADMIN}` }, body: { backend: 'fake', model: 'm2' },
  }).catch((e) => {
    // what the stack was doing: its logs (run.sh's and every daemon's)
    const logs = [log, ...fs.readdirSync(path.join(dir, 'run')).filter((f) => f.endsWith('.log'))
      .map((f) => path.join(dir, 'run', f))];
    const tail = (f) => { try { return fs.readFileSync(f, 'utf8').split('\n').slice(-40).join('\n'); } catch (_) { return ''; } };
    throw new Error(`${e.message}\n${logs.map((f) => `--- ${f}\n${tail(f)}`).join('\n')}`);
  });
  assert.equal(put.status, 201, put.text);
  const del = await h.request(`${url}/admin/assistants/from-file`, {
    method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` },
  });
  assert.ok(del.status === 200 || del.status === 204, del.text);
  assert.deepEqual(await models(), ['added-by-admin']);
  await stop();

  // the same run dir: Redis loads its AOF, the daemons find a registry and
  // leave it alone (the file still names from-file, the edit deleted it)
  await start();
  assert.deepEqual(await models(), ['added-by-admin']);
  assert.ok(fs.existsSync(path.join(dir, 'run', 'appendonlydir')), 'no AOF in the run dir');
  await stop();
});

'use strict';
// `make docker-check` (scripts/docker-check.sh), issue 14 item 5: the broker,
// started the way the image starts it (mcp-broker -c CONFIG, HOME a writable
// cache directory, docker/uvx on PATH), runs an `npx` MCP server and a
// `uvx`-shimmed one. Offline: npx finds server-everything in the local npm
// install (tests/node_modules, --offline), and uvx installs a wheel of a
// stdlib-only Python MCP server (tests/docker/mcp_echo_py.py) built here,
// with PIP_NO_INDEX, through `pipx run` exactly as `uvx mcp-server-fetch`
// would from PyPI. Not part of `make test`: it needs pipx and its first run
// builds a virtualenv (seconds), which a unit of the suite should not.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('../integration/lib');

const REPO = path.resolve(__dirname, '..', '..');

// A wheel (a zip with metadata) of mcp_echo_py.py: pip installs it without
// building anything, so no setuptools or wheel from an index is needed.
function buildWheel(dir) {
  const py = `
import base64, hashlib, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
dist = "mcp_echo_py-0.1.0.dist-info"
files = {
  "mcp_echo_py/__init__.py": open(src, "rb").read(),
  dist + "/METADATA": b"Metadata-Version: 2.1\\nName: mcp-echo-py\\nVersion: 0.1.0\\n",
  dist + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: docker-check\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
  dist + "/entry_points.txt": b"[console_scripts]\\nmcp-echo-py = mcp_echo_py:main\\n",
}
rec = []
with zipfile.ZipFile(out, "w") as z:
  for name, data in files.items():
    z.writestr(name, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    rec.append("%s,sha256=%s,%d" % (name, digest, len(data)))
  rec.append(dist + "/RECORD,,")
  z.writestr(dist + "/RECORD", "\\n".join(rec) + "\\n")
`;
  const whl = path.join(dir, 'mcp_echo_py-0.1.0-py3-none-any.whl');
  execFileSync('python3', ['-c', py, path.join(__dirname, 'mcp_echo_py.py'), whl]);
  return whl;
}

function scriptModel(up) {
  up.handle((rec) => {
    const tools = rec.body.messages.filter((m) => m.role === 'tool');
    if (tools.length) return { json: h.completion({ content: tools.map((m) => m.content).join(' | ') }) };
    const [name, args] = JSON.parse(rec.body.messages.at(-1).content);
    return { json: h.completion({ tool_calls: [{ id: 'c1', name, arguments: args }] }) };
  });
}

test('the image\'s broker runs an npx server and a uvx-shimmed one', { timeout: 300000 }, async (t) => {
  const dir = h.mkTmpDir('docker-check');
  const home = path.join(dir, 'home');          // the image's /var/lib/aiproxy
  const bin = path.join(dir, 'bin');            // the image's /usr/local/bin
  fs.mkdirSync(home);
  fs.mkdirSync(bin);
  fs.copyFileSync(path.join(REPO, 'docker', 'uvx'), path.join(bin, 'uvx'));
  fs.chmodSync(path.join(bin, 'uvx'), 0o755);
  const whl = buildWheel(dir);
  const up = await h.fakeUpstream();
  scriptModel(up);
  const stack = await h.startStack({
    upstream: up,
    // the image runs the broker as its own unprivileged user, so MCP servers
    // run as that user too; as root here, children stay root (not nobody,
    // who could not write this HOME) — docs/deploy.md
    env: { HOME: home, PATH: `${bin}:${process.env.PATH}`, PIP_NO_INDEX: '1',
           ...(process.getuid() === 0 ? { AIPROXY_MCP_USER: 'root' } : {}) },
    config: `
backends:
  fake: {kind: openai, base_url: \${UPSTREAM_URL}, api_key: sk-up}
mcp_servers:
  everything:
    command: npx
    args: [--offline, -y, "@modelcontextprotocol/server-everything", stdio]
    cwd: ${path.join(REPO, 'tests')}
    timeout: 120
  fetchlike:
    command: uvx
    args: [--from, ${whl}, mcp-echo-py]
    inherit_env: [PIP_NO_INDEX]
    timeout: 240
assistants:
  - {name: ev, backend: fake, model: m, mcp_servers: [everything]}
  - {name: py, backend: fake, model: m, mcp_servers: [fetchlike]}
`,
  });
  t.after(async () => { await stack.stop(); await up.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  const client = stack.openai({ timeout: 280000 });
  const ask = (model, call) => client.chat.completions.create({ model, messages: [{ role: 'user', content: JSON.stringify(call) }] });

  await t.test('npx @modelcontextprotocol/server-everything: get-sum', async () => {
    const r = await ask('ev', ['everything__get-sum', { a: 20, b: 22 }]);
    assert.match(r.choices[0].message.content, /\b42\b/);
  });

  await t.test('uvx --from <wheel> mcp-echo-py (pipx run): echo', async () => {
    const r = await ask('py', ['fetchlike__echo', { text: 'hello' }]);
    assert.equal(r.choices[0].message.content, 'py:hello');
    // pipx kept what it installed in HOME, the image's writable cache
    assert.ok(fs.existsSync(path.join(home, '.local', 'pipx')), 'pipx wrote under HOME');
  });
});

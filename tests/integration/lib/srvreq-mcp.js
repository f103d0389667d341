'use strict';
// A scripted stdio MCP server that sends requests to its client (issue 15
// item 4): run with node; one JSON-RPC message per line.
//   after notifications/initialized it sends sampling/createMessage at once,
//   outside any tool call, and keeps the answer;
//   tools: "caps"  → the client's initialize capabilities, as JSON text
//          "early" → the answer to that early sampling request
//          "ask"   → sends elicitation/create and returns the answer
//          "roots" → sends roots/list and returns the answer
const readline = require('node:readline');

let caps = null;
let early = null;
let nextId = 1;
const waiting = new Map();   // our request id -> resolve

function send(m) { process.stdout.write(JSON.stringify(m) + '\n'); }
function request(method, params) {
  const id = `srv-${nextId++}`;
  send({ jsonrpc: '2.0', id, method, params });
  return new Promise((resolve) => waiting.set(id, resolve));
}
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const tool = (name) => ({ name, description: name, inputSchema: { type: 'object', properties: {} } });

async function call(name) {
  if (name === 'caps') return text(JSON.stringify(caps));
  if (name === 'early') return text(JSON.stringify(early));
  if (name === 'ask') {
    return text(JSON.stringify(await request('elicitation/create', {
      message: 'Your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } },
    })));
  }
  if (name === 'roots') return text(JSON.stringify(await request('roots/list', {})));
  return { content: [{ type: 'text', text: `no tool ${name}` }], isError: true };
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const m = JSON.parse(line);
  if (m.id !== undefined && !m.method) {            // an answer to one of ours
    const r = waiting.get(m.id);
    waiting.delete(m.id);
    if (r) r(m.error ? { error: m.error } : { result: m.result });
    return;
  }
  if (m.method === 'initialize') {
    caps = m.params.capabilities;
    send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} },
                                               serverInfo: { name: 'srvreq', version: '1' } } });
  } else if (m.method === 'notifications/initialized') {
    early = await request('sampling/createMessage', {
      messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 });
  } else if (m.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: m.id, result: { tools: ['caps', 'early', 'ask', 'roots'].map(tool) } });
  } else if (m.method === 'tools/call') {
    send({ jsonrpc: '2.0', id: m.id, result: await call(m.params.name) });
  } else if (m.id !== undefined) {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no' } });
  }
});

#!/usr/bin/env node
'use strict';
// mcp-names — an MCP server over stdio whose tools have names that collide
// after sanitising (get.data / get_data), a Latin accent (café), a CJK name
// (工具), a name past 64 characters, and a plain one; listed in the order
// argv[2] says: "fwd" or "rev". Each tool's description is its raw name, so
// a test can tell which offered name stands for which tool.
const readline = require('node:readline');

const NAMES = ['get.data', 'lookup', 'get_data', 'café', '工具', 'x'.repeat(80)];
const order = process.argv[2] === 'rev' ? [...NAMES].reverse() : NAMES;
const rl = readline.createInterface({ input: process.stdin });
const send = (o) => process.stdout.write(JSON.stringify(o) + '\n');

rl.on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch { return; }
  if (msg.id === undefined || msg.id === null) return;        // a notification
  if (msg.method === 'initialize') {
    send({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18',
      capabilities: { tools: {} }, serverInfo: { name: 'mcp-names', version: '1' } } });
  } else if (msg.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: msg.id, result: { tools: order.map((name) => ({
      name, description: name, inputSchema: { type: 'object', properties: {} } })) } });
  } else {
    send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no such method' } });
  }
});

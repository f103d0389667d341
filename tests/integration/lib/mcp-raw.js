#!/usr/bin/env node
'use strict';
// mcp-raw — an MCP server over stdio that shows what reached it byte for
// byte: its one tool, raw(), answers with structuredContent holding the
// JSON-RPC line it received, spliced in as text (never parsed into JS
// numbers, which would round a big integer), and an integer past 64 bits.
const readline = require('node:readline');

const rl = readline.createInterface({ input: process.stdin });
const send = (text) => process.stdout.write(text + '\n');

rl.on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch { return; }
  if (msg.id === undefined || msg.id === null) return;        // a notification
  const id = JSON.stringify(msg.id);
  if (msg.method === 'initialize') {
    send(`{"jsonrpc":"2.0","id":${id},"result":{"protocolVersion":"2025-06-18",` +
      '"capabilities":{"tools":{}},"serverInfo":{"name":"mcp-raw","version":"1"}}}');
  } else if (msg.method === 'tools/list') {
    send(`{"jsonrpc":"2.0","id":${id},"result":{"tools":[{"name":"raw","description":"echo the line",` +
      '"inputSchema":{"type":"object","properties":{}}}]}}');
  } else if (msg.method === 'tools/call') {
    send(`{"jsonrpc":"2.0","id":${id},"result":{"content":[],` +
      `"structuredContent":{"got":${line},"big":100000000000000000000001}}}`);
  } else {
    send(`{"jsonrpc":"2.0","id":${id},"error":{"code":-32601,"message":"no such method"}}`);
  }
});

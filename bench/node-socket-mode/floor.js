#!/usr/bin/env node
// bench/node-socket-mode/floor.js -- the harness floor for bench/slack-ack.py: the least a
// Socket Mode client can do. It opens a connection (apps.connections.open), and on every
// frame with an envelope_id sends {"envelope_id": ...} back at once, from the message
// handler: no SDK, no queue, no logging. Node's own WebSocket (undici, run with
// --experimental-websocket on Node 20), so nothing but Node itself is needed.
//
// env: SLACK_APP_TOKEN (xapp-...), SLACK_API_URL (Web API base, e.g. http://127.0.0.1:P/api/).
// SIGTERM/SIGINT exit 0.
'use strict';

const appToken = process.env.SLACK_APP_TOKEN;
let api = process.env.SLACK_API_URL || '';
if (!appToken || !api) {
  console.error('floor.js: SLACK_APP_TOKEN and SLACK_API_URL must be set');
  process.exit(2);
}
if (!api.endsWith('/')) api += '/';

async function main() {
  const r = await fetch(api + 'apps.connections.open', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + appToken },
  });
  const body = await r.json();
  if (!body.ok || !body.url) throw new Error('apps.connections.open: ' + JSON.stringify(body));
  const ws = new WebSocket(body.url);
  ws.onmessage = (m) => {
    const id = JSON.parse(m.data).envelope_id;
    if (id) ws.send('{"envelope_id":"' + id + '"}');
  };
  ws.onclose = () => process.exit(0);
  ws.onerror = (e) => console.error('floor.js: websocket error:', e && e.message);
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
main().catch((e) => {
  console.error('floor.js:', e && e.message);
  process.exit(1);
});

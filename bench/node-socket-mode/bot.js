#!/usr/bin/env node
// bench/node-socket-mode/bot.js -- the baseline for bench/slack-ack.py: a minimal Socket
// Mode bot on @slack/socket-mode that acks every envelope at once and pushes the event
// onto an in-memory queue. Nothing ever consumes the queue (no processing at all).
//
// env: SLACK_APP_TOKEN (xapp-...), SLACK_API_URL (Web API base, e.g. http://127.0.0.1:P/api/).
// Prints "connected" on stdout once the server's hello arrived; SIGTERM/SIGINT exit 0.
'use strict';

const { SocketModeClient, LogLevel } = require('@slack/socket-mode');

const appToken = process.env.SLACK_APP_TOKEN;
if (!appToken) {
  console.error('bot.js: SLACK_APP_TOKEN is not set');
  process.exit(2);
}
let slackApiUrl = process.env.SLACK_API_URL;
if (slackApiUrl && !slackApiUrl.endsWith('/')) slackApiUrl += '/';

const client = new SocketModeClient({
  appToken,
  logLevel: LogLevel.ERROR,
  clientOptions: slackApiUrl ? { slackApiUrl } : {},
});

const queue = [];

client.on('slack_event', ({ ack, type, body }) => {
  ack().catch((e) => console.error('bot.js: ack failed:', e && e.message));
  queue.push({ type, body });
});

client.on('connected', () => console.log('connected'));

function stop() {
  console.log('queued ' + queue.length + ' events');
  client.disconnect().catch(() => {}).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

client.start().catch((e) => {
  console.error('bot.js: start failed:', e && e.message);
  process.exit(1);
});

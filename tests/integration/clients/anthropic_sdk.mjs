// The official Anthropic SDK as a user's script in a janebot sandbox would use it: no key and
// no base URL of its own (the SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, which
// janebot sets). argv: the calls to make, in order; one JSON line per call on stdout:
// {"call", "ok", ...what the SDK handed back} or {"call", "ok": false, "error", "status"}.
import Anthropic from '@anthropic-ai/sdk';

const MODEL = 'claude-sonnet-4-5';
const client = new Anthropic();
const ask = (text) => ({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: text }] });
const textOf = (msg) => msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

const calls = {
  // What the sandbox holds (the test checks no real key is among it).
  env: async () => ({ env: process.env }),

  plain: async () => {
    const { data, response } = await client.messages.create(ask('hello plain')).withResponse();
    return { text: textOf(data), usage: data.usage, model: data.model, status: response.status };
  },

  stream: async () => {
    const stream = await client.messages.create({ ...ask('hello stream'), stream: true });
    let text = '', start = null, delta = null, model = null;
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'message_start') (start = ev.message.usage), (model = ev.message.model);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') delta = ev.usage;
    }
    return { text, usage_start: start, usage_delta: delta, model, types };
  },

  // The SDK's own stream helper: the message it assembles, usage included.
  stream_helper: async () => {
    const fin = await client.messages.stream(ask('hello helper')).finalMessage();
    return { text: textOf(fin), usage: fin.usage, model: fin.model };
  },

  count: async () => {
    const c = await client.messages.countTokens({ model: MODEL, messages: ask('count me').messages });
    return { input_tokens: c.input_tokens };
  },
};

for (const name of process.argv.slice(2)) {
  let out;
  try {
    out = { call: name, ok: true, ...(await calls[name]()) };
  } catch (e) {
    out = { call: name, ok: false, error: String(e), status: e?.status ?? null };
  }
  console.log(JSON.stringify(out));
}

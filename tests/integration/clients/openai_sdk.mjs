// The official OpenAI SDK as a user's script in a janebot sandbox would use it: no key and no
// base URL of its own (the SDK reads OPENAI_API_KEY and OPENAI_BASE_URL, which janebot sets).
// argv: the calls to make, in order; one JSON line per call on stdout:
// {"call", "ok", ...what the SDK handed back} or {"call", "ok": false, "error", "status"}.
import OpenAI from 'openai';

const MODEL = 'gpt-5-mini';
const client = new OpenAI();
const chat = (text) => ({ model: MODEL, messages: [{ role: 'user', content: text }] });

const calls = {
  env: async () => ({ env: process.env }),

  chat: async () => {
    const { data, response } = await client.chat.completions.create(chat('hello chat')).withResponse();
    return { text: data.choices[0].message.content, usage: data.usage, model: data.model,
             status: response.status };
  },

  // Streamed without stream_options, as the SDK's README shows it. Each chunk is read the
  // way such a loop does (choices[0].delta); a chunk it did not ask for (no choice, or
  // usage) is reported, and how many carried a "usage": null.
  chat_stream: async () => {
    const stream = await client.chat.completions.create({ ...chat('hello chat stream'), stream: true });
    let text = '', chunks = 0, model = null, finish = null, usage_nulls = 0;
    const unasked = [];
    for await (const chunk of stream) {
      chunks++;
      model = chunk.model;
      if (chunk.usage != null || chunk.choices.length !== 1) unasked.push(chunk);
      if (chunk.usage === null) usage_nulls++;
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    return { text, chunks, model, finish, unasked, usage_nulls };
  },

  responses: async () => {
    const r = await client.responses.create({ model: MODEL, input: 'hello responses' });
    return { text: r.output_text, usage: r.usage, model: r.model, status: r.status };
  },

  responses_stream: async () => {
    const stream = await client.responses.create({ model: MODEL, input: 'hello rs', stream: true });
    let text = '', usage = null, model = null, status = null;
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed')
        (usage = ev.response.usage), (model = ev.response.model), (status = ev.response.status);
    }
    return { text, usage, model, status, types };
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

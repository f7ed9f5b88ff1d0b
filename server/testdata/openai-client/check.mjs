// Runs the official openai npm package, unchanged, against a kvgo server.
// Usage: node check.mjs http://127.0.0.1:PORT/v1 MODEL
// Prints one JSON line with what each call returned; exits 1 on failure.
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const cmpl = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 8, temperature: 0 });
out.completion = { text: cmpl.choices[0].text, finish: cmpl.choices[0].finish_reason, usage: cmpl.usage };

const chat = await client.chat.completions.create({
  model, max_tokens: 8, temperature: 0, seed: 7,
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "What is a cache?" }],
});
out.chat = { content: chat.choices[0].message.content, role: chat.choices[0].message.role, finish: chat.choices[0].finish_reason, usage: chat.usage };

const stream = await client.chat.completions.create({
  model, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
  messages: [{ role: "user", content: "Tell me a story." }],
  kv: "snapkv(budget=16)+q4",
});
let text = "", finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (c?.delta?.content) text += c.delta.content;
  if (c?.finish_reason) finish = c.finish_reason;
}
out.stream = { text, finish, usage, chunks };

const cstream = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 6, stream: true });
let ctext = "";
for await (const chunk of cstream) ctext += chunk.choices[0]?.text ?? "";
out.completionStream = ctext;

try {
  await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }], kv: "nope" });
  out.badRecipe = "accepted";
} catch (e) {
  out.badRecipe = { status: e.status, code: e.code, param: e.param, type: e.type, message: e.message };
}
try {
  await client.completions.create({ model: "gpt-4", prompt: "x" });
  out.badModel = "accepted";
} catch (e) {
  out.badModel = { status: e.status, code: e.code };
}
console.log(JSON.stringify(out));

import assert from "node:assert/strict";
import type { ApiError } from "../../../plugins/http/errors.ts";
import { chooseChatTemplate, TEMPLATE_NAMES } from "../../../plugins/http/chat_template.ts";

const TOKENS = { bos: "<s>", eos: "</s>" };
const CHAT = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "Bye" },
];

Deno.test("chooseChatTemplate() falls back to ChatML with the generation prompt", () => {
  const t = chooseChatTemplate(undefined);
  assert.equal(t.name, "chatml");
  assert.deepEqual(t.stops, ["<|im_end|>"]);
  assert.equal(
    t.render(CHAT.slice(0, 2), TOKENS),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("chooseChatTemplate() prefers the model's own template", () => {
  const t = chooseChatTemplate(
    "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}" +
      "{% if add_generation_prompt %}[assistant]{% endif %}",
  );
  assert.equal(t.name, "model");
  assert.equal(t.render(CHAT.slice(1, 2), TOKENS), "<s>[user]Hi[assistant]");
});

Deno.test("chooseChatTemplate() lets a named choice override the model's template", () => {
  const t = chooseChatTemplate("{{ 'model' }}", "mistral");
  assert.equal(t.name, "mistral");
  assert.equal(t.render(CHAT.slice(1), TOKENS), "<s>[INST] Hi [/INST]Hello.</s>[INST] Bye [/INST]");
});

Deno.test("chooseChatTemplate() renders every built-in template", () => {
  for (const name of TEMPLATE_NAMES) {
    const text = chooseChatTemplate(undefined, name).render(CHAT, TOKENS);
    assert.ok(text.includes("Be brief.") && text.includes("Bye"), `${name}: ${text}`);
  }
  assert.equal(
    chooseChatTemplate(undefined, "llama2").render(CHAT.slice(0, 2), TOKENS),
    "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]",
  );
});

Deno.test("chooseChatTemplate() accepts Jinja source and names unknown templates", () => {
  assert.equal(
    chooseChatTemplate(undefined, "{{ messages[0].content }}!").render(CHAT, TOKENS),
    "Be brief.!",
  );
  assert.throws(
    () => chooseChatTemplate(undefined, "vicuna"),
    /unknown chat template "vicuna".*chatml/,
  );
});

Deno.test("ChatTemplate.render() turns a template's raise_exception into a 400", () => {
  const t = chooseChatTemplate(
    "{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}",
  );
  assert.throws(
    () => t.render(CHAT, TOKENS),
    (e: ApiError) => e.status === 400 && /user first/.test(e.message) && e.param === "messages",
  );
});

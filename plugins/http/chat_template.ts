/**
 * Chat templates: the model's own `tokenizer.chat_template` (Jinja, rendered with
 * `@huggingface/jinja`), or a named built-in — ChatML (TurboSparse-Mistral-Instruct's format)
 * when the model has none — or a Jinja string given on the command line.
 *
 * @example
 * ```ts
 * import { chooseChatTemplate } from "./chat_template.ts";
 * const t = chooseChatTemplate(undefined, "chatml");
 * t.render([{ role: "user", content: "Hi" }], { bos: "<s>", eos: "</s>" });
 * // "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
 * ```
 *
 * @module
 */

import { Template } from "@huggingface/jinja";
import { invalid } from "./errors.ts";

/** A message as templates see it: plain text content. */
export interface TemplateMessage {
  role: string;
  content: string;
}

/** A compiled chat template. */
export interface ChatTemplate {
  /** "model", a built-in name, or "custom". */
  readonly name: string;
  /** Strings that end the assistant's turn when they are not single tokens (e.g. `<|im_end|>`). */
  readonly stops: readonly string[];
  /** The prompt text for `messages`, ending with the assistant's turn opening. */
  render(messages: TemplateMessage[], tokens: { bos: string; eos: string }): string;
}

/** Built-in templates by name (Jinja source and the stop strings of their turn ends). */
export const BUILTIN_TEMPLATES: Record<string, { source: string; stops: string[] }> = {
  chatml: {
    source:
      "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}" +
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    stops: ["<|im_end|>"],
  },
  llama2: {
    source: "{% for m in messages %}{% if m.role == 'system' %}" +
      "{{ bos_token + '[INST] <<SYS>>\\n' + m.content + '\\n<</SYS>>\\n\\n' }}" +
      "{% elif m.role == 'user' %}{% if loop.index0 == 0 or messages[loop.index0 - 1].role != 'system' %}" +
      "{{ bos_token + '[INST] ' }}{% endif %}{{ m.content + ' [/INST]' }}" +
      "{% else %}{{ ' ' + m.content + ' ' + eos_token }}{% endif %}{% endfor %}",
    stops: [],
  },
  mistral: {
    source: "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}" +
      "{{ '[INST] ' + m.content + ' [/INST]' }}{% else %}{{ m.content + eos_token }}{% endif %}" +
      "{% endfor %}",
    stops: [],
  },
  zephyr: {
    source: "{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + eos_token + '\\n' }}" +
      "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
    stops: [],
  },
};

/** Names `--chat-template` accepts besides a Jinja string. */
export const TEMPLATE_NAMES: readonly string[] = Object.keys(BUILTIN_TEMPLATES);

/**
 * Pick a template: `choice` (a built-in name or a Jinja string) wins, else the model's own,
 * else ChatML.
 * @param modelTemplate the GGUF's `tokenizer.chat_template`, if any
 * @param choice `--chat-template`: a name from TEMPLATE_NAMES or Jinja source
 */
export function chooseChatTemplate(
  modelTemplate: string | undefined,
  choice?: string,
): ChatTemplate {
  if (choice !== undefined) {
    const builtin = BUILTIN_TEMPLATES[choice];
    if (builtin) return compile(choice, builtin.source, builtin.stops);
    if (!choice.includes("{{") && !choice.includes("{%")) {
      throw new Error(
        `unknown chat template "${choice}": expected one of ${
          TEMPLATE_NAMES.join(", ")
        } or Jinja source`,
      );
    }
    return compile("custom", choice, choiceStops(choice));
  }
  if (modelTemplate) return compile("model", modelTemplate, choiceStops(modelTemplate));
  return compile("chatml", BUILTIN_TEMPLATES.chatml.source, BUILTIN_TEMPLATES.chatml.stops);
}

/** ChatML-style templates end turns with `<|im_end|>`; stop on it when it is plain text. */
function choiceStops(source: string): string[] {
  return source.includes("<|im_end|>") ? ["<|im_end|>"] : [];
}

function compile(name: string, source: string, stops: string[]): ChatTemplate {
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new Error(
      `chat template "${name}" does not parse: ${(err as Error).message} ` +
        `(choose another with --chat-template ${TEMPLATE_NAMES.join("|")})`,
    );
  }
  return {
    name,
    stops,
    render(messages, tokens) {
      try {
        return template.render({
          messages,
          add_generation_prompt: true,
          bos_token: tokens.bos,
          eos_token: tokens.eos,
        });
      } catch (err) {
        // templates raise on bad conversations, e.g. roles that do not alternate
        throw invalid(
          `the chat template rejected the messages: ${(err as Error).message}`,
          "messages",
        );
      }
    },
  };
}

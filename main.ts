/**
 * The turbosparse command line.
 *
 *   deno run --allow-read --allow-ffi main.ts generate --model FILE --prompt TEXT
 *   deno run --allow-read main.ts inspect --model FILE
 *
 * @module
 */

import { convertCommand } from "./plugins/cli/convert.ts";
import { demoCommand } from "./plugins/cli/demo.ts";
import { generateCommand } from "./plugins/cli/generate.ts";
import { inspectCommand } from "./plugins/cli/inspect.ts";
import { serveCommand } from "./plugins/cli/serve.ts";

const COMMANDS: Record<string, { run: (args: string[]) => Promise<void>; help: string }> = {
  generate: { run: generateCommand, help: "generate text from a prompt" },
  inspect: { run: inspectCommand, help: "describe a model file and the backends available" },
  convert: {
    run: convertCommand,
    help: "convert between dense and PowerInfer's sparse layout (and calibrate cats)",
  },
  serve: { run: serveCommand, help: "serve the OpenAI-compatible HTTP API" },
  demo: { run: demoCommand, help: "run the shipped model with stats" },
};

function help(): string {
  const lines = [
    "usage: main.ts COMMAND [options]   (COMMAND --help for its options)",
    "",
    "commands:",
  ];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.help}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const [name, ...rest] = Deno.args;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    console.error(
      name && name !== "--help" && name !== "-h"
        ? `unknown command "${name}"\n\n${help()}`
        : help(),
    );
    Deno.exit(name === "--help" || name === "-h" ? 0 : 2);
  }
  try {
    await command.run(rest);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}

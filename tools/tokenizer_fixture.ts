/**
 * Builds the tokenizer fixtures in `tests/fixtures/tokenizer/` with SentencePiece itself.
 *
 * Trains two small llama-style BPE models on English text found offline (Debian's
 * `/usr/share/common-licenses` and package copyright files), then records what `spm_encode` and
 * `spm_decode` produce for a varied set of texts and id sequences. The tests replay these.
 *
 * Needs the Debian `sentencepiece` package (`spm_train`, `spm_encode`, `spm_decode`).
 * Run: `deno run --allow-read --allow-write --allow-run tools/tokenizer_fixture.ts [--keep DIR]`
 * (`--keep` leaves the trained `.model` files in DIR, e.g. to compare more text with spm_encode).
 *
 * @module
 */

const OUT_DIR = new URL("../tests/fixtures/tokenizer/", import.meta.url);

/** Texts without newlines: spm_encode reads its input one line at a time. */
const TEXTS: string[] = [
  "",
  "Hello world",
  "Hello, world! How are you today?",
  "The quick brown fox jumps over the lazy dog.",
  " leading space",
  "   three leading spaces",
  "trailing space ",
  "trailing spaces   ",
  "multiple   spaces    between     words",
  " ",
  "   ",
  "\t",
  "tab\tseparated\tvalues",
  "\t leading tab and space",
  "digits 1234567890 and 3.14159, 2,718 and -42",
  "version 0.1.97-3+b1 released 2023-04-12",
  "Punctuation: ;:!?.,'\"()[]{}<>/\\|@#$%^&*-_=+~`",
  "don't won't it's they're we've I'm you'll he'd",
  "Café, naïve, résumé, façade, Ångström, Zürich, São Paulo, Øresund",
  "Ελληνικά και русский язык",
  "日本語のテキストと中文文本",
  "한국어 텍스트",
  "emoji 🙂🚀 and flags 🇩🇪 and family 👨‍👩‍👧",
  "🙂",
  "math ∑ ∫ √ ∞ ≠ ≤ ≥ and arrows → ← ↔",
  "rare letters ǂ ʬ ꙮ 𓀀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "supercalifragilisticexpialidocious antidisestablishmentarianism",
  "Pneumonoultramicroscopicsilicovolcanoconiosis",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "the the the the the the the the",
  "GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007",
  'THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"',
  "Permission is hereby granted, free of charge, to any person obtaining a copy",
  "https://www.apache.org/licenses/LICENSE-2.0 <mailto:someone@example.com>",
  "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
  "function f(x) { return x * 2; } // comment",
  "▁ already has the meta symbol ▁▁ twice",
  "mixed\u00a0non-breaking\u2009thin\u3000ideographic spaces",
  "zero\u200bwidth\u200djoiner and combining e\u0301 vs é",
  "<s> </s> <unk> <0x41> are just text here",
  "x",
  ".",
  "a b c d e f g h i j k l m n o p q r s t u v w x y z",
];

/** Id sequences (as pieces) decoded by spm_decode: checks BOS/byte/leading-space rules. */
const DECODE_PIECES: string[][] = [
  ["<s>", "▁the"],
  ["▁the", "</s>"],
  ["▁", "▁the"],
  ["▁▁", "the"],
  ["<0x20>", "▁the"],
  ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"],
  ["<0xE2>", "<0x82>", "▁the"],
  ["<0xFF>", "<0x41>"],
  ["<0xC3>"],
  ["<unk>", "▁the"],
  ["▁the", "<unk>", "▁the"],
  ["<s>", "<s>", "▁", "the"],
  ["the", "▁the"],
];

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function readIfPresent(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return ""; // Packages without a copyright file are skipped.
  }
}

/** Package copyright files, sorted by path. */
async function copyrightFiles(): Promise<string[]> {
  const docs: string[] = [];
  for await (const e of Deno.readDir("/usr/share/doc")) {
    docs.push(`/usr/share/doc/${e.name}/copyright`);
  }
  return docs.sort();
}

/** Concatenates the licenses and then copyright files in a fixed order, up to `maxChars`. */
async function buildCorpus(path: string, maxChars: number): Promise<void> {
  const files: string[] = [];
  for await (const e of Deno.readDir("/usr/share/common-licenses")) {
    files.push(`/usr/share/common-licenses/${e.name}`);
  }
  files.sort();
  let text = "";
  for (const f of [...files, ...await copyrightFiles()]) {
    if (text.length >= maxChars) break;
    text += await readIfPresent(f) + "\n";
  }
  await Deno.writeTextFile(path, text.slice(0, maxChars));
}

/**
 * Real-world lines the models were not trained on: distinct lines from the copyright files at
 * the end of the sorted list (the corpus takes them from the start).
 */
async function heldOutLines(count: number): Promise<string[]> {
  const seen = new Set<string>();
  for (const f of (await copyrightFiles()).reverse()) {
    for (const line of (await readIfPresent(f)).split("\n")) {
      if (seen.size >= count) return [...seen];
      if (line.trim() === "" || line.length > 200 || line.includes("\r")) continue;
      seen.add(line);
    }
  }
  return [...seen];
}

/** Piece types as GGUF numbers them: 1 normal, 2 unknown, 3 control, 6 byte. */
function pieceType(piece: string): number {
  if (piece === "<unk>") return 2;
  if (piece === "<s>" || piece === "</s>") return 3;
  if (/^<0x[0-9A-F]{2}>$/.test(piece)) return 6;
  return 1;
}

async function makeFixture(
  tmp: string,
  name: string,
  corpus: string,
  heldOut: number,
  extraArgs: string[],
): Promise<void> {
  const prefix = `${tmp}/${name}`;
  await run("spm_train", [
    `--input=${corpus}`,
    `--model_prefix=${prefix}`,
    "--model_type=bpe",
    "--split_digits=true",
    "--normalization_rule_name=identity",
    "--remove_extra_whitespaces=false",
    "--add_dummy_prefix=true",
    "--allow_whitespace_only_pieces=true",
    "--num_threads=2",
    "--minloglevel=2",
    ...extraArgs,
  ]);
  const tokens: string[] = [];
  const scores: number[] = [];
  for (const line of (await Deno.readTextFile(`${prefix}.vocab`)).split("\n")) {
    if (line === "") continue;
    const tab = line.lastIndexOf("\t");
    tokens.push(line.slice(0, tab));
    scores.push(Number(line.slice(tab + 1)));
  }
  const texts = [...TEXTS, ...await heldOutLines(heldOut)];
  const model = ["--model", `${prefix}.model`];
  const input = texts.join("\n") + "\n";
  const idLines = (await run("spm_encode", [...model, "--output_format=id"], input)).split("\n");
  const pieceLines = (await run("spm_encode", [...model, "--output_format=piece"], input))
    .split("\n");
  const parseIds = (line: string) => line === "" ? [] : line.split(" ").map(Number);
  // Pieces only for the hand-written texts, to keep the fixture small.
  const encoded = texts.map((text, i) => ({
    text,
    ids: parseIds(idLines[i]),
    pieces: i < TEXTS.length ? pieceLines[i].split(" ").filter((p) => p !== "") : undefined,
  }));
  const idsText = encoded.map((c) => c.ids.join(" ")).join("\n") + "\n";
  const roundTrip = (await run("spm_decode", [...model, "--input_format=id"], idsText)).split("\n");
  // spm_decode's output, kept only where it differs from the text (the "▁" text does).
  const withDecoded = encoded.map((c, i) =>
    roundTrip[i] === c.text ? c : { ...c, decoded: roundTrip[i] }
  );

  const decodeIds = DECODE_PIECES.map((ps) => ps.map((p) => tokens.indexOf(p)))
    .filter((ids) => !ids.includes(-1));
  const decodeText = decodeIds.map((ids) => ids.join(" ")).join("\n") + "\n";
  const decodedLines = (await run("spm_decode", [...model, "--input_format=id"], decodeText))
    .split("\n");
  const decoded = decodeIds.map((ids, i) => ({ ids, text: decodedLines[i] }));

  const fixture = {
    about: `SentencePiece BPE model trained by tools/tokenizer_fixture.ts (${extraArgs.join(" ")})`,
    model: "llama",
    bos: tokens.indexOf("<s>"),
    eos: tokens.indexOf("</s>"),
    unk: tokens.indexOf("<unk>"),
    tokens,
    scores,
    types: tokens.map(pieceType),
    encoded: withDecoded,
    decoded,
  };
  await Deno.writeTextFile(new URL(`${name}.json`, OUT_DIR), JSON.stringify(fixture) + "\n");
  console.log(
    `${name}.json: ${tokens.length} pieces, ${encoded.length} texts, ${decoded.length} decodes`,
  );
}

if (import.meta.main) {
  const keep = Deno.args.indexOf("--keep");
  const tmp = keep >= 0
    ? Deno.args[keep + 1]
    : await Deno.makeTempDir({ prefix: "tokenizer_fixture_" });
  await Deno.mkdir(tmp, { recursive: true });
  const corpus = `${tmp}/corpus.txt`;
  await buildCorpus(corpus, 3_000_000);
  await Deno.mkdir(OUT_DIR, { recursive: true });
  // Llama-like: byte fallback, every byte reachable.
  await makeFixture(tmp, "spm_bpe_2000", corpus, 150, [
    "--vocab_size=2000",
    "--byte_fallback=true",
    "--character_coverage=0.9995",
  ]);
  // No byte fallback and low coverage: unknown characters become <unk>.
  await makeFixture(tmp, "spm_bpe_unk_400", corpus, 0, [
    "--vocab_size=400",
    "--byte_fallback=false",
    "--character_coverage=0.99",
  ]);
  if (keep < 0) await Deno.remove(tmp, { recursive: true });
}

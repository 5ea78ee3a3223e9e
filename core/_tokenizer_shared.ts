/**
 * Pieces shared by the SentencePiece and GPT-2 tokenizers: the pair-merge loop, SentencePiece's
 * UTF-8 decoding rule, and the byte holder behind the streaming decoders.
 *
 * @module
 */

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/**
 * Merges adjacent symbols until no pair can merge, lowest priority first, leftmost on ties.
 *
 * A binary heap of candidate pairs with lazy deletion over a linked list of symbols keeps this
 * O(n log n) in the number of symbols; a stale pair is recognised because merged symbols only
 * grow, so its recorded combined length no longer matches.
 *
 * @param parts the initial symbols, in order
 * @param priority lower merges first; undefined when `left + right` may not merge
 * @param frozen 1 for symbols that never merge with a neighbour
 * @returns the final symbols, in order
 */
export function mergeSymbols(
  parts: readonly string[],
  priority: (left: string, right: string) => number | undefined,
  frozen?: Uint8Array,
): string[] {
  const n = parts.length;
  const sym = parts.slice();
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new PairHeap();
  const offer = (left: number) => {
    if (left < 0 || next[left] < 0) return;
    const right = next[left];
    if (frozen !== undefined && (frozen[left] === 1 || frozen[right] === 1)) return;
    const p = priority(sym[left], sym[right]);
    if (p !== undefined) heap.push(p, left, sym[left].length + sym[right].length);
  };
  for (let i = 0; i + 1 < n; i++) offer(i);

  while (heap.size > 0) {
    const left = heap.popLeft();
    const length = heap.lastLength;
    const right = next[left];
    if (sym[left] === "" || right < 0 || sym[left].length + sym[right].length !== length) continue;
    sym[left] += sym[right];
    sym[right] = "";
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    offer(prev[left]);
    offer(left);
  }
  const out: string[] = [];
  for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push(sym[i]);
  return out;
}

/** Min-heap of (priority, left index, combined length), ordered by priority then left index. */
class PairHeap {
  private prio: number[] = [];
  private left: number[] = [];
  private len: number[] = [];
  /** Combined length of the pair last returned by popLeft(). */
  lastLength = 0;

  get size(): number {
    return this.prio.length;
  }

  private less(a: number, b: number): boolean {
    return this.prio[a] < this.prio[b] ||
      (this.prio[a] === this.prio[b] && this.left[a] < this.left[b]);
  }

  private swap(a: number, b: number): void {
    const p = this.prio[a], l = this.left[a], n = this.len[a];
    this.prio[a] = this.prio[b];
    this.left[a] = this.left[b];
    this.len[a] = this.len[b];
    this.prio[b] = p;
    this.left[b] = l;
    this.len[b] = n;
  }

  push(priority: number, left: number, length: number): void {
    this.prio.push(priority);
    this.left.push(left);
    this.len.push(length);
    let i = this.prio.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the best pair; returns its left index and sets lastLength. */
  popLeft(): number {
    const top = this.left[0];
    this.lastLength = this.len[0];
    const last = this.prio.length - 1;
    this.swap(0, last);
    this.prio.pop();
    this.left.pop();
    this.len.pop();
    let i = 0;
    while (true) {
      const a = 2 * i + 1, b = a + 1;
      let best = i;
      if (a < last && this.less(a, best)) best = a;
      if (b < last && this.less(b, best)) best = b;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

const REPLACEMENT = "\uFFFD";

/** Is `b` a UTF-8 continuation byte (10xxxxxx)? */
function isTrail(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

/**
 * Decodes UTF-8 the way SentencePiece does: each byte that does not start a valid, complete,
 * shortest-form sequence becomes one U+FFFD (so `E2 82` gives two, unlike TextDecoder's one).
 *
 * @param bytes the byte run
 * @param final false to stop before a trailing sequence that later bytes could still complete
 * @returns the text and how many bytes it used (all of them when `final`)
 */
export function decodeUtf8(
  bytes: readonly number[],
  final: boolean,
): { text: string; used: number } {
  let text = "";
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i];
    if (b0 < 0x80) {
      text += String.fromCharCode(b0);
      i++;
      continue;
    }
    const need = (b0 & 0xe0) === 0xc0 ? 2 : (b0 & 0xf0) === 0xe0 ? 3 : (b0 & 0xf8) === 0xf0 ? 4 : 1;
    if (need > 1 && i + need > bytes.length && !final) {
      let couldComplete = true;
      for (let j = i + 1; j < bytes.length; j++) couldComplete &&= isTrail(bytes[j]);
      if (couldComplete) break;
    }
    const cp = need > 1 && i + need <= bytes.length ? sequenceValue(bytes, i, need) : -1;
    if (cp < 0) {
      text += REPLACEMENT;
      i++;
    } else {
      text += String.fromCodePoint(cp);
      i += need;
    }
  }
  return { text, used: i };
}

/** The code point of the `need`-byte sequence at `i`, or -1 if it is not valid UTF-8. */
function sequenceValue(bytes: readonly number[], i: number, need: number): number {
  const leadBits = [0, 0, 0x1f, 0x0f, 0x07][need];
  const minimum = [0, 0, 0x80, 0x800, 0x10000][need];
  let cp = bytes[i] & leadBits;
  for (let j = 1; j < need; j++) {
    if (!isTrail(bytes[i + j])) return -1;
    cp = (cp << 6) | (bytes[i + j] & 0x3f);
  }
  const valid = cp >= minimum && (cp < 0xd800 || (cp >= 0xe000 && cp <= 0x10ffff));
  return valid ? cp : -1;
}

/**
 * Joins text and raw bytes into printable text, holding back bytes of an unfinished UTF-8
 * character. A text chunk ends the byte run, as SentencePiece decodes each run on its own.
 */
export class ByteTextJoiner {
  private pending: number[] = [];

  /** Appends text (ending any byte run); returns what is printable now. */
  text(s: string): string {
    return this.flush() + s;
  }

  /** Appends bytes; returns the complete characters now available. */
  bytes(bs: readonly number[]): string {
    for (const b of bs) this.pending.push(b);
    const { text, used } = decodeUtf8(this.pending, false);
    this.pending = this.pending.slice(used);
    return text;
  }

  /** Ends the byte run; unfinished characters become U+FFFD. */
  flush(): string {
    if (this.pending.length === 0) return "";
    const { text } = decodeUtf8(this.pending, true);
    this.pending = [];
    return text;
  }
}

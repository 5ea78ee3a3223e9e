/**
 * Bulk UTF-8 decoding for GGUF string arrays: a 32000-token vocabulary decodes with one
 * TextDecoder call instead of 32000, then is sliced by each string's UTF-16 length.
 *
 * @module
 */

const fatal = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder();

/**
 * Decode `lengths[i]` bytes at `starts[i]` of `bytes` for every i. Valid UTF-8 takes the single
 * decode; anything else (invalid bytes, a character split across strings) falls back to
 * decoding each string on its own, with U+FFFD for bad bytes.
 * @param bytes the file
 * @param starts byte offset of each string
 * @param lengths byte length of each string
 */
export function decodeStrings(
  bytes: Uint8Array,
  starts: Float64Array,
  lengths: Float64Array,
): string[] {
  const n = starts.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += lengths[i];
  const joined = new Uint8Array(total);
  // UTF-16 units of each string: one per non-continuation byte, two for 4-byte sequences
  const units = new Float64Array(n);
  let j = 0;
  let split = false;
  for (let i = 0; i < n; i++) {
    const s = starts[i];
    const len = lengths[i];
    if (len > 0 && (bytes[s] & 0xc0) === 0x80) split = true;
    let u = 0;
    for (let k = 0; k < len; k++) {
      const c = bytes[s + k];
      joined[j++] = c;
      if ((c & 0xc0) !== 0x80) u += c >= 0xf0 ? 2 : 1;
    }
    units[i] = u;
  }
  const text = split ? null : tryDecode(joined);
  const out: string[] = new Array(n);
  if (text === null) {
    for (let i = 0; i < n; i++) {
      out[i] = lenient.decode(bytes.subarray(starts[i], starts[i] + lengths[i]));
    }
    return out;
  }
  let p = 0;
  for (let i = 0; i < n; i++) {
    out[i] = text.slice(p, p + units[i]);
    p += units[i];
  }
  return out;
}

function tryDecode(b: Uint8Array): string | null {
  try {
    return fatal.decode(b);
  } catch {
    return null;
  }
}

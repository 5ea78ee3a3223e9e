/**
 * Stop sequences over streamed text: text that could still become a stop string is held back,
 * so a stop never leaks into the output even when split across tokens.
 *
 * @example
 * ```ts
 * import { StopMatcher } from "./stop.ts";
 * const m = new StopMatcher(["\n\n"]);
 * m.push("Hello\n"); // { text: "Hello", stopped: false } ("\n" is held back)
 * m.push("\nmore"); // { text: "", stopped: true }
 * ```
 *
 * @module
 */

/** What `push` releases: text safe to send, and whether a stop string was reached. */
export interface StopResult {
  text: string;
  stopped: boolean;
}

/** Finds the first of several stop strings in text that arrives in pieces. */
export class StopMatcher {
  #pending = "";
  readonly #longest: number;

  /** @param stops non-empty stop strings (none: everything passes straight through) */
  constructor(readonly stops: readonly string[]) {
    this.#longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Add a piece; returns the text before any stop, holding back a possible stop prefix. */
  push(piece: string): StopResult {
    const text = this.#pending + piece;
    let cut = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.#pending = "";
      return { text: text.slice(0, cut), stopped: true };
    }
    const hold = this.#holdLength(text);
    this.#pending = text.slice(text.length - hold);
    return { text: text.slice(0, text.length - hold), stopped: false };
  }

  /** The held-back text, at the end of a generation that did not stop on a string. */
  flush(): string {
    const text = this.#pending;
    this.#pending = "";
    return text;
  }

  /** Length of the longest suffix of `text` that begins some stop string. */
  #holdLength(text: string): number {
    for (let k = Math.min(text.length, this.#longest - 1); k > 0; k--) {
      const tail = text.slice(text.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) return k;
    }
    return 0;
  }
}

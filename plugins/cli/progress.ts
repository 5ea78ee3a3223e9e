/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal.
 *
 * @module
 */

const enc = new TextEncoder();

/** A progress reporter: `update(done, total)` redraws at most ~20 times a second. */
export function progressBar(
  label: string,
): { update(done: number, total: number): void; end(): void } {
  const tty = isTty();
  let last = 0, drawn = false;
  return {
    update(done, total) {
      if (!tty) return;
      const now = performance.now();
      if (done < total && now - last < 50) return;
      last = now;
      const frac = total > 0 ? done / total : 1;
      const width = 30, fill = Math.round(frac * width);
      const bar = "█".repeat(fill) + "░".repeat(width - fill);
      Deno.stderr.writeSync(
        enc.encode(`\r${label} ${bar} ${(frac * 100).toFixed(0).padStart(3)}%`),
      );
      drawn = true;
    },
    end() {
      if (drawn) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
    },
  };
}

function isTty(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** A one-line progress bar on stderr for large transfers, only when stderr is a terminal. */
export interface Progress {
  add(bytes: number): void;
  done(): void;
}

const MIB = 1024 * 1024;

export function progress(label: string, totalBytes: number): Progress {
  if (!process.stderr.isTTY || totalBytes < 8 * MIB) return { add: () => undefined, done: () => undefined };
  const started = Date.now();
  let sent = 0;
  let shown = 0;
  const draw = (): void => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const pct = Math.floor((100 * sent) / totalBytes);
    const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
    process.stderr.write(`\r${label} [${bar}] ${pct}% ${(sent / MIB).toFixed(1)}/${(totalBytes / MIB).toFixed(1)} MiB ${(sent / MIB / secs).toFixed(1)} MiB/s`);
  };
  return {
    add(bytes) {
      sent += bytes;
      if (Date.now() - shown > 200) {
        shown = Date.now();
        draw();
      }
    },
    done() {
      draw();
      process.stderr.write('\n');
    },
  };
}

/**
 * Linux names and symlink targets are bytes (any but '/' and NUL); ChunkFS keeps them as
 * strings. The mount's binding (mount/native/raw_names.c) decodes valid UTF-8 as the characters
 * it encodes and every other byte b as the private-use character U+F700 + b (so does each byte
 * of a character in U+F780..U+F7FF itself, to keep the mapping one to one). Those characters
 * are valid Unicode: protobuf, the log and checkpoints carry them unchanged. This module maps
 * such a string back to its bytes, and counts them for the limits Linux sets in bytes
 * (NAME_MAX, a symlink's size).
 */

const ESCAPE_BASE = 0xf700;
const ESCAPED = /[\uf780-\uf7ff]/;
const ESCAPED_ALL = /[\uf780-\uf7ff]/g;

/** The bytes `name` stands for. */
export function rawName(name: string): Buffer {
  if (!ESCAPED.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let from = 0;
  for (const m of name.matchAll(ESCAPED_ALL)) {
    parts.push(Buffer.from(name.slice(from, m.index), 'utf8'), Buffer.of(m[0].charCodeAt(0) - ESCAPE_BASE));
    from = m.index + 1;
  }
  parts.push(Buffer.from(name.slice(from), 'utf8'));
  return Buffer.concat(parts);
}

/** Writes rawName(name) into `out` at `at` (as much as fits); returns the bytes written. */
export function writeRawName(out: Buffer, name: string, at: number): number {
  // Most names are plain UTF-8, which write() encodes in place.
  return ESCAPED.test(name) ? rawName(name).copy(out, at) : out.write(name, at, 'utf8');
}

/** rawName(name).length, without building it. */
export function rawLength(name: string): number {
  const utf8 = Buffer.byteLength(name, 'utf8');
  if (utf8 === name.length) return utf8; // ASCII
  // Each escape is three bytes in UTF-8 and stands for one.
  const escapes = name.match(ESCAPED_ALL)?.length ?? 0;
  return utf8 - 2 * escapes;
}

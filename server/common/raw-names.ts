/**
 * Linux names and symlink targets are bytes (any but '/' and NUL); ChunkFS keeps them as
 * strings. The mount's binding (mount/native/raw_names.c, which decodeRawName mirrors) decodes
 * valid UTF-8 as the characters it encodes and every other byte b as the private-use character
 * U+F700 + b (so does each byte of a character in U+F780..U+F7FF itself, to keep the mapping
 * one to one). Those characters are valid Unicode: protobuf, the log and checkpoints carry
 * them unchanged. This module maps such a string back to its bytes, counts them for the limits
 * Linux sets in bytes (NAME_MAX, a symlink's size), and tells the strings the mapping makes.
 */

const ESCAPE_BASE = 0xf700;
const ESCAPED_FIRST = 0xf780;
const ESCAPED_LAST = 0xf7ff;
const ESCAPED = /[\uf780-\uf7ff]/;
const ESCAPED_ALL = /[\uf780-\uf7ff]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The bytes `name` stands for. */
export function rawName(name: string): Buffer {
  if (!ESCAPED.test(name)) return Buffer.from(name, 'utf8');
  const out = Buffer.allocUnsafe(rawLength(name));
  let at = 0;
  let from = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < ESCAPED_FIRST || c > ESCAPED_LAST) continue;
    if (from < i) at += out.write(name.slice(from, i), at, 'utf8');
    out[at++] = c - ESCAPE_BASE;
    from = i + 1;
  }
  if (from < name.length) out.write(name.slice(from), at, 'utf8');
  return out;
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

/**
 * True when `name` is what the binding makes of some bytes. Others would stand for the bytes of
 * another name (U+F7C3 U+F7A9 for "é"; a lone surrogate for U+FFFD): a file made under one
 * could not be looked up through the mount. Only strings made elsewhere (the CLI's) can fail.
 */
export function isRawName(name: string): boolean {
  if (LONE_SURROGATE.test(name)) return false;
  return !ESCAPED.test(name) || decodeRawName(rawName(name)) === name;
}

/** The string the binding makes of `bytes` (raw_names.c); none is NUL. */
export function decodeRawName(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const [cp, n] = utf8Sequence(bytes, i);
    if (n === 0 || (cp >= ESCAPED_FIRST && cp <= ESCAPED_LAST)) {
      out += String.fromCharCode(ESCAPE_BASE + bytes[i]);
      i++;
    } else {
      out += String.fromCodePoint(cp);
      i += n;
    }
  }
  return out;
}

const continuation = (b: number | undefined): boolean => b !== undefined && (b & 0xc0) === 0x80;

/** The code point and length of the valid UTF-8 sequence at `i`, or length 0 when none starts there. */
function utf8Sequence(s: Uint8Array, i: number): [number, number] {
  const b = s[i];
  if (b < 0x80) return [b, 1];
  if (b >= 0xc2 && b <= 0xdf) return continuation(s[i + 1]) ? [((b & 0x1f) << 6) | (s[i + 1] & 0x3f), 2] : [0, 0];
  if (b >= 0xe0 && b <= 0xef) {
    if (!continuation(s[i + 1]) || !continuation(s[i + 2])) return [0, 0];
    if ((b === 0xe0 && s[i + 1] < 0xa0) || (b === 0xed && s[i + 1] >= 0xa0)) return [0, 0]; // overlong; a surrogate
    return [((b & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f), 3];
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (!continuation(s[i + 1]) || !continuation(s[i + 2]) || !continuation(s[i + 3])) return [0, 0];
    if ((b === 0xf0 && s[i + 1] < 0x90) || (b === 0xf4 && s[i + 1] >= 0x90)) return [0, 0]; // overlong; past U+10FFFF
    return [((b & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f), 4];
  }
  return [0, 0];
}

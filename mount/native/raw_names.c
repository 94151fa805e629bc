/*
 * Linux names (and symlink targets) are bytes, any but '/' and NUL; ChunkFS keeps them as
 * strings. Valid UTF-8 becomes the characters it encodes. Every other byte b (0x80-0xFF: a
 * Latin-1 name, a cut sequence) becomes the private-use character U+F700 + b, which is valid
 * Unicode and so survives protobuf, the log and checkpoints unchanged; so does each byte of a
 * character that is itself in U+F780-U+F7FF, which makes the mapping one to one.
 * server/common/raw-names.ts maps back (the listing, readlink) and counts the bytes.
 */
#include "raw_names.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ESCAPE_BASE 0xF700
#define ESCAPED_FIRST 0xF780
#define ESCAPED_LAST 0xF7FF

static int continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

/*
 * The length of the valid UTF-8 sequence at s (1-4) and its code point in *cp, or 0 when the
 * byte at s starts none: overlong forms, surrogates and code points past U+10FFFF are invalid.
 */
static int utf8_sequence(const uint8_t *s, uint32_t *cp) {
  uint8_t b = s[0];
  if (b < 0x80) { *cp = b; return 1; }
  if (b >= 0xC2 && b <= 0xDF) {
    if (!continuation(s[1])) return 0;
    *cp = ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (b >= 0xE0 && b <= 0xEF) {
    if (!continuation(s[1]) || !continuation(s[2])) return 0;
    if (b == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
    if (b == 0xED && s[1] >= 0xA0) return 0; /* a surrogate */
    *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!continuation(s[1]) || !continuation(s[2]) || !continuation(s[3])) return 0;
    if (b == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (b == 0xF4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
    *cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
  }
  return 0;
}

/* A sequence that stands for itself: valid, and not a character the escapes use. */
static int plain_sequence(const uint8_t *s, uint32_t *cp) {
  int n = utf8_sequence(s, cp);
  return n > 0 && (*cp < ESCAPED_FIRST || *cp > ESCAPED_LAST) ? n : 0;
}

napi_value raw_name_string(napi_env env, const char *bytes) {
  const uint8_t *s = (const uint8_t *)bytes;
  size_t len = strlen(bytes);
  napi_value out = NULL;
  /* Nearly every name is plain UTF-8 (often ASCII): V8 decodes those itself. */
  size_t i = 0;
  uint32_t cp;
  while (i < len) {
    int n = plain_sequence(s + i, &cp);
    if (n == 0) break;
    i += n;
  }
  if (i == len) {
    napi_create_string_utf8(env, bytes, len, &out);
    return out;
  }
  /* UTF-16 never needs more units than the bytes it comes from. */
  char16_t *units = malloc(len * sizeof(char16_t));
  if (!units) { /* out of memory: the name is garbled, the request still answered */
    napi_create_string_utf8(env, bytes, len, &out);
    return out;
  }
  size_t u = 0;
  for (i = 0; i < len;) {
    int n = plain_sequence(s + i, &cp);
    if (n == 0) {
      units[u++] = (char16_t)(ESCAPE_BASE + s[i]);
      i++;
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      units[u++] = (char16_t)(0xD800 + (cp >> 10));
      units[u++] = (char16_t)(0xDC00 + (cp & 0x3FF));
      i += n;
    } else {
      units[u++] = (char16_t)cp;
      i += n;
    }
  }
  napi_create_string_utf16(env, units, u, &out);
  free(units);
  return out;
}

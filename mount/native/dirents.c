/*
 * readdir replies: struct fuse_dirent records (linux/fuse.h: u64 ino, u64 off, u32 namelen,
 * u32 type, the name, zeros to 8 bytes), each record's off the position after it, which the
 * kernel passes back to go on. Packed here rather than in JavaScript: a listing is often the
 * first of its size in the mount's life, and 5,000 entries took 9-20 ms as cold JavaScript.
 */
#include "dirents.h"
#include <string.h>

#define HEADER 24
#define S_IFMT_BITS 0170000
#define S_IFDIR_BITS 0040000

/*
 * The bytes a name stands for, into `out` (room for len bytes): the UTF-8 of U+F780..U+F7FF
 * (EF 9E/9F xx) is the escape of the byte cp - 0xF700 (raw_names.c), the rest is as is.
 */
static size_t raw_bytes(const uint8_t *s, size_t len, uint8_t *out) {
  size_t n = 0;
  for (size_t i = 0; i < len; n++) {
    if (i + 2 < len && s[i] == 0xEF && (s[i + 1] == 0x9E || s[i + 1] == 0x9F) && (s[i + 2] & 0xC0) == 0x80) {
      out[n] = (uint8_t)((((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)) - 0x700);
      i += 3;
    } else {
      out[n] = s[i++];
    }
  }
  return n;
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t ino_at(const Listing *l, size_t i) {
  uint64_t bits = 0;
  for (int k = 0; k < 8; k++) bits |= (uint64_t)l->inos[8 * i + k] << (8 * k);
  double d;
  memcpy(&d, &bits, sizeof d);
  return (uint64_t)d;
}

static uint32_t mode_at(const Listing *l, size_t i) {
  const uint8_t *p = l->modes + 4 * i;
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One record at out[at] if it fits in size; returns its length, 0 if it does not fit. */
static size_t record(uint8_t *out, size_t at, size_t size, uint64_t ino, uint64_t next, uint32_t mode,
                     const uint8_t *name, size_t name_len) {
  /* The raw bytes are never more than the UTF-8 ones: convert in place once there is room for those. */
  size_t worst = (HEADER + name_len + 7) & ~(size_t)7;
  uint8_t tmp[1024];
  size_t raw_len;
  if (at + worst <= size) {
    raw_len = raw_bytes(name, name_len, out + at + HEADER);
  } else if (name_len <= sizeof tmp) {
    raw_len = raw_bytes(name, name_len, tmp);
    if (at + ((HEADER + raw_len + 7) & ~(size_t)7) > size) return 0;
    memcpy(out + at + HEADER, tmp, raw_len);
  } else {
    return 0;
  }
  size_t len = (HEADER + raw_len + 7) & ~(size_t)7;
  put_u64(out + at, ino);
  put_u64(out + at + 8, next);
  put_u32(out + at + 16, (uint32_t)raw_len);
  put_u32(out + at + 20, (mode & S_IFMT_BITS) >> 12);
  memset(out + at + HEADER + raw_len, 0, len - HEADER - raw_len); /* never bytes of an earlier reply */
  return len;
}

long pack_dirents(const Listing *l, uint64_t offset, uint8_t *out, size_t size) {
  size_t at = 0;
  const uint8_t *name = l->names;
  const uint8_t *end = l->names + l->names_len;
  for (uint64_t pos = 0; pos < l->n + 2; pos++) {
    const uint8_t *s;
    size_t len;
    uint64_t ino;
    uint32_t mode;
    if (pos < 2) {
      s = (const uint8_t *)"..";
      len = pos + 1;
      ino = pos == 0 ? l->dot_ino : l->dotdot_ino;
      mode = S_IFDIR_BITS;
    } else {
      const uint8_t *nul = memchr(name, 0, (size_t)(end - name));
      if (!nul) return -1;
      s = name;
      len = (size_t)(nul - name);
      name = nul + 1;
      ino = ino_at(l, pos - 2);
      mode = mode_at(l, pos - 2);
    }
    if (pos < offset) continue;
    size_t used = record(out, at, size, ino, pos + 1, mode, s, len);
    if (used == 0) break;
    at += used;
  }
  return (long)at;
}

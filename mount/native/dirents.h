/* readdir replies packed in C: see dirents.c. */
#ifndef CHUNKFS_DIRENTS_H
#define CHUNKFS_DIRENTS_H
#include <stddef.h>
#include <stdint.h>

/* A directory listing as a ListingPage lays it out (server/common/dir-listing.ts), plus its dots. */
typedef struct {
  uint64_t dot_ino, dotdot_ino;
  /* the entries' names in UTF-8, each ended by a NUL; raw bytes as U+F780..U+F7FF (raw_names.c) */
  const uint8_t *names;
  size_t names_len;
  /* n little-endian f64 inode numbers and n little-endian u32 modes, not necessarily aligned */
  const uint8_t *inos, *modes;
  size_t n;
} Listing;

/*
 * The listing from position `offset` on ('.' and '..' are 0 and 1) as struct fuse_dirent
 * records in at most `size` bytes of `out`; returns the bytes used. -1 when the names end
 * before n of them.
 */
__attribute__((visibility("hidden"))) long pack_dirents(const Listing *l, uint64_t offset, uint8_t *out, size_t size);

#endif

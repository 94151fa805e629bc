import type { ListingPage } from '../server/common/dir-listing';
import { packKernelDirents } from './fuse-binding';

/** A directory listing as readdir hands it to the kernel: '.' (`ino`), '..' (`parent`), then `page`. */
export interface Listing {
  readonly ino: number;
  readonly parent: number;
  readonly page: ListingPage;
}

/**
 * Where replies are packed. The kernel offers up to 1 MiB per readdir (max_pages), most of
 * which a listing does not use: a fresh zeroed buffer of that size per call (`rm -rf` of a tree
 * makes thousands of calls) cost about 0.8 ms each and most of the mount's garbage collection.
 */
let scratch = Buffer.alloc(0);

/**
 * The entries of `listing` from position `offset` on ('.' is 0, '..' 1), as the kernel's
 * fuse_dirent records in at most `size` bytes; each record's offset is the position after it,
 * which the kernel passes back to continue. Packed by the binding (mount/native/dirents.c)
 * straight from the page's bytes. The bytes are valid until the next call (reply with them at
 * once): not copied out, as a fresh copy of a 5,000-entry reply cost 0.6 ms.
 */
export function packDirents(listing: Listing, offset: number, size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafe(size);
  const out = scratch.subarray(0, size);
  return out.subarray(0, packKernelDirents(out, offset, listing.ino, listing.parent, listing.page));
}

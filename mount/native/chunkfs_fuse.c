/*
 * ChunkFS's FUSE binding: libfuse 3's low-level API driven by Node's own event loop.
 *
 * /dev/fuse is polled by libuv on the main thread; each request is handed to one JavaScript
 * dispatcher there and answered later, asynchronously, through the reply functions below. No
 * thread sits between the kernel and the file system, so a request costs one wake-up, and the
 * kernel may cache entries and attributes because single inodes can be invalidated.
 *
 * A request travels to JavaScript as a number: a user-space pointer (below 2^48 on the 64-bit
 * machines Node runs on) is exact in a double. JavaScript answers each request exactly once.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>
#include "dirents.h"
#include "raw_names.h"

/* The operations JavaScript sees; mount/fuse-binding.ts has the same numbers. */
enum Op {
  OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK,
  OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE,
  OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_STATFS, OP_CREATE, OP_UNMOUNTED,
  OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_FORGET_MULTI, OP_FALLOCATE,
};

/* Requests handled per wake-up before libuv gets a turn (fairness with sockets). */
#define BATCH 64
#define MAX_ARGS 10

/*
 * Inodes known to have no security.capability, each until a time (uv_now, ms), as JavaScript
 * last said (markNoCapability): an open-addressing hash map. Ino 0 marks an empty slot,
 * TOMBSTONE a removed one. An inode not in it, or past its time, is asked about in JavaScript.
 */
#define TOMBSTONE UINT64_MAX
typedef struct {
  uint64_t ino;
  uint64_t until;
} InoTime;
typedef struct {
  InoTime *slots;
  size_t cap; /* a power of two, or 0 */
  size_t live;
  size_t tombstones;
} InoTimes;

typedef struct {
  napi_env env;
  struct fuse_session *se;
  napi_ref dispatch;
  napi_ref resource;
  napi_async_context context;
  uv_poll_t poll;
  struct fuse_buf buf;
  int polling;
  int mounted;
  uv_loop_t *loop;
  InoTimes no_capability;
} Mount;

/* ------------------------------------------------------------------ inode times */

static size_t ino_slot(const InoTimes *t, uint64_t ino) {
  return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 20) & (t->cap - 1);
}

static InoTime *ino_find(const InoTimes *t, uint64_t ino) {
  if (t->cap == 0) return NULL;
  for (size_t i = ino_slot(t, ino);; i = (i + 1) & (t->cap - 1)) {
    if (t->slots[i].ino == ino) return &t->slots[i];
    if (t->slots[i].ino == 0) return NULL; /* at least half the slots are empty: the probe ends */
  }
}

/* Sets `ino`'s time. Without memory for a bigger table the inode is left out (asked about in JavaScript). */
static void ino_put(InoTimes *t, uint64_t ino, uint64_t until) {
  InoTime *found = ino_find(t, ino);
  if (found) {
    found->until = until;
    return;
  }
  if ((t->live + t->tombstones + 1) * 2 > t->cap) { /* rebuilt from the live entries, at most a quarter full */
    InoTimes bigger = {NULL, 64, 0, 0};
    while ((t->live + 1) * 4 > bigger.cap) bigger.cap *= 2;
    bigger.slots = calloc(bigger.cap, sizeof *bigger.slots);
    if (!bigger.slots) return;
    for (size_t i = 0; i < t->cap; i++) {
      if (t->slots[i].ino != 0 && t->slots[i].ino != TOMBSTONE) ino_put(&bigger, t->slots[i].ino, t->slots[i].until);
    }
    free(t->slots);
    *t = bigger;
  }
  size_t i = ino_slot(t, ino);
  while (t->slots[i].ino != 0 && t->slots[i].ino != TOMBSTONE) i = (i + 1) & (t->cap - 1);
  if (t->slots[i].ino == TOMBSTONE) t->tombstones--;
  t->slots[i].ino = ino;
  t->slots[i].until = until;
  t->live++;
}

static void ino_remove(InoTimes *t, uint64_t ino) {
  InoTime *found = ino_find(t, ino);
  if (!found) return;
  found->ino = TOMBSTONE;
  t->live--;
  t->tombstones++;
}

/* ------------------------------------------------------------------ calling JavaScript */

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* A name, symlink target or attribute name from the kernel (raw_names.c). */
static napi_value str(napi_env env, const char *s) {
  return raw_name_string(env, s);
}

/* The request as a number (see the top of the file). */
static napi_value reqv(napi_env env, fuse_req_t req) {
  return num(env, (double)(uintptr_t)req);
}

/*
 * Calls the dispatcher with (op, ...args). A dispatcher that throws has not answered: the
 * request fails with EIO rather than hanging the caller.
 */
static void dispatch(Mount *m, fuse_req_t req, enum Op op, size_t argc, napi_value *args) {
  napi_env env = m->env;
  napi_value argv[MAX_ARGS + 1], fn, global, result;
  argv[0] = num(env, op);
  for (size_t i = 0; i < argc; i++) argv[i + 1] = args[i];
  napi_get_reference_value(env, m->dispatch, &fn);
  napi_get_global(env, &global);
  if (napi_call_function(env, global, fn, argc + 1, argv, &result) != napi_ok) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    if (req) fuse_reply_err(req, EIO);
  }
}

static Mount *mount_of(fuse_req_t req) {
  return (Mount *)fuse_req_userdata(req);
}

/* Who asked: new inodes belong to the caller. */
static void caller(napi_env env, fuse_req_t req, napi_value *uid, napi_value *gid) {
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  *uid = num(env, ctx->uid);
  *gid = num(env, ctx->gid);
}

static double fh_of(struct fuse_file_info *fi) {
  return fi ? (double)fi->fh : -1;
}

/* ------------------------------------------------------------------ low-level operations */

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  /* The kernel checks access from our modes (default_permissions); no locks kept here. */
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  /* Data never changes under a cached page unless an open or a refresh says so. */
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  conn->want &= ~FUSE_CAP_SPLICE_WRITE;
  conn->want &= ~FUSE_CAP_SPLICE_MOVE;
  conn->max_readahead = 1 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, parent), str(m->env, name)};
  dispatch(m, req, OP_LOOKUP, 3, a);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Mount *m = mount_of(req);
  napi_value a[] = {num(m->env, ino), num(m->env, (double)nlookup)};
  dispatch(m, NULL, OP_FORGET, 2, a);
  fuse_reply_none(req);
}

/*
 * A batch as one call, its (ino, nlookup) pairs in a Float64Array: after a drop_caches the
 * kernel forgets thousands of inodes at once, and one call into JavaScript each (cold code)
 * held up the requests behind them for 5-11 ms.
 */
static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  Mount *m = mount_of(req);
  void *data;
  napi_value buffer, pairs;
  if (napi_create_arraybuffer(m->env, count * 2 * sizeof(double), &data, &buffer) == napi_ok &&
      napi_create_typedarray(m->env, napi_float64_array, count * 2, buffer, 0, &pairs) == napi_ok) {
    double *d = data;
    for (size_t i = 0; i < count; i++) {
      d[2 * i] = (double)forgets[i].ino;
      d[2 * i + 1] = (double)forgets[i].nlookup;
    }
    dispatch(m, NULL, OP_FORGET_MULTI, 1, &pairs);
  }
  fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_GETATTR, 3, a);
}

static double ms_of(struct timespec t) {
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* (req, ino, fh, toSet, mode, uid, gid, size, atimeMs, mtimeMs): toSet says which apply. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_env env = m->env;
  napi_value a[] = {
      reqv(env, req), num(env, ino), num(env, fh_of(fi)), num(env, to_set),
      num(env, attr->st_mode), num(env, attr->st_uid), num(env, attr->st_gid),
      num(env, (double)attr->st_size), num(env, ms_of(attr->st_atim)), num(env, ms_of(attr->st_mtim)),
  };
  dispatch(m, req, OP_SETATTR, 10, a);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino)};
  dispatch(m, req, OP_READLINK, 2, a);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  Mount *m = mount_of(req);
  napi_value a[7] = {reqv(m->env, req), num(m->env, parent), str(m->env, name), num(m->env, mode), num(m->env, (double)rdev)};
  caller(m->env, req, &a[5], &a[6]);
  dispatch(m, req, OP_MKNOD, 7, a);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  Mount *m = mount_of(req);
  napi_value a[6] = {reqv(m->env, req), num(m->env, parent), str(m->env, name), num(m->env, mode)};
  caller(m->env, req, &a[4], &a[5]);
  dispatch(m, req, OP_MKDIR, 6, a);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, parent), str(m->env, name)};
  dispatch(m, req, OP_UNLINK, 3, a);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, parent), str(m->env, name)};
  dispatch(m, req, OP_RMDIR, 3, a);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  Mount *m = mount_of(req);
  napi_value a[6] = {reqv(m->env, req), str(m->env, link), num(m->env, parent), str(m->env, name)};
  caller(m->env, req, &a[4], &a[5]);
  dispatch(m, req, OP_SYMLINK, 6, a);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, parent), str(m->env, name),
                    num(m->env, newparent), str(m->env, newname), num(m->env, flags)};
  dispatch(m, req, OP_RENAME, 6, a);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, newparent), str(m->env, newname)};
  dispatch(m, req, OP_LINK, 4, a);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, fi->flags)};
  dispatch(m, req, OP_OPEN, 3, a);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, (double)size),
                    num(m->env, (double)off), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_READ, 5, a);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value data;
  /* The request buffer is reused for the next request: the data is copied out. */
  napi_create_buffer_copy(m->env, size, buf, NULL, &data);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), data, num(m->env, (double)off), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_WRITE, 5, a);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_FLUSH, 3, a);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_RELEASE, 3, a);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  (void)datasync;
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_FSYNC, 3, a);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino)};
  dispatch(m, req, OP_OPENDIR, 2, a);
  (void)fi;
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, (double)size),
                    num(m->env, (double)off), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_READDIR, 5, a);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_RELEASEDIR, 3, a);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, mode), num(m->env, (double)offset),
                    num(m->env, (double)length), num(m->env, fh_of(fi))};
  dispatch(m, req, OP_FALLOCATE, 6, a);
}

/* Namespace changes are durable when answered: nothing to sync. */
static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)ino; (void)datasync; (void)fi;
  fuse_reply_err(req, 0);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino)};
  dispatch(m, req, OP_STATFS, 2, a);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  Mount *m = mount_of(req);
  napi_value a[7] = {reqv(m->env, req), num(m->env, parent), str(m->env, name), num(m->env, mode), num(m->env, fi->flags)};
  caller(m->env, req, &a[5], &a[6]);
  dispatch(m, req, OP_CREATE, 7, a);
}

/* (req, ino, name, value, flags): the value is copied out of libfuse's buffer, as a write's is. */
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  Mount *m = mount_of(req);
  napi_value data;
  napi_create_buffer_copy(m->env, size, value, NULL, &data);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), str(m->env, name), data, num(m->env, flags)};
  dispatch(m, req, OP_SETXATTR, 5, a);
}

/*
 * (req, ino, name, size): size 0 asks only for the value's length. The kernel asks for
 * security.capability before every write(2), to drop it: for an inode known to have none, that
 * is answered here, with no trip to JavaScript, which halved the throughput of 4 KiB writes.
 */
static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  Mount *m = mount_of(req);
  if (strcmp(name, "security.capability") == 0) {
    InoTime *known = ino_find(&m->no_capability, ino);
    if (known && known->until > uv_now(m->loop)) {
      fuse_reply_err(req, ENODATA);
      return;
    }
  }
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), str(m->env, name), num(m->env, (double)size)};
  dispatch(m, req, OP_GETXATTR, 4, a);
}

/* (req, ino, size, uid) */
static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), num(m->env, (double)size), num(m->env, fuse_req_ctx(req)->uid)};
  dispatch(m, req, OP_LISTXATTR, 4, a);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  Mount *m = mount_of(req);
  napi_value a[] = {reqv(m->env, req), num(m->env, ino), str(m->env, name)};
  dispatch(m, req, OP_REMOVEXATTR, 3, a);
}

static const struct fuse_lowlevel_ops OPS = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .symlink = ll_symlink,
    .rename = ll_rename,
    .link = ll_link,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .fsync = ll_fsync,
    .fallocate = ll_fallocate,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .releasedir = ll_releasedir,
    .fsyncdir = ll_fsyncdir,
    .statfs = ll_statfs,
    .create = ll_create,
    .setxattr = ll_setxattr,
    .getxattr = ll_getxattr,
    .listxattr = ll_listxattr,
    .removexattr = ll_removexattr,
};

/* ------------------------------------------------------------------ the event loop's side */

static void ended(Mount *m) {
  if (m->polling) {
    uv_poll_stop(&m->poll);
    m->polling = 0;
  }
  dispatch(m, NULL, OP_UNMOUNTED, 0, NULL);
}

/* /dev/fuse is readable: handle what the kernel has sent, a batch at a time. */
static void on_readable(uv_poll_t *poll, int status, int events) {
  Mount *m = (Mount *)poll->data;
  napi_env env = m->env;
  (void)events;
  napi_handle_scope outer;
  napi_open_handle_scope(env, &outer);
  napi_value resource;
  napi_get_reference_value(env, m->resource, &resource);
  /* Promises settled by the dispatcher run when this scope closes, as after any Node callback. */
  napi_callback_scope scope;
  napi_open_callback_scope(env, resource, m->context, &scope);
  if (status < 0) {
    ended(m);
  } else {
    for (int i = 0; i < BATCH && m->polling; i++) {
      int res = fuse_session_receive_buf(m->se, &m->buf);
      if (res == -EINTR) continue; /* a request the kernel withdrew */
      if (res == -EAGAIN) break;
      if (res <= 0) { /* unmounted (0) or the device failed */
        ended(m);
        break;
      }
      napi_handle_scope inner;
      napi_open_handle_scope(env, &inner);
      fuse_session_process_buf(m->se, &m->buf);
      napi_close_handle_scope(env, inner);
    }
  }
  napi_close_callback_scope(env, scope);
  napi_close_handle_scope(env, outer);
}

/* ------------------------------------------------------------------ exported functions */

#define THROW(env, msg) do { napi_throw_error(env, NULL, msg); return NULL; } while (0)
#define ARGS(n)                                                            \
  size_t argc = n;                                                         \
  napi_value argv[n];                                                      \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) \
    THROW(env, "chunkfs_fuse: too few arguments");

static double dbl(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

static fuse_req_t req_of(napi_env env, napi_value v) {
  return (fuse_req_t)(uintptr_t)dbl(env, v);
}

static Mount *handle_of(napi_env env, napi_value v) {
  void *p = NULL;
  napi_get_value_external(env, v, &p);
  return (Mount *)p;
}

/* A string argument, malloc'ed (the caller frees it). */
static char *string_arg(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* A Buffer argument as a NUL-ended string, malloc'ed (the caller frees it). */
static char *bytes_arg(napi_env env, napi_value v) {
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  memcpy(s, data, len);
  s[len] = '\0';
  return s;
}

/* Times are kept to the microsecond: rounding there keeps binary fractions of a double out of tv_nsec. */
static struct timespec ts_of(double ms) {
  long long us = llround(ms * 1000.0);
  long long sec = us / 1000000;
  long long rest = us % 1000000;
  if (rest < 0) { rest += 1000000; sec--; }
  struct timespec t = {.tv_sec = (time_t)sec, .tv_nsec = (long)(rest * 1000)};
  return t;
}

/* Attributes as passed from JavaScript: ino, mode, nlink, uid, gid, size, blksize, atimeMs, mtimeMs, ctimeMs, rdev. */
#define STAT_ARGS 11
static void stat_of(napi_env env, napi_value *v, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)dbl(env, v[0]);
  st->st_mode = (mode_t)dbl(env, v[1]);
  st->st_nlink = (nlink_t)dbl(env, v[2]);
  st->st_uid = (uid_t)dbl(env, v[3]);
  st->st_gid = (gid_t)dbl(env, v[4]);
  st->st_size = (off_t)dbl(env, v[5]);
  st->st_blksize = (blksize_t)dbl(env, v[6]);
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim = ts_of(dbl(env, v[7]));
  st->st_mtim = ts_of(dbl(env, v[8]));
  st->st_ctim = ts_of(dbl(env, v[9]));
  st->st_rdev = (dev_t)dbl(env, v[10]); /* the kernel's u32 encoding, passed through as it came */
}

static void entry_of(napi_env env, napi_value *v, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  stat_of(env, v, &e->attr);
  e->ino = e->attr.st_ino;
  e->attr_timeout = dbl(env, v[STAT_ARGS]);
  e->entry_timeout = dbl(env, v[STAT_ARGS + 1]);
}

/* mount(mountpoint, options, dispatcher) → handle */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *mountpoint = string_arg(env, argv[0]);
  char *options = string_arg(env, argv[1]);
  if (!mountpoint || !options) {
    free(mountpoint);
    free(options);
    THROW(env, "chunkfs_fuse: mount(mountpoint, options, dispatcher)");
  }
  Mount *m = calloc(1, sizeof *m);
  m->env = env;
  char *fargv[] = {"chunkfs", "-o", options};
  struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
  m->se = fuse_session_new(&args, &OPS, sizeof OPS, m);
  free(options);
  if (!m->se) {
    free(mountpoint);
    free(m);
    THROW(env, "cannot start a FUSE session (bad mount options?)");
  }
  if (fuse_session_mount(m->se, mountpoint) != 0) {
    fuse_session_destroy(m->se);
    free(mountpoint);
    free(m);
    THROW(env, "cannot mount (is /dev/fuse there, and the mount point an existing directory?)");
  }
  free(mountpoint);
  m->mounted = 1;
  int fd = fuse_session_fd(m->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  napi_create_reference(env, argv[2], 1, &m->dispatch);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &m->resource);
  napi_async_init(env, resource, str(env, "chunkfs:fuse"), &m->context);
  napi_get_uv_event_loop(env, &m->loop);
  uv_poll_init(m->loop, &m->poll, fd);
  m->poll.data = m;
  uv_poll_start(&m->poll, UV_READABLE, on_readable);
  m->polling = 1;
  napi_value handle;
  napi_create_external(env, m, NULL, NULL, &handle);
  return handle;
}

/* unmount(handle): stops serving and detaches the mount. Requests still unanswered are dropped. */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  ARGS(1);
  Mount *m = handle_of(env, argv[0]);
  if (!m || !m->mounted) return NULL;
  if (m->polling) {
    uv_poll_stop(&m->poll);
    m->polling = 0;
  }
  m->mounted = 0;
  /* The Mount stays allocated: libuv owns the poll handle until it is closed. */
  uv_close((uv_handle_t *)&m->poll, NULL);
  fuse_session_unmount(m->se);
  fuse_session_destroy(m->se);
  free(m->buf.mem);
  m->buf.mem = NULL;
  free(m->no_capability.slots);
  memset(&m->no_capability, 0, sizeof m->no_capability);
  napi_async_destroy(env, m->context);
  napi_delete_reference(env, m->dispatch);
  napi_delete_reference(env, m->resource);
  return NULL;
}

/* replyErr(req, errno): 0 for success without data. */
static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  ARGS(2);
  fuse_reply_err(req_of(env, argv[0]), (int)dbl(env, argv[1]));
  return NULL;
}

/* replyEntry(req, ...stat, attrTimeout, entryTimeout) */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  ARGS(STAT_ARGS + 3);
  struct fuse_entry_param e;
  entry_of(env, argv + 1, &e);
  fuse_reply_entry(req_of(env, argv[0]), &e);
  return NULL;
}

/* replyCreate(req, ...stat, attrTimeout, entryTimeout, fh) */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  ARGS(STAT_ARGS + 4);
  struct fuse_entry_param e;
  entry_of(env, argv + 1, &e);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)dbl(env, argv[STAT_ARGS + 3]);
  fuse_reply_create(req_of(env, argv[0]), &e, &fi);
  return NULL;
}

/* replyAttr(req, ...stat, attrTimeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  ARGS(STAT_ARGS + 2);
  struct stat st;
  stat_of(env, argv + 1, &st);
  fuse_reply_attr(req_of(env, argv[0]), &st, dbl(env, argv[STAT_ARGS + 1]));
  return NULL;
}

/* replyOpen(req, fh, keepCache, noFlush) */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  ARGS(4);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)dbl(env, argv[1]);
  bool keep = false, no_flush = false;
  napi_get_value_bool(env, argv[2], &keep);
  napi_get_value_bool(env, argv[3], &no_flush);
  fi.keep_cache = keep;
  fi.noflush = no_flush;
  fuse_reply_open(req_of(env, argv[0]), &fi);
  return NULL;
}

/* replyWrite(req, count) */
static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  ARGS(2);
  fuse_reply_write(req_of(env, argv[0]), (size_t)dbl(env, argv[1]));
  return NULL;
}

/* replyBuf(req, buffer, length) */
static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  ARGS(3);
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[1], &data, &len);
  size_t want = (size_t)dbl(env, argv[2]);
  fuse_reply_buf(req_of(env, argv[0]), data, want < len ? want : len);
  return NULL;
}

/* replyXattrSize(req, size): the answer to a getxattr or listxattr that asked only for the size. */
static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  ARGS(2);
  fuse_reply_xattr(req_of(env, argv[0]), (size_t)dbl(env, argv[1]));
  return NULL;
}

/* replyReadlink(req, target): the target's bytes (raw-names.ts). */
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *target = bytes_arg(env, argv[1]);
  fuse_reply_readlink(req_of(env, argv[0]), target ? target : "");
  free(target);
  return NULL;
}

/* replyStatfs(req, bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  ARGS(10);
  struct statvfs s;
  memset(&s, 0, sizeof s);
  s.f_bsize = (unsigned long)dbl(env, argv[1]);
  s.f_frsize = (unsigned long)dbl(env, argv[2]);
  s.f_blocks = (fsblkcnt_t)dbl(env, argv[3]);
  s.f_bfree = (fsblkcnt_t)dbl(env, argv[4]);
  s.f_bavail = (fsblkcnt_t)dbl(env, argv[5]);
  s.f_files = (fsfilcnt_t)dbl(env, argv[6]);
  s.f_ffree = (fsfilcnt_t)dbl(env, argv[7]);
  s.f_favail = (fsfilcnt_t)dbl(env, argv[8]);
  s.f_namemax = (unsigned long)dbl(env, argv[9]);
  fuse_reply_statfs(req_of(env, argv[0]), &s);
  return NULL;
}

/* markNoCapability(handle, ino, ms): inode `ino` has no security.capability for the next ms (0: forget). */
static napi_value js_mark_no_capability(napi_env env, napi_callback_info info) {
  ARGS(3);
  Mount *m = handle_of(env, argv[0]);
  if (!m || !m->mounted) return NULL;
  uint64_t ino = (uint64_t)dbl(env, argv[1]);
  double ms = dbl(env, argv[2]);
  if (ino == 0 || ino == TOMBSTONE) return NULL;
  if (ms > 0) ino_put(&m->no_capability, ino, uv_now(m->loop) + (uint64_t)ms);
  else ino_remove(&m->no_capability, ino);
  return NULL;
}

/* notifyInvalInode(handle, ino, offset, length): offset < 0 drops only the attributes. */
static napi_value js_notify_inval_inode(napi_env env, napi_callback_info info) {
  ARGS(4);
  Mount *m = handle_of(env, argv[0]);
  if (!m || !m->mounted) return NULL;
  fuse_lowlevel_notify_inval_inode(m->se, (fuse_ino_t)dbl(env, argv[1]), (off_t)dbl(env, argv[2]), (off_t)dbl(env, argv[3]));
  return NULL;
}

/* notifyInvalEntry(handle, parent, name): the kernel forgets a cached name (its bytes). */
static napi_value js_notify_inval_entry(napi_env env, napi_callback_info info) {
  ARGS(3);
  Mount *m = handle_of(env, argv[0]);
  if (!m || !m->mounted) return NULL;
  char *name = bytes_arg(env, argv[2]);
  if (name) fuse_lowlevel_notify_inval_entry(m->se, (fuse_ino_t)dbl(env, argv[1]), name, strlen(name));
  free(name);
  return NULL;
}

/*
 * packDirents(out, offset, dotIno, dotDotIno, names, columns, inoAt, modeAt, n): a readdir
 * reply in `out` (dirents.c) of '.', '..' and the n entries of a ListingPage (names NUL-ended,
 * inode and mode columns at inoAt and modeAt of `columns`) from position `offset` on; returns
 * its length.
 */
static napi_value js_pack_dirents(napi_env env, napi_callback_info info) {
  ARGS(9);
  void *out = NULL, *names = NULL, *columns = NULL;
  size_t out_len = 0, names_len = 0, columns_len = 0;
  if (napi_get_buffer_info(env, argv[0], &out, &out_len) != napi_ok ||
      napi_get_buffer_info(env, argv[4], &names, &names_len) != napi_ok ||
      napi_get_buffer_info(env, argv[5], &columns, &columns_len) != napi_ok)
    THROW(env, "packDirents: out, names and columns must be Buffers");
  double ino_at = dbl(env, argv[6]), mode_at = dbl(env, argv[7]), n = dbl(env, argv[8]);
  if (!(n >= 0 && ino_at >= 0 && mode_at >= 0 && ino_at + 8 * n <= columns_len && mode_at + 4 * n <= columns_len))
    THROW(env, "packDirents: the columns do not fit in their buffer");
  Listing l = {
      .dot_ino = (uint64_t)dbl(env, argv[2]),
      .dotdot_ino = (uint64_t)dbl(env, argv[3]),
      .names = names,
      .names_len = names_len,
      .inos = (const uint8_t *)columns + (size_t)ino_at,
      .modes = (const uint8_t *)columns + (size_t)mode_at,
      .n = (size_t)n,
  };
  long used = pack_dirents(&l, (uint64_t)dbl(env, argv[1]), out, out_len);
  if (used < 0) THROW(env, "packDirents: fewer names than entries");
  return num(env, (double)used);
}

/* decodeName(bytes): the string a name's bytes become (raw_names.c), for the tests. */
static napi_value js_decode_name(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *bytes = bytes_arg(env, argv[0]);
  napi_value out = bytes ? raw_name_string(env, bytes) : NULL;
  free(bytes);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"decodeName", NULL, js_decode_name, NULL, NULL, NULL, napi_default, NULL},
      {"packDirents", NULL, js_pack_dirents, NULL, NULL, NULL, napi_default, NULL},
      {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
      {"replyErr", NULL, js_reply_err, NULL, NULL, NULL, napi_default, NULL},
      {"replyEntry", NULL, js_reply_entry, NULL, NULL, NULL, napi_default, NULL},
      {"replyCreate", NULL, js_reply_create, NULL, NULL, NULL, napi_default, NULL},
      {"replyAttr", NULL, js_reply_attr, NULL, NULL, NULL, napi_default, NULL},
      {"replyOpen", NULL, js_reply_open, NULL, NULL, NULL, napi_default, NULL},
      {"replyWrite", NULL, js_reply_write, NULL, NULL, NULL, napi_default, NULL},
      {"replyBuf", NULL, js_reply_buf, NULL, NULL, NULL, napi_default, NULL},
      {"replyReadlink", NULL, js_reply_readlink, NULL, NULL, NULL, napi_default, NULL},
      {"replyXattrSize", NULL, js_reply_xattr_size, NULL, NULL, NULL, napi_default, NULL},
      {"replyStatfs", NULL, js_reply_statfs, NULL, NULL, NULL, napi_default, NULL},
      {"markNoCapability", NULL, js_mark_no_capability, NULL, NULL, NULL, napi_default, NULL},
      {"notifyInvalInode", NULL, js_notify_inval_inode, NULL, NULL, NULL, napi_default, NULL},
      {"notifyInvalEntry", NULL, js_notify_inval_entry, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

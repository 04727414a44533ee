/*
 * The event log's front half: opening and closing, appends, the group-commit
 * writer thread, waiting for durability, checkpoints and segment retention.
 * Recovery (the segment scanner) is in evlog_recover.c and readers are in
 * evlog_reader.c; the on-disk format is described in evlog.h.
 *
 * Appenders frame their records (length, CRC) and copy them into the pending
 * batch under log->mu, getting consecutive LSNs; the payload CRC is computed
 * before taking the lock and combined with the LSN's CRC inside it, so the
 * critical section is a memcpy. The writer swaps the whole pending batch out,
 * writes it with one write per segment, fdatasyncs once per segment touched,
 * then publishes the new durable LSN and runs the callbacks in append order.
 */
#include "evlog/evlog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

#define MiB ((size_t)1 << 20)
/* A batch buffer larger than this is freed after use rather than kept. */
#define KEEP_BATCH_BYTES (4 * MiB)

/* ---- small shared helpers ---- */

void evlog_seg_name(uint64_t first_lsn, char *name) {
  snprintf(name, EVLOG_NAME_MAX, "%020" PRIu64 ".seg", first_lsn);
}

void evlog_put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void evlog_put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t evlog_get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

uint32_t evlog_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void evlog_seg_header(uint64_t first_lsn, unsigned char *hdr) {
  memcpy(hdr, EVLOG_MAGIC, 8);
  evlog_put_u64(hdr + 8, first_lsn);
}

static uint32_t lsn_crc(uint64_t lsn) {
  unsigned char b[8];
  evlog_put_u64(b, lsn);
  return (uint32_t)crc32(0, b, 8);
}

uint32_t evlog_rec_crc(uint64_t lsn, const void *data, size_t len) {
  unsigned char b[8];
  evlog_put_u64(b, lsn);
  return (uint32_t)crc32_z(crc32(0, b, 8), data, len);
}

size_t evlog_seg_find(const struct evlog *log, uint64_t lsn) {
  size_t lo = 0, hi = log->n_segs; /* answer in [lo, hi) */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (log->segs[mid].first_lsn <= lsn)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

static int write_all(int fd, const char *p, size_t len, uint64_t off) {
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, (off_t)off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return BATON_EIO;
    }
    if (n == 0) {
      errno = EIO;
      return BATON_EIO;
    }
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

int evlog_seg_create(struct evlog *log, uint64_t first_lsn) {
  int fd = evlog_prep_take(log, first_lsn);
  if (fd >= 0) return fd;
  char name[EVLOG_NAME_MAX];
  evlog_seg_name(first_lsn, name);
  fd = openat(log->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return BATON_EIO;
  unsigned char hdr[EVLOG_HDR_BYTES];
  evlog_seg_header(first_lsn, hdr);
  if (write_all(fd, (const char *)hdr, sizeof(hdr), 0) < 0) goto fail;
  /* The file and its name must survive a crash before any record in it is acknowledged. */
  if (!log->no_sync && (fdatasync(fd) < 0 || fsync(log->dir_fd) < 0)) goto fail;
  return fd;
fail:;
  int e = errno;
  close(fd);
  errno = e;
  return BATON_EIO;
}

/* ---- the writer thread ---- */

static void batch_reset(struct evlog_batch *b) {
  if (b->cap > KEEP_BATCH_BYTES) {
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
  }
  b->len = 0;
  b->n_pend = 0;
  b->first_lsn = b->end_lsn = 0;
}

static void batch_release(struct evlog_batch *b) {
  free(b->buf);
  free(b->pend);
  memset(b, 0, sizeof(*b));
}

static void log_io_error(const char *what, uint64_t lsn, int err) {
  struct jlog_line l;
  jlog_begin(&l, JLOG_ERROR, "event log write failed; refusing further appends");
  jlog_str(&l, "op", what);
  jlog_u64(&l, "lsn", lsn);
  jlog_str(&l, "error", strerror(err));
  jlog_end(&l);
}

/* Writes [p, p+len) to the active segment. Writer thread only. */
static int flush_chunk(struct evlog *log, const char *p, size_t len, int *fail_write) {
  if (len == 0) return 0;
  if (*fail_write) {
    *fail_write = 0;
    errno = EIO;
    return BATON_EIO;
  }
  /* At the logical end: a preallocated segment's file is longer (zeros). */
  int64_t t0 = clock_mono_ns();
  if (write_all(log->active_fd, p, len, log->active_size) < 0) return BATON_EIO;
  int64_t t1 = clock_mono_ns();
  log->active_size += len;
  lathist_add(&log->write_lat, t1 - t0);
  return 0;
}

static int sync_active(struct evlog *log, int *fail_sync) {
  if (*fail_sync) {
    *fail_sync = 0;
    errno = EIO;
    return BATON_EIO;
  }
  if (log->no_sync) return 0;
  int64_t t0 = clock_mono_ns();
  if (fdatasync(log->active_fd) < 0) return BATON_EIO;
  lathist_add(&log->sync_lat, clock_mono_ns() - t0);
  pthread_mutex_lock(&log->mu);
  log->stats.syncs++;
  pthread_mutex_unlock(&log->mu);
  return 0;
}

/* Seals the active segment at first_lsn and makes a new one active. Writer thread only. */
static int roll(struct evlog *log, uint64_t first_lsn) {
  int fd = evlog_seg_create(log, first_lsn);
  if (fd < 0) return BATON_EIO;
  /* A sealed segment keeps no unused preallocated part (a crash before this reaches the disk
     leaves zeros after its records, which recovery accepts). */
  struct stat st;
  if (fstat(log->active_fd, &st) == 0 && (uint64_t)st.st_size > log->active_size &&
      ftruncate(log->active_fd, (off_t)log->active_size) < 0) { /* kept as it is */ }
  close(log->active_fd);
  log->active_fd = fd;
  pthread_mutex_lock(&log->mu);
  struct evlog_seg *last = &log->segs[log->n_segs - 1];
  last->end_lsn = first_lsn;
  last->bytes = log->active_size;
  if (log->n_segs == log->cap_segs) {
    log->cap_segs = log->cap_segs ? 2 * log->cap_segs : 8;
    log->segs = xrealloc(log->segs, log->cap_segs * sizeof(*log->segs));
  }
  log->segs[log->n_segs++] = (struct evlog_seg){first_lsn, 0, EVLOG_HDR_BYTES};
  log->stats.segments_created++;
  pthread_mutex_unlock(&log->mu);
  log->active_size = EVLOG_HDR_BYTES;
  return 0;
}

/*
 * Writes one batch: one write per segment, rolling to a new segment between
 * appends once the active one has reached segment_bytes (so a record, and an
 * append, is never split), and one fdatasync per segment written to. On
 * failure errno says why and *what names the operation.
 */
static int write_batch(struct evlog *log, struct evlog_batch *b, int fail_write, int fail_sync,
                       const char **what, int force_roll) {
  size_t start = 0;
  /* A purge asked for the active segment to be sealed, so it can go too. */
  if (force_roll && b->n_pend && log->active_size > EVLOG_HDR_BYTES) {
    *what = "create segment";
    if (roll(log, b->pend[0].first_lsn) < 0) return BATON_EIO;
  }
  for (size_t i = 0; i < b->n_pend; i++) {
    const struct evlog_pend *p = &b->pend[i];
    uint64_t size = log->active_size + (p->off - start);
    if (size < log->segment_bytes || size <= EVLOG_HDR_BYTES) continue;
    *what = "write";
    if (flush_chunk(log, b->buf + start, p->off - start, &fail_write) < 0) return BATON_EIO;
    /* The previous batch already synced what it wrote; sync only new bytes. */
    *what = "fdatasync";
    if (p->off > start && sync_active(log, &fail_sync) < 0) return BATON_EIO;
    start = p->off;
    *what = "create segment";
    if (roll(log, p->first_lsn) < 0) return BATON_EIO;
  }
  *what = "write";
  if (flush_chunk(log, b->buf + start, b->len - start, &fail_write) < 0) return BATON_EIO;
  *what = "fdatasync";
  if (b->len > start && sync_active(log, &fail_sync) < 0) return BATON_EIO;
  return 0;
}

static void *writer_main(void *arg) {
  struct evlog *log = arg;
  pthread_mutex_lock(&log->mu);
  for (;;) {
    while (!(log->pending.n_pend > 0 && (!log->paused || log->closing))) {
      if (log->closing && log->pending.n_pend == 0) goto out;
      pthread_cond_wait(&log->work_cv, &log->mu);
    }
    struct evlog_batch b = log->pending;
    log->pending = log->writing;
    log->writing = b;
    int fail_write = log->fail_next_write, fail_sync = log->fail_next_sync;
    log->fail_next_write = log->fail_next_sync = 0;
    int was_failed = log->failed;
    int force_roll = log->force_roll;
    log->force_roll = 0;
    pthread_mutex_unlock(&log->mu);

    struct evlog_batch *w = &log->writing;
    const char *what = "write";
    int st = was_failed ? BATON_EIO : write_batch(log, w, fail_write, fail_sync, &what, force_roll);
    int err = errno;

    pthread_mutex_lock(&log->mu);
    if (st == 0) {
      atomic_store(&log->durable_lsn, w->end_lsn);
      log->durable_bytes = log->active_size;
      log->stats.batches++;
      log->stats.appends += w->n_pend;
      log->stats.records += w->end_lsn - w->first_lsn;
      log->stats.bytes += w->len;
    } else {
      /* fsync errors are sticky on Linux (the dirty pages may be dropped):
         nothing written after this point could honestly be called durable. */
      log->failed = 1;
    }
    log->pending_bytes -= w->len;
    pthread_mutex_unlock(&log->mu);

    if (st < 0 && !was_failed) log_io_error(what, w->first_lsn, err);
    for (size_t i = 0; i < w->n_pend; i++) w->pend[i].cb(w->pend[i].arg, w->pend[i].first_lsn, st);

    pthread_mutex_lock(&log->mu);
    pthread_cond_broadcast(&log->durable_cv);
    batch_reset(&log->writing);
  }
out:
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

/* ---- opening and closing ---- */

static void log_free(struct evlog *log) {
  if (log->active_fd >= 0) close(log->active_fd);
  if (log->dir_fd >= 0) close(log->dir_fd);
  batch_release(&log->pending);
  batch_release(&log->writing);
  free(log->segs);
  free(log->dir);
  pthread_cond_destroy(&log->durable_cv);
  pthread_cond_destroy(&log->work_cv);
  pthread_cond_destroy(&log->prep_cv);
  pthread_mutex_destroy(&log->mu);
  free(log);
}

int evlog_open(const struct evlog_options *opt, struct evlog **out) {
  if (!opt || !opt->dir || !out) return BATON_EINVAL;
  if (mkdir(opt->dir, 0755) < 0 && errno != EEXIST) return BATON_EIO;

  struct evlog *log = xcalloc(1, sizeof(*log));
  log->dir = xstrdup(opt->dir);
  log->active_fd = log->dir_fd = -1;
  log->segment_bytes = opt->segment_bytes ? opt->segment_bytes : 64 * MiB;
  log->max_record_bytes = opt->max_record_bytes ? opt->max_record_bytes : 1 * MiB;
  /* The length field is a u32. */
  if (log->max_record_bytes > UINT32_MAX) log->max_record_bytes = UINT32_MAX;
  log->max_pending_bytes = opt->max_pending_bytes ? opt->max_pending_bytes : 64 * MiB;
  log->retain_bytes = opt->retain_bytes ? opt->retain_bytes : (uint64_t)1 << 30;
  log->no_sync = opt->no_sync;
  log->prealloc = !opt->no_sync && !opt->no_prealloc;
  pthread_mutex_init(&log->mu, NULL);
  pthread_cond_init(&log->work_cv, NULL);
  pthread_cond_init(&log->prep_cv, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&log->durable_cv, &ca);
  pthread_condattr_destroy(&ca);

  int rc = BATON_EIO;
  log->dir_fd = open(opt->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd < 0) goto fail;
  /* One process, one open log: two writers would interleave records. */
  if (flock(log->dir_fd, LOCK_EX | LOCK_NB) < 0) {
    jlog(JLOG_ERROR, "event log is already open elsewhere", "dir", opt->dir);
    goto fail;
  }
  rc = evlog_recover(log);
  if (rc < 0) goto fail;
  evlog_prep_start(log);
  rc = BATON_EIO;
  int e = pthread_create(&log->writer, NULL, writer_main, log);
  if (e == 0) pthread_setname_np(log->writer, "baton-log");
  if (e) {
    errno = e;
    goto fail;
  }
  *out = log;
  return 0;
fail:;
  int saved = errno;
  if (log->prep_running) {
    pthread_mutex_lock(&log->mu);
    log->closing = 1;
    pthread_mutex_unlock(&log->mu);
    evlog_prep_stop(log);
  }
  log_free(log);
  errno = saved;
  return rc;
}

void evlog_close(struct evlog *log) {
  if (!log) return;
  pthread_mutex_lock(&log->mu);
  log->closing = 1;
  pthread_cond_signal(&log->work_cv);
  pthread_cond_broadcast(&log->durable_cv);
  pthread_mutex_unlock(&log->mu);
  pthread_join(log->writer, NULL);
  evlog_prep_stop(log);
  /* Every callback has run; let waiters (sync appenders among them) leave before freeing. */
  pthread_mutex_lock(&log->mu);
  while (log->n_waiters > 0) pthread_cond_wait(&log->durable_cv, &log->mu);
  pthread_mutex_unlock(&log->mu);
  log_free(log);
}

/* ---- appends ---- */

static void batch_grow(struct evlog_batch *b, size_t more) {
  if (b->len + more > b->cap) {
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < b->len + more) cap *= 2;
    b->buf = xrealloc(b->buf, cap);
    b->cap = cap;
  }
  if (b->n_pend == b->cap_pend) {
    b->cap_pend = b->cap_pend ? 2 * b->cap_pend : 64;
    b->pend = xrealloc(b->pend, b->cap_pend * sizeof(*b->pend));
  }
}

/* The body of both appends; a sync one (waiter) is counted in log->n_waiters when accepted. */
static int append(struct evlog *log, const struct evlog_rec *recs, size_t n, evlog_done_fn cb,
                  void *arg, int waiter) {
  if (n == 0 || !recs || !cb) return BATON_EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (recs[i].len == 0) return BATON_EINVAL; /* an all-zero header marks a segment's end */
    if (recs[i].len > log->max_record_bytes) return BATON_ETOOBIG;
    total += EVLOG_REC_HDR + recs[i].len;
  }
  /* A batch that could never fit would otherwise get BATON_EBUSY forever. */
  if (total > log->max_pending_bytes) return BATON_ETOOBIG;

  /* Payload CRCs outside the lock; only the LSN part is combined in under it. */
  uint32_t crc_stack[64];
  uint32_t *crcs = n <= ARRAY_SIZE(crc_stack) ? crc_stack : xmalloc(n * sizeof(*crcs));
  for (size_t i = 0; i < n; i++) crcs[i] = (uint32_t)crc32_z(0, recs[i].data, recs[i].len);

  int rc = 0;
  pthread_mutex_lock(&log->mu);
  if (log->closing) {
    rc = BATON_ECLOSED;
  } else if (log->failed) {
    rc = BATON_EIO;
  } else if (log->pending_bytes + total > log->max_pending_bytes) {
    rc = BATON_EBUSY;
  } else {
    struct evlog_batch *b = &log->pending;
    batch_grow(b, total);
    if (b->n_pend == 0) b->first_lsn = log->next_lsn;
    b->pend[b->n_pend++] = (struct evlog_pend){cb, arg, log->next_lsn, n, b->len, total};
    unsigned char *p = (unsigned char *)b->buf + b->len;
    for (size_t i = 0; i < n; i++) {
      uint64_t lsn = log->next_lsn + i;
      uint32_t crc = (uint32_t)crc32_combine(lsn_crc(lsn), crcs[i], (z_off_t)recs[i].len);
      evlog_put_u32(p, (uint32_t)recs[i].len);
      evlog_put_u32(p + 4, crc);
      if (recs[i].len) memcpy(p + EVLOG_REC_HDR, recs[i].data, recs[i].len);
      p += EVLOG_REC_HDR + recs[i].len;
    }
    b->len += total;
    log->next_lsn += n;
    b->end_lsn = log->next_lsn;
    log->pending_bytes += total;
    if (b->n_pend == 1) pthread_cond_signal(&log->work_cv);
    log->n_waiters += waiter;
  }
  pthread_mutex_unlock(&log->mu);
  if (crcs != crc_stack) free(crcs);
  return rc;
}

int evlog_append_async(struct evlog *log, const struct evlog_rec *recs, size_t n,
                       evlog_done_fn cb, void *arg) {
  return append(log, recs, n, cb, arg, 0);
}

/* A waiter leaves; evlog_close frees the log only once none is left. log->mu held. */
static void waiter_leave(struct evlog *log) {
  if (--log->n_waiters == 0 && log->closing) pthread_cond_broadcast(&log->durable_cv);
}

struct sync_wait {
  _Atomic int done;
  int status;
  uint64_t first_lsn;
};

static void sync_done(void *arg, uint64_t first_lsn, int status) {
  struct sync_wait *w = arg;
  w->status = status;
  w->first_lsn = first_lsn;
  atomic_store_explicit(&w->done, 1, memory_order_release);
}

int evlog_append(struct evlog *log, const struct evlog_rec *recs, size_t n, uint64_t *first_lsn) {
  struct sync_wait w = {0};
  int rc = append(log, recs, n, sync_done, &w, 1);
  if (rc < 0) return rc;
  /* The writer broadcasts durable_cv under mu after running a batch's callbacks. */
  pthread_mutex_lock(&log->mu);
  while (!atomic_load_explicit(&w.done, memory_order_acquire))
    pthread_cond_wait(&log->durable_cv, &log->mu);
  waiter_leave(log);
  pthread_mutex_unlock(&log->mu);
  if (w.status == 0 && first_lsn) *first_lsn = w.first_lsn;
  return w.status;
}

/* ---- durability waits ---- */

uint64_t evlog_durable_lsn(struct evlog *log) { return atomic_load(&log->durable_lsn); }

int evlog_wait(struct evlog *log, uint64_t lsn, int timeout_ms) {
  struct timespec deadline = clock_deadline_after_ms(timeout_ms);
  int rc;
  pthread_mutex_lock(&log->mu);
  log->n_waiters++;
  uint64_t gen = log->wake_gen;
  for (;;) {
    if (atomic_load(&log->durable_lsn) > lsn) {
      rc = 0;
      break;
    }
    if (log->closing) {
      rc = BATON_ECLOSED;
      break;
    }
    if (log->failed) {
      rc = BATON_EIO;
      break;
    }
    if (log->wake_gen != gen || timeout_ms == 0) {
      rc = BATON_EBUSY;
      break;
    }
    if (timeout_ms < 0) {
      pthread_cond_wait(&log->durable_cv, &log->mu);
    } else if (pthread_cond_timedwait(&log->durable_cv, &log->mu, &deadline) == ETIMEDOUT) {
      rc = atomic_load(&log->durable_lsn) > lsn ? 0 : BATON_EBUSY;
      break;
    }
  }
  waiter_leave(log);
  pthread_mutex_unlock(&log->mu);
  return rc;
}

void evlog_wake(struct evlog *log) {
  pthread_mutex_lock(&log->mu);
  log->wake_gen++;
  pthread_cond_broadcast(&log->durable_cv);
  pthread_mutex_unlock(&log->mu);
}

/* ---- checkpoints and retention ---- */

int evlog_checkpoint(struct evlog *log, uint64_t lsn) {
  pthread_mutex_lock(&log->mu);
  uint64_t durable = atomic_load(&log->durable_lsn);
  if (lsn > durable) lsn = durable; /* nothing beyond the durable end can be covered */
  if (lsn > log->ckpt_lsn) log->ckpt_lsn = lsn;
  /* Sealed segments wholly below the checkpoint, oldest first (never the active one). */
  size_t n_below = 0;
  uint64_t below_bytes = 0;
  while (n_below + 1 < log->n_segs && log->segs[n_below].end_lsn <= log->ckpt_lsn)
    below_bytes += log->segs[n_below++].bytes;
  /* Delete the oldest while what stays below the checkpoint is still >= retain_bytes,
     and every segment a purge asked to be rid of. */
  size_t n_del = 0;
  while (n_del < n_below && (below_bytes - log->segs[n_del].bytes >= log->retain_bytes ||
                             log->segs[n_del].first_lsn < log->purge_lsn))
    below_bytes -= log->segs[n_del++].bytes;
  uint64_t *gone = NULL;
  if (n_del) {
    gone = xmalloc(n_del * sizeof(*gone));
    for (size_t i = 0; i < n_del; i++) gone[i] = log->segs[i].first_lsn;
    memmove(log->segs, log->segs + n_del, (log->n_segs - n_del) * sizeof(*log->segs));
    log->n_segs -= n_del;
    log->stats.segments_deleted += n_del;
  }
  pthread_mutex_unlock(&log->mu);

  /* Readers opened on these files keep reading them: unlink does not close them. */
  int rc = 0;
  for (size_t i = 0; i < n_del; i++) {
    char name[EVLOG_NAME_MAX];
    evlog_seg_name(gone[i], name);
    if (unlinkat(log->dir_fd, name, 0) < 0 && errno != ENOENT) {
      struct jlog_line l;
      jlog_begin(&l, JLOG_ERROR, "cannot delete event log segment");
      jlog_str(&l, "segment", name);
      jlog_str(&l, "error", strerror(errno));
      jlog_end(&l);
      rc = BATON_EIO;
    }
  }
  if (n_del && !log->no_sync && fsync(log->dir_fd) < 0) rc = BATON_EIO;
  free(gone);
  return rc;
}

void evlog_purge(struct evlog *log, uint64_t lsn) {
  pthread_mutex_lock(&log->mu);
  if (lsn > log->purge_lsn) log->purge_lsn = lsn;
  log->force_roll = 1;
  pthread_mutex_unlock(&log->mu);
}

uint64_t evlog_first_lsn(struct evlog *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t v = log->segs[0].first_lsn;
  pthread_mutex_unlock(&log->mu);
  return v;
}

void evlog_get_io_stats(struct evlog *log, struct lathist_snap *write, struct lathist_snap *sync) {
  lathist_read(&log->write_lat, write);
  lathist_read(&log->sync_lat, sync);
}

/* ---- test and benchmark hooks ---- */

void evlog_get_stats(struct evlog *log, struct evlog_stats *out) {
  pthread_mutex_lock(&log->mu);
  *out = log->stats;
  pthread_mutex_unlock(&log->mu);
}

void evlog_test_pause(struct evlog *log, int paused) {
  pthread_mutex_lock(&log->mu);
  log->paused = paused;
  pthread_cond_signal(&log->work_cv);
  pthread_mutex_unlock(&log->mu);
}

void evlog_test_fail_next(struct evlog *log, int what) {
  pthread_mutex_lock(&log->mu);
  if (what == 0)
    log->fail_next_write = 1;
  else
    log->fail_next_sync = 1;
  pthread_mutex_unlock(&log->mu);
}

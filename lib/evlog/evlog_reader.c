/*
 * Readers: sequential reads of durable records through a buffer filled with
 * pread, moving from segment to segment. A reader never looks at a record at
 * or beyond the durable LSN it last saw, so it can read the active segment
 * while the writer appends to it: every record below that LSN was completely
 * written before the LSN was published, and bytes past it are never trusted
 * (the buffer is dropped whenever the reader takes a newer durable LSN).
 *
 * In the active segment a reader reads no further than the bytes the log made
 * durable with that LSN: a prepared segment's file goes on with zeros to its
 * full size, and filling the buffer with them at every new durable LSN (a few
 * thousand times a second) would copy hundreds of megabytes a second.
 *
 * Seeking to from_lsn reads forward from the start of the segment holding it
 * (at most segment_bytes plus one append): there is no index, on purpose.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evlog/evlog_int.h"
#include "util/common.h"

#define READ_BUF_BYTES (256u * 1024)

struct evlog_reader {
  struct evlog *log;
  int fd;           /* the segment holding record lsn (or ending just before it) */
  uint64_t lsn;     /* next record to return */
  uint64_t off;     /* its offset in fd */
  uint64_t limit;   /* durable LSN snapshot: records below it are wholly on disk */
  uint64_t seg;     /* first LSN of the segment fd is */
  uint64_t end;     /* read no further in fd: its durable bytes if active, else UINT64_MAX */
  unsigned char *buf;
  size_t cap, len;  /* buf holds file bytes [buf_off, buf_off + len) */
  uint64_t buf_off;
};

/* Opens segment first_lsn; log->mu held (so retention cannot unlink it meanwhile). */
static int open_seg(struct evlog *log, uint64_t first_lsn) {
  char name[EVLOG_NAME_MAX];
  evlog_seg_name(first_lsn, name);
  int fd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
  return fd < 0 ? BATON_EIO : fd;
}

/*
 * Makes up to need bytes at r->off readable in the buffer. Returns the
 * number available (less than need only at the end of the file) or BATON_EIO.
 */
static ssize_t ensure(struct evlog_reader *r, size_t need) {
  size_t pos = (size_t)(r->off - r->buf_off);
  if (r->len - pos >= need) return (ssize_t)need;
  memmove(r->buf, r->buf + pos, r->len - pos);
  r->len -= pos;
  r->buf_off = r->off;
  if (need > r->cap) {
    r->cap = need;
    r->buf = xrealloc(r->buf, r->cap);
  }
  while (r->len < need) {
    uint64_t at = r->buf_off + r->len;
    if (at >= r->end) break;
    size_t want = (size_t)MIN((uint64_t)(r->cap - r->len), r->end - at);
    ssize_t n = pread(r->fd, r->buf + r->len, want, (off_t)at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return BATON_EIO;
    }
    if (n == 0) break;
    r->len += (size_t)n;
  }
  return (ssize_t)MIN(r->len, need);
}

/* How far fd can be read: log->mu held. */
static uint64_t read_end(const struct evlog *log, uint64_t seg) {
  return seg == log->segs[log->n_segs - 1].first_lsn ? log->durable_bytes : UINT64_MAX;
}

static void drop_buffer(struct evlog_reader *r) {
  r->buf_off = r->off;
  r->len = 0;
}

/* Moves to the segment that starts at r->lsn (the current one ended exactly at r->off). */
static int next_segment(struct evlog_reader *r) {
  struct evlog *log = r->log;
  int rc = 0;
  pthread_mutex_lock(&log->mu);
  size_t i = evlog_seg_find(log, r->lsn);
  if (log->segs[i].first_lsn != r->lsn)
    rc = r->lsn < log->segs[0].first_lsn ? BATON_ENOENT : BATON_ECORRUPT;
  else
    rc = open_seg(log, r->lsn);
  uint64_t end = read_end(log, r->lsn);
  pthread_mutex_unlock(&log->mu);
  if (rc < 0) return rc;
  close(r->fd);
  r->fd = rc;
  r->seg = r->lsn;
  r->end = end;
  r->off = EVLOG_HDR_BYTES;
  drop_buffer(r);
  return 0;
}

int evlog_reader_next(struct evlog_reader *r, struct evlog_entry *e) {
  for (;;) {
    if (r->lsn >= r->limit) {
      pthread_mutex_lock(&r->log->mu);
      r->limit = evlog_durable_lsn(r->log);
      r->end = read_end(r->log, r->seg);
      pthread_mutex_unlock(&r->log->mu);
      drop_buffer(r);
      if (r->lsn >= r->limit) return 0;
    }
    ssize_t got = ensure(r, EVLOG_REC_HDR);
    if (got < 0) return (int)got;
    if (got == 0) { /* the record is durable, so it is in the next segment */
      int rc = next_segment(r);
      if (rc < 0) return rc;
      continue;
    }
    if (got < EVLOG_REC_HDR) return BATON_ECORRUPT;
    const unsigned char *h = r->buf + (r->off - r->buf_off);
    uint32_t len = evlog_get_u32(h), want = evlog_get_u32(h + 4);
    if (len == 0 && want == 0) { /* a preallocated segment's unused end: as at end of file */
      int rc = next_segment(r);
      if (rc < 0) return rc;
      continue;
    }
    if (len > r->log->max_record_bytes) {
      /* Perhaps written under a larger limit; refuse only lengths the file cannot hold. */
      struct stat st;
      if (fstat(r->fd, &st) < 0) return BATON_EIO;
      if (r->off + EVLOG_REC_HDR + len > (uint64_t)st.st_size) return BATON_ECORRUPT;
    }
    size_t need = EVLOG_REC_HDR + (size_t)len;
    got = ensure(r, need);
    if (got < 0) return (int)got;
    if ((size_t)got < need) return BATON_ECORRUPT;
    const unsigned char *p = r->buf + (r->off - r->buf_off) + EVLOG_REC_HDR;
    if (evlog_rec_crc(r->lsn, p, len) != want) return BATON_ECORRUPT;
    e->lsn = r->lsn;
    e->data = p;
    e->len = len;
    r->lsn++;
    r->off += need;
    return 1;
  }
}

int evlog_reader_open(struct evlog *log, uint64_t from_lsn, struct evlog_reader **out) {
  if (from_lsn == 0) return BATON_EINVAL;
  pthread_mutex_lock(&log->mu);
  int rc = 0;
  uint64_t first = 0, limit = evlog_durable_lsn(log), end = 0;
  if (from_lsn > limit) {
    rc = BATON_ERANGE;
  } else if (from_lsn < log->segs[0].first_lsn) {
    rc = BATON_ENOENT;
  } else {
    first = log->segs[evlog_seg_find(log, from_lsn)].first_lsn;
    rc = open_seg(log, first);
    end = read_end(log, first);
  }
  pthread_mutex_unlock(&log->mu);
  if (rc < 0) return rc;

  struct evlog_reader *r = xcalloc(1, sizeof(*r));
  r->log = log;
  r->fd = rc;
  r->lsn = first;
  r->seg = first;
  r->limit = limit;
  r->end = end;
  r->off = r->buf_off = EVLOG_HDR_BYTES;
  r->cap = READ_BUF_BYTES;
  r->buf = xmalloc(r->cap);
  /* Skip forward from the segment's start; every skipped record is durable. */
  struct evlog_entry e;
  while (r->lsn < from_lsn) {
    rc = evlog_reader_next(r, &e);
    if (rc <= 0) {
      evlog_reader_close(r);
      return rc < 0 ? rc : BATON_ECORRUPT;
    }
  }
  *out = r;
  return 0;
}

void evlog_reader_close(struct evlog_reader *r) {
  if (!r) return;
  close(r->fd);
  free(r->buf);
  free(r);
}

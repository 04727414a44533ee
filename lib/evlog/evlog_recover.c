/*
 * Recovery on open: finds the segment files, checks every one from end to
 * end (header, record framing, CRCs, LSNs following on from the previous
 * segment), truncates a torn tail off the last segment and makes it the
 * active one. A segment's records may end at a run of zero bytes that goes
 * to the end of the file: the unused part of a preallocated segment
 * (evlog_prep.c), kept as it is, and appends go on over it. A damaged segment other than the last cannot be a torn write
 * (a segment is fsynced before the next one is created), so it is reported
 * as BATON_ECORRUPT rather than repaired.
 *
 * Cost: opening reads every retained byte once (sequential read(), CRC at
 * zlib speed), bounded by retain_bytes plus what is not yet checkpointed.
 */
#include "evlog/evlog_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/common.h"
#include "util/jlog.h"

#define SCAN_BUF_BYTES (1u << 20)

/* A forward-only buffered reader over one file. */
struct scan {
  int fd;
  unsigned char *buf;
  size_t cap, pos, len; /* unread bytes are buf[pos, len) */
  int eof;
};

/* Makes at least need bytes readable at buf+pos unless the file ends first. */
static int scan_fill(struct scan *s, size_t need) {
  if (s->len - s->pos >= need) return 0;
  memmove(s->buf, s->buf + s->pos, s->len - s->pos);
  s->len -= s->pos;
  s->pos = 0;
  while (s->len < need && !s->eof) {
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return BATON_EIO;
    }
    if (n == 0) s->eof = 1;
    s->len += (size_t)n;
  }
  return 0;
}

enum scan_stop {
  STOP_NONE,      /* every byte belongs to a valid record */
  STOP_SHORT_HDR, /* the file is shorter than a segment header */
  STOP_ZERO_HDR,  /* the header is all zero bytes (created, never written back) */
  STOP_BAD_HDR,   /* wrong magic or first LSN */
  STOP_SHORT_REC, /* the last record is cut short */
  STOP_BAD_CRC,   /* a record's CRC does not match */
};

static const char *stop_names[] = {"none", "short header", "zero header", "bad header",
                                   "short record", "bad crc"};

struct seg_scan {
  enum scan_stop stop;
  int zero_tail;        /* the records end at a preallocated run of zero bytes (kept) */
  uint64_t end_lsn;     /* one past the last valid record */
  uint64_t valid_bytes; /* header plus valid records */
  uint64_t file_bytes;
};

/* 1 if every byte from the scanner's position to the end of the file is zero, 0 if not, or
   BATON_EIO. */
static int rest_is_zero(struct scan *s) {
  for (;;) {
    for (size_t i = s->pos; i < s->len; i++)
      if (s->buf[i]) return 0;
    s->pos = s->len;
    if (s->eof) return 1;
    int rc = scan_fill(s, 1);
    if (rc < 0) return rc;
    if (s->len == s->pos) return 1;
  }
}

/* Checks one segment expected to start at first_lsn. Returns 0 with *out filled, or BATON_EIO. */
static int scan_segment(int fd, uint64_t first_lsn, struct seg_scan *out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return BATON_EIO;
  *out = (struct seg_scan){STOP_NONE, 0, first_lsn, 0, (uint64_t)st.st_size};
  struct scan s = {fd, xmalloc(SCAN_BUF_BYTES), SCAN_BUF_BYTES, 0, 0, 0};
  int rc = scan_fill(&s, EVLOG_HDR_BYTES);
  if (rc < 0) goto done;
  if (s.len < EVLOG_HDR_BYTES) {
    out->stop = STOP_SHORT_HDR;
    goto done;
  }
  static const unsigned char zero[EVLOG_HDR_BYTES];
  if (!memcmp(s.buf, zero, EVLOG_HDR_BYTES)) {
    out->stop = STOP_ZERO_HDR;
    goto done;
  }
  if (memcmp(s.buf, EVLOG_MAGIC, 8) || evlog_get_u64(s.buf + 8) != first_lsn) {
    out->stop = STOP_BAD_HDR;
    goto done;
  }
  s.pos = EVLOG_HDR_BYTES;
  uint64_t off = EVLOG_HDR_BYTES, lsn = first_lsn;
  for (;;) {
    if ((rc = scan_fill(&s, EVLOG_REC_HDR)) < 0) goto done;
    if (s.len - s.pos == 0) break; /* clean end */
    if (s.len - s.pos < EVLOG_REC_HDR) {
      out->stop = STOP_SHORT_REC;
      break;
    }
    uint32_t len = evlog_get_u32(s.buf + s.pos), want = evlog_get_u32(s.buf + s.pos + 4);
    if (len == 0 && want == 0) {
      /* No record has an all-zero header (records are never empty): zeros from here to the
         end are a preallocated segment's unused part; anything else there is a torn write. */
      if ((rc = rest_is_zero(&s)) < 0) goto done;
      if (rc == 1) out->zero_tail = 1;
      else out->stop = STOP_BAD_CRC;
      rc = 0;
      break;
    }
    if (len > out->file_bytes - off - EVLOG_REC_HDR) { /* cannot fit: torn or garbage */
      out->stop = STOP_SHORT_REC;
      break;
    }
    s.pos += EVLOG_REC_HDR;
    unsigned char lb[8];
    evlog_put_u64(lb, lsn);
    uLong crc = crc32(0, lb, 8);
    /* Stream the payload through the CRC: it may be larger than the buffer. */
    uint64_t left = len;
    while (left > 0) {
      if ((rc = scan_fill(&s, 1)) < 0) goto done;
      if (s.len == s.pos) break;
      size_t take = (size_t)MIN(left, (uint64_t)(s.len - s.pos));
      crc = crc32_z(crc, s.buf + s.pos, take);
      s.pos += take;
      left -= take;
    }
    if (left > 0) { /* the file shrank under us */
      out->stop = STOP_SHORT_REC;
      break;
    }
    if ((uint32_t)crc != want) {
      out->stop = STOP_BAD_CRC;
      break;
    }
    off += EVLOG_REC_HDR + (uint64_t)len;
    lsn++;
  }
  out->end_lsn = lsn;
  out->valid_bytes = off;
done:
  free(s.buf);
  return rc;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Returns the LSNs named by "<20 digits>.seg" files in the directory, sorted. */
static int list_segments(struct evlog *log, uint64_t **out, size_t *n_out) {
  int fd = dup(log->dir_fd);
  if (fd < 0) return BATON_EIO;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return BATON_EIO;
  }
  rewinddir(d);
  uint64_t *v = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    if (strlen(name) != 24 || strcmp(name + 20, ".seg")) continue;
    uint64_t lsn = 0;
    int ok = 1;
    for (int i = 0; i < 20; i++) {
      if (name[i] < '0' || name[i] > '9') ok = 0;
      lsn = lsn * 10 + (uint64_t)(name[i] - '0');
    }
    if (!ok || lsn == 0) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      v = xrealloc(v, cap * sizeof(*v));
    }
    v[n++] = lsn;
    errno = 0;
  }
  int rc = errno ? BATON_EIO : 0;
  closedir(d);
  if (rc < 0) {
    free(v);
    return rc;
  }
  if (n) qsort(v, n, sizeof(*v), cmp_u64);
  *out = v;
  *n_out = n;
  return 0;
}

static void push_seg(struct evlog *log, uint64_t first, uint64_t end, uint64_t bytes) {
  if (log->n_segs == log->cap_segs) {
    log->cap_segs = log->cap_segs ? 2 * log->cap_segs : 8;
    log->segs = xrealloc(log->segs, log->cap_segs * sizeof(*log->segs));
  }
  log->segs[log->n_segs++] = (struct evlog_seg){first, end, bytes};
}

static int corrupt(const char *name, const char *why, uint64_t off) {
  struct jlog_line l;
  jlog_begin(&l, JLOG_ERROR, "event log segment is damaged");
  jlog_str(&l, "segment", name);
  jlog_str(&l, "problem", why);
  jlog_u64(&l, "offset", off);
  jlog_end(&l);
  return BATON_ECORRUPT;
}

/* Rewrites a last segment whose header never reached the disk (it holds no record). */
static int reinit_header(struct evlog *log, const char *name, uint64_t first_lsn) {
  int fd = openat(log->dir_fd, name, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return BATON_EIO;
  unsigned char hdr[EVLOG_HDR_BYTES];
  evlog_seg_header(first_lsn, hdr);
  ssize_t n;
  do n = write(fd, hdr, sizeof(hdr));
  while (n < 0 && errno == EINTR);
  int rc = 0;
  if (n != (ssize_t)sizeof(hdr)) {
    if (n >= 0) errno = EIO;
    rc = BATON_EIO;
  } else if (!log->no_sync && fdatasync(fd) < 0) {
    rc = BATON_EIO;
  }
  close(fd);
  jlog(JLOG_WARN, "event log: rewrote the header of an empty last segment", "segment", name);
  return rc;
}

int evlog_recover(struct evlog *log) {
  uint64_t *lsns = NULL;
  size_t n = 0;
  int rc = list_segments(log, &lsns, &n);
  if (rc < 0) return rc;
  if (n == 0) {
    free(lsns);
    int fd = evlog_seg_create(log, 1);
    if (fd < 0) return BATON_EIO;
    push_seg(log, 1, 0, EVLOG_HDR_BYTES);
    log->active_fd = fd;
    log->active_size = log->durable_bytes = EVLOG_HDR_BYTES;
    log->next_lsn = 1;
    atomic_store(&log->durable_lsn, 1);
    return 0;
  }

  uint64_t expect = lsns[0];
  for (size_t i = 0; i < n; i++) {
    char name[EVLOG_NAME_MAX];
    evlog_seg_name(lsns[i], name);
    if (lsns[i] != expect) {
      rc = corrupt(name, "gap in LSNs before this segment", 0);
      goto done;
    }
    int last = i + 1 == n;
    int fd = openat(log->dir_fd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
      rc = BATON_EIO;
      goto done;
    }
    struct seg_scan sc;
    rc = scan_segment(fd, lsns[i], &sc);
    if (rc < 0) {
      close(fd);
      goto done;
    }
    if (!last) {
      close(fd);
      if (sc.stop != STOP_NONE) {
        rc = corrupt(name, stop_names[sc.stop], sc.valid_bytes);
        goto done;
      }
      push_seg(log, lsns[i], sc.end_lsn, sc.valid_bytes);
      expect = sc.end_lsn;
      continue;
    }

    /* The last segment: a torn tail is expected after a crash and is dropped. */
    if (sc.stop == STOP_BAD_HDR) {
      close(fd);
      rc = corrupt(name, stop_names[sc.stop], 0);
      goto done;
    }
    if (sc.stop == STOP_SHORT_HDR || sc.stop == STOP_ZERO_HDR) {
      close(fd);
      if ((rc = reinit_header(log, name, lsns[i])) < 0) goto done;
      sc.valid_bytes = sc.file_bytes = EVLOG_HDR_BYTES;
      sc.end_lsn = lsns[i];
    } else if (sc.valid_bytes < sc.file_bytes && !sc.zero_tail) {
      if (ftruncate(fd, (off_t)sc.valid_bytes) < 0 || (!log->no_sync && fsync(fd) < 0)) {
        close(fd);
        rc = BATON_EIO;
        goto done;
      }
      struct jlog_line l;
      jlog_begin(&l, JLOG_WARN, "event log: dropped a torn tail");
      jlog_str(&l, "segment", name);
      jlog_str(&l, "problem", stop_names[sc.stop]);
      jlog_u64(&l, "lsn", sc.end_lsn);
      jlog_u64(&l, "offset", sc.valid_bytes);
      jlog_u64(&l, "bytes_dropped", sc.file_bytes - sc.valid_bytes);
      jlog_end(&l);
      close(fd);
    } else {
      close(fd);
    }
    log->active_fd = openat(log->dir_fd, name, O_WRONLY | O_CLOEXEC); /* pwrite at active_size */
    if (log->active_fd < 0) {
      rc = BATON_EIO;
      goto done;
    }
    push_seg(log, lsns[i], 0, sc.valid_bytes);
    log->active_size = log->durable_bytes = sc.valid_bytes;
    log->next_lsn = sc.end_lsn;
    atomic_store(&log->durable_lsn, sc.end_lsn);
  }
  struct jlog_line l;
  jlog_begin(&l, JLOG_DEBUG, "event log recovered");
  jlog_str(&l, "dir", log->dir);
  jlog_u64(&l, "segments", log->n_segs);
  jlog_u64(&l, "first_lsn", log->segs[0].first_lsn);
  jlog_u64(&l, "durable_lsn", log->next_lsn);
  jlog_end(&l);
  rc = 0;
done:
  free(lsns);
  return rc;
}

/*
 * The event log's own declarations, shared by its files (evlog.c: appends,
 * the writer thread, waits and retention; evlog_recover.c: the segment
 * scanner and recovery on open; evlog_reader.c: readers) and by its unit
 * tests (statistics and the test hooks at the end). Nothing else in Baton
 * should include this file: evlog.h is the interface.
 */
#ifndef BATON_EVLOG_INT_H
#define BATON_EVLOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "evlog/evlog.h"

#define EVLOG_MAGIC "BATONSG1"
#define EVLOG_HDR_BYTES 16 /* magic + first LSN (u64 LE) */
#define EVLOG_REC_HDR 8    /* payload length (u32 LE) + CRC-32 (u32 LE) */
#define EVLOG_NAME_MAX 32  /* "<20 digits>.seg" and its NUL fit */

/* One segment file. first_lsn names it; end_lsn is 0 while it is the active one. */
struct evlog_seg {
  uint64_t first_lsn;
  uint64_t end_lsn; /* one past its last record once sealed (a newer segment exists) */
  uint64_t bytes;   /* file size; exact once sealed, as of recovery for the active one */
};

/* One evlog_append_async call inside a batch: its callback and its bytes. */
struct evlog_pend {
  evlog_done_fn cb;
  void *arg;
  uint64_t first_lsn;
  size_t n_recs;
  size_t off, len; /* framed bytes in the batch buffer */
};

/* Framed records waiting for (or being given to) the disk, in LSN order. */
struct evlog_batch {
  char *buf;
  size_t len, cap;
  struct evlog_pend *pend;
  size_t n_pend, cap_pend;
  uint64_t first_lsn; /* LSN of the first record in buf */
  uint64_t end_lsn;   /* one past the last */
};

struct evlog_stats {
  uint64_t batches; /* writer iterations that wrote something */
  uint64_t syncs;   /* fdatasync calls on segments (one per batch and segment touched) */
  uint64_t appends; /* appends acknowledged durable */
  uint64_t records; /* records acknowledged durable */
  uint64_t bytes;   /* framed bytes written */
  uint64_t segments_created;
  uint64_t segments_deleted;
  uint64_t segments_preallocated; /* of those created, how many were a prepared spare */
};

struct evlog {
  /* Fixed at open. */
  char *dir;
  int dir_fd;
  size_t segment_bytes, max_record_bytes, max_pending_bytes;
  uint64_t retain_bytes;
  int no_sync;
  int prealloc; /* segments are prepared zero-filled ahead of time (evlog_prep.c) */

  pthread_mutex_t mu; /* guards everything below except where noted */
  pthread_cond_t work_cv;    /* writer: something pending, closing, or unpaused */
  pthread_cond_t durable_cv; /* waiters: durable LSN moved, closing, failure, wake */
  pthread_t writer;

  struct evlog_batch pending; /* filled by appenders */
  size_t pending_bytes;       /* accepted but not yet durable (or failed) */
  uint64_t next_lsn;          /* LSN the next accepted record gets */
  _Atomic uint64_t durable_lsn;
  uint64_t durable_bytes;     /* the active segment's bytes up to durable_lsn */
  int closing;
  int failed;      /* a write or fsync failed: appends are refused with BATON_EIO */
  uint64_t wake_gen; /* bumped by evlog_wake */
  size_t n_waiters;  /* threads inside evlog_wait or a sync evlog_append (close waits for 0) */
  uint64_t ckpt_lsn;
  uint64_t purge_lsn;   /* records below it are deleted once checkpointed, retention or not */
  int force_roll;       /* the next batch starts a new segment (guarded by mu) */

  /* The spare segment (evlog_prep.c), guarded by mu. */
  pthread_t prep;
  pthread_cond_t prep_cv; /* preparer: a spare is wanted, or closing */
  int prep_running;
  int spare_ready;        /* EVLOG_SPARE_NAME exists, zero-filled and synced */
  int spare_wanted;       /* the writer took the spare (or there never was one) */
  int prep_busy;          /* the preparer is writing EVLOG_SPARE_NAME */

  struct evlog_seg *segs; /* oldest first; the last one is active */
  size_t n_segs, cap_segs;

  /* Writer-thread only (no lock): the batch being written and the active segment. */
  struct evlog_batch writing;
  int active_fd;
  uint64_t active_size;

  struct evlog_stats stats;
  struct lathist write_lat, sync_lat; /* writer thread's calls; atomics, no lock */

  /* Test hooks (see below). */
  int paused;
  int fail_next_write;
  int fail_next_sync;
};

/* The prepared next segment: zero-filled to segment_bytes, renamed when it is needed. */
#define EVLOG_SPARE_NAME "spare.tmp"

/* Writes a segment's header (magic, first LSN) into hdr (EVLOG_HDR_BYTES). */
void evlog_seg_header(uint64_t first_lsn, unsigned char *hdr);

/* Writes "<lsn, 20 digits>.seg" into name (EVLOG_NAME_MAX bytes). */
void evlog_seg_name(uint64_t first_lsn, char *name);

/* Stores v as u64 / u32 little-endian, and the reverse. */
void evlog_put_u64(unsigned char *p, uint64_t v);
void evlog_put_u32(unsigned char *p, uint32_t v);
uint64_t evlog_get_u64(const unsigned char *p);
uint32_t evlog_get_u32(const unsigned char *p);

/* CRC-32 of a record: over its LSN (u64 LE), then the payload. */
uint32_t evlog_rec_crc(uint64_t lsn, const void *data, size_t len);

/*
 * Recovery on open (evlog_recover.c): lists the segments in log->dir, checks
 * every one (header, records and CRCs, contiguity of LSNs), truncates a torn
 * tail of the last one, or creates the first segment of an empty log. Fills
 * log->segs, log->next_lsn, log->durable_lsn, log->active_fd and
 * log->active_size. Returns 0, BATON_EIO or BATON_ECORRUPT.
 */
int evlog_recover(struct evlog *log);

/*
 * Creates the segment file starting at first_lsn (header written, file and
 * directory entry durable) and returns its descriptor (for pwrite at the
 * active size, never O_APPEND), or BATON_EIO. Takes
 * the prepared spare when there is one (evlog_prep.c), so the segment's
 * blocks are already written and its fdatasyncs change no metadata.
 */
int evlog_seg_create(struct evlog *log, uint64_t first_lsn);

/* The preparer thread (evlog_prep.c): started after recovery, stopped by evlog_close. */
void evlog_prep_start(struct evlog *log);
void evlog_prep_stop(struct evlog *log);
/* Writer thread: takes the spare as the segment first_lsn; returns its fd, or -1 if none. */
int evlog_prep_take(struct evlog *log, uint64_t first_lsn);

/* Index of the segment holding lsn (the last one with first_lsn <= lsn); log->mu held. */
size_t evlog_seg_find(const struct evlog *log, uint64_t lsn);

/* --- For tests and benchmarks --- */

/* Copies the counters. */
void evlog_get_stats(struct evlog *log, struct evlog_stats *out);

/*
 * Pauses (1) or resumes (0) the writer: while paused it takes no new batch, so
 * appends pile up as pending (to test back-pressure and batching).
 */
void evlog_test_pause(struct evlog *log, int paused);

/*
 * Makes the next batch's write (what == 0) or fdatasync (what == 1) fail as
 * if the disk had returned EIO.
 */
void evlog_test_fail_next(struct evlog *log, int what);

#endif

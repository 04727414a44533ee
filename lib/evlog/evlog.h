/*
 * The event log: Baton's source of truth. Every acknowledged input (events,
 * journey publications, timer ticks) is a record here before anything acts on
 * it; the engine applies records in log order and checkpoints record how far
 * they got. This header is the whole interface the rest of Baton uses (append
 * a batch, read from a sequence number, record the applied one), kept small so
 * that NATS JetStream can stand in for the file log in distributed mode.
 *
 * Records are opaque, non-empty byte strings numbered by a log sequence
 * number (LSN) starting at 1 and increasing by one per record without gaps.
 *
 * On disk: a directory of segment files named "<first lsn, 20 digits>.seg".
 * Each segment starts with a 16-byte header (magic "BATONSG1", first LSN as
 * u64 little-endian); then records, each a u32 payload length, a u32 CRC-32
 * (zlib) of the record's LSN (u64 LE) followed by the payload, then the
 * payload. After the last record, a segment may hold zero bytes to its end:
 * segments are prepared zero-filled ahead of time (evlog_prep.c), so that
 * the fdatasync after an append changes no file metadata. Opening the log
 * scans the last segment and truncates at the first short or corrupt record,
 * so a torn write from a crash is dropped (it was never acknowledged:
 * acknowledgements only follow fsync).
 *
 * Durability: appends are group-committed. One writer thread takes everything
 * pending, writes it with one write per segment, calls fdatasync once, and
 * only then reports the records durable (callbacks, waiters). An append
 * therefore costs one fsync of latency, shared by everyone waiting. The
 * writer rolls to a new segment between appends once the active one has
 * reached segment_bytes, so neither a record nor an append is ever split and
 * a segment passes segment_bytes by at most one append; a batch touching two
 * segments is fdatasynced once in each, and a new segment's directory entry
 * is fsynced before anything in it is acknowledged.
 *
 * Failure: if a write or fdatasync fails, that batch's callbacks get
 * BATON_EIO and the log refuses every later append with BATON_EIO (Linux may
 * drop the dirty pages after a failed fsync, so nothing written later could
 * honestly be called durable); reopen it to recover. Records of a failed
 * append were not acknowledged but may still be found after a reopen.
 *
 * Threads: evlog_append*, evlog_durable_lsn, evlog_wait and evlog_checkpoint
 * may be called from any thread. A reader belongs to one thread.
 */
#ifndef BATON_EVLOG_H
#define BATON_EVLOG_H

#include <stddef.h>
#include <stdint.h>

#include "util/lathist.h"

struct evlog;
struct evlog_reader;

struct evlog_options {
  const char *dir;          /* created if missing (one level) */
  size_t segment_bytes;     /* roll to a new segment past this size; 0: 64 MiB */
  size_t max_record_bytes;  /* larger records are refused (BATON_ETOOBIG); 0: 1 MiB */
  size_t max_pending_bytes; /* bytes accepted but not yet durable before appends are
                               refused with BATON_EBUSY (back-pressure); 0: 64 MiB */
  int no_sync;              /* 1: skip fdatasync (tests and benchmarks only) */
  int no_prealloc;          /* 1: create segments as they are needed instead of preparing
                               the next one zero-filled (off anyway with no_sync) */
  uint64_t retain_bytes;    /* keep at least this many bytes of segments wholly below
                               the checkpoint before deleting them; 0: 1 GiB */
};

/* One record to append (a borrowed byte string). */
struct evlog_rec {
  const void *data;
  size_t len;
};

/* One record read back. data stays valid until the next evlog_reader_next call. */
struct evlog_entry {
  uint64_t lsn;
  const void *data;
  size_t len;
};

/*
 * Called from the writer thread once the records of one append are durable
 * (status 0) or failed (a BATON_E* code, e.g. BATON_EIO when the disk write or
 * fsync failed; nothing of that append is then acknowledged). Must be quick
 * and must not call evlog_close, evlog_append or evlog_wait (they would wait
 * for the very thread running the callback); evlog_append_async is fine.
 */
typedef void (*evlog_done_fn)(void *arg, uint64_t first_lsn, int status);

/*
 * Opens (or creates) the log in opt->dir, recovers the tail as described above
 * and starts the writer thread. Recovery reads and checks every retained
 * segment (headers, CRCs, LSNs following on), so opening costs one sequential
 * read of the log. Returns 0 and *out, or BATON_EIO (with errno set) if the
 * directory or a segment cannot be opened or read, or if the log is already
 * open (an exclusive flock on the directory; errno EWOULDBLOCK),
 * BATON_ECORRUPT if a segment other than the last is damaged or missing,
 * BATON_EINVAL if opt or opt->dir is NULL.
 */
int evlog_open(const struct evlog_options *opt, struct evlog **out);

/*
 * Waits for every accepted append to be durable (their callbacks run), stops
 * the writer thread and frees the log. Appends that start meanwhile get
 * BATON_ECLOSED; evlog_wait callers return BATON_ECLOSED and sync appenders
 * get their result, and the log is freed only after they have left. Readers
 * must be closed first, and no call may start after evlog_close returns.
 */
void evlog_close(struct evlog *log);

/*
 * Appends n records as one batch with consecutive LSNs. The bytes are copied
 * before returning. cb(arg, first_lsn, status) runs later on the writer
 * thread. Returns 0 (cb will run exactly once), or without calling cb:
 * BATON_ETOOBIG if a record exceeds max_record_bytes or the whole batch (8
 * bytes of framing per record plus the payloads) exceeds max_pending_bytes so
 * it could never be accepted, BATON_EBUSY if accepting the batch would exceed
 * max_pending_bytes (retry once earlier appends are durable), BATON_ECLOSED
 * after evlog_close began, BATON_EIO once a write or fsync has failed,
 * BATON_EINVAL for n == 0 or a NULL recs or cb. A refused batch uses no LSN.
 */
int evlog_append_async(struct evlog *log, const struct evlog_rec *recs, size_t n,
                       evlog_done_fn cb, void *arg);

/*
 * Like evlog_append_async but waits until durable; *first_lsn may be NULL.
 * Returns what evlog_append_async returns, or the status cb would have got.
 */
int evlog_append(struct evlog *log, const struct evlog_rec *recs, size_t n, uint64_t *first_lsn);

/* Returns the LSN one past the last durable record (1 for an empty log). */
uint64_t evlog_durable_lsn(struct evlog *log);

/*
 * Waits until evlog_durable_lsn() > lsn, the log closes, or timeout_ms passes
 * (-1: no timeout). Returns 0 when the record is durable, BATON_EBUSY on
 * timeout or when evlog_wake was called meanwhile, BATON_ECLOSED when
 * closing, BATON_EIO once a write or fsync has failed (it never will be).
 */
int evlog_wait(struct evlog *log, uint64_t lsn, int timeout_ms);

/*
 * Wakes every evlog_wait caller (e.g. to let an engine thread notice
 * shutdown); those not yet satisfied return BATON_EBUSY.
 */
void evlog_wake(struct evlog *log);

/*
 * Opens a reader positioned at from_lsn (>= 1). There is no index: it reads
 * forward from the start of the segment holding from_lsn (at most about
 * segment_bytes). Returns 0, BATON_ENOENT if from_lsn is older than the
 * oldest retained segment, BATON_ERANGE if it is beyond evlog_durable_lsn(),
 * BATON_EINVAL for 0, or BATON_EIO / BATON_ECORRUPT from reading up to it.
 */
int evlog_reader_open(struct evlog *log, uint64_t from_lsn, struct evlog_reader **out);

/*
 * Reads the next durable record (CRC checked). Returns 1 with *e filled, 0 if
 * the reader has caught up with evlog_durable_lsn() (call again later), or
 * BATON_EIO / BATON_ECORRUPT, or BATON_ENOENT if retention deleted the next
 * segment before the reader got to it (a segment it has open stays readable).
 */
int evlog_reader_next(struct evlog_reader *r, struct evlog_entry *e);
void evlog_reader_close(struct evlog_reader *r);

/*
 * Records that every record below lsn is covered by a durable checkpoint:
 * segments wholly below it become eligible for deletion under retain_bytes.
 * It then deletes the oldest eligible segment while the eligible ones left
 * would still hold at least retain_bytes; the active segment is never
 * deleted. lsn is capped at evlog_durable_lsn() and never moves back. Runs on
 * the caller's thread. Returns 0 or BATON_EIO (a segment could not be
 * unlinked or the directory not fsynced; it is dropped from the log anyway).
 */
int evlog_checkpoint(struct evlog *log, uint64_t lsn);

/*
 * Asks for every record below lsn to be removed from disk (a customer's
 * deletion must not leave their events in the log's retained history): the
 * next append starts a new segment, and from the checkpoint that covers them
 * on, segments wholly below lsn are deleted whatever retain_bytes says. After
 * that the log can no longer rebuild state from before lsn; the store holds it.
 */
void evlog_purge(struct evlog *log, uint64_t lsn);

/* Oldest LSN still readable (1 unless segments were deleted). */
uint64_t evlog_first_lsn(struct evlog *log);

/*
 * How long the writer thread's write and fdatasync calls took, since open
 * (util/lathist.h). An acknowledgement waits for both calls of its batch, so
 * these are the disk's share of its latency; GET /v1/stats shows them.
 */
void evlog_get_io_stats(struct evlog *log, struct lathist_snap *write, struct lathist_snap *sync);

#endif

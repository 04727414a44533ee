/*
 * The event log: Baton's source of truth. Every acknowledged input (events,
 * journey publications, timer ticks) is a record here before anything acts on
 * it; the engine applies records in log order and checkpoints record how far
 * they got. This header is the whole interface the rest of Baton uses (append
 * a batch, read from a sequence number, record the applied one), kept small so
 * that NATS JetStream can stand in for the file log in distributed mode.
 *
 * Records are opaque byte strings numbered by a log sequence number (LSN)
 * starting at 1 and increasing by one per record without gaps.
 *
 * On disk: a directory of segment files named "<first lsn, 20 digits>.seg".
 * Each segment starts with a 16-byte header (magic "BATONSG1", first LSN as
 * u64 little-endian); then records, each a u32 payload length, a u32 CRC-32
 * (zlib) of the record's LSN (u64 LE) followed by the payload, then the
 * payload. Opening the log scans the last segment and truncates at the first
 * short or corrupt record, so a torn write from a crash is dropped (it was
 * never acknowledged: acknowledgements only follow fsync).
 *
 * Durability: appends are group-committed. One writer thread takes everything
 * pending, writes it with one write per segment, calls fdatasync once, and
 * only then reports the records durable (callbacks, waiters). An append
 * therefore costs one fsync of latency, shared by everyone waiting.
 *
 * Threads: evlog_append*, evlog_durable_lsn, evlog_wait and evlog_checkpoint
 * may be called from any thread. A reader belongs to one thread.
 */
#ifndef BATON_EVLOG_H
#define BATON_EVLOG_H

#include <stddef.h>
#include <stdint.h>

struct evlog;
struct evlog_reader;

struct evlog_options {
  const char *dir;          /* created if missing (one level) */
  size_t segment_bytes;     /* roll to a new segment past this size; 0: 64 MiB */
  size_t max_record_bytes;  /* larger records are refused (BATON_ETOOBIG); 0: 1 MiB */
  size_t max_pending_bytes; /* bytes accepted but not yet durable before appends are
                               refused with BATON_EBUSY (back-pressure); 0: 64 MiB */
  int no_sync;              /* 1: skip fdatasync (tests and benchmarks only) */
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
 * and must not call evlog_close.
 */
typedef void (*evlog_done_fn)(void *arg, uint64_t first_lsn, int status);

/*
 * Opens (or creates) the log in opt->dir, recovers the tail as described above
 * and starts the writer thread. Returns 0 and *out, or BATON_EIO (with errno
 * set) if the directory or a segment cannot be opened or read, BATON_ECORRUPT
 * if a segment other than the last is damaged.
 */
int evlog_open(const struct evlog_options *opt, struct evlog **out);

/*
 * Waits for every accepted append to be durable (their callbacks run), stops
 * the writer thread and frees the log. Readers must be closed first.
 */
void evlog_close(struct evlog *log);

/*
 * Appends n records as one batch with consecutive LSNs. The bytes are copied
 * before returning. cb(arg, first_lsn, status) runs later on the writer
 * thread. Returns 0 (cb will run exactly once), or without calling cb:
 * BATON_ETOOBIG if a record exceeds max_record_bytes, BATON_EBUSY if accepting
 * the batch would exceed max_pending_bytes, BATON_ECLOSED after evlog_close
 * began, BATON_EINVAL for n == 0.
 */
int evlog_append_async(struct evlog *log, const struct evlog_rec *recs, size_t n,
                       evlog_done_fn cb, void *arg);

/* Like evlog_append_async but waits until durable; *first_lsn may be NULL. */
int evlog_append(struct evlog *log, const struct evlog_rec *recs, size_t n, uint64_t *first_lsn);

/* Returns the LSN one past the last durable record (1 for an empty log). */
uint64_t evlog_durable_lsn(struct evlog *log);

/*
 * Waits until evlog_durable_lsn() > lsn, the log closes, or timeout_ms passes
 * (-1: no timeout). Returns 0 when the record is durable, BATON_EBUSY on
 * timeout, BATON_ECLOSED when closing.
 */
int evlog_wait(struct evlog *log, uint64_t lsn, int timeout_ms);

/* Wakes every evlog_wait caller (e.g. to let an engine thread notice shutdown). */
void evlog_wake(struct evlog *log);

/*
 * Opens a reader positioned at from_lsn (>= 1). Returns 0, BATON_ENOENT if
 * from_lsn is older than the oldest retained segment, or BATON_ERANGE if it is
 * beyond evlog_durable_lsn().
 */
int evlog_reader_open(struct evlog *log, uint64_t from_lsn, struct evlog_reader **out);

/*
 * Reads the next durable record. Returns 1 with *e filled, 0 if the reader has
 * caught up with evlog_durable_lsn() (call again later), or BATON_EIO /
 * BATON_ECORRUPT.
 */
int evlog_reader_next(struct evlog_reader *r, struct evlog_entry *e);
void evlog_reader_close(struct evlog_reader *r);

/*
 * Records that every record below lsn is covered by a durable checkpoint:
 * segments wholly below it become eligible for deletion under retain_bytes.
 * Returns 0 or BATON_EIO.
 */
int evlog_checkpoint(struct evlog *log, uint64_t lsn);

/* Oldest LSN still readable (1 unless segments were deleted). */
uint64_t evlog_first_lsn(struct evlog *log);

#endif

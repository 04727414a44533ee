/*
 * The embedded store: one LMDB environment in <data_dir>/store holding the
 * engine's checkpoints and the delivery ledger. It is not the source of truth
 * for events (the event log is); it records how far the engine got, so a
 * restart loads it and replays only the log after it.
 *
 * Named databases:
 *   meta        "applied_lsn" -> u64, "clock_ms" -> i64
 *   profiles    profile key -> serialised profile (engine/checkpoint.c)
 *   timeline    profile key, NUL, u64 BE (lsn << 16 | index) -> event JSON text
 *   journeys    journey id, NUL, u32 BE version -> i64 published_ms, source
 *   outbox      message id -> serialised outgoing message awaiting a final outcome
 *   deliveries  message id -> JSON delivery record (state, attempts, ...)
 *   dedup       u64 BE sequence -> u64 hash of (source, messageId), i64 time_ms
 *   suppressed  SHA-256 (hex) of an identity key of a deleted customer -> i64 time_ms
 *   jstats      journey id, NUL, u32 BE version -> u64 entered, u64 completed,
 *               u32 n_steps, u64 passed[n_steps] (figures of one journey version)
 *
 * The environment is opened with MDB_WRITEMAP: the data file is as large as
 * the map (sparse: only written pages take space), and a write transaction
 * writes its pages into the file's page cache as it goes.
 *
 * LMDB allows one write transaction at a time across threads (it serialises
 * them itself) and any number of concurrent readers; read transactions here
 * use MDB_NOTLS so any thread may open one.
 */
#ifndef BATON_STORE_STORE_H
#define BATON_STORE_STORE_H

#include <lmdb.h>
#include <stdint.h>

struct store {
  MDB_env *env;
  MDB_dbi meta, profiles, timeline, journeys, outbox, deliveries, dedup, suppressed, jstats;
};

/*
 * Opens or creates the store under dir (created if missing). map_bytes is
 * the maximum size (0: 64 GiB; the file is sparse). Returns 0 or BATON_ESTORE
 * (logged with LMDB's message).
 */
int store_open(const char *dir, uint64_t map_bytes, struct store **out);
void store_close(struct store *st);

/*
 * Writes back, and waits for, the pages the current write transaction has
 * written so far. Safe in the middle of one: they are pages no committed
 * transaction refers to (LMDB never writes over a page a reader may still
 * use), so a crash before the commit leaves the store as it was. A long
 * transaction calls this every few megabytes, so its commit does not hand
 * the disk hundreds of megabytes at once, ahead of the event log's fsyncs.
 * Returns 0 or BATON_ESTORE (logged).
 */
int store_writeback(struct store *st);

/*
 * Pacing a long write transaction: store_pace counts the bytes of the rows
 * put (plus a per-row overhead for LMDB's node headers) and, every
 * step_bytes, writes back what the transaction wrote so far
 * (store_writeback) and then pauses as long as that took (at most 250 ms).
 * Committing a few hundred megabytes at once puts them all in the disk's
 * queue ahead of the event log's next fdatasync, which every acknowledgement
 * waits for; in steps, that fdatasync waits for one step at most, and the
 * transaction has the disk half the time at most while it runs.
 */
struct store_pacer {
  struct store *st;
  size_t step_bytes;
  size_t bytes;      /* since the last step */
  unsigned steps;    /* write-backs done */
  int64_t paused_ns; /* time spent pausing after them */
};
void store_pacer_init(struct store_pacer *p, struct store *st, size_t step_bytes);
/* Call after each row put; returns 0 or BATON_ESTORE (a failed write-back, logged). */
int store_pace(struct store_pacer *p, size_t row_bytes);

/* Begin a transaction; aborts the process on failure (LMDB only fails here on
   resource exhaustion, e.g. the reader table is full). */
MDB_txn *store_begin(struct store *st, int read_only);
/* Commits; returns 0 or BATON_ESTORE (logged). */
int store_commit(MDB_txn *txn);

/*
 * If the store was marked for compaction (meta "compact_pending", set when a
 * customer is deleted), rewrites it with only its live pages (LMDB keeps freed
 * pages' old bytes in the file until they are reused) and clears the mark.
 * The store must not be open. Returns 0, or BATON_ESTORE (logged; the old
 * file is left as it was).
 */
int store_compact_if_pending(const char *dir);

/* Meta helpers inside a transaction. */
int store_get_u64(MDB_txn *txn, struct store *st, const char *key, uint64_t *out);
int store_put_u64(MDB_txn *txn, struct store *st, const char *key, uint64_t v);

/* Logs an LMDB error with context and returns BATON_ESTORE. */
int store_fail(const char *what, int mdb_rc);

#endif

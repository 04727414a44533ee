/*
 * The embedded store: one LMDB environment in <data_dir>/store holding the
 * engine's checkpoints and the delivery ledger. It is not the source of truth
 * for events (the event log is); it records how far the engine got, so a
 * restart loads it and replays only the log after it.
 *
 * Named databases:
 *   meta        "applied_lsn" -> u64, "clock_ms" -> i64, "timeline_seq" -> u64, ...
 *   profiles    profile key -> serialised profile (engine/checkpoint.c)
 *   tlog        u64 BE timeline order (engine_int.h: sequence << 1 | flag) ->
 *               u64 LE order of the entry before it on the same chain (0: none),
 *               u16 LE key length, the chain's profile key, event JSON text.
 *               Appended in order by checkpoints (sequential pages, not one random leaf
 *               per customer); a profile row names the newest entry of its chain
 *               (engine_checkpoint.c).
 *   timeline    (stores written before tlog) profile key, NUL, u64 BE (lsn << 16 | index)
 *               -> event JSON text; moved into tlog when such a store is opened
 *   journeys    journey id, NUL, u32 BE version -> i64 published_ms, source
 *   outbox      message id -> serialised outgoing message awaiting a final outcome
 *   deliveries  message id -> JSON delivery record (state, attempts, ...)
 *   dedup       u64 BE sequence -> u64 hash of (source, messageId), i64 time_ms
 *   suppressed  SHA-256 (hex) of an identity key of a deleted customer -> i64 time_ms
 *   jstats      journey id, NUL, u32 BE version -> u64 entered, u64 completed,
 *               u32 n_steps, u64 passed[n_steps] (figures of one journey version)
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
  MDB_dbi meta, profiles, timeline, tlog, journeys, outbox, deliveries, dedup, suppressed, jstats;
};

/*
 * Opens or creates the store under dir (created if missing). map_bytes is
 * the maximum size (0: 64 GiB; the file is sparse). Returns 0 or BATON_ESTORE
 * (logged with LMDB's message).
 */
int store_open(const char *dir, uint64_t map_bytes, struct store **out);
void store_close(struct store *st);

/*
 * Paced write-back of a long write transaction: call store_pace after each
 * put with the bytes it may have dirtied (a put at a random place: a page and
 * its value; an append: about its value). Every STORE_PACE_BYTES, it sends
 * what the transaction dirtied to the disk (sync_file_range, no cache flush), waits,
 * and rests as long as that took, so that the commit has little left to write
 * and the event log's fdatasync never waits behind hundreds of megabytes.
 * Pages of an uncommitted transaction on disk are free pages of the committed
 * state (LMDB never writes over the last committed tree): a crash before the
 * commit leaves the store as it was.
 */
#define STORE_PACE_BYTES ((size_t)1 << 20)
#define STORE_PUT_BYTES 4096 /* what a put at a random place dirties, besides its value */
struct store_pacer {
  int fd;               /* data.mdb; -1: pacing off */
  size_t bytes;         /* dirtied since the last step, roughly */
  unsigned steps;
  int64_t written_ns;   /* in the steps */
  int64_t rested_ns;    /* resting after them */
};
/* st NULL: a pacer that does nothing (a transaction written at full speed). */
void store_pacer_init(struct store_pacer *p, struct store *st);
void store_pace(struct store_pacer *p, size_t dirtied_bytes);

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

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
 *   stage       u64 BE sequence -> u8 table, u8 put or delete, u32 key length, key,
 *               value: a checkpoint's rows, written in slices before it commits and
 *               moved into their tables after (meta "staged" = 1 in between;
 *               engine_checkpoint.c)
 *
 * LMDB allows one write transaction at a time across threads (it serialises
 * them itself) and any number of concurrent readers; read transactions here
 * use MDB_NOTLS so any thread may open one.
 */
#ifndef BATON_STORE_STORE_H
#define BATON_STORE_STORE_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdint.h>

struct store {
  MDB_env *env;
  MDB_dbi meta, profiles, timeline, tlog, journeys, outbox, deliveries, dedup, suppressed, jstats,
      stage;
};

/*
 * Opens or creates the store under dir (created if missing). map_bytes is
 * the maximum size (0: 64 GiB; the file is sparse). Returns 0 or BATON_ESTORE
 * (logged with LMDB's message).
 */
int store_open(const char *dir, uint64_t map_bytes, struct store **out);
void store_close(struct store *st);

/*
 * A long write (a checkpoint) as a run of small transactions. With MDB_WRITEMAP,
 * LMDB writes every page a transaction dirtied at its commit, in one burst: the
 * commit clears each dirty page's flag, so a page sent to the disk earlier is
 * written again. The event log's fdatasync, on the same disk, waits behind that
 * burst (a checkpoint of 200,000 profiles: 0.5-1.5 s). Paced, the slicer commits
 * once about STORE_SLICE_BYTES were dirtied, rests as long as that commit took
 * (at most 100 ms), and begins the next transaction: the disk gets a megabyte at
 * a time and is left idle at least half the time. What has to change at once
 * goes into one slice of its own (engine_checkpoint.c stages rows first and
 * applies them after that slice). Not paced, it never commits in between: one
 * transaction, committed by store_slice_commit.
 */
#define STORE_SLICE_BYTES ((size_t)1 << 20)
extern size_t store_slice_bytes; /* STORE_SLICE_BYTES; tests make slices smaller */
#define STORE_PUT_BYTES 4096 /* what a put at a random place dirties, besides its value */
struct store_slicer {
  struct store *st;
  MDB_txn *txn;       /* the open transaction (NULL after a final commit or a failure) */
  int paced;
  size_t bytes;       /* dirtied in it, roughly */
  unsigned commits;
  int64_t commit_ns;  /* in the commits */
  int64_t last_commit_ns; /* the last one's */
  int64_t rested_ns;  /* resting after them */
  const atomic_int *hurry; /* when set and non-zero, no rests (someone waits); NULL: none */
};
/* Begins the first transaction. */
void store_slice_begin(struct store_slicer *s, struct store *st, int paced);
/* Whether the open transaction has its slice's worth (never, not paced). */
int store_slice_full(const struct store_slicer *s);
/* Counts n more bytes dirtied (a put at a random place: STORE_PUT_BYTES and its value; an
   append: its value) and, once the slice is full, commits and begins the next. No cursor of
   the transaction may be open. Returns 0 or BATON_ESTORE (the transaction is then gone). */
int store_slice_add(struct store_slicer *s, size_t n);
/* Commits the open transaction (paced: then rests) and, with more, begins the next.
   Returns 0 or BATON_ESTORE (logged; no transaction is open then). */
int store_slice_commit(struct store_slicer *s, int more);
/* Aborts the open transaction, if any. */
void store_slice_abort(struct store_slicer *s);

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

/*
 * The engine: a deterministic state machine over the event log. One engine
 * thread applies records in log order — profile updates, journey triggers,
 * steps and timers — and periodically checkpoints its in-memory state to the
 * store together with the LSN it covers. Opening an engine loads the last
 * checkpoint; starting it replays the log from there, so the same log always
 * gives the same state and the same outgoing messages (their ids derive from
 * customer, journey version, step and entry; the clock is the log's own).
 *
 * Threads: engine_start runs the engine thread. Queries (engine_*_json) may
 * be called from any thread: they take a read lock that the engine thread
 * holds for writing only while applying a batch of records.
 */
#ifndef BATON_ENGINE_ENGINE_H
#define BATON_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "channels/outbox.h"
#include "engine/aggregate.h"
#include "evlog/evlog.h"
#include "store/store.h"
#include "util/buf.h"

struct engine;

/* Receives each message the engine produces (ownership passes). */
typedef void (*engine_sink_fn)(void *arg, struct outmsg *m);

struct engine_options {
  struct evlog *log;       /* may be NULL for engine_apply-only use (benchmarks, tests) */
  struct store *store;     /* may be NULL: no checkpoints (benchmarks, tests) */
  engine_sink_fn sink;     /* may be NULL: messages are counted and dropped */
  void *sink_arg;
  /* Called with the ids of a deleted customer's messages, so that those not
     yet sent never are (may be NULL). */
  void (*cancel)(void *sink_arg, const char *const *ids, size_t n);
  size_t recent_events;    /* events kept in memory per profile (the newest) */
  int64_t checkpoint_interval_ms;
  /* Trait names whose values identify a customer across profiles (identify
     traits): NULL means {"email", "phone"}. The strings must outlive the engine. */
  const char *const *external_ids;
  size_t n_external_ids;
  /* messageId de-duplication window: at most dedup_max ids (0: 2,000,000), none
     older than dedup_window_ms by the engine clock (0: 24 hours). */
  uint64_t dedup_max;
  int64_t dedup_window_ms;
  /* Computed aggregates (docs/aggregates.md); must outlive the engine. */
  const struct agg_def *aggregates;
  size_t n_aggregates;
};

struct engine_stats {
  uint64_t applied_lsn;
  uint64_t profiles;
  uint64_t events;
  uint64_t journeys;
  uint64_t active_runs;
  uint64_t timers;
  uint64_t messages;
  uint64_t checkpoints;
  uint64_t checkpoint_lsn;
  uint64_t duplicates;  /* events skipped as already seen (messageId) */
  uint64_t suppressed;  /* events skipped: their customer was deleted with suppression */
  uint64_t deleted;     /* customers deleted on request */
  uint64_t merges;
  uint64_t cpu_ns;        /* CPU time the engine thread has used (0 before it starts) */
  uint64_t checkpoint_ns;     /* wall time spent writing checkpoints */
  uint64_t checkpoint_cpu_ns; /* CPU time of it (the writer thread's, or the caller's) */
};

/*
 * Creates an engine and loads the last checkpoint from opt->store (if any).
 * Returns 0, BATON_ESTORE or BATON_ECORRUPT.
 */
int engine_open(const struct engine_options *opt, struct engine **out);

/*
 * Starts the engine thread and returns once it has replayed every record that
 * was durable when called. Returns 0, or the error that stopped the replay
 * (BATON_ENOENT if the log no longer holds the records after the checkpoint,
 * BATON_ECORRUPT).
 */
int engine_start(struct engine *e);

/*
 * Applies every durable record not yet applied, writes a final checkpoint and
 * stops the engine thread. Call after ingestion has stopped.
 */
void engine_stop(struct engine *e);

/* Frees the engine (stopped or never started). */
void engine_close(struct engine *e);

/*
 * Applies one record directly, as the engine thread would (for tests and
 * benchmarks; never while the engine thread runs). Returns 0 or BATON_ECORRUPT.
 */
int engine_apply(struct engine *e, uint64_t lsn, const void *data, size_t len);

/* Writes a checkpoint now (engine stopped or never started). Returns 0 or BATON_ESTORE. */
int engine_checkpoint(struct engine *e);
/* The same, written as the background writer writes one: in small transactions, its rows
   staged first (engine_checkpoint.c). */
int engine_checkpoint_sliced(struct engine *e);
/* For tests: called at the points of a sliced checkpoint where a crash leaves the store
   half written: "staged" (rows staged and timeline entries appended, before the commit that
   stores the checkpoint) and "stored" (after it, before the rows are moved). */
extern void (*engine_checkpoint_hook)(const char *point);

/*
 * Returns 1 if this userId or anonymousId belongs to a customer deleted with
 * suppression (thread-safe; cheap when nobody is suppressed).
 */
int engine_identity_suppressed(struct engine *e, const char *user_id, size_t ulen,
                               const char *anon_id, size_t alen);

/* Asks the engine thread to write a checkpoint now (returns at once). */
void engine_request_checkpoint(struct engine *e);

/* Waits until a checkpoint covers lsn; 0, or BATON_EBUSY on timeout. */
int engine_wait_checkpoint(struct engine *e, uint64_t lsn, int timeout_ms);

/* Waits until the record at lsn has been applied; 0, BATON_EBUSY on timeout. */
int engine_wait_applied(struct engine *e, uint64_t lsn, int timeout_ms);

void engine_get_stats(struct engine *e, struct engine_stats *out);

/* LSN of the last record applied (thread-safe, cheap: for back-pressure checks). */
uint64_t engine_applied_lsn(struct engine *e);

/*
 * Appends the JSON view of a profile to out. by names the kind of id:
 * NULL or "" (a userId, else an anonymousId), "userId", "anonymousId", or an
 * external id trait ("email", "phone", ...). Returns 0 or BATON_ENOENT.
 */
int engine_profile_json(struct engine *e, const char *by, const char *id, struct buf *out);

/*
 * Appends one page of a profile's timeline (events, merges, messages sent;
 * newest first) to out: {"events": [...], "next": "<cursor>"}, "next" present
 * when the page is full. before is a cursor from a previous page (0: from the
 * newest). Returns 0 or BATON_ENOENT. Needs the store for entries older than
 * the last checkpoint.
 */
int engine_profile_events_json(struct engine *e, const char *by, const char *id, size_t limit,
                               uint64_t before, struct buf *out);

/*
 * Appends everything Baton holds about one customer to out, as one JSON
 * document: {"exportedAt", "profile", "timeline" (every entry, newest first),
 * "messages" (the delivery ledger record of every message sent)}.
 * Returns 0 or BATON_ENOENT.
 */
int engine_profile_export_json(struct engine *e, const char *by, const char *id, struct buf *out);

/*
 * Returns 0 if a profile with this identity exists (and, when case_id is not
 * NULL, has a case with that id), else BATON_ENOENT.
 */
int engine_profile_exists(struct engine *e, const char *by, const char *id, const char *case_id);

/* Appends a JSON array of published journeys (latest versions) to out. */
int engine_journeys_json(struct engine *e, struct buf *out);

/*
 * Appends one journey's JSON (latest version with its source, and every
 * version's figures) to out. Returns 0 or BATON_ENOENT.
 */
int engine_journey_json(struct engine *e, const char *id, struct buf *out);

/* Latest version number of journey id, or 0 if it does not exist. */
uint32_t engine_journey_version(struct engine *e, const char *id);

#endif

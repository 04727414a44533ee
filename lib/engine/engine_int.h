/*
 * Engine internals shared by engine*.c: the in-memory state. Everything here
 * is owned by the engine thread; other threads read it only under e->lock.
 */
#ifndef BATON_ENGINE_ENGINE_INT_H
#define BATON_ENGINE_ENGINE_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>

#include "engine/dedup.h"
#include "engine/engine.h"
#include "engine/record.h"
#include "engine/timerq.h"
#include "journey/journey.h"
#include "util/smap.h"

#define PROFILE_MAX_MSGS 50
/* Timeline order: the engine's timeline sequence number << 1 | EVCOPY_NOT_RECENT. Strictly
   increasing in the order entries are recorded, unique across all customers (it is the stored
   timeline's key), never 0. */
#define EVCOPY_NOT_RECENT 1u
#define PROFILE_MAX_CASES 100 /* cases kept per profile; the oldest closed go first */ /* message ids remembered per profile */

/* A profile's timeline chain: its newest entry (queued or stored) and its id, the order of
   its first entry (both 0 while empty). */
struct tl_chain {
  uint64_t head, id;
};

/* An event as kept in memory: its timeline order and normalised JSON text.
   Shared by a profile's ring and its queue of entries the next checkpoint
   stores, hence the reference count. */
struct evcopy {
  uint64_t ord;  /* timeline order (above); EVCOPY_NOT_RECENT for entries kept out of the
                    recent ring */
  uint64_t prev;  /* the entry before it on its profile's chain (0: none) */
  uint64_t chain; /* that chain's id */
  struct evcopy *next_unstored; /* in its profile's queue of entries to store */
  uint32_t ckpt_no;             /* the checkpoint writing it, 0 if none yet */
  uint32_t refs;
  uint32_t len;
  uint32_t cap;  /* bytes data[] can hold (len + 1 at least); a copy is reused in place */
  char data[];
};

struct jversion {
  struct journey_def *def;
  uint32_t version;
  int64_t published_ms;
  uint64_t lsn;
  int persisted;              /* written to the store */
  int stats_dirty;            /* entered/completed/step_passed changed since the last checkpoint */
  uint64_t entered, completed, active;
  uint64_t *at_step;          /* customers currently at each step */
  uint64_t *step_passed;      /* customers that passed through each step */
  struct jversion *older;
};

struct jentry {
  char *id;
  struct jversion *latest;
};

/* A customer's state in one journey: entry count and the active run, if any. */
struct jmember {
  struct jmember *next;
  struct jentry *j;
  uint32_t entries;
  int64_t last_exit_ms;
  struct run *run;
};

struct run {
  struct timer timer; /* armed while waiting */
  struct profile *p;
  struct jmember *m;
  struct jversion *jv;
  int step;           /* current step index; -1 once finished */
  uint32_t entry_no;
  int64_t entered_ms;
  char *trigger;      /* the triggering event's JSON */
  uint32_t trigger_len;
};

#define PROFILE_MAX_IDENTS 1024 /* identities indexed per profile */

/*
 * Identities are kept as their index keys: "u:<userId>", "a:<anonymousId>",
 * "x:<trait>:<value>" for external ids (email, phone, configured traits).
 */
struct profile {
  char *key;          /* the identity it was created with; stable for its life */
  const char *user_id; /* points into the first "u:" identity (+2), or NULL */
  char **idents;
  size_t n_idents;
  /* The stored timeline is a chain per profile: each entry names the one before it. A
     merged profile's chain is frozen at the merge; the survivor keeps its key and chain. */
  struct tl_chain tl;
  char **merged_keys;          /* keys of profiles merged into this one */
  struct tl_chain *merged_tl;  /* their chains, in the same order */
  size_t n_merged;
  struct profile *merged_into; /* set once merged away; freed after the next checkpoint */
  int deleted;        /* deleted on request; its stored rows go at the next checkpoint */
  cJSON *traits;      /* object */
  cJSON *cases;       /* array of case objects (at most PROFILE_MAX_CASES), or NULL */
  struct agg_state *aggs; /* one per configured aggregate, allocated on the first match */
  size_t n_aggs;          /* their number (the engine's n_aggregates) */
  int64_t first_seen, last_seen;
  uint64_t n_events;
  struct jmember *members;
  /* Timeline entries not yet stored, oldest first (each holds a reference);
     the next checkpoint writes them under this profile's key. A merge moves
     the merged profile's queue here, a deletion drops it. */
  struct evcopy *unstored, *unstored_last;
  uint32_t n_unstored;
  char (*msgs)[OUTMSG_ID_LEN + 1]; /* newest message ids, ring of PROFILE_MAX_MSGS;
                                      NULL until the first message */
  uint32_t msg_head, msg_n;
  int dirty;
  struct profile *next_dirty;
  uint32_t ring_head, ring_n;
  /* Newest events, capacity e->opt.recent_events: ring_in, at the end of the profile's own
     allocation, so that the slot each event replaces is near the fields it reads. */
  struct evcopy **ring;
  struct evcopy *ring_in[];
};

struct engine {
  struct engine_options opt;
  pthread_rwlock_t lock;
  /* state (engine thread; readers under lock) */
  struct smap profiles; /* key -> profile */
  struct smap ids;      /* "u:id" / "a:id" -> profile */
  struct smap journeys; /* id -> jentry */
  struct smap triggers; /* event name -> struct trig */
  struct timerq timers;
  int64_t clock_ms;
  uint64_t applied_lsn;
  uint64_t cur_lsn;     /* record being applied */
  uint32_t seq_in_rec;  /* timers armed while applying cur_lsn */
  uint64_t tl_seq;      /* the next timeline entry's sequence number (its order >> 1); kept
                           with each checkpoint, so that replay gives entries the same orders */
  uint64_t n_events, n_messages, n_active_runs;
  const char *const *external_ids; /* trait names that identify a customer */
  size_t n_external_ids;
  uint64_t n_merges;
  struct dedup dedup;
  uint64_t dedup_stored_first, dedup_stored_end; /* sequence range in the store */
  uint64_t n_duplicates;
  /* deletions: what the next checkpoint must remove from the store */
  struct pending_delete *deletes;
  size_t n_deletes;
  struct smap suppressed;       /* hex SHA-256 of identity keys -> (void *)1 */
  atomic_size_t suppressed_n;   /* its size, readable without the lock */
  char (*supp_new)[65];         /* added since the last checkpoint */
  size_t n_supp_new;
  uint64_t n_suppressed, n_deleted;
  uint64_t purge_lsn;           /* log records below it hold deleted customers' events */
  int stage_left;               /* the last checkpoint left staged rows (engine_checkpoint.c) */
  atomic_int checkpoint_asked;
  struct expr_ctx *expr;       /* condition evaluation scratch (engine thread), made on first use */
  struct expr_arena *expr_vars; /* the variables bound for one evaluation (not the ctx's arena:
                                   baton_expr_eval rewinds that one) */
  atomic_ullong checkpoint_pub; /* checkpoint_lsn as published to other threads */
  /* checkpoint bookkeeping */
  struct profile *dirty_head;
  size_t n_unstored;   /* timeline entries queued on profiles since the last checkpoint */
  struct buf outbox_pending; /* encoded messages since the last checkpoint: u32 len, bytes */
  uint64_t checkpoint_lsn, n_checkpoints;
  uint32_t ckpt_seq;          /* numbers checkpoints (evcopy.ckpt_no) */
  int ckpt_in_flight;         /* a snapshot is with the writer thread (engine thread's view) */
  int ckpt_wanted;            /* a checkpoint is due (2: asked for, written at full speed);
                                 started once none is in flight */
  atomic_int ckpt_hurry;      /* someone waits for a checkpoint: the writer does not rest */
  pthread_t ckpt_thread;
  int ckpt_running, ckpt_quit;
  pthread_mutex_t ckpt_mu;
  pthread_cond_t ckpt_cv;
  struct ckpt *ckpt_queued, *ckpt_done; /* handed over under ckpt_mu */
  int64_t last_checkpoint_mono_ms;
  /* thread */
  pthread_t thread;
  clockid_t cpu_clock;       /* the engine thread's CPU clock, once started */
  atomic_ullong checkpoint_ns; /* time spent writing checkpoints (for /v1/stats) */
  atomic_ullong checkpoint_cpu_ns; /* CPU time of it */
  atomic_llong last_ckpt_write_ms; /* how long the last checkpoint took to write */
  int running;
  atomic_int stop;
  atomic_int tick_in_flight;
  int fatal;            /* error that stopped the engine thread */
  pthread_mutex_t applied_mu;
  pthread_cond_t applied_cv;
  atomic_ullong applied_pub; /* applied_lsn as last published to other threads */
  uint64_t replay_target;
  int replay_done;
};

struct tl_link {
  uint64_t ord, prev;
};

struct pending_delete {
  char **keys;    /* profile keys whose rows go */
  size_t n_keys;
  struct tl_chain *chains; /* timeline chains whose stored entries go */
  size_t n_chains;
  struct tl_link *queued; /* the links of entries that were queued, by ord (maybe never stored) */
  size_t n_queued;
  char **msg_ids; /* messages whose ledger and outbox rows go */
  size_t n_msgs;
};

struct trig {
  struct jentry **v;
  size_t n;
};

/* engine.c */
void profile_mark_dirty(struct engine *e, struct profile *p);
void evcopy_unref(struct evcopy *ev);
/* A new copy with room for len bytes and a NUL (refs 0, not queued). */
struct evcopy *evcopy_new(size_t len);
/* Drops p's queue of unstored timeline entries (after a checkpoint stored them,
   or when p is deleted or freed). */
void profile_drop_unstored(struct engine *e, struct profile *p);
/* Records message id (OUTMSG_ID_LEN chars) among p's newest messages. */
void profile_add_msg(struct profile *p, const char *id);
void profile_ring_push(struct engine *e, struct profile *p, struct evcopy *ev);
/* tlog rows (store.h): the key of ord, and reading one entry. tl_get returns 0 with the
   entry's prev, chain id and JSON text (pointing into the map), MDB_NOTFOUND, or
   BATON_ECORRUPT for a row too short to be one. */
void tl_key(uint64_t ord, unsigned char out[8]);
#define TL_VAL_HEAD 16 /* u64 prev, u64 chain id, before the JSON text */
int tl_get(MDB_txn *txn, const struct store *st, uint64_t ord, uint64_t *prev, uint64_t *chain,
           MDB_val *json);
/* The links of p's queued timeline entries, sorted by ord (*n gets their number). */
struct tl_link *profile_queued_links(const struct profile *p, size_t *n);
/* The prev of ord among links (sorted), or UINT64_MAX if it is not there. */
uint64_t tl_link_prev(const struct tl_link *links, size_t n, uint64_t ord);
/* Records an entry on p's timeline (stored at the next checkpoint); in_ring
   also keeps it among the profile's recent events. */
void profile_record(struct engine *e, struct profile *p, const char *json, size_t len,
                    int in_ring);

/* engine_profile.c */
/* A zeroed profile with room for its ring (no key, no traits, not indexed). */
struct profile *profile_alloc(struct engine *e);
struct profile *profile_new(struct engine *e, const char *key, size_t len);
void profile_free(struct profile *p);
/* Adds an identity key to p and indexes it; returns 1 if added, 0 if p had it
   or the profile is at PROFILE_MAX_IDENTS. */
int profile_add_ident(struct engine *e, struct profile *p, const char *key, size_t len);
void profile_index(struct engine *e, struct profile *p);
struct profile *engine_find_profile(struct engine *e, const char *id, size_t len);
struct profile *engine_find_profile_by(struct engine *e, const char *by, const char *id,
                                       size_t len);
/* The profile an event's userId (else anonymousId) already belongs to, or NULL, changing
   nothing; starts fetching it and its ring (resolve_profile usually returns it). */
struct profile *resolve_peek(struct engine *e, const struct rec_event *ev);
/* Resolves the profile of an event (creating, promoting or merging as needed). */
struct profile *resolve_profile(struct engine *e, const struct rec_event *ev);
/* identify: links external ids from traits (may merge); returns the survivor. */
struct profile *link_external_ids(struct engine *e, struct profile *p, const cJSON *traits);
/* Applies a note or a case change from another department. */
void engine_apply_profile_op(struct engine *e, const struct rec_profile *pr);
/* engine_branch.c */
/* Evaluates a branch step's condition for r at engine time now: 1 true, 0 false or error
   (the outcome is recorded on the customer's timeline either way). */
int engine_branch(struct engine *e, struct run *r, const struct journey_step *s, int64_t now);

/* engine_delete.c */
void engine_apply_delete(struct engine *e, const struct rec_profile *pr);
/* Returns 1 if the event's userId or anonymousId belongs to a deleted, suppressed customer. */
int engine_is_suppressed(struct engine *e, const struct rec_event *ev);
/* Inside a checkpoint's write transaction: removes what deletions left in the store. */
int engine_checkpoint_deletes(struct store *st, MDB_txn *txn, struct pending_delete *deletes,
                              size_t n_deletes, char (*supp_new)[65], size_t n_supp_new,
                              int64_t clock_ms);
void engine_pending_delete_free(struct pending_delete *d);
/* Frees the deletions and suppressions no checkpoint has taken (at close). */
void engine_deletes_done(struct engine *e);
int engine_load_suppressed(struct engine *e, MDB_txn *txn);
/* alias: merges the profile of previousId into p; returns p. */
struct profile *apply_alias(struct engine *e, struct profile *p, const cJSON *event);

/* engine_journeys.c */
void engine_apply_publish(struct engine *e, const struct rec_journey *jr);
void engine_trigger(struct engine *e, struct profile *p, const struct rec_event *ev);
void engine_fire_timers(struct engine *e, int64_t until);
void engine_rebuild_triggers(struct engine *e);
struct jentry *engine_jentry(struct engine *e, const char *id, size_t len, int create);
struct jversion *jentry_version(struct jentry *j, uint32_t version);
struct jversion *jversion_new(struct journey_def *def, uint32_t version);
void run_free(struct engine *e, struct run *r);
void run_arm(struct engine *e, struct run *r, int64_t due, uint64_t seq);
void engine_free_journeys(struct engine *e);

/* The engine thread holds the write lock about this long at most at a time (applying records,
   finishing a checkpoint): profile reads wait meanwhile. */
#define ENGINE_HOLD_NS 250000

/* engine_checkpoint.c */
int engine_load(struct engine *e);
/* written before it returns; paced: as the writer thread writes one (in slices) */
int engine_checkpoint_locked(struct engine *e, int paced);
/* handed to the writer thread; paced: in slices with rests (store_slicer), else at full speed */
void engine_checkpoint_async(struct engine *e, int paced);
void engine_ckpt_writer_start(struct engine *e);
void engine_ckpt_writer_stop(struct engine *e); /* finishes what is in flight first */
int engine_ckpt_poll(struct engine *e, int wait);

#endif

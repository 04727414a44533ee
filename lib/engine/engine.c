/*
 * Engine lifecycle, the apply loop and customer profiles. Journey logic is in
 * engine_journeys.c, checkpoints in engine_checkpoint.c, JSON views in
 * engine_query.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_int.h"
#include "expr/expr.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"
#include "util/jscan.h"

#define APPLY_BATCH 1024     /* records applied per write-lock hold, at most */
#define TICK_RETRY_MS 50     /* re-send a tick if the last one has not applied */


/* ---- profiles ---- */

void evcopy_unref(struct evcopy *ev) {
  if (ev && --ev->refs == 0) free(ev);
}

/* Sizes are rounded up to 64 bytes so that a profile's newest event usually
   fits in the copy it pushes out of the ring (profile_record reuses it). */
#define EVCOPY_ROUND 64

struct evcopy *evcopy_new(size_t len) {
  size_t size = (sizeof(struct evcopy) + len + 1 + EVCOPY_ROUND - 1) & ~(size_t)(EVCOPY_ROUND - 1);
  struct evcopy *c = xmalloc(size);
  c->next_unstored = NULL;
  c->prev = c->chain = 0;
  c->ckpt_no = 0;
  c->refs = 0;
  c->len = (uint32_t)len;
  c->cap = (uint32_t)(size - sizeof(struct evcopy));
  return c;
}

void profile_mark_dirty(struct engine *e, struct profile *p) {
  if (p->dirty) return;
  p->dirty = 1;
  p->next_dirty = e->dirty_head;
  e->dirty_head = p;
}

static int cmp_link(const void *a, const void *b) {
  uint64_t x = ((const struct tl_link *)a)->ord, y = ((const struct tl_link *)b)->ord;
  return (x > y) - (x < y);
}

struct tl_link *profile_queued_links(const struct profile *p, size_t *n) {
  struct tl_link *v = xmalloc((p->n_unstored ? p->n_unstored : 1) * sizeof(*v));
  size_t k = 0;
  for (const struct evcopy *c = p->unstored; c && k < p->n_unstored; c = c->next_unstored)
    v[k++] = (struct tl_link){c->ord, c->prev};
  qsort(v, k, sizeof(*v), cmp_link);
  *n = k;
  return v;
}

uint64_t tl_link_prev(const struct tl_link *links, size_t n, uint64_t ord) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (links[mid].ord < ord) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && links[lo].ord == ord ? links[lo].prev : UINT64_MAX;
}

void profile_drop_unstored(struct engine *e, struct profile *p) {
  for (struct evcopy *c = p->unstored, *n; c; c = n) {
    n = c->next_unstored;
    evcopy_unref(c);
  }
  e->n_unstored -= MIN(e->n_unstored, p->n_unstored);
  p->unstored = p->unstored_last = NULL;
  p->n_unstored = 0;
}

void profile_add_msg(struct profile *p, const char *id) {
  if (!p->msgs) p->msgs = xmalloc(PROFILE_MAX_MSGS * sizeof(*p->msgs));
  uint32_t slot = (p->msg_head + p->msg_n) % PROFILE_MAX_MSGS;
  if (p->msg_n == PROFILE_MAX_MSGS) {
    slot = p->msg_head;
    p->msg_head = (p->msg_head + 1) % PROFILE_MAX_MSGS;
  } else {
    p->msg_n++;
  }
  memcpy(p->msgs[slot], id, OUTMSG_ID_LEN);
  p->msgs[slot][OUTMSG_ID_LEN] = '\0';
}

void profile_ring_push(struct engine *e, struct profile *p, struct evcopy *ev) {
  size_t cap = e->opt.recent_events;
  if (!cap) return;
  ev->refs++;
  if (p->ring_n < cap) {
    size_t at = p->ring_head + p->ring_n; /* no division: this runs for every event */
    p->ring[at >= cap ? at - cap : at] = ev;
    p->ring_n++;
  } else {
    evcopy_unref(p->ring[p->ring_head]);
    p->ring[p->ring_head] = ev;
    p->ring_head = p->ring_head + 1 == cap ? 0 : p->ring_head + 1;
  }
}

/* Merges identify traits (top-level keys; later values win) into the profile. */
static void merge_traits(struct profile *p, cJSON *traits) {
  if (!cJSON_IsObject(traits)) return;
  cJSON *t = traits->child;
  while (t) {
    cJSON *next = t->next;
    cJSON_DetachItemViaPointer(traits, t);
    /* Replace via the old item: cJSON's replace-by-name frees the
       replacement's own key before copying the name it was given. */
    cJSON *old = cJSON_GetObjectItemCaseSensitive(p->traits, t->string);
    if (old)
      cJSON_ReplaceItemViaPointer(p->traits, old, t);
    else
      cJSON_AddItemToObject(p->traits, t->string, t);
    t = next;
  }
}

void profile_record(struct engine *e, struct profile *p, const char *json, size_t len,
                    int in_ring) {
  size_t cap = e->opt.recent_events;
  struct evcopy *c = NULL, *old = in_ring && cap && p->ring_n == cap ? p->ring[p->ring_head] : NULL;
  if (old && old->refs == 1 && old->cap > len) {
    /* The ring is full and only it holds its oldest event: that copy becomes the newest
       in place, sparing a malloc and a free (which reads the copy's header anyway). */
    c = old;
    c->next_unstored = NULL;
    c->ckpt_no = 0;
    c->len = (uint32_t)len;
    p->ring_head = p->ring_head + 1 == cap ? 0 : p->ring_head + 1;
  } else {
    c = evcopy_new(len);
  }
  c->ord = e->tl_seq++ << 1 | (in_ring ? 0 : EVCOPY_NOT_RECENT);
  memcpy(c->data, json, len);
  c->data[len] = '\0';
  if (in_ring && c != old) profile_ring_push(e, p, c);
  /* On p's chain. */
  c->prev = p->tl.head;
  if (!p->tl.id) p->tl.id = c->ord;
  c->chain = p->tl.id;
  p->tl.head = c->ord;
  if (e->opt.store) {
    c->refs++;
    if (p->unstored_last) p->unstored_last->next_unstored = c;
    else p->unstored = c;
    p->unstored_last = c;
    p->n_unstored++;
    e->n_unstored++;
  }
  if (!c->refs) free(c);
  profile_mark_dirty(e, p);
}

/* Folds a track event into every aggregate that counts it (properties parsed once, if needed). */
static void update_aggregates(struct engine *e, struct profile *p, const struct rec_event *ev) {
  cJSON *doc = NULL;
  int parsed = 0;
  for (size_t i = 0; i < e->opt.n_aggregates; i++) {
    const struct agg_def *d = &e->opt.aggregates[i];
    if (strcmp(d->event, "*") &&
        (strlen(d->event) != ev->name.len || memcmp(d->event, ev->name.ptr, ev->name.len)))
      continue;
    if (d->property && !parsed) {
      doc = cJSON_ParseWithLength(ev->json.ptr, ev->json.len);
      parsed = 1;
    }
    if (!p->aggs) {
      p->aggs = xcalloc(e->opt.n_aggregates, sizeof(*p->aggs));
      p->n_aggs = e->opt.n_aggregates;
    }
    agg_update(d, &p->aggs[i], ev->timestamp_ms,
               doc ? cJSON_GetObjectItemCaseSensitive(doc, "properties") : NULL);
  }
  cJSON_Delete(doc);
}

/* Identities the engine accepts: what ingest guarantees, checked again so a
   damaged or foreign record cannot alias two customers. */
static int id_ok(struct rec_str s) {
  return s.len <= 1024 && !memchr(s.ptr, '\0', s.len);
}

static int apply_event(struct engine *e, const struct rec_event *ev) {
  if (!id_ok(ev->user_id) || !id_ok(ev->anonymous_id) ||
      (!ev->user_id.len && !ev->anonymous_id.len))
    return BATON_ECORRUPT;
  if (engine_is_suppressed(e, ev)) {
    e->n_suppressed++; /* a deleted customer who asked not to be tracked again */
    return 0;
  }
  /* Each event waits on a chain of cache misses: the de-duplication window's slot, the
     identity index's slot, the profile, the slot its ring replaces and the copy it evicts.
     Overlap what can be: the window's slot is fetched while the index is read, the profile
     while the window is checked, the evicted copy while the profile is resolved. */
  uint64_t h = ev->message_id.len ? dedup_hash(ev->source.ptr, ev->source.len, ev->message_id.ptr,
                                               ev->message_id.len)
                                  : 0;
  if (h) dedup_prefetch(&e->dedup, h);
  struct profile *peek = resolve_peek(e, ev);
  if (h && dedup_check(&e->dedup, h, e->clock_ms)) {
    e->n_duplicates++; /* a client's retry of an event already taken */
    return 0;
  }
  size_t cap = e->opt.recent_events;
  if (peek && cap && peek->ring_n == cap) __builtin_prefetch(peek->ring[peek->ring_head]);
  struct profile *p = resolve_profile(e, ev);
  if (ev->kind == EV_IDENTIFY) {
    /* Only the traits value is parsed: parsing whole events was about a
       quarter of engine_apply's time with 15% identify events (bench/engine). */
    const char *tv;
    size_t tl;
    int found = jscan_top_member(ev->json.ptr, ev->json.len, "traits", &tv, &tl);
    cJSON *doc = found > 0   ? cJSON_ParseWithLength(tv, tl)
                 : found < 0 ? cJSON_ParseWithLength(ev->json.ptr, ev->json.len)
                             : NULL;
    if (doc && found > 0) {
      p = link_external_ids(e, p, doc);
      merge_traits(p, doc);
    } else if (doc) {
      cJSON *traits = cJSON_GetObjectItemCaseSensitive(doc, "traits");
      p = link_external_ids(e, p, traits);
      merge_traits(p, traits);
    }
    cJSON_Delete(doc);
  } else if (ev->kind == EV_ALIAS) {
    cJSON *doc = cJSON_ParseWithLength(ev->json.ptr, ev->json.len);
    if (doc) {
      p = apply_alias(e, p, doc);
      cJSON_Delete(doc);
    }
  }
  if (e->opt.n_aggregates && ev->kind == EV_TRACK) update_aggregates(e, p, ev);
  if (!p->first_seen || ev->timestamp_ms < p->first_seen) p->first_seen = ev->timestamp_ms;
  if (ev->timestamp_ms > p->last_seen) p->last_seen = ev->timestamp_ms;
  p->n_events++;
  e->n_events++;
  profile_record(e, p, ev->json.ptr, ev->json.len, 1);
  engine_trigger(e, p, ev);
  return 0;
}

int engine_apply(struct engine *e, uint64_t lsn, const void *data, size_t len) {
  struct rec r;
  if (rec_decode(data, len, &r)) return BATON_ECORRUPT;
  e->cur_lsn = lsn;
  e->seq_in_rec = 0;
  int64_t t = r.type == REC_EVENT     ? r.u.ev.received_ms
              : r.type == REC_JOURNEY ? r.u.jr.time_ms
              : r.type == REC_PROFILE ? r.u.pr.time_ms
                                      : r.u.tick_ms;
  /* The engine clock only moves forward, and only with the log. */
  if (t > e->clock_ms) {
    engine_fire_timers(e, t);
    e->clock_ms = t;
  }
  int rc = 0;
  switch (r.type) {
    case REC_EVENT: rc = apply_event(e, &r.u.ev); break;
    case REC_JOURNEY: engine_apply_publish(e, &r.u.jr); break;
    case REC_PROFILE:
      if (r.u.pr.op == POP_DELETE)
        engine_apply_delete(e, &r.u.pr);
      else
        engine_apply_profile_op(e, &r.u.pr);
      break;
    case REC_TICK: break;
  }
  e->applied_lsn = lsn;
  return rc;
}

/* ---- lifecycle ---- */

int engine_open(const struct engine_options *opt, struct engine **out) {
  struct engine *e = xcalloc(1, sizeof(*e));
  e->opt = *opt;
  e->tl_seq = 1; /* order 0 means "none" */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  /* Writer preference: profile reads must not starve the apply loop. */
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&e->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  pthread_mutex_init(&e->applied_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&e->applied_cv, &ca);
  pthread_condattr_destroy(&ca);
  static const char *const default_external_ids[] = {"email", "phone"};
  e->external_ids = opt->external_ids ? opt->external_ids : default_external_ids;
  e->n_external_ids = opt->external_ids ? opt->n_external_ids : 2;
  dedup_init(&e->dedup, opt->dedup_max ? opt->dedup_max : 2000000,
             opt->dedup_window_ms ? opt->dedup_window_ms : 24LL * 3600 * 1000);
  smap_init(&e->suppressed);
  smap_init(&e->profiles);
  smap_init(&e->ids);
  smap_init(&e->journeys);
  smap_init(&e->triggers);
  timerq_init(&e->timers);
  buf_init(&e->outbox_pending, 0);
  if (e->opt.store) {
    int rc = engine_load(e);
    if (rc) {
      engine_close(e);
      return rc;
    }
  }
  *out = e;
  return 0;
}

static void tick_done(void *arg, uint64_t lsn, int status) {
  struct engine *e = arg;
  (void)lsn;
  (void)status;
  atomic_store(&e->tick_in_flight, 0);
}

/* Appends a tick when the earliest timer is due by the wall clock and no
   event has moved the engine clock past it. Returns ms until worth checking. */
static int maybe_tick(struct engine *e) {
  struct timer *t = timerq_peek(&e->timers);
  if (!t) return 200;
  int64_t now = clock_now_ms();
  if (t->due > now) return (int)MIN(t->due - now, 200);
  if (atomic_load(&e->tick_in_flight)) return TICK_RETRY_MS;
  struct buf b;
  buf_init(&b, 64);
  rec_tick_encode(&b, now);
  struct evlog_rec r = {b.ptr, b.len};
  atomic_store(&e->tick_in_flight, 1);
  if (evlog_append_async(e->opt.log, &r, 1, tick_done, e)) atomic_store(&e->tick_in_flight, 0);
  buf_release(&b);
  return TICK_RETRY_MS;
}

static int64_t mono_ms(void) { return clock_mono_ns() / 1000000; }

uint64_t engine_applied_lsn(struct engine *e) { return atomic_load(&e->applied_pub); }

static void publish_applied(struct engine *e) {
  atomic_store(&e->applied_pub, e->applied_lsn);
  pthread_mutex_lock(&e->applied_mu);
  if (!e->replay_done && e->applied_lsn + 1 >= e->replay_target) e->replay_done = 1;
  pthread_cond_broadcast(&e->applied_cv);
  pthread_mutex_unlock(&e->applied_mu);
}

static void fail(struct engine *e, int rc, const char *what) {
  struct jlog_line l;
  jlog_begin(&l, JLOG_ERROR, "engine stopped");
  jlog_str(&l, "reason", what);
  jlog_str(&l, "error", baton_strerror(rc));
  jlog_u64(&l, "applied_lsn", e->applied_lsn);
  jlog_end(&l);
  pthread_mutex_lock(&e->applied_mu);
  e->fatal = rc;
  e->replay_done = 1;
  pthread_cond_broadcast(&e->applied_cv);
  pthread_mutex_unlock(&e->applied_mu);
}

/* Checkpoints come every checkpoint_interval, or less often while they are slow to write:
   at least CKPT_SPACING times the last write's duration apart (at most CKPT_MAX_MS), so
   that the writer keeps the disk busy a quarter of the time at most and the log's fsyncs
   do not queue behind it. A checkpoint covering more changes also rewrites fewer store
   pages per change (with a million customers, each dirty profile otherwise costs about a
   page of its own). */
#define CKPT_SPACING 4
#define CKPT_MAX_MS 60000
static int64_t checkpoint_due_ms(const struct engine *e) {
  int64_t due = e->opt.checkpoint_interval_ms;
  int64_t spaced = CKPT_SPACING * atomic_load(&e->last_ckpt_write_ms);
  if (spaced > due) due = MIN(spaced, (int64_t)MAX(CKPT_MAX_MS, e->opt.checkpoint_interval_ms));
  return due;
}

static void *engine_main(void *arg) {
  struct engine *e = arg;
  struct evlog_reader *rd;
  int rc = evlog_reader_open(e->opt.log, e->applied_lsn + 1, &rd);
  if (rc) {
    fail(e, rc, rc == BATON_ENOENT ? "the log no longer holds the records after the checkpoint"
                                   : "cannot read the log");
    return NULL;
  }
  e->last_checkpoint_mono_ms = mono_ms();
  for (;;) {
    size_t n = 0;
    struct evlog_entry ent;
    pthread_rwlock_wrlock(&e->lock);
    int64_t held_from = clock_mono_ns();
    while (n < APPLY_BATCH && (n % 32 || !n || clock_mono_ns() - held_from < ENGINE_HOLD_NS) &&
           (rc = evlog_reader_next(rd, &ent)) == 1) {
      if (engine_apply(e, ent.lsn, ent.data, ent.len)) {
        struct jlog_line l;
        jlog_begin(&l, JLOG_ERROR, "undecodable log record skipped");
        jlog_u64(&l, "lsn", ent.lsn);
        jlog_end(&l);
        e->applied_lsn = ent.lsn;
      }
      n++;
    }
    pthread_rwlock_unlock(&e->lock);
    if (rc < 0) {
      fail(e, rc, "log read failed");
      break;
    }
    if (n) publish_applied(e);
    int stopping = atomic_load(&e->stop);
    if (e->opt.store) {
      /* Checkpoints are written by the writer thread while this one goes on applying; a
         failure is logged and everything is written again by the next one. */
      int finished = engine_ckpt_poll(e, 0);
      if (atomic_exchange(&e->checkpoint_asked, 0))
        e->ckpt_wanted = 2; /* someone waits for it: written at full speed */
      else if (!e->ckpt_wanted && mono_ms() - e->last_checkpoint_mono_ms >= checkpoint_due_ms(e))
        e->ckpt_wanted = 1;
      if (stopping) {
        if (n == 0) { /* everything applied: the last checkpoint, written before exiting */
          engine_checkpoint_locked(e, 0);
          finished = 1;
        }
      } else if (e->ckpt_wanted && !e->ckpt_in_flight) {
        engine_checkpoint_async(e, e->ckpt_wanted == 1);
        e->ckpt_wanted = 0;
        e->last_checkpoint_mono_ms = mono_ms();
      }
      if (finished) publish_applied(e); /* wakes engine_wait_checkpoint */
    }
    if (n) continue;
    if (stopping) break;
    int wait = maybe_tick(e);
    evlog_wait(e->opt.log, e->applied_lsn + 1, wait);
  }
  evlog_reader_close(rd);
  return NULL;
}

int engine_start(struct engine *e) {
  atomic_store(&e->applied_pub, e->applied_lsn);
  e->replay_target = evlog_durable_lsn(e->opt.log);
  e->replay_done = e->applied_lsn + 1 >= e->replay_target;
  if (!e->opt.checkpoint_interval_ms) e->opt.checkpoint_interval_ms = 2000;
  if (e->opt.store) engine_ckpt_writer_start(e);
  pthread_create(&e->thread, NULL, engine_main, e);
  pthread_setname_np(e->thread, "baton-engine");
  if (pthread_getcpuclockid(e->thread, &e->cpu_clock)) e->cpu_clock = (clockid_t)-1;
  e->running = 1;
  pthread_mutex_lock(&e->applied_mu);
  while (!e->replay_done) pthread_cond_wait(&e->applied_cv, &e->applied_mu);
  int rc = e->fatal;
  pthread_mutex_unlock(&e->applied_mu);
  return rc;
}

void engine_stop(struct engine *e) {
  if (!e->running) return;
  atomic_store(&e->stop, 1);
  evlog_wake(e->opt.log);
  pthread_join(e->thread, NULL);
  e->running = 0;
  engine_ckpt_writer_stop(e);
}

int engine_checkpoint(struct engine *e) {
  if (!e->opt.store) return 0;
  return engine_checkpoint_locked(e, 0);
}

int engine_checkpoint_sliced(struct engine *e) {
  if (!e->opt.store) return 0;
  return engine_checkpoint_locked(e, 1);
}


void engine_request_checkpoint(struct engine *e) {
  atomic_store(&e->ckpt_hurry, 1); /* the one in flight, if any, rests no more */
  atomic_store(&e->checkpoint_asked, 1);
  if (e->opt.log) evlog_wake(e->opt.log);
}

int engine_wait_checkpoint(struct engine *e, uint64_t lsn, int timeout_ms) {
  struct timespec until = clock_deadline_after_ms(timeout_ms);
  int rc = 0;
  pthread_mutex_lock(&e->applied_mu);
  while (atomic_load(&e->checkpoint_pub) < lsn && !e->fatal) {
    if (pthread_cond_timedwait(&e->applied_cv, &e->applied_mu, &until) == ETIMEDOUT) {
      rc = atomic_load(&e->checkpoint_pub) < lsn ? BATON_EBUSY : 0;
      break;
    }
  }
  if (e->fatal) rc = e->fatal;
  pthread_mutex_unlock(&e->applied_mu);
  return rc;
}

int engine_wait_applied(struct engine *e, uint64_t lsn, int timeout_ms) {
  struct timespec until = clock_deadline_after_ms(timeout_ms);
  int rc = 0;
  pthread_mutex_lock(&e->applied_mu);
  while (e->applied_lsn < lsn && !e->fatal) {
    if (pthread_cond_timedwait(&e->applied_cv, &e->applied_mu, &until) == ETIMEDOUT) {
      rc = e->applied_lsn < lsn ? BATON_EBUSY : 0;
      break;
    }
  }
  if (e->fatal) rc = e->fatal;
  pthread_mutex_unlock(&e->applied_mu);
  return rc;
}

void engine_close(struct engine *e) {
  if (!e) return;
  engine_stop(e);
  size_t it = 0;
  const struct smap_slot *s;
  /* Runs first (they point at profiles and journey versions). */
  while (smap_next(&e->profiles, &it, &s)) {
    struct profile *p = s->val;
    for (struct jmember *m = p->members; m; m = m->next)
      if (m->run) run_free(e, m->run);
  }
  /* Profiles merged away since the last checkpoint are only on the dirty list
     (walk it before the live profiles on it are freed). */
  for (struct profile *p = e->dirty_head, *n; p; p = n) {
    n = p->next_dirty;
    if (p->merged_into || p->deleted) profile_free(p);
  }
  engine_deletes_done(e);
  smap_release(&e->suppressed);
  it = 0;
  while (smap_next(&e->profiles, &it, &s)) profile_free(s->val);
  engine_free_journeys(e);
  smap_release(&e->profiles);
  smap_release(&e->ids);
  timerq_release(&e->timers);
  dedup_release(&e->dedup);
  if (e->expr) baton_expr_ctx_free(e->expr);
  if (e->expr_vars) baton_expr_arena_free(e->expr_vars);
  buf_release(&e->outbox_pending);
  pthread_rwlock_destroy(&e->lock);
  pthread_mutex_destroy(&e->applied_mu);
  pthread_cond_destroy(&e->applied_cv);
  free(e);
}

void engine_get_stats(struct engine *e, struct engine_stats *out) {
  pthread_rwlock_rdlock(&e->lock);
  out->applied_lsn = e->applied_lsn;
  out->profiles = e->profiles.len;
  out->events = e->n_events;
  out->journeys = e->journeys.len;
  out->active_runs = e->n_active_runs;
  out->timers = e->timers.len;
  out->messages = e->n_messages;
  out->checkpoints = e->n_checkpoints;
  out->checkpoint_lsn = e->checkpoint_lsn;
  out->duplicates = e->n_duplicates;
  out->suppressed = e->n_suppressed;
  out->deleted = e->n_deleted;
  out->merges = e->n_merges;
  pthread_rwlock_unlock(&e->lock);
  out->cpu_ns = 0;
  struct timespec ts;
  if (e->running && e->cpu_clock != (clockid_t)-1 && !clock_gettime(e->cpu_clock, &ts))
    out->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  out->checkpoint_ns = atomic_load(&e->checkpoint_ns);
  out->checkpoint_cpu_ns = atomic_load(&e->checkpoint_cpu_ns);
}

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
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

#define APPLY_BATCH 1024     /* records applied per write-lock hold */
#define TICK_RETRY_MS 50     /* re-send a tick if the last one has not applied */

int engine_checkpoint_locked(struct engine *e); /* engine_checkpoint.c */

/* ---- profiles ---- */

void evcopy_unref(struct evcopy *ev) {
  if (ev && --ev->refs == 0) free(ev);
}

void profile_free(struct profile *p) {
  free(p->key);
  free(p->user_id);
  for (size_t i = 0; i < p->n_anon; i++) free(p->anon_ids[i]);
  free(p->anon_ids);
  cJSON_Delete(p->traits);
  for (uint32_t i = 0; i < p->ring_n; i++) evcopy_unref(p->ring[i]);
  free(p->ring);
  free(p->msgs);
  for (struct jmember *m = p->members, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  free(p);
}

void profile_mark_dirty(struct engine *e, struct profile *p) {
  if (p->dirty) return;
  p->dirty = 1;
  p->next_dirty = e->dirty_head;
  e->dirty_head = p;
}

static void id_key(char *out, size_t cap, char kind, const char *id, size_t len, size_t *n) {
  size_t k = MIN(len, cap - 3);
  out[0] = kind;
  out[1] = ':';
  memcpy(out + 2, id, k);
  out[2 + k] = '\0';
  *n = 2 + k;
}

/* Registers p's identities in the id index. */
void profile_index(struct engine *e, struct profile *p) {
  char key[1100];
  size_t n;
  if (p->user_id) {
    id_key(key, sizeof(key), 'u', p->user_id, strlen(p->user_id), &n);
    *smap_upsert(&e->ids, key, n, NULL) = p;
  }
  for (size_t i = 0; i < p->n_anon; i++) {
    id_key(key, sizeof(key), 'a', p->anon_ids[i], strlen(p->anon_ids[i]), &n);
    *smap_upsert(&e->ids, key, n, NULL) = p;
  }
}

struct profile *engine_find_profile(struct engine *e, const char *id, size_t len) {
  char key[1100];
  size_t n;
  if (len > 1024) return NULL;
  id_key(key, sizeof(key), 'u', id, len, &n);
  struct profile *p = smap_get(&e->ids, key, n);
  if (!p) {
    id_key(key, sizeof(key), 'a', id, len, &n);
    p = smap_get(&e->ids, key, n);
  }
  return p;
}

static struct profile *profile_new(struct engine *e, char kind, struct rec_str id) {
  struct profile *p = xcalloc(1, sizeof(*p));
  char key[1100];
  size_t n;
  id_key(key, sizeof(key), kind, id.ptr, id.len, &n);
  p->key = xstrndup(key, n);
  p->traits = cJSON_CreateObject();
  p->ring = xcalloc(e->opt.recent_events ? e->opt.recent_events : 1, sizeof(*p->ring));
  p->msgs = xcalloc(PROFILE_MAX_MSGS, sizeof(*p->msgs));
  *smap_upsert(&e->profiles, p->key, n, NULL) = p;
  return p;
}

static void profile_add_anon(struct engine *e, struct profile *p, struct rec_str anon) {
  for (size_t i = 0; i < p->n_anon; i++)
    if (strlen(p->anon_ids[i]) == anon.len && !memcmp(p->anon_ids[i], anon.ptr, anon.len)) return;
  p->anon_ids = xrealloc(p->anon_ids, (p->n_anon + 1) * sizeof(*p->anon_ids));
  p->anon_ids[p->n_anon++] = xstrndup(anon.ptr, anon.len);
  profile_index(e, p);
}

/*
 * Finds or creates the profile an event belongs to. A userId wins; an
 * anonymous profile is promoted when its anonymousId first arrives with a
 * userId. (Merging two existing profiles is identity resolution's job.)
 */
static struct profile *resolve_profile(struct engine *e, const struct rec_event *ev) {
  char key[1100];
  size_t n;
  struct profile *p = NULL, *anon_p = NULL;
  if (ev->anonymous_id.len) {
    id_key(key, sizeof(key), 'a', ev->anonymous_id.ptr, ev->anonymous_id.len, &n);
    anon_p = smap_get(&e->ids, key, n);
  }
  if (ev->user_id.len) {
    id_key(key, sizeof(key), 'u', ev->user_id.ptr, ev->user_id.len, &n);
    p = smap_get(&e->ids, key, n);
    if (!p && anon_p && !anon_p->user_id) {
      p = anon_p;
      p->user_id = xstrndup(ev->user_id.ptr, ev->user_id.len);
      profile_index(e, p);
    }
    if (!p) {
      p = profile_new(e, 'u', ev->user_id);
      p->user_id = xstrndup(ev->user_id.ptr, ev->user_id.len);
      profile_index(e, p);
    }
    if (ev->anonymous_id.len && !anon_p) profile_add_anon(e, p, ev->anonymous_id);
    return p;
  }
  if (anon_p) return anon_p;
  p = profile_new(e, 'a', ev->anonymous_id);
  profile_add_anon(e, p, ev->anonymous_id);
  return p;
}

void profile_ring_push(struct engine *e, struct profile *p, struct evcopy *ev) {
  size_t cap = e->opt.recent_events;
  if (!cap) return;
  ev->refs++;
  if (p->ring_n < cap) {
    p->ring[(p->ring_head + p->ring_n) % cap] = ev;
    p->ring_n++;
  } else {
    evcopy_unref(p->ring[p->ring_head]);
    p->ring[p->ring_head] = ev;
    p->ring_head = (uint32_t)((p->ring_head + 1) % cap);
  }
}

/* Merges identify traits (top-level keys; later values win) into the profile. */
static void merge_traits(struct profile *p, const struct rec_event *ev) {
  cJSON *doc = cJSON_ParseWithLength(ev->json.ptr, ev->json.len);
  if (!doc) return;
  cJSON *traits = cJSON_GetObjectItemCaseSensitive(doc, "traits");
  if (cJSON_IsObject(traits)) {
    cJSON *t = traits->child;
    while (t) {
      cJSON *next = t->next;
      cJSON_DetachItemViaPointer(traits, t);
      const char *k = t->string;
      if (cJSON_GetObjectItemCaseSensitive(p->traits, k))
        cJSON_ReplaceItemInObjectCaseSensitive(p->traits, k, t);
      else
        cJSON_AddItemToObject(p->traits, k, t);
      t = next;
    }
  }
  cJSON_Delete(doc);
}

static void apply_event(struct engine *e, const struct rec_event *ev) {
  struct profile *p = resolve_profile(e, ev);
  if (!p->first_seen || ev->timestamp_ms < p->first_seen) p->first_seen = ev->timestamp_ms;
  if (ev->timestamp_ms > p->last_seen) p->last_seen = ev->timestamp_ms;
  p->n_events++;
  e->n_events++;
  if (ev->kind == EV_IDENTIFY) merge_traits(p, ev);
  struct evcopy *c = xmalloc(sizeof(*c) + ev->json.len + 1);
  c->lsn = e->cur_lsn;
  c->refs = 0;
  c->len = ev->json.len;
  memcpy(c->data, ev->json.ptr, ev->json.len);
  c->data[c->len] = '\0';
  profile_ring_push(e, p, c);
  if (e->opt.store) {
    if (e->tl_len == e->tl_cap) {
      e->tl_cap = e->tl_cap ? e->tl_cap * 2 : 1024;
      e->tl = xrealloc(e->tl, e->tl_cap * sizeof(*e->tl));
    }
    c->refs++;
    e->tl[e->tl_len++] = (struct tl_pending){p, c};
  }
  if (!c->refs) free(c);
  profile_mark_dirty(e, p);
  engine_trigger(e, p, ev);
}

int engine_apply(struct engine *e, uint64_t lsn, const void *data, size_t len) {
  struct rec r;
  if (rec_decode(data, len, &r)) return BATON_ECORRUPT;
  e->cur_lsn = lsn;
  e->seq_in_rec = 0;
  int64_t t = r.type == REC_EVENT     ? r.u.ev.received_ms
              : r.type == REC_JOURNEY ? r.u.jr.time_ms
                                      : r.u.tick_ms;
  /* The engine clock only moves forward, and only with the log. */
  if (t > e->clock_ms) {
    engine_fire_timers(e, t);
    e->clock_ms = t;
  }
  switch (r.type) {
    case REC_EVENT: apply_event(e, &r.u.ev); break;
    case REC_JOURNEY: engine_apply_publish(e, &r.u.jr); break;
    case REC_TICK: break;
  }
  e->applied_lsn = lsn;
  return 0;
}

/* ---- lifecycle ---- */

int engine_open(const struct engine_options *opt, struct engine **out) {
  struct engine *e = xcalloc(1, sizeof(*e));
  e->opt = *opt;
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

static void publish_applied(struct engine *e) {
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
    while (n < APPLY_BATCH && (rc = evlog_reader_next(rd, &ent)) == 1) {
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
    if (e->opt.store && (stopping || mono_ms() - e->last_checkpoint_mono_ms >=
                                         e->opt.checkpoint_interval_ms)) {
      if (n == 0 || !stopping) {
        if (engine_checkpoint_locked(e) == 0) e->last_checkpoint_mono_ms = mono_ms();
        else e->last_checkpoint_mono_ms = mono_ms(); /* logged; try again next interval */
      }
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
  e->replay_target = evlog_durable_lsn(e->opt.log);
  e->replay_done = e->applied_lsn + 1 >= e->replay_target;
  if (!e->opt.checkpoint_interval_ms) e->opt.checkpoint_interval_ms = 2000;
  pthread_create(&e->thread, NULL, engine_main, e);
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
}

int engine_checkpoint(struct engine *e) {
  if (!e->opt.store) return 0;
  return engine_checkpoint_locked(e);
}

int engine_wait_applied(struct engine *e, uint64_t lsn, int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
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
  it = 0;
  while (smap_next(&e->profiles, &it, &s)) profile_free(s->val);
  for (size_t i = 0; i < e->tl_len; i++) evcopy_unref(e->tl[i].ev);
  free(e->tl);
  engine_free_journeys(e);
  smap_release(&e->profiles);
  smap_release(&e->ids);
  timerq_release(&e->timers);
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
  pthread_rwlock_unlock(&e->lock);
}

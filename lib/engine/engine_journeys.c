/*
 * Journeys inside the engine: publishing versions, entering customers on
 * trigger events, walking steps, waits on the timer queue, and producing
 * outgoing messages. Customers in flight stay on the version they entered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

struct jversion *jversion_new(struct journey_def *def, uint32_t version) {
  struct jversion *v = xcalloc(1, sizeof(*v));
  v->def = def;
  v->version = version;
  v->at_step = xcalloc(def->n_steps, sizeof(*v->at_step));
  v->step_passed = xcalloc(def->n_steps, sizeof(*v->step_passed));
  return v;
}

static void jversion_free(struct jversion *v) {
  journey_free(v->def);
  free(v->at_step);
  free(v->step_passed);
  free(v);
}

struct jentry *engine_jentry(struct engine *e, const char *id, size_t len, int create) {
  struct jentry *j = smap_get(&e->journeys, id, len);
  if (j || !create) return j;
  j = xcalloc(1, sizeof(*j));
  j->id = xstrndup(id, len);
  *smap_upsert(&e->journeys, id, len, NULL) = j;
  return j;
}

struct jversion *jentry_version(struct jentry *j, uint32_t version) {
  for (struct jversion *v = j->latest; v; v = v->older)
    if (v->version == version) return v;
  return NULL;
}

void engine_free_journeys(struct engine *e) {
  size_t it = 0;
  const struct smap_slot *s;
  while (smap_next(&e->journeys, &it, &s)) {
    struct jentry *j = s->val;
    for (struct jversion *v = j->latest, *o; v; v = o) {
      o = v->older;
      jversion_free(v);
    }
    free(j->id);
    free(j);
  }
  smap_release(&e->journeys);
  it = 0;
  while (smap_next(&e->triggers, &it, &s)) {
    struct trig *t = s->val;
    free(t->v);
    free(t);
  }
  smap_release(&e->triggers);
}

void engine_rebuild_triggers(struct engine *e) {
  size_t it = 0;
  const struct smap_slot *s;
  while (smap_next(&e->triggers, &it, &s)) {
    struct trig *t = s->val;
    free(t->v);
    free(t);
  }
  smap_release(&e->triggers);
  smap_init(&e->triggers);
  /* Deterministic order per event name: journeys sorted by id. */
  size_t n = e->journeys.len, k = 0;
  struct jentry **all = xcalloc(n ? n : 1, sizeof(*all));
  it = 0;
  while (smap_next(&e->journeys, &it, &s)) all[k++] = s->val;
  for (size_t i = 1; i < k; i++)
    for (size_t m = i; m > 0 && strcmp(all[m - 1]->id, all[m]->id) > 0; m--) {
      struct jentry *tmp = all[m];
      all[m] = all[m - 1];
      all[m - 1] = tmp;
    }
  for (size_t i = 0; i < k; i++) {
    const char *ev = all[i]->latest->def->trigger_event;
    void **slot = smap_upsert(&e->triggers, ev, strlen(ev), NULL);
    struct trig *t = *slot;
    if (!t) t = *slot = xcalloc(1, sizeof(*t));
    t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
    t->v[t->n++] = all[i];
  }
  free(all);
}

void engine_apply_publish(struct engine *e, const struct rec_journey *jr) {
  char *id = xstrndup(jr->id.ptr, jr->id.len);
  struct journey_def *def;
  struct yerr err;
  int rc = journey_parse(jr->source.ptr, jr->source.len, id, id, &def, &err);
  if (rc) {
    /* The API validated it; a failure here means the loader changed since. */
    char msg[900];
    struct jlog_line l;
    jlog_begin(&l, JLOG_ERROR, "journey in log no longer valid; skipped");
    jlog_str(&l, "journey", id);
    jlog_str(&l, "error", yerr_format(&err, msg, sizeof(msg)));
    jlog_end(&l);
    free(id);
    return;
  }
  struct jentry *j = engine_jentry(e, id, strlen(id), 1);
  free(id);
  if (j->latest && j->latest->def->source_len == def->source_len &&
      !memcmp(j->latest->def->source, def->source, def->source_len)) {
    journey_free(def); /* the same text again: not a new version */
    return;
  }
  struct jversion *v = jversion_new(def, j->latest ? j->latest->version + 1 : 1);
  v->published_ms = jr->time_ms;
  v->lsn = e->cur_lsn;
  v->older = j->latest;
  j->latest = v;
  engine_rebuild_triggers(e);
  struct jlog_line l;
  jlog_begin(&l, JLOG_INFO, "journey published");
  jlog_str(&l, "journey", j->id);
  jlog_u64(&l, "version", v->version);
  jlog_u64(&l, "lsn", v->lsn);
  jlog_end(&l);
}

void run_arm(struct engine *e, struct run *r, int64_t due, uint64_t seq) {
  timerq_push(&e->timers, &r->timer, due, seq);
}

void run_free(struct engine *e, struct run *r) {
  timerq_remove(&e->timers, &r->timer);
  free(r->trigger);
  free(r);
}

/* Builds the webhook message for step s of run r at engine time now. */
static void emit_webhook(struct engine *e, struct run *r, const struct journey_step *s,
                         int64_t now) {
  struct profile *p = r->p;
  struct jversion *jv = r->jv;
  struct outmsg *m = xcalloc(1, sizeof(*m));
  outmsg_make_id(m->id, p->key, jv->def->id, jv->version, s->id, r->entry_no);
  m->customer = xstrdup(p->key);
  m->journey_id = xstrdup(jv->def->id);
  m->version = jv->version;
  m->step_id = xstrdup(s->id);
  m->url = xstrdup(s->url);
  m->created_ms = now;
  if (s->n_headers) {
    struct buf h;
    buf_init(&h, 0);
    for (size_t i = 0; i < s->n_headers; i++)
      buf_printf(&h, "%s: %s\n", s->headers[i].name, s->headers[i].value);
    m->headers = buf_steal(&h, NULL);
  }
  struct buf b;
  buf_init(&b, 0);
  char ts[32];
  buf_puts(&b, "{\"id\":");
  buf_json_str(&b, m->id, strlen(m->id));
  buf_printf(&b, ",\"type\":\"baton.journey.webhook\",\"time\":\"%s\",\"journey\":{\"id\":",
             clock_format_ms(now, ts));
  buf_json_str(&b, jv->def->id, strlen(jv->def->id));
  buf_printf(&b, ",\"version\":%u,\"step\":", jv->version);
  buf_json_str(&b, s->id, strlen(s->id));
  buf_printf(&b, ",\"entry\":%u},\"customer\":{\"key\":", r->entry_no);
  buf_json_str(&b, p->key, strlen(p->key));
  if (p->user_id) {
    buf_puts(&b, ",\"userId\":");
    buf_json_str(&b, p->user_id, strlen(p->user_id));
  }
  for (size_t i = 0; i < p->n_idents; i++)
    if (p->idents[i][0] == 'a') {
      buf_puts(&b, ",\"anonymousId\":");
      buf_json_str(&b, p->idents[i] + 2, strlen(p->idents[i] + 2));
      break;
    }
  char *traits = cJSON_PrintUnformatted(p->traits);
  buf_printf(&b, ",\"traits\":%s},\"event\":", traits ? traits : "{}");
  free(traits);
  buf_append(&b, r->trigger, r->trigger_len);
  buf_putc(&b, '}');
  m->body = buf_steal(&b, &m->body_len);
  profile_add_msg(p, m->id);
  /* The timeline shows what was sent, when, by which step. */
  buf_init(&b, 0);
  buf_puts(&b, "{\"type\":\"baton.message\",\"messageId\":");
  buf_json_str(&b, m->id, strlen(m->id));
  buf_puts(&b, ",\"channel\":\"webhook\",\"journey\":");
  buf_json_str(&b, jv->def->id, strlen(jv->def->id));
  buf_printf(&b, ",\"version\":%u,\"step\":", jv->version);
  buf_json_str(&b, s->id, strlen(s->id));
  buf_printf(&b, ",\"timestamp\":\"%s\"}", clock_format_ms(now, ts));
  profile_record(e, p, b.ptr, b.len, 0);
  buf_release(&b);
  profile_mark_dirty(e, p);
  e->n_messages++;
  if (e->opt.store) {
    size_t at = e->outbox_pending.len;
    uint32_t len = 0;
    buf_append(&e->outbox_pending, &len, 4);
    outmsg_encode(m, &e->outbox_pending);
    len = (uint32_t)(e->outbox_pending.len - at - 4);
    memcpy(e->outbox_pending.ptr + at, &len, 4);
  }
  if (e->opt.sink)
    e->opt.sink(e->opt.sink_arg, m);
  else
    outmsg_free(m);
}

static void run_finish(struct engine *e, struct run *r, int64_t now) {
  struct jmember *m = r->m;
  r->jv->active--;
  r->jv->completed++;
  r->jv->stats_dirty = 1;
  e->n_active_runs--;
  m->run = NULL;
  m->last_exit_ms = now;
  run_free(e, r);
}

/* Walks r from its current step until it waits or exits. Finite: every cycle
   in a published journey passes through a wait (journey.c checks). */
static void run_advance(struct engine *e, struct run *r, int64_t now) {
  const struct journey_def *def = r->jv->def;
  for (;;) {
    if (r->step < 0) {
      run_finish(e, r, now);
      return;
    }
    const struct journey_step *s = &def->steps[r->step];
    r->jv->step_passed[r->step]++;
    r->jv->stats_dirty = 1;
    switch (s->type) {
      case JSTEP_WAIT:
        r->jv->at_step[r->step]++;
        run_arm(e, r, now + s->wait_ms, (e->cur_lsn << 20) | e->seq_in_rec++);
        profile_mark_dirty(e, r->p);
        return;
      case JSTEP_WEBHOOK:
        emit_webhook(e, r, s, now);
        r->step = s->next;
        break;
      case JSTEP_EXIT:
        r->step = -1;
        break;
      case JSTEP_BRANCH:
        r->step = engine_branch(e, r, s, now) ? s->then_step : s->else_step;
        break;
    }
  }
}

void engine_fire_timers(struct engine *e, int64_t until) {
  struct timer *t;
  while ((t = timerq_pop_due(&e->timers, until))) {
    struct run *r = container_of(t, struct run, timer);
    const struct journey_step *s = &r->jv->def->steps[r->step];
    r->jv->at_step[r->step]--;
    r->step = s->next;
    profile_mark_dirty(e, r->p);
    run_advance(e, r, t->due);
  }
}

static struct jmember *member_of(struct profile *p, struct jentry *j) {
  struct jmember **pp = &p->members;
  for (; *pp; pp = &(*pp)->next)
    if ((*pp)->j == j) return *pp;
  struct jmember *m = xcalloc(1, sizeof(*m));
  m->j = j;
  *pp = m;
  return m;
}

void engine_trigger(struct engine *e, struct profile *p, const struct rec_event *ev) {
  if (ev->kind != EV_TRACK || !ev->name.len) return;
  struct trig *t = smap_get(&e->triggers, ev->name.ptr, ev->name.len);
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) {
    struct jentry *j = t->v[i];
    struct jversion *jv = j->latest;
    struct jmember *m = member_of(p, j);
    if (m->run) continue; /* already in this journey */
    if (jv->def->reentry == JREENTRY_NEVER && m->entries) continue;
    struct run *r = xcalloc(1, sizeof(*r));
    timer_init(&r->timer);
    r->p = p;
    r->m = m;
    r->jv = jv;
    r->step = 0;
    r->entry_no = ++m->entries;
    r->entered_ms = e->clock_ms;
    r->trigger = xstrndup(ev->json.ptr, ev->json.len);
    r->trigger_len = ev->json.len;
    m->run = r;
    jv->entered++;
    jv->stats_dirty = 1;
    jv->active++;
    e->n_active_runs++;
    profile_mark_dirty(e, p);
    run_advance(e, r, e->clock_ms);
  }
}

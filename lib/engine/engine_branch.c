/*
 * Branch steps: a journey condition (the CEL subset of lib/expr) evaluated
 * for one customer on the engine thread. The variables are the customer's
 * traits (profile), the event that started the run (event) and context
 * ({"aggregates": {...}, "journey": {...}}); the journey functions are
 * answered from the engine's own state on its own clock, so a replay decides
 * the same. count(), sum() and last() read the events kept in memory for the
 * profile (the newest engine.recent_events); aggregates cover everything.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "expr/expr.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

struct branch_host {
  struct engine *e;
  struct run *r;
};

static int64_t host_now(void *h) { return ((struct branch_host *)h)->e->clock_ms; }

/* Calls fn on each recent event of the profile named name within [since, until). */
static void each_recent(struct branch_host *h, const char *name, size_t nlen, int64_t since,
                        int64_t until, void (*fn)(void *, cJSON *, int64_t), void *arg) {
  struct profile *p = h->r->p;
  size_t cap = h->e->opt.recent_events;
  for (uint32_t i = 0; cap && i < p->ring_n; i++) {
    struct evcopy *c = p->ring[(p->ring_head + i) % cap];
    cJSON *ev = cJSON_ParseWithLength(c->data, c->len);
    const cJSON *ename = cJSON_GetObjectItemCaseSensitive(ev, "event");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(ev, "timestamp");
    int64_t t;
    if (cJSON_IsString(ename) && strlen(ename->valuestring) == nlen &&
        !memcmp(ename->valuestring, name, nlen) && cJSON_IsString(ts) &&
        !clock_parse_iso8601(ts->valuestring, &t) && t >= since && t < until)
      fn(arg, ev, t);
    cJSON_Delete(ev);
  }
}

static void count_one(void *arg, cJSON *ev, int64_t t) {
  (void)ev;
  (void)t;
  (*(int64_t *)arg)++;
}

static int host_count(void *h, const char *name, size_t nlen, int64_t since, int64_t until,
                      int64_t *out) {
  *out = 0;
  each_recent(h, name, nlen, since, until, count_one, out);
  return 0;
}

struct sum_arg {
  const char *prop;
  size_t plen;
  double sum;
};

static const cJSON *prop_of(cJSON *ev, const char *prop, size_t plen) {
  char key[128];
  if (plen >= sizeof(key)) return NULL;
  memcpy(key, prop, plen);
  key[plen] = '\0';
  return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "properties"), key);
}

static void sum_one(void *arg, cJSON *ev, int64_t t) {
  struct sum_arg *s = arg;
  (void)t;
  const cJSON *v = prop_of(ev, s->prop, s->plen);
  if (cJSON_IsNumber(v)) s->sum += v->valuedouble;
}

static int host_sum(void *h, const char *name, size_t nlen, const char *prop, size_t plen,
                    int64_t since, int64_t until, double *out) {
  struct sum_arg s = {prop, plen, 0};
  each_recent(h, name, nlen, since, until, sum_one, &s);
  *out = s.sum;
  return 0;
}

struct last_arg {
  const char *prop;
  size_t plen;
  int64_t best;
  char *json; /* the property's value, as JSON text */
};

static void last_one(void *arg, cJSON *ev, int64_t t) {
  struct last_arg *l = arg;
  const cJSON *v = prop_of(ev, l->prop, l->plen);
  if (!v || t < l->best) return;
  free(l->json);
  l->json = cJSON_PrintUnformatted(v);
  l->best = t;
}

static int host_last(void *h, const char *name, size_t nlen, const char *prop, size_t plen,
                     struct expr_arena *a, struct expr_value *out) {
  struct last_arg l = {prop, plen, INT64_MIN, NULL};
  each_recent(h, name, nlen, INT64_MIN, INT64_MAX, last_one, &l);
  if (!l.json) return BATON_ENOENT;
  int rc = baton_expr_value_parse_json(a, l.json, strlen(l.json), out, NULL);
  free(l.json);
  return rc;
}

static int host_in_journey(void *hv, const char *id, size_t len, bool *out) {
  struct branch_host *h = hv;
  *out = false;
  for (struct jmember *m = h->r->p->members; m; m = m->next)
    if (m->run && strlen(m->j->id) == len && !memcmp(m->j->id, id, len)) *out = true;
  return 0;
}

static int host_open_cases(void *hv, const char *type, size_t len, int64_t *out) {
  struct branch_host *h = hv;
  *out = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, h->r->p->cases) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
    if (cJSON_IsString(t) && strlen(t->valuestring) == len && !memcmp(t->valuestring, type, len) &&
        !(cJSON_IsString(st) && !strcmp(st->valuestring, "closed")))
      (*out)++;
  }
  return 0;
}

static const char *host_zone(void *hv) {
  struct branch_host *h = hv;
  const cJSON *tz = cJSON_GetObjectItemCaseSensitive(h->r->p->traits, "timezone");
  return cJSON_IsString(tz) ? tz->valuestring : NULL;
}

static const struct expr_host engine_host = {
    .now_ms = host_now,
    .count_events = host_count,
    .sum_events = host_sum,
    .last_value = host_last,
    .in_segment = NULL, /* segments do not exist yet: "not available" */
    .in_journey = host_in_journey,
    .open_cases = host_open_cases,
    .time_zone = host_zone,
};

int engine_branch(struct engine *e, struct run *r, const struct journey_step *s, int64_t now) {
  if (!e->expr) {
    e->expr = baton_expr_ctx_new();
    e->expr_vars = baton_expr_arena_new(0);
  }
  struct expr_arena *a = e->expr_vars;
  baton_expr_arena_reset(a);
  struct expr_value vars[3];
  struct buf ctx;
  buf_init(&ctx, 0);
  buf_puts(&ctx, "{\"aggregates\":{");
  for (size_t i = 0; i < e->opt.n_aggregates; i++) {
    static const struct agg_state empty;
    const struct agg_def *d = &e->opt.aggregates[i];
    if (i) buf_putc(&ctx, ',');
    buf_json_str(&ctx, d->name, strlen(d->name));
    buf_putc(&ctx, ':');
    agg_value_json(d, r->p->aggs ? &r->p->aggs[i] : &empty, now, &ctx);
  }
  buf_puts(&ctx, "},\"journey\":{\"id\":");
  buf_json_str(&ctx, r->jv->def->id, strlen(r->jv->def->id));
  buf_printf(&ctx, ",\"version\":%u,\"entry\":%u}}", r->jv->version, r->entry_no);
  int rc = baton_expr_value_from_json(a, r->p->traits, &vars[BATON_EXPR_VAR_PROFILE]);
  if (!rc) rc = baton_expr_value_parse_json(a, r->trigger, r->trigger_len, &vars[BATON_EXPR_VAR_EVENT], NULL);
  if (!rc) rc = baton_expr_value_parse_json(a, ctx.ptr, ctx.len, &vars[BATON_EXPR_VAR_CONTEXT], NULL);
  buf_release(&ctx);
  struct branch_host h = {e, r};
  struct expr_value err;
  int result = rc ? BATON_EINVAL
                  : baton_expr_eval_bool(s->cond, e->expr, vars, &engine_host, &h, &err);
  /* The decision goes on the customer's timeline, with the reason when it failed. */
  struct buf b;
  buf_init(&b, 0);
  char ts[32];
  buf_puts(&b, "{\"type\":\"baton.branch\",\"journey\":");
  buf_json_str(&b, r->jv->def->id, strlen(r->jv->def->id));
  buf_printf(&b, ",\"version\":%u,\"step\":", r->jv->version);
  buf_json_str(&b, s->id, strlen(s->id));
  buf_printf(&b, ",\"result\":%s", result == 1 ? "true" : "false");
  if (result < 0) {
    const char *msg = rc ? "the customer's data could not be bound to the condition"
                         : baton_expr_error_message(err.v.err);
    buf_puts(&b, ",\"error\":");
    buf_json_str(&b, msg, strlen(msg));
  }
  buf_printf(&b, ",\"timestamp\":\"%s\"}", clock_format_ms(now, ts));
  profile_record(e, r->p, b.ptr, b.len, 0);
  buf_release(&b);
  return result == 1;
}

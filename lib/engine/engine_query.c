/*
 * Read-only JSON views of engine state for the admin API. Each takes the
 * engine's read lock for as short as it can: message outcomes come from the
 * delivery ledger in the store, read after the lock is released.
 */
#include <stdlib.h>
#include <string.h>

#include "channels/delivery.h"
#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/common.h"

static void json_key(struct buf *b, const char *k) {
  buf_json_str(b, k, strlen(k));
  buf_putc(b, ':');
}

static void json_time(struct buf *b, const char *k, int64_t ms) {
  char ts[32];
  json_key(b, k);
  buf_printf(b, "\"%s\"", clock_format_ms(ms, ts));
}

int engine_profile_json(struct engine *e, const char *by, const char *id, struct buf *out) {
  char (*msgs)[OUTMSG_ID_LEN + 1] = NULL;
  uint32_t n_msgs = 0;
  pthread_rwlock_rdlock(&e->lock);
  struct profile *p = engine_find_profile_by(e, by, id, strlen(id));
  if (!p) {
    pthread_rwlock_unlock(&e->lock);
    return BATON_ENOENT;
  }
  buf_putc(out, '{');
  json_key(out, "key");
  buf_json_str(out, p->key, strlen(p->key));
  buf_putc(out, ',');
  json_key(out, "userId");
  if (p->user_id)
    buf_json_str(out, p->user_id, strlen(p->user_id));
  else
    buf_puts(out, "null");
  buf_puts(out, ",\"anonymousIds\":[");
  int first_id = 1;
  for (size_t i = 0; i < p->n_idents; i++) {
    if (p->idents[i][0] != 'a') continue;
    if (!first_id) buf_putc(out, ',');
    first_id = 0;
    buf_json_str(out, p->idents[i] + 2, strlen(p->idents[i] + 2));
  }
  /* Every identity: {"type": "userId"|"anonymousId"|<trait>, "value": ...} */
  buf_puts(out, "],\"identities\":[");
  for (size_t i = 0; i < p->n_idents; i++) {
    const char *ident = p->idents[i], *type, *val;
    char tbuf[80];
    if (ident[0] == 'u' || ident[0] == 'a') {
      type = ident[0] == 'u' ? "userId" : "anonymousId";
      val = ident + 2;
    } else {
      const char *colon = strchr(ident + 2, ':');
      size_t tn = colon ? MIN((size_t)(colon - ident - 2), sizeof(tbuf) - 1) : 0;
      memcpy(tbuf, ident + 2, tn);
      tbuf[tn] = '\0';
      type = tbuf;
      val = colon ? colon + 1 : "";
    }
    if (i) buf_putc(out, ',');
    buf_puts(out, "{\"type\":");
    buf_json_str(out, type, strlen(type));
    buf_puts(out, ",\"value\":");
    buf_json_str(out, val, strlen(val));
    buf_putc(out, '}');
  }
  buf_puts(out, "]");
  if (p->n_merged) {
    buf_puts(out, ",\"merged\":[");
    for (size_t i = 0; i < p->n_merged; i++) {
      if (i) buf_putc(out, ',');
      buf_json_str(out, p->merged_keys[i], strlen(p->merged_keys[i]));
    }
    buf_putc(out, ']');
  }
  char *traits = cJSON_PrintUnformatted(p->traits);
  buf_printf(out, ",\"traits\":%s,", traits ? traits : "{}");
  free(traits);
  char *cases = p->cases ? cJSON_PrintUnformatted(p->cases) : NULL;
  buf_printf(out, "\"cases\":%s,", cases ? cases : "[]");
  free(cases);
  buf_puts(out, "\"aggregates\":{");
  for (size_t i = 0; i < e->opt.n_aggregates; i++) {
    const struct agg_def *d = &e->opt.aggregates[i];
    static const struct agg_state empty;
    if (i) buf_putc(out, ',');
    buf_json_str(out, d->name, strlen(d->name));
    buf_putc(out, ':');
    agg_value_json(d, p->aggs ? &p->aggs[i] : &empty, e->clock_ms, out);
  }
  buf_puts(out, "},");
  json_time(out, "firstSeen", p->first_seen);
  buf_putc(out, ',');
  json_time(out, "lastSeen", p->last_seen);
  buf_printf(out, ",\"eventCount\":%llu,\"events\":[", (unsigned long long)p->n_events);
  size_t cap = e->opt.recent_events;
  for (uint32_t i = 0; i < p->ring_n; i++) { /* newest first */
    struct evcopy *c = p->ring[(p->ring_head + p->ring_n - 1 - i) % cap];
    if (i) buf_putc(out, ',');
    buf_append(out, c->data, c->len);
  }
  buf_puts(out, "],\"journeys\":[");
  int first = 1;
  for (struct jmember *m = p->members; m; m = m->next) {
    if (!first) buf_putc(out, ',');
    first = 0;
    buf_puts(out, "{\"id\":");
    buf_json_str(out, m->j->id, strlen(m->j->id));
    buf_printf(out, ",\"entries\":%u", m->entries);
    if (m->last_exit_ms) {
      buf_putc(out, ',');
      json_time(out, "lastExit", m->last_exit_ms);
    }
    if (m->run) {
      struct run *r = m->run;
      const struct journey_step *s = &r->jv->def->steps[r->step];
      buf_printf(out, ",\"active\":{\"version\":%u,\"step\":", r->jv->version);
      buf_json_str(out, s->id, strlen(s->id));
      buf_printf(out, ",\"entry\":%u,", r->entry_no);
      json_time(out, "entered", r->entered_ms);
      if (timer_armed(&r->timer)) {
        buf_putc(out, ',');
        json_time(out, "waitingUntil", r->timer.due);
      }
      buf_putc(out, '}');
    }
    buf_putc(out, '}');
  }
  buf_puts(out, "]");
  if (p->msg_n) {
    msgs = xmalloc(p->msg_n * sizeof(*msgs));
    for (uint32_t i = 0; i < p->msg_n; i++) /* newest first */
      memcpy(msgs[i], p->msgs[(p->msg_head + p->msg_n - 1 - i) % PROFILE_MAX_MSGS],
             OUTMSG_ID_LEN + 1);
    n_msgs = p->msg_n;
  }
  pthread_rwlock_unlock(&e->lock);

  buf_puts(out, ",\"messages\":[");
  MDB_txn *txn = e->opt.store && n_msgs ? store_begin(e->opt.store, 1) : NULL;
  for (uint32_t i = 0; i < n_msgs; i++) {
    if (i) buf_putc(out, ',');
    size_t before = out->len;
    if (!txn || delivery_record_json(e->opt.store, txn, msgs[i], out)) {
      out->len = before;
      buf_printf(out, "{\"id\":\"%s\",\"state\":\"queued\"}", msgs[i]);
    }
  }
  if (txn) mdb_txn_abort(txn);
  free(msgs);
  buf_puts(out, "]}");
  return 0;
}

static void journey_summary(struct buf *out, const struct jentry *j, int with_source) {
  const struct jversion *v = j->latest;
  const struct journey_def *d = v->def;
  buf_puts(out, "{\"id\":");
  buf_json_str(out, j->id, strlen(j->id));
  buf_puts(out, ",\"name\":");
  buf_json_str(out, d->name, strlen(d->name));
  buf_printf(out, ",\"version\":%u,", v->version);
  json_time(out, "published", v->published_ms);
  buf_puts(out, ",\"trigger\":{\"event\":");
  buf_json_str(out, d->trigger_event, strlen(d->trigger_event));
  buf_printf(out, "},\"reentry\":\"%s\",\"steps\":[",
             d->reentry == JREENTRY_NEVER ? "never" : "after_exit");
  for (size_t i = 0; i < d->n_steps; i++) {
    if (i) buf_putc(out, ',');
    buf_puts(out, "{\"id\":");
    buf_json_str(out, d->steps[i].id, strlen(d->steps[i].id));
    buf_printf(out, ",\"type\":\"%s\"}", journey_step_type_name(d->steps[i].type));
  }
  buf_puts(out, "],\"versions\":[");
  for (const struct jversion *o = v; o; o = o->older) {
    if (o != v) buf_putc(out, ',');
    buf_printf(out,
               "{\"version\":%u,\"entered\":%llu,\"active\":%llu,\"completed\":%llu,\"steps\":{",
               o->version, (unsigned long long)o->entered, (unsigned long long)o->active,
               (unsigned long long)o->completed);
    for (size_t i = 0; i < o->def->n_steps; i++) {
      if (i) buf_putc(out, ',');
      buf_json_str(out, o->def->steps[i].id, strlen(o->def->steps[i].id));
      buf_printf(out, ":{\"waiting\":%llu,\"passed\":%llu}",
                 (unsigned long long)o->at_step[i], (unsigned long long)o->step_passed[i]);
    }
    buf_puts(out, "}}");
  }
  buf_putc(out, ']');
  if (with_source) {
    buf_puts(out, ",\"source\":");
    buf_json_str(out, d->source, d->source_len);
  }
  buf_putc(out, '}');
}

static int cmp_jentry(const void *a, const void *b) {
  return strcmp((*(struct jentry *const *)a)->id, (*(struct jentry *const *)b)->id);
}

int engine_journeys_json(struct engine *e, struct buf *out) {
  pthread_rwlock_rdlock(&e->lock);
  size_t n = 0, it = 0;
  const struct smap_slot *s;
  struct jentry **all = xcalloc(e->journeys.len + 1, sizeof(*all));
  while (smap_next(&e->journeys, &it, &s))
    if (((struct jentry *)s->val)->latest) all[n++] = s->val;
  qsort(all, n, sizeof(*all), cmp_jentry);
  buf_putc(out, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) buf_putc(out, ',');
    journey_summary(out, all[i], 0);
  }
  buf_putc(out, ']');
  free(all);
  pthread_rwlock_unlock(&e->lock);
  return 0;
}

int engine_journey_json(struct engine *e, const char *id, struct buf *out) {
  pthread_rwlock_rdlock(&e->lock);
  struct jentry *j = smap_get(&e->journeys, id, strlen(id));
  if (!j || !j->latest) {
    pthread_rwlock_unlock(&e->lock);
    return BATON_ENOENT;
  }
  journey_summary(out, j, 1);
  pthread_rwlock_unlock(&e->lock);
  return 0;
}

uint32_t engine_journey_version(struct engine *e, const char *id) {
  pthread_rwlock_rdlock(&e->lock);
  struct jentry *j = smap_get(&e->journeys, id, strlen(id));
  uint32_t v = j && j->latest ? j->latest->version : 0;
  pthread_rwlock_unlock(&e->lock);
  return v;
}

/* A timeline entry copied out for a page. */
struct tl_item {
  uint64_t ord;
  char *json;
  size_t len;
};

static int cmp_item_desc(const void *a, const void *b) {
  uint64_t x = ((const struct tl_item *)a)->ord, y = ((const struct tl_item *)b)->ord;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Reads up to limit stored entries older than before from a chain, newest first, from
   its newest stored entry. */
static void stored_before(MDB_txn *txn, const struct store *st, uint64_t from, uint64_t before,
                          size_t limit, struct tl_item *out, size_t *n) {
  uint64_t prev, chain;
  MDB_val v;
  size_t got = 0;
  for (uint64_t ord = from; ord && got < limit && !tl_get(txn, st, ord, &prev, &chain, &v);
       ord = prev) {
    if (ord >= before) continue;
    out[*n].ord = ord;
    out[*n].json = xstrndup(v.mv_data, v.mv_size);
    out[*n].len = v.mv_size;
    (*n)++;
    got++;
  }
}

int engine_profile_events_json(struct engine *e, const char *by, const char *id, size_t limit,
                               uint64_t before, struct buf *out) {
  if (limit < 1) limit = 1;
  if (!before) before = UINT64_MAX;
  pthread_rwlock_rdlock(&e->lock);
  struct profile *p = engine_find_profile_by(e, by, id, strlen(id));
  if (!p) {
    pthread_rwlock_unlock(&e->lock);
    return BATON_ENOENT;
  }
  /* The chains that make up this profile's timeline (its own and those of profiles merged
     into it), each from its newest stored entry: the entries still queued are taken from the
     engine's queue, and their links lead to the stored ones. */
  size_t n_chains = 1 + p->n_merged;
  struct tl_chain *chains = xcalloc(n_chains, sizeof(*chains));
  chains[0] = p->tl;
  for (size_t i = 0; i < p->n_merged; i++) chains[1 + i] = p->merged_tl[i];
  size_t n_links;
  struct tl_link *links = profile_queued_links(p, &n_links);
  for (size_t i = 0; i < n_chains; i++) {
    uint64_t prev;
    while (chains[i].head && (prev = tl_link_prev(links, n_links, chains[i].head)) != UINT64_MAX &&
           prev < chains[i].head)
      chains[i].head = prev;
  }
  free(links);
  size_t cap = limit * (n_chains + 1), n = 0;
  struct tl_item *items = xcalloc(cap, sizeof(*items));
  /* The unstored queue is in order of recording except after merges, so
     take the newest `limit` of it by keeping a min-ordered window. */
  for (struct evcopy *c = p->unstored; c; c = c->next_unstored) {
    if (c->ord >= before) continue;
    if (n < limit) {
      items[n].ord = c->ord;
      items[n].json = xstrndup(c->data, c->len);
      items[n].len = c->len;
      n++;
      continue;
    }
    size_t min = 0; /* replace the oldest taken if this one is newer */
    for (size_t i = 1; i < n; i++)
      if (items[i].ord < items[min].ord) min = i;
    if (items[min].ord > c->ord) continue;
    free(items[min].json);
    items[min].ord = c->ord;
    items[min].json = xstrndup(c->data, c->len);
    items[min].len = c->len;
  }
  pthread_rwlock_unlock(&e->lock);
  if (e->opt.store) {
    MDB_txn *txn = store_begin(e->opt.store, 1);
    /* The cursor is the last entry of the page before: if it is stored on one of these
       chains, that chain goes on from the entry before it instead of being walked from its
       head (a cursor from anywhere else is only a bound). */
    uint64_t prev, chain;
    MDB_val v;
    if (before != UINT64_MAX && !tl_get(txn, e->opt.store, before, &prev, &chain, &v))
      for (size_t i = 0; i < n_chains; i++)
        if (chains[i].id == chain && chains[i].head >= before) chains[i].head = prev;
    for (size_t i = 0; i < n_chains; i++)
      stored_before(txn, e->opt.store, chains[i].head, before, limit, items, &n);
    mdb_txn_abort(txn);
  }
  qsort(items, n, sizeof(*items), cmp_item_desc);
  buf_puts(out, "{\"events\":[");
  size_t shown = 0;
  uint64_t last = 0;
  for (size_t i = 0; i < n; i++) {
    /* An entry checkpointed while we read may appear both queued and stored. */
    if (shown == limit || (i && items[i].ord == items[i - 1].ord)) continue;
    if (shown) buf_putc(out, ',');
    buf_append(out, items[i].json, items[i].len);
    last = items[i].ord;
    shown++;
  }
  buf_putc(out, ']');
  /* More may exist if the page is full: the cursor is the last entry's order. */
  if (shown == limit) buf_printf(out, ",\"next\":\"%llu\"", (unsigned long long)last);
  buf_putc(out, '}');
  for (size_t i = 0; i < n; i++) free(items[i].json);
  free(items);
  free(chains);
  return 0;
}

int engine_profile_exists(struct engine *e, const char *by, const char *id, const char *case_id) {
  pthread_rwlock_rdlock(&e->lock);
  struct profile *p = engine_find_profile_by(e, by, id, strlen(id));
  int rc = p ? 0 : BATON_ENOENT;
  if (p && case_id) {
    rc = BATON_ENOENT;
    const cJSON *c;
    cJSON_ArrayForEach(c, p->cases) {
      const cJSON *cid = cJSON_GetObjectItemCaseSensitive(c, "id");
      if (cJSON_IsString(cid) && !strcmp(cid->valuestring, case_id)) rc = 0;
    }
  }
  pthread_rwlock_unlock(&e->lock);
  return rc;
}

int engine_profile_export_json(struct engine *e, const char *by, const char *id, struct buf *out) {
  struct buf prof;
  buf_init(&prof, 0);
  int rc = engine_profile_json(e, by, id, &prof);
  if (rc) {
    buf_release(&prof);
    return rc;
  }
  char ts[32];
  buf_printf(out, "{\"exportedAt\":\"%s\",\"profile\":", clock_format_ms(clock_now_ms(), ts));
  buf_append(out, prof.ptr, prof.len);
  buf_release(&prof);
  /* The whole timeline, page by page, and the ids of the messages on it. */
  buf_puts(out, ",\"timeline\":[");
  struct smap msg_ids;
  smap_init(&msg_ids);
  uint64_t cursor = 0;
  size_t n = 0;
  for (;;) {
    struct buf page;
    buf_init(&page, 0);
    if (engine_profile_events_json(e, by, id, 1000, cursor, &page)) {
      buf_release(&page);
      break;
    }
    cJSON *doc = cJSON_ParseWithLength(page.ptr, page.len);
    buf_release(&page);
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(doc, "events")) {
      char *text = cJSON_PrintUnformatted(ev);
      if (n++) buf_putc(out, ',');
      buf_puts(out, text ? text : "null");
      free(text);
      const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
      const cJSON *mid = cJSON_GetObjectItemCaseSensitive(ev, "messageId");
      if (cJSON_IsString(type) && !strcmp(type->valuestring, "baton.message") &&
          cJSON_IsString(mid))
        smap_upsert(&msg_ids, mid->valuestring, strlen(mid->valuestring), NULL);
    }
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(doc, "next");
    cursor = cJSON_IsString(next) ? strtoull(next->valuestring, NULL, 10) : 0;
    cJSON_Delete(doc);
    if (!cursor) break;
  }
  buf_puts(out, "],\"messages\":[");
  size_t it = 0, k = 0;
  const struct smap_slot *s;
  MDB_txn *txn = e->opt.store && msg_ids.len ? store_begin(e->opt.store, 1) : NULL;
  while (smap_next(&msg_ids, &it, &s)) {
    if (k++) buf_putc(out, ',');
    size_t before = out->len;
    if (!txn || delivery_record_json(e->opt.store, txn, smap_slot_key(s), out)) {
      out->len = before;
      buf_puts(out, "{\"id\":");
      buf_json_str(out, smap_slot_key(s), s->key_len);
      buf_puts(out, ",\"state\":\"queued\"}");
    }
  }
  if (txn) mdb_txn_abort(txn);
  smap_release(&msg_ids);
  buf_puts(out, "]}");
  return 0;
}

/*
 * Customer profiles and identity resolution: which profile an event belongs
 * to, and merging two profiles when an event shows they are one customer.
 *
 * Identities are index keys: "u:<userId>", "a:<anonymousId>" and
 * "x:<trait>:<value>" for external ids (email, phone and configured traits,
 * taken from identify traits; emails are trimmed and lower-cased). The rules,
 * documented in docs/identity.md:
 *
 *  - An event with a userId belongs to that user's profile. An anonymous
 *    profile seen for the first time with a userId becomes that user's
 *    profile; if the user already has one, the anonymous profile (without a
 *    userId of its own) is merged into it.
 *  - An identify whose external id belongs to another profile merges the two,
 *    unless both have different userIds (refused and recorded: two known
 *    customers sharing an email is a decision for people, not for Baton).
 *  - alias merges the profile of previousId into the profile of userId, even
 *    when both have userIds (it is an explicit instruction).
 *
 * A merge keeps the surviving profile's trait values and takes the traits it
 * lacks from the other; events, identities, journey memberships and message
 * history are combined; the merge is recorded on the survivor's timeline.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

#define KEY_MAX 1100

static size_t make_key(char *out, const char *prefix, const char *id, size_t len) {
  size_t pn = strlen(prefix);
  size_t k = MIN(len, (size_t)KEY_MAX - pn - 1);
  memcpy(out, prefix, pn);
  memcpy(out + pn, id, k);
  out[pn + k] = '\0';
  return pn + k;
}

struct profile *profile_alloc(struct engine *e) {
  struct profile *p = xcalloc(1, sizeof(*p) + e->opt.recent_events * sizeof(p->ring_in[0]));
  p->ring = p->ring_in;
  return p;
}

struct profile *profile_new(struct engine *e, const char *key, size_t len) {
  struct profile *p = profile_alloc(e);
  p->key = xstrndup(key, len);
  p->traits = cJSON_CreateObject();
  *smap_upsert(&e->profiles, p->key, len, NULL) = p;
  profile_add_ident(e, p, key, len);
  return p;
}

void profile_free(struct profile *p) {
  free(p->key);
  for (size_t i = 0; i < p->n_idents; i++) free(p->idents[i]);
  free(p->idents);
  for (size_t i = 0; i < p->n_merged; i++) free(p->merged_keys[i]);
  free(p->merged_keys);
  free(p->merged_tl);
  cJSON_Delete(p->traits);
  cJSON_Delete(p->cases);
  for (size_t i = 0; p->aggs && i < p->n_aggs; i++) agg_state_clear(&p->aggs[i]);
  free(p->aggs);
  for (uint32_t i = 0; i < p->ring_n; i++) evcopy_unref(p->ring[i]);
  free(p->msgs);
  for (struct evcopy *c = p->unstored, *n; c; c = n) {
    n = c->next_unstored;
    evcopy_unref(c);
  }
  for (struct jmember *m = p->members, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  free(p);
}

static void set_user_id(struct profile *p) {
  p->user_id = NULL;
  for (size_t i = 0; i < p->n_idents && !p->user_id; i++)
    if (p->idents[i][0] == 'u') p->user_id = p->idents[i] + 2;
}

int profile_add_ident(struct engine *e, struct profile *p, const char *key, size_t len) {
  for (size_t i = 0; i < p->n_idents; i++)
    if (strlen(p->idents[i]) == len && !memcmp(p->idents[i], key, len)) return 0;
  if (p->n_idents >= PROFILE_MAX_IDENTS) return 0;
  p->idents = xrealloc(p->idents, (p->n_idents + 1) * sizeof(*p->idents));
  p->idents[p->n_idents++] = xstrndup(key, len);
  *smap_upsert(&e->ids, key, len, NULL) = p;
  set_user_id(p);
  profile_mark_dirty(e, p);
  return 1;
}

void profile_index(struct engine *e, struct profile *p) {
  for (size_t i = 0; i < p->n_idents; i++)
    *smap_upsert(&e->ids, p->idents[i], strlen(p->idents[i]), NULL) = p;
  set_user_id(p);
}

struct profile *engine_find_profile(struct engine *e, const char *id, size_t len) {
  char key[KEY_MAX];
  if (len > 1024) return NULL;
  size_t n = make_key(key, "u:", id, len);
  struct profile *p = smap_get(&e->ids, key, n);
  if (!p) {
    n = make_key(key, "a:", id, len);
    p = smap_get(&e->ids, key, n);
  }
  return p;
}

/* Normalises an external id value into out; returns its length or 0 if unusable. */
static size_t norm_external(const char *trait, const cJSON *v, char *out, size_t cap) {
  char tmp[512];
  const char *s;
  if (cJSON_IsString(v)) {
    s = v->valuestring;
  } else if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
    snprintf(tmp, sizeof(tmp), "%lld", (long long)v->valuedouble);
    s = tmp;
  } else {
    return 0;
  }
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (n == 0 || n >= cap || n > 512 || memchr(s, '\0', n)) return 0;
  int lower = !strcmp(trait, "email");
  for (size_t i = 0; i < n; i++) out[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
  out[n] = '\0';
  return n;
}

struct profile *engine_find_profile_by(struct engine *e, const char *by, const char *id,
                                       size_t len) {
  char key[KEY_MAX];
  size_t n;
  if (len > 1024) return NULL;
  if (!by || !*by) return engine_find_profile(e, id, len);
  if (!strcmp(by, "userId")) {
    n = make_key(key, "u:", id, len);
  } else if (!strcmp(by, "anonymousId")) {
    n = make_key(key, "a:", id, len);
  } else {
    char val[600], prefix[96];
    cJSON *s = cJSON_CreateStringReference(id);
    size_t vn = norm_external(by, s, val, sizeof(val));
    cJSON_Delete(s);
    if (!vn || strlen(by) > 64) return NULL;
    snprintf(prefix, sizeof(prefix), "x:%s:", by);
    n = make_key(key, prefix, val, vn);
  }
  return smap_get(&e->ids, key, n);
}

static void record_decision(struct engine *e, struct profile *p, const char *type,
                            const char *other, const char *reason) {
  struct buf b;
  buf_init(&b, 0);
  char ts[32];
  buf_printf(&b, "{\"type\":\"%s\",\"profile\":", type);
  buf_json_str(&b, p->key, strlen(p->key));
  buf_puts(&b, ",\"other\":");
  buf_json_str(&b, other, strlen(other));
  buf_puts(&b, ",\"reason\":");
  buf_json_str(&b, reason, strlen(reason));
  buf_printf(&b, ",\"timestamp\":\"%s\"}", clock_format_ms(e->clock_ms, ts));
  profile_record(e, p, b.ptr, b.len, 1);
  buf_release(&b);
}

/* Moves from's ring events into into's, keeping the newest by LSN. */
static void merge_rings(struct engine *e, struct profile *into, struct profile *from) {
  size_t cap = e->opt.recent_events;
  if (!cap) return;
  size_t n = into->ring_n + from->ring_n, a = 0, b = 0, k = 0;
  struct evcopy **all = xcalloc(n ? n : 1, sizeof(*all));
  while (a < into->ring_n || b < from->ring_n) {
    struct evcopy *x = a < into->ring_n ? into->ring[(into->ring_head + a) % cap] : NULL;
    struct evcopy *y = b < from->ring_n ? from->ring[(from->ring_head + b) % cap] : NULL;
    if (x && (!y || x->ord <= y->ord)) {
      all[k++] = x;
      a++;
    } else {
      all[k++] = y;
      b++;
    }
  }
  size_t skip = n > cap ? n - cap : 0;
  for (size_t i = 0; i < skip; i++) evcopy_unref(all[i]);
  into->ring_head = 0;
  into->ring_n = (uint32_t)(n - skip);
  for (size_t i = skip; i < n; i++) into->ring[i - skip] = all[i];
  from->ring_n = 0;
  free(all);
}

static struct jmember *find_member(struct profile *p, struct jentry *j) {
  for (struct jmember *m = p->members; m; m = m->next)
    if (m->j == j) return m;
  return NULL;
}

static void merge_members(struct engine *e, struct profile *into, struct profile *from) {
  struct jmember *m = from->members;
  from->members = NULL;
  while (m) {
    struct jmember *next = m->next;
    struct jmember *mi = find_member(into, m->j);
    if (!mi) { /* into never was in this journey: the membership moves as it is */
      m->next = into->members;
      into->members = m;
      if (m->run) m->run->p = into;
    } else {
      mi->entries += m->entries;
      if (m->last_exit_ms > mi->last_exit_ms) mi->last_exit_ms = m->last_exit_ms;
      if (m->run && !mi->run) {
        /* Renumber the entry so message ids stay unique under the survivor's key. */
        struct run *r = m->run;
        r->p = into;
        r->m = mi;
        r->entry_no = mi->entries;
        mi->run = r;
      } else if (m->run) {
        /* Both were in it: the survivor's run goes on, the other ends here. */
        struct run *r = m->run;
        if (timer_armed(&r->timer)) r->jv->at_step[r->step]--;
        r->jv->active--;
        r->jv->completed++;
        r->jv->stats_dirty = 1;
        e->n_active_runs--;
        run_free(e, r);
      }
      free(m);
    }
    m = next;
  }
}

/* Merges from into into. from is left empty, marked merged, and freed after
   the next checkpoint deletes its stored row. */
static void merge(struct engine *e, struct profile *into, struct profile *from, const char *reason) {
  if (into == from) return;
  for (size_t i = 0; i < from->n_idents; i++) {
    char *id = from->idents[i];
    if (!profile_add_ident(e, into, id, strlen(id))) /* into had it, or is full */
      *smap_upsert(&e->ids, id, strlen(id), NULL) = into;
  }
  /* Traits: the survivor's values win; it takes only what it lacks. */
  for (cJSON *t = from->traits->child, *next; t; t = next) {
    next = t->next;
    if (cJSON_GetObjectItemCaseSensitive(into->traits, t->string)) continue;
    cJSON_DetachItemViaPointer(from->traits, t);
    cJSON_AddItemToObject(into->traits, t->string, t);
  }
  if (from->aggs) {
    if (!into->aggs) {
      into->aggs = from->aggs; /* into had none: take them whole */
      into->n_aggs = from->n_aggs;
      from->aggs = NULL;
    } else {
      for (size_t i = 0; i < e->opt.n_aggregates; i++)
        agg_merge(&e->opt.aggregates[i], &into->aggs[i], &from->aggs[i]);
    }
  }
  if (from->cases) {
    if (!into->cases) into->cases = cJSON_CreateArray();
    while (from->cases->child && cJSON_GetArraySize(into->cases) < PROFILE_MAX_CASES)
      cJSON_AddItemToArray(into->cases, cJSON_DetachItemViaPointer(from->cases, from->cases->child));
  }
  if (from->first_seen && (!into->first_seen || from->first_seen < into->first_seen))
    into->first_seen = from->first_seen;
  if (from->last_seen > into->last_seen) into->last_seen = from->last_seen;
  into->n_events += from->n_events;
  merge_rings(e, into, from);
  /* Entries not yet stored: now the survivor's, stored under its key. */
  if (from->unstored) {
    if (into->unstored_last) into->unstored_last->next_unstored = from->unstored;
    else into->unstored = from->unstored;
    into->unstored_last = from->unstored_last;
    into->n_unstored += from->n_unstored;
    from->unstored = from->unstored_last = NULL;
    from->n_unstored = 0;
  }
  merge_members(e, into, from);
  for (uint32_t i = 0; i < from->msg_n; i++)
    profile_add_msg(into, from->msgs[(from->msg_head + i) % PROFILE_MAX_MSGS]);
  /* Its timeline chain, and those merged into it, stay as they are: the survivor keeps
     their heads (their queued entries are stored by the survivor's checkpoints). */
  size_t nm = into->n_merged + from->n_merged + 1;
  into->merged_keys = xrealloc(into->merged_keys, nm * sizeof(char *));
  into->merged_tl = xrealloc(into->merged_tl, nm * sizeof(*into->merged_tl));
  into->merged_keys[into->n_merged] = xstrdup(from->key);
  into->merged_tl[into->n_merged++] = from->tl;
  for (size_t i = 0; i < from->n_merged; i++) {
    into->merged_keys[into->n_merged] = from->merged_keys[i];
    into->merged_tl[into->n_merged++] = from->merged_tl[i];
  }
  from->n_merged = 0;
  smap_del(&e->profiles, from->key, strlen(from->key));
  from->merged_into = into;
  profile_mark_dirty(e, from); /* the checkpoint deletes its row, then frees it */
  profile_mark_dirty(e, into);
  e->n_merges++;
  record_decision(e, into, "baton.merge", from->key, reason);
  struct jlog_line l;
  jlog_begin(&l, JLOG_DEBUG, "profiles merged");
  jlog_str(&l, "into", into->key);
  jlog_str(&l, "merged", from->key);
  jlog_str(&l, "reason", reason);
  jlog_end(&l);
}

/* At most this many cache lines of a profile are prefetched: a long ring is left to miss. */
#define PEEK_MAX_LINES 10

struct profile *resolve_peek(struct engine *e, const struct rec_event *ev) {
  char key[KEY_MAX];
  size_t n = ev->user_id.len ? make_key(key, "u:", ev->user_id.ptr, ev->user_id.len)
                             : make_key(key, "a:", ev->anonymous_id.ptr, ev->anonymous_id.len);
  struct profile *p = smap_get(&e->ids, key, n);
  if (p) { /* the profile's own allocation, its ring included (6 or 7 lines with 20 recent events) */
    const char *at = (const char *)((uintptr_t)p & ~(uintptr_t)63);
    const char *end = (const char *)&p->ring_in[e->opt.recent_events];
    for (int i = 0; at < end && i < PEEK_MAX_LINES; at += 64, i++) __builtin_prefetch(at);
  }
  return p;
}

struct profile *resolve_profile(struct engine *e, const struct rec_event *ev) {
  char key[KEY_MAX];
  size_t n;
  struct profile *pa = NULL, *pu = NULL;
  size_t akey_len = 0;
  char akey[KEY_MAX];
  if (ev->anonymous_id.len) {
    akey_len = make_key(akey, "a:", ev->anonymous_id.ptr, ev->anonymous_id.len);
    pa = smap_get(&e->ids, akey, akey_len);
  }
  if (!ev->user_id.len) {
    return pa ? pa : profile_new(e, akey, akey_len);
  }
  n = make_key(key, "u:", ev->user_id.ptr, ev->user_id.len);
  pu = smap_get(&e->ids, key, n);
  if (!pu) {
    if (pa && !pa->user_id) { /* the anonymous visitor turns out to be this user */
      profile_add_ident(e, pa, key, n);
      return pa;
    }
    pu = profile_new(e, key, n);
  } else if (pa && pa != pu) {
    if (!pa->user_id)
      merge(e, pu, pa, "anonymousId seen with userId");
    else
      record_decision(e, pu, "baton.merge_refused", pa->key,
                      "anonymousId belongs to a profile with another userId");
  }
  if (akey_len && !smap_get(&e->ids, akey, akey_len)) profile_add_ident(e, pu, akey, akey_len);
  return pu;
}

struct profile *link_external_ids(struct engine *e, struct profile *p, const cJSON *traits) {
  if (!cJSON_IsObject(traits)) return p;
  for (size_t i = 0; i < e->n_external_ids; i++) {
    const char *trait = e->external_ids[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(traits, trait);
    char val[600], prefix[96], key[KEY_MAX];
    size_t vn = v ? norm_external(trait, v, val, sizeof(val)) : 0;
    if (!vn || strlen(trait) > 64) continue;
    snprintf(prefix, sizeof(prefix), "x:%s:", trait);
    size_t n = make_key(key, prefix, val, vn);
    struct profile *owner = smap_get(&e->ids, key, n);
    if (!owner) {
      profile_add_ident(e, p, key, n);
    } else if (owner != p) {
      if (owner->user_id && p->user_id && strcmp(owner->user_id, p->user_id)) {
        record_decision(e, p, "baton.merge_refused", owner->key,
                        "the same external id belongs to a profile with another userId");
      } else if (p->user_id && !owner->user_id) {
        merge(e, p, owner, trait);
      } else {
        merge(e, owner, p, trait); /* the earlier holder of the id survives */
        p = owner;
      }
    }
  }
  return p;
}

struct profile *apply_alias(struct engine *e, struct profile *p, const cJSON *event) {
  const cJSON *prev = cJSON_GetObjectItemCaseSensitive(event, "previousId");
  char tmp[48];
  const char *pid = NULL;
  if (cJSON_IsString(prev)) {
    pid = prev->valuestring;
  } else if (cJSON_IsNumber(prev)) {
    snprintf(tmp, sizeof(tmp), "%.0f", prev->valuedouble);
    pid = tmp;
  }
  if (!pid || !*pid || strlen(pid) > 1024) return p;
  struct profile *other = engine_find_profile(e, pid, strlen(pid));
  if (other && other != p) {
    merge(e, p, other, "alias");
  } else if (!other) {
    /* previousId never seen: remember it so later events with it land here */
    char key[KEY_MAX];
    size_t n = make_key(key, "a:", pid, strlen(pid));
    profile_add_ident(e, p, key, n);
  }
  return p;
}

/* ---- notes and cases ---- */

static cJSON *find_case(struct profile *p, const char *id, size_t len) {
  cJSON *c;
  cJSON_ArrayForEach(c, p->cases) {
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(c, "id");
    if (cJSON_IsString(cid) && strlen(cid->valuestring) == len && !memcmp(cid->valuestring, id, len))
      return c;
  }
  return NULL;
}

static void copy_field(cJSON *dst, const cJSON *src, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, name);
  if (!cJSON_IsString(v)) return;
  /* name is never the replacement's own key, so replace-by-name is safe here */
  if (cJSON_GetObjectItemCaseSensitive(dst, name))
    cJSON_ReplaceItemInObjectCaseSensitive(dst, name, cJSON_CreateString(v->valuestring));
  else
    cJSON_AddStringToObject(dst, name, v->valuestring);
}

static void set_time(cJSON *obj, const char *name, int64_t ms) {
  char ts[32];
  clock_format_ms(ms, ts);
  if (cJSON_GetObjectItemCaseSensitive(obj, name))
    cJSON_ReplaceItemInObjectCaseSensitive(obj, name, cJSON_CreateString(ts));
  else
    cJSON_AddStringToObject(obj, name, ts);
}

/* Keeps at most PROFILE_MAX_CASES: drops the oldest closed case, else the oldest. */
static void trim_cases(struct profile *p) {
  while (cJSON_GetArraySize(p->cases) > PROFILE_MAX_CASES) {
    cJSON *victim = NULL, *c;
    cJSON_ArrayForEach(c, p->cases) {
      const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
      if (cJSON_IsString(st) && !strcmp(st->valuestring, "closed")) {
        victim = c;
        break;
      }
    }
    cJSON_Delete(cJSON_DetachItemViaPointer(p->cases, victim ? victim : p->cases->child));
  }
}

static void record_json(struct engine *e, struct profile *p, cJSON *entry) {
  char *text = cJSON_PrintUnformatted(entry);
  if (text) profile_record(e, p, text, strlen(text), 1);
  free(text);
}

void engine_apply_profile_op(struct engine *e, const struct rec_profile *pr) {
  char by[80], id[1100];
  snprintf(by, sizeof(by), "%.*s", (int)MIN(pr->by.len, sizeof(by) - 1), pr->by.ptr);
  if (pr->id.len >= sizeof(id) || pr->item_id.len == 0 || pr->item_id.len > 64) return;
  memcpy(id, pr->id.ptr, pr->id.len);
  id[pr->id.len] = '\0';
  struct profile *p = engine_find_profile_by(e, by, id, pr->id.len);
  cJSON *in = cJSON_ParseWithLength(pr->json.ptr, pr->json.len);
  if (!p || !cJSON_IsObject(in)) {
    /* The API checked both; a profile merged or gone meanwhile ends here. */
    jlog(JLOG_WARN, "note or case for an unknown profile skipped", "id", id);
    cJSON_Delete(in);
    return;
  }
  char item[65];
  memcpy(item, pr->item_id.ptr, pr->item_id.len);
  item[pr->item_id.len] = '\0';
  cJSON *entry = cJSON_CreateObject();
  if (pr->op == POP_NOTE) {
    cJSON_AddStringToObject(entry, "type", "baton.note");
    cJSON_AddStringToObject(entry, "id", item);
    copy_field(entry, in, "text");
    copy_field(entry, in, "department");
    copy_field(entry, in, "author");
    set_time(entry, "timestamp", e->clock_ms);
    record_json(e, p, entry);
  } else if (pr->op == POP_CASE_OPEN) {
    if (!p->cases) p->cases = cJSON_CreateArray();
    if (find_case(p, item, strlen(item))) {
      cJSON_Delete(entry);
      cJSON_Delete(in);
      return; /* ids are unique per profile; the API refused the duplicate */
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", item);
    copy_field(c, in, "type");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(in, "status");
    cJSON_AddStringToObject(c, "status", cJSON_IsString(st) ? st->valuestring : "open");
    copy_field(c, in, "text");
    copy_field(c, in, "department");
    set_time(c, "opened", e->clock_ms);
    set_time(c, "updated", e->clock_ms);
    if (cJSON_IsString(st) && !strcmp(st->valuestring, "closed")) set_time(c, "closed", e->clock_ms);
    cJSON_AddItemToArray(p->cases, c);
    trim_cases(p);
    cJSON_AddStringToObject(entry, "type", "baton.case");
    cJSON_AddStringToObject(entry, "action", "opened");
    cJSON_AddItemToObject(entry, "case", cJSON_Duplicate(c, 1));
    set_time(entry, "timestamp", e->clock_ms);
    record_json(e, p, entry);
  } else {
    cJSON *c = find_case(p, item, strlen(item));
    if (!c) {
      cJSON_Delete(entry);
      cJSON_Delete(in);
      return;
    }
    /* "closed" is when the case was closed: set when it becomes closed, dropped when it
       is reopened, kept by any other change (a text edit used to drop it). */
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(in, "status");
    const cJSON *was = cJSON_GetObjectItemCaseSensitive(c, "status");
    int was_closed = cJSON_IsString(was) && !strcmp(was->valuestring, "closed");
    int to_closed = cJSON_IsString(st) && !strcmp(st->valuestring, "closed");
    int closing = to_closed && !was_closed, reopening = cJSON_IsString(st) && !to_closed && was_closed;
    copy_field(c, in, "status");
    copy_field(c, in, "text");
    copy_field(c, in, "department");
    set_time(c, "updated", e->clock_ms);
    if (closing) set_time(c, "closed", e->clock_ms);
    else if (reopening) cJSON_DeleteItemFromObjectCaseSensitive(c, "closed");
    cJSON_AddStringToObject(entry, "type", "baton.case");
    cJSON_AddStringToObject(entry, "action", closing ? "closed" : "updated");
    cJSON_AddItemToObject(entry, "case", cJSON_Duplicate(c, 1));
    set_time(entry, "timestamp", e->clock_ms);
    record_json(e, p, entry);
  }
  profile_mark_dirty(e, p);
  cJSON_Delete(entry);
  cJSON_Delete(in);
}

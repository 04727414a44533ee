/*
 * Checkpoints: writing the engine's changed state to the store in one LMDB
 * transaction together with the LSN it covers, and loading it back at start.
 * Only what changed since the last checkpoint is written: dirty profiles,
 * new timeline events, new journey versions and new outgoing messages.
 *
 * Profile encoding ("P2"), little-endian, str = u32 length (UINT32_MAX: null):
 *   "P2", str key, u32 n_idents {str}, u32 n_merged {str key, u64 head, u64 chain_id},
 *   u64 head, u64 chain_id (its timeline chain, engine_int.h), str traits_json,
 *   i64 first_seen, i64 last_seen, u64 n_events,
 *   u32 n_members { str journey_id, u32 entries, i64 last_exit_ms, u8 has_run,
 *     [u32 version, i32 step, u32 entry_no, i64 entered_ms, u8 armed,
 *      i64 due, u64 seq, str trigger] },
 *   u32 n_msgs { 36-byte message id }, str cases_json (null: no cases)
 * "P1" rows (stores written before the timeline chains) lack the heads and chain ids: they
 * are filled in when the old timeline is moved into tlog (migrate_timeline).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

/* ---- encoding helpers ---- */

static void put_u32(struct buf *b, uint32_t v) { buf_append(b, &v, 4); }
static void put_u64(struct buf *b, uint64_t v) { buf_append(b, &v, 8); }
static void put_str(struct buf *b, const char *s, size_t n) {
  put_u32(b, s ? (uint32_t)n : UINT32_MAX);
  if (s) buf_append(b, s, n);
}
static void put_cstr(struct buf *b, const char *s) { put_str(b, s, s ? strlen(s) : 0); }

struct rd {
  const char *p, *end;
  int bad;
};

static int need(struct rd *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return 0;
  }
  return 1;
}
static uint32_t get_u32(struct rd *r) {
  uint32_t v = 0;
  if (need(r, 4)) memcpy(&v, r->p, 4), r->p += 4;
  return v;
}
static uint64_t get_u64(struct rd *r) {
  uint64_t v = 0;
  if (need(r, 8)) memcpy(&v, r->p, 8), r->p += 8;
  return v;
}
static uint8_t get_u8(struct rd *r) { return need(r, 1) ? (uint8_t)*r->p++ : 0; }
/* Returns a new string (or NULL for a null string); *len gets its length. */
static char *get_str(struct rd *r, uint32_t *len) {
  uint32_t n = get_u32(r);
  if (len) *len = 0;
  if (r->bad || n == UINT32_MAX) return NULL;
  if (!need(r, n)) return NULL;
  char *s = xstrndup(r->p, n);
  r->p += n;
  if (len) *len = n;
  return s;
}

static void encode_profile(const struct engine *e, const struct profile *p, struct buf *b) {
  buf_append(b, "P2", 2);
  put_cstr(b, p->key);
  put_u32(b, (uint32_t)p->n_idents);
  for (size_t i = 0; i < p->n_idents; i++) put_cstr(b, p->idents[i]);
  put_u32(b, (uint32_t)p->n_merged);
  for (size_t i = 0; i < p->n_merged; i++) {
    put_cstr(b, p->merged_keys[i]);
    put_u64(b, p->merged_tl[i].head);
    put_u64(b, p->merged_tl[i].id);
  }
  put_u64(b, p->tl.head);
  put_u64(b, p->tl.id);
  char *traits = cJSON_PrintUnformatted(p->traits);
  put_cstr(b, traits ? traits : "{}");
  free(traits);
  put_u64(b, (uint64_t)p->first_seen);
  put_u64(b, (uint64_t)p->last_seen);
  put_u64(b, p->n_events);
  uint32_t n = 0;
  for (struct jmember *m = p->members; m; m = m->next) n++;
  put_u32(b, n);
  for (struct jmember *m = p->members; m; m = m->next) {
    put_cstr(b, m->j->id);
    put_u32(b, m->entries);
    put_u64(b, (uint64_t)m->last_exit_ms);
    struct run *r = m->run;
    buf_putc(b, r ? 1 : 0);
    if (!r) continue;
    put_u32(b, r->jv->version);
    put_u32(b, (uint32_t)r->step);
    put_u32(b, r->entry_no);
    put_u64(b, (uint64_t)r->entered_ms);
    buf_putc(b, timer_armed(&r->timer) ? 1 : 0);
    put_u64(b, (uint64_t)r->timer.due);
    put_u64(b, r->timer.seq);
    put_str(b, r->trigger, r->trigger_len);
  }
  put_u32(b, p->msg_n);
  for (uint32_t i = 0; i < p->msg_n; i++)
    buf_append(b, p->msgs[(p->msg_head + i) % PROFILE_MAX_MSGS], OUTMSG_ID_LEN);
  char *cases = p->cases ? cJSON_PrintUnformatted(p->cases) : NULL;
  put_cstr(b, cases);
  free(cases);
  put_u32(b, p->aggs ? (uint32_t)p->n_aggs : 0);
  for (size_t i = 0; p->aggs && i < p->n_aggs; i++) {
    put_u64(b, agg_fingerprint(&e->opt.aggregates[i]));
    size_t at = b->len;
    put_u32(b, 0);
    agg_encode(&p->aggs[i], b);
    uint32_t alen = (uint32_t)(b->len - at - 4);
    memcpy(b->ptr + at, &alen, 4);
  }
}

static struct profile *decode_profile(struct engine *e, const void *data, size_t len) {
  struct rd r = {data, (const char *)data + len, 0};
  if (len < 2 || (memcmp(data, "P1", 2) && memcmp(data, "P2", 2))) return NULL;
  int v2 = ((const char *)data)[1] == '2';
  r.p += 2;
  struct profile *p = profile_alloc(e);
  p->key = get_str(&r, NULL);
  uint32_t n_idents = get_u32(&r);
  if (n_idents > PROFILE_MAX_IDENTS) r.bad = 1;
  for (uint32_t i = 0; i < n_idents && !r.bad; i++) {
    char *id = get_str(&r, NULL);
    if (!id) break;
    p->idents = xrealloc(p->idents, (p->n_idents + 1) * sizeof(*p->idents));
    p->idents[p->n_idents++] = id;
  }
  uint32_t n_merged = get_u32(&r);
  if (n_merged > 1000000) r.bad = 1;
  for (uint32_t i = 0; i < n_merged && !r.bad; i++) {
    char *k = get_str(&r, NULL);
    if (!k) break;
    p->merged_keys = xrealloc(p->merged_keys, (p->n_merged + 1) * sizeof(*p->merged_keys));
    p->merged_tl = xrealloc(p->merged_tl, (p->n_merged + 1) * sizeof(*p->merged_tl));
    p->merged_keys[p->n_merged] = k;
    p->merged_tl[p->n_merged].head = v2 ? get_u64(&r) : 0;
    p->merged_tl[p->n_merged++].id = v2 ? get_u64(&r) : 0;
  }
  if (v2) {
    p->tl.head = get_u64(&r);
    p->tl.id = get_u64(&r);
  }
  char *traits = get_str(&r, NULL);
  p->traits = traits ? cJSON_Parse(traits) : NULL;
  free(traits);
  if (!p->traits) p->traits = cJSON_CreateObject();
  p->first_seen = (int64_t)get_u64(&r);
  p->last_seen = (int64_t)get_u64(&r);
  p->n_events = get_u64(&r);
  uint32_t n_members = get_u32(&r);
  struct jmember **tail = &p->members;
  for (uint32_t i = 0; i < n_members && !r.bad; i++) {
    char *jid = get_str(&r, NULL);
    struct jmember *m = xcalloc(1, sizeof(*m));
    m->entries = get_u32(&r);
    m->last_exit_ms = (int64_t)get_u64(&r);
    uint8_t has_run = get_u8(&r);
    m->j = jid ? engine_jentry(e, jid, strlen(jid), 0) : NULL;
    if (has_run && !r.bad) {
      uint32_t version = get_u32(&r);
      int step = (int)get_u32(&r);
      uint32_t entry_no = get_u32(&r);
      int64_t entered = (int64_t)get_u64(&r);
      uint8_t armed = get_u8(&r);
      int64_t due = (int64_t)get_u64(&r);
      uint64_t seq = get_u64(&r);
      uint32_t tlen;
      char *trigger = get_str(&r, &tlen);
      struct jversion *jv = m->j ? jentry_version(m->j, version) : NULL;
      if (!jv || step < 0 || (size_t)step >= jv->def->n_steps || r.bad) {
        r.bad = 1;
        free(trigger);
      } else {
        struct run *run = xcalloc(1, sizeof(*run));
        timer_init(&run->timer);
        run->p = p;
        run->m = m;
        run->jv = jv;
        run->step = step;
        run->entry_no = entry_no;
        run->entered_ms = entered;
        run->trigger = trigger ? trigger : xstrdup("null");
        run->trigger_len = trigger ? tlen : 4;
        m->run = run;
        jv->active++;
        e->n_active_runs++;
        if (armed) {
          jv->at_step[step]++;
          run_arm(e, run, due, seq);
        }
      }
    }
    free(jid);
    if (!m->j) r.bad = 1;
    *tail = m;
    tail = &m->next;
  }
  uint32_t n_msgs = get_u32(&r);
  for (uint32_t i = 0; i < n_msgs && i < PROFILE_MAX_MSGS && need(&r, OUTMSG_ID_LEN); i++) {
    profile_add_msg(p, r.p);
    r.p += OUTMSG_ID_LEN;
  }
  char *cases = get_str(&r, NULL);
  if (cases) {
    p->cases = cJSON_Parse(cases);
    if (!cJSON_IsArray(p->cases)) r.bad = 1;
    free(cases);
  }
  /* Aggregates: kept when their definition is unchanged (same fingerprint). */
  uint32_t n_aggs = get_u32(&r);
  for (uint32_t i = 0; i < n_aggs && !r.bad; i++) {
    uint64_t fp = get_u64(&r);
    uint32_t n = get_u32(&r);
    if (!need(&r, n)) break;
    for (size_t k = 0; k < e->opt.n_aggregates; k++) {
      if (agg_fingerprint(&e->opt.aggregates[k]) != fp) continue;
      if (!p->aggs) {
        p->aggs = xcalloc(e->opt.n_aggregates, sizeof(*p->aggs));
        p->n_aggs = e->opt.n_aggregates;
      }
      agg_state_clear(&p->aggs[k]);
      if (agg_decode(&p->aggs[k], r.p, n) != n) r.bad = 1;
      break;
    }
    r.p += n;
  }
  if (r.bad || r.p != r.end || !p->key) {
    for (struct jmember *m = p->members; m; m = m->next)
      if (m->run) {
        m->run->jv->active--;
        if (timer_armed(&m->run->timer)) m->run->jv->at_step[m->run->step]--;
        e->n_active_runs--;
        run_free(e, m->run);
      }
    profile_free(p);
    return NULL;
  }
  return p;
}

void tl_key(uint64_t ord, unsigned char out[8]) {
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)(ord >> (56 - 8 * i));
}

int tl_get(MDB_txn *txn, const struct store *st, uint64_t ord, uint64_t *prev, uint64_t *chain,
           MDB_val *json) {
  unsigned char kb[8];
  tl_key(ord, kb);
  MDB_val k = {8, kb}, v;
  int rc = mdb_get(txn, st->tlog, &k, &v);
  if (rc) return rc;
  if (v.mv_size < TL_VAL_HEAD) return BATON_ECORRUPT;
  memcpy(prev, v.mv_data, 8);
  memcpy(chain, (const char *)v.mv_data + 8, 8);
  json->mv_data = (char *)v.mv_data + TL_VAL_HEAD;
  json->mv_size = v.mv_size - TL_VAL_HEAD;
  /* A chain only goes back in time: anything else is not one of its links. */
  return *prev < ord ? 0 : BATON_ECORRUPT;
}

static size_t journey_key(char *out, size_t cap, const char *id, uint32_t version) {
  size_t n = strlen(id);
  if (n + 5 > cap) n = cap - 5;
  memcpy(out, id, n);
  out[n] = '\0';
  for (int i = 0; i < 4; i++) out[n + 1 + i] = (char)(version >> (24 - 8 * i));
  return n + 5;
}

/*
 * A checkpoint in three steps, so that the engine thread does not wait for
 * the disk:
 *   1. snapshot (engine thread): everything that changed is encoded into a
 *      struct ckpt; timeline entries are referenced, not copied, and stay on
 *      their profiles' queues (marked with the checkpoint's number) so that
 *      queries keep seeing them until they are stored;
 *   2. write (the checkpoint writer thread, or the caller for engine_checkpoint):
 *      on the writer thread, small transactions (the stage, below), the
 *      checkpoint stored by one of them; for a caller, one transaction;
 *   3. finish (engine thread, under the write lock): on success the stored
 *      entries leave their queues and profiles merged away or deleted are
 *      freed; on failure everything is marked to be written again.
 * One checkpoint is in flight at a time; the engine goes on applying meanwhile.
 */
enum { OP_PUT, OP_DEL };

struct ckpt {
  uint32_t no;             /* evcopy.ckpt_no of the entries it stores */
  uint64_t lsn;            /* applied_lsn it covers */
  uint64_t tl_seq;         /* the engine's tl_seq then */
  uint64_t purge_lsn;      /* the engine's purge_lsn then */
  int64_t clock_ms;
  uint64_t n_messages, n_merges, n_duplicates, n_suppressed, n_deleted;
  struct buf ops;          /* {u8 db, u8 op, u32 klen, key, u32 vlen, value} */
  struct evcopy **tl;      /* new timeline entries, one reference held on each */
  size_t n_tl;
  struct buf outbox;       /* the engine's outbox_pending, taken over */
  struct dedup_entry *dedup; /* new entries, sequence dedup_from.. */
  size_t n_dedup;
  uint64_t dedup_from, dedup_first, dedup_end;
  struct pending_delete *deletes;
  size_t n_deletes;
  char (*supp_new)[65];
  size_t n_supp_new;
  struct buf agg_fp;       /* aggregate definition fingerprints (empty: none) */
  struct profile **profiles; /* the dirty profiles it covers */
  size_t n_profiles, n_profile_rows;
  /* result */
  int rc;
  int64_t took_ns, cpu_ns; /* wall and CPU time of the write */
  int64_t rested_ns;       /* of took_ns, rests between slices (store_slicer) */
  int64_t commit_ns;       /* of took_ns, in the commits */
  int64_t marker_ns;       /* of those, the commit that stores the checkpoint */
  unsigned commits;        /* transactions (slices) */
  int stage_left;          /* stored, but its staged rows are not all moved */
  int paced;               /* written in slices with rests (else one transaction) */
};

static void op_add(struct buf *b, int db, int op, const void *k, size_t kn, const void *v,
                   size_t vn) {
  buf_putc(b, (char)db);
  buf_putc(b, (char)op);
  put_u32(b, (uint32_t)kn);
  buf_append(b, k, kn);
  put_u32(b, (uint32_t)vn);
  if (vn) buf_append(b, v, vn);
}

enum { DB_PROFILES, DB_JOURNEYS, DB_JSTATS };

static MDB_dbi op_dbi(const struct store *st, int db) {
  return db == DB_PROFILES ? st->profiles : db == DB_JOURNEYS ? st->journeys : st->jstats;
}

static int ckpt_pending(const struct engine *e) {
  return e->applied_lsn != e->checkpoint_lsn || e->dirty_head || e->n_unstored ||
         e->outbox_pending.len || e->n_deletes || e->stage_left;
}

/* Step 1: encodes what changed since the last checkpoint. Engine thread; takes no lock, since
   it only reads state the engine thread alone changes. */
static struct ckpt *ckpt_snapshot(struct engine *e) {
  struct ckpt *c = xcalloc(1, sizeof(*c));
  c->no = ++e->ckpt_seq ? e->ckpt_seq : ++e->ckpt_seq; /* never 0: 0 means "not in flight" */
  c->lsn = e->applied_lsn;
  c->tl_seq = e->tl_seq;
  c->purge_lsn = e->purge_lsn;
  c->clock_ms = e->clock_ms;
  c->n_messages = e->n_messages;
  c->n_merges = e->n_merges;
  c->n_duplicates = e->n_duplicates;
  c->n_suppressed = e->n_suppressed;
  c->n_deleted = e->n_deleted;
  buf_init(&c->ops, 0);
  buf_init(&c->agg_fp, 0);
  struct buf b;
  buf_init(&b, 0);
  /* Journeys first: profiles refer to their versions. */
  size_t it = 0;
  const struct smap_slot *s;
  while (smap_next(&e->journeys, &it, &s)) {
    struct jentry *j = s->val;
    for (struct jversion *v = j->latest; v; v = v->older) {
      char key[128];
      size_t kn = journey_key(key, sizeof(key), j->id, v->version);
      if (!v->persisted) {
        buf_clear(&b);
        put_u64(&b, (uint64_t)v->published_ms);
        put_u64(&b, v->lsn);
        buf_append(&b, v->def->source, v->def->source_len);
        op_add(&c->ops, DB_JOURNEYS, OP_PUT, key, kn, b.ptr, b.len);
        v->persisted = 1; /* undone if the checkpoint fails */
      }
      if (v->stats_dirty) { /* journey figures, for the versions whose figures moved */
        buf_clear(&b);
        put_u64(&b, v->entered);
        put_u64(&b, v->completed);
        put_u32(&b, (uint32_t)v->def->n_steps);
        for (size_t i = 0; i < v->def->n_steps; i++) put_u64(&b, v->step_passed[i]);
        op_add(&c->ops, DB_JSTATS, OP_PUT, key, kn, b.ptr, b.len);
        v->stats_dirty = 0;
      }
    }
  }
  size_t n = 0;
  for (struct profile *p = e->dirty_head; p; p = p->next_dirty) n++;
  c->profiles = xmalloc((n ? n : 1) * sizeof(*c->profiles));
  c->n_tl = 0;
  size_t tl_cap = 0;
  for (struct profile *p = e->dirty_head, *next; p; p = next) {
    next = p->next_dirty;
    c->profiles[c->n_profiles++] = p;
    p->dirty = 0;
    p->next_dirty = NULL;
    if (p->deleted) continue; /* its rows go with its pending deletion */
    size_t kn = strlen(p->key);
    if (p->merged_into) { /* merged away: its row goes; its timeline chain stays, now the survivor's */
      op_add(&c->ops, DB_PROFILES, OP_DEL, p->key, kn, NULL, 0);
      continue;
    }
    buf_clear(&b);
    encode_profile(e, p, &b);
    op_add(&c->ops, DB_PROFILES, OP_PUT, p->key, kn, b.ptr, b.len);
    c->n_profile_rows++;
    for (struct evcopy *ev = p->unstored; ev; ev = ev->next_unstored) {
      if (ev->ckpt_no) continue; /* in an earlier checkpoint still being written */
      if (c->n_tl == tl_cap) {
        tl_cap = tl_cap ? tl_cap * 2 : 1024;
        c->tl = xrealloc(c->tl, tl_cap * sizeof(*c->tl));
      }
      ev->ckpt_no = c->no;
      ev->refs++;
      c->tl[c->n_tl++] = ev;
    }
  }
  e->dirty_head = NULL;
  buf_release(&b);
  /* Outgoing messages: the buffer is taken over. */
  c->outbox = e->outbox_pending;
  buf_init(&e->outbox_pending, 0);
  /* De-duplication window: new entries to append, evicted ones to delete. */
  c->dedup_first = e->dedup.first_seq;
  c->dedup_end = dedup_end(&e->dedup);
  c->dedup_from = MAX(e->dedup_stored_end, c->dedup_first);
  if (c->dedup_end > c->dedup_from) {
    c->n_dedup = (size_t)(c->dedup_end - c->dedup_from);
    c->dedup = xmalloc(c->n_dedup * sizeof(*c->dedup));
    for (size_t i = 0; i < c->n_dedup; i++) c->dedup[i] = *dedup_at(&e->dedup, c->dedup_from + i);
  }
  /* Deletions and suppressions: taken over. */
  c->deletes = e->deletes;
  c->n_deletes = e->n_deletes;
  e->deletes = NULL;
  e->n_deletes = 0;
  c->supp_new = e->supp_new;
  c->n_supp_new = e->n_supp_new;
  e->supp_new = NULL;
  e->n_supp_new = 0;
  for (size_t i = 0; i < e->opt.n_aggregates; i++) {
    /* The definitions this state was kept for (see backfill_aggregates). */
    uint64_t f = agg_fingerprint(&e->opt.aggregates[i]);
    buf_append(&c->agg_fp, &f, 8);
  }
  return c;
}

/* Step 2: one write transaction with everything in c. Any thread; touches no engine state. */
static int cmp_tl(const void *a, const void *b) {
  uint64_t x = (*(struct evcopy *const *)a)->ord, y = (*(struct evcopy *const *)b)->ord;
  return (x > y) - (x < y);
}

struct op_ref {
  char db, op;
  uint32_t kn, vn;
  const char *k, *v;
};
/* Key order; for one key, the delete first: a profile merged away and a new one under the same
   key (the customer came back after the survivor was deleted) are both in one checkpoint, and
   the row that stays is the new one's. */
static int cmp_op(const void *a, const void *b) {
  const struct op_ref *x = a, *y = b;
  if (x->db != y->db) return x->db - y->db;
  int r = memcmp(x->k, y->k, MIN(x->kn, y->kn));
  if (r || x->kn != y->kn) return r ? r : (x->kn > y->kn) - (x->kn < y->kn);
  return (x->op != OP_DEL) - (y->op != OP_DEL);
}

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void (*engine_checkpoint_hook)(const char *point);

/* One row of a table (profiles, journeys, jstats): put or deleted. */
static int apply_op(MDB_txn *txn, const struct store *st, const struct op_ref *o) {
  MDB_val key = {o->kn, (void *)o->k}, val = {o->vn, (void *)o->v};
  if (o->op == OP_DEL) {
    int rc = mdb_del(txn, op_dbi(st, o->db), &key, NULL);
    return rc && rc != MDB_NOTFOUND ? store_fail("del profile", rc) : 0;
  }
  int rc = mdb_put(txn, op_dbi(st, o->db), &key, &val, 0);
  return rc ? store_fail(o->db == DB_PROFILES   ? "put profile"
                         : o->db == DB_JOURNEYS ? "put journey"
                                                : "put journey figures",
                         rc)
            : 0;
}

/*
 * The stage: a paced checkpoint writes its rows (profiles, journeys, journey figures) in
 * slices, appended to the stage in key order, then commits everything that has to change at
 * once (the applied LSN, deletions, messages, the de-duplication window's evictions, and meta
 * "staged") in one small transaction, and then moves the staged rows into their tables, in
 * slices again. Put in place directly, a checkpoint's rows are a page per profile at random places
 * (a checkpoint of 200,000 profiles changes most leaves of the table), and LMDB writes them
 * all at the commit, in one burst that the event log's fdatasync waits behind; staged, the
 * rows are appended to a few sequential pages, and each slice of the move writes about a
 * megabyte. Timeline entries and new de-duplication entries are appended to tlog and dedup in
 * slices before the commit: those at or above the committed "timeline_seq" and "dedup_end"
 * belong to no checkpoint yet.
 * stage_settle runs before each checkpoint and at start: staged rows of a committed
 * checkpoint ("staged" set) are moved, what a checkpoint left before its commit (staged rows,
 * timeline and de-duplication entries above those bounds) is dropped: the log after the
 * committed LSN gives it all again, with the same timeline orders and sequence numbers.
 */
static int stage_put(struct store_slicer *s, uint64_t seq, const struct op_ref *o) {
  unsigned char kb[8];
  tl_key(seq, kb); /* the same big-endian key */
  MDB_val k = {8, kb}, v = {6 + o->kn + o->vn, NULL};
  int rc = mdb_put(s->txn, s->st->stage, &k, &v, MDB_APPEND | MDB_RESERVE);
  if (rc) return store_fail("stage row", rc);
  char *w = v.mv_data;
  w[0] = o->db;
  w[1] = o->op;
  memcpy(w + 2, &o->kn, 4);
  memcpy(w + 6, o->k, o->kn);
  if (o->vn) memcpy(w + 6 + o->kn, o->v, o->vn);
  return store_slice_add(s, 16 + v.mv_size);
}

static int stage_apply(struct store_slicer *s) {
  const struct store *st = s->st;
  for (;;) {
    MDB_cursor *cur;
    mdb_cursor_open(s->txn, st->stage, &cur);
    MDB_val k, v;
    int rc = 0, r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (r == 0 && !store_slice_full(s)) {
      struct op_ref o;
      if (v.mv_size < 6) {
        rc = BATON_ECORRUPT;
        break;
      }
      const char *p = v.mv_data;
      o.db = p[0];
      o.op = p[1];
      memcpy(&o.kn, p + 2, 4);
      if (o.kn > v.mv_size - 6 || (o.db != DB_PROFILES && o.db != DB_JOURNEYS && o.db != DB_JSTATS)) {
        rc = BATON_ECORRUPT;
        break;
      }
      o.k = p + 6;
      o.v = p + 6 + o.kn;
      o.vn = (uint32_t)(v.mv_size - 6 - o.kn);
      if ((rc = apply_op(s->txn, st, &o))) break;
      if ((r = mdb_cursor_del(cur, 0))) {
        rc = store_fail("unstage row", r);
        break;
      }
      s->bytes += STORE_PUT_BYTES + o.vn;
      r = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
      if (r) r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == BATON_ECORRUPT) jlog(JLOG_ERROR, "corrupt staged row in the store", NULL, NULL);
    if (rc) return rc;
    if (r == MDB_NOTFOUND) break; /* all moved */
    if (r) return store_fail("read stage", r);
    if ((rc = store_slice_commit(s, 1))) return rc;
  }
  MDB_val mk = {6, (void *)"staged"};
  int rc = mdb_del(s->txn, st->meta, &mk, NULL);
  return rc && rc != MDB_NOTFOUND ? store_fail("unstage", rc) : 0;
}

/* 8 bytes of a u64 BE key (tlog, dedup, stage; tl_key writes them), as a number. */
static uint64_t be64(const void *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | ((const uint8_t *)p)[i];
  return v;
}

/* Deletes the rows of a u64-keyed table from key `from` on; *n gets how many. */
static int drop_from(MDB_txn *txn, MDB_dbi dbi, uint64_t from, size_t *n) {
  unsigned char kb[8];
  tl_key(from, kb);
  MDB_cursor *cur;
  mdb_cursor_open(txn, dbi, &cur);
  MDB_val k = {8, kb}, v;
  int rc = 0, r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  *n = 0;
  while (r == 0) {
    if ((r = mdb_cursor_del(cur, 0))) {
      rc = store_fail("drop uncommitted rows", r);
      break;
    }
    ++*n;
    r = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    if (r) r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return rc;
}

/* Rows of a u64-keyed table at or above meta `bound` (its key shifted left by `shift`) were
   written by a checkpoint that was never stored: dropped. Without a valid bound (a store from
   before the bounds, or one an older version has checkpointed since), it gets one: one past
   its last row. */
static int drop_above(struct store_slicer *s, int valid, MDB_dbi dbi, const char *bound,
                      int shift, const char *what) {
  uint64_t end;
  if (!valid || store_get_u64(s->txn, s->st, bound, &end)) {
    MDB_cursor *cur;
    mdb_cursor_open(s->txn, dbi, &cur);
    MDB_val k, v;
    end = mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8
              ? (be64(k.mv_data) >> shift) + 1
              : 0;
    mdb_cursor_close(cur);
    return store_put_u64(s->txn, s->st, bound, end);
  }
  size_t n;
  int rc = drop_from(s->txn, dbi, end << shift, &n);
  if (!rc && n) {
    struct jlog_line l;
    jlog_begin(&l, JLOG_INFO, "rows of an unstored checkpoint dropped");
    jlog_str(&l, "table", what);
    jlog_u64(&l, "rows", n);
    jlog_end(&l);
  }
  return rc;
}

/* The stage, the "staged" flag and the bounds belong to the checkpoint whose applied LSN
   "bounds_lsn" names (written by the same transactions). An older version's checkpoints move
   applied_lsn but not these: then they are stale, the stage is dropped and the bounds are
   taken again from the tables. */
static int stage_settle(struct store_slicer *s) {
  const struct store *st = s->st;
  uint64_t staged = 0, applied = 0, bounds = UINT64_MAX;
  store_get_u64(s->txn, s->st, "applied_lsn", &applied);
  store_get_u64(s->txn, s->st, "bounds_lsn", &bounds);
  int valid = bounds == applied;
  store_get_u64(s->txn, s->st, "staged", &staged);
  if (staged && valid) return stage_apply(s);
  MDB_stat ms;
  int rc = mdb_stat(s->txn, st->stage, &ms);
  if (!rc && ms.ms_entries) rc = mdb_drop(s->txn, st->stage, 0);
  if (rc) return store_fail("drop stage", rc);
  MDB_val mk = {6, (void *)"staged"};
  if (staged && (rc = mdb_del(s->txn, st->meta, &mk, NULL))) return store_fail("unstage", rc);
  if ((rc = drop_above(s, valid, st->tlog, "timeline_seq", 1, "tlog"))) return rc;
  if ((rc = drop_above(s, valid, st->dedup, "dedup_end", 0, "dedup"))) return rc;
  return valid ? 0 : store_put_u64(s->txn, s->st, "bounds_lsn", applied);
}

/* paced: the background writer's checkpoints go in slices (store_slicer, and the stage above);
   one written while callers wait (a deletion, shutdown) is one transaction at full speed, and
   one in flight when someone asks for a checkpoint stops resting (hurry). */
static int ckpt_write(struct store *st, struct ckpt *c, int paced, const atomic_int *hurry) {
  int64_t t0 = clock_mono_ns(), c0 = thread_cpu_ns();
  struct store_slicer s;
  store_slice_begin(&s, st, paced);
  s.hurry = hurry;
  int rc = stage_settle(&s);
  int64_t marker_ns = 0;
  size_t n_ops = 0, ops_cap = 0;
  struct op_ref *ops = NULL;
  for (size_t off = 0; off < c->ops.len;) {
    const char *o = c->ops.ptr + off;
    uint32_t kn, vn;
    memcpy(&kn, o + 2, 4);
    memcpy(&vn, o + 6 + kn, 4);
    if (n_ops == ops_cap) {
      ops_cap = ops_cap ? ops_cap * 2 : 256;
      ops = xrealloc(ops, ops_cap * sizeof(*ops));
    }
    ops[n_ops++] = (struct op_ref){o[0], o[1], kn, vn, o + 6, o + 10 + kn};
    off += 10 + kn + vn;
  }
  if (n_ops > 1) qsort(ops, n_ops, sizeof(*ops), cmp_op); /* key order, as for the timeline */
  /* In timeline order, which is the order of the log: appended after everything stored
     before, so the pages written are new ones at the end of the tree, filled in turn. (The
     plain put is a fallback: entries of a failed checkpoint are dropped by stage_settle before
     they are written again.) */
  if (c->n_tl > 1) qsort(c->tl, c->n_tl, sizeof(*c->tl), cmp_tl);
  for (size_t i = 0; i < c->n_tl && !rc; i++) {
    const struct evcopy *ev = c->tl[i];
    unsigned char kb[8];
    tl_key(ev->ord, kb);
    MDB_val k = {8, kb}, val = {TL_VAL_HEAD + ev->len, NULL};
    rc = mdb_put(s.txn, st->tlog, &k, &val, MDB_APPEND | MDB_RESERVE);
    if (rc == MDB_KEYEXIST) rc = mdb_put(s.txn, st->tlog, &k, &val, MDB_RESERVE);
    if (rc) {
      rc = store_fail("put timeline", rc);
      break;
    }
    memcpy(val.mv_data, &ev->prev, 8);
    memcpy((char *)val.mv_data + 8, &ev->chain, 8);
    memcpy((char *)val.mv_data + TL_VAL_HEAD, ev->data, ev->len);
    rc = store_slice_add(&s, 16 + val.mv_size); /* appended: the next bytes of the last page */
  }
  /* The de-duplication window's new entries, appended (those at or above the stored
     "dedup_end" belong to no checkpoint yet). */
  for (size_t i = 0; i < c->n_dedup && !rc; i++) {
    uint64_t seq = c->dedup_from + i;
    uint8_t kb[8], vb[16];
    tl_key(seq, kb);
    memcpy(vb, &c->dedup[i].hash, 8);
    memcpy(vb + 8, &c->dedup[i].time_ms, 8);
    MDB_val k = {8, kb}, val = {16, vb};
    rc = mdb_put(s.txn, st->dedup, &k, &val, MDB_APPEND);
    if (rc) rc = store_fail("put dedup", rc);
    else rc = store_slice_add(&s, 16 + 8 + 16);
  }
  /* Paced, the rows are staged (in slices) and moved after the commit below. */
  uint64_t n_staged = 0;
  for (size_t i = 0; paced && i < n_ops && !rc; i++) rc = stage_put(&s, n_staged++, &ops[i]);
  /* From here on, one transaction: everything that has to change at once. Deletions first:
     they remove what earlier checkpoints stored of deleted customers, and must not remove what
     this one stores of a customer who came back after the deletion (rows are put after them;
     this checkpoint's timeline entries are on chains of their own). */
  if (!rc)
    rc = engine_checkpoint_deletes(st, s.txn, c->deletes, c->n_deletes, c->supp_new,
                                   c->n_supp_new, c->clock_ms);
  for (size_t i = 0; !paced && i < n_ops && !rc; i++) rc = apply_op(s.txn, st, &ops[i]);
  free(ops);
  for (size_t off = 0; off + 4 <= c->outbox.len && !rc;) {
    uint32_t len;
    memcpy(&len, c->outbox.ptr + off, 4);
    const char *m = c->outbox.ptr + off + 4;
    /* the id sits right after the 3-byte tag */
    MDB_val k = {OUTMSG_ID_LEN, (void *)(m + 3)}, val = {len, (void *)m}, seen;
    /* Delivery may already have settled it: then there is nothing to keep. */
    if (mdb_get(s.txn, st->deliveries, &k, &seen) == MDB_NOTFOUND) {
      rc = mdb_put(s.txn, st->outbox, &k, &val, 0);
      if (rc) rc = store_fail("put outbox", rc);
    }
    off += 4 + len;
  }
  if (!rc) {
    /* Evicted de-duplication entries: every stored one below the window's first. */
    MDB_cursor *cur;
    mdb_cursor_open(s.txn, st->dedup, &cur);
    MDB_val k, val;
    int r2 = mdb_cursor_get(cur, &k, &val, MDB_FIRST);
    while (r2 == 0 && k.mv_size == 8) {
      if (be64(k.mv_data) >= c->dedup_first) break;
      mdb_cursor_del(cur, 0);
      r2 = mdb_cursor_get(cur, &k, &val, MDB_GET_CURRENT);
      if (r2) r2 = mdb_cursor_get(cur, &k, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
  }
  if (!rc) rc = store_put_u64(s.txn, st, "applied_lsn", c->lsn);
  if (!rc) rc = store_put_u64(s.txn, st, "clock_ms", (uint64_t)c->clock_ms);
  if (!rc) rc = store_put_u64(s.txn, st, "timeline_seq", c->tl_seq);
  if (!rc) rc = store_put_u64(s.txn, st, "dedup_end", c->dedup_end);
  if (!rc) rc = store_put_u64(s.txn, st, "bounds_lsn", c->lsn);
  /* The log's copies of deleted customers' events go once this is stored (evlog_purge); kept
     here too, so that a crash before that happens does not forget it (engine_load). */
  if (!rc && c->purge_lsn) rc = store_put_u64(s.txn, st, "purge_lsn", c->purge_lsn);
  if (!rc) rc = store_put_u64(s.txn, st, "messages", c->n_messages);
  /* Lifetime counters, like engine.events: a restart does not reset them. */
  if (!rc) rc = store_put_u64(s.txn, st, "merges", c->n_merges);
  if (!rc) rc = store_put_u64(s.txn, st, "duplicates", c->n_duplicates);
  if (!rc) rc = store_put_u64(s.txn, st, "suppressed", c->n_suppressed);
  if (!rc) rc = store_put_u64(s.txn, st, "deleted", c->n_deleted);
  if (!rc && c->agg_fp.len) {
    MDB_val k = {10, (void *)"aggregates"}, val = {c->agg_fp.len, c->agg_fp.ptr};
    rc = mdb_put(s.txn, st->meta, &k, &val, 0);
    if (rc) rc = store_fail("put aggregates", rc);
  }
  if (!rc && n_staged) rc = store_put_u64(s.txn, st, "staged", 1);
  if (!rc && engine_checkpoint_hook) engine_checkpoint_hook("staged");
  if (rc) {
    store_slice_abort(&s);
  } else {
    rc = store_slice_commit(&s, n_staged > 0);
    marker_ns = s.last_commit_ns;
  }
  /* Stored. The staged rows go into their tables; if that fails, they stay staged and the
     next checkpoint (or the next start) moves them first. */
  if (!rc && engine_checkpoint_hook) engine_checkpoint_hook("stored");
  if (!rc && n_staged) {
    int r2 = stage_apply(&s);
    if (!r2) r2 = store_slice_commit(&s, 0);
    if (r2) {
      store_slice_abort(&s);
      c->stage_left = 1;
      jlog(JLOG_ERROR, "checkpoint stored, its staged rows not moved yet; moved next time", NULL,
           NULL);
    }
  }
  c->rc = rc;
  c->took_ns = clock_mono_ns() - t0;
  c->commit_ns = s.commit_ns;
  c->marker_ns = marker_ns;
  c->rested_ns = s.rested_ns;
  c->commits = s.commits;
  c->cpu_ns = thread_cpu_ns() - c0;
  return rc;
}

static struct profile *survivor(struct profile *p) {
  while (p->merged_into) p = p->merged_into;
  return p;
}

static void ckpt_free(struct ckpt *c) {
  for (size_t i = 0; i < c->n_tl; i++) evcopy_unref(c->tl[i]);
  free(c->tl);
  buf_release(&c->ops);
  buf_release(&c->outbox);
  buf_release(&c->agg_fp);
  free(c->dedup);
  free(c->profiles);
  free(c);
}

/* Step i of a long walk under the engine's write lock, held since *held: every 16 steps, once
   it was held ENGINE_HOLD_NS, it is let go for readers (*longest: the longest hold). */
static void let_readers_in(struct engine *e, size_t i, int64_t *held, int64_t *longest) {
  int64_t now;
  if (i % 16 != 15 || (now = clock_mono_ns()) - *held < ENGINE_HOLD_NS) return;
  *longest = MAX(*longest, now - *held);
  pthread_rwlock_unlock(&e->lock);
  pthread_rwlock_wrlock(&e->lock);
  *held = clock_mono_ns();
}

/* Step 3, engine thread. */
static void ckpt_finish(struct engine *e, struct ckpt *c) {
  pthread_rwlock_wrlock(&e->lock);
  int64_t f0 = clock_mono_ns(), held = f0, hold_ns = 0; /* under the lock: in all, longest */
  if (c->rc) {
    /* Nothing was stored: all of it is written again by the next checkpoint. */
    size_t it = 0;
    const struct smap_slot *s;
    while (smap_next(&e->journeys, &it, &s))
      for (struct jversion *v = ((struct jentry *)s->val)->latest; v; v = v->older)
        v->persisted = 0, v->stats_dirty = 1;
    for (size_t i = 0; i < c->n_profiles; i++) {
      struct profile *p = c->profiles[i];
      profile_mark_dirty(e, p); /* merged away or deleted: its rows still have to go */
      for (struct evcopy *ev = survivor(p)->unstored; ev; ev = ev->next_unstored)
        if (ev->ckpt_no == c->no) ev->ckpt_no = 0;
    }
    /* Messages, deletions and suppressions go back in front of what came since. */
    buf_append(&c->outbox, e->outbox_pending.ptr, e->outbox_pending.len);
    buf_release(&e->outbox_pending);
    e->outbox_pending = c->outbox;
    buf_init(&c->outbox, 0);
    if (c->n_deletes) {
      c->deletes = xrealloc(c->deletes, (c->n_deletes + e->n_deletes) * sizeof(*c->deletes));
      if (e->n_deletes) memcpy(c->deletes + c->n_deletes, e->deletes, e->n_deletes * sizeof(*e->deletes));
      free(e->deletes);
      e->deletes = c->deletes;
      e->n_deletes += c->n_deletes;
      c->deletes = NULL;
    }
    if (c->n_supp_new) {
      c->supp_new = xrealloc(c->supp_new, (c->n_supp_new + e->n_supp_new) * sizeof(*c->supp_new));
      if (e->n_supp_new) memcpy(c->supp_new + c->n_supp_new, e->supp_new, e->n_supp_new * sizeof(*e->supp_new));
      free(e->supp_new);
      e->supp_new = c->supp_new;
      e->n_supp_new += c->n_supp_new;
      c->supp_new = NULL;
    }
    pthread_rwlock_unlock(&e->lock);
    ckpt_free(c);
    return;
  }
  /* Stored: the entries leave their queues (now on the survivor's, if merged meanwhile). The
     lock is let go every ENGINE_HOLD_NS for readers: each profile's queue is consistent between
     them (an entry both queued and stored is shown once). (Every 4,096 profiles instead, a
     hold took 15-67 ms with a million customers: each queued entry is a cache miss.) */
  for (size_t i = 0; i < c->n_profiles; i++) {
    let_readers_in(e, i, &held, &hold_ns);
    struct profile *p = survivor(c->profiles[i]);
    if (p->deleted) continue; /* its queue went with it */
    struct evcopy **link = &p->unstored, *last = NULL;
    for (struct evcopy *ev = *link; ev; ev = *link) {
      if (ev->ckpt_no != c->no) {
        last = ev;
        link = &ev->next_unstored;
        continue;
      }
      *link = ev->next_unstored;
      p->n_unstored--;
      e->n_unstored -= MIN(e->n_unstored, 1);
      evcopy_unref(ev);
    }
    p->unstored_last = last;
  }
  /* Profiles merged away or deleted before the snapshot: nothing refers to them now. Their
     pending deletions were carried by this checkpoint, too. */
  for (size_t i = 0; i < c->n_profiles; i++) {
    let_readers_in(e, i, &held, &hold_ns);
    struct profile *p = c->profiles[i];
    if ((p->merged_into || p->deleted) && !p->dirty) profile_free(p);
  }
  for (size_t i = 0; i < c->n_deletes; i++) engine_pending_delete_free(&c->deletes[i]);
  free(c->deletes);
  free(c->supp_new);
  e->checkpoint_lsn = c->lsn;
  e->stage_left = c->stage_left; /* the next checkpoint moves them first, even with no changes */
  if (!c->paced) atomic_store(&e->ckpt_hurry, 0);
  atomic_store(&e->checkpoint_pub, c->lsn);
  e->n_checkpoints++;
  e->dedup_stored_first = c->dedup_first;
  e->dedup_stored_end = c->dedup_end;
  int64_t f1 = clock_mono_ns();
  hold_ns = MAX(hold_ns, f1 - held);
  pthread_rwlock_unlock(&e->lock);
  if (e->opt.log) evlog_checkpoint(e->opt.log, c->lsn + 1);
  atomic_fetch_add(&e->checkpoint_ns, (unsigned long long)c->took_ns);
  atomic_fetch_add(&e->checkpoint_cpu_ns, (unsigned long long)c->cpu_ns);
  /* The spacing of checkpoints follows the time the disk was busy with this one (the rests
     between write-back steps are already idle time). */
  atomic_store(&e->last_ckpt_write_ms, (long long)((c->took_ns - c->rested_ns) / 1000000));
  struct jlog_line l;
  jlog_begin(&l, JLOG_DEBUG, "checkpoint written");
  jlog_u64(&l, "applied_lsn", c->lsn);
  jlog_u64(&l, "profiles", c->n_profile_rows);
  jlog_u64(&l, "events", c->n_tl);
  jlog_f64(&l, "ms", (double)c->took_ns / 1e6);
  jlog_f64(&l, "rested_ms", (double)c->rested_ns / 1e6);
  jlog_f64(&l, "commit_ms", (double)c->commit_ns / 1e6);
  jlog_f64(&l, "marker_ms", (double)c->marker_ns / 1e6);
  jlog_u64(&l, "commits", c->commits);
  jlog_f64(&l, "finish_ms", (double)(f1 - f0) / 1e6);
  jlog_f64(&l, "finish_hold_ms", (double)hold_ns / 1e6);
  jlog_f64(&l, "cpu_ms", (double)c->cpu_ns / 1e6);
  jlog_end(&l);
  ckpt_free(c);
}

static void log_failure(const struct ckpt *c) {
  struct jlog_line l;
  jlog_begin(&l, JLOG_ERROR, "checkpoint failed; it is tried again");
  jlog_u64(&l, "applied_lsn", c->lsn);
  jlog_str(&l, "error", baton_strerror(c->rc));
  jlog_end(&l);
}

/* ---- the writer thread ---- */

static void *ckpt_writer_main(void *arg) {
  struct engine *e = arg;
  /* The checkpoint's disk writes yield to everyone else's: acknowledgements wait for the
     event log's fdatasync on the same disk. (The commit's fdatasync issues the writeback from
     this thread, so its requests carry this priority; mq-deadline serves the idle class when
     nothing else waits, with aging, so the checkpoint still completes under load.) */
  if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, (int)gettid(),
              3 << 13 /* IOPRIO_CLASS_IDLE */) < 0) { /* not allowed: default priority */ }
  pthread_mutex_lock(&e->ckpt_mu);
  for (;;) {
    while (!e->ckpt_queued && !e->ckpt_quit) pthread_cond_wait(&e->ckpt_cv, &e->ckpt_mu);
    if (!e->ckpt_queued) break;
    struct ckpt *c = e->ckpt_queued;
    e->ckpt_queued = NULL;
    pthread_mutex_unlock(&e->ckpt_mu);
    ckpt_write(e->opt.store, c, c->paced, &e->ckpt_hurry);
    pthread_mutex_lock(&e->ckpt_mu);
    e->ckpt_done = c;
    pthread_cond_broadcast(&e->ckpt_cv);
    if (e->opt.log) evlog_wake(e->opt.log); /* the engine thread may be waiting for records */
  }
  pthread_mutex_unlock(&e->ckpt_mu);
  return NULL;
}

void engine_ckpt_writer_start(struct engine *e) {
  pthread_mutex_init(&e->ckpt_mu, NULL);
  pthread_cond_init(&e->ckpt_cv, NULL);
  e->ckpt_quit = 0;
  pthread_create(&e->ckpt_thread, NULL, ckpt_writer_main, e);
  pthread_setname_np(e->ckpt_thread, "baton-ckpt");
  e->ckpt_running = 1;
}

/* Finishes the checkpoint in flight, if it is written (or, with wait, once it is). Engine
   thread. Returns 1 if one was finished. */
int engine_ckpt_poll(struct engine *e, int wait) {
  if (!e->ckpt_in_flight) return 0;
  pthread_mutex_lock(&e->ckpt_mu);
  while (wait && !e->ckpt_done) pthread_cond_wait(&e->ckpt_cv, &e->ckpt_mu);
  struct ckpt *c = e->ckpt_done;
  e->ckpt_done = NULL;
  pthread_mutex_unlock(&e->ckpt_mu);
  if (!c) return 0;
  e->ckpt_in_flight = 0;
  if (c->rc) log_failure(c);
  ckpt_finish(e, c);
  return 1;
}

void engine_ckpt_writer_stop(struct engine *e) {
  if (!e->ckpt_running) return;
  engine_ckpt_poll(e, 1);
  pthread_mutex_lock(&e->ckpt_mu);
  e->ckpt_quit = 1;
  pthread_cond_broadcast(&e->ckpt_cv);
  pthread_mutex_unlock(&e->ckpt_mu);
  pthread_join(e->ckpt_thread, NULL);
  pthread_mutex_destroy(&e->ckpt_mu);
  pthread_cond_destroy(&e->ckpt_cv);
  e->ckpt_running = 0;
}

/* Starts a checkpoint on the writer thread unless one is in flight or nothing changed. */
void engine_checkpoint_async(struct engine *e, int paced) {
  if (e->ckpt_in_flight || !ckpt_pending(e)) return;
  struct ckpt *c = ckpt_snapshot(e);
  c->paced = paced;
  e->ckpt_in_flight = 1;
  pthread_mutex_lock(&e->ckpt_mu);
  e->ckpt_queued = c;
  pthread_cond_broadcast(&e->ckpt_cv);
  pthread_mutex_unlock(&e->ckpt_mu);
}

/* A checkpoint written before returning (after the one in flight, if any). */
int engine_checkpoint_locked(struct engine *e, int paced) {
  engine_ckpt_poll(e, 1);
  if (!ckpt_pending(e)) return 0;
  struct ckpt *c = ckpt_snapshot(e);
  c->paced = paced;
  int rc = ckpt_write(e->opt.store, c, paced, NULL);
  if (rc) log_failure(c);
  ckpt_finish(e, c);
  return rc;
}

/* ---- loading ---- */

static int load_journeys(struct engine *e, MDB_txn *txn) {
  MDB_cursor *cur;
  mdb_cursor_open(txn, e->opt.store->journeys, &cur);
  MDB_val k, v;
  int rc;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const char *kp = k.mv_data;
    const char *nul = memchr(kp, '\0', k.mv_size);
    if (!nul || k.mv_size != (size_t)(nul - kp) + 5 || v.mv_size < 16) {
      mdb_cursor_close(cur);
      return BATON_ECORRUPT;
    }
    uint32_t version = 0;
    for (int i = 0; i < 4; i++) version = version << 8 | (uint8_t)nul[1 + i];
    char *id = xstrndup(kp, (size_t)(nul - kp));
    struct journey_def *def;
    struct yerr err;
    if (journey_parse((const char *)v.mv_data + 16, v.mv_size - 16, id, id, &def, &err)) {
      char msg[900];
      jlog(JLOG_ERROR, "stored journey no longer valid", "error",
           yerr_format(&err, msg, sizeof(msg)));
      free(id);
      mdb_cursor_close(cur);
      return BATON_ECORRUPT;
    }
    struct jentry *j = engine_jentry(e, id, strlen(id), 1);
    free(id);
    struct jversion *jv = jversion_new(def, version);
    memcpy(&jv->published_ms, v.mv_data, 8);
    memcpy(&jv->lsn, (const char *)v.mv_data + 8, 8);
    jv->persisted = 1;
    jv->older = j->latest; /* keys sort by version, so this one is newer */
    j->latest = jv;
  }
  mdb_cursor_close(cur);
  /* Their figures (active and waiting are rebuilt from the loaded runs). */
  mdb_cursor_open(txn, e->opt.store->jstats, &cur);
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const char *kp = k.mv_data;
    const char *nul = memchr(kp, '\0', k.mv_size);
    if (!nul || k.mv_size != (size_t)(nul - kp) + 5 || v.mv_size < 20) continue;
    uint32_t version = 0, n_steps;
    for (int i = 0; i < 4; i++) version = version << 8 | (uint8_t)nul[1 + i];
    struct jentry *j = engine_jentry(e, kp, (size_t)(nul - kp), 0);
    struct jversion *jv = j ? jentry_version(j, version) : NULL;
    memcpy(&n_steps, (const char *)v.mv_data + 16, 4);
    if (!jv || n_steps != jv->def->n_steps || v.mv_size != 20 + 8 * (size_t)n_steps) continue;
    memcpy(&jv->entered, v.mv_data, 8);
    memcpy(&jv->completed, (const char *)v.mv_data + 8, 8);
    memcpy(jv->step_passed, (const char *)v.mv_data + 20, 8 * (size_t)n_steps);
  }
  mdb_cursor_close(cur);
  engine_rebuild_triggers(e);
  return 0;
}

/* Reads up to cap newest recent-ring entries of one stored chain. */
static size_t read_newest(MDB_txn *txn, const struct store *st, uint64_t head, size_t cap,
                          struct evcopy **got) {
  size_t n = 0;
  uint64_t prev, chain;
  MDB_val v;
  for (uint64_t ord = head; ord && n < cap && !tl_get(txn, st, ord, &prev, &chain, &v); ord = prev) {
    if (ord & EVCOPY_NOT_RECENT) continue;
    struct evcopy *c = evcopy_new(v.mv_size);
    c->ord = ord;
    c->prev = prev;
    c->chain = chain;
    c->len = (uint32_t)v.mv_size;
    memcpy(c->data, v.mv_data, v.mv_size);
    c->data[c->len] = '\0';
    got[n++] = c;
  }
  return n;
}

static int cmp_ord_desc(const void *a, const void *b) {
  uint64_t x = (*(struct evcopy *const *)a)->ord, y = (*(struct evcopy *const *)b)->ord;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Rebuilds p's recent ring from its stored timeline and those of profiles merged into it. */
static void load_ring(struct engine *e, MDB_txn *txn, struct profile *p) {
  size_t cap = e->opt.recent_events;
  if (!cap) return;
  size_t keys = 1 + p->n_merged;
  struct evcopy **got = xcalloc(cap * keys, sizeof(*got));
  size_t n = read_newest(txn, e->opt.store, p->tl.head, cap, got);
  for (size_t i = 0; i < p->n_merged; i++)
    n += read_newest(txn, e->opt.store, p->merged_tl[i].head, cap, got + n);
  qsort(got, n, sizeof(*got), cmp_ord_desc);
  for (size_t i = cap; i < n; i++) free(got[i]); /* older than the newest cap */
  if (n > cap) n = cap;
  while (n) profile_ring_push(e, p, got[--n]); /* oldest first */
  free(got);
}

/* Folds one stored timeline entry into the aggregates marked fresh (no stored state). */
static void backfill_entry(struct engine *e, struct profile *p, const char *json, size_t len,
                           const int *fresh) {
  cJSON *ev = cJSON_ParseWithLength(json, len);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(ev, "event");
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(ev, "timestamp");
  int64_t t;
  if (cJSON_IsString(type) && !strcmp(type->valuestring, "track") && cJSON_IsString(name) &&
      cJSON_IsString(ts) && clock_parse_iso8601(ts->valuestring, &t) == 0) {
    for (size_t i = 0; i < e->opt.n_aggregates; i++) {
      const struct agg_def *d = &e->opt.aggregates[i];
      if (!fresh[i] || (strcmp(d->event, "*") && strcmp(d->event, name->valuestring))) continue;
      if (!p->aggs) {
        p->aggs = xcalloc(e->opt.n_aggregates, sizeof(*p->aggs));
        p->n_aggs = e->opt.n_aggregates;
      }
      agg_update(d, &p->aggs[i], t, cJSON_GetObjectItemCaseSensitive(ev, "properties"));
    }
  }
  cJSON_Delete(ev);
}

/*
 * An aggregate the store has not kept state for (new, or its definition
 * changed) is computed once from every profile's stored timeline; events
 * after the checkpoint are then applied by the replay as usual, so each event
 * counts once. Costs one pass over the stored timelines, only when needed.
 */
static void backfill_aggregates(struct engine *e, MDB_txn *txn) {
  if (!e->opt.n_aggregates) return;
  MDB_val k = {10, (void *)"aggregates"}, v;
  const uint64_t *known = NULL;
  size_t n_known = 0;
  if (mdb_get(txn, e->opt.store->meta, &k, &v) == 0) {
    known = v.mv_data;
    n_known = v.mv_size / 8;
  }
  int *fresh = xcalloc(e->opt.n_aggregates, sizeof(*fresh));
  size_t n_fresh = 0;
  for (size_t i = 0; i < e->opt.n_aggregates; i++) {
    uint64_t f = agg_fingerprint(&e->opt.aggregates[i]);
    int seen = 0;
    for (size_t j = 0; j < n_known; j++) {
      uint64_t g;
      memcpy(&g, &known[j], 8);
      seen |= g == f;
    }
    fresh[i] = !seen;
    n_fresh += !seen;
  }
  if (!n_fresh || !e->profiles.len) {
    free(fresh);
    return;
  }
  size_t it = 0, n_entries = 0, cap = 0;
  MDB_val *texts = NULL; /* one chain's entries, newest first (valid in txn) */
  const struct smap_slot *s;
  while (smap_next(&e->profiles, &it, &s)) {
    struct profile *p = s->val;
    for (size_t kk = 0; kk <= p->n_merged; kk++) {
      /* Each chain oldest first, as the events happened. */
      size_t n = 0;
      uint64_t prev, chain;
      MDB_val val;
      for (uint64_t ord = kk ? p->merged_tl[kk - 1].head : p->tl.head;
           ord && !tl_get(txn, e->opt.store, ord, &prev, &chain, &val); ord = prev) {
        if (n == cap) texts = xrealloc(texts, (cap = cap ? 2 * cap : 256) * sizeof(*texts));
        texts[n++] = val;
      }
      n_entries += n;
      while (n--) backfill_entry(e, p, texts[n].mv_data, texts[n].mv_size, fresh);
    }
    if (p->aggs) profile_mark_dirty(e, p);
  }
  free(texts);
  struct jlog_line l;
  jlog_begin(&l, JLOG_INFO, "aggregates backfilled from stored timelines");
  jlog_u64(&l, "aggregates", n_fresh);
  jlog_u64(&l, "entries", n_entries);
  jlog_end(&l);
  free(fresh);
}

/* An old timeline entry being moved: its new order, its links, and its JSON text (pointing
   into the map: the old table's pages are not written until it is dropped at the end). */
struct moved {
  uint64_t ord, prev, chain;
  const char *json;
  size_t len;
};

static int cmp_moved(const void *a, const void *b) {
  uint64_t x = ((const struct moved *)a)->ord, y = ((const struct moved *)b)->ord;
  return (x > y) - (x < y);
}

/* Links one profile key's entries (any order) into a chain, oldest first. Returns how many
   are kept (an order seen twice is kept once). */
static size_t link_chain(struct moved *v, size_t n, struct tl_chain *out) {
  qsort(v, n, sizeof(*v), cmp_moved);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k && v[i].ord == v[k - 1].ord) continue;
    v[k] = v[i];
    if (!out->id) out->id = v[k].ord;
    v[k].prev = out->head;
    v[k].chain = out->id;
    out->head = v[k].ord;
    k++;
  }
  return k;
}

/*
 * Stores written before the timeline chains kept each entry under "profile key, NUL, order
 * (lsn << 16 | index | 0x8000 if not in the recent ring)". Each key's entries become a chain
 * in tlog, with orders in today's encoding; every profile row is rewritten with its chains'
 * heads, and the old database is emptied, in one transaction (a crash leaves the old store).
 * Entries under keys no profile refers to any more are dropped. Two passes: the old table in
 * its key order, linking each key's entries; then all of them appended to tlog in order.
 */
static int migrate_timeline(struct engine *e) {
  struct store *st = e->opt.store;
  struct smap chains; /* profile key -> struct tl_chain */
  smap_init(&chains);
  size_t it = 0;
  const struct smap_slot *s;
  while (smap_next(&e->profiles, &it, &s)) {
    struct profile *p = s->val;
    for (size_t i = 0; i <= p->n_merged; i++) {
      const char *key = i ? p->merged_keys[i - 1] : p->key;
      void **slot = smap_upsert(&chains, key, strlen(key), NULL);
      if (!*slot) *slot = xcalloc(1, sizeof(struct tl_chain));
    }
  }
  MDB_txn *txn = store_begin(st, 0);
  MDB_cursor *cur;
  mdb_cursor_open(txn, st->timeline, &cur);
  MDB_val k, v;
  struct moved *all = NULL;
  size_t n = 0, cap = 0, group = 0; /* all[group, n) are the current key's */
  struct tl_chain *in = NULL;      /* the chain of the key being read */
  const char *key = NULL;
  size_t key_len = 0;
  for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const char *kp = k.mv_data;
    size_t pn = r == 0 && k.mv_size > 9 ? k.mv_size - 9 : 0;
    int same = r == 0 && key && pn == key_len && !memcmp(kp, key, pn);
    if (!same) { /* the previous key's entries are all read */
      if (n > group) n = group + link_chain(all + group, n - group, in);
      group = n;
    }
    if (r) break;
    if (!pn || kp[pn] != '\0') continue;
    if (!same) {
      key = kp; /* in the map, like the values */
      key_len = pn;
      in = smap_get(&chains, kp, pn);
    }
    if (!in) continue;
    uint64_t old = be64(kp + pn + 1);
    if (old >> 62) continue; /* no LSN that large was ever written */
    if (n == cap) all = xrealloc(all, (cap = cap ? 2 * cap : 4096) * sizeof(*all));
    /* the same order, the flag moved from bit 15 to bit 0 */
    all[n++] = (struct moved){(old & ~(uint64_t)0x8000) << 1 | (old & 0x8000 ? EVCOPY_NOT_RECENT : 0),
                              0, 0, v.mv_data, v.mv_size};
  }
  mdb_cursor_close(cur);
  qsort(all, n, sizeof(*all), cmp_moved);
  int rc = 0;
  size_t moved = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    if (i && all[i].ord == all[i - 1].ord) continue; /* two customers' (the old layout let them) */
    unsigned char kb[8];
    tl_key(all[i].ord, kb);
    MDB_val tk = {8, kb}, tv = {TL_VAL_HEAD + all[i].len, NULL};
    if ((rc = mdb_put(txn, st->tlog, &tk, &tv, MDB_APPEND | MDB_RESERVE))) {
      rc = store_fail("migrate timeline", rc);
      break;
    }
    memcpy(tv.mv_data, &all[i].prev, 8);
    memcpy((char *)tv.mv_data + 8, &all[i].chain, 8);
    memcpy((char *)tv.mv_data + TL_VAL_HEAD, all[i].json, all[i].len);
    moved++;
  }
  /* Every stored entry is below the stored sequence, as after a checkpoint (stage_settle drops
     entries above it). */
  uint64_t seq = 0;
  store_get_u64(txn, st, "timeline_seq", &seq);
  if (!rc && n && (all[n - 1].ord >> 1) + 1 > seq)
    rc = store_put_u64(txn, st, "timeline_seq", (all[n - 1].ord >> 1) + 1);
  free(all);
  struct buf b;
  buf_init(&b, 0);
  it = 0;
  while (!rc && smap_next(&e->profiles, &it, &s)) {
    struct profile *p = s->val;
    p->tl = *(struct tl_chain *)smap_get(&chains, p->key, strlen(p->key));
    for (size_t i = 0; i < p->n_merged; i++)
      p->merged_tl[i] = *(struct tl_chain *)smap_get(&chains, p->merged_keys[i],
                                                       strlen(p->merged_keys[i]));
    buf_clear(&b);
    encode_profile(e, p, &b);
    MDB_val pk = {strlen(p->key), p->key}, pv = {b.len, b.ptr};
    if ((rc = mdb_put(txn, st->profiles, &pk, &pv, 0))) rc = store_fail("migrate profile", rc);
  }
  buf_release(&b);
  if (!rc && (rc = mdb_drop(txn, st->timeline, 0))) rc = store_fail("migrate timeline", rc);
  if (rc) mdb_txn_abort(txn);
  else rc = store_commit(txn);
  it = 0;
  while (smap_next(&chains, &it, &s)) free(s->val);
  smap_release(&chains);
  struct jlog_line l;
  jlog_begin(&l, rc ? JLOG_ERROR : JLOG_INFO, "timeline moved to its log-ordered layout");
  jlog_u64(&l, "entries", moved);
  jlog_u64(&l, "profiles", e->profiles.len);
  jlog_end(&l);
  return rc;
}

int engine_load(struct engine *e) {
  struct store *st = e->opt.store;
  /* What a checkpoint left half done: moved in, or dropped (see stage_settle). */
  struct store_slicer sl;
  store_slice_begin(&sl, st, 0);
  int settled = stage_settle(&sl);
  if (settled) {
    store_slice_abort(&sl);
    return settled;
  }
  if ((settled = store_slice_commit(&sl, 0))) return settled;
  MDB_txn *txn = store_begin(st, 1);
  uint64_t v;
  if (store_get_u64(txn, st, "applied_lsn", &v) == 0) e->applied_lsn = v;
  if (store_get_u64(txn, st, "clock_ms", &v) == 0) e->clock_ms = (int64_t)v;
  if (store_get_u64(txn, st, "messages", &v) == 0) e->n_messages = v;
  if (store_get_u64(txn, st, "merges", &v) == 0) e->n_merges = v;
  if (store_get_u64(txn, st, "duplicates", &v) == 0) e->n_duplicates = v;
  if (store_get_u64(txn, st, "suppressed", &v) == 0) e->n_suppressed = v;
  if (store_get_u64(txn, st, "deleted", &v) == 0) e->n_deleted = v;
  if (store_get_u64(txn, st, "purge_lsn", &v) == 0) {
    e->purge_lsn = v;
    if (e->opt.log) evlog_purge(e->opt.log, v); /* again: it may not have happened */
  }
  e->checkpoint_lsn = e->applied_lsn;
  atomic_store(&e->checkpoint_pub, e->applied_lsn);
  int rc = load_journeys(e, txn);
  if (rc) {
    mdb_txn_abort(txn);
    return rc;
  }
  MDB_cursor *cur;
  mdb_cursor_open(txn, st->dedup, &cur);
  MDB_val dk, dv;
  for (int r = mdb_cursor_get(cur, &dk, &dv, MDB_FIRST); r == 0;
       r = mdb_cursor_get(cur, &dk, &dv, MDB_NEXT)) {
    if (dk.mv_size != 8 || dv.mv_size != 16) continue;
    uint64_t h;
    int64_t t;
    memcpy(&h, dv.mv_data, 8);
    memcpy(&t, (const char *)dv.mv_data + 8, 8);
    dedup_load(&e->dedup, be64(dk.mv_data), h, t);
  }
  mdb_cursor_close(cur);
  e->dedup_stored_first = e->dedup.first_seq;
  e->dedup_stored_end = dedup_end(&e->dedup);
  engine_load_suppressed(e, txn);
  mdb_cursor_open(txn, st->profiles, &cur);
  MDB_val k, val;
  size_t n = 0;
  for (int r = mdb_cursor_get(cur, &k, &val, MDB_FIRST); r == 0;
       r = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
    struct profile *p = decode_profile(e, val.mv_data, val.mv_size);
    if (!p) {
      jlog(JLOG_ERROR, "corrupt profile in checkpoint", NULL, NULL);
      rc = BATON_ECORRUPT;
      break;
    }
    *smap_upsert(&e->profiles, p->key, strlen(p->key), NULL) = p;
    profile_index(e, p);
    n++;
  }
  mdb_cursor_close(cur);
  MDB_stat old_tl;
  if (!rc && mdb_stat(txn, st->timeline, &old_tl) == 0 && old_tl.ms_entries) {
    /* A store from before the timeline chains: moved over once, in its own transaction. */
    mdb_txn_abort(txn);
    rc = migrate_timeline(e);
    txn = store_begin(st, 1);
  }
  /* Orders go on from the checkpoint's (so replay gives the entries after it the same ones),
     and in any case after every stored entry (a store moved over from the old layout). */
  if (store_get_u64(txn, st, "timeline_seq", &v) == 0 && v > e->tl_seq) e->tl_seq = v;
  MDB_cursor *tc;
  MDB_val tk, tv;
  mdb_cursor_open(txn, st->tlog, &tc);
  if (!rc && mdb_cursor_get(tc, &tk, &tv, MDB_LAST) == 0 && tk.mv_size == 8) {
    uint64_t last = be64(tk.mv_data);
    if ((last >> 1) + 1 > e->tl_seq) e->tl_seq = (last >> 1) + 1;
  }
  mdb_cursor_close(tc);
  size_t it = 0;
  const struct smap_slot *s;
  while (!rc && smap_next(&e->profiles, &it, &s)) load_ring(e, txn, s->val);
  if (!rc) backfill_aggregates(e, txn);
  mdb_txn_abort(txn);
  if (rc) return rc;
  it = 0;
  while (smap_next(&e->profiles, &it, &s)) e->n_events += ((struct profile *)s->val)->n_events;
  struct jlog_line l;
  jlog_begin(&l, JLOG_INFO, "checkpoint loaded");
  jlog_u64(&l, "applied_lsn", e->applied_lsn);
  jlog_u64(&l, "profiles", n);
  jlog_u64(&l, "journeys", e->journeys.len);
  jlog_u64(&l, "timers", e->timers.len);
  jlog_end(&l);
  return 0;
}

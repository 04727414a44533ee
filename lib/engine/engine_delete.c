/*
 * Deleting a customer on request (a right-to-erasure request): applied from a
 * log record like everything else, so replay deletes at the same point.
 *
 * In memory, at once: the profile, its identities, journey runs and timers,
 * and its timeline entries not yet stored. At the next checkpoint, in the
 * store: the profile rows under its key and the keys of profiles merged into
 * it, every stored entry of their timeline chains, and the delivery ledger and
 * outbox rows of every message it was sent (found on those timelines). In the event log: the
 * engine asks for everything up to the deletion record to be purged once
 * checkpointed (evlog_purge), so no retained copy of its events is left.
 *
 * With suppression, the SHA-256 of each identity key is kept (never the
 * identity itself), and later events carrying one of those userIds or
 * anonymousIds are dropped.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/common.h"
#include "util/jlog.h"

static void sha256_hex(const char *s, size_t n, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s, n, md, &len, EVP_sha256(), NULL);
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

static int key_suppressed(struct engine *e, const char *prefix, const char *id, size_t len) {
  char key[1100], h[65];
  size_t pn = strlen(prefix);
  if (len + pn >= sizeof(key)) return 0;
  memcpy(key, prefix, pn);
  memcpy(key + pn, id, len);
  sha256_hex(key, pn + len, h);
  return smap_get(&e->suppressed, h, 64) != NULL;
}

int engine_is_suppressed(struct engine *e, const struct rec_event *ev) {
  if (!e->suppressed.len) return 0;
  return (ev->user_id.len && key_suppressed(e, "u:", ev->user_id.ptr, ev->user_id.len)) ||
         (ev->anonymous_id.len &&
          key_suppressed(e, "a:", ev->anonymous_id.ptr, ev->anonymous_id.len));
}

static void add_msg(struct pending_delete *d, const char *id, size_t len) {
  for (size_t i = 0; i < d->n_msgs; i++)
    if (strlen(d->msg_ids[i]) == len && !memcmp(d->msg_ids[i], id, len)) return;
  d->msg_ids = xrealloc(d->msg_ids, (d->n_msgs + 1) * sizeof(*d->msg_ids));
  d->msg_ids[d->n_msgs++] = xstrndup(id, len);
}

/* Finds "messageId":"msg_..." in a timeline entry of type baton.message. */
static void scan_message_id(struct pending_delete *d, const char *json, size_t len) {
  static const char type[] = "\"type\":\"baton.message\"", mid[] = "\"messageId\":\"";
  if (!memmem(json, len, type, sizeof(type) - 1)) return;
  const char *p = memmem(json, len, mid, sizeof(mid) - 1);
  if (!p) return;
  p += sizeof(mid) - 1;
  const char *end = memchr(p, '"', (size_t)(json + len - p));
  if (end && end - p == OUTMSG_ID_LEN) add_msg(d, p, OUTMSG_ID_LEN);
}

void engine_apply_delete(struct engine *e, const struct rec_profile *pr) {
  char by[80], id[1100];
  snprintf(by, sizeof(by), "%.*s", (int)MIN(pr->by.len, sizeof(by) - 1), pr->by.ptr);
  if (pr->id.len >= sizeof(id)) return;
  memcpy(id, pr->id.ptr, pr->id.len);
  id[pr->id.len] = '\0';
  struct profile *p = engine_find_profile_by(e, by, id, pr->id.len);
  if (!p) return; /* already gone: deleting twice is harmless */
  cJSON *in = cJSON_ParseWithLength(pr->json.ptr, pr->json.len);
  int suppress = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "suppress"));
  cJSON_Delete(in);

  e->deletes = xrealloc(e->deletes, (e->n_deletes + 1) * sizeof(*e->deletes));
  struct pending_delete *d = &e->deletes[e->n_deletes++];
  memset(d, 0, sizeof(*d));
  d->n_keys = d->n_chains = 1 + p->n_merged;
  d->keys = xcalloc(d->n_keys, sizeof(*d->keys));
  d->chains = xcalloc(d->n_chains, sizeof(*d->chains));
  d->keys[0] = xstrdup(p->key);
  d->chains[0] = p->tl;
  for (size_t i = 0; i < p->n_merged; i++) {
    d->keys[1 + i] = xstrdup(p->merged_keys[i]);
    d->chains[1 + i] = p->merged_tl[i];
  }
  /* The chains' newest links may be entries never stored (dropped below) or being stored by
     the checkpoint in flight: their links are kept to walk past them. */
  d->queued = profile_queued_links(p, &d->n_queued);
  for (uint32_t i = 0; i < p->msg_n; i++)
    add_msg(d, p->msgs[(p->msg_head + i) % PROFILE_MAX_MSGS], OUTMSG_ID_LEN);

  /* Timeline entries not yet stored: never written now. */
  for (struct evcopy *c = p->unstored; c; c = c->next_unstored)
    scan_message_id(d, c->data, c->len);
  profile_drop_unstored(e, p);
  /* Journeys: runs end, timers go. */
  for (struct jmember *m = p->members; m; m = m->next) {
    struct run *r = m->run;
    if (!r) continue;
    if (timer_armed(&r->timer)) r->jv->at_step[r->step]--;
    r->jv->active--;
    e->n_active_runs--;
    run_free(e, r);
    m->run = NULL;
  }
  for (size_t i = 0; i < p->n_idents; i++) {
    const char *k = p->idents[i];
    if (smap_get(&e->ids, k, strlen(k)) == p) smap_del(&e->ids, k, strlen(k));
    if (suppress) {
      char h[65];
      sha256_hex(k, strlen(k), h);
      int inserted;
      *smap_upsert(&e->suppressed, h, 64, &inserted) = (void *)1;
      if (inserted) {
        atomic_fetch_add(&e->suppressed_n, 1);
        e->supp_new = xrealloc(e->supp_new, (e->n_supp_new + 1) * sizeof(*e->supp_new));
        memcpy(e->supp_new[e->n_supp_new++], h, 65);
      }
    }
  }
  if (e->opt.cancel && d->n_msgs) e->opt.cancel(e->opt.sink_arg, (const char *const *)d->msg_ids, d->n_msgs);
  smap_del(&e->profiles, p->key, strlen(p->key));
  p->deleted = 1;
  profile_mark_dirty(e, p); /* the checkpoint deletes its row, then frees it */
  e->n_events -= MIN(e->n_events, p->n_events);
  e->n_deleted++;
  e->purge_lsn = MAX(e->purge_lsn, e->cur_lsn + 1);
  if (e->opt.log) evlog_purge(e->opt.log, e->cur_lsn + 1);
  struct jlog_line l;
  jlog_begin(&l, JLOG_INFO, "customer deleted on request");
  jlog_u64(&l, "lsn", e->cur_lsn);
  jlog_u64(&l, "identities", p->n_idents);
  jlog_u64(&l, "suppressed", (uint64_t)suppress);
  jlog_end(&l);
}

int engine_checkpoint_deletes(struct store *st, MDB_txn *txn, struct pending_delete *deletes,
                              size_t n_deletes, char (*supp_new)[65], size_t n_supp_new,
                              int64_t clock_ms) {
  for (size_t i = 0; i < n_deletes; i++) {
    struct pending_delete *d = &deletes[i];
    for (size_t c = 0; c < d->n_chains; c++) {
      /* Each chain from its head: stored entries go (their links lead on), queued ones that
         were never stored are passed by their kept links. */
      uint64_t ord = d->chains[c].head;
      while (ord) {
        uint64_t prev, chain;
        MDB_val json;
        int rc = tl_get(txn, st, ord, &prev, &chain, &json);
        if (rc == 0 && chain == d->chains[c].id) {
          scan_message_id(d, json.mv_data, json.mv_size);
          unsigned char kb[8];
          tl_key(ord, kb);
          MDB_val key = {8, kb};
          if ((rc = mdb_del(txn, st->tlog, &key, NULL))) return store_fail("delete timeline", rc);
        } else if ((prev = tl_link_prev(d->queued, d->n_queued, ord)) == UINT64_MAX) {
          break; /* not one of its links: the chain ends here */
        }
        if (prev >= ord) break;
        ord = prev;
      }
    }
    for (size_t k = 0; k < d->n_keys; k++) {
      MDB_val pk = {strlen(d->keys[k]), d->keys[k]};
      int rc = mdb_del(txn, st->profiles, &pk, NULL);
      if (rc && rc != MDB_NOTFOUND) return store_fail("delete profile", rc);
    }
    for (size_t m = 0; m < d->n_msgs; m++) {
      MDB_val mk = {strlen(d->msg_ids[m]), d->msg_ids[m]};
      mdb_del(txn, st->deliveries, &mk, NULL);
      mdb_del(txn, st->outbox, &mk, NULL);
    }
  }
  if (n_deletes) {
    /* LMDB keeps freed pages' bytes: the store is rewritten at the next stop or start. */
    int rc = store_put_u64(txn, st, "compact_pending", 1);
    if (rc) return rc;
  }
  for (size_t i = 0; i < n_supp_new; i++) {
    MDB_val k = {64, supp_new[i]}, v = {8, &clock_ms};
    int rc = mdb_put(txn, st->suppressed, &k, &v, 0);
    if (rc) return store_fail("put suppressed", rc);
  }
  return 0;
}

void engine_pending_delete_free(struct pending_delete *d) {
  for (size_t k = 0; k < d->n_keys; k++) free(d->keys[k]);
  free(d->keys);
  free(d->chains);
  free(d->queued);
  for (size_t m = 0; m < d->n_msgs; m++) free(d->msg_ids[m]);
  free(d->msg_ids);
}

void engine_deletes_done(struct engine *e) {
  for (size_t i = 0; i < e->n_deletes; i++) engine_pending_delete_free(&e->deletes[i]);
  free(e->deletes);
  e->deletes = NULL;
  e->n_deletes = 0;
  free(e->supp_new);
  e->supp_new = NULL;
  e->n_supp_new = 0;
}

int engine_load_suppressed(struct engine *e, MDB_txn *txn) {
  MDB_cursor *cur;
  mdb_cursor_open(txn, e->opt.store->suppressed, &cur);
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    if (k.mv_size == 64) {
      *smap_upsert(&e->suppressed, k.mv_data, 64, NULL) = (void *)1;
      atomic_fetch_add(&e->suppressed_n, 1);
    }
  mdb_cursor_close(cur);
  return 0;
}

int engine_identity_suppressed(struct engine *e, const char *user_id, size_t ulen,
                               const char *anon_id, size_t alen) {
  if (!atomic_load(&e->suppressed_n)) return 0; /* the common case: no lock at all */
  struct rec_event ev = {.user_id = {user_id, (uint32_t)ulen},
                         .anonymous_id = {anon_id, (uint32_t)alen}};
  pthread_rwlock_rdlock(&e->lock);
  int r = engine_is_suppressed(e, &ev);
  pthread_rwlock_unlock(&e->lock);
  return r;
}

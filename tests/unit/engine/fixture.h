/*
 * Test fixture for engine tests: an in-memory "log" of encoded records, a
 * message sink that records what the engine sends, and helpers to apply
 * records. Header-only, included by each engine test binary.
 */
#ifndef BATON_TESTS_ENGINE_FIXTURE_H
#define BATON_TESTS_ENGINE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/record.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"

#define T0 1800000000000LL /* engine clock origin for the tests */

struct sent {
  char id[OUTMSG_ID_LEN + 1];
  char *body;
};

struct sink {
  struct sent v[256];
  size_t n;
};

static inline void collect(void *arg, struct outmsg *m) {
  struct sink *s = arg;
  assert_true(s->n < 256);
  memcpy(s->v[s->n].id, m->id, sizeof(m->id));
  s->v[s->n].body = strdup(m->body);
  s->n++;
  outmsg_free(m);
}

static inline void sink_clear(struct sink *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i].body);
  s->n = 0;
}

/* The test's log: records kept in memory, applied in order. */
struct recs {
  struct buf data[64];
  size_t n;
};

static inline void add_event_ids(struct recs *r, int kind, const char *uid, const char *aid,
                          const char *name, int64_t t, const char *json) {
  char mid[48]; /* unique per event, so de-duplication leaves the scenarios alone */
  snprintf(mid, sizeof(mid), "m%zu-%lld", r->n, (long long)t);
  struct buf *b = &r->data[r->n++];
  buf_init(b, 0);
  struct rec_event e = {.kind = (uint8_t)kind,
                        .received_ms = t,
                        .timestamp_ms = t,
                        .user_id = {uid, (uint32_t)strlen(uid)},
                        .anonymous_id = {aid, (uint32_t)strlen(aid)},
                        .message_id = {mid, (uint32_t)strlen(mid)},
                        .name = {name, (uint32_t)strlen(name)},
                        .source = {"test", 4},
                        .json = {json, (uint32_t)strlen(json)}};
  assert_int_equal(rec_event_encode(b, &e), 0);
}

static inline void add_journey(struct recs *r, const char *id, const char *src, int64_t t) {
  struct buf *b = &r->data[r->n++];
  buf_init(b, 0);
  struct rec_journey j = {.op = JOP_PUBLISH,
                          .time_ms = t,
                          .id = {id, (uint32_t)strlen(id)},
                          .source = {src, (uint32_t)strlen(src)}};
  assert_int_equal(rec_journey_encode(b, &j), 0);
}

static inline void add_tick(struct recs *r, int64_t t) {
  struct buf *b = &r->data[r->n++];
  buf_init(b, 0);
  assert_int_equal(rec_tick_encode(b, t), 0);
}

static inline void recs_release(struct recs *r) {
  for (size_t i = 0; i < r->n; i++) buf_release(&r->data[i]);
}

static inline void apply_range(struct engine *e, struct recs *r, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    assert_int_equal(engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len), 0);
}

static inline void add_event(struct recs *r, int kind, const char *uid, const char *name,
                             int64_t t, const char *json) {
  add_event_ids(r, kind, uid, "", name, t, json);
}

/* Removes a test's temporary directory. */
static inline void rm_rf(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static inline void add_profile_op(struct recs *r, int op, const char *id, const char *item,
                                  int64_t t, const char *json) {
  struct buf *b = &r->data[r->n++];
  buf_init(b, 0);
  struct rec_profile pr = {.op = (uint8_t)op,
                           .time_ms = t,
                           .by = {"", 0},
                           .id = {id, (uint32_t)strlen(id)},
                           .item_id = {item, (uint32_t)strlen(item)},
                           .json = {json, (uint32_t)strlen(json)}};
  assert_int_equal(rec_profile_encode(b, &pr), 0);
}

/* Rows of a store table whose key or value contains needle. */
static inline size_t rows_with(struct store *st, MDB_dbi dbi, const char *needle) {
  MDB_txn *txn = store_begin(st, 1);
  MDB_cursor *cur;
  mdb_cursor_open(txn, dbi, &cur);
  MDB_val k, v;
  size_t n = 0;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    if (memmem(k.mv_data, k.mv_size, needle, strlen(needle)) ||
        memmem(v.mv_data, v.mv_size, needle, strlen(needle)))
      n++;
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return n;
}

/* A deletion request for id (found by `by`, "" for userId or anonymousId). */
static inline void add_delete(struct recs *r, const char *by, const char *id, int suppress,
                              int64_t t) {
  struct buf *b = &r->data[r->n++];
  buf_init(b, 0);
  const char *json = suppress ? "{\"suppress\":true}" : "{\"suppress\":false}";
  struct rec_profile pr = {.op = POP_DELETE, .time_ms = t, .by = {by, (uint32_t)strlen(by)},
                           .id = {id, (uint32_t)strlen(id)}, .item_id = {"delete", 6},
                           .json = {json, (uint32_t)strlen(json)}};
  assert_int_equal(rec_profile_encode(b, &pr), 0);
}

#endif

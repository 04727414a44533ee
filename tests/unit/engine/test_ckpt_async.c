/*
 * Checkpoints written by the writer thread while the engine goes on applying:
 * a merge, new events and a deletion during the write; queries see every
 * timeline entry exactly once before, during and after; what is stored is
 * what a synchronous checkpoint would have stored. And the recent ring's reuse
 * of its oldest copy: only when nothing else (a checkpoint's queue, a checkpoint
 * being written) holds it.
 */
#include "engine/fixture.h"
#include "engine/engine_int.h"
#include "util/jlog.h"

/* Pages through id's timeline (3 per page) and returns the "n" values seen, as a bit set;
   fails if one is seen twice or out of order. */
static unsigned timeline_ns(struct engine *e, const char *id) {
  unsigned seen = 0;
  uint64_t cursor = 0;
  int last = 1 << 30;
  for (int pages = 0; pages < 20; pages++) {
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(engine_profile_events_json(e, NULL, id, 3, cursor, &b), 0);
    for (char *p = b.ptr; (p = strstr(p, "\"n\":")); p += 4) {
      int n = atoi(p + 4);
      assert_true(n < last); /* newest first */
      assert_false(seen & (1u << n));
      seen |= 1u << n;
      last = n;
    }
    char *next = strstr(b.ptr, "\"next\":\"");
    cursor = next ? strtoull(next + 8, NULL, 10) : 0;
    buf_release(&b);
    if (!next) return seen;
  }
  fail_msg("timeline of %s does not end", id);
  return 0;
}

#define BITS(...) bits_of((int[]){__VA_ARGS__, -1})
static unsigned bits_of(const int *v) {
  unsigned b = 0;
  for (; *v >= 0; v++) b |= 1u << *v;
  return b;
}

static void add_track(struct recs *r, const char *uid, const char *aid, int n, int64_t t) {
  char json[160];
  snprintf(json, sizeof(json), "{\"type\":\"track\",\"userId\":\"%s\",\"anonymousId\":\"%s\","
           "\"event\":\"E\",\"n\":%d}", uid, aid, n);
  add_event_ids(r, EV_TRACK, uid, aid, "E", t, json);
}

static void test_apply_while_writing(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-ckpt-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct sink s = {0};
  struct engine_options o = {.sink = collect, .sink_arg = &s, .recent_events = 2, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  struct recs *r = calloc(1, sizeof(*r));
  add_track(r, "alice", "", 1, T0 + 1);
  add_track(r, "alice", "", 2, T0 + 2);
  add_track(r, "alice", "", 3, T0 + 3);
  add_track(r, "", "b", 4, T0 + 4);
  add_track(r, "", "b", 5, T0 + 5);
  add_track(r, "carl", "", 6, T0 + 6);
  size_t first = r->n;
  add_track(r, "alice", "", 7, T0 + 7);
  add_track(r, "alice", "b", 8, T0 + 8); /* anonymous b is merged into alice */
  add_track(r, "carl", "", 9, T0 + 9);
  add_delete(r, "", "carl", 0, T0 + 10);
  add_track(r, "dora", "", 10, T0 + 11);
  add_track(r, "carl", "", 11, T0 + 12); /* carl comes back: a new customer */
  apply_range(e, r, 0, first);

  /* The test holds LMDB's write lock, so the writer waits in the middle of the checkpoint. */
  engine_ckpt_writer_start(e);
  MDB_txn *hold = store_begin(st, 0);
  engine_checkpoint_async(e, 1);
  assert_int_equal(e->ckpt_in_flight, 1);
  apply_range(e, r, first, r->n);
  engine_checkpoint_async(e, 1); /* one at a time: this one is not started */
  assert_int_equal(engine_ckpt_poll(e, 0), 0);
  assert_int_equal(timeline_ns(e, "alice"), BITS(1, 2, 3, 4, 5, 7, 8));
  assert_int_equal(timeline_ns(e, "b") /* by anonymousId */, BITS(1, 2, 3, 4, 5, 7, 8));
  assert_int_equal(timeline_ns(e, "dora"), BITS(10));
  assert_int_equal(timeline_ns(e, "carl"), BITS(11));
  mdb_txn_abort(hold);

  assert_int_equal(engine_ckpt_poll(e, 1), 1);
  assert_int_equal(e->checkpoint_lsn, first);
  assert_int_equal(timeline_ns(e, "alice"), BITS(1, 2, 3, 4, 5, 7, 8));
  /* Stored by the first checkpoint: what was applied before its snapshot, carl's too. */
  assert_int_equal(rows_with(st, st->tlog, "\"n\":4"), 1);
  assert_int_equal(rows_with(st, st->tlog, "\"n\":7"), 0);
  assert_int_equal(rows_with(st, st->tlog, "carl"), 1);

  /* The next one, synchronous, stores the rest and removes what carl's deletion covers, not
     what came after it. */
  assert_int_equal(engine_checkpoint(e), 0);
  assert_int_equal(e->checkpoint_lsn, r->n);
  assert_int_equal(e->n_unstored, 0);
  assert_int_equal(rows_with(st, st->tlog, "carl"), 1);
  assert_int_equal(rows_with(st, st->tlog, "\"n\":11"), 1);
  assert_int_equal(rows_with(st, st->tlog, "\"n\":6"), 0);
  assert_int_equal(rows_with(st, st->profiles, "carl"), 1);
  assert_int_equal(rows_with(st, st->tlog, "\"n\":8"), 1);
  assert_int_equal(rows_with(st, st->profiles, "a:b"), 1); /* alice's identity, no row of its own */
  assert_int_equal(timeline_ns(e, "alice"), BITS(1, 2, 3, 4, 5, 7, 8));
  engine_ckpt_writer_stop(e);
  engine_close(e);

  /* A restart from the store alone gives the same timelines. */
  assert_int_equal(engine_open(&o, &e), 0);
  assert_int_equal(timeline_ns(e, "alice"), BITS(1, 2, 3, 4, 5, 7, 8));
  assert_int_equal(timeline_ns(e, "b"), BITS(1, 2, 3, 4, 5, 7, 8));
  assert_int_equal(timeline_ns(e, "dora"), BITS(10));
  assert_int_equal(timeline_ns(e, "carl"), BITS(11));
  engine_close(e);
  recs_release(r);
  free(r);
  sink_clear(&s);
  store_close(st);
  rm_rf(dir);
}

/* The "n" values of id's recent events as the profile view lists them (newest first), e.g. "8,7,6". */
static void recent_ns(struct engine *e, const char *id, char *out, size_t cap) {
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, id, &b), 0);
  char *from = strstr(b.ptr, "\"events\":["), *to = from ? strstr(from, "],\"journeys\"") : NULL;
  assert_non_null(to);
  size_t k = 0;
  out[0] = '\0';
  for (char *p = from; (p = strstr(p, "\"n\":")) && p < to; p += 4)
    k += (size_t)snprintf(out + k, cap - k, "%s%d", k ? "," : "", atoi(p + 4));
  buf_release(&b);
}

static void add_track_pad(struct recs *r, const char *uid, int n, size_t pad, int64_t t) {
  char json[600], p[400];
  memset(p, 'x', pad);
  p[pad] = '\0';
  snprintf(json, sizeof(json), "{\"type\":\"track\",\"userId\":\"%s\",\"event\":\"E\",\"n\":%d,"
           "\"p\":\"%s\"}", uid, n, p);
  add_event_ids(r, EV_TRACK, uid, "", "E", t, json);
}

static void test_ring_reuse(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-ring-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct engine_options o = {.recent_events = 3, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  struct recs *r = calloc(1, sizeof(*r));
  for (int n = 1; n <= 8; n++) add_track_pad(r, "ada", n, n == 6 ? 300 : 0, T0 + n);
  char got[64];
  apply_range(e, r, 0, 4); /* 1 leaves the ring still queued for a checkpoint: not reused */
  recent_ns(e, "ada", got, sizeof(got));
  assert_string_equal(got, "4,3,2");
  assert_int_equal(engine_checkpoint(e), 0); /* the queue lets go: the ring alone holds 2, 3, 4 */
  apply_range(e, r, 4, 5);                   /* 5 takes 2's copy */
  engine_ckpt_writer_start(e);
  MDB_txn *hold = store_begin(st, 0); /* the writer waits with 5 in its snapshot */
  engine_checkpoint_async(e, 1);
  assert_int_equal(e->ckpt_in_flight, 1);
  apply_range(e, r, 5, 8); /* 6 is too long for 3's copy, 7 takes 4's, 8 must not take 5's */
  recent_ns(e, "ada", got, sizeof(got));
  assert_string_equal(got, "8,7,6");
  mdb_txn_abort(hold);
  assert_int_equal(engine_ckpt_poll(e, 1), 1);
  assert_int_equal(rows_with(st, st->tlog, "\"n\":5,"), 1);
  assert_int_equal(engine_checkpoint(e), 0);
  engine_ckpt_writer_stop(e);
  assert_int_equal(timeline_ns(e, "ada"), BITS(1, 2, 3, 4, 5, 6, 7, 8));
  engine_close(e);

  assert_int_equal(engine_open(&o, &e), 0); /* the ring as the store rebuilds it */
  recent_ns(e, "ada", got, sizeof(got));
  assert_string_equal(got, "8,7,6");
  assert_int_equal(timeline_ns(e, "ada"), BITS(1, 2, 3, 4, 5, 6, 7, 8));
  engine_close(e);
  recs_release(r);
  free(r);
  store_close(st);
  rm_rf(dir);
}

int main(void) {
  jlog_set_level(JLOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_while_writing),
      cmocka_unit_test(test_ring_reuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* messageId de-duplication: the window, eviction by count and age, and checkpoint round trips. */
#include "engine/dedup.h"
#include "engine/fixture.h"
#include "util/jlog.h"

static void test_window(void **state) {
  (void)state;
  struct dedup d;
  dedup_init(&d, 1000, 60000);
  for (uint64_t i = 1; i <= 5000; i++) assert_int_equal(dedup_check(&d, i * 7919, (int64_t)i), 0);
  /* only the newest 999 remain after inserting beyond max */
  assert_int_equal(dedup_check(&d, 5000 * 7919, 5001), 1);
  assert_int_equal(dedup_check(&d, 4500 * 7919, 5001), 1);
  assert_int_equal(dedup_check(&d, 100 * 7919, 5001), 0); /* evicted long ago: new again */
  /* age: everything older than 60 s goes */
  assert_int_equal(dedup_check(&d, 4999 * 7919, 5002 + 60000), 0);
  assert_true(d.n <= 2);
  dedup_release(&d);
}

static void add_track(struct recs *r, const char *mid, int64_t t) {
  struct buf *b = &r->data[r->n++];
  buf_init(b, 0);
  const char *json = "{\"type\":\"track\",\"userId\":\"kim\",\"event\":\"E\"}";
  struct rec_event ev = {.kind = EV_TRACK, .received_ms = t, .timestamp_ms = t,
                         .user_id = {"kim", 3}, .anonymous_id = {"", 0},
                         .message_id = {mid, (uint32_t)strlen(mid)}, .name = {"E", 1},
                         .source = {"web", 3}, .json = {json, (uint32_t)strlen(json)}};
  assert_int_equal(rec_event_encode(b, &ev), 0);
}

static uint64_t event_count(struct engine *e) {
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "kim", &b), 0);
  const char *p = strstr(b.ptr, "\"eventCount\":");
  uint64_t n = strtoull(p + 13, NULL, 10);
  buf_release(&b);
  return n;
}

/* m0..m29, then m10..m39, window of 25 ids: after round one it holds m5..m29,
   so m10..m29 are skipped as retries (20) and m30..m39 are new: 40 events. */
static void test_engine_dedup_and_replay(void **state) {
  (void)state;
  static struct recs r;
  char mid[16];
  r.n = 0;
  for (int i = 0; i < 30; i++) {
    snprintf(mid, sizeof(mid), "m%d", i);
    add_track(&r, mid, T0 + i);
  }
  for (int i = 10; i < 40; i++) {
    snprintf(mid, sizeof(mid), "m%d", i);
    add_track(&r, mid, T0 + 100 + i);
  }
  struct sink s = {0};
  struct engine_options o = {.sink = collect, .sink_arg = &s, .recent_events = 5, .dedup_max = 25};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  for (size_t i = 0; i < r.n; i++) assert_int_equal(engine_apply(e, i + 1, r.data[i].ptr, r.data[i].len), 0);
  struct engine_stats es;
  engine_get_stats(e, &es);
  uint64_t want = event_count(e);
  assert_int_equal(es.duplicates, 20);
  assert_int_equal(want, 40);
  engine_close(e);
  /* A checkpoint anywhere, a reload, and the rest replayed: the same decisions. */
  for (size_t k = 0; k <= r.n; k += 7) {
    char dir[] = "/tmp/baton-dedup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct store *st;
    assert_int_equal(store_open(dir, 1 << 26, &st), 0);
    o.store = st;
    assert_int_equal(engine_open(&o, &e), 0);
    for (size_t i = 0; i < k; i++) engine_apply(e, i + 1, r.data[i].ptr, r.data[i].len);
    assert_int_equal(engine_checkpoint(e), 0);
    engine_close(e);
    assert_int_equal(engine_open(&o, &e), 0);
    for (size_t i = k; i < r.n; i++) engine_apply(e, i + 1, r.data[i].ptr, r.data[i].len);
    assert_int_equal(event_count(e), want);
    engine_close(e);
    store_close(st);
    rm_rf(dir);
  }
  o.store = NULL;
  sink_clear(&s);
  recs_release(&r);
}

int main(void) {
  jlog_set_level(JLOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_window),
      cmocka_unit_test(test_engine_dedup_and_replay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

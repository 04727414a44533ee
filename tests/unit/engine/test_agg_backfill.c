/* A new aggregate is computed from stored timelines once, then kept up to date. */
#include "engine/fixture.h"
#include "util/jlog.h"

static char *aggs_of(struct engine *e, const char *id) {
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, id, &b), 0);
  char *a = strstr(b.ptr, "\"aggregates\":");
  char *end = a ? strchr(a, '}') : NULL;
  char *out = a && end ? strndup(a, (size_t)(end - a + 1)) : strdup("");
  buf_release(&b);
  return out;
}

static void test_backfill(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-aggbf-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct recs *r = calloc(1, sizeof(*r));
  add_event(r, EV_TRACK, "val", "Buy", T0, "{\"type\":\"track\",\"userId\":\"val\",\"event\":\"Buy\","
            "\"properties\":{\"amount\":30},\"timestamp\":\"2027-01-15T08:00:00.000Z\"}");
  add_event(r, EV_TRACK, "val", "Buy", T0 + 1, "{\"type\":\"track\",\"userId\":\"val\",\"event\":\"Buy\","
            "\"properties\":{\"amount\":12},\"timestamp\":\"2027-01-15T08:00:00.001Z\"}");
  add_event(r, EV_TRACK, "val", "Buy", T0 + 2, "{\"type\":\"track\",\"userId\":\"val\",\"event\":\"Buy\","
            "\"properties\":{\"amount\":8},\"timestamp\":\"2027-01-15T08:00:00.002Z\"}");
  /* 1. no aggregates configured: two events checkpointed, one only in the log */
  struct engine_options o = {.recent_events = 5, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  engine_apply(e, 1, r->data[0].ptr, r->data[0].len);
  engine_apply(e, 2, r->data[1].ptr, r->data[1].len);
  assert_int_equal(engine_checkpoint(e), 0);
  engine_close(e);
  /* 2. restart with a sum: backfilled from the two stored, the third replayed */
  struct agg_def defs[] = {{"spent", "Buy", "amount", AGG_SUM, 0}, {"buys", "Buy", NULL, AGG_COUNT, 0}};
  o.aggregates = defs;
  o.n_aggregates = 2;
  assert_int_equal(engine_open(&o, &e), 0);
  engine_apply(e, 3, r->data[2].ptr, r->data[2].len);
  char *a = aggs_of(e, "val");
  assert_string_equal(a, "\"aggregates\":{\"spent\":50,\"buys\":3}");
  free(a);
  assert_int_equal(engine_checkpoint(e), 0);
  engine_close(e);
  /* 3. restart again: not backfilled twice */
  assert_int_equal(engine_open(&o, &e), 0);
  a = aggs_of(e, "val");
  assert_string_equal(a, "\"aggregates\":{\"spent\":50,\"buys\":3}");
  free(a);
  engine_close(e);
  store_close(st);
  recs_release(r);
  free(r);
  rm_rf(dir);
}

int main(void) {
  jlog_set_level(JLOG_ERROR);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_backfill)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

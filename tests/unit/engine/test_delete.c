/* Deleting a customer: memory, store rows (profile, timelines, ledger, outbox), suppression. */
#include "engine/fixture.h"
#include "util/jlog.h"

static const char journey[] =
    "id: hello\ntrigger: {event: Go}\nsteps:\n"
    "  - {id: send, type: webhook, url: http://127.0.0.1:1/x}\n"
    "  - {id: pause, type: wait, duration: 1h}\n";

static void test_delete_everything(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-del-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct sink s = {0};
  struct engine_options o = {.sink = collect, .sink_arg = &s, .recent_events = 5, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  struct recs *r = calloc(1, sizeof(*r));
  add_journey(r, "hello", journey, T0);
  add_event_ids(r, EV_TRACK, "", "anon-q", "Go", T0 + 1,
                "{\"type\":\"track\",\"anonymousId\":\"anon-q\",\"event\":\"Go\",\"secret\":\"qqq1\"}");
  add_event(r, EV_IDENTIFY, "quinn", "", T0 + 2,
            "{\"type\":\"identify\",\"userId\":\"quinn\",\"traits\":{\"email\":\"q@x.io\",\"s\":\"qqq2\"}}");
  add_event(r, EV_TRACK, "other", "Go", T0 + 3, "{\"type\":\"track\",\"userId\":\"other\",\"event\":\"Go\"}");
  size_t first = r->n;
  /* anon-q merges into quinn; its run moves along */
  add_event_ids(r, EV_TRACK, "quinn", "anon-q", "Seen", T0 + 4,
                "{\"type\":\"track\",\"userId\":\"quinn\",\"anonymousId\":\"anon-q\",\"secret\":\"qqq3\"}");
  add_profile_op(r, POP_NOTE, "quinn", "n1", T0 + 5, "{\"text\":\"qqq4\"}");
  for (size_t i = 0; i < first; i++) engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len);
  assert_int_equal(engine_checkpoint(e), 0); /* some of it stored, some only in memory */
  for (size_t i = first; i < r->n; i++) engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len);
  size_t before = r->n;
  add_delete(r, "email", "Q@X.IO", 1, T0 + 6);
  add_event(r, EV_TRACK, "quinn", "Go", T0 + 7,
            "{\"type\":\"track\",\"userId\":\"quinn\",\"event\":\"Go\",\"secret\":\"qqq5\"}");
  add_event_ids(r, EV_TRACK, "", "anon-q", "Go", T0 + 8,
                "{\"type\":\"track\",\"anonymousId\":\"anon-q\",\"event\":\"Go\"}");
  for (size_t i = before; i < r->n; i++) engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len);
  struct engine_stats es;
  engine_get_stats(e, &es);
  assert_int_equal(es.deleted, 1);
  assert_int_equal(es.suppressed, 2); /* both later events dropped */
  assert_int_equal(es.profiles, 1);   /* only "other" */
  assert_int_equal(es.active_runs, 1); /* other's; quinn's ended */
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "quinn", &b), BATON_ENOENT);
  assert_int_equal(engine_profile_json(e, "anonymousId", "anon-q", &b), BATON_ENOENT);
  assert_int_equal(engine_profile_json(e, NULL, "other", &b), 0);
  buf_release(&b);
  assert_int_equal(engine_checkpoint(e), 0);
  /* Nothing of quinn's in any table. */
  assert_int_equal(rows_with(st, st->profiles, "quinn"), 0);
  assert_int_equal(rows_with(st, st->profiles, "anon-q"), 0);
  for (int i = 1; i <= 5; i++) {
    char needle[8];
    snprintf(needle, sizeof(needle), "qqq%d", i);
    assert_int_equal(rows_with(st, st->tlog, needle), 0);
    assert_int_equal(rows_with(st, st->profiles, needle), 0);
  }
  assert_int_equal(rows_with(st, st->tlog, "anon-q"), 0);
  assert_int_equal(rows_with(st, st->outbox, "anon-q"), 0);
  assert_true(rows_with(st, st->tlog, "\"userId\":\"other\"") > 0);
  engine_close(e);
  /* Suppression survives a restart. */
  assert_int_equal(engine_open(&o, &e), 0);
  add_event(r, EV_TRACK, "quinn", "Go", T0 + 9, "{\"type\":\"track\",\"userId\":\"quinn\",\"event\":\"Go\"}");
  engine_apply(e, r->n, r->data[r->n - 1].ptr, r->data[r->n - 1].len);
  engine_get_stats(e, &es);
  assert_int_equal(es.suppressed, 3); /* a lifetime count: 2 before the restart, 1 after */
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "quinn", &b), BATON_ENOENT);
  buf_release(&b);
  assert_int_equal(engine_identity_suppressed(e, "quinn", 5, "", 0), 1);
  assert_int_equal(engine_identity_suppressed(e, "other", 5, "", 0), 0);
  engine_close(e);
  store_close(st);
  /* Without suppression, the customer may come back as new. */
  recs_release(r);
  r->n = 0;
  struct engine_options o2 = {.recent_events = 5};
  assert_int_equal(engine_open(&o2, &e), 0);
  add_event(r, EV_TRACK, "rae", "Go", T0, "{\"type\":\"track\",\"userId\":\"rae\"}");
  add_delete(r, "", "rae", 0, T0 + 1);
  add_event(r, EV_TRACK, "rae", "Go", T0 + 2, "{\"type\":\"track\",\"userId\":\"rae\",\"n\":2}");
  for (size_t i = 0; i < r->n; i++) engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len);
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "rae", &b), 0);
  assert_non_null(strstr(b.ptr, "\"eventCount\":1"));
  buf_release(&b);
  engine_close(e);
  sink_clear(&s);
  recs_release(r);
  free(r);
  rm_rf(dir);
}

int main(void) {
  jlog_set_level(JLOG_ERROR);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_delete_everything)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

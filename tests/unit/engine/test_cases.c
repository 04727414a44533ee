/* Notes and cases from other departments: open, update, close, limits, checkpoints, merges. */
#include "engine/fixture.h"
#include "util/jlog.h"

static char *profile(struct engine *e, const char *id) {
  struct buf b;
  buf_init(&b, 0);
  if (engine_profile_json(e, NULL, id, &b)) {
    buf_release(&b);
    return NULL;
  }
  return buf_steal(&b, NULL);
}

#define HAS(hay, needle)                                   \
  do {                                                     \
    if (!strstr((hay), (needle))) {                        \
      fprintf(stderr, "missing %s in\n%s\n", (needle), (hay)); \
      fail();                                              \
    }                                                      \
  } while (0)

static void test_cases_lifecycle(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-cases-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct recs *r = calloc(1, sizeof(*r));
  add_event(r, EV_IDENTIFY, "hal", "", T0, "{\"type\":\"identify\",\"userId\":\"hal\"}");
  add_profile_op(r, POP_CASE_OPEN, "hal", "cb-1", T0 + 1,
                 "{\"type\":\"callback_request\",\"text\":\"call me 20 minutes before you arrive\","
                 "\"department\":\"call-center\"}");
  add_profile_op(r, POP_NOTE, "hal", "n-1", T0 + 2, "{\"text\":\"dog in the garden\"}");
  add_profile_op(r, POP_CASE_UPDATE, "hal", "cb-1", T0 + 3, "{\"status\":\"pending\"}");
  add_profile_op(r, POP_CASE_OPEN, "hal", "bill-7", T0 + 4, "{\"type\":\"billing_dispute\"}");
  add_profile_op(r, POP_CASE_UPDATE, "hal", "bill-7", T0 + 5, "{\"status\":\"closed\"}");
  add_profile_op(r, POP_CASE_OPEN, "nobody", "x", T0 + 6, "{\"type\":\"t\"}"); /* skipped */
  add_profile_op(r, POP_CASE_OPEN, "hal", "cb-1", T0 + 7, "{\"type\":\"dup\"}"); /* ignored */
  struct sink s = {0};
  struct engine_options o = {.sink = collect, .sink_arg = &s, .recent_events = 10, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  for (size_t i = 0; i < r->n; i++)
    assert_int_equal(engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len), 0);
  char *p = profile(e, "hal");
  HAS(p, "\"id\":\"cb-1\",\"type\":\"callback_request\",\"status\":\"pending\"");
  HAS(p, "\"text\":\"call me 20 minutes before you arrive\"");
  HAS(p, "\"id\":\"bill-7\",\"type\":\"billing_dispute\",\"status\":\"closed\"");
  HAS(p, "\"closed\":\"2027-01-15T08:00:00.005Z\"");
  HAS(p, "{\"type\":\"baton.note\",\"id\":\"n-1\",\"text\":\"dog in the garden\"");
  HAS(p, "\"action\":\"closed\"");
  assert_null(strstr(p, "\"dup\""));
  assert_int_equal(engine_checkpoint(e), 0);
  engine_close(e);
  assert_int_equal(engine_open(&o, &e), 0);
  char *q = profile(e, "hal");
  assert_string_equal(p, q); /* cases and timeline survive a restart exactly */
  free(p);
  free(q);
  engine_close(e);
  store_close(st);
  recs_release(r);
  free(r);
  rm_rf(dir);
}

static void test_case_limit_and_merge(void **state) {
  (void)state;
  struct recs *r = calloc(1, sizeof(*r));
  struct sink s = {0};
  struct engine_options o = {.sink = collect, .sink_arg = &s, .recent_events = 5};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  uint64_t lsn = 0;
  add_event(r, EV_IDENTIFY, "ivy", "", T0, "{\"type\":\"identify\",\"userId\":\"ivy\"}");
  engine_apply(e, ++lsn, r->data[0].ptr, r->data[0].len);
  recs_release(r);
  r->n = 0;
  char item[32];
  for (int i = 0; i < 105; i++) { /* 105 cases, the first closed: it goes first */
    snprintf(item, sizeof(item), "c%d", i);
    add_profile_op(r, POP_CASE_OPEN, "ivy", item, T0 + i, i == 0 ? "{\"type\":\"t\",\"status\":\"closed\"}" : "{\"type\":\"t\"}");
    engine_apply(e, ++lsn, r->data[0].ptr, r->data[0].len);
    recs_release(r);
    r->n = 0;
  }
  char *p = profile(e, "ivy");
  assert_null(strstr(p, "\"id\":\"c0\""));   /* the closed one went first */
  assert_null(strstr(p, "\"id\":\"c1\""));   /* then the oldest */
  HAS(p, "\"id\":\"c5\"");
  HAS(p, "\"id\":\"c104\"");
  free(p);
  /* An anonymous profile with a case merges into ivy: the case comes along. */
  add_event(r, EV_IDENTIFY, "jo", "", T0 + 499, "{\"type\":\"identify\",\"userId\":\"jo\"}");
  add_event_ids(r, EV_IDENTIFY, "", "tab", "", T0 + 500, "{\"type\":\"identify\",\"anonymousId\":\"tab\"}");
  add_profile_op(r, POP_CASE_OPEN, "tab", "from-tab", T0 + 501, "{\"type\":\"t\"}");
  add_event_ids(r, EV_TRACK, "jo", "tab", "X", T0 + 502, "{\"type\":\"track\",\"userId\":\"jo\",\"anonymousId\":\"tab\"}");
  for (size_t i = 0; i < r->n; i++) engine_apply(e, ++lsn, r->data[i].ptr, r->data[i].len);
  p = profile(e, "jo");
  HAS(p, "\"id\":\"from-tab\"");
  HAS(p, "\"type\":\"baton.merge\"");
  free(p);
  engine_close(e);
  recs_release(r);
  free(r);
}

int main(void) {
  jlog_set_level(JLOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases_lifecycle),
      cmocka_unit_test(test_case_limit_and_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

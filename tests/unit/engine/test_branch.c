/* Branch steps: conditions over cases, traits, the triggering event and aggregates;
   decisions on the timeline; errors take the else path; replay decides the same. */
#include "engine/fixture.h"
#include "util/jlog.h"

static const char renew[] =
    "id: renew\n"
    "trigger: {event: Contract Expiring}\n"
    "reentry: after_exit\n"
    "steps:\n"
    "  - id: check\n"
    "    type: branch\n"
    "    condition: 'openCases(\"billing_dispute\") == 0 && event.properties.plan == \"pro\" && "
    "profile.country in [\"NL\", \"BE\"] && context.aggregates.orders >= 2'\n"
    "    then: offer\n"
    "    else: done\n"
    "  - {id: offer, type: webhook, url: http://127.0.0.1:1/renew}\n"
    "  - {id: done, type: exit}\n";

static const char broken[] =
    "id: broken\n"
    "trigger: {event: Ping}\n"
    "steps:\n"
    "  - {id: check, type: branch, condition: 'profile.missing > 1', then: yes}\n"
    "  - {id: no, type: exit}\n"
    "  - {id: yes, type: webhook, url: http://127.0.0.1:1/yes}\n";

static char *profile_of(struct engine *e, const char *id) {
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, id, &b), 0);
  return buf_steal(&b, NULL);
}

static void run_scenario(struct recs *r) {
  add_journey(r, "renew", renew, T0);
  add_journey(r, "broken", broken, T0);
  const char *users[] = {"ada", "bob"};
  for (int u = 0; u < 2; u++) {
    char json[256];
    snprintf(json, sizeof(json), "{\"type\":\"identify\",\"userId\":\"%s\",\"traits\":{\"country\":\"NL\"}}", users[u]);
    add_event(r, EV_IDENTIFY, users[u], "", T0 + 1, json);
    for (int k = 0; k < 2; k++) {
      snprintf(json, sizeof(json), "{\"type\":\"track\",\"userId\":\"%s\",\"event\":\"Order\",\"timestamp\":\"2027-01-15T08:00:00.00%dZ\"}", users[u], k + 2);
      add_event(r, EV_TRACK, users[u], "Order", T0 + 2 + k, json);
    }
  }
  add_profile_op(r, POP_CASE_OPEN, "ada", "d1", T0 + 10, "{\"type\":\"billing_dispute\"}");
  const char *exp = "{\"type\":\"track\",\"userId\":\"%s\",\"event\":\"Contract Expiring\",\"properties\":{\"plan\":\"pro\"}}";
  char json[256];
  snprintf(json, sizeof(json), exp, "ada");
  add_event(r, EV_TRACK, "ada", "Contract Expiring", T0 + 20, json);
  snprintf(json, sizeof(json), exp, "bob");
  add_event(r, EV_TRACK, "bob", "Contract Expiring", T0 + 21, json);
  /* the dispute is resolved: next time ada gets the offer */
  add_profile_op(r, POP_CASE_UPDATE, "ada", "d1", T0 + 30, "{\"status\":\"closed\"}");
  snprintf(json, sizeof(json), exp, "ada");
  add_event(r, EV_TRACK, "ada", "Contract Expiring", T0 + 40, json);
  add_event(r, EV_TRACK, "ada", "Ping", T0 + 50, "{\"type\":\"track\",\"userId\":\"ada\",\"event\":\"Ping\"}");
}

static void test_branch(void **state) {
  (void)state;
  struct agg_def aggs[] = {{"orders", "Order", NULL, AGG_COUNT, 0}};
  struct sink s = {0};
  struct engine_options o = {.sink = collect, .sink_arg = &s, .recent_events = 20,
                             .aggregates = aggs, .n_aggregates = 1};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  struct recs *r = calloc(1, sizeof(*r));
  run_scenario(r);
  for (size_t i = 0; i < r->n; i++) assert_int_equal(engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len), 0);
  /* bob at once; ada only after her dispute closed; the broken condition never sends */
  assert_int_equal(s.n, 2);
  assert_non_null(strstr(s.v[0].body, "\"userId\":\"bob\""));
  assert_non_null(strstr(s.v[1].body, "\"userId\":\"ada\""));
  assert_non_null(strstr(s.v[1].body, "\"entry\":2"));
  char *p = profile_of(e, "ada");
  assert_non_null(strstr(p, "\"entries\":2"));
  free(p);
  /* same log, same decisions */
  struct sink s2 = {0};
  struct engine_options o2 = o;
  o2.sink_arg = &s2;
  struct engine *e2;
  assert_int_equal(engine_open(&o2, &e2), 0);
  for (size_t i = 0; i < r->n; i++) engine_apply(e2, i + 1, r->data[i].ptr, r->data[i].len);
  assert_int_equal(s2.n, s.n);
  for (size_t i = 0; i < s.n; i++) assert_string_equal(s.v[i].id, s2.v[i].id);
  engine_close(e2);
  engine_close(e);
  sink_clear(&s);
  sink_clear(&s2);
  recs_release(r);
  free(r);
}

/* Decisions, with the reason for an error, are on the stored timeline. */
static void test_branch_timeline(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-branch-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct agg_def aggs[] = {{"orders", "Order", NULL, AGG_COUNT, 0}};
  struct engine_options o = {.recent_events = 20, .store = st, .aggregates = aggs, .n_aggregates = 1};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  struct recs *r = calloc(1, sizeof(*r));
  run_scenario(r);
  for (size_t i = 0; i < r->n; i++) engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len);
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_events_json(e, NULL, "ada", 100, 0, &b), 0);
  assert_non_null(strstr(b.ptr, "\"type\":\"baton.branch\",\"journey\":\"renew\",\"version\":1,\"step\":\"check\",\"result\":false"));
  assert_non_null(strstr(b.ptr, "\"type\":\"baton.branch\",\"journey\":\"renew\",\"version\":1,\"step\":\"check\",\"result\":true"));
  assert_non_null(strstr(b.ptr, "\"journey\":\"broken\",\"version\":1,\"step\":\"check\",\"result\":false,\"error\":\"no such key: 'missing'\""));
  buf_release(&b);
  engine_close(e);
  store_close(st);
  recs_release(r);
  free(r);
  rm_rf(dir);
}

int main(void) {
  jlog_set_level(JLOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_branch),
      cmocka_unit_test(test_branch_timeline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

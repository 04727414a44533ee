/*
 * Identity resolution: promotion of anonymous profiles, merges on userId,
 * external ids and alias, refused merges, journey memberships across a merge,
 * lookups by identity, and checkpoint + replay with merges.
 */
#include "engine/fixture.h"
#include "util/jlog.h"

static struct engine *open_engine(struct sink *s, struct store *st) {
  struct engine_options o = {.sink = collect, .sink_arg = s, .recent_events = 10, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  return e;
}

static char *profile(struct engine *e, const char *by, const char *id) {
  struct buf b;
  buf_init(&b, 0);
  if (engine_profile_json(e, by, id, &b)) {
    buf_release(&b);
    return NULL;
  }
  return buf_steal(&b, NULL);
}

static void apply_all(struct engine *e, struct recs *r) {
  for (size_t i = 0; i < r->n; i++)
    assert_int_equal(engine_apply(e, i + 1, r->data[i].ptr, r->data[i].len), 0);
}

#define HAS(hay, needle)                                              \
  do {                                                                \
    if (!strstr((hay), (needle))) {                                   \
      print_error("missing %s in\n%s\n", (needle), (hay));            \
      fail();                                                         \
    }                                                                 \
  } while (0)

static void test_promotion_and_userid_merge(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  /* anon-1 browses, then logs in as alice: the same profile. */
  add_event_ids(&r, EV_PAGE, "", "anon-1", "", T0, "{\"type\":\"page\",\"anonymousId\":\"anon-1\"}");
  add_event_ids(&r, EV_IDENTIFY, "alice", "anon-1", "", T0 + 1,
                "{\"type\":\"identify\",\"userId\":\"alice\",\"anonymousId\":\"anon-1\","
                "\"traits\":{\"plan\":\"pro\"}}");
  /* anon-2 on another device with traits, then the same user logs in there. */
  add_event_ids(&r, EV_IDENTIFY, "", "anon-2", "", T0 + 2,
                "{\"type\":\"identify\",\"anonymousId\":\"anon-2\",\"traits\":{\"plan\":\"free\","
                "\"device\":\"phone\"}}");
  add_event_ids(&r, EV_TRACK, "alice", "anon-2", "Login", T0 + 3,
                "{\"type\":\"track\",\"userId\":\"alice\",\"anonymousId\":\"anon-2\",\"event\":\"Login\"}");
  struct engine *e = open_engine(&s, NULL);
  apply_all(e, &r);
  char *p = profile(e, NULL, "alice");
  assert_non_null(p);
  HAS(p, "\"key\":\"a:anon-1\""); /* the key stays the one it was created with */
  HAS(p, "\"anonymousIds\":[\"anon-1\",\"anon-2\"]");
  HAS(p, "\"plan\":\"pro\"");     /* the survivor's value wins */
  HAS(p, "\"device\":\"phone\""); /* traits it lacked are taken */
  HAS(p, "\"eventCount\":4");
  HAS(p, "\"type\":\"baton.merge\"");
  HAS(p, "\"merged\":[\"a:anon-2\"]");
  char *q = profile(e, "anonymousId", "anon-2");
  assert_string_equal(p, q);
  free(q);
  free(p);
  struct engine_stats st;
  engine_get_stats(e, &st);
  assert_int_equal(st.profiles, 1);
  engine_close(e);
  recs_release(&r);
}

static void test_external_ids(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  add_event(&r, EV_IDENTIFY, "alice", "", T0,
            "{\"type\":\"identify\",\"userId\":\"alice\",\"traits\":{\"email\":\"Alice@Example.com\"}}");
  /* A newsletter form: anonymous, same email in another case: merged into alice. */
  add_event_ids(&r, EV_IDENTIFY, "", "form-9", "", T0 + 1,
                "{\"type\":\"identify\",\"anonymousId\":\"form-9\",\"traits\":{\"email\":\" alice@example.COM \","
                "\"newsletter\":true}}");
  /* bob claims alice's email: two known users, no merge; recorded. */
  add_event(&r, EV_IDENTIFY, "bob", "", T0 + 2,
            "{\"type\":\"identify\",\"userId\":\"bob\",\"traits\":{\"email\":\"alice@example.com\"}}");
  struct engine *e = open_engine(&s, NULL);
  apply_all(e, &r);
  char *p = profile(e, "email", "ALICE@example.com");
  assert_non_null(p);
  HAS(p, "\"userId\":\"alice\"");
  HAS(p, "\"newsletter\":true");
  HAS(p, "{\"type\":\"email\",\"value\":\"alice@example.com\"}");
  HAS(p, "{\"type\":\"anonymousId\",\"value\":\"form-9\"}");
  free(p);
  p = profile(e, NULL, "bob");
  HAS(p, "\"type\":\"baton.merge_refused\"");
  HAS(p, "\"email\":\"alice@example.com\""); /* the trait is kept on bob's profile */
  free(p);
  assert_null(profile(e, "email", "nobody@example.com"));
  assert_null(profile(e, "phone", "alice@example.com"));
  engine_close(e);
  recs_release(&r);
}

static void test_alias(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  add_event(&r, EV_TRACK, "old-id", "Viewed", T0, "{\"type\":\"track\",\"userId\":\"old-id\",\"event\":\"Viewed\"}");
  add_event(&r, EV_TRACK, "new-id", "Viewed", T0 + 1, "{\"type\":\"track\",\"userId\":\"new-id\",\"event\":\"Viewed\"}");
  add_event(&r, EV_ALIAS, "new-id", "", T0 + 2,
            "{\"type\":\"alias\",\"userId\":\"new-id\",\"previousId\":\"old-id\"}");
  /* alias to an id never seen: later events with it land on the same profile */
  add_event(&r, EV_ALIAS, "new-id", "", T0 + 3,
            "{\"type\":\"alias\",\"userId\":\"new-id\",\"previousId\":\"cookie-7\"}");
  add_event_ids(&r, EV_PAGE, "", "cookie-7", "", T0 + 4,
                "{\"type\":\"page\",\"anonymousId\":\"cookie-7\"}");
  struct engine *e = open_engine(&s, NULL);
  apply_all(e, &r);
  char *p = profile(e, NULL, "old-id");
  char *q = profile(e, NULL, "new-id");
  char *c = profile(e, "anonymousId", "cookie-7");
  assert_non_null(p);
  assert_string_equal(p, q);
  assert_string_equal(p, c);
  HAS(p, "\"eventCount\":5");
  free(p);
  free(q);
  free(c);
  engine_close(e);
  recs_release(&r);
}

static const char wait_journey[] =
    "id: nurture\n"
    "trigger: {event: Started}\n"
    "steps:\n"
    "  - {id: pause, type: wait, duration: 10s}\n"
    "  - {id: send, type: webhook, url: http://127.0.0.1:1/x}\n";

/* Both profiles are waiting in the same journey when they merge: one run goes on. */
static void test_merge_keeps_one_run(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  add_journey(&r, "nurture", wait_journey, T0);
  add_event(&r, EV_TRACK, "carol", "Started", T0 + 1,
            "{\"type\":\"track\",\"userId\":\"carol\",\"event\":\"Started\"}");
  add_event_ids(&r, EV_TRACK, "", "tab-1", "Started", T0 + 2,
                "{\"type\":\"track\",\"anonymousId\":\"tab-1\",\"event\":\"Started\"}");
  add_event_ids(&r, EV_TRACK, "", "tab-2", "Started", T0 + 3,
                "{\"type\":\"track\",\"anonymousId\":\"tab-2\",\"event\":\"Started\"}");
  add_event_ids(&r, EV_IDENTIFY, "carol", "tab-1", "", T0 + 4,
                "{\"type\":\"identify\",\"userId\":\"carol\",\"anonymousId\":\"tab-1\"}");
  add_event_ids(&r, EV_IDENTIFY, "dan", "tab-2", "", T0 + 5,
                "{\"type\":\"identify\",\"userId\":\"dan\",\"anonymousId\":\"tab-2\"}");
  add_tick(&r, T0 + 20000);
  struct engine *e = open_engine(&s, NULL);
  apply_all(e, &r);
  /* carol (her run) and dan (tab-2's run, promoted): two messages, distinct ids */
  assert_int_equal(s.n, 2);
  assert_string_not_equal(s.v[0].id, s.v[1].id);
  char *p = profile(e, NULL, "carol");
  HAS(p, "\"entries\":2");
  free(p);
  struct engine_stats st;
  engine_get_stats(e, &st);
  assert_int_equal(st.active_runs, 0);
  assert_int_equal(st.profiles, 2);
  engine_close(e);
  sink_clear(&s);
  recs_release(&r);
}

/* A merged anonymous run moved onto a profile that finished the journey before. */
static void test_moved_run_gets_fresh_entry(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  add_journey(&r, "nurture", wait_journey, T0);
  add_event(&r, EV_TRACK, "erin", "Started", T0 + 1,
            "{\"type\":\"track\",\"userId\":\"erin\",\"event\":\"Started\"}");
  add_tick(&r, T0 + 15000); /* erin's entry 1 sends */
  add_event_ids(&r, EV_TRACK, "", "tab-9", "Started", T0 + 16000,
                "{\"type\":\"track\",\"anonymousId\":\"tab-9\",\"event\":\"Started\"}");
  add_event_ids(&r, EV_TRACK, "erin", "tab-9", "Login", T0 + 17000,
                "{\"type\":\"track\",\"userId\":\"erin\",\"anonymousId\":\"tab-9\",\"event\":\"Login\"}");
  add_tick(&r, T0 + 30000); /* the moved run sends as erin's entry 2 */
  struct engine *e = open_engine(&s, NULL);
  apply_all(e, &r);
  assert_int_equal(s.n, 2);
  assert_string_not_equal(s.v[0].id, s.v[1].id);
  HAS(s.v[1].body, "\"entry\":2");
  HAS(s.v[1].body, "\"userId\":\"erin\"");
  engine_close(e);
  sink_clear(&s);
  recs_release(&r);
}


/* Checkpoint at every split point of a scenario with merges; reload and replay. */
static void test_checkpoint_replay_with_merges(void **state) {
  (void)state;
  struct recs r = {0};
  add_journey(&r, "nurture", wait_journey, T0);
  add_event_ids(&r, EV_TRACK, "", "tab-1", "Started", T0 + 2,
                "{\"type\":\"track\",\"anonymousId\":\"tab-1\",\"event\":\"Started\"}");
  add_event(&r, EV_IDENTIFY, "fay", "", T0 + 3,
            "{\"type\":\"identify\",\"userId\":\"fay\",\"traits\":{\"email\":\"f@x.io\",\"a\":1}}");
  add_event_ids(&r, EV_IDENTIFY, "", "tab-1", "", T0 + 4,
                "{\"type\":\"identify\",\"anonymousId\":\"tab-1\",\"traits\":{\"email\":\"F@x.io\",\"b\":2}}");
  add_event(&r, EV_ALIAS, "fay", "", T0 + 5,
            "{\"type\":\"alias\",\"userId\":\"fay\",\"previousId\":\"legacy-5\"}");
  add_tick(&r, T0 + 20000);
  struct sink ref = {0};
  struct engine *e = open_engine(&ref, NULL);
  apply_all(e, &r);
  char *want = profile(e, NULL, "fay");
  engine_close(e);
  assert_int_equal(ref.n, 1);
  /* Two checkpoints, at k1 and k2 (one may fall before a merge, one after). */
  for (size_t k1 = 0, k = 0; k1 <= r.n; k = (k == r.n ? ++k1 : k + 1)) {
    if (k < k1) k = k1;
    if (k1 > r.n) break;
    char dir[] = "/tmp/baton-ident-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct store *st;
    assert_int_equal(store_open(dir, 1 << 26, &st), 0);
    struct sink s1 = {0}, s2 = {0};
    e = open_engine(&s1, st);
    for (size_t i = 0; i < k1; i++) engine_apply(e, i + 1, r.data[i].ptr, r.data[i].len);
    assert_int_equal(engine_checkpoint(e), 0);
    for (size_t i = k1; i < k; i++) engine_apply(e, i + 1, r.data[i].ptr, r.data[i].len);
    assert_int_equal(engine_checkpoint(e), 0);
    engine_close(e);
    e = open_engine(&s2, st);
    for (size_t i = k; i < r.n; i++) engine_apply(e, i + 1, r.data[i].ptr, r.data[i].len);
    char *got = profile(e, NULL, "fay");
    if (strcmp(got, want)) {
      fprintf(stderr, "k1=%zu k=%zu\n got %s\nwant %s\n", k1, k, got, want);
      fail();
    }
    char *legacy = profile(e, "anonymousId", "legacy-5");
    assert_non_null(legacy);
    free(legacy);
    free(got);
    engine_close(e);
    store_close(st);
    sink_clear(&s1);
    sink_clear(&s2);
    rm_rf(dir);
  }
  free(want);
  sink_clear(&ref);
  recs_release(&r);
}


/* Paging the timeline across stored (checkpointed), queued and merged entries. */
static void test_timeline_paging(void **state) {
  (void)state;
  char dir[] = "/tmp/baton-tl-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 26, &st), 0);
  struct sink s = {0};
  struct engine *e = open_engine(&s, st);
  struct recs *r = calloc(1, sizeof(*r));
  size_t lsn = 0;
  char json[160];
  /* 12 anonymous events, checkpointed; then 12 as gus (merging), 6 checkpointed */
  for (int i = 0; i < 24; i++) {
    if (i < 12)
      snprintf(json, sizeof(json), "{\"type\":\"track\",\"anonymousId\":\"g\",\"event\":\"E\",\"n\":%d}", i);
    else
      snprintf(json, sizeof(json), "{\"type\":\"track\",\"userId\":\"gus\",\"anonymousId\":\"g\",\"event\":\"E\",\"n\":%d}", i);
    r->n = 0;
    if (i < 12)
      add_event_ids(r, EV_TRACK, "", "g", "E", T0 + i, json);
    else
      add_event_ids(r, EV_TRACK, "gus", "g", "E", T0 + i, json);
    assert_int_equal(engine_apply(e, ++lsn, r->data[0].ptr, r->data[0].len), 0);
    recs_release(r);
    if (i == 11 || i == 17) assert_int_equal(engine_checkpoint(e), 0);
  }
  /* Page through with limit 5: 24 events, newest first, each once. */
  int seen[24] = {0}, expect = 23, pages = 0;
  unsigned long long cursor = 0;
  for (;;) {
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(engine_profile_events_json(e, NULL, "gus", 5, cursor, &b), 0);
    pages++;
    char *p = b.ptr;
    int on_page = 0;
    while ((p = strstr(p, "\"n\":"))) {
      int n = atoi(p + 4);
      assert_int_equal(n, expect); /* strictly newest first, nothing skipped */
      seen[n]++;
      expect--;
      on_page++;
      p += 4;
    }
    char *next = strstr(b.ptr, "\"next\":\"");
    if (!next) {
      buf_release(&b);
      break;
    }
    assert_int_equal(on_page, 5);
    cursor = strtoull(next + 8, NULL, 10);
    buf_release(&b);
    assert_true(pages < 20);
  }
  for (int i = 0; i < 24; i++) assert_int_equal(seen[i], 1);
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_events_json(e, "userId", "nobody", 5, 0, &b), BATON_ENOENT);
  buf_release(&b);
  free(r);
  engine_close(e);
  store_close(st);
  rm_rf(dir);
}

int main(void) {
  jlog_set_level(JLOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_promotion_and_userid_merge),
      cmocka_unit_test(test_external_ids),
      cmocka_unit_test(test_alias),
      cmocka_unit_test(test_merge_keeps_one_run),
      cmocka_unit_test(test_moved_run_gets_fresh_entry),
      cmocka_unit_test(test_checkpoint_replay_with_merges),
      cmocka_unit_test(test_timeline_paging),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the engine as a state machine over log records:
 * profiles and traits, journey entry and re-entry rules, waits fired by tick
 * records, deterministic message ids, and checkpoint + replay giving exactly
 * the state and messages of an uninterrupted run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/record.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/jlog.h"

#include "engine/fixture.h"

static const char journey_src[] =
    "id: welcome\n"
    "trigger: {event: Signed Up}\n"
    "reentry: after_exit\n"
    "steps:\n"
    "  - {id: first, type: webhook, url: http://127.0.0.1:1/a}\n"
    "  - {id: pause, type: wait, duration: 2s}\n"
    "  - {id: second, type: webhook, url: http://127.0.0.1:1/b}\n";

/* A scenario: publish, identify, enter, re-enter while active (ignored), wait, tick. */
static void scenario(struct recs *r) {
  add_journey(r, "welcome", journey_src, T0);
  add_event(r, EV_IDENTIFY, "alice", "", T0 + 10,
            "{\"type\":\"identify\",\"userId\":\"alice\",\"traits\":{\"plan\":\"pro\",\"n\":1}}");
  add_event(r, EV_TRACK, "alice", "Signed Up", T0 + 20,
            "{\"type\":\"track\",\"userId\":\"alice\",\"event\":\"Signed Up\"}");
  add_event(r, EV_TRACK, "alice", "Signed Up", T0 + 30,
            "{\"type\":\"track\",\"userId\":\"alice\",\"event\":\"Signed Up\"}");
  add_event(r, EV_TRACK, "bob", "Signed Up", T0 + 1000,
            "{\"type\":\"track\",\"userId\":\"bob\",\"event\":\"Signed Up\"}");
  add_event(r, EV_IDENTIFY, "alice", "", T0 + 1500,
            "{\"type\":\"identify\",\"userId\":\"alice\",\"traits\":{\"n\":2}}");
  add_tick(r, T0 + 2020);  /* alice's wait ends */
  add_tick(r, T0 + 2500);  /* nothing due */
  add_event(r, EV_TRACK, "alice", "Signed Up", T0 + 2600,
            "{\"type\":\"track\",\"userId\":\"alice\",\"event\":\"Signed Up\"}"); /* re-entry */
  add_tick(r, T0 + 3000);  /* bob's wait ends */
  add_tick(r, T0 + 5000);  /* alice's second wait ends */
}

static struct engine *new_engine(struct sink *s, struct store *st) {
  struct engine_options o = {.sink = collect, .sink_arg = s, .recent_events = 5, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  return e;
}

static void test_apply_and_timers(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  scenario(&r);
  struct engine *e = new_engine(&s, NULL);
  apply_range(e, &r, 0, 4);
  assert_int_equal(s.n, 1); /* entered once; the second Signed Up is ignored while active */
  assert_non_null(strstr(s.v[0].body, "\"step\":\"first\""));
  assert_non_null(strstr(s.v[0].body, "\"traits\":{\"plan\":\"pro\",\"n\":1}"));
  apply_range(e, &r, 4, 7);
  assert_int_equal(s.n, 3); /* bob first, then alice second at the tick */
  assert_non_null(strstr(s.v[1].body, "\"userId\":\"bob\""));
  assert_non_null(strstr(s.v[2].body, "\"step\":\"second\""));
  assert_non_null(strstr(s.v[2].body, "\"n\":2")); /* traits as of the send */
  assert_non_null(strstr(s.v[2].body, "\"time\":\"2027-01-15T08:00:02.020Z\""));
  apply_range(e, &r, 7, r.n);
  assert_int_equal(s.n, 6);
  assert_non_null(strstr(s.v[3].body, "\"entry\":2")); /* alice re-entered after exit */
  /* ids differ per step and entry */
  for (size_t i = 0; i < s.n; i++)
    for (size_t j = i + 1; j < s.n; j++) assert_string_not_equal(s.v[i].id, s.v[j].id);
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "alice", &b), 0);
  assert_non_null(strstr(b.ptr, "\"traits\":{\"plan\":\"pro\",\"n\":2}"));
  assert_non_null(strstr(b.ptr, "\"eventCount\":5"));
  assert_non_null(strstr(b.ptr, "\"entries\":2"));
  buf_release(&b);
  assert_int_equal(engine_profile_json(e, NULL, "nobody", &b), BATON_ENOENT);
  engine_close(e);
  sink_clear(&s);
  recs_release(&r);
}

static void test_deterministic(void **state) {
  (void)state;
  struct sink a = {0}, b = {0};
  struct recs r = {0};
  scenario(&r);
  struct engine *e1 = new_engine(&a, NULL), *e2 = new_engine(&b, NULL);
  apply_range(e1, &r, 0, r.n);
  apply_range(e2, &r, 0, r.n);
  assert_int_equal(a.n, b.n);
  for (size_t i = 0; i < a.n; i++) {
    assert_string_equal(a.v[i].id, b.v[i].id);
    assert_string_equal(a.v[i].body, b.v[i].body);
  }
  engine_close(e1);
  engine_close(e2);
  sink_clear(&a);
  sink_clear(&b);
  recs_release(&r);
}


/*
 * For every split point k: checkpoint after k records, apply the rest, "crash"
 * (no checkpoint), reload and replay the rest. The messages and the profile
 * must equal an uninterrupted run's.
 */
static void test_checkpoint_replay(void **state) {
  (void)state;
  struct recs r = {0};
  scenario(&r);
  struct sink ref = {0};
  struct engine *e = new_engine(&ref, NULL);
  apply_range(e, &r, 0, r.n);
  struct buf ref_alice, ref_bob;
  buf_init(&ref_alice, 0);
  buf_init(&ref_bob, 0);
  engine_profile_json(e, NULL, "alice", &ref_alice);
  engine_profile_json(e, NULL, "bob", &ref_bob);
  engine_close(e);
  for (size_t k = 0; k <= r.n; k++) {
    char dir[] = "/tmp/baton-engine-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct store *st;
    assert_int_equal(store_open(dir, 1 << 26, &st), 0);
    struct sink s1 = {0}, s2 = {0};
    e = new_engine(&s1, st);
    apply_range(e, &r, 0, k);
    assert_int_equal(engine_checkpoint(e), 0);
    size_t before_ckpt = s1.n;
    apply_range(e, &r, k, r.n);
    engine_close(e); /* a crash: nothing after the checkpoint is saved */
    e = new_engine(&s2, st);
    struct engine_stats es;
    engine_get_stats(e, &es);
    assert_int_equal(es.applied_lsn, k);
    apply_range(e, &r, k, r.n);
    /* Replay regenerates exactly the messages produced after the checkpoint. */
    assert_int_equal(s2.n, ref.n - before_ckpt);
    for (size_t i = 0; i < s2.n; i++) {
      assert_string_equal(s2.v[i].id, ref.v[before_ckpt + i].id);
      assert_string_equal(s2.v[i].body, ref.v[before_ckpt + i].body);
    }
    struct buf b;
    buf_init(&b, 0);
    engine_profile_json(e, NULL, "alice", &b);
    if (strcmp(b.ptr, ref_alice.ptr)) {
      print_error("k=%zu\n got %s\nwant %s\n", k, b.ptr, ref_alice.ptr);
      fail();
    }
    buf_clear(&b);
    if (k > 4 || engine_profile_json(e, NULL, "bob", &b) == 0) {
      buf_clear(&b);
      engine_profile_json(e, NULL, "bob", &b);
      assert_string_equal(b.ptr, ref_bob.ptr);
    }
    buf_release(&b);
    engine_close(e);
    store_close(st);
    sink_clear(&s1);
    sink_clear(&s2);
    rm_rf(dir);
  }
  buf_release(&ref_alice);
  buf_release(&ref_bob);
  sink_clear(&ref);
  recs_release(&r);
}

static void test_republish_and_versions(void **state) {
  (void)state;
  struct sink s = {0};
  struct recs r = {0};
  add_journey(&r, "welcome", journey_src, T0);
  add_event(&r, EV_TRACK, "carol", "Signed Up", T0 + 10,
            "{\"type\":\"track\",\"userId\":\"carol\",\"event\":\"Signed Up\"}");
  add_journey(&r, "welcome", journey_src, T0 + 20); /* same text: same version */
  char v2[sizeof(journey_src) + 32];
  snprintf(v2, sizeof(v2), "%s", journey_src);
  *strstr(v2, "2s") = '5';
  add_journey(&r, "welcome", v2, T0 + 30); /* a 5s wait: version 2 */
  add_event(&r, EV_TRACK, "dave", "Signed Up", T0 + 40,
            "{\"type\":\"track\",\"userId\":\"dave\",\"event\":\"Signed Up\"}");
  add_tick(&r, T0 + 2100); /* carol (v1, 2s) continues; dave (v2, 5s) still waits */
  struct engine *e = new_engine(&s, NULL);
  apply_range(e, &r, 0, r.n);
  assert_int_equal(engine_journey_version(e, "welcome"), 2);
  assert_int_equal(s.n, 3);
  assert_non_null(strstr(s.v[2].body, "\"userId\":\"carol\""));
  assert_non_null(strstr(s.v[2].body, "\"version\":1"));
  struct buf b;
  buf_init(&b, 0);
  engine_profile_json(e, NULL, "dave", &b);
  assert_non_null(strstr(b.ptr, "\"active\":{\"version\":2,\"step\":\"pause\""));
  buf_release(&b);
  engine_close(e);
  sink_clear(&s);
  recs_release(&r);
}

int main(void) {
  jlog_set_level(JLOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_and_timers),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_checkpoint_replay),
      cmocka_unit_test(test_republish_and_versions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * engine_apply_batch (with its prefetching) ends in the same state as
 * engine_apply record by record: profiles, merges, journey messages; and it
 * reports a record engine_apply refuses without stopping.
 */
#include "engine/fixture.h"
#include "util/jlog.h"

static const char journey[] =
    "id: hello\ntrigger: {event: Go}\nsteps:\n"
    "  - {id: send, type: webhook, url: http://127.0.0.1:1/x}\n"
    "  - {id: pause, type: wait, duration: 1h}\n";

static void build(struct recs *r) {
  add_journey(r, "hello", journey, T0);
  char uid[16], aid[16], json[200];
  for (int i = 0; i < 60; i++) {
    snprintf(uid, sizeof(uid), "u%d", i % 7);
    snprintf(aid, sizeof(aid), "a%d", i % 5);
    const char *name = i % 4 == 0 ? "Go" : "Seen";
    int kind = i % 9 == 3 ? EV_IDENTIFY : EV_TRACK;
    snprintf(json, sizeof(json),
             kind == EV_IDENTIFY
                 ? "{\"type\":\"identify\",\"userId\":\"%s\",\"traits\":{\"email\":\"%s@x.io\",\"n\":%d}}"
                 : "{\"type\":\"track\",\"userId\":\"%s\",\"event\":\"%s\",\"n\":%d}",
             i % 3 ? uid : "", kind == EV_IDENTIFY ? uid : name, i);
    /* every third event anonymous only; some carry both ids, so profiles merge */
    add_event_ids(r, kind, i % 3 ? uid : "", i % 2 ? aid : (i % 3 ? "" : "a0"), name,
                  T0 + 1000 * i, json);
  }
}

static void snapshot(struct engine *e, struct buf *out) {
  char id[16];
  for (int i = 0; i < 7; i++) {
    snprintf(id, sizeof(id), "u%d", i);
    buf_printf(out, "%s:", id);
    if (engine_profile_json(e, "userId", id, out)) buf_puts(out, "none");
    buf_putc(out, '\n');
  }
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "a%d", i);
    buf_printf(out, "%s:", id);
    if (engine_profile_json(e, "anonymousId", id, out)) buf_puts(out, "none");
    buf_putc(out, '\n');
  }
  struct engine_stats st;
  engine_get_stats(e, &st);
  buf_printf(out, "profiles %llu events %llu merges %llu messages %llu runs %llu\n",
             (unsigned long long)st.profiles, (unsigned long long)st.events,
             (unsigned long long)st.merges, (unsigned long long)st.messages,
             (unsigned long long)st.active_runs);
}

static size_t n_errors;
static uint64_t error_lsn;
static void on_error(struct engine *e, uint64_t lsn) {
  (void)e;
  n_errors++;
  error_lsn = lsn;
}

static void test_batch_equals_one_by_one(void **state) {
  (void)state;
  struct recs *r = calloc(1, sizeof(*r));
  build(r);
  struct sink s1 = {0}, s2 = {0};
  struct engine_options o1 = {.sink = collect, .sink_arg = &s1, .recent_events = 3};
  struct engine_options o2 = {.sink = collect, .sink_arg = &s2, .recent_events = 3};
  struct engine *e1, *e2;
  assert_int_equal(engine_open(&o1, &e1), 0);
  assert_int_equal(engine_open(&o2, &e2), 0);
  apply_range(e1, r, 0, r->n);
  /* in uneven windows, as the engine thread reads them */
  struct engine_rec win[64];
  for (size_t i = 0, w = 1; i < r->n; i += w, w = w % 17 + 5) {
    size_t nw = MIN(w, r->n - i);
    for (size_t j = 0; j < nw; j++)
      win[j] = (struct engine_rec){i + j + 1, r->data[i + j].ptr, r->data[i + j].len};
    engine_apply_batch(e2, win, nw, on_error);
  }
  assert_int_equal(n_errors, 0);
  struct buf a, b;
  buf_init(&a, 0);
  buf_init(&b, 0);
  snapshot(e1, &a);
  snapshot(e2, &b);
  assert_string_equal(a.ptr, b.ptr);
  assert_non_null(strstr(a.ptr, "merges ")); /* the scenario does merge */
  assert_null(strstr(a.ptr, "merges 0 "));
  assert_int_equal(s1.n, s2.n);
  assert_true(s1.n > 0);
  for (size_t i = 0; i < s1.n; i++) {
    assert_string_equal(s1.v[i].id, s2.v[i].id);
    assert_string_equal(s1.v[i].body, s2.v[i].body);
  }
  /* A damaged record is reported and the rest applied. */
  struct engine_rec bad[3] = {{r->n + 1, "\x01garbage", 8}, {r->n + 2, r->data[1].ptr, r->data[1].len},
                              {r->n + 3, r->data[2].ptr, r->data[2].len}};
  engine_apply_batch(e2, bad, 3, on_error);
  assert_int_equal(n_errors, 1);
  assert_int_equal(error_lsn, r->n + 1);
  buf_release(&a);
  buf_release(&b);
  engine_close(e1);
  engine_close(e2);
  sink_clear(&s1);
  sink_clear(&s2);
  recs_release(r);
  free(r);
}

int main(void) {
  jlog_set_level(JLOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_equals_one_by_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

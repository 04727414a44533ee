/* Computed aggregates: all-time figures, sliding windows, first/last, merging, encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/aggregate.h"

#define DAY (86400000LL)

static char *value(const struct agg_def *d, const struct agg_state *st, int64_t now) {
  struct buf b;
  buf_init(&b, 0);
  agg_value_json(d, st, now, &b);
  return buf_steal(&b, NULL);
}

static cJSON *props(double revenue) {
  cJSON *p = cJSON_CreateObject();
  cJSON *o = cJSON_AddObjectToObject(p, "order");
  cJSON_AddNumberToObject(o, "revenue", revenue);
  return p;
}

static void expect(const struct agg_def *d, const struct agg_state *st, int64_t now,
                   const char *want) {
  char *got = value(d, st, now);
  assert_string_equal(got, want);
  free(got);
}

static void test_sliding_window(void **state) {
  (void)state;
  struct agg_def count30 = {"c", "E", NULL, AGG_COUNT, 32 * DAY}; /* 1-day buckets */
  struct agg_def sum30 = {"s", "E", "order.revenue", AGG_SUM, 32 * DAY};
  struct agg_def max30 = {"m", "E", "order.revenue", AGG_MAX, 32 * DAY};
  struct agg_state c = {0}, s = {0}, m = {0};
  int64_t t0 = 1000 * DAY;
  for (int i = 0; i < 40; i++) { /* one event a day for 40 days, revenue = day number */
    cJSON *p = props(i);
    agg_update(&count30, &c, t0 + i * DAY, NULL);
    agg_update(&sum30, &s, t0 + i * DAY, p);
    agg_update(&max30, &m, t0 + i * DAY, p);
    cJSON_Delete(p);
  }
  int64_t now = t0 + 39 * DAY + 1;
  expect(&count30, &c, now, "32"); /* days 8..39 */
  expect(&sum30, &s, now, "752");  /* 8 + ... + 39 */
  expect(&max30, &m, now, "39");
  expect(&count30, &c, now + 10 * DAY, "22"); /* the window slid 10 days with no events */
  expect(&count30, &c, now + 100 * DAY, "0");
  expect(&sum30, &s, now + 100 * DAY, "0");
  expect(&max30, &m, now + 100 * DAY, "null");
  /* An event older than the window is ignored; a late one inside it counts. */
  agg_update(&count30, &c, t0, NULL);
  expect(&count30, &c, now, "32");
  agg_update(&count30, &c, t0 + 20 * DAY, NULL);
  expect(&count30, &c, now, "33");
  agg_state_clear(&c);
  agg_state_clear(&s);
  agg_state_clear(&m);
}

static void test_all_time_first_last_merge(void **state) {
  (void)state;
  struct agg_def sum = {"s", "E", "order.revenue", AGG_SUM, 0};
  struct agg_def min = {"n", "E", "order.revenue", AGG_MIN, 0};
  struct agg_def last = {"l", "E", "order.revenue", AGG_LAST, 0};
  struct agg_def first = {"f", "E", NULL, AGG_FIRST, 0};
  struct agg_state a[4] = {0}, b[4] = {0};
  const struct agg_def *defs[4] = {&sum, &min, &last, &first};
  double va[] = {10, 3, 7}, vb[] = {1, 50};
  for (int i = 0; i < 3; i++) {
    cJSON *p = props(va[i]);
    for (int k = 0; k < 4; k++) agg_update(defs[k], &a[k], 100 + i, p);
    cJSON_Delete(p);
  }
  for (int i = 0; i < 2; i++) {
    cJSON *p = props(vb[i]);
    for (int k = 0; k < 4; k++) agg_update(defs[k], &b[k], 50 + i * 100, p); /* 50 and 150 */
    cJSON_Delete(p);
  }
  agg_update(&sum, &a[0], 200, NULL); /* no property: sums ignore it */
  expect(&sum, &a[0], 0, "20");
  expect(&min, &a[1], 0, "3");
  expect(&last, &a[2], 0, "{\"value\":7,\"at\":\"1970-01-01T00:00:00.102Z\"}");
  for (int k = 0; k < 4; k++) agg_merge(defs[k], &a[k], &b[k]);
  expect(&sum, &a[0], 0, "71");
  expect(&min, &a[1], 0, "1");
  expect(&last, &a[2], 0, "{\"value\":50,\"at\":\"1970-01-01T00:00:00.150Z\"}");
  expect(&first, &a[3], 0, "{\"value\":null,\"at\":\"1970-01-01T00:00:00.050Z\"}");
  /* encode / decode round trip */
  for (int k = 0; k < 4; k++) {
    struct buf enc;
    buf_init(&enc, 0);
    agg_encode(&a[k], &enc);
    struct agg_state back;
    assert_int_equal(agg_decode(&back, enc.ptr, enc.len), enc.len);
    char *x = value(defs[k], &a[k], 0), *y = value(defs[k], &back, 0);
    assert_string_equal(x, y);
    free(x);
    free(y);
    agg_state_clear(&back);
    assert_int_equal(agg_decode(&back, enc.ptr, 3), 0); /* truncated */
    agg_state_clear(&back);
    buf_release(&enc);
    agg_state_clear(&a[k]);
    agg_state_clear(&b[k]);
  }
  /* a changed definition has another fingerprint */
  struct agg_def sum7 = {"s", "E", "order.revenue", AGG_SUM, 7 * DAY};
  assert_int_not_equal(agg_fingerprint(&sum), agg_fingerprint(&sum7));
}

static void test_windowed_merge(void **state) {
  (void)state;
  struct agg_def c = {"c", "E", NULL, AGG_COUNT, 32 * DAY};
  struct agg_state a = {0}, b = {0};
  for (int i = 0; i < 5; i++) agg_update(&c, &a, 50 * DAY + i * DAY, NULL);  /* days 50..54 */
  for (int i = 0; i < 5; i++) agg_update(&c, &b, 70 * DAY + i * DAY, NULL);  /* days 70..74 */
  agg_merge(&c, &a, &b);
  expect(&c, &a, 74 * DAY + 1, "10");
  expect(&c, &a, 84 * DAY + 1, "7"); /* the window is days 53..84: 53, 54 and 70..74 */
  agg_state_clear(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sliding_window),
      cmocka_unit_test(test_all_time_first_last_merge),
      cmocka_unit_test(test_windowed_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

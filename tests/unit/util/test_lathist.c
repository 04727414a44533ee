/*
 * Unit tests for util/lathist: bucket edges (bucket i holds [2^(i-1), 2^i)
 * microseconds, the last one everything longer), totals and the maximum,
 * negative durations, concurrent adds losing nothing, and the JSON that
 * GET /v1/stats shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "util/buf.h"
#include "util/lathist.h"

static void test_bucket_edges(void **state) {
  (void)state;
  assert_int_equal(lathist_bucket(0), 0);
  assert_int_equal(lathist_bucket(999), 0);
  assert_int_equal(lathist_bucket(1000), 1);       /* 1 us */
  assert_int_equal(lathist_bucket(1999), 1);
  assert_int_equal(lathist_bucket(2000), 2);       /* 2 us */
  assert_int_equal(lathist_bucket(8191999), 13);   /* just under 8.192 ms */
  assert_int_equal(lathist_bucket(8192000), 14);   /* 8.192 ms */
  assert_int_equal(lathist_bucket((int64_t)1 << 62), LATHIST_BUCKETS - 1);
}

static void test_totals_and_max(void **state) {
  (void)state;
  struct lathist h;
  memset(&h, 0, sizeof(h));
  lathist_add(&h, 500);
  lathist_add(&h, 3000000);
  lathist_add(&h, -5); /* a clock step: counted as 0 */
  struct lathist_snap s;
  lathist_read(&h, &s);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.total_ns, 3000500);
  assert_int_equal(s.max_ns, 3000000);
  assert_int_equal(s.bucket[0], 2);
  assert_int_equal(s.bucket[lathist_bucket(3000000)], 1);
  uint64_t sum = 0;
  for (int i = 0; i < LATHIST_BUCKETS; i++) sum += s.bucket[i];
  assert_int_equal(sum, s.n);
}

static struct lathist shared;

static void *adder(void *arg) {
  int64_t base = (int64_t)(intptr_t)arg;
  for (int i = 0; i < 100000; i++) lathist_add(&shared, base + i);
  return NULL;
}

static void test_threads_lose_nothing(void **state) {
  (void)state;
  memset(&shared, 0, sizeof(shared));
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, adder, (void *)(intptr_t)(i * 1000000));
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  struct lathist_snap s;
  lathist_read(&shared, &s);
  assert_int_equal(s.n, 400000);
  assert_int_equal(s.max_ns, 3000000 + 99999);
  uint64_t sum = 0;
  for (int i = 0; i < LATHIST_BUCKETS; i++) sum += s.bucket[i];
  assert_int_equal(sum, 400000);
}

static void test_json(void **state) {
  (void)state;
  struct lathist h;
  memset(&h, 0, sizeof(h));
  lathist_add(&h, 1500000); /* 1.5 ms: bucket 11, [1024, 2048) us */
  struct lathist_snap s;
  lathist_read(&h, &s);
  struct buf b;
  buf_init(&b, 0);
  lathist_json(&b, "sync", &s);
  assert_string_equal(b.ptr, "\"sync\":{\"calls\":1,\"ms\":1.500,\"max_ms\":1.500,\"hist_us\":"
                             "[0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0]}");
  buf_release(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_edges),
      cmocka_unit_test(test_totals_and_max),
      cmocka_unit_test(test_threads_lose_nothing),
      cmocka_unit_test(test_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

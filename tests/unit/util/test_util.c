/* Unit tests for lib/util: the string map, capped buffers, clocks, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/smap.h"

static void test_smap_insert_get_delete(void **state) {
  (void)state;
  struct smap m;
  smap_init(&m);
  char key[32];
  for (long i = 0; i < 5000; i++) {
    int n = snprintf(key, sizeof(key), "user-%ld", i);
    int inserted;
    void **v = smap_upsert(&m, key, (size_t)n, &inserted);
    assert_int_equal(inserted, 1);
    *v = (void *)(i + 1);
  }
  assert_int_equal(m.len, 5000);
  for (long i = 0; i < 5000; i += 2) {
    int n = snprintf(key, sizeof(key), "user-%ld", i);
    assert_ptr_equal(smap_del(&m, key, (size_t)n), (void *)(i + 1));
  }
  for (long i = 0; i < 5000; i++) {
    int n = snprintf(key, sizeof(key), "user-%ld", i);
    void *v = smap_get(&m, key, (size_t)n);
    if (i % 2)
      assert_ptr_equal(v, (void *)(i + 1));
    else
      assert_null(v);
  }
  size_t it = 0, seen = 0;
  const struct smap_slot *s;
  while (smap_next(&m, &it, &s)) seen++;
  assert_int_equal(seen, 2500);
  smap_release(&m);
}

static void test_buf_cap(void **state) {
  (void)state;
  struct buf b;
  buf_init(&b, 8);
  assert_int_equal(buf_puts(&b, "12345678"), 0);
  assert_int_equal(buf_putc(&b, 'x'), BATON_ETOOBIG);
  assert_string_equal(b.ptr, "12345678");
  buf_clear(&b);
  assert_int_equal(buf_json_str(&b, "a\"\n", 3), 0);
  assert_string_equal(b.ptr, "\"a\\\"\\n\"");
  buf_release(&b);
}

static void test_clock_parse(void **state) {
  (void)state;
  int64_t ms;
  assert_int_equal(clock_parse_iso8601("1970-01-01T00:00:01Z", &ms), 0);
  assert_int_equal(ms, 1000);
  assert_int_equal(clock_parse_iso8601("2026-11-23T03:08:00.5+01:00", &ms), 0);
  char out[32];
  assert_string_equal(clock_format_ms(ms, out), "2026-11-23T02:08:00.500Z");
  assert_int_equal(clock_parse_iso8601("2026-13-01", &ms), BATON_EPARSE);
  assert_int_equal(clock_parse_duration("1h30m", &ms), 0);
  assert_int_equal(ms, 5400000);
  assert_int_equal(clock_parse_duration("2s", &ms), 0);
  assert_int_equal(ms, 2000);
  assert_int_equal(clock_parse_duration("2x", &ms), BATON_EPARSE);
  /* The limit is 3,650 days, in any unit, without overflowing on the way (fuzz_journey found
     "222222222222w": 222222222222 * 604800000 overflowed before the range check). */
  assert_int_equal(clock_parse_duration("3650d", &ms), 0);
  assert_int_equal(ms, 315360000000LL);
  assert_int_equal(clock_parse_duration("3650d1ms", &ms), BATON_ERANGE);
  assert_int_equal(clock_parse_duration("522w", &ms), BATON_ERANGE);
  assert_int_equal(clock_parse_duration("222222222222w222", &ms), BATON_ERANGE);
  assert_int_equal(clock_parse_duration("315360000000w", &ms), BATON_ERANGE);
  assert_int_equal(clock_parse_duration("3649d23h59m59s999ms", &ms), 0);
  assert_int_equal(ms, 315360000000LL - 1);
}

static void test_utf8(void **state) {
  (void)state;
  assert_true(baton_utf8_valid("h\xc3\xa9llo", 6));
  assert_false(baton_utf8_valid("\xc0\x80", 2));         /* overlong */
  assert_false(baton_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
  assert_false(baton_utf8_valid("\xe2\x82", 2));         /* truncated */
  assert_true(baton_utf8_valid("\xf0\x9f\x98\x80", 4));  /* emoji */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_smap_insert_get_delete),
      cmocka_unit_test(test_buf_cap),
      cmocka_unit_test(test_clock_parse),
      cmocka_unit_test(test_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for lib/util/tz: TZif files from the system tzdata and POSIX rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "util/clock.h"
#include "util/tz.h"

static int64_t at(const char *iso) {
  int64_t ms;
  assert_int_equal(clock_parse_iso8601(iso, &ms), 0);
  return ms / 1000;
}

static void test_new_york(void **state) {
  (void)state;
  const struct tz *z = tz_get("America/New_York");
  assert_non_null(z);
  const char *abbr;
  assert_int_equal(tz_offset_at(z, at("2026-01-15T12:00:00Z"), &abbr), -5 * 3600);
  assert_string_equal(abbr, "EST");
  assert_int_equal(tz_offset_at(z, at("2026-07-15T12:00:00Z"), &abbr), -4 * 3600);
  assert_string_equal(abbr, "EDT");
  /* 2026 DST starts Sunday March 8 at 02:00 EST = 07:00Z. */
  assert_int_equal(tz_offset_at(z, at("2026-03-08T06:59:59Z"), NULL), -5 * 3600);
  assert_int_equal(tz_offset_at(z, at("2026-03-08T07:00:00Z"), NULL), -4 * 3600);
  /* Far future: beyond the file's transitions, the footer rule applies. */
  assert_int_equal(tz_offset_at(z, at("2090-07-01T00:00:00Z"), NULL), -4 * 3600);
  assert_int_equal(tz_offset_at(z, at("2090-12-01T00:00:00Z"), NULL), -5 * 3600);
}

static void test_local_to_utc(void **state) {
  (void)state;
  const struct tz *z = tz_get("Europe/Paris");
  assert_non_null(z);
  /* 09:00 local on a summer day = 07:00Z */
  assert_int_equal(tz_local_to_utc(z, at("2026-07-01T09:00:00Z")), at("2026-07-01T07:00:00Z"));
  /* 02:30 on 2026-03-29 does not exist in Paris: becomes 03:30 CEST = 01:30Z */
  assert_int_equal(tz_local_to_utc(z, at("2026-03-29T02:30:00Z")), at("2026-03-29T01:30:00Z"));
  /* 02:30 on 2026-10-25 happens twice: first occurrence (CEST) = 00:30Z */
  assert_int_equal(tz_local_to_utc(z, at("2026-10-25T02:30:00Z")), at("2026-10-25T00:30:00Z"));
}

static void test_names(void **state) {
  (void)state;
  assert_null(tz_get("Nowhere/Atlantis"));
  assert_null(tz_get("../../etc/passwd"));
  assert_null(tz_get("/etc/passwd"));
  assert_null(tz_get("+25:00"));
  const struct tz *z = tz_get("+05:30");
  assert_non_null(z);
  assert_int_equal(tz_offset_at(z, 0, NULL), 5 * 3600 + 1800);
  z = tz_get("UTC");
  assert_int_equal(tz_offset_at(z, at("2026-07-01T00:00:00Z"), NULL), 0);
  assert_ptr_equal(tz_get("Asia/Tokyo"), tz_get("Asia/Tokyo"));
  assert_int_equal(tz_offset_at(tz_get("Asia/Kolkata"), at("2026-07-01T00:00:00Z"), NULL),
                   19800);
  /* Southern hemisphere DST (rule wraps the year end). */
  z = tz_get("Australia/Sydney");
  assert_int_equal(tz_offset_at(z, at("2095-01-01T00:00:00Z"), NULL), 11 * 3600);
  assert_int_equal(tz_offset_at(z, at("2095-07-01T00:00:00Z"), NULL), 10 * 3600);
}

static void test_corrupt(void **state) {
  (void)state;
  struct tz *z = NULL;
  assert_int_not_equal(tz_parse("TZif2", 5, "x", &z), 0);
  char junk[64];
  memset(junk, 0xff, sizeof(junk));
  memcpy(junk, "TZif2", 5);
  assert_int_not_equal(tz_parse(junk, sizeof(junk), "x", &z), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_york),
      cmocka_unit_test(test_local_to_utc),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_corrupt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

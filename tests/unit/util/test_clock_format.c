/* clock_format_ms formats by arithmetic for years 0000-9999: it must agree
   with gmtime_r on every instant, and fall back to it outside that range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "util/clock.h"

static void reference(int64_t ms, char *out) {
  int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int millis = (int)(ms - secs * 1000);
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)((tm.tm_year + 1900) % 10000),
           (unsigned char)(tm.tm_mon + 1), (unsigned char)tm.tm_mday, (unsigned char)tm.tm_hour,
           (unsigned char)tm.tm_min, (unsigned char)tm.tm_sec, (unsigned)millis % 1000);
}

static void check(int64_t ms) {
  char got[32], want[32];
  clock_format_ms(ms, got);
  reference(ms, want);
  if (strcmp(got, want)) fail_msg("%lld: got %s, want %s", (long long)ms, got, want);
}

static void test_format_matches_gmtime(void **state) {
  (void)state;
  static const int64_t edges[] = {0, -1, -999, -1000, -1001, 1, 999, 1000, 86399999, 86400000,
                                  -86400000, -86400001, 951782400000LL, 951868799999LL,
                                  -62167219200000LL, -62167219200001LL, 253402300799999LL,
                                  253402300800000LL, 4102444800000LL, 1795000000000LL};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) check(edges[i]);
  char s[32];
  assert_string_equal(clock_format_ms(1795000000123LL, s), "2026-11-18T11:06:40.123Z");
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    check((int64_t)(x % 506804601600000ull) - 253402300800000LL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_format_matches_gmtime)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

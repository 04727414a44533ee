/*
 * Unit tests for lib/expr: values and their literal round trip, operators,
 * macros, conversions, time, journey functions against a fake host,
 * variables from JSON, thread rules, and that steady-state evaluation does
 * not touch the heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <malloc.h>
#include <pthread.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"

/* Evaluates src in env with vars and host; returns the formatted result or "ERROR: msg". */
static char *eval_str(const struct expr_env *env, const char *src, const struct expr_value *vars,
                      const struct expr_host *host, void *hctx) {
  struct expr_program *p;
  struct expr_diag d;
  struct buf b;
  buf_init(&b, 0);
  if (baton_expr_compile(env, src, strlen(src), 0, &p, &d)) {
    buf_printf(&b, "COMPILE: %s", d.msg);
    return buf_steal(&b, NULL);
  }
  struct expr_ctx *ctx = baton_expr_ctx_new();
  struct expr_value v;
  if (baton_expr_eval(p, ctx, vars, host, hctx, &v))
    buf_printf(&b, "ERROR: %s", baton_expr_error_message(v.v.err));
  else
    baton_expr_value_format(&b, v);
  baton_expr_ctx_free(ctx);
  baton_expr_program_free(p);
  return buf_steal(&b, NULL);
}

#define ASSERT_EVAL(env, src, want)                                     \
  do {                                                                  \
    char *got_ = eval_str((env), (src), NULL, NULL, NULL);              \
    if (strcmp(got_, (want))) {                                         \
      print_error("%s\n  want: %s\n  got:  %s\n", (src), (want), got_); \
      free(got_);                                                       \
      fail();                                                           \
    }                                                                   \
    free(got_);                                                         \
  } while (0)

static void test_literals_and_operators(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  static const char *const cases[][2] = {
      {"1 + 2 * 3", "7"},
      {"7 / 2", "3"},
      {"-7 % 3", "-1"},
      {"2u * 3u", "6u"},
      {"1.5 + 1.0", "2.5"},
      {"[30.0, 1e15, 1e16, 1e-5, 0.0001, 123.456, -0.0]",
       "[30.0, 1000000000000000.0, 1e+16, 1e-05, 0.0001, 123.456, -0.0]"},
      {"string(30.0) + ' ' + string(1e20)", "\"30 1e+20\""},
      {"1.0 / 0.0", "double(\"Infinity\")"},
      {"0x1F + 1 == 32 && 0X1u == 1u", "true"},
      {"'a' + \"b\" + r'\\n'", "\"ab\\\\n\""},
      {"b'\\x00\\xff' + b'a'", "b\"\\x00\\xffa\""},
      {"'''multi\nline'''", "\"multi\\nline\""},
      {"[1, 2] + [3u]", "[1, 2, 3u]"},
      {"{'k': true}['k']", "true"},
      {"{'a': 1}.a", "1"},
      {"has({'a': 1}.b)", "false"},
      {"2 in [1, 2, 3]", "true"},
      {"'x' in ['a', 'b', 'c', 'd', 'x']", "true"},
      {"'y' in ['a', 'b', 'c', 'd', 'x']", "false"},
      {"2 in {1: 'a', 2: 'b'}", "true"},
      {"1 == 1.0 && 1u == 1 && 2 > 1.5 && 1u < 2", "true"},
      {"'abc' < 'abd' && b'a' < b'b' && false < true", "true"},
      {"true ? 'yes' : 'no'", "\"yes\""},
      {"null == null", "true"},
      {"[1, [2, 3]] == [1, [2, 3]]", "true"},
      {"{'a': [1]} == {'a': [1.0]}", "true"},
      {"9223372036854775807 + 1", "ERROR: integer overflow"},
      {"-9223372036854775808 - 1", "ERROR: integer overflow"},
      {"18446744073709551615u + 1u", "ERROR: integer overflow"},
      {"0u - 1u", "ERROR: integer overflow"},
      {"1 / 0", "ERROR: division by zero"},
      {"1 % 0", "ERROR: modulus by zero"},
      {"[1][5]", "ERROR: invalid_argument: index out of range: 5"},
      {"{'a': 1}.b", "ERROR: no such key: 'b'"},
      {"size('héllo') + size(b'ab') + size([1]) + size({})", "8"},
      {"'hello'.contains('ell') && 'hello'.startsWith('he') && 'hello'.endsWith('lo')", "true"},
      {"'ab12'.matches('^[a-z]+[0-9]+$')", "true"},
      {"matches('abc', 'z')", "false"},
      {"'AbC'.lowerAscii() + 'x'.upperAscii()", "\"abcX\""},
      {"int('-42') + int(3.9) + int(2u)", "-37"},
      {"uint('42') + uint(1)", "43u"},
      {"double('1.5') + double(1) + double(1u)", "3.5"},
      {"string(1) + string(2u) + string(1.5) + string(true) + string(b'x')", "\"121.5truex\""},
      {"bytes('é')", "b\"\\xc3\\xa9\""},
      {"bool('true') && !bool('0')", "true"},
      {"type(1u) == uint && type([]) == list && type(type(1)) == type", "true"},
      {"dyn(1) + 1", "2"},
      {"int(18446744073709551615u)", "ERROR: int range error"},
      {"uint(-1)", "ERROR: uint range error"},
      {"int('x')", "ERROR: type conversion error: cannot convert \"x\" to int"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) ASSERT_EVAL(env, cases[i][0], cases[i][1]);
  baton_expr_env_free(env);
}

static void test_logic_absorbs_errors(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  ASSERT_EVAL(env, "false && 1/0 == 1", "false");
  ASSERT_EVAL(env, "1/0 == 1 && false", "false");
  ASSERT_EVAL(env, "true || 1/0 == 1", "true");
  ASSERT_EVAL(env, "1/0 == 1 || true", "true");
  ASSERT_EVAL(env, "1/0 == 1 || false", "ERROR: division by zero");
  ASSERT_EVAL(env, "true && 1/0 == 1", "ERROR: division by zero");
  ASSERT_EVAL(env, "(1/0 == 1) ? 1 : 2", "ERROR: division by zero");
  baton_expr_env_free(env);
}

static void test_macros(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  ASSERT_EVAL(env, "[1, 2, 3].all(x, x > 0)", "true");
  ASSERT_EVAL(env, "[1, 2, 3].exists(x, x > 2)", "true");
  ASSERT_EVAL(env, "[1, 2, 3].exists_one(x, x > 1)", "false");
  ASSERT_EVAL(env, "[1, 2, 3].map(x, x * 10)", "[10, 20, 30]");
  ASSERT_EVAL(env, "[1, 2, 3, 4].map(x, x % 2 == 0, x * x)", "[4, 16]");
  ASSERT_EVAL(env, "[1, 2, 3, 4].filter(x, x % 2 == 1)", "[1, 3]");
  ASSERT_EVAL(env, "{'a': 1, 'b': 2}.all(k, k.size() == 1)", "true");
  ASSERT_EVAL(env, "[[1, 2], [3]].all(l, l.exists(x, x == 3) || l.size() == 2)", "true");
  ASSERT_EVAL(env, "[1, 2].exists(x, [3, 4].exists(x, x == 4))", "true");
  /* An error is absorbed when another element decides the result. */
  ASSERT_EVAL(env, "[0, 1].exists(x, 1 / x == 1)", "true");
  ASSERT_EVAL(env, "[0, 1].all(x, 1 / x == 5)", "false");
  ASSERT_EVAL(env, "[0, 1].all(x, 1 / x == 1)", "ERROR: division by zero");
  baton_expr_env_free(env);
}

static void test_time(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  ASSERT_EVAL(env, "timestamp('2024-03-10T12:00:00Z') + duration('1h30m')",
              "timestamp(\"2024-03-10T13:30:00Z\")");
  ASSERT_EVAL(env, "timestamp('2024-03-10T12:00:00Z') - timestamp('2024-03-09T12:00:00.5Z')",
              "duration(\"86399.5s\")");
  ASSERT_EVAL(env, "duration('-1.5s')", "duration(\"-1.5s\")");
  ASSERT_EVAL(env, "duration('1m') > duration('59s')", "true");
  ASSERT_EVAL(env, "timestamp('2024-03-10T12:00:00Z').getHours('America/New_York')", "8");
  ASSERT_EVAL(env, "timestamp('2024-03-10T06:59:59Z').getHours('America/New_York')", "1");
  ASSERT_EVAL(env, "timestamp('2024-03-10T07:00:00Z').getHours('America/New_York')", "3");
  ASSERT_EVAL(env, "timestamp('2024-01-01T00:00:00Z').getDayOfWeek()", "1");
  /* Alternating zones in one evaluation (the context caches the last one). */
  ASSERT_EVAL(env,
              "[1, 2].map(i, timestamp('2024-03-10T12:00:00Z').getHours('America/New_York') * 100 +"
              " timestamp('2024-03-10T12:00:00Z').getHours('Asia/Tokyo'))",
              "[821, 821]");
  ASSERT_EVAL(env, "timestamp('2024-12-31T00:00:00Z').getDayOfYear()", "365");
  ASSERT_EVAL(env, "timestamp('2024-02-29T00:00:00+05:30').getDate('+05:30')", "29");
  ASSERT_EVAL(env, "duration('3h25m').getMinutes()", "205");
  ASSERT_EVAL(env, "timestamp('2024-02-30T00:00:00Z')",
              "ERROR: cannot parse timestamp \"2024-02-30T00:00:00Z\"");
  ASSERT_EVAL(env, "timestamp(1).getHours('Mars/Olympus')",
              "ERROR: unknown time zone \"Mars/Olympus\"");
  ASSERT_EVAL(env, "timestamp('9999-12-31T23:59:59Z') + duration('1s')",
              "ERROR: timestamp out of range");
  baton_expr_env_free(env);
}

/* Every value prints as a literal that evaluates back to the same value and type. */
static void test_format_round_trip(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  static const char *const srcs[] = {"1",
                                     "-5",
                                     "1u",
                                     "1.0",
                                     "-0.0",
                                     "0.1",
                                     "1e300",
                                     "double('NaN')",
                                     "-double('inf')",
                                     "'a\"b\\\\c\\n'",
                                     "'é😀'",
                                     "b'\\x00\\x7f\\xff\"'",
                                     "[1, 2u, 3.5, 'x', [null]]",
                                     "{'k': true, 2: [b'']}",
                                     "timestamp('2001-02-03T04:05:06.789Z')",
                                     "duration('-90.000000001s')",
                                     "int",
                                     "null_type",
                                     "type(timestamp(0))"};
  for (size_t i = 0; i < ARRAY_SIZE(srcs); i++) {
    char *once = eval_str(env, srcs[i], NULL, NULL, NULL);
    char *twice = eval_str(env, once, NULL, NULL, NULL);
    if (strcmp(once, twice)) {
      print_error("%s -> %s -> %s\n", srcs[i], once, twice);
      fail();
    }
    char eq[512];
    snprintf(eq, sizeof(eq), "type(%s) == type(%s) && (%s == %s || %s != %s)", srcs[i], once,
             srcs[i], once, srcs[i], srcs[i]);
    char *same = eval_str(env, eq, NULL, NULL, NULL);
    if (strcmp(same, "true")) {
      print_error("%s: %s\n", eq, same);
      fail();
    }
    free(once);
    free(twice);
    free(same);
  }
  baton_expr_env_free(env);
}

static void test_compile_errors(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new_default();
  static const char *const cases[][2] = {
      {"1 +", "COMPILE: unexpected end of input"},
      {"foo", "COMPILE: undeclared reference to 'foo'"},
      {"profile.x.startsWith(1)",
       "COMPILE: found no matching overload for 'startsWith' applied to '(dyn, int)'"},
      {"'a'.startsWith(1)",
       "COMPILE: found no matching overload for 'startsWith' applied to '(string, int)'"},
      {"1 + 'a'", "COMPILE: found no matching overload for '_+_' applied to '(int, string)'"},
      {"size(1, 2)", "COMPILE: size() takes 1 argument"},
      {"nosuch(1)", "COMPILE: undeclared reference to 'nosuch'"},
      {"'a'.matches('(')",
       "COMPILE: invalid regular expression at offset 1: missing closing parenthesis"},
      {"if", "COMPILE: reserved identifier 'if'"},
      {"{1.5: 2}", "COMPILE: unsupported map key type 'double'"},
      {"1.size()", "COMPILE: found no matching overload for 'size' applied to '(int)'"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) ASSERT_EVAL(env, cases[i][0], cases[i][1]);
  baton_expr_env_free(env);
}

/* ---- Journey functions against a fake host ------------------------------ */

struct fake {
  int64_t now;
  int64_t times[4];
  double amounts[4];
  int calls;
};

#define NOW_MS 1767261600000LL /* 2026-01-01T10:00:00Z, a Thursday */
#define DAY_MS 86400000LL

static int64_t f_now(void *h) { return ((struct fake *)h)->now; }
static int f_count(void *h, const char *name, size_t len, int64_t since, int64_t until,
                   int64_t *out) {
  struct fake *f = h;
  f->calls++;
  *out = 0;
  if (len != 8 || memcmp(name, "purchase", 8)) return 0;
  for (int i = 0; i < 4; i++) *out += f->times[i] >= since && f->times[i] < until;
  return 0;
}
static int f_sum(void *h, const char *name, size_t len, const char *prop, size_t plen,
                 int64_t since, int64_t until, double *out) {
  struct fake *f = h;
  *out = 0;
  if (plen != 6 || memcmp(prop, "amount", 6)) return 0;
  for (int i = 0; i < 4; i++)
    if (f->times[i] >= since && f->times[i] < until) *out += f->amounts[i];
  (void)name, (void)len;
  return 0;
}
static int f_last(void *h, const char *name, size_t len, const char *prop, size_t plen,
                  struct expr_arena *a, struct expr_value *out) {
  (void)h, (void)prop, (void)plen;
  if (len == 8 && !memcmp(name, "purchase", 8)) {
    *out = baton_expr_string_copy(a, "shoes", 5);
    return 0;
  }
  if (len == 5 && !memcmp(name, "crash", 5)) return BATON_EIO;
  return BATON_ENOENT;
}
static int f_seg(void *h, const char *id, size_t len, bool *out) {
  (void)h;
  *out = len == 3 && !memcmp(id, "vip", 3);
  return 0;
}
static int f_cases(void *h, const char *t, size_t len, int64_t *out) {
  (void)h;
  *out = (len == 15 && !memcmp(t, "billing_dispute", 15)) ? 2 : 0;
  return 0;
}
static const char *f_tz(void *h) {
  (void)h;
  return "Asia/Tokyo";
}

static const struct expr_host fake_host = {.now_ms = f_now,
                                           .count_events = f_count,
                                           .sum_events = f_sum,
                                           .last_value = f_last,
                                           .in_segment = f_seg,
                                           .open_cases = f_cases,
                                           .time_zone = f_tz};

static void test_journey_functions(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new_default();
  struct fake f = {
      .now = NOW_MS,
      .times = {NOW_MS - 1 * DAY_MS, NOW_MS - 10 * DAY_MS, NOW_MS - 40 * DAY_MS, NOW_MS + DAY_MS},
      .amounts = {10, 20.5, 100, 1000}};
  static const char *const cases[][2] = {
      {"count('purchase', duration('30d'))", "2"},
      {"count('purchase', duration('30d')) >= 2", "true"},
      {"count('purchase', duration('2d'))", "1"},
      {"count('purchase')", "3"}, /* all time, up to now: the future event is not counted */
      {"count('refund', duration('30d'))", "0"},
      {"sum('purchase', 'amount', duration('30d'))", "30.5"},
      {"last('purchase', 'sku')", "\"shoes\""},
      {"last('signup', 'plan')", "null"},
      {"last('crash', 'x')", "ERROR: last() failed: input/output error"},
      {"inSegment('vip') && !inSegment('churned')", "true"},
      {"inJourney('onboarding')", "ERROR: inJourney() is not available here (no journey data)"},
      {"openCases('billing_dispute') > 0", "true"},
      {"now", "timestamp(\"2026-01-01T10:00:00Z\")"},
      {"now - duration('1d') < now", "true"},
      {"localHour()", "19"}, /* 10:00 UTC is 19:00 in Tokyo */
      {"localWeekday()", "4"},
      {"localMinute()", "0"},
      {"count('purchase', duration('-1d'))", "ERROR: count(): the window must not be negative"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *got = eval_str(env, cases[i][0], NULL, &fake_host, &f);
    if (strcmp(got, cases[i][1])) {
      print_error("%s\n  want: %s\n  got:  %s\n", cases[i][0], cases[i][1], got);
      fail();
    }
    free(got);
  }
  /* Type errors in journey function arguments are found at compile time. */
  char *got = eval_str(env, "count(1, duration('1d'))", NULL, &fake_host, &f);
  assert_string_equal(
      got, "COMPILE: found no matching overload for 'count' applied to '(int, duration)'");
  free(got);
  /* Without a host, journey functions are errors, not crashes. */
  got = eval_str(env, "count('purchase') > 1 || true", NULL, NULL, NULL);
  assert_string_equal(got, "true");
  free(got);
  baton_expr_env_free(env);
}

static void test_variables_from_json(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *a = baton_expr_arena_new(0);
  cJSON *j = cJSON_Parse(
      "{\"tier\": \"gold\", \"age\": 42, \"score\": 0.5, \"big\": 1e300, \"tags\": [\"a\", \"b\"],"
      " \"addr\": {\"city\": \"Paris\"}, \"none\": null, "
      "\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5}");
  struct expr_value vars[3] = {baton_expr_null(), baton_expr_null(), baton_expr_null()};
  assert_int_equal(baton_expr_value_from_json(a, j, &vars[BATON_EXPR_VAR_PROFILE]), 0);
  static const char *const cases[][2] = {
      {"profile.tier == 'gold' && profile.age >= 18", "true"},
      {"type(profile.age) == int && type(profile.score) == double && type(profile.big) == double",
       "true"},
      {"'b' in profile.tags && profile.addr.city.startsWith('Par')", "true"},
      {"has(profile.addr.city) && !has(profile.addr.zip) && profile.none == null", "true"},
      {"profile.k5 + profile.k1", "6"},
      {"profile.missing", "ERROR: no such key: 'missing'"},
      {"event.name", "ERROR: type 'null_type' does not support field selection"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *got = eval_str(env, cases[i][0], vars, NULL, NULL);
    if (strcmp(got, cases[i][1])) {
      print_error("%s\n  want: %s\n  got:  %s\n", cases[i][0], cases[i][1], got);
      fail();
    }
    free(got);
  }
  cJSON_Delete(j);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

static void test_json_text(void **state) {
  (void)state;
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_env *env = baton_expr_env_new();
  assert_int_equal(baton_expr_env_declare(env, "j", -1), 0);
  static const char *const cases[][2] = {
      {"{\"i\": 1, \"d\": 1.0, \"e\": 1e2, \"big\": 4611686018427387904, \"huge\": "
       "9223372036854775808}",
       "{\"i\": 1, \"d\": 1.0, \"e\": 100.0, \"big\": 4611686018427387904, \"huge\": "
       "9.223372036854776e+18}"},
      {"[\"\\u00e9\\ud83d\\ude00\\n\", true, false, null, -0, []]",
       "[\"é😀\\n\", true, false, null, 0, []]"},
      {" {\"k\": 1, \"k\": 2} ", "{\"k\": 2}"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct expr_value v;
    assert_int_equal(baton_expr_value_parse_json(a, cases[i][0], strlen(cases[i][0]), &v, NULL), 0);
    struct buf b;
    buf_init(&b, 0);
    baton_expr_value_format(&b, v);
    assert_string_equal(b.ptr, cases[i][1]);
    buf_release(&b);
  }
  static const char *const bad[] = {"",    "{",     "[1,]",        "{\"a\" 1}",
                                    "01",  "1.",    "\"\\ud800\"", "\"\x01\"",
                                    "tru", "[1] x", "\"\xff\""};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    struct expr_value v;
    size_t off;
    if (!baton_expr_value_parse_json(a, bad[i], strlen(bad[i]), &v, &off)) {
      print_error("accepted bad JSON %s\n", bad[i]);
      fail();
    }
  }
  char deep[600];
  memset(deep, '[', 300);
  memset(deep + 300, ']', 300);
  struct expr_value v;
  assert_int_equal(baton_expr_value_parse_json(a, deep, 600, &v, NULL), BATON_ETOOBIG);
  baton_expr_env_free(env);
  baton_expr_arena_free(a);
}

/* After a warm-up run, evaluations of the common shapes do not touch the heap. */
static void test_no_heap_in_steady_state(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *a = baton_expr_arena_new(0);
  cJSON *j = cJSON_Parse(
      "{\"tier\": \"gold\", \"country\": \"FR\", \"age\": 42, \"email\": \"a@b.example\","
      " \"items\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}");
  struct expr_value vars[3] = {baton_expr_null(), baton_expr_null(), baton_expr_null()};
  assert_int_equal(baton_expr_value_from_json(a, j, &vars[0]), 0);
  static const char *const srcs[] = {
      "profile.age > 30",
      "profile.country in ['FR', 'DE', 'ES', 'IT', 'NL']",
      "count('purchase', duration('30d')) >= 2",
      "profile.email.startsWith('a@')",
      "profile.items.exists(x, x > 19)",
      "profile.items.filter(x, x % 2 == 0).size() == 10",
      "profile.email.matches('^[a-z]+@')",
  };
  struct fake f = {.now = NOW_MS, .times = {NOW_MS - DAY_MS, NOW_MS - DAY_MS}};
  struct expr_ctx *ctx = baton_expr_ctx_new();
  for (size_t i = 0; i < ARRAY_SIZE(srcs); i++) {
    struct expr_program *p;
    assert_int_equal(baton_expr_compile(env, srcs[i], strlen(srcs[i]), 0, &p, NULL), 0);
    assert_int_equal(baton_expr_eval_bool(p, ctx, vars, &fake_host, &f, NULL), 1);
    size_t before = baton_expr_ctx_heap_allocs(ctx);
    struct mallinfo2 m0 = mallinfo2();
    for (int k = 0; k < 1000; k++)
      assert_int_equal(baton_expr_eval_bool(p, ctx, vars, &fake_host, &f, NULL), 1);
    struct mallinfo2 m1 = mallinfo2();
    if (baton_expr_ctx_heap_allocs(ctx) != before || m1.uordblks != m0.uordblks) {
      print_error("%s: heap used in steady state (%zu -> %zu allocations, %zu -> %zu bytes)\n",
                  srcs[i], before, baton_expr_ctx_heap_allocs(ctx), m0.uordblks, m1.uordblks);
      fail();
    }
    baton_expr_program_free(p);
  }
  baton_expr_ctx_free(ctx);
  cJSON_Delete(j);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

/* One program, many threads, one context each. */
struct thread_arg {
  const struct expr_program *p;
  const struct expr_value *vars;
  int ok;
};

static void *thread_main(void *ap) {
  struct thread_arg *t = ap;
  struct expr_ctx *ctx = baton_expr_ctx_new();
  t->ok = 1;
  for (int i = 0; i < 20000; i++) {
    struct expr_value v;
    if (baton_expr_eval(t->p, ctx, t->vars, NULL, NULL, &v) || v.kind != EXPR_LIST ||
        baton_expr_list_len(v.v.list) != 3)
      t->ok = 0;
  }
  baton_expr_ctx_free(ctx);
  return NULL;
}

static void test_threads_share_a_program(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  assert_int_equal(baton_expr_env_declare(env, "xs", EXPR_LIST), 0);
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_value *items, xs = baton_expr_list_new(a, 5, &items);
  for (int i = 0; i < 5; i++) items[i] = baton_expr_int(i);
  struct expr_program *p;
  const char *src = "xs.filter(x, x > 1).map(x, string(x) + 'a')";
  assert_int_equal(baton_expr_compile(env, src, strlen(src), 0, &p, NULL), 0);
  pthread_t th[4];
  struct thread_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (struct thread_arg){p, &xs, 0};
    pthread_create(&th[i], NULL, thread_main, &args[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].ok, 1);
  }
  baton_expr_program_free(p);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

/* Threads whose maps hold the same keys in different orders share one
 * program: its field-position hints keep changing under them, and every
 * result must still be right. */
static void *hint_thread_main(void *ap) {
  struct thread_arg *t = ap;
  struct expr_ctx *ctx = baton_expr_ctx_new();
  t->ok = 1;
  for (int i = 0; i < 20000; i++) {
    struct expr_value v;
    if (baton_expr_eval(t->p, ctx, t->vars, NULL, NULL, &v) || v.kind != EXPR_BOOL || !v.v.b)
      t->ok = 0;
  }
  baton_expr_ctx_free(ctx);
  return NULL;
}

static void test_threads_share_hints(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  assert_int_equal(baton_expr_env_declare(env, "m", -1), 0);
  struct expr_arena *a = baton_expr_arena_new(0);
  static const char *const maps[4] = {
      "{\"a\": 1, \"bb\": 2.5, \"ccc\": \"xyz\", \"d\": [1, 2]}",
      "{\"d\": [1, 2], \"ccc\": \"xyz\", \"bb\": 2.5, \"a\": 1}",
      ("{\"k1\": 0, \"k2\": 0, \"k3\": 0, \"k4\": 0, \"k5\": 0, \"k6\": 0, \"ccc\": \"xyz\","
       " \"a\": 1, \"d\": [1, 2], \"bb\": 2.5}"),
      "{\"bb\": 2.5, \"a\": 1, \"d\": [1, 2], \"ccc\": \"xyz\"}",
  };
  struct expr_value vars[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(baton_expr_value_parse_json(a, maps[i], strlen(maps[i]), &vars[i], NULL), 0);
  struct expr_program *p;
  const char *src = "m.a == 1 && m.bb > 2.0 && m.ccc.startsWith('xy') && m.ccc in ['abc', 'xyz'] "
                    "&& m.d.exists(x, x == 2)";
  assert_int_equal(baton_expr_compile(env, src, strlen(src), 0, &p, NULL), 0);
  pthread_t th[4];
  struct thread_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (struct thread_arg){p, &vars[i], 0};
    pthread_create(&th[i], NULL, hint_thread_main, &args[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].ok, 1);
  }
  baton_expr_program_free(p);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

static void test_env_and_limits(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new();
  assert_int_equal(baton_expr_env_declare(env, "a.b", -1), 0);
  assert_int_equal(baton_expr_env_declare(env, "a.b", -1), BATON_EEXIST);
  assert_int_equal(baton_expr_env_declare(env, "null", -1), BATON_EINVAL);
  assert_int_equal(baton_expr_env_lookup(env, "a.b"), 0);
  assert_int_equal(baton_expr_env_lookup(env, "zz"), BATON_ENOENT);
  struct buf deep;
  buf_init(&deep, 0);
  for (int i = 0; i < 300; i++) buf_putc(&deep, '(');
  buf_putc(&deep, '1');
  for (int i = 0; i < 300; i++) buf_putc(&deep, ')');
  struct expr_program *p;
  struct expr_diag d;
  assert_int_equal(baton_expr_compile(env, deep.ptr, deep.len, 0, &p, &d), BATON_EPARSE);
  assert_string_equal(d.msg, "expression nested too deeply");
  buf_release(&deep);
  char *big = calloc(70000, 1);
  memset(big, '1', 69999);
  assert_int_equal(baton_expr_compile(env, big, 69999, 0, &p, &d), BATON_ETOOBIG);
  free(big);
  baton_expr_env_free(env);
}

/* Evaluates src with vars through ctx (kept across calls, as the engine
 * does); returns the formatted result, or "ERROR@pos: msg". */
static char *eval_ctx(const struct expr_program *p, struct expr_ctx *ctx,
                      const struct expr_value *vars) {
  struct expr_value v;
  struct buf b;
  buf_init(&b, 0);
  if (baton_expr_eval(p, ctx, vars, NULL, NULL, &v))
    buf_printf(&b, "ERROR@%u: %s", baton_expr_error_pos(v.v.err), baton_expr_error_message(v.v.err));
  else
    baton_expr_value_format(&b, v);
  return buf_steal(&b, NULL);
}

/*
 * The guarded superinstructions (SELECT_VAR_CMP, SELECT_LOCAL_CMP, IN_SHORT,
 * STARTS_WITH_K, ENDS_WITH_K) and the field-position hints: each expression
 * must compile to its superinstruction and agree, result and error message,
 * with a reference that the compiler cannot fuse (dyn() in the way), over
 * profiles whose fields have other positions, other types, or are missing,
 * evaluated in turn through one context so the hints keep missing and
 * hitting. A few results and error positions are also checked outright.
 */
static void test_superinstructions(void **state) {
  (void)state;
  static const char *const profiles[] = {
      "{\"age\": 42, \"tier\": \"gold\", \"country\": \"NL\", \"email\": \"vip.a@x.com\","
      " \"score\": 0.5, \"items\": [{\"sku\": \"SKU-1\", \"price\": 95.5, \"qty\": 1},"
      " {\"qty\": 0, \"price\": 10.0, \"sku\": \"X\"}]}",
      /* Large (hashed) and in another order. */
      "{\"k1\": 1, \"k2\": 2, \"k3\": 3, \"k4\": 4, \"k5\": 5, \"k6\": 6, \"k7\": 7, \"k8\": 8,"
      " \"email\": \"a@vip.\", \"country\": \"abcdefg\", \"score\": -1.5, \"tier\": \"\","
      " \"age\": 7, \"items\": [{\"price\": 90.0, \"qty\": 2, \"sku\": \"SKU-\"}]}",
      /* Other types. */
      "{\"tier\": 1, \"age\": 42.0, \"country\": 7, \"email\": null, \"score\": 1,"
      " \"items\": [{\"sku\": 3, \"price\": \"90\", \"qty\": true}, 5]}",
      /* Strings that share short_word's loads but differ. */
      "{\"country\": \"aaaa`\", \"tier\": \"gold \", \"email\": \"vip\", \"age\": -42,"
      " \"items\": [], \"score\": 0.0}",
      "{}",
      "[1, 2]",
  };
  static const char *const cases[][3] = {
      /* {expression, reference, the opcode it must compile to} */
      {"profile.age > 30", "dyn(profile.age) > 30", "SELECT_VAR_CMP"},
      {"profile.age == 42", "dyn(profile.age) == 42", "SELECT_VAR_CMP"},
      {"profile.age != 42.0", "dyn(profile.age) != 42.0", "SELECT_VAR_CMP"},
      {"profile.age <= 7", "dyn(profile.age) <= 7", "SELECT_VAR_CMP"},
      {"profile.age < 15.0", "dyn(profile.age) < 15.0", "SELECT_VAR_CMP"},
      {"profile.score >= 0.5", "dyn(profile.score) >= 0.5", "SELECT_VAR_CMP"},
      {"profile.score >= 0.0/0.0", "dyn(profile.score) >= 0.0/0.0", "SELECT_VAR"},
      {"profile.tier == 'gold'", "dyn(profile.tier) == 'gold'", "SELECT_VAR_CMP"},
      {"profile.tier != ''", "dyn(profile.tier) != ''", "SELECT_VAR_CMP"},
      {"profile.tier < 'h'", "dyn(profile.tier) < 'h'", "SELECT_VAR_CMP"},
      {"profile.tier == null", "dyn(profile.tier) == null", "SELECT_VAR_CMP"},
      /* The && / || short circuit done by the fused compare. */
      {"profile.age > 30 && profile.tier == 'gold'", "dyn(profile.age) > 30 && dyn(profile.tier) == 'gold'",
       "SELECT_VAR_CMP"},
      {"profile.age > 30 || profile.tier == 'gold'", "dyn(profile.age) > 30 || dyn(profile.tier) == 'gold'",
       "SELECT_VAR_CMP"},
      {"profile.tier == 'gold' || profile.age < 0 && profile.score > 0.1",
       "dyn(profile.tier) == 'gold' || dyn(profile.age) < 0 && dyn(profile.score) > 0.1",
       "SELECT_VAR_CMP"},
      {"(profile.age > 30 && profile.tier == 'gold') ? 1 : 2",
       "(dyn(profile.age) > 30 && dyn(profile.tier) == 'gold') ? 1 : 2", "SELECT_VAR_CMP"},
      {"profile.country in ['FR', 'DE', 'ES', 'IT', 'NL', 'BE', 'PT', 'AT']",
       "profile.country in dyn(['FR', 'DE', 'ES', 'IT', 'NL', 'BE', 'PT', 'AT'])", "IN_SHORT"},
      {"profile.country in ['', 'a', 'ab', 'abc', 'aaaa', 'abcdefg', 'ab', 'aaaa_']",
       "profile.country in dyn(['', 'a', 'ab', 'abc', 'aaaa', 'abcdefg', 'ab', 'aaaa_'])",
       "IN_SHORT"},
      {"profile.country in ['abcdefgh', 'NL']", "profile.country in dyn(['abcdefgh', 'NL'])",
       "IN_CONST"},
      {"profile.email.startsWith('vip.')", "profile.email.startsWith(dyn('vip.'))",
       "STARTS_WITH_K"},
      {"profile.email.startsWith('')", "profile.email.startsWith(dyn(''))", "STARTS_WITH_K"},
      {"profile.email.endsWith('vip.')", "profile.email.endsWith(dyn('vip.'))", "ENDS_WITH_K"},
      {"profile.email.endsWith('a@vip.x')", "profile.email.endsWith(dyn('a@vip.x'))",
       "ENDS_WITH_K"},
      {"profile.items.exists(i, i.price > 90.0)", "profile.items.exists(i, dyn(i).price > 90.0)",
       "SELECT_LOCAL_CMP"},
      {"profile.items.all(i, i.qty >= 1 && i.sku.startsWith('SKU-'))",
       "profile.items.all(i, dyn(i).qty >= 1 && dyn(i).sku.startsWith(dyn('SKU-')))",
       "SELECT_LOCAL_CMP"},
      {"profile.items.exists_one(i, i.sku == 'X')", "profile.items.exists_one(i, dyn(i).sku == 'X')",
       "SELECT_LOCAL_CMP"},
      {"profile.items.filter(i, i.qty < 2)", "profile.items.filter(i, dyn(i).qty < 2)",
       "SELECT_LOCAL_CMP"},
  };
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_value vars[ARRAY_SIZE(profiles)][3];
  for (size_t i = 0; i < ARRAY_SIZE(profiles); i++) {
    vars[i][0] = vars[i][1] = vars[i][2] = baton_expr_null();
    assert_int_equal(
        baton_expr_value_parse_json(a, profiles[i], strlen(profiles[i]), &vars[i][0], NULL), 0);
  }
  struct expr_ctx *ctx = baton_expr_ctx_new(), *ref_ctx = baton_expr_ctx_new();
  for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
    struct expr_program *p, *ref;
    struct expr_diag d;
    assert_int_equal(baton_expr_compile(env, cases[c][0], strlen(cases[c][0]), 0, &p, &d), 0);
    assert_int_equal(baton_expr_compile(env, cases[c][1], strlen(cases[c][1]), 0, &ref, &d), 0);
    struct buf dump;
    buf_init(&dump, 0);
    baton_expr_program_dump(&dump, p);
    char want_op[40];
    snprintf(want_op, sizeof(want_op), "  %s ", cases[c][2]);
    if (!strstr(dump.ptr, want_op)) {
      print_error("%s: no %s in\n%s", cases[c][0], cases[c][2], dump.ptr);
      fail();
    }
    buf_release(&dump);
    /* Each profile three times, in an order that changes the one before. */
    for (size_t round = 0; round < 3 * ARRAY_SIZE(profiles); round++) {
      size_t i = (round * (round % 2 ? 5 : 1)) % ARRAY_SIZE(profiles);
      char *got = eval_ctx(p, ctx, vars[i]), *want = eval_ctx(ref, ref_ctx, vars[i]);
      /* Messages must agree; positions differ by the dyn( ) of the reference. */
      const char *g = strchr(got, ':'), *w = strchr(want, ':');
      if (strncmp(got, "ERROR@", 6) || strncmp(want, "ERROR@", 6)) g = got, w = want;
      if (strcmp(g, w)) {
        print_error("%s on profile %zu\n  want: %s\n  got:  %s\n", cases[c][0], i, want, got);
        fail();
      }
      free(got);
      free(want);
    }
    baton_expr_program_free(p);
    baton_expr_program_free(ref);
  }
  /* Outright results and error positions (the select's, or the compare's). */
  static const struct {
    const char *src;
    size_t profile;
    const char *want;
  } exact[] = {
      {"profile.age > 30", 0, "true"},
      {"profile.age > 30", 1, "false"},
      {"profile.age > 30", 2, "true"},
      {"profile.age > 30", 4, "ERROR@8: no such key: 'age'"},
      {"profile.age > 30", 5, "ERROR@8: type 'list' does not support field selection"},
      {"profile.tier > 30", 0, "ERROR@13: no matching overload for '_>_' applied to '(string, int)'"},
      {"profile.country in ['FR', 'DE', 'ES', 'IT', 'NL']", 0, "true"},
      {"profile.country in ['FR', 'DE', 'ES', 'IT', 'NL']", 3, "false"},
      {"profile.country in ['', 'a', 'ab', 'abc', 'aaaa']", 3, "false"},
      {"profile.country in ['abcd', 'abcdefg', 'x', 'y']", 1, "true"},
      {"profile.email.startsWith('vip.')", 0, "true"},
      {"profile.email.startsWith('vip.')", 3, "false"},
      {"profile.email.endsWith('vip.')", 1, "true"},
      {"profile.items.exists(i, i.price > 90.0)", 0, "true"},
      {"profile.items.exists(i, i.price > 90.0)", 1, "false"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(exact); i++) {
    struct expr_program *p;
    struct expr_diag d;
    assert_int_equal(baton_expr_compile(env, exact[i].src, strlen(exact[i].src), 0, &p, &d), 0);
    char *got = eval_ctx(p, ctx, vars[exact[i].profile]);
    if (strcmp(got, exact[i].want)) {
      print_error("%s on profile %zu\n  want: %s\n  got:  %s\n", exact[i].src, exact[i].profile,
                  exact[i].want, got);
      fail();
    }
    free(got);
    baton_expr_program_free(p);
  }
  baton_expr_ctx_free(ctx);
  baton_expr_ctx_free(ref_ctx);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_literals_and_operators),
      cmocka_unit_test(test_logic_absorbs_errors),
      cmocka_unit_test(test_macros),
      cmocka_unit_test(test_time),
      cmocka_unit_test(test_format_round_trip),
      cmocka_unit_test(test_compile_errors),
      cmocka_unit_test(test_journey_functions),
      cmocka_unit_test(test_variables_from_json),
      cmocka_unit_test(test_json_text),
      cmocka_unit_test(test_no_heap_in_steady_state),
      cmocka_unit_test(test_threads_share_a_program),
      cmocka_unit_test(test_env_and_limits),
      cmocka_unit_test(test_superinstructions),
      cmocka_unit_test(test_threads_share_hints),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the journey loader: a valid journey parses into the right
 * steps and links; each invalid input fails with the exact message and
 * position listed in journey_errors.golden (input, then the expected error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "journey/journey.h"
#include "util/common.h"

static const char valid[] =
    "id: welcome\n"
    "name: Welcome\n"
    "trigger:\n"
    "  event: Signed Up\n"
    "reentry: never\n"
    "steps:\n"
    "  - id: wait\n"
    "    type: wait\n"
    "    duration: 1h30m\n"
    "  - id: hook\n"
    "    type: webhook\n"
    "    url: https://example.com/h\n"
    "    headers: {X-A: b}\n"
    "    next: again\n"
    "  - id: skipped\n"
    "    type: exit\n"
    "  - id: again\n"
    "    type: wait\n"
    "    duration: 2s\n"
    "    next: hook\n";

static void test_valid(void **state) {
  (void)state;
  struct journey_def *j;
  struct yerr err;
  assert_int_equal(journey_parse(valid, strlen(valid), "w.yaml", NULL, &j, &err), 0);
  assert_string_equal(j->id, "welcome");
  assert_string_equal(j->trigger_event, "Signed Up");
  assert_int_equal(j->reentry, JREENTRY_NEVER);
  assert_int_equal(j->n_steps, 4);
  assert_int_equal(j->steps[0].type, JSTEP_WAIT);
  assert_int_equal(j->steps[0].wait_ms, 5400000);
  assert_int_equal(j->steps[0].next, 1);
  assert_int_equal(j->steps[1].type, JSTEP_WEBHOOK);
  assert_string_equal(j->steps[1].url, "https://example.com/h");
  assert_int_equal(j->steps[1].n_headers, 1);
  assert_string_equal(j->steps[1].headers[0].name, "X-A");
  assert_int_equal(j->steps[1].next, 3);
  assert_int_equal(j->steps[2].next, -1);
  assert_int_equal(j->steps[3].next, 1); /* a loop through a wait is allowed */
  assert_int_equal(journey_step_index(j, "again"), 3);
  journey_free(j);
}

static void test_json_and_expected_id(void **state) {
  (void)state;
  const char *src =
      "{\"trigger\": {\"event\": \"x\"}, \"steps\": [{\"id\": \"a\", \"type\": \"exit\"}]}";
  struct journey_def *j;
  struct yerr err;
  assert_int_equal(journey_parse(src, strlen(src), "j.json", "from-url", &j, &err), 0);
  assert_string_equal(j->id, "from-url");
  assert_int_equal(j->reentry, JREENTRY_AFTER_EXIT);
  journey_free(j);
  assert_int_equal(journey_parse(src, strlen(src), "j.json", NULL, &j, &err), BATON_EINVAL);
  assert_string_equal(err.msg, "id: required");
}

/* Golden file: cases separated by lines "--- case"; each has the YAML, then a
   line "=== error", then the exact formatted error. */
static void test_golden_errors(void **state) {
  (void)state;
  char path[4096];
  const char *src = getenv("BATON_SOURCE_DIR");
  snprintf(path, sizeof(path), "%s/tests/unit/journey/journey_errors.golden", src ? src : ".");
  char *text;
  size_t len;
  assert_int_equal(baton_read_file(path, 1 << 20, &text, &len), 0);
  int cases = 0, failures = 0;
  char *p = strstr(text, "--- case");
  while (p) {
    char *body = strchr(p, '\n') + 1;
    char *sep = strstr(body, "=== error\n");
    assert_non_null(sep);
    char *expect = sep + strlen("=== error\n");
    char *next = strstr(expect, "--- case");
    size_t elen = next ? (size_t)(next - expect) : strlen(expect);
    while (elen && expect[elen - 1] == '\n') elen--;
    struct journey_def *j = NULL;
    struct yerr err;
    int rc = journey_parse(body, (size_t)(sep - body), "j.yaml", NULL, &j, &err);
    char got[1024];
    yerr_format(&err, got, sizeof(got));
    if (rc == 0 || strlen(got) != elen || memcmp(got, expect, elen)) {
      print_error("case %d:\n  expected: %.*s\n  got:      %s (rc %d)\n", cases + 1, (int)elen,
                  expect, rc ? got : "(parsed fine)", rc);
      journey_free(j);
      failures++;
    }
    cases++;
    p = next;
  }
  free(text);
  assert_int_equal(failures, 0);
  assert_true(cases >= 15);
}

static void test_limits(void **state) {
  (void)state;
  struct journey_def *j;
  struct yerr err;
  size_t n = JOURNEY_MAX_SOURCE + 1;
  char *big = malloc(n);
  memset(big, '#', n);
  assert_int_equal(journey_parse(big, n, "big.yaml", NULL, &j, &err), BATON_ETOOBIG);
  free(big);
  assert_int_equal(journey_parse("id: a\xff", 6, "u.yaml", NULL, &j, &err), BATON_EINVAL);
  assert_string_equal(err.msg, "journey source is not valid UTF-8 text");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_json_and_expected_id),
      cmocka_unit_test(test_golden_errors),
      cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

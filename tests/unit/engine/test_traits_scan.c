/* Identify traits reach the profile whatever surrounds the top-level
   "traits" member (merge_traits scans for it instead of parsing the event). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/record.h"
#include "util/buf.h"

static void identify(struct engine *e, uint64_t lsn, const char *uid, const char *json) {
  struct buf b;
  buf_init(&b, 0);
  /* messageIds differ: the engine drops a repeated (source, messageId) */
  struct rec_event ev = {.kind = EV_IDENTIFY, .received_ms = 1000 + (int64_t)lsn,
                         .timestamp_ms = 1000 + (int64_t)lsn,
                         .user_id = {uid, (uint32_t)strlen(uid)}, .anonymous_id = {"", 0},
                         .message_id = {uid, (uint32_t)strlen(uid)}, .name = {"", 0},
                         .source = {"t", 1}, .json = {json, (uint32_t)strlen(json)}};
  assert_int_equal(rec_event_encode(&b, &ev), 0);
  assert_int_equal(engine_apply(e, lsn, b.ptr, b.len), 0);
  buf_release(&b);
}

static void expect_traits(struct engine *e, const char *uid, const char *want) {
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, uid, &b), 0);
  char needle[256];
  snprintf(needle, sizeof(needle), "\"traits\":%s,", want);
  if (!strstr(b.ptr, needle)) fail_msg("profile %s: want %s in %s", uid, needle, b.ptr);
  buf_release(&b);
}

static void test_traits_found_by_scan(void **state) {
  (void)state;
  struct engine_options o = {.recent_events = 5};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  static const struct {
    const char *uid, *json, *want;
  } cases[] = {
      {"a", "{\"userId\":\"a\",\"context\":{\"traits\":{\"no\":1}},\"traits\":{\"yes\":2}}",
       "{\"yes\":2}"},
      {"b", "{\"userId\":\"b\",\"x\":\"he said \\\"traits\\\": {\",\"traits\":{\"k\":\"}\"}}",
       "{\"k\":\"}\"}"},
      {"c", "{\"userId\":\"c\",\"context\":{\"traits\":{\"no\":1}}}", "{}"},
      {"d", "{\"userId\":\"d\",\"tr\\u0061its\":{\"e\":1}}", "{\"e\":1}"},
      {"e", "{\"userId\":\"e\",\"traits\":{\"a\":1},\"traits\":{\"b\":2}}", "{\"a\":1}"},
      {"f", "{\"userId\":\"f\",\"traits\":\"not an object\"}", "{}"},
      {"g", " { \"userId\" : \"g\" , \"traits\" : { \"n\" : [1, {\"m\": [2]}] , \"s\": \"\\\\\" } } ",
       "{\"n\":[1,{\"m\":[2]}],\"s\":\"\\\\\"}"},
      {"h", "{\"a\":[\"]\",\"}\"],\"userId\":\"h\",\"traits\":{\"r\":[]}}", "{\"r\":[]}"},
      {"i", "{\"userId\":\"i\",\"traitsX\":{\"a\":1},\"trait\":{\"b\":1}}", "{}"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    identify(e, i + 1, cases[i].uid, cases[i].json);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    expect_traits(e, cases[i].uid, cases[i].want);
  engine_close(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_traits_found_by_scan)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

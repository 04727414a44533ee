/*
 * Unit tests for the Segment payload parser: normalisation (timestamps,
 * messageId, type, writeKey), batches, and a table of bad inputs that must
 * each fail with the right code and field and produce no records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/record.h"
#include "ingest/segment.h"
#include "util/clock.h"
#include "util/common.h"

#define RECEIVED 1800000000000LL /* 2027-01-15T08:00:00.000Z */

static const struct segment_limits lim = {.max_event_bytes = 2048, .max_batch_events = 5};

static int parse(const char *body, enum segment_endpoint ep, struct segment_out *out,
                 struct segment_error *err) {
  return segment_parse(body, strlen(body), ep, &lim, RECEIVED, "web", 42, out, err);
}

static void decode(struct segment_out *out, size_t i, struct rec *r) {
  assert_true(i < out->n);
  assert_int_equal(rec_decode(out->data.ptr + out->offsets[i],
                              out->offsets[i + 1] - out->offsets[i], r),
                   0);
  assert_int_equal(r->type, REC_EVENT);
}

static void test_track_normalised(void **state) {
  (void)state;
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  assert_int_equal(parse("{\"userId\":42,\"event\":\"Bought\",\"properties\":{\"v\":1},"
                         "\"timestamp\":\"2027-01-15T07:59:00Z\",\"sentAt\":\"2027-01-15T08:00:30Z\","
                         "\"writeKey\":\"wk_secret\"}",
                         SEG_TRACK, &out, &err),
                   0);
  assert_int_equal(out.n, 1);
  assert_string_equal(out.write_key, "wk_secret");
  struct rec r;
  decode(&out, 0, &r);
  assert_int_equal(r.u.ev.kind, EV_TRACK);
  assert_memory_equal(r.u.ev.user_id.ptr, "42", 2); /* integer ids become strings */
  assert_memory_equal(r.u.ev.name.ptr, "Bought", 6);
  /* clock skew: received - (sentAt - timestamp) = 08:00:00 - 90s = 07:58:30 */
  int64_t want;
  clock_parse_iso8601("2027-01-15T07:58:30Z", &want);
  assert_int_equal(r.u.ev.timestamp_ms, want);
  char *json = strndup(r.u.ev.json.ptr, r.u.ev.json.len);
  assert_non_null(strstr(json, "\"type\":\"track\""));
  assert_non_null(strstr(json, "\"timestamp\":\"2027-01-15T07:58:30.000Z\""));
  assert_non_null(strstr(json, "\"originalTimestamp\":\"2027-01-15T07:59:00.000Z\""));
  assert_non_null(strstr(json, "\"receivedAt\":\"2027-01-15T08:00:00.000Z\""));
  assert_non_null(strstr(json, "\"messageId\":\"baton-"));
  assert_null(strstr(json, "writeKey"));
  free(json);
  segment_out_release(&out);
}

static void test_batch(void **state) {
  (void)state;
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  assert_int_equal(
      parse("{\"batch\":[{\"type\":\"identify\",\"userId\":\"u1\",\"traits\":{\"a\":1}},"
            "{\"type\":\"track\",\"anonymousId\":\"a1\",\"event\":\"E\",\"messageId\":\"m-2\"},"
            "{\"type\":\"page\",\"userId\":\"u1\",\"name\":\"Home\"}],"
            "\"context\":{\"library\":{\"name\":\"x\"}},\"sentAt\":\"2027-01-15T08:00:00Z\"}",
            SEG_BATCH, &out, &err),
      0);
  assert_int_equal(out.n, 3);
  struct rec r;
  decode(&out, 0, &r);
  assert_int_equal(r.u.ev.kind, EV_IDENTIFY);
  decode(&out, 1, &r);
  assert_int_equal(r.u.ev.kind, EV_TRACK);
  assert_int_equal(r.u.ev.user_id.len, 0);
  assert_memory_equal(r.u.ev.anonymous_id.ptr, "a1", 2);
  assert_memory_equal(r.u.ev.message_id.ptr, "m-2", 3);
  assert_non_null(memmem(r.u.ev.json.ptr, r.u.ev.json.len, "\"library\"", 9));
  decode(&out, 2, &r);
  assert_int_equal(r.u.ev.kind, EV_PAGE);
  assert_memory_equal(r.u.ev.name.ptr, "Home", 4);
  segment_out_release(&out);
}

struct bad_case {
  const char *body;
  enum segment_endpoint ep;
  const char *code;
  const char *field;
};

static void test_bad_inputs(void **state) {
  (void)state;
  static const struct bad_case cases[] = {
      {"", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\"event\":", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\"event\":\"x\"} junk", SEG_TRACK, "invalid_json", "body"},
      {"[1,2]", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"\xc3\x28\",\"event\":\"x\"}", SEG_TRACK, "invalid_utf8", "body"},
      {"{\"event\":\"x\"}", SEG_TRACK, "missing_identity", "userId"},
      {"{\"userId\":\"\",\"anonymousId\":null,\"event\":\"x\"}", SEG_TRACK, "missing_identity",
       "userId"},
      {"{\"userId\":true,\"event\":\"x\"}", SEG_TRACK, "invalid_field", "userId"},
      {"{\"userId\":1.5,\"event\":\"x\"}", SEG_TRACK, "invalid_field", "userId"},
      {"{\"anonymousId\":{},\"event\":\"x\"}", SEG_TRACK, "invalid_field", "anonymousId"},
      {"{\"userId\":\"a\"}", SEG_TRACK, "invalid_field", "event"},
      {"{\"userId\":\"a\",\"event\":7}", SEG_TRACK, "invalid_field", "event"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"properties\":[]}", SEG_TRACK, "invalid_field",
       "properties"},
      {"{\"userId\":\"a\",\"traits\":\"x\"}", SEG_IDENTIFY, "invalid_field", "traits"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"context\":1}", SEG_TRACK, "invalid_field", "context"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"timestamp\":\"yesterday\"}", SEG_TRACK,
       "invalid_field", "timestamp"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"messageId\":5}", SEG_TRACK, "invalid_field",
       "messageId"},
      {"{\"userId\":\"a\"}", SEG_ALIAS, "invalid_field", "previousId"},
      {"{\"userId\":\"a\"}", SEG_GROUP, "invalid_field", "groupId"},
      {"{\"batch\":{}}", SEG_BATCH, "invalid_field", "batch"},
      {"{\"batch\":[]}", SEG_BATCH, "invalid_field", "batch"},
      {"{\"batch\":[1]}", SEG_BATCH, "invalid_event", "batch[0]"},
      {"{\"batch\":[{\"userId\":\"a\"}]}", SEG_BATCH, "invalid_field", "batch[0].type"},
      {"{\"batch\":[{\"type\":\"fly\",\"userId\":\"a\"}]}", SEG_BATCH, "invalid_field",
       "batch[0].type"},
      {"{\"batch\":[{\"type\":\"track\",\"userId\":\"a\",\"event\":\"x\"},{\"type\":\"track\","
       "\"event\":\"y\"}]}",
       SEG_BATCH, "missing_identity", "batch[1].userId"},
      {"{\"batch\":[{},{},{},{},{},{}]}", SEG_BATCH, "batch_too_large", "batch"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"userId\":\"b\"}", SEG_TRACK, "invalid_field", "userId"},
      {"{\"batch\":[{\"type\":\"track\",\"type\":\"identify\",\"userId\":\"a\",\"event\":\"x\"}]}",
       SEG_BATCH, "invalid_field", "batch[0].type"},
      /* Regressions: values cJSON would have changed silently instead of refusing. */
      {"{\"userId\":\"a\",\"event\":\"x\",\"properties\":{\"n\":1e400}}", SEG_TRACK,
       "invalid_field", "properties.n"},
      {"{\"batch\":[{\"type\":\"identify\",\"userId\":\"a\",\"traits\":{\"l\":[1,-1e999]}}]}",
       SEG_BATCH, "invalid_field", "batch[0].traits.l[1]"},
      {"{\"userId\":\"victim\\u0000x\",\"event\":\"x\"}", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\"event\":\"x\\u0000y\"}", SEG_TRACK, "invalid_json", "body"},
      /* cJSON 1.7.15 decodes a \u escape without four hex digits as U+0000. */
      {"{\"userId\":\"victim\\uZZZZ\",\"event\":\"x\"}", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\"event\":\"x\\u00G0y\"}", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"properties\":{\"s\":\"\\u00\\\"y\"}}", SEG_TRACK,
       "invalid_json", "body"},
      {"{\"userId\":\"a\x01\",\"event\":\"x\"}", SEG_TRACK, "invalid_json", "body"},
      /* tab, CR and LF: whitespace between values, refused inside strings */
      {"{\"userId\":\"a\tb\",\"event\":\"x\"}", SEG_TRACK, "invalid_json", "body"},
      {"{\n\t\"userId\" : \"a\",\r\n\t\"event\" : \"x\ny\"\n}", SEG_TRACK, "invalid_json",
       "body"},
      {"{\"userId\":\"a\\\\\\u0000\",\"event\":\"x\"}", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\x02\"event\":\"x\"}", SEG_TRACK, "invalid_json", "body"},
      {"{\"userId\":\"a\",\"event\":\"x\",\"timestamp\":\"2026-02-30T00:00:00Z\"}", SEG_TRACK,
       "invalid_field", "timestamp"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct segment_out out;
    struct segment_error err;
    segment_out_init(&out);
    int rc = parse(cases[i].body, cases[i].ep, &out, &err);
    if (rc != BATON_EINVAL || strcmp(err.code, cases[i].code) || strcmp(err.field, cases[i].field) ||
        out.n != 0 || err.status != 400 || !err.msg[0]) {
      print_error("case %zu (%s): rc %d code %s field %s n %zu msg %s\n", i, cases[i].body, rc,
                  err.code, err.field, out.n, err.msg);
      fail();
    }
    segment_out_release(&out);
  }
}

static void test_limits(void **state) {
  (void)state;
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  char big[4096];
  int n = snprintf(big, sizeof(big), "{\"userId\":\"a\",\"event\":\"x\",\"properties\":{\"p\":\"");
  memset(big + n, 'x', 2500);
  strcpy(big + n + 2500, "\"}}");
  assert_int_equal(parse(big, SEG_TRACK, &out, &err), BATON_EINVAL);
  assert_string_equal(err.code, "event_too_large");
  /* 10,000-deep nesting is refused by the parser's depth limit, not the stack. */
  size_t depth = 10000;
  char *deep = malloc(2 * depth + 64);
  char *p = deep + sprintf(deep, "{\"userId\":\"a\",\"event\":\"x\",\"properties\":{\"d\":");
  memset(p, '[', depth);
  memset(p + depth, ']', depth);
  strcpy(p + 2 * depth, "}}");
  assert_int_equal(parse(deep, SEG_TRACK, &out, &err), BATON_EINVAL);
  assert_string_equal(err.code, "invalid_json");
  free(deep);
  /* Not refused: an escaped backslash followed by "u0000", a leap day, tiny numbers. */
  assert_int_equal(parse("{\"userId\":\"a\\\\u0000b\",\"event\":\"x\",\"properties\":{\"t\":1e-400},"
                         "\"timestamp\":\"2028-02-29T00:00:00Z\"}",
                         SEG_TRACK, &out, &err),
                   0);
  assert_int_equal(out.n, 1);
  struct rec r;
  decode(&out, 0, &r);
  assert_int_equal(r.u.ev.user_id.len, 8); /* the characters a, backslash, u, 0, 0, 0, 0, b */
  /* Where: the first character refused, inside a string or not. */
  assert_int_equal(parse("{\"userId\":\"a\",\"event\":\"x\\\\\\u0000\",\"n\":\"\x02\"}", SEG_TRACK,
                         &out, &err),
                   BATON_EINVAL);
  assert_string_equal(err.msg, "a string holds \\u0000 (NUL), which is not accepted, at byte 26");
  assert_int_equal(
      parse("{\"userId\":\"a\",\n\"event\":\"x\",\"n\":\"\t\"}", SEG_TRACK, &out, &err),
      BATON_EINVAL);
  assert_string_equal(err.msg, "a raw control character (not allowed in JSON) at byte 32");
  assert_int_equal(parse("{\"userId\":\"a\\\\\",\n\t\"event\":\"x\"}\r\n", SEG_TRACK, &out, &err),
                   0);
  /* \u escapes with four hex digits in either case are fine; others are named. */
  assert_int_equal(
      parse("{\"userId\":\"\\u00e9\\u00E9\",\"event\":\"x\"}", SEG_TRACK, &out, &err), 0);
  decode(&out, 0, &r);
  assert_int_equal(r.u.ev.user_id.len, 4);
  assert_int_equal(parse("{\"userId\":\"a\\u12x4\",\"event\":\"x\"}", SEG_TRACK, &out, &err),
                   BATON_EINVAL);
  assert_string_equal(err.msg,
                      "a string holds a \\u escape without four hex digits (not JSON) at byte 12");
  segment_out_release(&out);
  segment_out_init(&out);
  assert_int_equal(out.n, 0);
  segment_out_release(&out);
}

static const char *resolve(void *arg, const char *key) {
  (void)arg;
  return !strcmp(key, "wk_browser") ? "browser" : NULL;
}

/* Without a source, the body's writeKey names it, in the same single parse. */
static void test_write_key_in_body(void **state) {
  (void)state;
  struct segment_limits l = lim;
  l.source_for_key = resolve;
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  const char *ok = "{\"userId\":\"a\",\"event\":\"x\",\"writeKey\":\"wk_browser\"}";
  assert_int_equal(segment_parse(ok, strlen(ok), SEG_TRACK, &l, RECEIVED, NULL, 1, &out, &err), 0);
  struct rec r;
  decode(&out, 0, &r);
  assert_memory_equal(r.u.ev.source.ptr, "browser", 7);
  const char *bad = "{\"userId\":\"a\",\"event\":\"x\",\"writeKey\":\"wk_other\"}";
  assert_int_equal(segment_parse(bad, strlen(bad), SEG_TRACK, &l, RECEIVED, NULL, 1, &out, &err),
                   BATON_EINVAL);
  assert_int_equal(err.status, 401);
  assert_string_equal(err.code, "invalid_write_key");
  assert_int_equal(out.n, 0);
  segment_out_release(&out);
}

static void test_endpoints(void **state) {
  (void)state;
  assert_int_equal(segment_endpoint_for_path("/v1/track"), SEG_TRACK);
  assert_int_equal(segment_endpoint_for_path("/v1/b"), SEG_BATCH);
  assert_int_equal(segment_endpoint_for_path("/v1/a"), SEG_ALIAS);
  assert_int_equal(segment_endpoint_for_path("/v1/trackx"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_track_normalised),
      cmocka_unit_test(test_batch),
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_endpoints),
      cmocka_unit_test(test_write_key_in_body),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

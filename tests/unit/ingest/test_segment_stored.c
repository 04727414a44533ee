/*
 * The stored form of events: segment_parse writes each event from the body's
 * text (minified, numbers and escapes as sent) instead of printing cJSON's
 * tree. For a corpus of awkward bodies, each stored event must mean what the
 * old cJSON round trip stored (a reference built here the way segment.c did
 * before: the tree edited with cJSON, then cJSON_PrintUnformatted): the same
 * members in the same order, equal strings, numbers equal as doubles. It
 * must also be minified, strict RFC 8259 JSON, and a few are checked byte
 * for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>

#include "engine/record.h"
#include "expr/expr.h"
#include "ingest/segment.h"
#include "util/clock.h"
#include "util/common.h"

#define RECEIVED 1800000000123LL

static const struct segment_limits lim = {.max_event_bytes = 32 * 1024, .max_batch_events = 100};

/* Sets obj.name to the string val where cJSON did: in place, else at the end. */
static void set_string(cJSON *obj, const char *name, const char *val) {
  if (cJSON_GetObjectItemCaseSensitive(obj, name))
    cJSON_ReplaceItemInObjectCaseSensitive(obj, name, cJSON_CreateString(val));
  else
    cJSON_AddStringToObject(obj, name, val);
}

/* The event as the cJSON round trip stored it, from the body and the record. */
static char *reference(const char *body, enum segment_endpoint ep, size_t i,
                       const struct rec_event *r) {
  cJSON *root = cJSON_Parse(body);
  assert_non_null(root);
  cJSON *ev = root, *batch_ctx = NULL;
  if (ep == SEG_BATCH) {
    ev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "batch"), (int)i);
    batch_ctx = cJSON_GetObjectItemCaseSensitive(root, "context");
  } else {
    set_string(ev, "type", event_kind_name(r->kind));
  }
  char id[1100], ts[32];
  if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(ev, "userId"))) {
    snprintf(id, sizeof(id), "%.*s", (int)r->user_id.len, r->user_id.ptr);
    set_string(ev, "userId", id);
  }
  if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(ev, "anonymousId"))) {
    snprintf(id, sizeof(id), "%.*s", (int)r->anonymous_id.len, r->anonymous_id.ptr);
    set_string(ev, "anonymousId", id);
  }
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "timestamp");
  const cJSON *ot = cJSON_GetObjectItemCaseSensitive(ev, "originalTimestamp");
  int64_t ms;
  if (cJSON_IsString(t) && !cJSON_IsString(ot)) {
    assert_int_equal(clock_parse_iso8601(t->valuestring, &ms), 0);
    set_string(ev, "originalTimestamp", clock_format_ms(ms, ts));
  }
  set_string(ev, "timestamp", clock_format_ms(r->timestamp_ms, ts));
  set_string(ev, "receivedAt", clock_format_ms(RECEIVED, ts));
  const cJSON *mid = cJSON_GetObjectItemCaseSensitive(ev, "messageId");
  if (!mid || cJSON_IsNull(mid)) {
    snprintf(id, sizeof(id), "%.*s", (int)r->message_id.len, r->message_id.ptr);
    set_string(ev, "messageId", id);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(ev, "writeKey");
  if (batch_ctx && !cJSON_GetObjectItemCaseSensitive(ev, "context"))
    cJSON_AddItemToObject(ev, "context", cJSON_Duplicate(batch_ctx, 1));
  char *json = cJSON_PrintUnformatted(ev);
  cJSON_Delete(root);
  return json;
}

/* Equal member by member in order, numbers as cJSON_Compare compares them.
   (cJSON_Compare itself finds members by name, so it cannot tell whether two
   objects with a repeated key are the same.) */
static int ordered_equal(const cJSON *a, const cJSON *b) {
  if ((a->type & 0xff) != (b->type & 0xff)) return 0;
  if (cJSON_IsNumber(a))
    return fabs(a->valuedouble - b->valuedouble) <=
           fmax(fabs(a->valuedouble), fabs(b->valuedouble)) * DBL_EPSILON;
  if (cJSON_IsString(a)) return !strcmp(a->valuestring, b->valuestring);
  const cJSON *x = a->child, *y = b->child;
  for (; x && y; x = x->next, y = y->next)
    if ((cJSON_IsObject(a) && strcmp(x->string, y->string)) || !ordered_equal(x, y)) return 0;
  return !x && !y;
}

static int minified(const char *s, size_t n) {
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    if (in_str) {
      if (s[i] == '\\') i++;
      else if (s[i] == '"') in_str = 0;
    } else if (s[i] == '"') {
      in_str = 1;
    } else if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
      return 0;
    }
  }
  return 1;
}

static void check_body(const char *body, enum segment_endpoint ep, size_t n_events) {
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  int rc = segment_parse(body, strlen(body), ep, &lim, RECEIVED, "web", 7, &out, &err);
  if (rc) fail_msg("%s: %s %s", body, err.code, err.msg);
  assert_int_equal(out.n, n_events);
  struct expr_arena *arena = baton_expr_arena_new(0);
  for (size_t i = 0; i < out.n; i++) {
    struct rec r;
    assert_int_equal(rec_decode(out.data.ptr + out.offsets[i],
                                out.offsets[i + 1] - out.offsets[i], &r),
                     0);
    const struct rec_event *ev = &r.u.ev;
    char *want = reference(body, ep, i, ev);
    cJSON *a = cJSON_Parse(want), *a2 = cJSON_Parse(want);
    cJSON *b = cJSON_ParseWithLength(ev->json.ptr, ev->json.len);
    struct expr_value v;
    /* cJSON_Compare where it works: not on repeated keys (then a != a2 for it) */
    int cjson_says = !cJSON_Compare(a, a2, 1) || cJSON_Compare(a, b, 1);
    if (!b || !ordered_equal(a, b) || !cjson_says ||
        !minified(ev->json.ptr, ev->json.len) ||
        baton_expr_value_parse_json(arena, ev->json.ptr, ev->json.len, &v, NULL))
      fail_msg("event %zu of %s\n  stored    %.*s\n  reference %s", i, body, (int)ev->json.len,
               ev->json.ptr, want);
    cJSON_Delete(a);
    cJSON_Delete(a2);
    cJSON_Delete(b);
    free(want);
  }
  baton_expr_arena_free(arena);
  segment_out_release(&out);
}

static void test_same_meaning(void **state) {
  (void)state;
  static const struct {
    const char *body;
    enum segment_endpoint ep;
    size_t n;
  } cases[] = {
      /* escapes and \u sequences, surrogate pairs, escaped keys */
      {"{\"userId\":\"a\",\"event\":\"E\",\"properties\":{\"s\":\"q \\\" b \\\\ s \\/ t \\t n \\n "
       "c \\u0001 e \\u00e9 \\u00E9 smile \\ud83d\\ude00 A \\u0041 raw \xc3\xa9\"}}",
       SEG_TRACK, 1},
      {"{\"us\\u0065rId\":\"k\",\"event\":\"E\",\"time\\u0073tamp\":\"2027-01-15T07:59:00Z\","
       "\"w\\u0072iteKey\":\"wk\",\"\\\"\":1,\"\\\\\":2,\"\":3}",
       SEG_TRACK, 1},
      /* unicode keys and values */
      {"{\"userId\":\"\xe6\x97\xa5\",\"event\":\"E\",\"properties\":{\"\xd0\xba\xd0\xbb\xd1\x8e\xd1"
       "\x87\":\"\xd0\xb7\",\"\xf0\x9f\x98\x80\":[\"\xe2\x82\xac\"]}}",
       SEG_TRACK, 1},
      /* numbers as cJSON read them; and spellings cJSON accepts that JSON does not */
      {"{\"userId\":\"a\",\"event\":\"E\",\"properties\":{\"n\":[1e2,-0,1.50,0.1,1E+02,1e-400,"
       "12345678901234567890,-2147483648,2147483648,3.141592653589793238,0.30000000000000004,"
       "1e21,-1.5e-7,0,-0.0]}}",
       SEG_TRACK, 1},
      {"{\"userId\":\"a\",\"event\":\"E\",\"properties\":{\"odd\":[012,-.5,1.,1.e3,00,-00,-00.50,"
       "0.e1]}}",
       SEG_TRACK, 1},
      /* integer ids become strings, in place */
      {"{\"userId\":12345,\"anonymousId\":-9007199254740991,\"event\":\"E\"}", SEG_TRACK, 1},
      /* pretty-printed, with CRLF and tabs */
      {"\r\n{\n  \"userId\" : \"a\" ,\n\t\"event\" : \"E\",\r\n  \"properties\" : { \"a\" : "
       "[ 1 , 2 , { \"b\" : null } ] , \"c\" : true , \"d\" : false , \"e\" : [ ] , \"f\" : { } "
       "}\n}\n  ",
       SEG_TRACK, 1},
      /* a UTF-8 byte order mark, which cJSON skips */
      {"\xef\xbb\xbf {\"userId\":\"bom\",\"event\":\"E\"}", SEG_TRACK, 1},
      /* repeated keys Baton does not read, nested; a repeated receivedAt (only the first is set) */
      {"{\"userId\":\"a\",\"event\":\"E\",\"properties\":{\"x\":1,\"x\":2,\"y\":{\"z\":1,\"z\":"
       "[{\"z\":3,\"z\":4}]}},\"receivedAt\":\"client\",\"receivedAt\":5}",
       SEG_TRACK, 1},
      /* members Baton replaces in place: null messageId, timestamp and originalTimestamp, type */
      {"{\"messageId\":null,\"type\":\"track\",\"userId\":\"a\",\"timestamp\":null,"
       "\"originalTimestamp\":null,\"event\":\"E\",\"writeKey\":\"wk\",\"receivedAt\":[1]}",
       SEG_IDENTIFY, 1},
      {"{\"userId\":\"a\",\"event\":\"E\",\"timestamp\":\"2027-01-15T07:59:00+02:00\","
       "\"originalTimestamp\":\"2027-01-15T07:58:00Z\",\"sentAt\":\"2027-01-15T08:00:00Z\","
       "\"messageId\":\"m-1\"}",
       SEG_TRACK, 1},
      {"{\"userId\":\"a\",\"event\":\"E\",\"timestamp\":\"2027-01-15T07:59:00Z\"}", SEG_PAGE, 1},
      {"{\"userId\":\"a\",\"previousId\":7,\"traits\":{}}", SEG_ALIAS, 1},
      {"{\"anonymousId\":\"x\",\"groupId\":\"g\",\"traits\":{\"n\":\"\\\"\"}}", SEG_GROUP, 1},
      /* a batch: context copied where an event has none, writeKey inside and out, sentAt */
      {"{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"writeKey\":\"in\"},"
       "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"a\":1.0},\"messageId\":null},"
       "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"context\":{\"own\":1}},"
       "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"context\":null,"
       "\"timestamp\":\"2027-01-15T07:00:00Z\"}],"
       "\"context\":{\"library\":{\"name\":\"x\",\"v\":1.50},\"s\":\"\\u00e9\\/\","
       "\"a\":[ 1 , -.5 ]},"
       "\"sentAt\":\"2027-01-15T08:00:00Z\",\"writeKey\":\"out\"}",
       SEG_BATCH, 4},
      /* context before the batch, pretty-printed; a repeated context (the first is used) */
      {"{ \"context\" : { \"c\" : 1 } ,\n \"batch\" : [ { \"type\" : \"page\" , \"userId\" : \"u\" "
       ", \"name\" : \"Home\" } ,\n { \"type\":\"screen\",\"anonymousId\":\"x\",\"name\":null } ],"
       " \"context\":{\"c\":2} }",
       SEG_BATCH, 2},
      /* an escaped "batch" key, and members after the batch */
      {"{\"b\\u0061tch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}],\"x\":[1,{\"y\":"
       "\"]}\"}],\"context\":{\"k\":\"}\"}}",
       SEG_BATCH, 1},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) check_body(cases[i].body, cases[i].ep, cases[i].n);
}

/* The stored text, byte for byte: numbers and escapes as sent, no whitespace. */
static void test_exact_text(void **state) {
  (void)state;
  static const struct {
    const char *body, *want;
  } cases[] = {
      {" { \"userId\" : \"a\" , \"event\" : \"E\\u00e9\\/\" , \"properties\" : { \"n\" : "
       "[ 1e2 , 1.50 , -0 , 12345678901234567890 , 012 , -.5 ] } , \"messageId\" : \"m\" } ",
       "{\"userId\":\"a\",\"event\":\"E\\u00e9\\/\",\"properties\":{\"n\":[1e2,1.50,-0,"
       "12345678901234567890,12,-0.5]},\"messageId\":\"m\",\"type\":\"track\",\"timestamp\":"
       "\"2027-01-15T08:00:00.123Z\",\"receivedAt\":\"2027-01-15T08:00:00.123Z\"}"},
      {"{\"type\":\"page\",\"writeKey\":\"wk\",\"userId\":42,\"event\":\"E\",\"messageId\":\"m\"}",
       "{\"type\":\"track\",\"userId\":\"42\",\"event\":\"E\",\"messageId\":\"m\",\"timestamp\":"
       "\"2027-01-15T08:00:00.123Z\",\"receivedAt\":\"2027-01-15T08:00:00.123Z\"}"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct segment_out out;
    struct segment_error err;
    segment_out_init(&out);
    assert_int_equal(segment_parse(cases[i].body, strlen(cases[i].body), SEG_TRACK, &lim,
                                   RECEIVED, "web", 7, &out, &err),
                     0);
    struct rec r;
    assert_int_equal(rec_decode(out.data.ptr, out.offsets[1], &r), 0);
    char *got = strndup(r.u.ev.json.ptr, r.u.ev.json.len);
    assert_string_equal(got, cases[i].want);
    free(got);
    segment_out_release(&out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_meaning),
      cmocka_unit_test(test_exact_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

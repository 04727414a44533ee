/*
 * Differential tests of lib/expr/closure.c: the closure form of a condition
 * must give what the bytecode gives (compiled with BATON_EXPR_BYTECODE_ONLY)
 * — the same value, or the same error message at the same position — and
 * ask the host the same questions the same number of times, on generated
 * conditions over generated profiles whose fields have the expected types,
 * other types, or are missing, with hosts that answer, fail, or lack
 * callbacks, and with small macro iteration limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/common.h"

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}
#define PICK(a) ((a)[rnd(ARRAY_SIZE(a))])

/* ---- A host that counts its calls and fails on request -------------------- */

struct counting {
  int calls;    /* every callback */
  int now_calls;
};

static int64_t h_now(void *h) {
  ((struct counting *)h)->now_calls++;
  return 1767261600000LL;
}
static bool is_fail(const char *s, size_t n) { return n == 4 && !memcmp(s, "fail", 4); }
static int h_count(void *h, const char *name, size_t len, int64_t since, int64_t until,
                   int64_t *out) {
  ((struct counting *)h)->calls++;
  if (is_fail(name, len)) return BATON_EIO;
  bool all_time = since == INT64_MIN;
  *out = (int64_t)len % 3 + all_time + (!all_time && until - since < 7200000);
  return 0;
}
static int h_cases(void *h, const char *t, size_t len, int64_t *out) {
  ((struct counting *)h)->calls++;
  if (is_fail(t, len)) return BATON_EIO;
  *out = (int64_t)len % 2;
  return 0;
}
static int h_member(void *h, const char *id, size_t len, bool *out) {
  ((struct counting *)h)->calls++;
  if (is_fail(id, len)) return BATON_ENOENT;
  *out = len == 3;
  return 0;
}
static const struct expr_host full_host = {.now_ms = h_now,
                                           .count_events = h_count,
                                           .open_cases = h_cases,
                                           .in_segment = h_member,
                                           .in_journey = h_member};
/* Only some callbacks: the others are "not available" errors. */
static const struct expr_host partial_host = {.count_events = h_count, .in_journey = h_member};

/* ---- Data ------------------------------------------------------------------ */

static const char *const any_values[] = {
    "42", "-7", "0", "30", "9223372036854775807", "42.0", "0.5", "-1.5", "90.0", "1e308",
    "\"gold\"", "\"NL\"", "\"vip.anna@example.com\"", "\"\"", "\"SKU-1\"", "\"abcdefgh\"",
    "\"aaaa`\"", "true", "false", "null", "[]", "[\"vip\", \"a\"]", "[1, 2.0, \"x\"]", "{}",
    "{\"city\": \"Utrecht\"}",
};

static void add_field(struct buf *b, bool *first, const char *name, const char *const *typical,
                      size_t n_typical) {
  uint32_t r = rnd(10);
  if (r == 0) return; /* missing */
  const char *v = r < 7 ? typical[rnd((uint32_t)n_typical)] : PICK(any_values);
  buf_printf(b, "%s\"%s\": %s", *first ? "" : ", ", name, v);
  *first = false;
}

static char *gen_profile(void) {
  static const char *const ages[] = {"42", "30", "-7", "31", "42.0", "30.5"};
  static const char *const scores[] = {"0.5", "90.0", "-1.5", "1", "0.0"};
  static const char *const tiers[] = {"\"gold\"", "\"silver\"", "\"\"", "\"gold \""};
  static const char *const countries[] = {"\"NL\"", "\"FR\"", "\"abcdefgh\"", "\"aaaa`\"", "\"\""};
  static const char *const emails[] = {"\"vip.anna@example.com\"", "\"a@b.com\"", "\"vip.\"",
                                       "\"\""};
  static const char *const flags[] = {"true", "false"};
  static const char *const tags[] = {"[\"vip\", \"newsletter\"]", "[]", "[\"a\", 1, null]",
                                     "[\"SKU-1\", \"X\"]"};
  static const char *const items[] = {
      "[{\"sku\": \"SKU-1\", \"price\": 95.5, \"qty\": 1}, {\"qty\": 0, \"price\": 10.0, \"sku\": "
      "\"X\"}]",
      "[]",
      "[{\"sku\": \"SKU-2\", \"price\": 91.0, \"qty\": 3}, {\"sku\": 3, \"price\": \"90\", "
      "\"qty\": true}, 5]",
      "[{\"sku\": \"SKU-1\", \"price\": 1.0, \"qty\": 1}, {\"sku\": \"SKU-2\", \"price\": 2.0, "
      "\"qty\": 2}, {\"sku\": \"SKU-3\", \"price\": 99.0, \"qty\": 1}, {\"sku\": \"SKU-4\", "
      "\"price\": 4.0}, {\"sku\": \"SKU-5\", \"price\": 5.0, \"qty\": 5}]",
  };
  static const char *const addresses[] = {"{\"city\": \"Utrecht\", \"zip\": \"3511\"}", "{}",
                                          "{\"city\": 7}"};
  struct buf b;
  buf_init(&b, 0);
  buf_putc(&b, '{');
  bool first = true;
  if (rnd(3) == 0) { /* enough keys for a hashed map, in another order */
    for (int i = 0; i < 9; i++) buf_printf(&b, "%s\"k%d\": %d", first ? "" : ", ", i, i), first = false;
  }
  add_field(&b, &first, "age", ages, ARRAY_SIZE(ages));
  add_field(&b, &first, "score", scores, ARRAY_SIZE(scores));
  add_field(&b, &first, "tier", tiers, ARRAY_SIZE(tiers));
  add_field(&b, &first, "country", countries, ARRAY_SIZE(countries));
  add_field(&b, &first, "email", emails, ARRAY_SIZE(emails));
  add_field(&b, &first, "flag", flags, ARRAY_SIZE(flags));
  add_field(&b, &first, "tags", tags, ARRAY_SIZE(tags));
  add_field(&b, &first, "items", items, ARRAY_SIZE(items));
  add_field(&b, &first, "address", addresses, ARRAY_SIZE(addresses));
  /* Names over 7 bytes, whose key tags are not the whole key: pairs that
   * differ only in their last byte share a tag (and, one missing, the
   * other takes its place under the same hint). */
  add_field(&b, &first, "category", tiers, ARRAY_SIZE(tiers));
  add_field(&b, &first, "categorz", tiers, ARRAY_SIZE(tiers));
  add_field(&b, &first, "lifetime_value", ages, ARRAY_SIZE(ages));
  add_field(&b, &first, "lifetime_valuf", ages, ARRAY_SIZE(ages));
  add_field(&b, &first, "a_field_name_over_16_bytes", emails, ARRAY_SIZE(emails));
  add_field(&b, &first, "a_field_name_over_16_bytez", emails, ARRAY_SIZE(emails));
  buf_putc(&b, '}');
  return buf_steal(&b, NULL);
}

/* event: values JSON cannot write (NaN, uint, timestamp), built directly. */
static struct expr_value gen_event(struct expr_arena *a) {
  struct expr_value m = baton_expr_map_new(a, 6);
  baton_expr_map_set(m, 0, baton_expr_string("x", 1), baton_expr_double(rnd(2) ? NAN : 1.0));
  baton_expr_map_set(m, 1, baton_expr_string("u", 1), baton_expr_uint(rnd(3)));
  baton_expr_map_set(m, 2, baton_expr_string("d", 1), baton_expr_double(rnd(2) ? 2.5 : -0.0));
  baton_expr_map_set(m, 3, baton_expr_string("s", 1),
                     rnd(2) ? baton_expr_string("purchase", 8) : baton_expr_int(8));
  baton_expr_map_set(m, 4, baton_expr_string("ts", 2), baton_expr_timestamp_ms(rnd(3) * 1000));
  baton_expr_map_set(m, 5, baton_expr_string("name", 4), baton_expr_string("purchase", 8));
  assert_int_equal(baton_expr_map_seal(a, m), 0);
  return m;
}

/* ---- Conditions ------------------------------------------------------------- */

struct scope {
  char name[2];
  int kind; /* 0: an item map (sku, price, qty), 1: a tag string, 2: an address key */
};

struct gen {
  struct buf b;
  struct scope scopes[4];
  int n_scopes;
};

static void gen_path(struct gen *g) {
  static const char *const top[] = {
      "profile.age", "profile.score", "profile.tier", "profile.country", "profile.email",
      "profile.flag", "profile.tags", "profile.items", "profile.address", "profile.address.city",
      "profile.missing", "event.x", "event.u", "event.d", "event.s", "event.ts", "event.name",
      "context.channel", "profile.address.city.x", "profile.k3", "profile.category",
      "profile.categorz", "profile.lifetime_value", "profile.lifetime_valuf",
      "profile.a_field_name_over_16_bytes", "profile.a_field_name_over_16_bytez"};
  if (g->n_scopes && rnd(2)) {
    const struct scope *s = &g->scopes[rnd((uint32_t)g->n_scopes)];
    static const char *const item_fields[] = {".sku", ".price", ".qty", ".none", ""};
    buf_printf(&g->b, "%s%s", s->name, s->kind == 0 ? PICK(item_fields) : "");
    return;
  }
  buf_puts(&g->b, PICK(top));
}

static void gen_const(struct gen *g) {
  static const char *const k[] = {
      "30", "42", "-7", "0", "31", "30.0", "90.0", "0.5", "42.0", "double(\"NaN\")", "\"gold\"",
      "\"NL\"", "\"\"", "\"vip.\"", "\"SKU-1\"", "\"purchase\"", "true", "false", "null", "5u",
      "0u", "b\"ab\"", "[1, 2]", "duration(\"1h\")", "timestamp(\"1970-01-01T00:00:01Z\")",
      "\"abcdefgh\"", "1e308", "-0.0", "9223372036854775807"};
  buf_puts(&g->b, PICK(k));
}

static void gen_pred(struct gen *g, int depth);

static void gen_leaf(struct gen *g) {
  static const char *const rels[] = {" == ", " != ", " < ", " <= ", " > ", " >= "};
  static const char *const lists[] = {
      "[\"FR\", \"DE\", \"NL\", \"BE\"]", "[\"abcdefgh\", \"NL\", \"x\", \"y\", \"z\"]",
      "[\"NL\", \"gold\"]", "[1, 2.0, \"NL\"]", "[42, 30]", "[]", "[\"\", \"a\", \"aaaa\"]",
      "[\"k1\", \"k2\", \"k3\", \"k4\", \"k5\", \"k6\", \"k7\", \"k8\", \"k9\", \"NL\"]"};
  static const char *const hosts[] = {
      "count(\"purchase\", duration(\"720h\")) >= 2", "count(\"purchase\") > 0",
      "count(\"fail\") == 0", "count(\"purchase\", duration(\"1h\")) < 1.5",
      "openCases(\"billing\") == 1", "openCases(\"fail\") > 0", "inSegment(\"vip\")",
      "inJourney(\"fail\")", "inJourney(\"abc\")", "count(\"x\", duration(\"-1h\")) > 0",
      "count(\"purchase\", duration(\"720h\")) != null", "openCases(\"ab\") <= 1u",
      "!inSegment(\"fail\")"};
  static const char *const affixes[] = {".startsWith(\"vip.\")", ".endsWith(\".com\")",
                                        ".contains(\"@\")", ".startsWith(\"\")",
                                        ".endsWith(\"SKU-1\")", ".contains(\"aaaa`\")"};
  static const char *const has_fields[] = {"age", "city", "sku", "tier", "k3"};
  switch (rnd(12)) {
    case 0:
    case 1:
      gen_path(g), buf_puts(&g->b, PICK(rels)), gen_const(g);
      return;
    case 2:
      gen_const(g), buf_puts(&g->b, PICK(rels)), gen_path(g);
      return;
    case 3:
      gen_path(g), buf_puts(&g->b, PICK(rels)), gen_path(g);
      return;
    case 4:
      gen_path(g), buf_printf(&g->b, " in %s", PICK(lists));
      return;
    case 5:
      gen_const(g), buf_puts(&g->b, " in "), gen_path(g);
      return;
    case 6:
      buf_puts(&g->b, "has("), gen_path(g), buf_printf(&g->b, ".%s)", PICK(has_fields));
      return;
    case 7:
      gen_path(g);
      return;
    case 8:
      gen_path(g), buf_puts(&g->b, PICK(affixes));
      return;
    case 9:
      buf_puts(&g->b, PICK(hosts));
      return;
    case 10:
      buf_puts(&g->b, rnd(2) ? "true" : "false");
      return;
    default:
      gen_path(g), buf_puts(&g->b, PICK(rels)), gen_const(g);
  }
}

static void gen_macro(struct gen *g, int depth) {
  static const char *const macros[] = {"exists", "all", "exists_one"};
  static const char *const ranges[] = {"profile.items", "profile.tags", "profile.address",
                                       "profile.age", "profile.missing"};
  if (g->n_scopes == (int)ARRAY_SIZE(g->scopes)) {
    gen_leaf(g);
    return;
  }
  int r = (int)rnd(ARRAY_SIZE(ranges));
  struct scope *s = &g->scopes[g->n_scopes];
  s->name[0] = (char)('a' + g->n_scopes), s->name[1] = 0;
  s->kind = r == 0 ? 0 : r == 1 ? 1 : 2;
  if (g->n_scopes && rnd(3) == 0 && g->scopes[g->n_scopes - 1].kind == 0) /* a field of the outer item */
    buf_printf(&g->b, "%s.sku", g->scopes[g->n_scopes - 1].name);
  else
    buf_puts(&g->b, ranges[r]);
  buf_printf(&g->b, ".%s(%s, ", PICK(macros), s->name);
  g->n_scopes++;
  gen_pred(g, depth + 1);
  g->n_scopes--;
  buf_putc(&g->b, ')');
}

static void gen_pred(struct gen *g, int depth) {
  if (depth >= 4) {
    gen_leaf(g);
    return;
  }
  switch (rnd(10)) {
    case 0:
      buf_puts(&g->b, "!("), gen_pred(g, depth + 1), buf_putc(&g->b, ')');
      return;
    case 1:
    case 2:
      buf_putc(&g->b, '('), gen_pred(g, depth + 1), buf_puts(&g->b, " && ");
      gen_pred(g, depth + 1), buf_putc(&g->b, ')');
      return;
    case 3:
      buf_putc(&g->b, '('), gen_pred(g, depth + 1), buf_puts(&g->b, " || ");
      gen_pred(g, depth + 1), buf_putc(&g->b, ')');
      return;
    case 4:
      buf_putc(&g->b, '('), gen_pred(g, depth + 1), buf_puts(&g->b, " ? ");
      gen_pred(g, depth + 1), buf_puts(&g->b, " : "), gen_pred(g, depth + 1);
      buf_putc(&g->b, ')');
      return;
    case 5:
      gen_macro(g, depth);
      return;
    default:
      gen_leaf(g);
  }
}

/* ---- The comparison ------------------------------------------------------- */

static char *run(const struct expr_program *p, struct expr_ctx *ctx, const struct expr_value *vars,
                 const struct expr_host *host, struct counting *c) {
  struct expr_value v;
  struct buf b;
  buf_init(&b, 0);
  memset(c, 0, sizeof(*c));
  int rc = baton_expr_eval(p, ctx, vars, host, c, &v);
  if (rc)
    buf_printf(&b, "%d ERROR@%u: %s", rc, baton_expr_error_pos(v.v.err),
               baton_expr_error_message(v.v.err));
  else
    baton_expr_value_format(&b, v);
  buf_printf(&b, " [host calls %d, now %d]", c->calls, c->now_calls);
  return buf_steal(&b, NULL);
}

static bool has_closure(const struct expr_program *p) {
  struct buf b;
  buf_init(&b, 0);
  baton_expr_program_dump(&b, p);
  bool yes = strstr(b.ptr, "closure: yes") != NULL;
  buf_release(&b);
  return yes;
}

static void check_one(const struct expr_env *env, const char *src, struct expr_value (*vars)[3],
                      size_t n_vars, struct expr_ctx *ctx, struct expr_ctx *ref_ctx,
                      int *n_compiled, int *n_closures) {
  struct expr_program *p, *ref;
  struct expr_diag d1, d2;
  int rc1 = baton_expr_compile(env, src, strlen(src), 0, &p, &d1);
  int rc2 = baton_expr_compile(env, src, strlen(src), BATON_EXPR_BYTECODE_ONLY, &ref, &d2);
  assert_int_equal(rc1, rc2);
  if (rc1) return;
  assert_false(has_closure(ref));
  ++*n_compiled;
  *n_closures += has_closure(p);
  static const struct expr_host *const hosts[] = {&full_host, &partial_host, NULL};
  static const uint64_t limits[] = {0, 3, 1};
  for (size_t i = 0; i < n_vars; i++)
    for (size_t h = 0; h < ARRAY_SIZE(hosts); h++) {
      uint64_t limit = limits[rnd(ARRAY_SIZE(limits))];
      baton_expr_ctx_set_limit(ctx, limit);
      baton_expr_ctx_set_limit(ref_ctx, limit);
      struct counting c1, c2;
      /* Twice: the second run with the field-position hints the first left. */
      for (int round = 0; round < 2; round++) {
        char *got = run(p, ctx, vars[i], hosts[h], &c1);
        char *want = run(ref, ref_ctx, vars[i], hosts[h], &c2);
        if (strcmp(got, want)) {
          print_error("%s on data %zu, host %zu, limit %llu\n  want: %s\n  got:  %s\n", src, i, h,
                      (unsigned long long)limit, want, got);
          fail();
        }
        free(got);
        free(want);
      }
    }
  baton_expr_program_free(p);
  baton_expr_program_free(ref);
}

/* Conditions of every shape the closures take, written out. */
static void test_closure_shapes(void **state) {
  (void)state;
  static const char *const srcs[] = {
      "profile.age > 30",
      "profile.age > 30.0",
      "30 < profile.age",
      "profile.tier == \"gold\" && event.name == \"purchase\"",
      "profile.country in [\"FR\", \"DE\", \"ES\", \"IT\", \"NL\", \"BE\", \"PT\", \"AT\"]",
      "count(\"purchase\", duration(\"720h\")) >= 2",
      "profile.email.startsWith(\"vip.\")",
      "profile.items.exists(i, i.price > 90.0)",
      "profile.items.all(i, i.qty >= 1 && i.sku.startsWith(\"SKU-\"))",
      "profile.items.exists_one(i, i.qty == 1)",
      "\"vip\" in profile.tags",
      "has(profile.address.city) && profile.address.city == \"Utrecht\"",
      "profile.flag ? profile.age >= 18 : profile.score < 0.5",
      "!(profile.tier != \"gold\") || inSegment(\"vip\")",
      "profile.tier == \"gold\" && count(\"fail\") == 0",
      "profile.age == profile.score",
      "event.x < 1.0 || event.x >= 1.0",
      "event.x == event.x",
      "event.u > 1 && event.u < 2.5",
      "profile.items.exists(i, profile.tags.exists(t, t == i.sku))",
      "profile.address.exists(k, k == \"city\")",
      "profile.tags.all(t, t.contains(\"e\"))",
      "profile.tier != \"gold\" || event.name == \"purchase\"",
      "profile.tier == \"gold\" && profile.age > 30 && profile.country in [\"NL\", \"BE\"]",
      "profile.email.endsWith(\".com\") || profile.score <= 0.5",
  };
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_ctx *ctx = baton_expr_ctx_new(), *ref_ctx = baton_expr_ctx_new();
  rng_state = 0x9E3779B97F4A7C15ull;
  struct expr_value vars[64][3];
  for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
    char *json = gen_profile();
    assert_int_equal(baton_expr_value_parse_json(a, json, strlen(json), &vars[i][0], NULL), 0);
    free(json);
    vars[i][1] = gen_event(a);
    vars[i][2] = baton_expr_null();
  }
  int compiled = 0, closures = 0;
  for (size_t s = 0; s < ARRAY_SIZE(srcs); s++)
    check_one(env, srcs[s], vars, ARRAY_SIZE(vars), ctx, ref_ctx, &compiled, &closures);
  /* Each of these has a closure. */
  assert_int_equal(compiled, (int)ARRAY_SIZE(srcs));
  assert_int_equal(closures, (int)ARRAY_SIZE(srcs));
  baton_expr_ctx_free(ctx);
  baton_expr_ctx_free(ref_ctx);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

/* The macro iteration budget, spent as the VM spends it, for every limit
 * around the length of lists that one element decides or none does, also
 * when two macros share the budget. */
static void test_closure_budget(void **state) {
  (void)state;
  static const char *const srcs[] = {
      "profile.items.all(i, i.qty >= 1)",
      "profile.items.exists(i, i.price > 90.0)",
      "profile.items.exists(i, i.sku == \"SKU-2\")",
      "profile.items.all(i, i.qty >= 1 && i.sku.startsWith(\"SKU-\"))",
      "profile.items.exists(i, i.qty == 3 || i.price > 90.0)",
      "profile.items.exists(i, i.price > 90.0) || profile.items.all(i, i.qty >= 1)",
      "profile.items.all(i, i.qty >= 1) && profile.items.exists(i, i.qty == 3)",
      "profile.items.all(i, i.qty >= 1 && i.price < 90.0 && i.sku.startsWith(\"SKU\"))",
      "profile.items.all(i, profile.items.exists(j, j.qty == i.qty))",
      "profile.items.exists(i, i.price > 90.0) && profile.items.all(i, i.qty >= 1)",
      "profile.items.all(i, i.qty < 3) || profile.items.exists(i, i.qty == 3)",
      "profile.items.exists(i, i.qty == 3 || i.price > 90.0) && profile.items.all(i, i.qty >= 1)",
      ("profile.items.all(i, i.qty >= 1 && i.sku.startsWith(\"SKU-\")) && "
       "profile.items.exists(i, i.qty == 3)"),
  };
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_ctx *ctx = baton_expr_ctx_new(), *ref_ctx = baton_expr_ctx_new();
  for (size_t s = 0; s < ARRAY_SIZE(srcs); s++) {
    struct expr_program *p, *ref;
    struct expr_diag d;
    assert_int_equal(baton_expr_compile(env, srcs[s], strlen(srcs[s]), 0, &p, &d), 0);
    assert_int_equal(
        baton_expr_compile(env, srcs[s], strlen(srcs[s]), BATON_EXPR_BYTECODE_ONLY, &ref, &d), 0);
    assert_true(has_closure(p));
    for (int len = 0; len <= 6; len++)
      for (int at = -1; at < len; at++) { /* the element that decides, or none */
        struct buf b;
        buf_init(&b, 0);
        buf_puts(&b, "{\"items\": [");
        for (int k = 0; k < len; k++)
          buf_printf(&b, "%s{\"sku\": \"SKU-%d\", \"price\": %s, \"qty\": %d}", k ? ", " : "",
                     k, k == at ? "95.0" : "10.0", k == at ? 3 : 1);
        buf_puts(&b, "]}");
        struct expr_value vars[3] = {baton_expr_null(), baton_expr_null(), baton_expr_null()};
        assert_int_equal(baton_expr_value_parse_json(a, b.ptr, b.len, &vars[0], NULL), 0);
        buf_release(&b);
        for (uint64_t limit = 1; limit <= 2 * (uint64_t)len + 3; limit++) {
          baton_expr_ctx_set_limit(ctx, limit);
          baton_expr_ctx_set_limit(ref_ctx, limit);
          struct counting c1, c2;
          for (int round = 0; round < 2; round++) {
            char *got = run(p, ctx, vars, &full_host, &c1);
            char *want = run(ref, ref_ctx, vars, &full_host, &c2);
            if (strcmp(got, want)) {
              print_error("%s on %d items (deciding: %d), limit %llu\n  want: %s\n  got:  %s\n",
                          srcs[s], len, at, (unsigned long long)limit, want, got);
              fail();
            }
            free(got);
            free(want);
          }
        }
      }
    baton_expr_program_free(p);
    baton_expr_program_free(ref);
  }
  baton_expr_ctx_free(ctx);
  baton_expr_ctx_free(ref_ctx);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

/* Generated conditions over generated data. */
static void test_closure_generated(void **state) {
  (void)state;
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_ctx *ctx = baton_expr_ctx_new(), *ref_ctx = baton_expr_ctx_new();
  rng_state = 0x2545F4914F6CDD1Dull;
  struct expr_value vars[24][3];
  for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
    char *json = gen_profile();
    assert_int_equal(baton_expr_value_parse_json(a, json, strlen(json), &vars[i][0], NULL), 0);
    free(json);
    vars[i][1] = gen_event(a);
  }
  for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
    vars[i][2] = rnd(2) ? baton_expr_null() : vars[(i + 1) % ARRAY_SIZE(vars)][0];
  int compiled = 0, closures = 0;
  for (int n = 0; n < 4000; n++) {
    struct gen g = {.n_scopes = 0};
    buf_init(&g.b, 0);
    gen_pred(&g, 0);
    check_one(env, g.b.ptr, vars, ARRAY_SIZE(vars), ctx, ref_ctx, &compiled, &closures);
    buf_release(&g.b);
  }
  print_message("closure differential: %d conditions compiled, %d with a closure\n", compiled,
                closures);
  assert_true(compiled > 2000);
  assert_true(closures > compiled / 3);
  baton_expr_ctx_free(ctx);
  baton_expr_ctx_free(ref_ctx);
  baton_expr_arena_free(a);
  baton_expr_env_free(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_closure_shapes),
      cmocka_unit_test(test_closure_budget),
      cmocka_unit_test(test_closure_generated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

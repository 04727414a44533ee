/*
 * libFuzzer target for compile + evaluate: the input is an expression, then
 * optionally a NUL byte and JSON text bound as `profile` (through
 * baton_expr_value_parse_json, which this target fuzzes too). Journey
 * functions are answered by a deterministic fake host. Invariants checked on
 * every value: its CEL literal form evaluates back to an equal value of the
 * same type (values holding NaN excepted, as NaN != NaN); a second run with
 * the field-position hints of the first gives the same outcome; and the
 * program compiled with BATON_EXPR_BYTECODE_ONLY (no closure form) gives
 * the same outcome, error position included, asking the host as often.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"
#include "util/buf.h"

static int host_calls; /* every callback, for the bytecode-only comparison */
static int count(void *h, const char *n, size_t l, int64_t since, int64_t until, int64_t *out) {
  (void)h, (void)n, (void)since, (void)until;
  host_calls++;
  *out = (int64_t)l;
  return l == 4 ? -5 : 0;
}
static int seg(void *h, const char *id, size_t l, bool *out) {
  (void)h, (void)id;
  host_calls++;
  *out = l % 2;
  return l > 10 ? -3 : 0;
}
static int cases(void *h, const char *t, size_t l, int64_t *out) {
  (void)h, (void)t;
  host_calls++;
  *out = (int64_t)l % 3;
  return l == 5 ? -5 : 0;
}
static int64_t now(void *h) {
  (void)h;
  host_calls++;
  return 1767261600000LL;
}
static const char *zone(void *h) {
  (void)h;
  return "Europe/Paris";
}
static const struct expr_host host = {
    .now_ms = now, .count_events = count, .in_segment = seg, .in_journey = seg,
    .open_cases = cases, .time_zone = zone};

/* The outcome of an evaluation as text: the value, or the error and its position. */
static void outcome(struct buf *b, int rc, struct expr_value v) {
  if (rc)
    buf_printf(b, "error@%u: %s", baton_expr_error_pos(v.v.err), baton_expr_error_message(v.v.err));
  else
    baton_expr_value_format(b, v);
}

static bool same_type(struct expr_value a, struct expr_value b) {
  if (a.kind != b.kind) return false;
  if (a.kind == EXPR_LIST) {
    for (size_t i = 0; i < baton_expr_list_len(a.v.list); i++)
      if (!same_type(baton_expr_list_get(a.v.list, i), baton_expr_list_get(b.v.list, i)))
        return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct expr_env *env, *empty;
  static struct expr_ctx *ctx, *ctx2, *ctx3;
  if (!env) {
    env = baton_expr_env_new_default();
    empty = baton_expr_env_new();
    ctx = baton_expr_ctx_new();
    ctx2 = baton_expr_ctx_new();
    ctx3 = baton_expr_ctx_new();
    baton_expr_ctx_set_limit(ctx3, 20000);
    baton_expr_ctx_set_limit(ctx, 20000);
  }
  const uint8_t *nul = memchr(data, 0, size);
  size_t elen = nul ? (size_t)(nul - data) : size;
  struct expr_arena *a = baton_expr_arena_new(1 << 20);
  struct expr_value vars[3] = {baton_expr_null(), baton_expr_null(), baton_expr_null()};
  if (nul && baton_expr_value_parse_json(a, (const char *)nul + 1, size - elen - 1, &vars[0], NULL))
    vars[0] = baton_expr_null();
  struct expr_program *p = NULL;
  if (!baton_expr_compile(env, (const char *)data, elen, 0, &p, NULL)) {
    struct expr_value v;
    /* A second run, with the field-position hints the first one left, must
     * give the same outcome: its text is kept for the comparison below. */
    struct buf first;
    buf_init(&first, 1 << 20);
    host_calls = 0;
    int rc = baton_expr_eval(p, ctx, vars, &host, NULL, &v);
    int calls = host_calls;
    outcome(&first, rc, v);
    /* The bytecode alone must agree with the closure (closure.c). */
    struct expr_program *bc = NULL;
    if (baton_expr_compile(env, (const char *)data, elen, BATON_EXPR_BYTECODE_ONLY, &bc, NULL))
      __builtin_trap();
    struct expr_value bv;
    struct buf bcout;
    buf_init(&bcout, 1 << 20);
    host_calls = 0;
    int brc = baton_expr_eval(bc, ctx3, vars, &host, NULL, &bv);
    outcome(&bcout, brc, bv);
    if (brc != rc || host_calls != calls || first.len != bcout.len ||
        (first.len && memcmp(first.ptr, bcout.ptr, first.len)))
      __builtin_trap(); /* the closure and the bytecode disagree */
    buf_release(&bcout);
    baton_expr_program_free(bc);
    if (!rc) {
      struct buf b;
      buf_init(&b, 1 << 20);
      if (!baton_expr_value_format(&b, v) && b.ptr && !strstr(b.ptr, "NaN")) {
        struct expr_program *q = NULL;
        struct expr_value w;
        if (baton_expr_compile(empty, b.ptr, b.len, 0, &q, NULL) ||
            baton_expr_eval(q, ctx2, NULL, NULL, NULL, &w) || !baton_expr_value_equal(v, w) ||
            !same_type(v, w))
          __builtin_trap(); /* the literal did not round-trip */
        baton_expr_program_free(q);
      }
      buf_release(&b);
    }
    struct buf again;
    buf_init(&again, 1 << 20);
    if (baton_expr_eval(p, ctx, vars, &host, NULL, &v) != rc) __builtin_trap();
    outcome(&again, rc, v);
    if (first.len != again.len || (first.len && memcmp(first.ptr, again.ptr, first.len)))
      __builtin_trap(); /* the hints changed an outcome */
    buf_release(&first);
    buf_release(&again);
    baton_expr_program_free(p);
  }
  baton_expr_arena_free(a);
  return 0;
}

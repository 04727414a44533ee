/*
 * Benchmark of the condition language: for each case in cases.json, compile
 * once and evaluate repeatedly on one thread for a fixed time over the data
 * in data.json (profile, event, context; profile.events feed count()).
 * Prints one JSON object per case: {"name", "evals_per_sec" (best of the
 * rounds), "median" and "worst" (of the rounds: the spread), "result",
 * "heap_allocs" (heap allocations during the timed loop: 0)}.
 * Usage: bench_expr CASES.json DATA.json [SECONDS_PER_CASE [ROUNDS]]
 * With BENCH_EXPR_ITERS=N in the environment it instead runs exactly N
 * evaluations of each case (of BENCH_EXPR_CASE only, if set) untimed, for
 * instruction counts under `valgrind --tool=callgrind` (bench/expr/callgrind.sh).
 * With BENCH_EXPR_BYTECODE_ONLY=1 the conditions are compiled without their
 * closure form (BATON_EXPR_BYTECODE_ONLY): what the bytecode VM alone does.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"

struct event {
  const char *name;
  size_t len;
  int64_t ms;
};

struct host_data {
  struct event events[256];
  size_t n;
  int64_t now;
};

static int64_t h_now(void *h) { return ((struct host_data *)h)->now; }

/* The same scan the cel-js side does: every event, name and window compared. */
static int h_count(void *hp, const char *name, size_t len, int64_t since, int64_t until,
                   int64_t *out) {
  struct host_data *h = hp;
  int64_t c = 0;
  for (size_t i = 0; i < h->n; i++)
    c += h->events[i].len == len && !memcmp(h->events[i].name, name, len) &&
         h->events[i].ms >= since && h->events[i].ms < until;
  *out = c;
  return 0;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  struct buf b;
  buf_init(&b, 16u << 20);
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) buf_append(&b, tmp, n);
  fclose(f);
  return buf_steal(&b, NULL);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_expr CASES.json DATA.json [SECONDS_PER_CASE [ROUNDS]]\n");
    return 2;
  }
  double secs = argc > 3 ? atof(argv[3]) : 0.5;
  int rounds = argc > 4 ? atoi(argv[4]) : 5;
  if (rounds < 1 || rounds > 99) rounds = 5;
  const char *iters_env = getenv("BENCH_EXPR_ITERS"), *only = getenv("BENCH_EXPR_CASE");
  long iters = iters_env ? atol(iters_env) : 0;
  const char *bc_env = getenv("BENCH_EXPR_BYTECODE_ONLY");
  unsigned flags = bc_env && *bc_env && strcmp(bc_env, "0") ? BATON_EXPR_BYTECODE_ONLY : 0;
  char *ct = slurp(argv[1]), *dt = slurp(argv[2]);
  cJSON *cases = ct ? cJSON_Parse(ct) : NULL, *data = dt ? cJSON_Parse(dt) : NULL;
  if (!cases || !data) {
    fprintf(stderr, "bench_expr: cannot read %s or %s\n", argv[1], argv[2]);
    return 1;
  }
  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *arena = baton_expr_arena_new(0);
  struct expr_value vars[3];
  const char *keys[3] = {"profile", "event", "context"};
  /* The same reader as baton eval --vars-json (30.0 stays a double). */
  struct expr_value top;
  if (baton_expr_value_parse_json(arena, dt, strlen(dt), &top, NULL) || top.kind != EXPR_MAP)
    return 1;
  for (int i = 0; i < 3; i++)
    if (!baton_expr_map_find(top.v.map, keys[i], strlen(keys[i]), &vars[i])) return 1;
  struct host_data hd = {0};
  clock_parse_iso8601(cJSON_GetObjectItem(data, "clock")->valuestring, &hd.now);
  const cJSON *ev;
  cJSON_ArrayForEach(ev, cJSON_GetObjectItem(cJSON_GetObjectItem(data, "profile"), "events")) {
    if (hd.n == ARRAY_SIZE(hd.events)) break;
    struct event *e = &hd.events[hd.n++];
    e->name = cJSON_GetObjectItem(ev, "name")->valuestring;
    e->len = strlen(e->name);
    clock_parse_iso8601(cJSON_GetObjectItem(ev, "time")->valuestring, &e->ms);
  }
  struct expr_host host = {.now_ms = h_now, .count_events = h_count};
  struct expr_ctx *ctx = baton_expr_ctx_new();
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const char *src = cJSON_GetObjectItem(c, "expr")->valuestring;
    if (only && strcmp(only, name)) continue;
    struct expr_program *p;
    struct expr_diag d;
    if (baton_expr_compile(env, src, strlen(src), flags, &p, &d)) {
      fprintf(stderr, "bench_expr: %s: %s\n", name, d.msg);
      return 1;
    }
    struct expr_value v;
    if (baton_expr_eval(p, ctx, vars, &host, &hd, &v)) {
      fprintf(stderr, "bench_expr: %s: %s\n", name, baton_expr_error_message(v.v.err));
      return 1;
    }
    size_t heap0 = baton_expr_ctx_heap_allocs(ctx);
    if (iters > 0) {
      for (long k = 0; k < iters; k++) baton_expr_eval(p, ctx, vars, &host, &hd, &v);
      printf("{\"name\": \"%s\", \"iterations\": %ld}\n", name, iters);
      baton_expr_program_free(p);
      continue;
    }
    /* The best of the rounds is the one least disturbed by the other
     * processes on a shared machine; the median and worst show the spread. */
    double rate[99];
    for (int round = 0; round < rounds; round++) {
      uint64_t n = 0;
      int64_t t0 = clock_mono_ns(), limit = (int64_t)(secs * 1e9 / rounds), t;
      do {
        for (int k = 0; k < 4096; k++) baton_expr_eval(p, ctx, vars, &host, &hd, &v);
        n += 4096;
        t = clock_mono_ns() - t0;
      } while (t < limit);
      rate[round] = (double)n * 1e9 / (double)t;
    }
    for (int i = 1; i < rounds; i++) /* insertion sort, descending */
      for (int j = i; j > 0 && rate[j] > rate[j - 1]; j--) {
        double x = rate[j];
        rate[j] = rate[j - 1];
        rate[j - 1] = x;
      }
    struct buf b;
    buf_init(&b, 0);
    baton_expr_value_format(&b, v);
    printf(
        "{\"name\": \"%s\", \"evals_per_sec\": %.0f, \"median\": %.0f, \"worst\": %.0f, "
        "\"result\": \"%s\", \"heap_allocs\": %zu}\n",
        name, rate[0], rate[rounds / 2], rate[rounds - 1], b.ptr,
        baton_expr_ctx_heap_allocs(ctx) - heap0);
    buf_release(&b);
    baton_expr_program_free(p);
  }
  baton_expr_ctx_free(ctx);
  baton_expr_arena_free(arena);
  baton_expr_env_free(env);
  cJSON_Delete(cases);
  cJSON_Delete(data);
  free(ct);
  free(dt);
  return 0;
}

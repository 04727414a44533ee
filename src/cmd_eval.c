/*
 * `baton eval`: evaluates one condition expression and prints the result as
 * a CEL literal. Variables come from --var NAME=EXPR (each a constant CEL
 * expression, so types are exact: --var n=1u) and from --vars-json FILE (its
 * top-level keys). Journey functions are answered from the JSON data: see
 * usage() and docs/conditions.md. This file is a thin user of lib/expr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "expr/expr.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: baton eval EXPR [--var NAME=EXPR]... [--vars-json FILE] [--now TIME]\n"
      "                       [--dump]\n\n"
      "Evaluates a condition expression (a subset of CEL, see docs/conditions.md) and\n"
      "prints its value on stdout as a CEL literal: 1, 1u, 1.0, \"a\", b\"\\x00\", [1, 2u],\n"
      "{\"k\": true}, null, timestamp(\"...\"), duration(\"...\").\n\n"
      "Options:\n"
      "  --var NAME=EXPR    bind variable NAME to the value of a constant expression\n"
      "                     (--var x=1u, --var tags='[\"a\", \"b\"]')\n"
      "  --vars-json FILE   bind each top-level key of a JSON object (- for stdin);\n"
      "                     a number written without fraction or exponent is an\n"
      "                     int (if it fits int64), any other number a double\n"
      "  --now TIME         the time now() and windows are measured from\n"
      "                     (RFC 3339, default: the clock)\n"
      "  --dump             print the bytecode on stderr\n\n"
      "profile, event and context are always declared (empty maps unless bound).\n"
      "Journey functions read profile from the JSON data:\n"
      "  profile.events     [{\"name\": \"purchase\", \"time\": \"2026-11-20T10:00:00Z\",\n"
      "                       \"properties\": {\"amount\": 30}}, ...]  for count(), sum(), last()\n"
      "  profile.segments   [\"vip\", ...]         for inSegment()\n"
      "  profile.journeys   [\"onboarding\", ...]  for inJourney()\n"
      "  profile.cases      [{\"type\": \"billing_dispute\", \"status\": \"open\"}, ...]\n"
      "                     for openCases() (a case is open unless status is \"closed\")\n"
      "  profile.timezone   \"Europe/Paris\"       for localHour(), localWeekday()\n\n"
      "Exit status: 0 on success, 1 on a compile or evaluation error (message on\n"
      "stderr), 2 on a usage error.\n\n"
      "Examples:\n"
      "  baton eval '1 + 2 * 3'\n"
      "  baton eval --var x=1u 'x + 2u'\n"
      "  baton eval --vars-json customer.json 'count(\"purchase\", duration(\"30d\")) >= 2'\n");
}

/* The data behind the host callbacks: the bound profile. */
struct json_host {
  struct expr_value profile;
  int64_t now_ms;
  char tz[128];
};

static bool field(struct expr_value m, const char *k, struct expr_value *out) {
  return m.kind == EXPR_MAP && baton_expr_map_find(m.v.map, k, strlen(k), out);
}

static bool str_eq(struct expr_value v, const char *s, size_t n) {
  return v.kind == EXPR_STRING && v.aux == n && !memcmp(v.v.s, s, n);
}

static bool event_time(struct expr_value ev, int64_t *ms) {
  struct expr_value t;
  if (!field(ev, "time", &t)) return false;
  if (t.kind == EXPR_INT) {
    *ms = t.v.i;
    return true;
  }
  if (t.kind != EXPR_STRING || t.aux >= 64) return false;
  char tmp[64];
  memcpy(tmp, t.v.s, t.aux);
  tmp[t.aux] = 0;
  return clock_parse_iso8601(tmp, ms) == 0;
}

static int64_t host_now(void *h) { return ((struct json_host *)h)->now_ms; }

/* Visits the events named name within [since, until); returns how many. */
static int64_t each_event(struct json_host *h, const char *name, size_t len, int64_t since,
                          int64_t until, void (*fn)(void *, struct expr_value), void *arg) {
  struct expr_value evs;
  int64_t n = 0;
  if (!field(h->profile, "events", &evs) || evs.kind != EXPR_LIST) return 0;
  for (size_t i = 0; i < baton_expr_list_len(evs.v.list); i++) {
    struct expr_value ev = baton_expr_list_get(evs.v.list, i), nm;
    int64_t t;
    if (!field(ev, "name", &nm) || !str_eq(nm, name, len) || !event_time(ev, &t)) continue;
    if (t < since || t >= until) continue;
    n++;
    if (fn) fn(arg, ev);
  }
  return n;
}

static int host_count(void *hp, const char *name, size_t len, int64_t since, int64_t until,
                      int64_t *out) {
  *out = each_event(hp, name, len, since, until, NULL, NULL);
  return 0;
}

struct sum_arg {
  const char *prop;
  size_t len;
  double sum;
};

static void add_prop(void *ap, struct expr_value ev) {
  struct sum_arg *a = ap;
  struct expr_value props, v;
  if (!field(ev, "properties", &props) || props.kind != EXPR_MAP ||
      !baton_expr_map_find(props.v.map, a->prop, a->len, &v))
    return;
  if (v.kind == EXPR_INT) a->sum += (double)v.v.i;
  if (v.kind == EXPR_DOUBLE) a->sum += v.v.d;
}

static int host_sum(void *hp, const char *name, size_t len, const char *prop, size_t plen,
                    int64_t since, int64_t until, double *out) {
  struct sum_arg a = {prop, plen, 0};
  each_event(hp, name, len, since, until, add_prop, &a);
  *out = a.sum;
  return 0;
}

static int host_last(void *hp, const char *name, size_t len, const char *prop, size_t plen,
                     struct expr_arena *arena, struct expr_value *out) {
  struct json_host *h = hp;
  struct expr_value evs;
  (void)arena;
  if (!field(h->profile, "events", &evs) || evs.kind != EXPR_LIST) return BATON_ENOENT;
  int64_t best = INT64_MIN;
  bool found = false;
  for (size_t i = 0; i < baton_expr_list_len(evs.v.list); i++) {
    struct expr_value ev = baton_expr_list_get(evs.v.list, i), nm, props, v;
    int64_t t;
    if (!field(ev, "name", &nm) || !str_eq(nm, name, len) || !event_time(ev, &t)) continue;
    if (t > h->now_ms || t < best) continue;
    if (!field(ev, "properties", &props) || props.kind != EXPR_MAP ||
        !baton_expr_map_find(props.v.map, prop, plen, &v))
      continue;
    best = t;
    *out = v;
    found = true;
  }
  return found ? 0 : BATON_ENOENT;
}

static int member_of(struct json_host *h, const char *key, const char *id, size_t len, bool *out) {
  struct expr_value l;
  *out = false;
  if (!field(h->profile, key, &l) || l.kind != EXPR_LIST) return 0;
  for (size_t i = 0; i < baton_expr_list_len(l.v.list) && !*out; i++)
    *out = str_eq(baton_expr_list_get(l.v.list, i), id, len);
  return 0;
}

static int host_in_segment(void *hp, const char *id, size_t len, bool *out) {
  return member_of(hp, "segments", id, len, out);
}

static int host_in_journey(void *hp, const char *id, size_t len, bool *out) {
  return member_of(hp, "journeys", id, len, out);
}

static int host_open_cases(void *hp, const char *type, size_t len, int64_t *out) {
  struct json_host *h = hp;
  struct expr_value l;
  *out = 0;
  if (!field(h->profile, "cases", &l) || l.kind != EXPR_LIST) return 0;
  for (size_t i = 0; i < baton_expr_list_len(l.v.list); i++) {
    struct expr_value c = baton_expr_list_get(l.v.list, i), t, st;
    if (!field(c, "type", &t) || !str_eq(t, type, len)) continue;
    if (field(c, "status", &st) && str_eq(st, "closed", 6)) continue;
    (*out)++;
  }
  return 0;
}

static const char *host_tz(void *hp) {
  struct json_host *h = hp;
  return h->tz[0] ? h->tz : NULL;
}

static const struct expr_host json_host_ops = {
    .now_ms = host_now,
    .count_events = host_count,
    .sum_events = host_sum,
    .last_value = host_last,
    .in_segment = host_in_segment,
    .in_journey = host_in_journey,
    .open_cases = host_open_cases,
    .time_zone = host_tz,
};

static char *read_file(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) return NULL;
  struct buf b;
  buf_init(&b, 64u << 20);
  char tmp[65536];
  size_t n;
  int rc = 0;
  while (!rc && (n = fread(tmp, 1, sizeof(tmp), f)) > 0) rc = buf_append(&b, tmp, n);
  if (f != stdin) fclose(f);
  if (rc || !b.ptr) {
    buf_release(&b);
    if (!rc) return xstrdup("");
    return NULL;
  }
  return buf_steal(&b, len);
}

static void print_error(const char *src, const struct expr_diag *d) {
  struct buf b;
  buf_init(&b, 0);
  baton_expr_diag_render(&b, NULL, src, strlen(src), d);
  fprintf(stderr, "%s\n", b.ptr);
  buf_release(&b);
}

#define MAX_BINDINGS 256

int cmd_eval(int argc, char **argv) {
  if (cmd_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  const char *expr = NULL, *json_path = NULL, *now_arg = NULL;
  const char *var_names[MAX_BINDINGS], *var_srcs[MAX_BINDINGS];
  int n_vars = 0, dump = 0, status = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--var") || !strcmp(a, "--vars-json") || !strcmp(a, "--now")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "baton eval: %s needs a value\n", a);
        return 2;
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--vars-json")) {
        json_path = v;
      } else if (!strcmp(a, "--now")) {
        now_arg = v;
      } else {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || n_vars == MAX_BINDINGS) {
          fprintf(stderr, "baton eval: --var wants NAME=EXPR, got '%s'\n", v);
          return 2;
        }
        var_names[n_vars] = xstrndup(v, (size_t)(eq - v));
        var_srcs[n_vars++] = eq + 1;
      }
    } else if (!strcmp(a, "--dump")) {
      dump = 1;
    } else if (!strcmp(a, "--") && i + 1 < argc && !expr) {
      expr = argv[++i];
    } else if (a[0] == '-' && a[1] == '-') {
      fprintf(stderr, "baton eval: unknown option '%s'; see 'baton eval --help'\n", a);
      return 2;
    } else if (!expr) {
      expr = a;
    } else {
      fprintf(stderr, "baton eval: more than one expression; quote the expression\n");
      return 2;
    }
  }
  if (!expr) {
    usage(stderr);
    return 2;
  }

  struct json_host host = {.profile = baton_expr_null()};
  host.now_ms = clock_now_ms();
  if (now_arg && clock_parse_iso8601(now_arg, &host.now_ms)) {
    fprintf(stderr, "baton eval: cannot parse --now '%s': expected RFC 3339\n", now_arg);
    return 2;
  }

  struct expr_env *env = baton_expr_env_new_default();
  struct expr_arena *arena = baton_expr_arena_new(0);
  struct expr_value *vals = xcalloc(MAX_BINDINGS + 1024 + 3, sizeof(*vals)); /* >= env cap */
  struct expr_ctx *ctx = baton_expr_ctx_new();
  struct expr_program *var_progs[MAX_BINDINGS] = {0};
  struct expr_ctx *var_ctxs[MAX_BINDINGS] = {0};
  struct expr_program *prog = NULL;
  struct expr_env *empty = baton_expr_env_new();
  char *text = NULL;
  for (int i = 0; i < 3; i++) vals[i] = baton_expr_map_new(arena, 0);

  if (json_path) {
    size_t len;
    text = read_file(json_path, &len);
    if (!text) {
      fprintf(stderr, "baton eval: cannot read %s\n", json_path);
      goto out;
    }
    struct expr_value top;
    size_t off = 0;
    int rc = baton_expr_value_parse_json(arena, text, len, &top, &off);
    if (rc || top.kind != EXPR_MAP) {
      if (rc == BATON_EPARSE)
        fprintf(stderr, "baton eval: %s: invalid JSON at byte %zu\n", json_path, off);
      else
        fprintf(stderr, "baton eval: %s: %s\n", json_path,
                rc ? baton_strerror(rc) : "not a JSON object");
      goto out;
    }
    for (size_t k = 0; k < baton_expr_map_len(top.v.map); k++) {
      struct expr_value key, val;
      baton_expr_map_entry(top.v.map, k, &key, &val);
      int slot = baton_expr_env_lookup(env, key.v.s);
      if (slot < 0) slot = baton_expr_env_declare(env, key.v.s, -1);
      if (slot < 0 || slot >= MAX_BINDINGS + 1024) {
        fprintf(stderr, "baton eval: %s: cannot bind key '%s' (%s)\n", json_path, key.v.s,
                slot == BATON_EINVAL ? "a reserved word" : baton_strerror(slot));
        goto out;
      }
      vals[slot] = val;
    }
  }
  for (int i = 0; i < n_vars; i++) {
    struct expr_diag d;
    int rc = baton_expr_compile(empty, var_srcs[i], strlen(var_srcs[i]), 0, &var_progs[i], &d);
    if (rc) {
      fprintf(stderr, "baton eval: --var %s:\n", var_names[i]);
      print_error(var_srcs[i], &d);
      goto out;
    }
    var_ctxs[i] = baton_expr_ctx_new();
    struct expr_value v;
    if (baton_expr_eval(var_progs[i], var_ctxs[i], NULL, NULL, NULL, &v)) {
      fprintf(stderr, "baton eval: --var %s: %s\n", var_names[i],
              baton_expr_error_message(v.v.err));
      goto out;
    }
    /* A name bound earlier (JSON file, an earlier --var) is rebound: the last wins. */
    int slot = baton_expr_env_lookup(env, var_names[i]);
    if (slot < 0) slot = baton_expr_env_declare(env, var_names[i], -1);
    if (slot < 0) {
      fprintf(stderr, "baton eval: --var: invalid variable name '%s'\n", var_names[i]);
      goto out;
    }
    vals[slot] = v;
  }
  if (vals[0].kind == EXPR_MAP) {
    host.profile = vals[0];
    struct expr_value tz;
    if (field(vals[0], "timezone", &tz) && tz.kind == EXPR_STRING && tz.aux < sizeof(host.tz)) {
      memcpy(host.tz, tz.v.s, tz.aux);
      host.tz[tz.aux] = 0;
    }
  }

  struct expr_diag diag;
  if (baton_expr_compile(env, expr, strlen(expr), 0, &prog, &diag)) {
    print_error(expr, &diag);
    goto out;
  }
  if (dump) {
    struct buf b;
    buf_init(&b, 0);
    baton_expr_program_dump(&b, prog);
    fputs(b.ptr ? b.ptr : "", stderr);
    buf_release(&b);
  }
  struct expr_value result;
  if (baton_expr_eval(prog, ctx, vals, &json_host_ops, &host, &result)) {
    baton_expr_error_diag(result.v.err, expr, strlen(expr), &diag);
    print_error(expr, &diag);
    goto out;
  }
  struct buf b;
  buf_init(&b, 0);
  baton_expr_value_format(&b, result);
  printf("%s\n", b.ptr);
  buf_release(&b);
  status = 0;
out:
  for (int i = 0; i < n_vars; i++) {
    free((char *)var_names[i]);
    baton_expr_program_free(var_progs[i]);
    baton_expr_ctx_free(var_ctxs[i]);
  }
  baton_expr_program_free(prog);
  baton_expr_ctx_free(ctx);
  baton_expr_env_free(env);
  baton_expr_env_free(empty);
  baton_expr_arena_free(arena);
  free(vals);
  free(text);
  return status;
}

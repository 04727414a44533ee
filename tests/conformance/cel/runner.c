/*
 * CEL conformance runner: reads the .textproto files in $BATON_ORACLES/cel (google/cel-spec
 * simple tests), runs every case whose features the condition language
 * claims, and prints passed / failed / skipped counts per file with the
 * reason for each skip category. Exit status 1 if the pass rate of the cases
 * run is under --min-pass percent or the share of cases run is under
 * --min-run percent. --verbose prints each failure, --list-skipped also each
 * skipped case; --only NAME runs the
 * tests whose name contains NAME.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"
#include "textproto.h"
#include "util/buf.h"
#include "util/common.h"

/* Why a case is not run. Each category is reported with its count. */
#define SKIP_LIST(X)                                                                      \
  X(PROTO, "protocol buffer messages, wrappers, enums or containers (not in the subset)") \
  X(UNSUPPORTED_TYPE, "a binding of a type the runner cannot build")

enum skip {
#define SKIP_ENUM(id, why) SKIP_##id,
  SKIP_LIST(SKIP_ENUM)
#undef SKIP_ENUM
      N_SKIP
};
static const char *const skip_why[] = {
#define SKIP_WHY(id, why) why,
    SKIP_LIST(SKIP_WHY)
#undef SKIP_WHY
};

struct stats {
  int passed, failed, skipped[N_SKIP];
};

static int verbose;
static const char *only;

static bool has_text(const char *s, size_t n, const char *needle) {
  return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* Builds the value described by a cel.expr.Value message. Returns 0, or -1 if unsupported. */
static int build_value(struct expr_arena *a, const struct tp_node *v, struct expr_value *out) {
  const struct tp_node *f = v ? v->child : NULL;
  if (!f) return -1;
  const char *n = f->name;
  if (!strcmp(n, "int64_value")) {
    *out = baton_expr_int(strtoll(f->scalar, NULL, 10));
  } else if (!strcmp(n, "uint64_value")) {
    *out = baton_expr_uint(strtoull(f->scalar, NULL, 10));
  } else if (!strcmp(n, "double_value")) {
    *out = baton_expr_double(strtod(f->scalar, NULL));
  } else if (!strcmp(n, "string_value")) {
    *out = baton_expr_string_copy(a, f->scalar, f->scalar_len);
  } else if (!strcmp(n, "bytes_value")) {
    *out = baton_expr_string_copy(a, f->scalar, f->scalar_len);
    out->kind = EXPR_BYTES;
  } else if (!strcmp(n, "bool_value")) {
    *out = baton_expr_bool(!strcmp(f->scalar, "true"));
  } else if (!strcmp(n, "null_value")) {
    *out = baton_expr_null();
  } else if (!strcmp(n, "type_value")) {
    static const struct {
      const char *name;
      int kind;
    } types[] = {{"int", EXPR_INT},
                 {"uint", EXPR_UINT},
                 {"double", EXPR_DOUBLE},
                 {"bool", EXPR_BOOL},
                 {"string", EXPR_STRING},
                 {"bytes", EXPR_BYTES},
                 {"list", EXPR_LIST},
                 {"map", EXPR_MAP},
                 {"null_type", EXPR_NULL},
                 {"type", EXPR_TYPE},
                 {"google.protobuf.Timestamp", EXPR_TIMESTAMP},
                 {"google.protobuf.Duration", EXPR_DURATION}};
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
      if (!strcmp(types[i].name, f->scalar)) {
        out->kind = EXPR_TYPE;
        out->aux = 0;
        out->v.type = (uint64_t)types[i].kind;
        return 0;
      }
    return -1;
  } else if (!strcmp(n, "list_value")) {
    size_t cnt = 0;
    for (const struct tp_node *c = f->child; c; c = c->next) cnt++;
    struct expr_value *items;
    *out = baton_expr_list_new(a, cnt, &items);
    size_t i = 0;
    for (const struct tp_node *c = f->child; c; c = c->next)
      if (build_value(a, c, &items[i++])) return -1;
  } else if (!strcmp(n, "map_value")) {
    size_t cnt = 0;
    for (const struct tp_node *c = f->child; c; c = c->next) cnt++;
    *out = baton_expr_map_new(a, cnt);
    size_t i = 0;
    for (const struct tp_node *c = f->child; c; c = c->next) {
      struct expr_value k, val;
      if (build_value(a, tp_get(c, "key"), &k) || build_value(a, tp_get(c, "value"), &val))
        return -1;
      baton_expr_map_set(*out, i++, k, val);
    }
    if (baton_expr_map_seal(a, *out)) return -1;
  } else if (!strcmp(n, "object_value")) {
    const struct tp_node *o = f->child;
    if (!o) return -1;
    const struct tp_node *s = tp_get(o, "seconds"), *ns = tp_get(o, "nanos");
    int64_t sec = s ? strtoll(s->scalar, NULL, 10) : 0,
            nanos = ns ? strtoll(ns->scalar, NULL, 10) : 0;
    if (!strcmp(o->name, "type.googleapis.com/google.protobuf.Duration") ||
        !strcmp(o->name, "type.googleapis.com/google.protobuf.Timestamp")) {
      /* Normalise to whole seconds (floor) plus 0..999999999 ns. */
      sec += nanos / 1000000000;
      nanos %= 1000000000;
      if (nanos < 0) nanos += 1000000000, sec--;
      out->kind = strstr(o->name, "Duration") ? EXPR_DURATION : EXPR_TIMESTAMP;
      out->aux = (uint32_t)nanos;
      out->v.sec = sec;
      return 0;
    }
    return -1;
  } else {
    return -1;
  }
  return out->kind == EXPR_ERROR ? -1 : 0;
}

/* Equality that also requires the same types (1 and 1.0 differ) and treats NaN as equal. */
static bool same(struct expr_value a, struct expr_value b) {
  if (a.kind != b.kind) return false;
  if (a.kind == EXPR_DOUBLE) {
    if (isnan(a.v.d) && isnan(b.v.d)) return true;
    return a.v.d == b.v.d && signbit(a.v.d) == signbit(b.v.d);
  }
  if (a.kind == EXPR_LIST) {
    if (baton_expr_list_len(a.v.list) != baton_expr_list_len(b.v.list)) return false;
    for (size_t i = 0; i < baton_expr_list_len(a.v.list); i++)
      if (!same(baton_expr_list_get(a.v.list, i), baton_expr_list_get(b.v.list, i))) return false;
    return true;
  }
  if (a.kind == EXPR_MAP) {
    if (baton_expr_map_len(a.v.map) != baton_expr_map_len(b.v.map)) return false;
    for (size_t i = 0; i < baton_expr_map_len(a.v.map); i++) {
      struct expr_value k, v;
      baton_expr_map_entry(a.v.map, i, &k, &v);
      bool found = false;
      for (size_t j = 0; j < baton_expr_map_len(b.v.map) && !found; j++) {
        struct expr_value k2, v2;
        baton_expr_map_entry(b.v.map, j, &k2, &v2);
        found = same(k, k2) && same(v, v2);
      }
      if (!found) return false;
    }
    return true;
  }
  return baton_expr_value_equal(a, b);
}

static int kind_of_type(const struct tp_node *t) {
  const struct tp_node *f = t ? t->child : NULL;
  if (!f) return -1;
  if (!strcmp(f->name, "primitive")) {
    static const struct {
      const char *n;
      int k;
    } prims[] = {{"BOOL", EXPR_BOOL},     {"INT64", EXPR_INT},     {"UINT64", EXPR_UINT},
                 {"DOUBLE", EXPR_DOUBLE}, {"STRING", EXPR_STRING}, {"BYTES", EXPR_BYTES}};
    for (size_t i = 0; i < ARRAY_SIZE(prims); i++)
      if (!strcmp(f->scalar, prims[i].n)) return prims[i].k;
    return -1;
  }
  if (!strcmp(f->name, "list_type")) return EXPR_LIST;
  if (!strcmp(f->name, "map_type")) return EXPR_MAP;
  if (!strcmp(f->name, "well_known") && f->scalar) {
    if (!strcmp(f->scalar, "TIMESTAMP")) return EXPR_TIMESTAMP;
    if (!strcmp(f->scalar, "DURATION")) return EXPR_DURATION;
  }
  if (!strcmp(f->name, "message_type") && f->scalar) {
    if (!strcmp(f->scalar, "google.protobuf.Timestamp")) return EXPR_TIMESTAMP;
    if (!strcmp(f->scalar, "google.protobuf.Duration")) return EXPR_DURATION;
  }
  return -1;
}

static bool is_proto_case(const char *file_text, const struct tp_node *test, const char *section) {
  const char *s = file_text + test->src_off;
  size_t n = test->src_end - test->src_off;
  if (!strcmp(section, "eq_wrapper") || !strcmp(section, "struct_field_names")) return true;
  if (tp_get(test, "container")) return true;
  if (has_text(s, n, "TestAllTypes") || has_text(s, n, "google.protobuf.Any") ||
      has_text(s, n, "Value{") || has_text(s, n, "Value {") || has_text(s, n, "enum_value") ||
      has_text(s, n, "GlobalEnum") || has_text(s, n, "google.protobuf.Struct") ||
      has_text(s, n, "google.protobuf.ListValue") || has_text(s, n, "Int32Value") ||
      has_text(s, n, "Int64Value") || has_text(s, n, "UInt32Value") ||
      has_text(s, n, "UInt64Value") || has_text(s, n, "BoolValue") ||
      has_text(s, n, "StringValue") || has_text(s, n, "BytesValue") ||
      has_text(s, n, "FloatValue") || has_text(s, n, "DoubleValue") ||
      has_text(s, n, "google.protobuf.NullValue"))
    return true;
  return false;
}

static void run_test(const char *file, const char *text, const char *section,
                     const struct tp_node *test, struct stats *st) {
  const struct tp_node *name = tp_get(test, "name"), *expr = tp_get(test, "expr");
  if (only && (!name || !strstr(name->scalar, only))) return;
  if (is_proto_case(text, test, section)) {
    st->skipped[SKIP_PROTO]++;
    if (verbose > 1) printf("SKIP %s/%s/%s\n", file, section, name ? name->scalar : "?");
    return;
  }
  struct expr_arena *a = baton_expr_arena_new(0);
  struct expr_env *env = baton_expr_env_new();
  struct expr_value vals[64];
  for (size_t i = 0; i < ARRAY_SIZE(vals); i++) vals[i] = baton_expr_null();
  const char *why = NULL;
  char whybuf[512];
  int n_vars = 0;
  for (const struct tp_node *te = tp_get(test, "type_env"); te;
       te = tp_next_named(te, "type_env")) {
    const struct tp_node *nm = tp_get(te, "name");
    const struct tp_node *id = tp_get(te, "ident");
    if (nm && id) baton_expr_env_declare(env, nm->scalar, kind_of_type(tp_get(id, "type")));
  }
  for (const struct tp_node *b = tp_get(test, "bindings"); b; b = tp_next_named(b, "bindings")) {
    const struct tp_node *k = tp_get(b, "key");
    const struct tp_node *v = tp_get(tp_get(b, "value"), "value");
    struct expr_value val;
    if (!k || build_value(a, v, &val) || n_vars >= 64) {
      st->skipped[SKIP_UNSUPPORTED_TYPE]++;
      goto done;
    }
    int slot = baton_expr_env_lookup(env, k->scalar);
    if (slot < 0) slot = baton_expr_env_declare(env, k->scalar, -1);
    if (slot == BATON_EINVAL && baton_expr_env_lookup(env, k->scalar) < 0 &&
        (!strcmp(k->scalar, "true") || !strcmp(k->scalar, "false") || !strcmp(k->scalar, "null"))) {
      /* Reserved constants cannot be rebound: the case checks the literal wins. */
      continue;
    }
    if (slot < 0 || slot >= 64) {
      st->skipped[SKIP_UNSUPPORTED_TYPE]++;
      goto done;
    }
    vals[slot] = val;
    n_vars++;
  }
  unsigned flags = tp_get(test, "disable_check") ? BATON_EXPR_UNCHECKED : 0;
  struct expr_program *prog = NULL;
  struct expr_diag diag;
  bool want_error = tp_get(test, "eval_error") != NULL;
  struct expr_value want;
  const struct tp_node *wv = tp_get(test, "value");
  if (!want_error && (!wv || build_value(a, wv, &want))) {
    st->skipped[SKIP_UNSUPPORTED_TYPE]++;
    goto done;
  }
  if (baton_expr_compile(env, expr->scalar, expr->scalar_len, flags, &prog, &diag)) {
    snprintf(whybuf, sizeof(whybuf), "compile error: %s (col %u)", diag.msg, diag.col);
    why = whybuf;
  } else {
    struct expr_ctx *ctx = baton_expr_ctx_new();
    struct expr_value got;
    int rc = baton_expr_eval(prog, ctx, vals, NULL, NULL, &got);
    struct buf b;
    buf_init(&b, 4096);
    baton_expr_value_format(&b, got);
    if (want_error && rc == 0) {
      snprintf(whybuf, sizeof(whybuf), "want an error, got %s", b.ptr ? b.ptr : "");
      why = whybuf;
    } else if (!want_error && rc) {
      snprintf(whybuf, sizeof(whybuf), "evaluation error: %s", b.ptr ? b.ptr : "");
      why = whybuf;
    } else if (!want_error && !same(got, want)) {
      struct buf w;
      buf_init(&w, 4096);
      baton_expr_value_format(&w, want);
      snprintf(whybuf, sizeof(whybuf), "want %s, got %s", w.ptr ? w.ptr : "", b.ptr ? b.ptr : "");
      buf_release(&w);
      why = whybuf;
    }
    buf_release(&b);
    baton_expr_ctx_free(ctx);
  }
  if (why) {
    st->failed++;
    if (verbose)
      printf("FAIL %s/%s/%s: %s\n  expr: %s\n", file, section, name ? name->scalar : "?", why,
             expr->scalar);
  } else {
    st->passed++;
  }
  baton_expr_program_free(prog);
done:
  baton_expr_env_free(env);
  baton_expr_arena_free(a);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  double min_pass = 0, min_run = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--min-pass") && i + 1 < argc)
      min_pass = atof(argv[++i]);
    else if (!strcmp(argv[i], "--min-run") && i + 1 < argc)
      min_run = atof(argv[++i]);
    else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
      verbose = 1;
    else if (!strcmp(argv[i], "--list-skipped"))
      verbose = 2;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(
          stderr,
          "usage: cel_conformance [--min-pass PCT] [--min-run PCT] [--verbose] [--list-skipped]\n"
          "                       [--only NAME]\n");
      return 2;
    }
  }
  const char *root = getenv("BATON_ORACLES");
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/cel", root ? root : "../shared/oracles");
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cel_conformance: cannot open %s\n", dir);
    return 1;
  }
  char *files[256];
  int n_files = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n_files < 256) {
    size_t l = strlen(e->d_name);
    if (l > 10 && !strcmp(e->d_name + l - 10, ".textproto")) files[n_files++] = xstrdup(e->d_name);
  }
  closedir(d);
  qsort(files, (size_t)n_files, sizeof(*files), cmp_str);
  struct stats total = {0};
  printf("%-24s %7s %7s %8s\n", "file", "passed", "failed", "skipped");
  for (int f = 0; f < n_files; f++) {
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
    FILE *fp = fopen(path, "rb");
    struct buf text;
    buf_init(&text, 16u << 20);
    char chunk[65536];
    size_t n;
    while (fp && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0) buf_append(&text, chunk, n);
    if (fp) fclose(fp);
    char err[256];
    struct tp_node *rootn = text.ptr ? tp_parse(text.ptr, text.len, err, sizeof(err)) : NULL;
    if (!rootn) {
      fprintf(stderr, "cel_conformance: %s: %s\n", files[f], text.ptr ? err : "cannot read");
      return 1;
    }
    struct stats st = {0};
    for (const struct tp_node *s = tp_get(rootn, "section"); s; s = tp_next_named(s, "section")) {
      const struct tp_node *sn = tp_get(s, "name");
      for (const struct tp_node *t = tp_get(s, "test"); t; t = tp_next_named(t, "test"))
        run_test(files[f], text.ptr, sn ? sn->scalar : "?", t, &st);
    }
    int sk = 0;
    for (int k = 0; k < N_SKIP; k++) {
      sk += st.skipped[k];
      total.skipped[k] += st.skipped[k];
    }
    printf("%-24s %7d %7d %8d\n", files[f], st.passed, st.failed, sk);
    total.passed += st.passed;
    total.failed += st.failed;
    tp_free(rootn);
    buf_release(&text);
    free(files[f]);
  }
  int skipped = 0;
  for (int k = 0; k < N_SKIP; k++) skipped += total.skipped[k];
  int run = total.passed + total.failed, all = run + skipped;
  double pass_pct = run ? 100.0 * total.passed / run : 0, run_pct = all ? 100.0 * run / all : 0;
  printf("%-24s %7d %7d %8d\n", "total", total.passed, total.failed, skipped);
  printf("skipped, by reason:\n");
  for (int k = 0; k < N_SKIP; k++) printf("  %4d  %s\n", total.skipped[k], skip_why[k]);
  printf("passed %d of %d run (%.1f%%); ran %d of %d cases (%.1f%%)\n", total.passed, run, pass_pct,
         run, all, run_pct);
  if (pass_pct < min_pass || run_pct < min_run) {
    printf("FAILED: targets are >= %.0f%% passed and >= %.0f%% run\n", min_pass, min_run);
    return 1;
  }
  return 0;
}

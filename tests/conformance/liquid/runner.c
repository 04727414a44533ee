/*
 * Liquid conformance runner: reads $BATON_ORACLES/liquid/golden_liquid.json
 * (jg-rp/golden-liquid), runs every case whose tags are all claimed below,
 * and prints passed / failed / skipped counts. A case passes when the output
 * equals "result" (or one of "results"), or, for "invalid": true, when the
 * template fails to compile or render. Exits 1 when fewer than 85% of all
 * cases run or fewer than 98% of those run pass. -v lists every failure.
 * Usage: liquid_conformance [-v] [-k NAME_SUBSTRING]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"
#include "util/buf.h"
#include "util/common.h"

#define MIN_COVERAGE 85.0
#define MIN_PASS_RATE 98.0

/* Every tag and filter the engine implements, as the suite names them. */
static const char *const claimed[] = {
    "# tag", "assign tag", "break tag", "capture tag", "case tag", "comment tag", "cycle tag",
    "decrement tag", "doc tag", "echo tag", "for tag", "if tag", "ifchanged tag", "include tag",
    "increment tag", "liquid tag", "render tag", "tablerow tag", "unless tag",
    "empty", "blank", "strict", "absent", "utc",
    "abs filter", "append filter", "at_least filter", "at_most filter", "base64_decode filter",
    "base64_encode filter", "base64_url_safe_decode filter", "base64_url_safe_encode filter",
    "capitalize filter", "ceil filter", "compact filter", "concat filter", "date filter",
    "default filter", "divided_by filter", "downcase filter", "escape filter", "escape_once filter",
    "find filter", "find_index filter", "first filter", "floor filter", "has filter", "join filter",
    "last filter", "lstrip filter", "map filter", "minus filter", "modulo filter",
    "newline_to_br filter", "plus filter", "prepend filter", "reject filter", "remove filter",
    "remove_first filter", "remove_last filter", "replace filter", "replace_first filter",
    "replace_last filter", "reverse filter", "round filter", "rstrip filter", "size filter",
    "slice filter", "sort filter", "sort_natural filter", "split filter", "strip filter",
    "strip_html filter", "strip_newlines filter", "sum filter", "times filter", "truncate filter",
    "truncatewords filter", "uniq filter", "upcase filter", "url_decode filter", "url_encode filter",
    "where filter",
};

static bool is_claimed(const char *tag) {
  for (size_t i = 0; i < ARRAY_SIZE(claimed); i++)
    if (!strcmp(claimed[i], tag)) return true;
  return false;
}

struct partials {
  const cJSON *sources; /* the case's "templates" object */
  struct baton_template *compiled[64];
  const char *names[64];
  size_t n;
};

static int lookup(void *ud, const char *name, size_t len, const struct baton_template **out) {
  struct partials *p = ud;
  for (size_t i = 0; i < p->n; i++)
    if (strlen(p->names[i]) == len && !memcmp(p->names[i], name, len)) {
      *out = p->compiled[i];
      return 0;
    }
  if (!p->sources || p->n == ARRAY_SIZE(p->compiled)) return BATON_ENOENT;
  for (const cJSON *c = p->sources->child; c; c = c->next) {
    if (strlen(c->string) != len || memcmp(c->string, name, len) || !cJSON_IsString(c)) continue;
    struct baton_template *t;
    struct template_options opt = {.name = c->string};
    int rc = baton_template_compile(c->valuestring, strlen(c->valuestring), &opt, &t, NULL);
    if (rc) return rc;
    p->names[p->n] = c->string;
    p->compiled[p->n++] = t;
    *out = t;
    return 0;
  }
  return BATON_ENOENT;
}

/* Runs one case; returns true if it passed. *why receives a short reason. */
static bool run_case(const cJSON *tc, char *why, size_t why_len) {
  const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(tc, "template"));
  const cJSON *data = cJSON_GetObjectItem(tc, "data");
  bool invalid = cJSON_IsTrue(cJSON_GetObjectItem(tc, "invalid"));
  struct partials parts = {.sources = cJSON_GetObjectItem(tc, "templates")};
  struct baton_template *t = NULL;
  struct template_error err = {0};
  struct buf out;
  buf_init(&out, 1u << 22);
  bool ok = false;
  char msg[300];
  int rc = baton_template_compile(src, strlen(src), NULL, &t, &err);
  if (!rc) {
    struct template_env env = {.vars = data, .lookup = lookup, .ud = &parts,
                                     .now_ms = 1700000000000};
    rc = baton_template_render(t, &env, &out, &err);
  }
  const char *got = out.ptr ? out.ptr : "";
  if (invalid) {
    ok = rc != 0;
    if (!ok) snprintf(why, why_len, "expected an error, got \"%.100s\"", got);
  } else if (rc) {
    snprintf(why, why_len, "error: %s", baton_template_error_format(&err, msg, sizeof(msg)));
  } else {
    const cJSON *res = cJSON_GetObjectItem(tc, "result");
    const cJSON *results = cJSON_GetObjectItem(tc, "results");
    if (res && cJSON_IsString(res)) ok = !strcmp(res->valuestring, got);
    for (const cJSON *c = results ? results->child : NULL; c && !ok; c = c->next)
      ok = cJSON_IsString(c) && !strcmp(c->valuestring, got);
    if (!ok)
      snprintf(why, why_len, "expected \"%.100s\", got \"%.100s\"",
               res ? cJSON_GetStringValue(res) : "(one of results)", got);
  }
  baton_template_free(t);
  for (size_t i = 0; i < parts.n; i++) baton_template_free(parts.compiled[i]);
  buf_release(&out);
  return ok;
}

int main(int argc, char **argv) {
  bool verbose = false;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-v")) verbose = true;
    else if (!strcmp(argv[i], "-k") && i + 1 < argc) only = argv[++i], verbose = true;
  }
  const char *dir = getenv("BATON_ORACLES");
  char path[4096];
  snprintf(path, sizeof(path), "%s/liquid/golden_liquid.json", dir ? dir : "../shared/oracles");
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "liquid_conformance: cannot open %s\n", path);
    return 1;
  }
  struct buf b;
  buf_init(&b, 64u << 20);
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
    if (buf_append(&b, tmp, n)) break;
  fclose(f);
  cJSON *doc = cJSON_ParseWithLength(b.ptr, b.len);
  buf_release(&b);
  const cJSON *tests = cJSON_GetObjectItem(doc, "tests");
  if (!cJSON_IsArray(tests)) {
    fprintf(stderr, "liquid_conformance: %s has no \"tests\" array\n", path);
    cJSON_Delete(doc);
    return 1;
  }
  int passed = 0, failed = 0, skipped = 0, total = 0;
  for (const cJSON *tc = tests->child; tc; tc = tc->next) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(tc, "name"));
    if (only && (!name || !strstr(name, only))) continue;
    total++;
    bool run = cJSON_IsString(cJSON_GetObjectItem(tc, "template"));
    const cJSON *tags = cJSON_GetObjectItem(tc, "tags");
    for (const cJSON *t = tags ? tags->child : NULL; t && run; t = t->next)
      run = cJSON_IsString(t) && is_claimed(t->valuestring);
    if (!run) {
      skipped++;
      if (verbose) printf("SKIP %s\n", name);
      continue;
    }
    char why[512] = "";
    if (run_case(tc, why, sizeof(why))) {
      passed++;
    } else {
      failed++;
      if (verbose) printf("FAIL %s: %s\n", name, why);
    }
  }
  cJSON_Delete(doc);
  int ran = passed + failed;
  double coverage = total ? 100.0 * ran / total : 0, rate = ran ? 100.0 * passed / ran : 0;
  printf("liquid conformance: %d passed, %d failed, %d skipped of %d (%.1f%% run, %.1f%% of run passed)\n",
         passed, failed, skipped, total, coverage, rate);
  if (only) return failed ? 1 : 0;
  if (coverage < MIN_COVERAGE || rate < MIN_PASS_RATE) {
    printf("below target: need >= %.0f%% run and >= %.0f%% passed\n", MIN_COVERAGE, MIN_PASS_RATE);
    return 1;
  }
  return 0;
}

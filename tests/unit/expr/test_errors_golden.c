/*
 * Golden error messages: tests/unit/expr/errors.golden holds records of an
 * expression line followed by the exact text baton prints for it (a compile
 * or evaluation error with the source line and a caret under the column, or
 * the value), each record ended by a blank line; '#' lines are comments.
 * Expressions are compiled in the default environment (profile, event,
 * context) with no host. Run with BATON_UPDATE_GOLDEN=1 to rewrite the file
 * from the current output (then review the diff).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "expr/expr.h"
#include "util/buf.h"

static void render(const struct expr_env *env, const char *src, struct buf *out) {
  struct expr_program *p;
  struct expr_diag d;
  size_t len = strlen(src);
  if (baton_expr_compile(env, src, len, 0, &p, &d)) {
    baton_expr_diag_render(out, NULL, src, len, &d);
    return;
  }
  struct expr_ctx *ctx = baton_expr_ctx_new();
  struct expr_value v;
  if (baton_expr_eval(p, ctx, NULL, NULL, NULL, &v)) {
    baton_expr_error_diag(v.v.err, src, len, &d);
    baton_expr_diag_render(out, NULL, src, len, &d);
  } else {
    baton_expr_value_format(out, v);
  }
  baton_expr_ctx_free(ctx);
  baton_expr_program_free(p);
}

static void test_golden(void **state) {
  (void)state;
  const char *dir = getenv("BATON_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof(path), "%s/tests/unit/expr/errors.golden", dir ? dir : ".");
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s (set BATON_SOURCE_DIR)", path);
  struct expr_env *env = baton_expr_env_new_default();
  struct buf rewritten, want, got;
  buf_init(&rewritten, 0);
  buf_init(&want, 0);
  buf_init(&got, 0);
  char line[4096], expr[4096];
  int n_records = 0, n_failed = 0;
  bool in_record = false;
  for (;;) {
    char *l = fgets(line, sizeof(line), f);
    bool end = !l || line[0] == '\n';
    if (l && !in_record && line[0] == '#') {
      buf_puts(&rewritten, line);
      continue;
    }
    if (l && !in_record && !end) {
      snprintf(expr, sizeof(expr), "%s", line);
      expr[strcspn(expr, "\n")] = 0;
      in_record = true;
      buf_clear(&want);
      continue;
    }
    if (in_record && !end) {
      buf_puts(&want, line);
      continue;
    }
    if (in_record) {
      buf_clear(&got);
      render(env, expr, &got);
      buf_putc(&got, '\n');
      n_records++;
      if (strcmp(got.ptr, want.ptr ? want.ptr : "")) {
        n_failed++;
        print_error("%s\n--- want\n%s--- got\n%s", expr, want.ptr ? want.ptr : "", got.ptr);
      }
      buf_printf(&rewritten, "%s\n%s\n", expr, got.ptr);
      in_record = false;
    } else if (l) {
      buf_puts(&rewritten, line);
    }
    if (!l) break;
  }
  fclose(f);
  if (getenv("BATON_UPDATE_GOLDEN")) {
    f = fopen(path, "w");
    fputs(rewritten.ptr, f);
    fclose(f);
  }
  buf_release(&rewritten);
  buf_release(&want);
  buf_release(&got);
  baton_expr_env_free(env);
  assert_true(n_records >= 20);
  assert_int_equal(n_failed, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

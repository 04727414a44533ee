/*
 * libFuzzer target for the condition language front end: lexes, parses,
 * checks and compiles arbitrary input in checked and unchecked mode, renders
 * any diagnostic with its caret, and dumps the bytecode of what compiles.
 */
#include <stddef.h>
#include <stdint.h>

#include "expr/expr.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct expr_env *env;
  if (!env) env = baton_expr_env_new_default();
  for (unsigned flags = 0; flags <= BATON_EXPR_UNCHECKED; flags += BATON_EXPR_UNCHECKED) {
    struct expr_program *p = NULL;
    struct expr_diag d;
    struct buf b;
    buf_init(&b, 1 << 20);
    if (baton_expr_compile(env, (const char *)data, size, flags, &p, &d)) {
      baton_expr_diag_render(&b, NULL, (const char *)data, size, &d);
      if (d.pos > size) __builtin_trap();
    } else {
      baton_expr_program_dump(&b, p);
    }
    buf_release(&b);
    baton_expr_program_free(p);
  }
  return 0;
}

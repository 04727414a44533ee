/*
 * Environments (declared variables) and programs: the public entry point
 * that runs the pipeline (parse -> check -> compile) and owns its results,
 * and a bytecode listing for debugging. The parse tree lives in a temporary
 * arena released before baton_expr_compile returns; the program keeps only
 * its code, constants, compiled regular expressions and a copy of the source.
 */
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

static const char *const reserved_names[] = {"true", "false", "null", "in", "now"};

struct expr_env *baton_expr_env_new(void) {
  return xcalloc(1, sizeof(struct expr_env));
}

struct expr_env *baton_expr_env_new_default(void) {
  struct expr_env *env = baton_expr_env_new();
  baton_expr_env_declare(env, "profile", -1);
  baton_expr_env_declare(env, "event", -1);
  baton_expr_env_declare(env, "context", -1);
  return env;
}

void baton_expr_env_free(struct expr_env *env) {
  if (!env) return;
  for (size_t i = 0; i < env->n_vars; i++) free(env->names[i]);
  free(env->names);
  free(env->types);
  free(env);
}

int baton_expr_env_declare(struct expr_env *env, const char *name, int type) {
  size_t n = strlen(name);
  if (!n || env->n_vars >= EXPR_MAX_VARS || type >= EXPR_N_KINDS || type < -1) return BATON_EINVAL;
  for (size_t i = 0; i < ARRAY_SIZE(reserved_names); i++)
    if (!strcmp(name, reserved_names[i])) return BATON_EINVAL;
  for (size_t i = 0; i < env->n_vars; i++)
    if (!strcmp(env->names[i], name)) return BATON_EEXIST;
  if (env->n_vars == env->cap) {
    env->cap = env->cap ? env->cap * 2 : 8;
    env->names = xrealloc(env->names, env->cap * sizeof(*env->names));
    env->types = xrealloc(env->types, env->cap * sizeof(*env->types));
  }
  env->names[env->n_vars] = xstrdup(name);
  env->types[env->n_vars] = type;
  return (int)env->n_vars++;
}

size_t baton_expr_env_n_vars(const struct expr_env *env) { return env->n_vars; }

int baton_expr_env_lookup(const struct expr_env *env, const char *name) {
  for (size_t i = 0; i < env->n_vars; i++)
    if (!strcmp(env->names[i], name)) return (int)i;
  return BATON_ENOENT;
}

void baton_expr_program_free(struct expr_program *p) {
  if (!p) return;
  regex_cache_free(p->regexes);
  free(p->code);
  free(p->consts);
  free(p->khash);
  free(p->ktag);
  arena_release(&p->arena);
  free(p);
}

int baton_expr_compile(const struct expr_env *env, const char *src, size_t len, unsigned flags,
                       struct expr_program **out, struct expr_diag *diag) {
  struct expr_diag local;
  if (!diag) diag = &local;
  memset(diag, 0, sizeof(*diag));
  *out = NULL;
  if (len > EXPR_MAX_SRC) {
    diag_set(diag, src, 0, 0, "expression too long (%zu bytes, at most %d)", len, EXPR_MAX_SRC);
    return BATON_ETOOBIG;
  }
  struct expr_program *p = xcalloc(1, sizeof(*p));
  p->env = env;
  arena_init(&p->arena, 0, 0);
  p->src = arena_alloc(&p->arena, len + 1);
  memcpy(p->src, src, len);
  p->src[len] = 0;
  p->src_len = len;
  struct expr_arena pa;
  arena_init(&pa, 64u << 20, 0);
  struct ast *root = NULL;
  int rc = parse_expr(&pa, p->src, len, diag, &root);
  if (!rc) rc = check_ast(env, root, flags, p->src, len, diag, &p->n_locals);
  if (!rc) rc = compile_ast(p, root, flags, diag);
  if (!rc && !(flags & BATON_EXPR_BYTECODE_ONLY) && closure_compile(p, root))
    rc = BATON_ETOOBIG, diag_set(diag, p->src, len, 0, "expression too large");
  arena_release(&pa);
  if (rc) {
    baton_expr_program_free(p);
    return rc;
  }
  if (!p->entry) p->entry = vm_run;
  *out = p;
  return 0;
}

static const struct {
  const char *name;
  int n;
} op_info[] = {
#define OP(name, n, doc) {#name, n},
#include "expr/opcode_list.h"
#undef OP
};

int baton_expr_program_dump(struct buf *b, const struct expr_program *p) {
  int rc = 0;
  for (size_t i = 0; i < p->n_code && !rc; i++) {
    const struct insn *in = &p->code[i];
    rc = buf_printf(b, "%4zu  %-14s", i, op_info[in->op].name);
    if (!rc && op_info[in->op].n >= 1) rc = buf_printf(b, " %u", in->a);
    if (!rc && op_info[in->op].n >= 2) rc = buf_printf(b, " %u", in->b);
    /* Show the constant an instruction refers to. */
    int kidx = -1;
    switch (in->op) {
      case OP_CONST:
      case OP_SELECT:
      case OP_HAS:
      case OP_UNKNOWN_VAR:
      case OP_UNKNOWN_CALL:
      case OP_EQ_K:
      case OP_NE_K:
      case OP_LT_K:
      case OP_LE_K:
      case OP_GT_K:
      case OP_GE_K:
      case OP_IN_CONST:
      case OP_STARTS_WITH_K:
      case OP_ENDS_WITH_K:
        kidx = (int)in->a;
        break;
      case OP_SELECT_VAR:
      case OP_SELECT_LOCAL:
      case OP_SELECT_VAR_CMP:
      case OP_SELECT_LOCAL_CMP:
        kidx = (int)in->b;
        break;
    }
    if (!rc && kidx >= 0) {
      rc = buf_puts(b, "  ; ");
      if (!rc && (in->op == OP_SELECT_VAR || in->op == OP_SELECT_VAR_CMP))
        rc = buf_printf(b, "%s.", p->env->names[in->a]);
      if (!rc) rc = baton_expr_value_format(b, p->consts[kidx]);
    }
    if (!rc && in->op == OP_CALL) rc = buf_printf(b, "  ; %s", builtins[in->a].name);
    if (!rc) rc = buf_putc(b, '\n');
  }
  if (!rc && p->closure) rc = buf_puts(b, "closure: yes (the bytecode runs when it bails)\n");
  return rc;
}

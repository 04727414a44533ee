/*
 * The checker: resolves every name in the AST (comprehension variables,
 * declared variables including dotted names, type names, builtin
 * functions and their calling style and arity) and infers types where they
 * are known, rejecting operator and function applications that no overload
 * accepts. Types it cannot know (dynamic variables, map values) are "dyn"
 * and are checked at run time instead. To decide whether an overload exists
 * it runs the VM's own operator on sample values of the operand types, so
 * the checker and the VM cannot disagree. With BATON_EXPR_UNCHECKED it only
 * resolves names, and unknown ones become run-time errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

#define MAX_SCOPES 64

struct checker {
  const struct expr_env *env;
  unsigned flags;
  const char *src;
  size_t len;
  struct expr_diag *diag;
  struct {
    const char *name;
    size_t len;
    int32_t local; /* slot of the iteration variable */
  } scopes[MAX_SCOPES];
  int n_scopes;
  int32_t next_local, max_local;
  struct expr_ctx probe_ctx; /* arena for overload probes */
};

static const struct {
  const char *name;
  int kind;
} type_names[] = {
    {"int", EXPR_INT},
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
    {"google.protobuf.Duration", EXPR_DURATION},
};

static int err(struct checker *c, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int err(struct checker *c, uint32_t pos, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  diag_set(c->diag, c->src, c->len, pos, "%s", msg);
  return BATON_ETYPE;
}

static bool strict(const struct checker *c) { return !(c->flags & BATON_EXPR_UNCHECKED); }

/* A sample value of kind k, for overload probes. */
static struct expr_value sample(int k) {
  static const struct expr_list empty_list = {0, 0};
  static const struct expr_map empty_map = {0, 0, NULL, NULL};
  struct expr_value v = {.kind = (uint8_t)k};
  switch (k) {
    case EXPR_STRING:
    case EXPR_BYTES:
      v.v.s = "";
      break;
    case EXPR_LIST:
      v.v.list = &empty_list;
      break;
    case EXPR_MAP:
      v.v.map = &empty_map;
      break;
    case EXPR_DOUBLE:
      v.v.d = 1.0;
      break;
    case EXPR_INT:
      v.v.i = 1;
      break;
    case EXPR_UINT:
      v.v.u = 1;
      break;
    case EXPR_TYPE:
      v.v.type = EXPR_INT;
      break;
  }
  return v;
}

static bool is_overload_error(struct expr_value v) {
  return v.kind == EXPR_ERROR && !strncmp(v.v.err->msg, "no matching overload", 20);
}

static struct vm probe_vm(struct checker *c) {
  struct vm vm = {.ctx = &c->probe_ctx, .arena = &c->probe_ctx.arena, .have_now = true};
  baton_expr_arena_reset(&c->probe_ctx.arena);
  return vm;
}

static const char *tname(int k) {
  if (k < 0) return "dyn";
  if (k == EXPR_TIMESTAMP) return "timestamp";
  if (k == EXPR_DURATION) return "duration";
  return baton_expr_kind_name(k);
}

static int no_overload(struct checker *c, uint32_t pos, const char *fn, const int *types, int n) {
  char buf[200];
  size_t off = 0;
  buf[0] = 0;
  for (int i = 0; i < n; i++)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? ", " : "", tname(types[i]));
  diag_set(c->diag, c->src, c->len, pos, "found no matching overload for '%s' applied to '(%s)'",
           fn, buf);
  return BATON_ETYPE;
}

static int check(struct checker *c, struct ast *n);

enum probe_kind { PROBE_CALL, PROBE_UNARY, PROBE_BINARY };

/*
 * Returns true if some overload accepts arguments of kinds types[0..n)
 * (-1: dynamic, so every kind is tried, at most 2 dynamic arguments).
 * *result receives the result kind when it is the same for every accepted
 * combination (so `x + 1` with x dynamic is an int: only int + int exists),
 * else -1.
 */
static bool probe(struct checker *c, enum probe_kind pk, int op, const int *types, int n,
                  int *result) {
  int dyn_at[2], n_dyn = 0;
  for (int i = 0; i < n; i++)
    if (types[i] < 0) {
      if (n_dyn == 2) {
        *result = -1;
        return true;
      }
      dyn_at[n_dyn++] = i;
    }
  int combos = n_dyn == 0 ? 1 : n_dyn == 1 ? EXPR_ERROR : EXPR_ERROR * EXPR_ERROR;
  bool any = false;
  *result = -2;
  for (int k = 0; k < combos; k++) {
    struct expr_value args[4];
    for (int i = 0; i < n; i++) args[i] = sample(types[i] < 0 ? EXPR_NULL : types[i]);
    if (n_dyn >= 1) args[dyn_at[0]] = sample(k % EXPR_ERROR);
    if (n_dyn == 2) args[dyn_at[1]] = sample(k / EXPR_ERROR);
    struct vm vm = probe_vm(c);
    struct expr_value out;
    if (pk == PROBE_CALL)
      builtin_call(&vm, op, args, n, 0, &out);
    else if (pk == PROBE_UNARY)
      vm_unary(&vm, (enum tok_kind)op, args[0], 0, &out);
    else
      vm_binary(&vm, (enum tok_kind)op, args[0], args[1], 0, &out);
    if (is_overload_error(out)) continue;
    any = true;
    int rk = out.kind == EXPR_ERROR ? -1 : out.kind;
    *result = *result == -2 ? rk : *result == rk ? rk : -1;
  }
  if (*result == -2) *result = -1;
  return any;
}

/* The dotted name of an IDENT or a chain of SELECTs over one, else 0. */
static size_t dotted_name(const struct ast *n, char *buf, size_t cap) {
  if (n->kind == AST_IDENT) {
    if (n->name_len >= cap) return 0;
    memcpy(buf, n->name, n->name_len);
    buf[n->name_len] = 0;
    return n->name_len;
  }
  if (n->kind != AST_SELECT || n->test_only) return 0;
  size_t l = dotted_name(n->a, buf, cap);
  if (!l || l + 1 + n->name_len >= cap) return 0;
  buf[l] = '.';
  memcpy(buf + l + 1, n->name, n->name_len);
  buf[l + 1 + n->name_len] = 0;
  return l + 1 + n->name_len;
}

static int find_var(const struct expr_env *env, const char *name, size_t len) {
  for (size_t i = 0; i < env->n_vars; i++)
    if (strlen(env->names[i]) == len && !memcmp(env->names[i], name, len)) return (int)i;
  return -1;
}

static int find_local(const struct checker *c, const char *name, size_t len) {
  for (int i = c->n_scopes - 1; i >= 0; i--)
    if (c->scopes[i].len == len && !memcmp(c->scopes[i].name, name, len)) return c->scopes[i].local;
  return -1;
}

static int check_ident(struct checker *c, struct ast *n) {
  int l = find_local(c, n->name, n->name_len);
  if (l >= 0) {
    n->slot = -2 - l;
    n->type = -1;
    return 0;
  }
  int v = find_var(c->env, n->name, n->name_len);
  if (v >= 0) {
    n->slot = v;
    n->type = c->env->types[v];
    return 0;
  }
  for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
    if (strlen(type_names[i].name) == n->name_len &&
        !memcmp(type_names[i].name, n->name, n->name_len)) {
      n->kind = AST_LIT;
      n->lit.kind = EXPR_TYPE;
      n->lit.v.type = (uint64_t)type_names[i].kind;
      n->type = EXPR_TYPE;
      return 0;
    }
  if (n->name_len == 3 && !memcmp(n->name, "now", 3)) {
    n->kind = AST_CALL;
    n->fn = FN_NOW;
    n->n_args = 0;
    n->type = EXPR_TIMESTAMP;
    return 0;
  }
  if (strict(c)) {
    char nm[128];
    snprintf(nm, sizeof(nm), "%.*s", (int)MIN(n->name_len, 100u), n->name);
    return err(c, n->pos, "undeclared reference to '%s'", nm);
  }
  n->slot = -1; /* compiled to an error raised if evaluated */
  return 0;
}

static int check_select(struct checker *c, struct ast *n) {
  /* A dotted chain may name a declared variable ("a.b.c"): longest prefix wins. */
  char buf[256];
  if (!n->test_only && dotted_name(n, buf, sizeof(buf))) {
    const struct ast *root = n;
    while (root->kind == AST_SELECT) root = root->a;
    if (find_local(c, root->name, root->name_len) < 0) {
      size_t len = strlen(buf);
      int v = find_var(c->env, buf, len);
      if (v >= 0) {
        n->kind = AST_IDENT;
        n->slot = v;
        n->type = c->env->types[v];
        return 0;
      }
      for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
        if (!strcmp(type_names[i].name, buf)) {
          n->kind = AST_LIT;
          n->lit.kind = EXPR_TYPE;
          n->lit.v.type = (uint64_t)type_names[i].kind;
          n->type = EXPR_TYPE;
          return 0;
        }
    }
  }
  int rc = check(c, n->a);
  if (rc) return rc;
  int t = n->a->type;
  if (strict(c) && t >= 0 && t != EXPR_MAP) {
    char nm[64];
    snprintf(nm, sizeof(nm), "%s", tname(t));
    return err(c, n->pos, "type '%s' does not support field selection", nm);
  }
  n->type = n->test_only ? EXPR_BOOL : -1;
  return 0;
}

static int check_call(struct checker *c, struct ast *n) {
  bool member = n->a != NULL;
  int fn = builtin_find(n->name, n->name_len);
  for (uint32_t i = 0; i < n->n_args; i++) {
    int rc = check(c, n->args[i]);
    if (rc) return rc;
  }
  char nm[128];
  snprintf(nm, sizeof(nm), "%.*s", (int)MIN(n->name_len, 100u), n->name);
  if (fn < 0 || !(builtins[fn].styles & (member ? FN_MEMBER : FN_GLOBAL))) {
    if (!strict(c)) {
      n->fn = -1;
      return 0;
    }
    if (fn >= 0)
      return err(
          c, n->pos,
          member ? "'%s' is not a method; call it as %s(x)" : "'%s' is a method; call it as x.%s()",
          nm, nm);
    return err(c, n->pos, "undeclared reference to '%s'", nm);
  }
  if ((int)n->n_args < builtins[fn].min_args || (int)n->n_args > builtins[fn].max_args) {
    if (!strict(c)) {
      n->fn = -1;
      return 0;
    }
    char want[64];
    int lo = builtins[fn].min_args - member, hi = builtins[fn].max_args - member;
    if (lo == hi)
      snprintf(want, sizeof(want), "%d argument%s", lo, lo == 1 ? "" : "s");
    else
      snprintf(want, sizeof(want), "%d to %d arguments", lo, hi);
    return err(c, n->pos, "%s() takes %s", nm, want);
  }
  n->fn = fn;
  n->type = builtins[fn].ret;
  if (fn == FN_DYN) n->type = -1;
  if (!strict(c)) return 0;
  /* Probe the overloads. Journey functions check their arguments before
   * asking the host, so a probe never reaches it. */
  if (fn == FN_DYN || fn == FN_NOW || n->n_args > 4) return 0;
  int types[4], rt;
  for (uint32_t i = 0; i < n->n_args; i++) types[i] = n->args[i]->type;
  if (!probe(c, PROBE_CALL, fn, types, (int)n->n_args, &rt))
    return no_overload(c, n->pos, builtins[fn].name, types, (int)n->n_args);
  return 0;
}

static int check_compr(struct checker *c, struct ast *n) {
  int rc = check(c, n->a);
  if (rc) return rc;
  if (strict(c) && n->a->type >= 0 && n->a->type != EXPR_LIST && n->a->type != EXPR_MAP) {
    char nm[64];
    snprintf(nm, sizeof(nm), "%s", tname(n->a->type));
    return err(c, n->a->pos, "cannot iterate over a value of type '%s'", nm);
  }
  if (c->n_scopes == MAX_SCOPES) return err(c, n->pos, "macros nested too deeply");
  int32_t base = c->next_local;
  c->next_local += 4;
  if (c->next_local > c->max_local) c->max_local = c->next_local;
  n->slot = base;
  c->scopes[c->n_scopes].name = n->name;
  c->scopes[c->n_scopes].len = n->name_len;
  c->scopes[c->n_scopes].local = base + 2;
  c->n_scopes++;
  if ((rc = check(c, n->b)) || (n->c && (rc = check(c, n->c)))) return rc;
  c->n_scopes--;
  c->next_local -= 4;
  bool pred = n->macro != MACRO_MAP || n->c;
  if (strict(c) && pred && n->b->type >= 0 && n->b->type != EXPR_BOOL) {
    char nm[64];
    snprintf(nm, sizeof(nm), "%s", tname(n->b->type));
    return err(c, n->b->pos, "the predicate must be a bool, not %s", nm);
  }
  n->type = (n->macro == MACRO_MAP || n->macro == MACRO_FILTER) ? EXPR_LIST : EXPR_BOOL;
  return 0;
}

static int check(struct checker *c, struct ast *n) {
  int rc;
  switch (n->kind) {
    case AST_LIT:
      n->type = n->lit.kind;
      return 0;
    case AST_IDENT:
      return check_ident(c, n);
    case AST_SELECT:
      return check_select(c, n);
    case AST_INDEX: {
      if ((rc = check(c, n->a)) || (rc = check(c, n->b))) return rc;
      int t = n->a->type, k = n->b->type;
      if (strict(c) && t >= 0 && t != EXPR_LIST && t != EXPR_MAP) {
        int ts[2] = {t, k};
        return no_overload(c, n->pos, "_[_]", ts, 2);
      }
      if (strict(c) && t == EXPR_LIST && k >= 0 && k != EXPR_INT && k != EXPR_UINT &&
          k != EXPR_DOUBLE) {
        int ts[2] = {t, k};
        return no_overload(c, n->pos, "_[_]", ts, 2);
      }
      n->type = -1;
      return 0;
    }
    case AST_CALL:
      return check_call(c, n);
    case AST_COMPR:
      return check_compr(c, n);
    case AST_LIST:
    case AST_MAP:
      for (uint32_t i = 0; i < n->n_args; i++)
        if ((rc = check(c, n->args[i]))) return rc;
      if (n->kind == AST_MAP && strict(c))
        for (uint32_t i = 0; i < n->n_args; i += 2) {
          int k = n->args[i]->type;
          if (k >= 0 && k != EXPR_INT && k != EXPR_UINT && k != EXPR_BOOL && k != EXPR_STRING) {
            char nm[64];
            snprintf(nm, sizeof(nm), "%s", tname(k));
            return err(c, n->args[i]->pos, "unsupported map key type '%s'", nm);
          }
        }
      n->type = n->kind == AST_LIST ? EXPR_LIST : EXPR_MAP;
      return 0;
    case AST_UNARY: {
      if ((rc = check(c, n->a))) return rc;
      int t = n->a->type;
      n->type = t;
      int rt;
      if (strict(c) && t >= 0 && !probe(c, PROBE_UNARY, n->op, &t, 1, &rt))
        return no_overload(c, n->pos, n->op == TOK_BANG ? "!_" : "-_", &t, 1);
      return 0;
    }
    case AST_COND:
      if ((rc = check(c, n->a)) || (rc = check(c, n->b)) || (rc = check(c, n->c))) return rc;
      if (strict(c) && n->a->type >= 0 && n->a->type != EXPR_BOOL) {
        int t = n->a->type;
        return no_overload(c, n->a->pos, "_?_:_", &t, 1);
      }
      n->type = n->b->type == n->c->type ? n->b->type : -1;
      return 0;
    case AST_BINARY: {
      if ((rc = check(c, n->a)) || (rc = check(c, n->b))) return rc;
      int ts[2] = {n->a->type, n->b->type};
      if (n->op == TOK_ANDAND || n->op == TOK_OROR) {
        n->type = EXPR_BOOL;
        for (int i = 0; i < 2 && strict(c); i++)
          if (ts[i] >= 0 && ts[i] != EXPR_BOOL)
            return no_overload(c, n->pos, vm_op_name(n->op), ts, 2);
        return 0;
      }
      bool rel = n->op == TOK_EQ || n->op == TOK_NE || n->op == TOK_LT || n->op == TOK_LE ||
                 n->op == TOK_GT || n->op == TOK_GE || n->op == TOK_IN;
      n->type = rel ? EXPR_BOOL : -1;
      if (n->op == TOK_EQ || n->op == TOK_NE) return 0; /* any two values compare */
      if (n->op == TOK_IN) {
        if (strict(c) && ts[1] >= 0 && ts[1] != EXPR_LIST && ts[1] != EXPR_MAP)
          return no_overload(c, n->pos, "@in", ts, 2);
        return 0;
      }
      if (!strict(c)) return 0;
      int rt;
      if (!probe(c, PROBE_BINARY, n->op, ts, 2, &rt))
        return no_overload(c, n->pos, vm_op_name(n->op), ts, 2);
      if (!rel) n->type = rt;
      return 0;
    }
  }
  return 0;
}

int check_ast(const struct expr_env *env, struct ast *root, unsigned flags, const char *src,
              size_t len, struct expr_diag *diag, uint32_t *n_locals) {
  struct checker *c = xcalloc(1, sizeof(*c));
  c->env = env;
  c->flags = flags;
  c->src = src;
  c->len = len;
  c->diag = diag;
  arena_init(&c->probe_ctx.arena, 1 << 20, 0);
  int rc = check(c, root);
  *n_locals = (uint32_t)c->max_local;
  vm_regex_ctx_free(&c->probe_ctx);
  arena_release(&c->probe_ctx.arena);
  free(c);
  return rc;
}

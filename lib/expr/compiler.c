/*
 * The compiler: walks a checked AST and emits bytecode for the VM (see
 * opcode_list.h), tracking the deepest the value stack can get so the VM
 * never checks bounds per instruction. It folds list literals made only of
 * constants into one constant, turns `x in [constant list]` into IN_CONST
 * (string lists become a hashed set), fuses variable field reads
 * (profile.tier) into SELECT_VAR, and compiles matches() patterns that are
 * constants once, here. Macros become loops over local slots: for a
 * comprehension at local base r, local[r] is the range, r+1 the index, r+2
 * the iteration variable and r+3 the accumulator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

struct compiler {
  struct expr_program *p;
  struct insn *code;
  size_t n, cap;
  struct expr_value *consts;
  size_t nk, kcap;
  int depth, max_depth;
  unsigned flags;
  struct expr_diag *diag;
  int rc;
};

static uint32_t emit(struct compiler *c, enum opcode op, uint32_t a, uint32_t b, uint32_t pos) {
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 32;
    c->code = xrealloc(c->code, c->cap * sizeof(*c->code));
  }
  c->code[c->n] = (struct insn){.op = (uint8_t)op, .a = a, .b = b, .pos = pos};
  return (uint32_t)c->n++;
}

static void push(struct compiler *c, int n) {
  c->depth += n;
  if (c->depth > c->max_depth) c->max_depth = c->depth;
}

/* Copies strings and bytes into the program's arena so they outlive the parse. */
static struct expr_value own(struct compiler *c, struct expr_value v) {
  if (v.kind == EXPR_STRING || v.kind == EXPR_BYTES) {
    struct expr_value o = baton_expr_string_copy(&c->p->arena, v.v.s, v.aux);
    if (o.kind == EXPR_ERROR) {
      c->rc = BATON_ETOOBIG;
      return v;
    }
    o.kind = v.kind;
    return o;
  }
  return v;
}

static uint32_t add_const(struct compiler *c, struct expr_value v) {
  if (c->nk == c->kcap) {
    c->kcap = c->kcap ? c->kcap * 2 : 16;
    c->consts = xrealloc(c->consts, c->kcap * sizeof(*c->consts));
  }
  c->consts[c->nk] = v;
  return (uint32_t)c->nk++;
}

static uint32_t add_name(struct compiler *c, const char *s, size_t n) {
  return add_const(c, own(c, baton_expr_string(s, n)));
}

bool ast_is_const(const struct ast *n) {
  if (n->kind == AST_LIT) return true;
  if (n->kind != AST_LIST) return false;
  for (uint32_t i = 0; i < n->n_args; i++)
    if (!ast_is_const(n->args[i])) return false;
  return true;
}

static struct expr_value const_value(struct compiler *c, const struct ast *n) {
  if (n->kind == AST_LIT) return own(c, n->lit);
  struct expr_list *l = list_alloc(&c->p->arena, n->n_args);
  if (!l) {
    c->rc = BATON_ETOOBIG;
    return baton_expr_null();
  }
  for (uint32_t i = 0; i < n->n_args; i++) l->items[i] = const_value(c, n->args[i]);
  l->len = n->n_args;
  struct expr_value v = {.kind = EXPR_LIST, .v.list = l};
  return v;
}

static void gen(struct compiler *c, const struct ast *n);

/* Builtins whose result depends only on their arguments: calls of these on
 * literals are evaluated once, here (duration("30d") in a window). */
static bool is_pure(int fn) {
  switch (fn) {
    case FN_SIZE:
    case FN_CONTAINS:
    case FN_STARTS_WITH:
    case FN_ENDS_WITH:
    case FN_LOWER_ASCII:
    case FN_UPPER_ASCII:
    case FN_INT:
    case FN_UINT:
    case FN_DOUBLE:
    case FN_STRING:
    case FN_BYTES:
    case FN_BOOL:
    case FN_DYN:
    case FN_TYPE:
    case FN_TIMESTAMP:
    case FN_DURATION:
      return true;
  }
  return false;
}

int fold_pure_call(struct expr_program *p, const struct ast *n, struct expr_value *out) {
  if (n->kind != AST_CALL || n->fn < 0 || !is_pure(n->fn) || n->n_args > 4) return 1;
  struct compiler c = {.p = p};
  struct expr_value args[4];
  for (uint32_t i = 0; i < n->n_args; i++) {
    if (n->args[i]->kind != AST_LIT) return 1;
    args[i] = own(&c, n->args[i]->lit);
  }
  if (c.rc) return c.rc;
  struct expr_ctx scratch = {0};
  struct vm vm = {.ctx = &scratch, .prog = p, .arena = &p->arena, .have_now = true};
  builtin_call(&vm, n->fn, args, (int)n->n_args, n->pos, out);
  return out->kind == EXPR_ERROR ? 1 : 0;
}

/* Folds a pure call on literals into a constant; false if it cannot (or errs:
 * the error is then raised at evaluation, at its position, like any other). */
static bool fold_call(struct compiler *c, const struct ast *n) {
  struct expr_value out;
  int rc = fold_pure_call(c->p, n, &out);
  if (rc == BATON_ETOOBIG) c->rc = rc;
  if (rc) return false;
  emit(c, OP_CONST, add_const(c, out), 0, n->pos);
  push(c, 1);
  return true;
}

static void patch(struct compiler *c, uint32_t at, bool field_b) {
  if (field_b)
    c->code[at].b = (uint32_t)c->n;
  else
    c->code[at].a = (uint32_t)c->n;
}

uint64_t *in_short_words(struct expr_program *p, const struct expr_list *l) {
  if (l->len > 64) return NULL;
  for (uint32_t i = 0; i < l->len; i++)
    if (l->items[i].kind != EXPR_STRING || l->items[i].aux > SHORT_WORD_MAX) return NULL;
  uint64_t *w = arena_alloc(&p->arena, (l->len ? l->len : 1) * sizeof(*w));
  if (!w) return NULL;
  for (uint32_t i = 0; i < l->len; i++) w[i] = short_word(l->items[i].v.s, l->items[i].aux);
  return w;
}

/*
 * When every item of a constant `in` list is a string of at most 7 bytes
 * and there are at most 64 of them, emits IN_SHORT over an array of their
 * short_word()s (a BYTES constant), which answers a string operand with a
 * few word compares instead of hashing it. IN_CONST follows for the rest.
 */
static void emit_in_short(struct compiler *c, const struct expr_list *l, uint32_t pos) {
  uint64_t *w = in_short_words(c->p, l);
  if (!w) return;
  emit(c, OP_IN_SHORT, add_const(c, baton_expr_bytes(w, l->len * sizeof(*w))), 0, pos);
}

struct expr_map *in_string_set(struct expr_program *p, const struct expr_list *l) {
  if (l->len < 4) return NULL;
  for (uint32_t i = 0; i < l->len; i++)
    if (l->items[i].kind != EXPR_STRING) return NULL;
  struct expr_map *m = map_alloc(&p->arena, l->len);
  if (!m) return NULL;
  uint32_t w = 0;
  for (uint32_t i = 0; i < l->len; i++) {
    bool dup = false;
    for (uint32_t j = 0; j < w && !dup; j++) dup = value_equal(m->entries[j].key, l->items[i]);
    if (dup) continue;
    m->entries[w].key = l->items[i];
    m->entries[w].val = baton_expr_bool(true);
    w++;
  }
  m->len = w;
  return map_seal(&p->arena, m) ? NULL : m;
}

struct expr_value ast_const_value(struct expr_program *p, const struct ast *n, int *rc) {
  struct compiler c = {.p = p};
  struct expr_value v = const_value(&c, n);
  *rc = c.rc;
  return v;
}

static void gen_in_const(struct compiler *c, const struct ast *n) {
  gen(c, n->a);
  struct expr_value list = const_value(c, n->b);
  struct expr_map *m = in_string_set(c->p, list.v.list);
  uint32_t k;
  if (m) {
    /* Hash the strings as map keys; the list follows for non-string operands. */
    struct expr_value mv = {.kind = EXPR_MAP, .v.map = m};
    k = add_const(c, mv);
    add_const(c, list);
  } else {
    k = add_const(c, list);
  }
  emit_in_short(c, list.v.list, n->pos);
  emit(c, OP_IN_CONST, k, 0, n->pos);
}

static void gen_compr(struct compiler *c, const struct ast *n) {
  uint32_t r = (uint32_t)n->slot;
  gen(c, n->a);
  uint32_t init = emit(c, OP_ITER_INIT, r, 0, n->pos);
  push(c, -1);
  if (n->macro == MACRO_MAP || n->macro == MACRO_FILTER) {
    emit(c, OP_LIST_RESERVE, r, 0, n->pos);
    push(c, 1);
    emit(c, OP_SET_LOCAL, r + 3, 0, n->pos);
    push(c, -1);
  }
  uint32_t loop = (uint32_t)c->n;
  uint32_t next = emit(c, OP_ITER_NEXT, r, 0, n->pos);
  uint32_t step = 0, skip = 0, fail_jump = 0;
  switch (n->macro) {
    case MACRO_ALL:
    case MACRO_EXISTS:
    case MACRO_EXISTS_ONE:
      gen(c, n->b);
      step = emit(c,
                  n->macro == MACRO_ALL      ? OP_ALL_STEP
                  : n->macro == MACRO_EXISTS ? OP_EXISTS_STEP
                                             : OP_ONE_STEP,
                  r + 3, 0, n->b->pos);
      push(c, -1);
      break;
    case MACRO_FILTER:
      gen(c, n->b);
      step = emit(c, OP_FILTER_STEP, r, 0, n->b->pos);
      push(c, -1);
      break;
    case MACRO_MAP:
      if (n->c) {
        gen(c, n->b);
        skip = emit(c, OP_SKIP_UNLESS, loop, 0, n->b->pos);
        push(c, -1);
      }
      gen(c, n->c ? n->c : n->b);
      step = emit(c, OP_APPEND, r + 3, 0, n->pos);
      push(c, -1);
      break;
  }
  emit(c, OP_JUMP, loop, 0, n->pos);
  patch(c, next, true);
  switch (n->macro) {
    case MACRO_ALL:
    case MACRO_EXISTS: {
      emit(c, n->macro == MACRO_ALL ? OP_ALL_END : OP_EXISTS_END, r + 3, 0, n->pos);
      fail_jump = emit(c, OP_JUMP, 0, 0, n->pos);
      patch(c, step, true); /* short circuit: the opposite constant */
      emit(c, n->macro == MACRO_ALL ? OP_FALSE : OP_TRUE, 0, 0, n->pos);
      patch(c, fail_jump, false);
      break;
    }
    case MACRO_EXISTS_ONE:
      emit(c, OP_ONE_END, r + 3, 0, n->pos);
      patch(c, step, true);
      break;
    case MACRO_MAP:
    case MACRO_FILTER:
      emit(c, OP_LOCAL, r + 3, 0, n->pos);
      patch(c, step, true);
      if (skip) patch(c, skip, true);
      break;
  }
  patch(c, init, true);
  push(c, 1);
}

static void gen(struct compiler *c, const struct ast *n) {
  switch (n->kind) {
    case AST_LIT:
      if (n->lit.kind == EXPR_NULL)
        emit(c, OP_NULL, 0, 0, n->pos);
      else if (n->lit.kind == EXPR_BOOL)
        emit(c, n->lit.v.b ? OP_TRUE : OP_FALSE, 0, 0, n->pos);
      else
        emit(c, OP_CONST, add_const(c, own(c, n->lit)), 0, n->pos);
      push(c, 1);
      return;
    case AST_IDENT:
      if (n->slot >= 0)
        emit(c, OP_VAR, (uint32_t)n->slot, 0, n->pos);
      else if (n->slot <= -2)
        emit(c, OP_LOCAL, (uint32_t)(-2 - n->slot), 0, n->pos);
      else
        emit(c, OP_UNKNOWN_VAR, add_name(c, n->name, n->name_len), 0, n->pos);
      push(c, 1);
      return;
    case AST_SELECT:
      if (!n->test_only && n->a->kind == AST_IDENT && n->a->slot != -1) {
        bool var = n->a->slot >= 0;
        emit(c, var ? OP_SELECT_VAR : OP_SELECT_LOCAL,
             (uint32_t)(var ? n->a->slot : -2 - n->a->slot), add_name(c, n->name, n->name_len),
             n->pos);
        push(c, 1);
        return;
      }
      gen(c, n->a);
      emit(c, n->test_only ? OP_HAS : OP_SELECT, add_name(c, n->name, n->name_len), 0, n->pos);
      return;
    case AST_INDEX:
      gen(c, n->a);
      gen(c, n->b);
      emit(c, OP_INDEX, 0, 0, n->pos);
      push(c, -1);
      return;
    case AST_CALL: {
      if (fold_call(c, n)) return;
      if ((n->fn == FN_STARTS_WITH || n->fn == FN_ENDS_WITH) && n->n_args == 2 &&
          n->args[1]->kind == AST_LIT && n->args[1]->lit.kind == EXPR_STRING) {
        /* x.startsWith("vip."): the guarded STARTS_WITH_K, then the call it
         * stands in for (reached with the constant pushed when x is not a
         * string). */
        gen(c, n->args[0]);
        emit(c, n->fn == FN_STARTS_WITH ? OP_STARTS_WITH_K : OP_ENDS_WITH_K,
             add_const(c, own(c, n->args[1]->lit)), 0, n->pos);
        push(c, 1);
        emit(c, OP_CALL, (uint32_t)n->fn, 2, n->pos);
        push(c, -1);
        return;
      }
      for (uint32_t i = 0; i < n->n_args; i++) gen(c, n->args[i]);
      if (n->fn == FN_MATCHES && n->args[1]->kind == AST_LIT &&
          n->args[1]->lit.kind == EXPR_STRING) {
        /* The constant we just emitted is the pattern: compile it once. */
        struct expr_value pat = c->consts[c->code[c->n - 1].a];
        char msg[200];
        if (regex_precompile(c->p, pat, msg, sizeof(msg)) && !(c->flags & BATON_EXPR_UNCHECKED)) {
          diag_set(c->diag, c->p->src, c->p->src_len, n->args[1]->pos, "%s", msg);
          c->rc = BATON_EPARSE;
        }
      }
      if (n->fn >= 0)
        emit(c, OP_CALL, (uint32_t)n->fn, n->n_args, n->pos);
      else
        emit(c, OP_UNKNOWN_CALL, add_name(c, n->name, n->name_len), n->n_args, n->pos);
      push(c, 1 - (int)n->n_args);
      return;
    }
    case AST_UNARY:
      gen(c, n->a);
      emit(c, n->op == TOK_BANG ? OP_NOT : OP_NEG, 0, 0, n->pos);
      return;
    case AST_BINARY: {
      if (n->op == TOK_ANDAND || n->op == TOK_OROR) {
        gen(c, n->a);
        uint32_t j = emit(c, n->op == TOK_ANDAND ? OP_AND_SHORT : OP_OR_SHORT, 0, 0, n->pos);
        gen(c, n->b);
        emit(c, n->op == TOK_ANDAND ? OP_AND : OP_OR, 0, 0, n->pos);
        push(c, -1);
        patch(c, j, false);
        return;
      }
      if (n->op == TOK_IN && n->b->kind == AST_LIST && n->b->n_args && ast_is_const(n->b)) {
        gen_in_const(c, n);
        return;
      }
      static const struct {
        enum tok_kind tok;
        enum opcode op;
      } ops[] = {{TOK_PLUS, OP_ADD},  {TOK_MINUS, OP_SUB},   {TOK_STAR, OP_MUL},
                 {TOK_SLASH, OP_DIV}, {TOK_PERCENT, OP_MOD}, {TOK_EQ, OP_EQ},
                 {TOK_NE, OP_NE},     {TOK_LT, OP_LT},       {TOK_LE, OP_LE},
                 {TOK_GT, OP_GT},     {TOK_GE, OP_GE},       {TOK_IN, OP_IN}};
      static const struct {
        enum tok_kind tok;
        enum opcode op;
      } kops[] = {{TOK_EQ, OP_EQ_K}, {TOK_NE, OP_NE_K}, {TOK_LT, OP_LT_K},
                  {TOK_LE, OP_LE_K}, {TOK_GT, OP_GT_K}, {TOK_GE, OP_GE_K}};
      gen(c, n->a);
      if (n->b->kind == AST_LIT) {
        /* Comparing with a constant, the usual shape of a condition. A field
         * read just before it (profile.age > 30) becomes the guarded
         * superinstruction that does both when it can. */
        for (size_t i = 0; i < ARRAY_SIZE(kops); i++)
          if (kops[i].tok == n->op) {
            struct insn *last = &c->code[c->n - 1];
            if (last->op == OP_SELECT_VAR) last->op = OP_SELECT_VAR_CMP;
            if (last->op == OP_SELECT_LOCAL) last->op = OP_SELECT_LOCAL_CMP;
            emit(c, kops[i].op, add_const(c, own(c, n->b->lit)), 0, n->pos);
            return;
          }
      }
      gen(c, n->b);
      for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
        if (ops[i].tok == n->op) emit(c, ops[i].op, 0, 0, n->pos);
      push(c, -1);
      return;
    }
    case AST_COND: {
      gen(c, n->a);
      uint32_t cj = emit(c, OP_COND, 0, 0, n->pos);
      push(c, -1);
      gen(c, n->b);
      uint32_t j = emit(c, OP_JUMP, 0, 0, n->pos);
      patch(c, cj, false);
      push(c, -1);
      gen(c, n->c);
      patch(c, j, false);
      patch(c, cj, true);
      return;
    }
    case AST_LIST:
      if (ast_is_const(n)) {
        emit(c, OP_CONST, add_const(c, const_value(c, n)), 0, n->pos);
        push(c, 1);
        return;
      }
      for (uint32_t i = 0; i < n->n_args; i++) gen(c, n->args[i]);
      emit(c, OP_LIST, n->n_args, 0, n->pos);
      push(c, 1 - (int)n->n_args);
      return;
    case AST_MAP:
      for (uint32_t i = 0; i < n->n_args; i++) gen(c, n->args[i]);
      emit(c, OP_MAP, n->n_args / 2, 0, n->pos);
      push(c, 1 - (int)n->n_args);
      return;
    case AST_COMPR:
      gen_compr(c, n);
      return;
  }
}

int compile_ast(struct expr_program *p, struct ast *root, unsigned flags, struct expr_diag *diag) {
  struct compiler c = {.p = p, .flags = flags, .diag = diag};
  gen(&c, root);
  emit(&c, OP_RETURN, 0, 0, root->pos);
  if (c.rc) {
    free(c.code);
    free(c.consts);
    if (c.rc == BATON_ETOOBIG) diag_set(diag, p->src, p->src_len, 0, "expression too large");
    return c.rc;
  }
  p->code = c.code;
  p->n_code = c.n;
  p->consts = c.consts;
  p->n_consts = c.nk;
  p->khash = xcalloc(c.nk ? c.nk : 1, sizeof(*p->khash));
  p->ktag = xcalloc(c.nk ? c.nk : 1, sizeof(*p->ktag));
  for (size_t i = 0; i < c.nk; i++) {
    if (c.consts[i].kind == EXPR_STRING) p->khash[i] = key_hash(c.consts[i].v.s, c.consts[i].aux);
    p->ktag[i] = key_tag(&c.consts[i]);
  }
  p->max_stack = (uint32_t)c.max_depth + 1;
  p->frame = (size_t)p->max_stack + p->n_locals + 1;
  return 0;
}

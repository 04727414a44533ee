/*
 * The virtual machine: runs a program's bytecode over a value stack and a
 * frame of local slots held in a reusable struct expr_ctx, and implements
 * the operators (arithmetic with CEL's overflow and division errors, CEL's
 * heterogeneous comparisons, indexing, field selection, `in`). Functions
 * are in builtins.c, timefn.c and journey.c; the checker reuses
 * vm_binary/vm_unary to decide at compile time which operand types have an
 * overload, so compile-time and run-time rules cannot drift apart.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"
#include "util/clock.h"

#define CTX_ARENA_FIRST 8192
#define DEFAULT_MAX_ITERATIONS 1000000

struct expr_ctx *baton_expr_ctx_new(void) {
  struct expr_ctx *c = xcalloc(1, sizeof(*c));
  c->stack_cap = 64;
  c->stack = xmalloc(c->stack_cap * sizeof(*c->stack));
  arena_init(&c->arena, 0, CTX_ARENA_FIRST);
  c->max_iterations = DEFAULT_MAX_ITERATIONS;
  return c;
}

void baton_expr_ctx_free(struct expr_ctx *c) {
  if (!c) return;
  vm_regex_ctx_free(c);
  arena_release(&c->arena);
  free(c->stack);
  free(c);
}

struct expr_arena *baton_expr_ctx_arena(struct expr_ctx *ctx) {
  return &ctx->arena;
}

void baton_expr_ctx_set_limit(struct expr_ctx *ctx, uint64_t max_iterations) {
  ctx->max_iterations = max_iterations ? max_iterations : DEFAULT_MAX_ITERATIONS;
}

size_t baton_expr_ctx_heap_allocs(const struct expr_ctx *ctx) {
  return ctx->n_heap + ctx->arena.n_blocks_made;
}

int64_t vm_now_ms(struct vm *vm) {
  if (!vm->have_now) {
    vm->now_ms = vm->host && vm->host->now_ms ? vm->host->now_ms(vm->hctx) : clock_now_ms();
    vm->have_now = true;
  }
  return vm->now_ms;
}

static const char *const op_names[] = {
    [TOK_PLUS] = "_+_",    [TOK_MINUS] = "_-_", [TOK_STAR] = "_*_",      [TOK_SLASH] = "_/_",
    [TOK_PERCENT] = "_%_", [TOK_LT] = "_<_",    [TOK_LE] = "_<=_",       [TOK_GT] = "_>_",
    [TOK_GE] = "_>=_",     [TOK_EQ] = "_==_",   [TOK_NE] = "_!=_",       [TOK_IN] = "@in",
    [TOK_ANDAND] = "_&&_", [TOK_OROR] = "_||_", [TOK_LBRACKET] = "_[_]",
};

const char *vm_op_name(enum tok_kind op) { return op_names[op] ? op_names[op] : "?"; }

static struct expr_value overload2(struct vm *vm, enum tok_kind op, struct expr_value a,
                                   struct expr_value b, uint32_t pos) {
  struct expr_value args[2] = {a, b};
  return expr_error_overload(vm->arena, pos, op_names[op], args, 2);
}

static struct expr_value overflow(struct vm *vm, uint32_t pos) {
  return expr_error_new(vm->arena, pos, "integer overflow");
}

static struct expr_value concat(struct vm *vm, struct expr_value a, struct expr_value b,
                                uint32_t pos) {
  if ((uint64_t)a.aux + b.aux > UINT32_MAX)
    return expr_error_new(vm->arena, pos, "string too long");
  char *p = arena_alloc(vm->arena, (size_t)a.aux + b.aux + 1);
  if (!p) return expr_error_oom(pos);
  memcpy(p, a.v.s, a.aux);
  memcpy(p + a.aux, b.v.s, b.aux);
  p[a.aux + b.aux] = 0;
  struct expr_value v = {.kind = a.kind, .aux = a.aux + b.aux, .v.s = p};
  return v;
}

static struct expr_value list_concat(struct vm *vm, struct expr_value a, struct expr_value b,
                                     uint32_t pos) {
  if (!a.v.list->len) return b;
  if (!b.v.list->len) return a;
  struct expr_list *l = list_alloc(vm->arena, (size_t)a.v.list->len + b.v.list->len);
  if (!l) return expr_error_oom(pos);
  memcpy(l->items, a.v.list->items, a.v.list->len * sizeof(struct expr_value));
  memcpy(l->items + a.v.list->len, b.v.list->items, b.v.list->len * sizeof(struct expr_value));
  l->len = a.v.list->len + b.v.list->len;
  struct expr_value v = {.kind = EXPR_LIST, .v.list = l};
  return v;
}

static struct expr_value arith(struct vm *vm, enum tok_kind op, struct expr_value a,
                               struct expr_value b, uint32_t pos) {
  struct expr_value r = {0};
  if (a.kind == EXPR_INT && b.kind == EXPR_INT) {
    r.kind = EXPR_INT;
    switch (op) {
      case TOK_PLUS:
        if (__builtin_add_overflow(a.v.i, b.v.i, &r.v.i)) return overflow(vm, pos);
        return r;
      case TOK_MINUS:
        if (__builtin_sub_overflow(a.v.i, b.v.i, &r.v.i)) return overflow(vm, pos);
        return r;
      case TOK_STAR:
        if (__builtin_mul_overflow(a.v.i, b.v.i, &r.v.i)) return overflow(vm, pos);
        return r;
      case TOK_SLASH:
        if (b.v.i == 0) return expr_error_new(vm->arena, pos, "division by zero");
        if (a.v.i == INT64_MIN && b.v.i == -1) return overflow(vm, pos);
        r.v.i = a.v.i / b.v.i;
        return r;
      case TOK_PERCENT:
        if (b.v.i == 0) return expr_error_new(vm->arena, pos, "modulus by zero");
        if (a.v.i == INT64_MIN && b.v.i == -1) return overflow(vm, pos);
        r.v.i = a.v.i % b.v.i;
        return r;
      default:
        break;
    }
  } else if (a.kind == EXPR_UINT && b.kind == EXPR_UINT) {
    r.kind = EXPR_UINT;
    switch (op) {
      case TOK_PLUS:
        if (__builtin_add_overflow(a.v.u, b.v.u, &r.v.u)) return overflow(vm, pos);
        return r;
      case TOK_MINUS:
        if (__builtin_sub_overflow(a.v.u, b.v.u, &r.v.u)) return overflow(vm, pos);
        return r;
      case TOK_STAR:
        if (__builtin_mul_overflow(a.v.u, b.v.u, &r.v.u)) return overflow(vm, pos);
        return r;
      case TOK_SLASH:
        if (b.v.u == 0) return expr_error_new(vm->arena, pos, "division by zero");
        r.v.u = a.v.u / b.v.u;
        return r;
      case TOK_PERCENT:
        if (b.v.u == 0) return expr_error_new(vm->arena, pos, "modulus by zero");
        r.v.u = a.v.u % b.v.u;
        return r;
      default:
        break;
    }
  } else if (a.kind == EXPR_DOUBLE && b.kind == EXPR_DOUBLE) {
    r.kind = EXPR_DOUBLE;
    switch (op) {
      case TOK_PLUS:
        r.v.d = a.v.d + b.v.d;
        return r;
      case TOK_MINUS:
        r.v.d = a.v.d - b.v.d;
        return r;
      case TOK_STAR:
        r.v.d = a.v.d * b.v.d;
        return r;
      case TOK_SLASH:
        r.v.d = a.v.d / b.v.d;
        return r;
      default:
        break;
    }
  } else if (op == TOK_PLUS && a.kind == b.kind &&
             (a.kind == EXPR_STRING || a.kind == EXPR_BYTES)) {
    return concat(vm, a, b, pos);
  } else if (op == TOK_PLUS && a.kind == EXPR_LIST && b.kind == EXPR_LIST) {
    return list_concat(vm, a, b, pos);
  } else if (a.kind == EXPR_DURATION && b.kind == EXPR_DURATION &&
             (op == TOK_PLUS || op == TOK_MINUS)) {
    int64_t s, ns = op == TOK_PLUS ? (int64_t)a.aux + b.aux : (int64_t)a.aux - b.aux;
    if (op == TOK_PLUS ? __builtin_add_overflow(a.v.sec, b.v.sec, &s)
                       : __builtin_sub_overflow(a.v.sec, b.v.sec, &s))
      return expr_error_new(vm->arena, pos, "duration out of range");
    return dur_value(vm, s, ns, pos);
  } else if (a.kind == EXPR_TIMESTAMP && b.kind == EXPR_DURATION &&
             (op == TOK_PLUS || op == TOK_MINUS)) {
    int64_t ns = op == TOK_PLUS ? (int64_t)a.aux + b.aux : (int64_t)a.aux - b.aux;
    int64_t s = op == TOK_PLUS ? a.v.sec + b.v.sec : a.v.sec - b.v.sec; /* both bounded */
    return ts_value(vm, s, ns, pos);
  } else if (a.kind == EXPR_DURATION && b.kind == EXPR_TIMESTAMP && op == TOK_PLUS) {
    return ts_value(vm, a.v.sec + b.v.sec, (int64_t)a.aux + b.aux, pos);
  } else if (a.kind == EXPR_TIMESTAMP && b.kind == EXPR_TIMESTAMP && op == TOK_MINUS) {
    return ts_diff(vm, a, b, pos);
  }
  return overload2(vm, op, a, b, pos);
}

static bool is_num(int k) { return k == EXPR_INT || k == EXPR_UINT || k == EXPR_DOUBLE; }

static struct expr_value contains(struct vm *vm, struct expr_value x, struct expr_value c,
                                  uint32_t pos) {
  if (c.kind == EXPR_LIST) {
    for (uint32_t i = 0; i < c.v.list->len; i++)
      if (value_equal(x, c.v.list->items[i])) return baton_expr_bool(true);
    return baton_expr_bool(false);
  }
  if (c.kind == EXPR_MAP) return baton_expr_bool(map_lookup(c.v.map, x) != NULL);
  return overload2(vm, TOK_IN, x, c, pos);
}

void vm_binary(struct vm *vm, enum tok_kind op, struct expr_value a, struct expr_value b,
               uint32_t pos, struct expr_value *out) {
  if (a.kind == EXPR_ERROR) {
    *out = a;
    return;
  }
  if (b.kind == EXPR_ERROR) {
    *out = b;
    return;
  }
  int c;
  switch (op) {
    case TOK_EQ:
      *out = baton_expr_bool(value_equal(a, b));
      return;
    case TOK_NE:
      *out = baton_expr_bool(!value_equal(a, b));
      return;
    case TOK_LT:
    case TOK_LE:
    case TOK_GT:
    case TOK_GE: {
      int r = value_compare(a, b, &c);
      if (r < 0) {
        *out = overload2(vm, op, a, b, pos);
        return;
      }
      bool v = false;
      if (r == 0) v = op == TOK_LT ? c < 0 : op == TOK_LE ? c <= 0 : op == TOK_GT ? c > 0 : c >= 0;
      *out = baton_expr_bool(v);
      return;
    }
    case TOK_IN:
      *out = contains(vm, a, b, pos);
      return;
    default:
      *out = arith(vm, op, a, b, pos);
      return;
  }
}

void vm_unary(struct vm *vm, enum tok_kind op, struct expr_value a, uint32_t pos,
              struct expr_value *out) {
  if (a.kind == EXPR_ERROR) {
    *out = a;
    return;
  }
  if (op == TOK_BANG && a.kind == EXPR_BOOL) {
    *out = baton_expr_bool(!a.v.b);
    return;
  }
  if (op == TOK_MINUS) {
    if (a.kind == EXPR_INT) {
      if (a.v.i == INT64_MIN) {
        *out = overflow(vm, pos);
        return;
      }
      *out = baton_expr_int(-a.v.i);
      return;
    }
    if (a.kind == EXPR_DOUBLE) {
      *out = baton_expr_double(-a.v.d);
      return;
    }
    if (a.kind == EXPR_DURATION) {
      *out = dur_value(vm, -a.v.sec, -(int64_t)a.aux, pos);
      return;
    }
  }
  *out = expr_error_overload(vm->arena, pos, op == TOK_BANG ? "!_" : "-_", &a, 1);
}

void vm_index(struct vm *vm, struct expr_value x, struct expr_value k, uint32_t pos,
              struct expr_value *out) {
  if (x.kind == EXPR_ERROR) {
    *out = x;
    return;
  }
  if (k.kind == EXPR_ERROR) {
    *out = k;
    return;
  }
  if (x.kind == EXPR_LIST) {
    int64_t i;
    if (k.kind == EXPR_INT) {
      i = k.v.i;
    } else if (k.kind == EXPR_UINT) {
      i = k.v.u > INT64_MAX ? INT64_MAX : (int64_t)k.v.u;
    } else if (k.kind == EXPR_DOUBLE && k.v.d == floor(k.v.d) && fabs(k.v.d) < 9.2e18) {
      i = (int64_t)k.v.d;
    } else {
      *out = k.kind == EXPR_DOUBLE
                 ? expr_error_new(vm->arena, pos, "invalid_argument: index %g is not an integer",
                                  k.v.d)
                 : overload2(vm, TOK_LBRACKET, x, k, pos);
      return;
    }
    if (i < 0 || i >= (int64_t)x.v.list->len) {
      *out = expr_error_new(vm->arena, pos, "invalid_argument: index out of range: %lld",
                            (long long)i);
      return;
    }
    *out = x.v.list->items[i];
    return;
  }
  if (x.kind == EXPR_MAP) {
    if (!(k.kind == EXPR_STRING || k.kind == EXPR_BOOL || is_num(k.kind))) {
      *out =
          expr_error_new(vm->arena, pos, "unsupported key type: %s", baton_expr_kind_name(k.kind));
      return;
    }
    const struct expr_map_entry *e = map_lookup(x.v.map, k);
    if (!e) {
      if (k.kind == EXPR_STRING)
        *out = expr_error_new(vm->arena, pos, "no such key: '%.*s'", (int)MIN(k.aux, 200u), k.v.s);
      else
        *out = expr_error_new(vm->arena, pos, "no such key");
      return;
    }
    *out = e->val;
    return;
  }
  *out = overload2(vm, TOK_LBRACKET, x, k, pos);
}

/* x.f (or has(x.f) when test); h is f's key_hash. */
static void vm_select(struct vm *vm, struct expr_value x, struct expr_value f, uint32_t h,
                      bool test, uint32_t pos, struct expr_value *out) {
  if (x.kind == EXPR_ERROR) {
    *out = x;
    return;
  }
  if (x.kind != EXPR_MAP) {
    *out = expr_error_new(vm->arena, pos, "type '%s' does not support field selection",
                          baton_expr_kind_name(x.kind));
    return;
  }
  const struct expr_map_entry *e = map_find_h(x.v.map, f.v.s, f.aux, h);
  if (test) {
    *out = baton_expr_bool(e != NULL);
  } else if (e) {
    *out = e->val;
  } else {
    *out = expr_error_new(vm->arena, pos, "no such key: '%.*s'", (int)MIN(f.aux, 200u), f.v.s);
  }
}

static struct expr_value make_map(struct vm *vm, struct expr_value *kv, uint32_t n, uint32_t pos) {
  for (uint32_t i = 0; i < 2 * n; i++)
    if (kv[i].kind == EXPR_ERROR) return kv[i];
  struct expr_map *m = map_alloc(vm->arena, n);
  if (!m) return expr_error_oom(pos);
  for (uint32_t i = 0; i < n; i++) {
    m->entries[i].key = kv[2 * i];
    m->entries[i].val = kv[2 * i + 1];
  }
  int rc = map_seal(vm->arena, m);
  if (rc == BATON_ETYPE) {
    for (uint32_t i = 0; i < n; i++) {
      int k = m->entries[i].key.kind;
      if (k != EXPR_INT && k != EXPR_UINT && k != EXPR_BOOL && k != EXPR_STRING)
        return expr_error_new(vm->arena, pos, "unsupported key type: %s", baton_expr_kind_name(k));
    }
  }
  if (rc == BATON_EEXIST) return expr_error_new(vm->arena, pos, "repeated map key");
  if (rc) return expr_error_oom(pos);
  struct expr_value v = {.kind = EXPR_MAP, .v.map = m};
  return v;
}

static bool ensure_stack(struct expr_ctx *c, size_t need) {
  if (need <= c->stack_cap) return true;
  size_t cap = c->stack_cap;
  while (cap < need) cap *= 2;
  c->stack = xrealloc(c->stack, cap * sizeof(*c->stack));
  c->stack_cap = cap;
  c->n_heap++;
  return true;
}

static struct expr_value not_bool(struct vm *vm, const char *fn, struct expr_value a,
                                  uint32_t pos) {
  if (a.kind == EXPR_ERROR) return a;
  return expr_error_overload(vm->arena, pos, fn, &a, 1);
}

/* key_eq out of line: inlined into the VM loop it costs the other hot paths
 * registers (callgrind: field_compare 179 instructions inlined, 167 not). */
static __attribute__((noinline)) bool str_eq(const char *a, const char *b, uint32_t n) {
  return key_eq(a, b, n);
}

/*
 * x <rel> k for a compare with a constant (rel: 0..5 for EQ_K..GE_K) on
 * the fast paths: int with int, double with double (neither NaN), and string
 * equality. Returns 0 or 1, or -1 to leave it to vm_binary (other kinds,
 * NaN, errors), which decides every case the same way, only slower.
 */
static inline int cmp_k(struct expr_value x, struct expr_value k, unsigned rel) {
  /* Bit (c + 1) of rel_mask[rel] is the result for an ordering c in -1..1. */
  static const uint8_t rel_mask[6] = {2, 5, 1, 3, 4, 6};
  int c;
  if (x.kind != k.kind) return -1;
  if (x.kind == EXPR_INT) {
    c = (x.v.i > k.v.i) - (x.v.i < k.v.i);
  } else if (x.kind == EXPR_DOUBLE) {
    if (x.v.d != x.v.d || k.v.d != k.v.d) return -1;
    c = (x.v.d > k.v.d) - (x.v.d < k.v.d);
  } else if (x.kind == EXPR_STRING && rel < 2) {
    c = x.aux != k.aux || !str_eq(x.v.s, k.v.s, x.aux);
  } else {
    return -1;
  }
  return (rel_mask[rel] >> (c + 1)) & 1;
}

/* Whether string x starts (ends false) or ends with k. */
static inline bool affix(struct expr_value x, struct expr_value k, bool start) {
  if (k.aux > x.aux) return false;
  return key_eq(x.v.s + (start ? 0 : x.aux - k.aux), k.v.s, k.aux);
}

void ctx_scratch_reset(struct expr_ctx *ctx) {
  /* Reset the scratch only if the last run used it: most conditions do not.
   * (A context's arena always has its first block: CTX_ARENA_FIRST.) */
  if (unlikely(ctx->arena.head != ctx->arena.first || ctx->arena.first->used))
    baton_expr_arena_reset(&ctx->arena);
}

int vm_run(const struct expr_program *p, struct expr_ctx *ctx, const struct expr_value *vars,
           const struct expr_host *host, void *hctx, struct expr_value *out) {
  static const struct expr_value no_vars[EXPR_MAX_VARS]; /* all null (kind 0) */
  struct vm vm = {.ctx = ctx, .prog = p, .host = host, .hctx = hctx, .arena = &ctx->arena};
  if (!vars) vars = no_vars;
  uint64_t iterations_left = ctx->max_iterations; /* a local: kept in a register */
  ctx_scratch_reset(ctx);
  if (unlikely(p->frame > ctx->stack_cap)) ensure_stack(ctx, p->frame);
  struct expr_value *sp = ctx->stack; /* next free slot */
  struct expr_value *loc = ctx->stack + p->max_stack + 1;
  const struct insn *code = p->code, *ip = code;
  const struct expr_value *k = p->consts;
  /*
   * Threaded dispatch: every instruction jumps straight to the next one's
   * code (one indirect branch per site predicts far better than the single
   * one of a switch).
   */
  static const void *const labels[OP_N] = {
#define OP(name, n, doc) &&L_##name,
#include "expr/opcode_list.h"
#undef OP
  };
#define DISPATCH()        \
  do {                    \
    in = ip++;            \
    goto *labels[in->op]; \
  } while (0)
  /* The one field of a program evaluation writes (see map_find_hinted). */
#define HINT(in) ((uint16_t *)&(in)->hint)
  const struct insn *in;
  DISPATCH(); /* every instruction ends in DISPATCH: the switch is for the compiler's checks */
  for (;;) {
    in = ip++;
    switch ((enum opcode)in->op) {
      case OP_CONST:
      L_CONST:
        *sp++ = k[in->a];
        DISPATCH();
      case OP_NULL:
      L_NULL:
        *sp++ = baton_expr_null();
        DISPATCH();
      case OP_TRUE:
      L_TRUE:
        *sp++ = baton_expr_bool(true);
        DISPATCH();
      case OP_FALSE:
      L_FALSE:
        *sp++ = baton_expr_bool(false);
        DISPATCH();
      case OP_VAR:
      L_VAR:
        *sp++ = vars[in->a];
        DISPATCH();
      case OP_LOCAL:
      L_LOCAL:
        *sp++ = loc[in->a];
        DISPATCH();
      case OP_POP:
      L_POP:
        sp--;
        DISPATCH();
      case OP_UNKNOWN_VAR:
      L_UNKNOWN_VAR:
        *sp++ = expr_error_new(vm.arena, in->pos, "undeclared reference to '%.*s'",
                               (int)k[in->a].aux, k[in->a].v.s);
        DISPATCH();
      case OP_SELECT:
      L_SELECT:
      case OP_HAS:
      L_HAS:
        vm_select(&vm, sp[-1], k[in->a], p->khash[in->a], in->op == OP_HAS, in->pos, &sp[-1]);
        DISPATCH();
#define SELECT(x)                                                                   \
  do {                                                                              \
    if (likely((x).kind == EXPR_MAP)) {                                             \
      const struct expr_map_entry *e = map_find_hinted(                             \
          (x).v.map, k[in->b].v.s, k[in->b].aux, p->khash[in->b], p->ktag[in->b],  \
          HINT(in));                                                                \
      if (likely(e != NULL)) {                                                      \
        *sp++ = e->val;                                                             \
        DISPATCH();                                                                 \
      }                                                                             \
    }                                                                               \
    vm_select(&vm, (x), k[in->b], p->khash[in->b], false, in->pos, sp++);           \
    DISPATCH();                                                                     \
  } while (0)
      case OP_SELECT_VAR:
      L_SELECT_VAR:
        SELECT(vars[in->a]);
      case OP_SELECT_LOCAL:
      L_SELECT_LOCAL:
        SELECT(loc[in->a]);
#undef SELECT
      case OP_INDEX:
      L_INDEX:
        sp--;
        vm_index(&vm, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_LIST:
      L_LIST : {
        sp -= in->a;
        struct expr_value v = {.kind = EXPR_LIST};
        for (uint32_t i = 0; i < in->a; i++)
          if (sp[i].kind == EXPR_ERROR) {
            v = sp[i];
            goto list_done;
          }
        struct expr_list *l = list_alloc(vm.arena, in->a);
        if (!l) {
          v = expr_error_oom(in->pos);
        } else {
          memcpy(l->items, sp, in->a * sizeof(*sp));
          l->len = in->a;
          v.v.list = l;
        }
      list_done:
        *sp++ = v;
        DISPATCH();
      }
      case OP_MAP:
      L_MAP:
        sp -= 2 * in->a;
        *sp = make_map(&vm, sp, in->a, in->pos);
        sp++;
        DISPATCH();
      case OP_NEG:
      L_NEG:
        vm_unary(&vm, TOK_MINUS, sp[-1], in->pos, &sp[-1]);
        DISPATCH();
      case OP_NOT:
      L_NOT:
        vm_unary(&vm, TOK_BANG, sp[-1], in->pos, &sp[-1]);
        DISPATCH();
      case OP_ADD:
      L_ADD:
        sp--;
        vm_binary(&vm, TOK_PLUS, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_SUB:
      L_SUB:
        sp--;
        vm_binary(&vm, TOK_MINUS, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_MUL:
      L_MUL:
        sp--;
        vm_binary(&vm, TOK_STAR, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_DIV:
      L_DIV:
        sp--;
        vm_binary(&vm, TOK_SLASH, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_MOD:
      L_MOD:
        sp--;
        vm_binary(&vm, TOK_PERCENT, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_EQ:
      L_EQ:
        sp--;
        vm_binary(&vm, TOK_EQ, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_NE:
      L_NE:
        sp--;
        vm_binary(&vm, TOK_NE, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_LT:
      L_LT:
      case OP_LE:
      L_LE:
      case OP_GT:
      L_GT:
      case OP_GE:
      L_GE : {
        sp--;
        struct expr_value a = sp[-1], b = sp[0];
        /* Fast path: same-kind ints, the most common comparison in conditions. */
        if (a.kind == EXPR_INT && b.kind == EXPR_INT) {
          bool v = in->op == OP_LT   ? a.v.i < b.v.i
                   : in->op == OP_LE ? a.v.i <= b.v.i
                   : in->op == OP_GT ? a.v.i > b.v.i
                                     : a.v.i >= b.v.i;
          sp[-1] = baton_expr_bool(v);
          DISPATCH();
        }
        static const enum tok_kind rel[] = {TOK_LT, TOK_LE, TOK_GT, TOK_GE};
        vm_binary(&vm, rel[in->op - OP_LT], a, b, in->pos, &sp[-1]);
        DISPATCH();
      }
      case OP_EQ_K:
      L_EQ_K:
      case OP_NE_K:
      L_NE_K:
      case OP_LT_K:
      L_LT_K:
      case OP_LE_K:
      L_LE_K:
      case OP_GT_K:
      L_GT_K:
      case OP_GE_K:
      L_GE_K : {
        struct expr_value a = sp[-1], b = k[in->a];
        int r = cmp_k(a, b, in->op - OP_EQ_K);
        if (likely(r >= 0)) {
          sp[-1] = baton_expr_bool(r);
          DISPATCH();
        }
        static const enum tok_kind relk[] = {TOK_EQ, TOK_NE, TOK_LT, TOK_LE, TOK_GT, TOK_GE};
        vm_binary(&vm, relk[in->op - OP_EQ_K], a, b, in->pos, &sp[-1]);
        DISPATCH();
      }
      /* The next instruction is the *_K compare these can do too. */
#define SELECT_CMP(x)                                                               \
  do {                                                                              \
    if (likely((x).kind == EXPR_MAP)) {                                             \
      const struct expr_map_entry *e = map_find_hinted(                             \
          (x).v.map, k[in->b].v.s, k[in->b].aux, p->khash[in->b], p->ktag[in->b],  \
          HINT(in));                                                                \
      if (likely(e != NULL)) {                                                      \
        int r = cmp_k(e->val, k[ip->a], ip->op - OP_EQ_K);                          \
        if (likely(r >= 0)) {                                                       \
          *sp++ = baton_expr_bool(r);                                               \
          ip++;                                                                     \
          /* An AND_SHORT/OR_SHORT next (a && b), done here: a bool it   */        \
          /* would keep and jump on, or pass over.                       */        \
          if (ip->op == OP_AND_SHORT || ip->op == OP_OR_SHORT)                      \
            ip = r == (ip->op == OP_OR_SHORT) ? code + ip->a : ip + 1;              \
        } else {                                                                    \
          *sp++ = e->val;                                                           \
        }                                                                           \
        DISPATCH();                                                                 \
      }                                                                             \
    }                                                                               \
    vm_select(&vm, (x), k[in->b], p->khash[in->b], false, in->pos, sp++);           \
    DISPATCH();                                                                     \
  } while (0)
      case OP_SELECT_VAR_CMP:
      L_SELECT_VAR_CMP:
        SELECT_CMP(vars[in->a]);
      case OP_SELECT_LOCAL_CMP:
      L_SELECT_LOCAL_CMP:
        SELECT_CMP(loc[in->a]);
#undef SELECT_CMP
      case OP_IN_SHORT:
      L_IN_SHORT : {
        /* The next instruction is the IN_CONST of the same (all short
         * string) list: a string longer than those is in it no more. */
        struct expr_value x = sp[-1];
        if (likely(x.kind == EXPR_STRING)) {
          bool found = false;
          if (x.aux <= SHORT_WORD_MAX) {
            uint64_t w = short_word(x.v.s, x.aux);
            const uint64_t *set = (const uint64_t *)k[in->a].v.s;
            for (uint32_t i = 0, n = k[in->a].aux / 8; i < n; i++) found |= set[i] == w;
          }
          sp[-1] = baton_expr_bool(found);
          ip++;
        }
        DISPATCH();
      }
      case OP_STARTS_WITH_K:
      L_STARTS_WITH_K:
      case OP_ENDS_WITH_K:
      L_ENDS_WITH_K : {
        /* The next instruction is the CALL, for when top is not a string. */
        if (likely(sp[-1].kind == EXPR_STRING)) {
          sp[-1] = baton_expr_bool(affix(sp[-1], k[in->a], in->op == OP_STARTS_WITH_K));
          ip++;
        } else {
          *sp++ = k[in->a];
        }
        DISPATCH();
      }
      case OP_IN:
      L_IN:
        sp--;
        vm_binary(&vm, TOK_IN, sp[-1], sp[0], in->pos, &sp[-1]);
        DISPATCH();
      case OP_IN_CONST:
      L_IN_CONST : {
        struct expr_value x = sp[-1], c = k[in->a];
        if (x.kind == EXPR_ERROR) DISPATCH();
        if (x.kind == EXPR_STRING && c.kind == EXPR_MAP) {
          sp[-1] = baton_expr_bool(map_find(c.v.map, x.v.s, x.aux) != NULL);
          DISPATCH();
        }
        if (c.kind == EXPR_MAP) { /* a list of strings hashed as map keys */
          const struct expr_list *l = k[in->a + 1].v.list;
          bool found = false;
          for (uint32_t i = 0; i < l->len && !found; i++) found = value_equal(x, l->items[i]);
          sp[-1] = baton_expr_bool(found);
          DISPATCH();
        }
        sp[-1] = contains(&vm, x, c, in->pos);
        DISPATCH();
      }
      case OP_JUMP:
      L_JUMP:
        ip = code + in->a;
        DISPATCH();
      case OP_AND_SHORT:
      L_AND_SHORT:
        if (sp[-1].kind == EXPR_BOOL && !sp[-1].v.b) ip = code + in->a;
        DISPATCH();
      case OP_OR_SHORT:
      L_OR_SHORT:
        if (sp[-1].kind == EXPR_BOOL && sp[-1].v.b) ip = code + in->a;
        DISPATCH();
      case OP_AND:
      L_AND : {
        /* Only reached when the left side was true, an error or not a bool. */
        sp--;
        struct expr_value a = sp[-1], b = sp[0];
        if (b.kind == EXPR_BOOL && !b.v.b)
          sp[-1] = b;
        else if (a.kind == EXPR_BOOL)
          sp[-1] = b.kind == EXPR_BOOL ? b : not_bool(&vm, "_&&_", b, in->pos);
        else
          sp[-1] = not_bool(&vm, "_&&_", a, in->pos);
        DISPATCH();
      }
      case OP_OR:
      L_OR : {
        sp--;
        struct expr_value a = sp[-1], b = sp[0];
        if (b.kind == EXPR_BOOL && b.v.b)
          sp[-1] = b;
        else if (a.kind == EXPR_BOOL)
          sp[-1] = b.kind == EXPR_BOOL ? b : not_bool(&vm, "_||_", b, in->pos);
        else
          sp[-1] = not_bool(&vm, "_||_", a, in->pos);
        DISPATCH();
      }
      case OP_COND:
      L_COND : {
        struct expr_value c = *--sp;
        if (c.kind == EXPR_BOOL) {
          if (!c.v.b) ip = code + in->a;
        } else {
          *sp++ = not_bool(&vm, "_?_:_", c, in->pos);
          ip = code + in->b;
        }
        DISPATCH();
      }
      case OP_CALL:
      L_CALL : {
        int n = (int)in->b;
        sp -= n;
        struct expr_value r;
        /* Strict functions: an error argument is the result. */
        for (int i = 0; i < n; i++)
          if (sp[i].kind == EXPR_ERROR) {
            r = sp[i];
            goto call_done;
          }
        if (in->a == FN_DYN) {
          r = sp[0];
        } else if ((in->a == FN_STARTS_WITH || in->a == FN_ENDS_WITH) &&
                   sp[0].kind == EXPR_STRING && sp[1].kind == EXPR_STRING) {
          /* Inline: prefix and suffix tests are the most common string conditions. */
          const char *h = sp[0].v.s + (in->a == FN_ENDS_WITH ? sp[0].aux - sp[1].aux : 0);
          bool ok = sp[1].aux <= sp[0].aux;
          for (uint32_t q = 0; ok && q < sp[1].aux; q++) ok = h[q] == sp[1].v.s[q];
          *sp++ = baton_expr_bool(ok);
          DISPATCH();
        } else
          builtin_call(&vm, (int)in->a, sp, n, in->pos, &r);
      call_done:
        *sp++ = r;
        DISPATCH();
      }
      case OP_UNKNOWN_CALL:
      L_UNKNOWN_CALL : {
        sp -= in->b;
        *sp++ = expr_error_new(vm.arena, in->pos, "no such function: '%.*s'", (int)k[in->a].aux,
                               k[in->a].v.s);
        DISPATCH();
      }
      case OP_ITER_INIT:
      L_ITER_INIT : {
        struct expr_value r = *--sp;
        if (r.kind != EXPR_LIST && r.kind != EXPR_MAP) {
          *sp++ = r.kind == EXPR_ERROR ? r
                                       : expr_error_new(vm.arena, in->pos,
                                                        "cannot iterate over a value of type '%s'",
                                                        baton_expr_kind_name(r.kind));
          ip = code + in->b;
          DISPATCH();
        }
        loc[in->a] = r;
        loc[in->a + 1] = baton_expr_int(0);
        loc[in->a + 3] = baton_expr_null();
        DISPATCH();
      }
      case OP_ITER_NEXT:
      L_ITER_NEXT : {
        struct expr_value *it = &loc[in->a]; /* range, index, variable */
        int64_t i = it[1].v.i;
        if (unlikely(iterations_left-- == 0)) {
          *out = expr_error_new(vm.arena, in->pos, "evaluation exceeded %llu macro iterations",
                                (unsigned long long)ctx->max_iterations);
          return BATON_EINVAL;
        }
        if (likely(it[0].kind == EXPR_LIST)) {
          const struct expr_list *l = it[0].v.list;
          if (i >= (int64_t)l->len) {
            ip = code + in->b;
            DISPATCH();
          }
          it[2] = l->items[i];
        } else {
          const struct expr_map *m = it[0].v.map;
          if (i >= (int64_t)m->len) {
            ip = code + in->b;
            DISPATCH();
          }
          it[2] = m->entries[i].key;
        }
        it[1].v.i = i + 1;
        DISPATCH();
      }
      case OP_SET_LOCAL:
      L_SET_LOCAL:
        loc[in->a] = *--sp;
        DISPATCH();
      case OP_ALL_STEP:
      L_ALL_STEP:
      case OP_EXISTS_STEP:
      L_EXISTS_STEP : {
        struct expr_value c = *--sp;
        bool stop = in->op == OP_ALL_STEP ? false : true;
        if (c.kind == EXPR_BOOL) {
          if (c.v.b == stop) {
            ip = code + in->b;
            DISPATCH();
          }
        } else if (loc[in->a].kind != EXPR_ERROR) {
          loc[in->a] = not_bool(&vm, in->op == OP_ALL_STEP ? "all" : "exists", c, in->pos);
        }
        /* On to the ITER_NEXT the following JUMP goes to, without
         * dispatching either: a direct jump into its code. */
        in = code + ip->a;
        ip = in + 1;
        goto L_ITER_NEXT;
      }
      case OP_ALL_END:
      L_ALL_END:
      case OP_EXISTS_END:
      L_EXISTS_END:
        *sp++ = loc[in->a].kind == EXPR_ERROR ? loc[in->a] : baton_expr_bool(in->op == OP_ALL_END);
        DISPATCH();
      case OP_ONE_STEP:
      L_ONE_STEP : {
        struct expr_value c = *--sp;
        if (c.kind == EXPR_BOOL) {
          if (c.v.b) {
            if (loc[in->a].kind != EXPR_INT) loc[in->a] = baton_expr_int(0);
            loc[in->a].v.i++;
          }
        } else {
          *sp++ = not_bool(&vm, "exists_one", c, in->pos);
          ip = code + in->b;
        }
        DISPATCH();
      }
      case OP_ONE_END:
      L_ONE_END:
        *sp++ = baton_expr_bool(loc[in->a].kind == EXPR_INT && loc[in->a].v.i == 1);
        DISPATCH();
      case OP_LIST_RESERVE:
      L_LIST_RESERVE : {
        struct expr_value r = loc[in->a];
        size_t n = r.kind == EXPR_LIST ? r.v.list->len : r.v.map->len;
        struct expr_list *l = list_alloc(vm.arena, n);
        if (!l) {
          *sp++ = expr_error_oom(in->pos);
          DISPATCH();
        }
        struct expr_value v = {.kind = EXPR_LIST, .v.list = l};
        *sp++ = v;
        DISPATCH();
      }
      case OP_APPEND:
      L_APPEND : {
        struct expr_value x = *--sp;
        if (x.kind == EXPR_ERROR) {
          *sp++ = x;
          ip = code + in->b;
          DISPATCH();
        }
        struct expr_list *l = (struct expr_list *)loc[in->a].v.list;
        l->items[l->len++] = x;
        DISPATCH();
      }
      case OP_SKIP_UNLESS:
      L_SKIP_UNLESS : {
        struct expr_value c = *--sp;
        if (c.kind == EXPR_BOOL) {
          if (!c.v.b) ip = code + in->a;
        } else {
          *sp++ = not_bool(&vm, "map", c, in->pos);
          ip = code + in->b;
        }
        DISPATCH();
      }
      case OP_FILTER_STEP:
      L_FILTER_STEP : {
        struct expr_value c = *--sp;
        if (c.kind == EXPR_BOOL) {
          if (c.v.b) {
            struct expr_list *l = (struct expr_list *)loc[in->a + 3].v.list;
            l->items[l->len++] = loc[in->a + 2];
          }
        } else {
          *sp++ = not_bool(&vm, "filter", c, in->pos);
          ip = code + in->b;
        }
        DISPATCH();
      }
      case OP_RETURN:
      L_RETURN : {
        /* Field by field: the top was often just written field by field, and a
         * 16-byte load of it would stall on store forwarding. */
        uint8_t kind = sp[-1].kind;
        out->kind = kind;
        out->aux = sp[-1].aux;
        out->v.u = sp[-1].v.u;
        return kind == EXPR_ERROR ? BATON_EINVAL : 0;
      }
      case OP_N:
        abort();
    }
  }
}

/*
 * A program with a closure (closure.c) enters through it: it answers the
 * usual case of its condition, and runs the bytecode (vm_run), which gives
 * the same answer or the exact error, when it bails.
 */
int baton_expr_eval(const struct expr_program *p, struct expr_ctx *ctx,
                    const struct expr_value *vars, const struct expr_host *host, void *hctx,
                    struct expr_value *out) {
  /* entry is vm_run for a program without a closure (the closures read
   * vars without testing it). */
  if (likely(vars != NULL)) return p->entry(p, ctx, vars, host, hctx, out);
  return vm_run(p, ctx, vars, host, hctx, out);
}

int baton_expr_eval_bool(const struct expr_program *p, struct expr_ctx *ctx,
                         const struct expr_value *vars, const struct expr_host *host, void *hctx,
                         struct expr_value *err) {
  struct expr_value v;
  int rc = baton_expr_eval(p, ctx, vars, host, hctx, &v);
  if (rc) {
    if (err) *err = v;
    return rc;
  }
  if (v.kind != EXPR_BOOL) {
    if (err)
      *err = expr_error_new(&ctx->arena, 0, "condition is a %s, not a bool",
                            baton_expr_kind_name(v.kind));
    return BATON_ETYPE;
  }
  return v.v.b ? 1 : 0;
}

/*
 * Closure compilation: a second, faster way to run the conditions journeys
 * are mostly made of. When every node of a checked AST is one of a few
 * shapes — a field read compared with a constant or another field, `in` a
 * constant list, a constant in a field's list, startsWith/endsWith/contains
 * of a constant, has(), a bool field, &&, ||, !, ?:, the macros all, exists
 * and exists_one over a field, and a journey function (count, openCases,
 * inSegment, inJourney) on constants — closure_compile builds, beside the
 * bytecode, a tree of nodes, each a C function with its operands
 * ("closure compilation"). Evaluating it costs a call per node, with no
 * interpreter loop, value stack, frame or boxing. The leaf tests that macro
 * predicates and && / || chains are mostly made of (a field against a
 * constant) run without a call of their own (quantify, hoisted tests), and
 * a condition that is one such test, or a chain of them, on variables
 * enters through a function for its kind of test, called with
 * baton_expr_eval's own arguments (see "Entry").
 *
 * A node answers only the usual case. On anything else — a missing field,
 * an operand of another type than the fast path expects, an error value,
 * a comparison that has no overload, the macro iteration budget running
 * out — it answers C_BAIL, and baton_expr_eval runs the program's bytecode
 * from the start, which produces the value or the exact error. Whenever a
 * node does answer, its answer is the one the VM gives, computed with the
 * VM's own helpers (value_equal, value_compare, map_find_hinted, key_eq,
 * mem_contains); tests/unit/expr and fuzz/expr_eval compare the two on
 * generated expressions and data.
 *
 * Bailing must be free of effects, so that the VM's run is the only one
 * anybody sees. Field-position hints are only guesses, and the only other
 * effect is asking the host (a journey function). Hence the rule: a host
 * call may only stand where it is the last thing the closure evaluates —
 * the whole condition, or the rightmost operand of &&, || and ?: down from
 * the root — and once called, the node never bails: a host failure becomes
 * its error (C_ERROR), which by CEL's rules for && and || is then the
 * condition's value. So the host is asked each question at most once per
 * evaluation, as by the VM.
 */
#include <string.h>

#include "expr/expr_int.h"
#include "util/clock.h"

/* ---- Evaluation ----------------------------------------------------------- */

/* Reads path p: false when a step is not a map or lacks the field (the
 * VM's "no such key" and "does not support field selection" errors). */
static inline __attribute__((always_inline)) bool fetch(const struct cpath *p,
                                                        const struct ceval *e,
                                                        struct expr_value *out) {
  struct expr_value x = p->local ? e->loc[p->slot] : e->vars[p->slot];
  for (uint32_t i = 0; i < p->n; i++) {
    const struct cfield *f = &p->f[i];
    if (unlikely(x.kind != EXPR_MAP)) return false;
    const struct expr_map_entry *en =
        map_find_hinted(x.v.map, f->s, f->len, f->hash, f->tag, (uint16_t *)&f->hint);
    if (unlikely(!en)) return false;
    x = en->val;
  }
  *out = x;
  return true;
}

/* key_eq for field names over 8 bytes, out of line: the fast paths that
 * read fields keep few registers and need no frame. */
static __attribute__((noinline)) bool long_key_eq(const char *a, const char *b, uint32_t n) {
  return key_eq(a, b, n);
}

/*
 * Field f of base where f's hint says it is, or NULL (base not a map, the
 * hint missed). The fast variants of the nodes read their one field with
 * this and, on NULL, hand over to the general variant, which reads it with
 * fetch (probing, rewriting the hint, or bailing). The key is tested by its
 * tag (key_tag), exactly for names of at most SHORT_WORD_MAX bytes, so the
 * usual read is a bound check and one compare. Without a call of its own
 * on the way, the fast variant needs no stack frame.
 */
enum {
  NAMES_SHORT, /* f's name has at most SHORT_WORD_MAX bytes (the caller knows) */
  NAMES_16,    /* any name, those over 16 bytes always a miss */
  NAMES_ANY,   /* any name, those over 16 bytes by a call */
};

static inline __attribute__((always_inline)) const struct expr_value *probe(
    const struct expr_value *base, const struct cfield *f, int names) {
  if (unlikely(base->kind != EXPR_MAP)) return NULL;
  const struct expr_map *m = base->v.map;
  uint32_t i = __atomic_load_n(&f->hint, __ATOMIC_RELAXED);
  if (unlikely(i >= m->len) || unlikely(m->tags[i] != f->tag)) return NULL;
  const struct expr_map_entry *en = &m->entries[i];
  if (names != NAMES_SHORT && unlikely(f->len > SHORT_WORD_MAX)) {
    if (en->key.aux != f->len) return NULL;
    if (f->len <= 16) {
      if (load64(en->key.v.s) != f->w1 || load64(en->key.v.s + f->len - 8) != f->w2) return NULL;
    } else if (names != NAMES_ANY || !long_key_eq(en->key.v.s, f->s, f->len)) {
      return NULL;
    }
  }
  return &en->val;
}

#define probe1(base, f) probe((base), (f), NAMES_ANY)
/* probe1 taking field names over 16 bytes for a miss: for functions whose
 * miss path is a tail call, so that they make no call of their own. */
#define probe_tail(base, f) probe((base), (f), NAMES_16)

/* vars[slot] as vars + its byte offset (cpath.off): no scaling. */
static inline const struct expr_value *at_off(const struct expr_value *vars, uint32_t off) {
  return (const struct expr_value *)((const char *)vars + off);
}

#define BASE(n, e) ((n)->path.local ? &(e)->loc[(n)->path.slot] : &(e)->vars[(n)->path.slot])

/*
 * A node that reads one path and decides on its value x, from NAME_on(n, e,
 * x): c_NAME reads any path, c_NAME1 a path of one field by its hint first.
 */
#define VALUE_NODE(NAME)                                                   \
  static int c_##NAME(const struct cnode *n, struct ceval *e) {            \
    struct expr_value x;                                                   \
    if (!fetch(&n->path, e, &x)) return C_BAIL;                            \
    return NAME##_on(n, e, x);                                             \
  }                                                                        \
  static int c_##NAME##1(const struct cnode *n, struct ceval *e) {         \
    const struct expr_value *x = probe1(BASE(n, e), &n->path.f[0]);        \
    if (unlikely(!x)) return c_##NAME(n, e);                               \
    return NAME##_on(n, e, *x);                                            \
  }

/* x (a string) equals constant k, kword being key_word of k when k has at
 * most 8 bytes: one or two loads of x and one compare. */
static inline __attribute__((always_inline)) bool str_is(const struct expr_value *x,
                                                         const struct expr_value *k,
                                                         uint64_t kword) {
  if (x->aux != k->aux) return false;
  return k->aux <= 8 ? key_word(x->v.s, k->aux) == kword : key_eq(x->v.s, k->v.s, k->aux);
}

/* x (a string) starts with constant k, likewise. */
static inline __attribute__((always_inline)) bool prefix_is(const struct expr_value *x,
                                                            const struct expr_value *k,
                                                            uint64_t kword) {
  if (k->aux > x->aux) return false;
  return k->aux <= 8 ? key_word(x->v.s, k->aux) == kword : key_eq(x->v.s, k->v.s, k->aux);
}

/* str_is and prefix_is for a constant of 4 to 8 bytes (the tests T_*48):
 * key_word's two overlapping loads, without testing the length. */
static inline __attribute__((always_inline)) uint64_t word48(const char *s, uint32_t n) {
  return load32(s) | (uint64_t)load32(s + n - 4) << 32;
}
static inline __attribute__((always_inline)) bool str_is48(const struct expr_value *x,
                                                           const struct expr_value *k,
                                                           uint64_t kword) {
  return x->aux == k->aux && word48(x->v.s, k->aux) == kword;
}
static inline __attribute__((always_inline)) bool prefix_is48(const struct expr_value *x,
                                                              const struct expr_value *k,
                                                              uint64_t kword) {
  return k->aux <= x->aux && word48(x->v.s, k->aux) == kword;
}

/* Bit (c + 1) of rel_mask[rel] is x <rel> k for an ordering c in -1..1. */
static const uint8_t rel_mask[6] = {2, 5, 1, 3, 4, 6};

/* x <rel> k as vm_binary decides it: == and != by value_equal, the
 * orderings by value_compare (NaN: false); an error operand or a pair with
 * no ordering bails (the VM's result is an error). */
static __attribute__((noinline)) int cmp_slow(struct expr_value x, struct expr_value k,
                                              unsigned rel) {
  if (x.kind == EXPR_ERROR || k.kind == EXPR_ERROR) return C_BAIL;
  if (rel < 2) return value_equal(x, k) ^ rel;
  int c, r = value_compare(x, k, &c);
  if (r < 0) return C_BAIL;
  if (r > 0) return C_FALSE;
  return (rel_mask[rel] >> (c + 1)) & 1;
}

/* cmp_slow with the fast paths of the VM's cmp_k inline. A double against
 * a double is C's comparison: IEEE 754 gives NaN what value_equal and
 * value_compare give it (unequal, unordered). */
static inline __attribute__((always_inline)) int cmp_value(struct expr_value x,
                                                           struct expr_value k, unsigned rel) {
  if (x.kind == k.kind) {
    if (x.kind == EXPR_INT)
      return (rel_mask[rel] >> ((x.v.i > k.v.i) - (x.v.i < k.v.i) + 1)) & 1;
    if (x.kind == EXPR_DOUBLE && x.v.d == x.v.d && k.v.d == k.v.d)
      return (rel_mask[rel] >> ((x.v.d > k.v.d) - (x.v.d < k.v.d) + 1)) & 1;
    if (x.kind == EXPR_STRING && rel < 2)
      return (x.aux == k.aux && key_eq(x.v.s, k.v.s, x.aux)) ^ rel;
  }
  return cmp_slow(x, k, rel);
}

static int c_true(const struct cnode *n, struct ceval *e) { return C_TRUE; }
static int c_false(const struct cnode *n, struct ceval *e) { return C_FALSE; }

/* A bool-valued path used as a condition. */
static inline int bool_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  return x.kind == EXPR_BOOL ? x.v.b : C_BAIL;
}
VALUE_NODE(bool)

/* path <rel> k, any path, any k. */
static inline int cmp_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  return cmp_value(x, n->k, n->rel);
}
VALUE_NODE(cmp)

/*
 * The commonest condition, a field compared with a number or a string
 * (profile.age > 30, i.price > 90.0, profile.tier == "gold"): one function
 * per operator, kind of constant and variable-or-local, so the fast path is
 * the hint, one kind test and one machine compare.
 */
#define CMP1_FN(NAME, SRC, KIND, FIELD, OP)                                    \
  static int NAME(const struct cnode *n, struct ceval *e) {                    \
    const struct expr_value *x = probe1(&e->SRC[n->path.slot], &n->path.f[0]); \
    if (likely(x && x->kind == KIND)) return x->v.FIELD OP n->k.v.FIELD;        \
    return c_cmp(n, e);                                                        \
  }
#define STR1_FN(NAME, SRC, EQ)                                                  \
  static int NAME(const struct cnode *n, struct ceval *e) {                    \
    const struct expr_value *x = probe1(&e->SRC[n->path.slot], &n->path.f[0]); \
    if (likely(x && x->kind == EXPR_STRING)) return str_is(x, &n->k, n->kword) == EQ; \
    return c_cmp(n, e);                                                        \
  }
#define CMP1_SRC(SRC)                                             \
  CMP1_FN(c_##SRC##_eq_int, SRC, EXPR_INT, i, ==)                 \
  CMP1_FN(c_##SRC##_ne_int, SRC, EXPR_INT, i, !=)                 \
  CMP1_FN(c_##SRC##_lt_int, SRC, EXPR_INT, i, <)                  \
  CMP1_FN(c_##SRC##_le_int, SRC, EXPR_INT, i, <=)                 \
  CMP1_FN(c_##SRC##_gt_int, SRC, EXPR_INT, i, >)                  \
  CMP1_FN(c_##SRC##_ge_int, SRC, EXPR_INT, i, >=)                 \
  CMP1_FN(c_##SRC##_eq_double, SRC, EXPR_DOUBLE, d, ==)           \
  CMP1_FN(c_##SRC##_ne_double, SRC, EXPR_DOUBLE, d, !=)           \
  CMP1_FN(c_##SRC##_lt_double, SRC, EXPR_DOUBLE, d, <)            \
  CMP1_FN(c_##SRC##_le_double, SRC, EXPR_DOUBLE, d, <=)           \
  CMP1_FN(c_##SRC##_gt_double, SRC, EXPR_DOUBLE, d, >)            \
  CMP1_FN(c_##SRC##_ge_double, SRC, EXPR_DOUBLE, d, >=)           \
  STR1_FN(c_##SRC##_eq_string, SRC, true)                         \
  STR1_FN(c_##SRC##_ne_string, SRC, false)
CMP1_SRC(vars)
CMP1_SRC(loc)
#undef CMP1_SRC
#undef CMP1_FN
#undef STR1_FN

/* [local][int, double, string][rel] */
static const cnode_fn cmp1_fns[2][3][6] = {
    {{c_vars_eq_int, c_vars_ne_int, c_vars_lt_int, c_vars_le_int, c_vars_gt_int, c_vars_ge_int},
     {c_vars_eq_double, c_vars_ne_double, c_vars_lt_double, c_vars_le_double, c_vars_gt_double,
      c_vars_ge_double},
     {c_vars_eq_string, c_vars_ne_string}},
    {{c_loc_eq_int, c_loc_ne_int, c_loc_lt_int, c_loc_le_int, c_loc_gt_int, c_loc_ge_int},
     {c_loc_eq_double, c_loc_ne_double, c_loc_lt_double, c_loc_le_double, c_loc_gt_double,
      c_loc_ge_double},
     {c_loc_eq_string, c_loc_ne_string}},
};

/* path <rel> path2. */
static int c_cmp_paths(const struct cnode *n, struct ceval *e) {
  struct expr_value x, y;
  if (!fetch(&n->path, e, &x) || !fetch(&n->path2, e, &y)) return C_BAIL;
  return cmp_value(x, y, n->rel);
}

/* has(path.f): path must be a map (else the VM's error). */
static int c_has(const struct cnode *n, struct ceval *e) {
  struct expr_value x;
  if (!fetch(&n->path, e, &x) || x.kind != EXPR_MAP) return C_BAIL;
  const struct cfield *f = &n->path2.f[0];
  return map_find_hinted(x.v.map, f->s, f->len, f->hash, f->tag, (uint16_t *)&f->hint) != NULL;
}

/* x in list l, as the VM's contains(). */
static __attribute__((noinline)) int in_list(struct expr_value x, const struct expr_list *l) {
  if (x.kind == EXPR_ERROR) return C_BAIL;
  for (uint32_t i = 0; i < l->len; i++)
    if (value_equal(x, l->items[i])) return C_TRUE;
  return C_FALSE;
}

/*
 * path in [constant strings of at most 7 bytes], each a short_word(): the
 * word of x is looked up in a table without collisions (closure_compile
 * finds a multiplier for which the words' slots differ), so one compare
 * answers; other strings are in it no more.
 */
static inline int in_short_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  if (likely(x.kind == EXPR_STRING)) {
    if (x.aux > SHORT_WORD_MAX) return C_FALSE;
    uint64_t w = short_word(x.v.s, x.aux);
    return n->words[(w * n->mul) >> n->shift] == w;
  }
  return in_list(x, n->k.v.list);
}
VALUE_NODE(in_short)

/* path in [constant strings], hashed: the VM's IN_CONST. */
static inline int in_set_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  if (likely(x.kind == EXPR_STRING)) return map_find(n->set, x.v.s, x.aux) != NULL;
  return in_list(x, n->k.v.list);
}
VALUE_NODE(in_set)

/* path in [other constants]. */
static inline int in_list_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  return in_list(x, n->k.v.list);
}
VALUE_NODE(in_list)

/* constant k in path: a list's items or a map's keys (contains() again). */
static inline int has_item_on(const struct cnode *n, struct ceval *e, struct expr_value c) {
  const struct expr_value k = n->k;
  if (c.kind == EXPR_LIST) {
    const struct expr_list *l = c.v.list;
    if (k.kind != EXPR_STRING) return in_list(k, l);
    for (uint32_t i = 0; i < l->len; i++) {
      const struct expr_value *it = &l->items[i];
      /* A string equals only a string (value_equal). */
      if (it->kind == EXPR_STRING && it->aux == k.aux && key_eq(it->v.s, k.v.s, k.aux))
        return C_TRUE;
    }
    return C_FALSE;
  }
  if (c.kind == EXPR_MAP) return map_lookup(c.v.map, k) != NULL;
  return C_BAIL;
}
VALUE_NODE(has_item)

/* path.startsWith(k), endsWith, contains: a string path, else the VM's error. */
static inline int starts_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  if (x.kind != EXPR_STRING) return C_BAIL;
  return prefix_is(&x, &n->k, n->kword);
}
VALUE_NODE(starts)

static inline int ends_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  if (x.kind != EXPR_STRING) return C_BAIL;
  return n->k.aux <= x.aux && key_eq(x.v.s + x.aux - n->k.aux, n->k.v.s, n->k.aux);
}
VALUE_NODE(ends)

static inline int contains_on(const struct cnode *n, struct ceval *e, struct expr_value x) {
  if (x.kind != EXPR_STRING) return C_BAIL;
  return mem_contains(x.v.s, x.aux, n->k.v.s, n->k.aux);
}
VALUE_NODE(contains)
#undef VALUE_NODE

/*
 * Leaf tests that macro predicates run without a node call (see quantify):
 * a field of a variable or local (one field) compared with an int, double
 * or string constant, or tested with startsWith, endsWith or `in` short
 * strings. The node's own function stays its general case.
 */
enum {
  T_NONE,
  T_INT_EQ, T_INT_NE, T_INT_LT, T_INT_LE, T_INT_GT, T_INT_GE,
  T_DBL_EQ, T_DBL_NE, T_DBL_LT, T_DBL_LE, T_DBL_GT, T_DBL_GE,
  T_STR_EQ, T_STR_NE, T_STARTS, T_ENDS, T_IN_SHORT,
  T_STR_EQ48, T_STR_NE48, T_STARTS48, /* T_STR_EQ.. with a constant of 4 to 8 bytes */
};

/* a && b && ...: the first answer that is not true is the answer (false,
 * a bail, or the error of a host call, which can only be last); else true.
 * As nested c_and, one call per operand. */
static int c_conj(const struct cnode *n, struct ceval *e) {
  const struct cnode *const *l = n->list;
  uint32_t last = n->n_list - 1u;
  for (uint32_t i = 0; i < last; i++) {
    int r = l[i]->fn(l[i], e);
    if (r != C_TRUE) return r;
  }
  return l[last]->fn(l[last], e);
}

static int c_disj(const struct cnode *n, struct ceval *e) {
  const struct cnode *const *l = n->list;
  uint32_t last = n->n_list - 1u;
  for (uint32_t i = 0; i < last; i++) {
    int r = l[i]->fn(l[i], e);
    if (r != C_FALSE) return r;
  }
  return l[last]->fn(l[last], e);
}

/* !a. An error (from a host call) stays the error, as in vm_unary. */
static int c_not(const struct cnode *n, struct ceval *e) {
  int r = n->a->fn(n->a, e);
  return r <= C_TRUE ? !r : r;
}

/* a && b: a false is the answer; a true makes b's answer (a value or an
 * error) the answer, as CEL's && does; anything else is the VM's case
 * (a non-bool or error a that a false b would absorb). */
static int c_and(const struct cnode *n, struct ceval *e) {
  int r = n->a->fn(n->a, e);
  if (r != C_TRUE) return r;
  return n->b->fn(n->b, e);
}

static int c_or(const struct cnode *n, struct ceval *e) {
  int r = n->a->fn(n->a, e);
  if (r != C_FALSE) return r;
  return n->b->fn(n->b, e);
}

static int c_cond(const struct cnode *n, struct ceval *e) {
  int r = n->a->fn(n->a, e);
  if (r == C_TRUE) return n->b->fn(n->b, e);
  if (r == C_FALSE) return n->c->fn(n->c, e);
  return r;
}

/*
 * The macros over path (a list's items or a map's keys). Each step spends
 * one iteration as the VM's ITER_NEXT does, including the one that finds
 * the end; when the budget is spent the VM reports it. A predicate that is
 * an error or not a bool (a bail here) is the VM's case too: all and exists
 * absorb it when another element decides.
 */

/* The predicate b on item (the iteration variable, local var) by its own
 * function, with the variable and the budget where that expects them. */
static __attribute__((noinline)) int item_call(const struct cnode *b, uint16_t var,
                                               const struct expr_value *item, struct ceval *e) {
  e->loc[var] = *item;
  return b->fn(b, e);
}

/*
 * A leaf test of a predicate, with what it reads every element copied out
 * of its node into the macro's frame, and a function for its kind of test
 * (on_fns), so an element costs one call and no reload of the node. at is
 * the field's hint as the loop read it when it began, read again after
 * each element that went through the node's own function (which may have
 * rewritten it): the hint is only a guess, which every element's tag
 * checks, so one read serves the elements in between.
 */
#define HOIST_MAX 4 /* leaf tests of a predicate or chain, at most */

struct hoisted;
typedef int (*hoisted_fn)(const struct hoisted *h, const struct expr_value *base);
struct hoisted {
  hoisted_fn on;
  const struct cnode *t;
  const uint16_t *hint;
  uint32_t at;
  uint64_t tag;
  struct expr_value k;
  uint64_t kword; /* the node's */
  uint32_t len;
  bool on_item; /* its path starts at the iteration variable */
};

/* The test's field in base, by the hint alone (probe1 on hoisted values). */
static inline uint32_t hint_now(const struct hoisted *h) {
  return __atomic_load_n(h->hint, __ATOMIC_RELAXED);
}

static inline __attribute__((always_inline)) const struct expr_value *hoisted_probe(
    const struct hoisted *h, const struct expr_value *base, int names) {
  if (unlikely(base->kind != EXPR_MAP)) return NULL;
  const struct expr_map *m = base->v.map;
  uint32_t i = h->at;
  if (unlikely(i >= m->len) || unlikely(m->tags[i] != h->tag)) return NULL;
  const struct expr_map_entry *en = &m->entries[i];
  if (names != NAMES_SHORT && unlikely(h->len > SHORT_WORD_MAX) &&
      (en->key.aux != h->len || !long_key_eq(en->key.v.s, h->t->path.f[0].s, h->len)))
    return NULL;
  return &en->val;
}

/* One function per test: 0 or 1, or -1 when it is not the fast case;
 * NAME for a field name of at most SHORT_WORD_MAX bytes (no key compare,
 * no call, no frame), NAME_l for any. */
#define ON_FN1(NAME, COND, NAMES)                                                \
  static int NAME(const struct hoisted *h, const struct expr_value *base) {      \
    const struct expr_value *x = hoisted_probe(h, base, NAMES), *k = &h->k;      \
    (void)k;                                                                     \
    if (unlikely(!x)) return -1;                                                 \
    return COND;                                                                 \
  }
#define ON_FN(NAME, COND) ON_FN1(NAME, COND, NAMES_SHORT) ON_FN1(NAME##_l, COND, NAMES_ANY)
#define INT_ON(NAME, OP) ON_FN(NAME, x->kind == EXPR_INT ? x->v.i OP k->v.i : -1)
#define DBL_ON(NAME, OP) ON_FN(NAME, x->kind == EXPR_DOUBLE ? x->v.d OP k->v.d : -1)
INT_ON(on_int_eq, ==) INT_ON(on_int_ne, !=) INT_ON(on_int_lt, <)
INT_ON(on_int_le, <=) INT_ON(on_int_gt, >) INT_ON(on_int_ge, >=)
DBL_ON(on_dbl_eq, ==) DBL_ON(on_dbl_ne, !=) DBL_ON(on_dbl_lt, <)
DBL_ON(on_dbl_le, <=) DBL_ON(on_dbl_gt, >) DBL_ON(on_dbl_ge, >=)
ON_FN(on_str_eq, x->kind != EXPR_STRING ? -1 : str_is(x, k, h->kword))
ON_FN(on_str_ne, x->kind != EXPR_STRING ? -1 : !str_is(x, k, h->kword))
ON_FN(on_starts, x->kind != EXPR_STRING ? -1 : prefix_is(x, k, h->kword))
ON_FN(on_str_eq48, x->kind != EXPR_STRING ? -1 : str_is48(x, k, h->kword))
ON_FN(on_str_ne48, x->kind != EXPR_STRING ? -1 : !str_is48(x, k, h->kword))
ON_FN(on_starts48, x->kind != EXPR_STRING ? -1 : prefix_is48(x, k, h->kword))
ON_FN(on_ends, x->kind != EXPR_STRING
                   ? -1
                   : k->aux <= x->aux && key_eq(x->v.s + x->aux - k->aux, k->v.s, k->aux))
ON_FN(on_in_short, x->kind != EXPR_STRING || x->aux > SHORT_WORD_MAX
                       ? -1
                       : in_short_on(h->t, NULL, *x))
#undef INT_ON
#undef DBL_ON
#undef ON_FN
#undef ON_FN1

/* [field name over SHORT_WORD_MAX bytes][test] */
#define ONS(SUFFIX)                                                                         \
  {                                                                                         \
    [T_INT_EQ] = on_int_eq##SUFFIX, [T_INT_NE] = on_int_ne##SUFFIX,                         \
    [T_INT_LT] = on_int_lt##SUFFIX, [T_INT_LE] = on_int_le##SUFFIX,                         \
    [T_INT_GT] = on_int_gt##SUFFIX, [T_INT_GE] = on_int_ge##SUFFIX,                         \
    [T_DBL_EQ] = on_dbl_eq##SUFFIX, [T_DBL_NE] = on_dbl_ne##SUFFIX,                         \
    [T_DBL_LT] = on_dbl_lt##SUFFIX, [T_DBL_LE] = on_dbl_le##SUFFIX,                         \
    [T_DBL_GT] = on_dbl_gt##SUFFIX, [T_DBL_GE] = on_dbl_ge##SUFFIX,                         \
    [T_STR_EQ] = on_str_eq##SUFFIX, [T_STR_NE] = on_str_ne##SUFFIX,                         \
    [T_STARTS] = on_starts##SUFFIX, [T_ENDS] = on_ends##SUFFIX,                             \
    [T_IN_SHORT] = on_in_short##SUFFIX, [T_STR_EQ48] = on_str_eq48##SUFFIX,                 \
    [T_STR_NE48] = on_str_ne48##SUFFIX, [T_STARTS48] = on_starts48##SUFFIX,                 \
  }
static const hoisted_fn on_fns[2][T_STARTS48 + 1] = {ONS(), ONS(_l)};
#undef ONS

/*
 * The loops of quantify_one and quantify_two count the iteration budget as
 * the VM does, one per element and one for the step that finds the end,
 * without a test per element: with budget iterations left before element
 * 0, they run elements [0, budget_end) and, past the last, bail unless the
 * budget reached beyond the end. An element through the node's own
 * function (which may spend iterations in a macro of its own) moves the
 * end.
 */
static inline uint32_t budget_end(uint64_t budget, uint32_t len) {
  return budget > len ? len : (uint32_t)budget;
}

/*
 * The loop of quantify over a list whose predicate is one leaf test on the
 * element: COND, of the field value x and the constant k, is the test
 * inline (0, 1, or -1 for not the fast case), so an element costs the
 * field's hint, one kind test and one compare. budget stays in a register;
 * e->budget is its home only across calls.
 */
#define QUANTIFY_ONE(COND)                                                    \
  for (uint32_t i = 0; i != end; i++) {                                       \
    const struct expr_value *item = &items[i], *x = hoisted_probe(&h0, item, NAMES_ANY); \
    int p = likely(x != NULL) ? (COND) : -1;                                  \
    if (unlikely(p < 0)) {                                                    \
      e->budget = budget - (i + 1);                                           \
      p = item_call(t, var, item, e);                                         \
      budget = e->budget + (i + 1);                                           \
      end = budget_end(budget, len);                                          \
      h0.at = hint_now(&h0);                                                  \
    }                                                                         \
    if (p != !stop) {                                                         \
      if (p != stop) return C_BAIL;                                           \
      e->budget = budget - (i + 1);                                           \
      return stop;                                                            \
    }                                                                         \
  }                                                                           \
  break;

static inline __attribute__((always_inline)) int quantify_one(const struct cnode *n,
                                                              struct ceval *e, int stop,
                                                              const struct expr_list *l,
                                                              const struct hoisted *h) {
  struct hoisted h0 = *h;
  h0.at = hint_now(&h0);
  const struct cnode *t = h0.t;
  const struct expr_value k = h0.k, *items = l->items;
  const uint32_t len = l->len;
  const uint16_t var = n->var;
  uint64_t budget = e->budget;
  uint32_t end = budget_end(budget, len);
  switch (t->test) {
#define INT_LOOP(T, OP) \
  case T:               \
    QUANTIFY_ONE(x->kind == EXPR_INT ? x->v.i OP k.v.i : -1)
#define DBL_LOOP(T, OP) \
  case T:               \
    QUANTIFY_ONE(x->kind == EXPR_DOUBLE ? x->v.d OP k.v.d : -1)
    INT_LOOP(T_INT_EQ, ==) INT_LOOP(T_INT_NE, !=) INT_LOOP(T_INT_LT, <)
    INT_LOOP(T_INT_LE, <=) INT_LOOP(T_INT_GT, >) INT_LOOP(T_INT_GE, >=)
    DBL_LOOP(T_DBL_EQ, ==) DBL_LOOP(T_DBL_NE, !=) DBL_LOOP(T_DBL_LT, <)
    DBL_LOOP(T_DBL_LE, <=) DBL_LOOP(T_DBL_GT, >) DBL_LOOP(T_DBL_GE, >=)
#undef INT_LOOP
#undef DBL_LOOP
    case T_STR_EQ:
      QUANTIFY_ONE(x->kind != EXPR_STRING ? -1 : str_is(x, &k, h0.kword))
    case T_STR_NE:
      QUANTIFY_ONE(x->kind != EXPR_STRING ? -1 : !str_is(x, &k, h0.kword))
    case T_STARTS:
      QUANTIFY_ONE(x->kind != EXPR_STRING ? -1 : prefix_is(x, &k, h0.kword))
    case T_STR_EQ48:
      QUANTIFY_ONE(x->kind != EXPR_STRING ? -1 : str_is48(x, &k, h0.kword))
    case T_STARTS48:
      QUANTIFY_ONE(x->kind != EXPR_STRING ? -1 : prefix_is48(x, &k, h0.kword))
    default: /* the rarer tests through their function */
      QUANTIFY_ONE(h0.on(&h0, item))
  }
  if (budget <= len) return C_BAIL; /* spent before the step that finds the end */
  e->budget = budget - (len + 1);
  return !stop;
}
#undef QUANTIFY_ONE

/* The same for a predicate of two leaf tests on the element, a && b (go_on:
 * true) or a || b (false), each through its test function. */
static inline __attribute__((always_inline)) int quantify_two(const struct cnode *n,
                                                              struct ceval *e, int stop,
                                                              const struct expr_list *l,
                                                              const struct hoisted *h, int go_on) {
  struct hoisted h0 = h[0], h1 = h[1];
  h0.at = hint_now(&h0), h1.at = hint_now(&h1);
  const struct expr_value *items = l->items;
  const uint32_t len = l->len;
  const uint16_t var = n->var;
  uint64_t budget = e->budget;
  uint32_t end = budget_end(budget, len);
  for (uint32_t i = 0; i != end; i++) {
    const struct expr_value *item = &items[i];
    int p = h0.on(&h0, item);
    if (unlikely(p < 0)) {
      e->budget = budget - (i + 1);
      p = item_call(h0.t, var, item, e);
      budget = e->budget + (i + 1);
      end = budget_end(budget, len);
      h0.at = hint_now(&h0);
    }
    if (p == go_on) {
      p = h1.on(&h1, item);
      if (unlikely(p < 0)) {
        e->budget = budget - (i + 1);
        p = item_call(h1.t, var, item, e);
        budget = e->budget + (i + 1);
        end = budget_end(budget, len);
        h1.at = hint_now(&h1);
      }
    }
    if (p != !stop) {
      if (p != stop) return C_BAIL;
      e->budget = budget - (i + 1);
      return stop;
    }
  }
  if (budget <= len) return C_BAIL; /* spent before the step that finds the end */
  e->budget = budget - (len + 1);
  return !stop;
}

/* all (stop: false) and exists (stop: true): the first element whose
 * predicate is stop decides; a bail before that is the VM's case. A
 * predicate of leaf tests runs inline (hoisted), storing the variable only
 * for what runs through a call. */
static inline __attribute__((always_inline)) int quantify(const struct cnode *n, struct ceval *e,
                                                          int stop) {
  struct expr_value r;
  if (!fetch(&n->path, e, &r)) return C_BAIL;
  uint32_t len;
  const struct expr_value *items = NULL;
  const struct expr_map_entry *entries = NULL;
  if (r.kind == EXPR_LIST) {
    len = r.v.list->len, items = r.v.list->items;
  } else if (r.kind == EXPR_MAP) {
    len = r.v.map->len, entries = r.v.map->entries;
  } else {
    return C_BAIL;
  }
  const struct cnode *b = n->a;
  const uint16_t var = n->var;
  const uint32_t nh = n->n_hoisted;
  if (nh == 1 && items && n->hoisted[0].on_item)
    return quantify_one(n, e, stop, r.v.list, &n->hoisted[0]);
  if (nh == 2 && items && n->hoisted[0].on_item && n->hoisted[1].on_item)
    return quantify_two(n, e, stop, r.v.list, n->hoisted, b->fn == c_disj ? C_FALSE : C_TRUE);
  struct hoisted h[HOIST_MAX];
  for (uint32_t j = 0; j < nh; j++) h[j] = n->hoisted[j], h[j].at = hint_now(&h[j]);
  /* A chain goes on while its tests are go_on: true for &&, false for ||. */
  const int go_on = nh > 1 && b->fn == c_disj ? C_FALSE : C_TRUE;
  uint64_t budget = e->budget;
  int result = !stop;
  for (uint32_t i = 0;; i++) {
    if (unlikely(budget-- == 0)) return C_BAIL;
    if (i == len) break;
    const struct expr_value *item = items ? &items[i] : &entries[i].key;
    int p = go_on;
    for (uint32_t j = 0; j < nh && p == go_on; j++) { /* (nh is at most HOIST_MAX) */
      p = h[j].on(&h[j], h[j].on_item ? item : BASE(h[j].t, e));
      if (unlikely(p < 0)) {
        e->budget = budget;
        p = item_call(h[j].t, var, item, e);
        budget = e->budget;
        h[j].at = hint_now(&h[j]);
      }
    }
    if (!nh) {
      e->budget = budget;
      p = item_call(b, var, item, e);
      budget = e->budget;
    }
    if (p != !stop) {
      if (p != stop) return C_BAIL;
      result = stop;
      break;
    }
  }
  e->budget = budget;
  return result;
}

static int c_exists(const struct cnode *n, struct ceval *e) { return quantify(n, e, C_TRUE); }
static int c_all(const struct cnode *n, struct ceval *e) { return quantify(n, e, C_FALSE); }

static int c_exists_one(const struct cnode *n, struct ceval *e) {
  struct expr_value r;
  if (!fetch(&n->path, e, &r)) return C_BAIL;
  uint32_t len, count = 0;
  if (r.kind == EXPR_LIST)
    len = r.v.list->len;
  else if (r.kind == EXPR_MAP)
    len = r.v.map->len;
  else
    return C_BAIL;
  for (uint32_t i = 0;; i++) {
    if (unlikely(e->budget-- == 0)) return C_BAIL;
    if (i == len) break;
    e->loc[n->var] = r.kind == EXPR_LIST ? r.v.list->items[i] : r.v.map->entries[i].key;
    int p = n->a->fn(n->a, e);
    if (p > C_TRUE) return C_BAIL;
    count += (uint32_t)p;
  }
  return count == 1;
}

/* A host callback failed: its error, in the context's scratch. */
static __attribute__((noinline)) int host_error(const struct cnode *n, struct ceval *e, int rc) {
  ctx_scratch_reset(e->ctx);
  e->err = journey_host_failed(&e->ctx->arena, n->fn_id, rc, n->pos);
  return C_ERROR;
}

/* Asks the host count(k2[, window]) or openCases(k2) into *c, its return
 * code into *rc; false, without asking, if it lacks the callback (the VM's
 * "not available"). */
static inline __attribute__((always_inline)) bool host_int_ask(const struct cnode *n,
                                                               const struct expr_host *h,
                                                               void *hctx, int64_t *c, int *rc) {
  if (n->fn_id == FN_COUNT) {
    if (!h || !h->count_events) return false;
    int64_t now = h->now_ms ? h->now_ms(hctx) : clock_now_ms();
    int64_t since = n->window_ms < 0 ? INT64_MIN : now - n->window_ms;
    *rc = h->count_events(hctx, n->k2.v.s, n->k2.aux, since, now + 1, c);
  } else {
    if (!h || !h->open_cases) return false;
    *rc = h->open_cases(hctx, n->k2.v.s, n->k2.aux, c);
  }
  return true;
}

/* count(k2[, window]) or openCases(k2), compared with k. Bails only before
 * asking the host. */
static int c_host_int(const struct cnode *n, struct ceval *e) {
  int64_t c = 0;
  int rc;
  if (!host_int_ask(n, e->host, e->hctx, &c, &rc)) return C_BAIL;
  if (unlikely(rc)) return host_error(n, e, rc);
  /* k is a number (closure_compile checks): no bail here. */
  return cmp_value(baton_expr_int(c), n->k, n->rel);
}

/* inSegment(k2) / inJourney(k2). */
static int c_host_bool(const struct cnode *n, struct ceval *e) {
  const struct expr_host *h = e->host;
  int (*cb)(void *, const char *, size_t, bool *) =
      !h ? NULL : n->fn_id == FN_IN_SEGMENT ? h->in_segment : h->in_journey;
  if (!cb) return C_BAIL;
  bool b = false;
  int rc = cb(e->hctx, n->k2.v.s, n->k2.aux, &b);
  if (unlikely(rc)) return host_error(n, e, rc);
  return b;
}

/* ---- Entry ---------------------------------------------------------------- */

/*
 * The general way in: evaluates the closure with its state on the stack,
 * and runs the bytecode if it bails. The arguments the bytecode needs wait
 * in e rather than in registers the call to the closure would have to keep.
 */
static __attribute__((noinline)) int closure_run(const struct expr_program *p,
                                                 struct expr_ctx *ctx,
                                                 const struct expr_value *vars,
                                                 const struct expr_host *host, void *hctx,
                                                 struct expr_value *out) {
  struct ceval e;
  e.vars = vars, e.host = host, e.hctx = hctx, e.ctx = ctx, e.budget = ctx->max_iterations;
  e.prog = p, e.out = out;
  int r = p->closure->fn(p->closure, &e);
  if (likely(r <= C_TRUE)) {
    struct expr_value *o = e.out;
    *o = baton_expr_bool(r);
    return 0;
  }
  if (r == C_ERROR) {
    *e.out = e.err;
    return BATON_EINVAL;
  }
  return vm_run(e.prog, e.ctx, e.vars, e.host, e.hctx, e.out);
}

/*
 * Ways in for a condition that is one leaf test of a variable's field
 * (profile.age > 30, profile.email.startsWith("vip.")): the test on the
 * arguments as they come, with no state to set up; anything but its fast
 * case goes to closure_run.
 */
#define ROOT_FN1(NAME, COND, NAMES)                                                  \
  static int NAME(const struct expr_program *p, struct expr_ctx *ctx,                  \
                  const struct expr_value *vars, const struct expr_host *host,         \
                  void *hctx, struct expr_value *out) {                                \
    const struct cnode *n = &p->root;                                                \
    const struct expr_value *x = probe(at_off(vars, n->path.off), &n->path.f[0], NAMES); \
    int r = likely(x != NULL) ? (COND) : -1;                                           \
    if (likely(r >= 0)) {                                                              \
      *out = baton_expr_bool(r);                                                       \
      return 0;                                                                        \
    }                                                                                  \
    return closure_run(p, ctx, vars, host, hctx, out);                                 \
  }
/* NAME for a field name of at most SHORT_WORD_MAX bytes (its tag is the
 * whole test), NAME_l for longer ones. */
#define ROOT_FN(NAME, COND)                 \
  ROOT_FN1(NAME, COND, NAMES_SHORT)         \
  ROOT_FN1(NAME##_l, COND, NAMES_16)
#define INT_ROOT(NAME, OP) ROOT_FN(NAME, x->kind == EXPR_INT ? x->v.i OP n->k.v.i : -1)
#define DBL_ROOT(NAME, OP) ROOT_FN(NAME, x->kind == EXPR_DOUBLE ? x->v.d OP n->k.v.d : -1)
INT_ROOT(root_int_eq, ==) INT_ROOT(root_int_ne, !=) INT_ROOT(root_int_lt, <)
INT_ROOT(root_int_le, <=) INT_ROOT(root_int_gt, >) INT_ROOT(root_int_ge, >=)
DBL_ROOT(root_dbl_eq, ==) DBL_ROOT(root_dbl_ne, !=) DBL_ROOT(root_dbl_lt, <)
DBL_ROOT(root_dbl_le, <=) DBL_ROOT(root_dbl_gt, >) DBL_ROOT(root_dbl_ge, >=)
ROOT_FN(root_str_eq, x->kind == EXPR_STRING ? str_is(x, &n->k, n->kword) : -1)
ROOT_FN(root_str_ne, x->kind == EXPR_STRING ? !str_is(x, &n->k, n->kword) : -1)
ROOT_FN(root_starts, x->kind == EXPR_STRING ? prefix_is(x, &n->k, n->kword) : -1)
ROOT_FN(root_ends, x->kind == EXPR_STRING ? ends_on(n, NULL, *x) : -1)
ROOT_FN(root_in_short, x->kind == EXPR_STRING ? in_short_on(n, NULL, *x) : -1)
ROOT_FN(root_str_eq48, x->kind == EXPR_STRING ? str_is48(x, &n->k, n->kword) : -1)
ROOT_FN(root_str_ne48, x->kind == EXPR_STRING ? !str_is48(x, &n->k, n->kword) : -1)
ROOT_FN(root_starts48, x->kind == EXPR_STRING ? prefix_is48(x, &n->k, n->kword) : -1)
#undef INT_ROOT
#undef DBL_ROOT
#undef ROOT_FN
#undef ROOT_FN1

/* [field name over SHORT_WORD_MAX bytes][test] */
#define ROOTS(SUFFIX)                                                                    \
  {                                                                                      \
    [T_INT_EQ] = root_int_eq##SUFFIX, [T_INT_NE] = root_int_ne##SUFFIX,                  \
    [T_INT_LT] = root_int_lt##SUFFIX, [T_INT_LE] = root_int_le##SUFFIX,                  \
    [T_INT_GT] = root_int_gt##SUFFIX, [T_INT_GE] = root_int_ge##SUFFIX,                  \
    [T_DBL_EQ] = root_dbl_eq##SUFFIX, [T_DBL_NE] = root_dbl_ne##SUFFIX,                  \
    [T_DBL_LT] = root_dbl_lt##SUFFIX, [T_DBL_LE] = root_dbl_le##SUFFIX,                  \
    [T_DBL_GT] = root_dbl_gt##SUFFIX, [T_DBL_GE] = root_dbl_ge##SUFFIX,                  \
    [T_STR_EQ] = root_str_eq##SUFFIX, [T_STR_NE] = root_str_ne##SUFFIX,                  \
    [T_STARTS] = root_starts##SUFFIX, [T_ENDS] = root_ends##SUFFIX,                      \
    [T_IN_SHORT] = root_in_short##SUFFIX, [T_STR_EQ48] = root_str_eq48##SUFFIX,          \
    [T_STR_NE48] = root_str_ne48##SUFFIX, [T_STARTS48] = root_starts48##SUFFIX,          \
  }
static const expr_entry_fn root_fns[2][T_STARTS48 + 1] = {ROOTS(), ROOTS(_l)};
#undef ROOTS

/* The way in for a condition that is a journey function compared with a
 * constant (count("purchase", duration("720h")) >= 2): c_host_int with no
 * evaluation state. */
static int root_host_int(const struct expr_program *p, struct expr_ctx *ctx,
                         const struct expr_value *vars, const struct expr_host *host, void *hctx,
                         struct expr_value *out) {
  const struct cnode *n = &p->root;
  int64_t c = 0;
  int rc;
  if (!host_int_ask(n, host, hctx, &c, &rc)) return vm_run(p, ctx, vars, host, hctx, out);
  if (unlikely(rc)) {
    ctx_scratch_reset(ctx);
    *out = journey_host_failed(&ctx->arena, n->fn_id, rc, n->pos);
    return BATON_EINVAL;
  }
  /* An int against a number, or == / != anything: never a bail. */
  *out = baton_expr_bool(cmp_value(baton_expr_int(c), n->k, n->rel) == C_TRUE);
  return 0;
}

/* Test t on its path's base value, inline: 0 or 1, or -1 when it is not
 * its fast case. With no call, a function made of these needs no frame. */
static inline __attribute__((always_inline)) int test_on(const struct cnode *t,
                                                         const struct expr_value *base) {
  const struct expr_value *x = probe_tail(base, &t->path.f[0]), *k = &t->k;
  if (unlikely(!x)) return -1;
  switch (t->test) {
#define INT_CASE(T, OP) \
  case T:               \
    return x->kind == EXPR_INT ? x->v.i OP k->v.i : -1;
#define DBL_CASE(T, OP) \
  case T:               \
    return x->kind == EXPR_DOUBLE ? x->v.d OP k->v.d : -1;
    INT_CASE(T_INT_EQ, ==) INT_CASE(T_INT_NE, !=) INT_CASE(T_INT_LT, <)
    INT_CASE(T_INT_LE, <=) INT_CASE(T_INT_GT, >) INT_CASE(T_INT_GE, >=)
    DBL_CASE(T_DBL_EQ, ==) DBL_CASE(T_DBL_NE, !=) DBL_CASE(T_DBL_LT, <)
    DBL_CASE(T_DBL_LE, <=) DBL_CASE(T_DBL_GT, >) DBL_CASE(T_DBL_GE, >=)
#undef INT_CASE
#undef DBL_CASE
    case T_STR_EQ:
      return x->kind == EXPR_STRING ? str_is(x, k, t->kword) : -1;
    case T_STR_NE:
      return x->kind == EXPR_STRING ? !str_is(x, k, t->kword) : -1;
    case T_STARTS:
      return x->kind == EXPR_STRING ? prefix_is(x, k, t->kword) : -1;
    case T_ENDS:
      return x->kind == EXPR_STRING ? ends_on(t, NULL, *x) : -1;
    case T_IN_SHORT:
      return x->kind == EXPR_STRING ? in_short_on(t, NULL, *x) : -1;
    case T_STR_EQ48:
      return x->kind == EXPR_STRING ? str_is48(x, k, t->kword) : -1;
    case T_STR_NE48:
      return x->kind == EXPR_STRING ? !str_is48(x, k, t->kword) : -1;
    case T_STARTS48:
      return x->kind == EXPR_STRING ? prefix_is48(x, k, t->kword) : -1;
  }
  return -1;
}

/* The way in for a chain of leaf tests on variables' fields (profile.tier
 * == "gold" && event.name == "purchase"): the tests inline, in order; the
 * first that is not go_on decides. */
static int root_chain(const struct expr_program *p, struct expr_ctx *ctx,
                      const struct expr_value *vars, const struct expr_host *host, void *hctx,
                      struct expr_value *out) {
  const struct cnode *n = &p->root;
  const int go_on = n->fn == c_conj ? C_TRUE : C_FALSE;
  int r = go_on;
  for (uint32_t i = 0, len = n->n_list; i < len && r == go_on; i++) {
    const struct cnode *t = n->list[i];
    r = test_on(t, at_off(vars, t->path.off));
    if (unlikely(r < 0)) return closure_run(p, ctx, vars, host, hctx, out);
  }
  *out = baton_expr_bool(r);
  return 0;
}

/* A string (in)equality test of a variable's field, as test_on does it
 * (rel: 0 for ==, 1 for !=), by str_is48 (constants of 4 to 8 bytes) or
 * str_is. */
static inline __attribute__((always_inline)) int str_test_on(const struct cnode *t,
                                                             const struct expr_value *vars,
                                                             bool is48, int names) {
  const struct expr_value *x = probe(at_off(vars, t->path.off), &t->path.f[0], names);
  if (unlikely(!x || x->kind != EXPR_STRING)) return -1;
  return (is48 ? str_is48(x, &t->k, t->kword) : str_is(x, &t->k, t->kword)) ^ t->rel;
}

/* root_chain2 when both tests are string (in)equalities, the commonest
 * pair (profile.tier == "gold" && event.name == "purchase"): no switch;
 * one function for && (GO_ON 1) and one for ||, each for constants of any
 * length (str_is) and of 4 to 8 bytes (str_is48). */
#define STR_CHAIN2(NAME, IS48, GO_ON, NAMES)                                             \
  static int NAME(const struct expr_program *p, struct expr_ctx *ctx,                   \
                  const struct expr_value *vars, const struct expr_host *host, void *hctx, \
                  struct expr_value *out) {                                             \
    const struct cnode *const *l = p->root.list;                                   \
    int r = str_test_on(l[0], vars, IS48, NAMES);                                      \
    if (r == GO_ON) r = str_test_on(l[1], vars, IS48, NAMES);                           \
    if (unlikely(r < 0)) return closure_run(p, ctx, vars, host, hctx, out);             \
    *out = baton_expr_bool(r);                                                         \
    return 0;                                                                          \
  }
STR_CHAIN2(root_str_or2, false, 0, NAMES_SHORT)
STR_CHAIN2(root_str_and2, false, 1, NAMES_SHORT)
STR_CHAIN2(root_str48_or2, true, 0, NAMES_SHORT)
STR_CHAIN2(root_str48_and2, true, 1, NAMES_SHORT)
STR_CHAIN2(root_str_or2_l, false, 0, NAMES_16)
STR_CHAIN2(root_str_and2_l, false, 1, NAMES_16)
STR_CHAIN2(root_str48_or2_l, true, 0, NAMES_16)
STR_CHAIN2(root_str48_and2_l, true, 1, NAMES_16)
#undef STR_CHAIN2

/* [a field name over SHORT_WORD_MAX bytes][both constants of 4 to 8 bytes][&&] */
static const expr_entry_fn str_chain2_fns[2][2][2] = {
    {{root_str_or2, root_str_and2}, {root_str48_or2, root_str48_and2}},
    {{root_str_or2_l, root_str_and2_l}, {root_str48_or2_l, root_str48_and2_l}},
};

/* root_chain for the commonest chain, a && b or a || b, unrolled. */
static int root_chain2(const struct expr_program *p, struct expr_ctx *ctx,
                       const struct expr_value *vars, const struct expr_host *host, void *hctx,
                       struct expr_value *out) {
  const struct cnode *n = &p->root, *a = n->list[0];
  int r = test_on(a, at_off(vars, a->path.off));
  if (unlikely(r < 0)) return closure_run(p, ctx, vars, host, hctx, out);
  if (r == (n->fn == c_conj)) {
    const struct cnode *b = n->list[1];
    r = test_on(b, at_off(vars, b->path.off));
    if (unlikely(r < 0)) return closure_run(p, ctx, vars, host, hctx, out);
  }
  *out = baton_expr_bool(r);
  return 0;
}

/* ---- Compilation ---------------------------------------------------------- */

struct cbuild {
  struct expr_program *p;
  int rc; /* BATON_ETOOBIG once the program's arena is full */
};

/* The leaf tests of predicate or chain b (one, or a chain of up to
 * HOIST_MAX) copied into n->hoisted, their paths starting at local var (a
 * macro's variable) or not (var UINT32_MAX); n->n_hoisted stays 0 if b is
 * anything else. */
static void hoist(struct cbuild *bd, struct cnode *n, const struct cnode *b, uint32_t var) {
  const struct cnode *const *list = &b;
  uint32_t len = 1;
  if (b->fn == c_conj || b->fn == c_disj) list = b->list, len = b->n_list;
  if (len > HOIST_MAX) return;
  for (uint32_t i = 0; i < len; i++)
    if (!list[i]->test) return;
  struct hoisted *h = arena_alloc(&bd->p->arena, len * sizeof(*h));
  if (!h) {
    bd->rc = BATON_ETOOBIG;
    return;
  }
  for (uint32_t i = 0; i < len; i++) {
    const struct cnode *t = list[i];
    h[i].on = on_fns[t->path.f[0].len > SHORT_WORD_MAX][t->test];
    h[i].t = t, h[i].hint = &t->path.f[0].hint, h[i].tag = t->path.f[0].tag;
    h[i].len = t->path.f[0].len, h[i].k = t->k, h[i].kword = t->kword;
    h[i].on_item = t->path.local && t->path.slot == var;
  }
  n->hoisted = h, n->n_hoisted = len;
}

static struct cnode *node(struct cbuild *b, cnode_fn fn) {
  struct cnode *n = arena_alloc(&b->p->arena, sizeof(*n));
  if (!n) {
    b->rc = BATON_ETOOBIG;
    return NULL;
  }
  memset(n, 0, sizeof(*n));
  n->fn = fn;
  return n;
}

/* A string in the program's arena (AST strings live in the parse arena). */
static const char *own_str(struct cbuild *b, const char *s, size_t len) {
  char *o = arena_alloc(&b->p->arena, len + 1);
  if (!o) {
    b->rc = BATON_ETOOBIG;
    return NULL;
  }
  memcpy(o, s, len);
  o[len] = 0;
  return o;
}

static bool field_of(struct cbuild *b, const struct ast *sel, struct cfield *f) {
  if (sel->name_len > UINT32_MAX) return false;
  f->s = own_str(b, sel->name, sel->name_len);
  f->len = (uint32_t)sel->name_len;
  f->hash = key_hash(sel->name, sel->name_len);
  f->hint = 0;
  f->tag = key_tag_str(sel->name, f->len);
  f->w1 = f->len >= 8 && f->len <= 16 ? load64(sel->name) : 0;
  f->w2 = f->len >= 8 && f->len <= 16 ? load64(sel->name + f->len - 8) : 0;
  return f->s != NULL;
}

/* A variable or local read through at most CPATH_MAX fields: profile.a.b. */
static bool path_of(struct cbuild *b, const struct ast *n, struct cpath *out) {
  const struct ast *sel[CPATH_MAX];
  uint32_t depth = 0;
  while (n->kind == AST_SELECT && !n->test_only) {
    if (depth == CPATH_MAX) return false;
    sel[depth++] = n;
    n = n->a;
  }
  if (n->kind != AST_IDENT || n->slot == -1) return false;
  memset(out, 0, sizeof(*out));
  if (n->slot >= 0) {
    if (n->slot > UINT16_MAX) return false;
    out->slot = (uint16_t)n->slot;
  } else {
    int32_t l = -2 - n->slot;
    if (l >= CLOSURE_MAX_LOCALS) return false;
    out->slot = (uint16_t)l;
    out->local = true;
  }
  out->n = (uint8_t)depth;
  out->off = (uint32_t)out->slot * sizeof(struct expr_value);
  for (uint32_t i = 0; i < depth; i++)
    if (!field_of(b, sel[depth - 1 - i], &out->f[i])) return false;
  return true;
}

/* The value of a constant operand: a literal or a folded pure call. */
static bool const_of(struct cbuild *b, const struct ast *n, struct expr_value *out) {
  if (n->kind == AST_LIT || (n->kind == AST_LIST && ast_is_const(n))) {
    int rc;
    *out = ast_const_value(b->p, n, &rc);
    if (rc) b->rc = rc;
    return !rc;
  }
  int rc = fold_pure_call(b->p, n, out);
  if (rc == BATON_ETOOBIG) b->rc = rc;
  return rc == 0;
}

static uint64_t kword_of(struct expr_value k) {
  return k.kind == EXPR_STRING && k.aux <= 8 ? key_word(k.v.s, k.aux) : 0;
}

static int rel_of(enum tok_kind op) {
  switch (op) {
    case TOK_EQ: return 0;
    case TOK_NE: return 1;
    case TOK_LT: return 2;
    case TOK_LE: return 3;
    case TOK_GT: return 4;
    case TOK_GE: return 5;
    default: return -1;
  }
}

/* k <rel> x as x <flip(rel)> k. value_compare and value_equal are
 * antisymmetric and symmetric, so the answer is the same. */
static int flip(int rel) {
  static const int f[6] = {0, 1, 4, 5, 2, 3};
  return f[rel];
}

/* count("name"[, duration]) or openCases("type"), as a compare's operand. */
static bool host_int_call(struct cbuild *b, const struct ast *n, struct cnode *out) {
  if (n->kind != AST_CALL || (n->fn != FN_COUNT && n->fn != FN_OPEN_CASES)) return false;
  if (n->n_args < 1 || n->args[0]->kind != AST_LIT || n->args[0]->lit.kind != EXPR_STRING)
    return false;
  out->window_ms = -1;
  if (n->fn == FN_COUNT && n->n_args == 2) {
    struct expr_value d;
    /* A negative window is the VM's error. */
    if (!const_of(b, n->args[1], &d) || d.kind != EXPR_DURATION || d.v.sec < 0) return false;
    out->window_ms = d.v.sec * 1000 + d.aux / 1000000;
  } else if (n->n_args != 1) {
    return false;
  }
  if (!const_of(b, n->args[0], &out->k2)) return false;
  out->fn_id = n->fn;
  out->pos = n->pos;
  return true;
}

static bool is_num_kind(int k) { return k == EXPR_INT || k == EXPR_UINT || k == EXPR_DOUBLE; }

static struct cnode *build(struct cbuild *b, const struct ast *n, bool host_ok);

static struct cnode *build_compare(struct cbuild *b, const struct ast *n, bool host_ok) {
  int rel = rel_of(n->op);
  struct cpath x, y;
  struct expr_value k;
  const struct ast *pa = n->a, *ka = n->b;
  if (!path_of(b, pa, &x)) { /* constant first: flip it */
    pa = n->b, ka = n->a, rel = flip(rel);
    if (!path_of(b, pa, &x)) {
      /* count(...) >= 2: a host call, last of the whole condition. */
      if (!host_ok) return NULL;
      struct cnode *h = node(b, c_host_int);
      if (!h) return NULL;
      rel = rel_of(n->op);
      if (!host_int_call(b, n->a, h) || !const_of(b, n->b, &k)) return NULL;
      /* A number orders against the int without error; == and != take anything. */
      if (rel >= 2 && !is_num_kind(k.kind)) return NULL;
      h->k = k;
      h->rel = (uint8_t)rel;
      return h;
    }
  }
  if (path_of(b, ka, &y)) {
    struct cnode *c = node(b, c_cmp_paths);
    if (!c) return NULL;
    c->path = x, c->path2 = y, c->rel = (uint8_t)rel;
    return c;
  }
  if (!const_of(b, ka, &k)) return NULL;
  int kind = k.kind == EXPR_INT ? 0 : k.kind == EXPR_DOUBLE ? 1 : k.kind == EXPR_STRING ? 2 : -1;
  cnode_fn fn = x.n == 1 && kind >= 0 ? cmp1_fns[x.local][kind][rel] : NULL;
  struct cnode *c = node(b, fn ? fn : x.n == 1 ? c_cmp1 : c_cmp);
  if (!c) return NULL;
  c->path = x, c->k = k, c->rel = (uint8_t)rel, c->kword = kword_of(k);
  if (fn) c->test = (uint8_t)((kind == 0 ? T_INT_EQ : kind == 1 ? T_DBL_EQ : T_STR_EQ) + rel);
  if (fn && kind == 2 && k.aux >= 4 && k.aux <= 8) c->test = (uint8_t)(T_STR_EQ48 + rel);
  return c;
}

/*
 * A table of l's short words in which no two share a slot, for in_short_on:
 * the smallest of 4..512 slots (at least twice the words) and the first of
 * 64 odd multipliers that spread them apart. Sets c's words, mul and shift,
 * or returns false (not short strings, or no such table: c_in_set does it).
 */
static bool short_table(struct cbuild *b, const struct expr_list *l, struct cnode *c) {
  const uint64_t *w = in_short_words(b->p, l);
  if (!w) return false;
  for (uint32_t bits = 2; bits <= 9; bits++) {
    uint32_t cap = 1u << bits;
    if (cap < 2 * l->len) continue;
    uint64_t *t = arena_alloc(&b->p->arena, cap * sizeof(*t));
    if (!t) {
      b->rc = BATON_ETOOBIG;
      return false;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int attempt = 0; attempt < 64; attempt++) {
      /* splitmix64: a fixed sequence, so compiling is deterministic */
      uint64_t m = (seed += 0x9E3779B97F4A7C15ull);
      m = (m ^ (m >> 30)) * 0xBF58476D1CE4E5B9ull;
      m = (m ^ (m >> 27)) * 0x94D049BB133111EBull;
      m = (m ^ (m >> 31)) | 1;
      memset(t, 0xff, cap * sizeof(*t)); /* ~0 is no short_word: its length byte is 255 */
      bool ok = true;
      for (uint32_t i = 0; i < l->len && ok; i++) {
        uint64_t *slot = &t[(w[i] * m) >> (64 - bits)];
        ok = *slot == UINT64_MAX || *slot == w[i]; /* a repeated item may share */
        *slot = w[i];
      }
      if (ok) {
        c->words = t, c->mul = m, c->shift = (uint8_t)(64 - bits);
        return true;
      }
    }
  }
  return false;
}

static struct cnode *build_in(struct cbuild *b, const struct ast *n) {
  struct cpath x;
  struct expr_value k;
  bool one;
  if (path_of(b, n->a, &x)) {
    if (n->b->kind != AST_LIST || !const_of(b, n->b, &k)) return NULL;
    one = x.n == 1;
    struct cnode *c = node(b, NULL);
    if (!c) return NULL;
    if (short_table(b, k.v.list, c))
      c->fn = one ? c_in_short1 : c_in_short, c->test = one ? T_IN_SHORT : T_NONE;
    else if ((c->set = in_string_set(b->p, k.v.list)))
      c->fn = one ? c_in_set1 : c_in_set;
    else
      c->fn = one ? c_in_list1 : c_in_list;
    c->path = x, c->k = k;
    return b->rc ? NULL : c;
  }
  if (n->a->kind == AST_LIT && path_of(b, n->b, &x) && const_of(b, n->a, &k)) {
    struct cnode *c = node(b, x.n == 1 ? c_has_item1 : c_has_item);
    if (!c) return NULL;
    c->path = x, c->k = k;
    return c;
  }
  return NULL;
}

static struct cnode *build_call(struct cbuild *b, const struct ast *n, bool host_ok) {
  struct cpath x;
  struct expr_value k;
  switch (n->fn) {
    case FN_STARTS_WITH:
    case FN_ENDS_WITH:
    case FN_CONTAINS: {
      if (n->n_args != 2 || !path_of(b, n->args[0], &x) || !const_of(b, n->args[1], &k) ||
          k.kind != EXPR_STRING)
        return NULL;
      bool one = x.n == 1;
      struct cnode *c = node(b, n->fn == FN_STARTS_WITH ? (one ? c_starts1 : c_starts)
                                : n->fn == FN_ENDS_WITH ? (one ? c_ends1 : c_ends)
                                                        : (one ? c_contains1 : c_contains));
      if (!c) return NULL;
      c->path = x, c->k = k, c->kword = kword_of(k);
      if (one && n->fn != FN_CONTAINS) c->test = n->fn == FN_STARTS_WITH ? T_STARTS : T_ENDS;
      if (c->test == T_STARTS && k.aux >= 4 && k.aux <= 8) c->test = T_STARTS48;
      return c;
    }
    case FN_IN_SEGMENT:
    case FN_IN_JOURNEY: {
      if (!host_ok || n->n_args != 1 || n->args[0]->kind != AST_LIT ||
          !const_of(b, n->args[0], &k) || k.kind != EXPR_STRING)
        return NULL;
      struct cnode *c = node(b, c_host_bool);
      if (!c) return NULL;
      c->k2 = k, c->fn_id = n->fn, c->pos = n->pos;
      return c;
    }
  }
  return NULL;
}

static struct cnode *build_macro(struct cbuild *b, const struct ast *n) {
  if (n->macro != MACRO_ALL && n->macro != MACRO_EXISTS && n->macro != MACRO_EXISTS_ONE)
    return NULL;
  struct cpath x;
  int32_t var = n->slot + 2;
  if (!path_of(b, n->a, &x) || n->slot < 0 || var >= CLOSURE_MAX_LOCALS) return NULL;
  /* The predicate runs once per element: no host call in it. */
  struct cnode *body = build(b, n->b, false);
  if (!body) return NULL;
  struct cnode *c = node(b, n->macro == MACRO_ALL      ? c_all
                            : n->macro == MACRO_EXISTS ? c_exists
                                                       : c_exists_one);
  if (!c) return NULL;
  c->path = x, c->a = body, c->var = (uint16_t)var;
  hoist(b, c, body, (uint32_t)var);
  return c;
}

#define CHAIN_MAX 16

/* The operands of a chain of n's operator (a && b && c) into list, left to
 * right; false if one has no closure or there are more than CHAIN_MAX. */
static bool chain_of(struct cbuild *b, const struct ast *n, enum tok_kind op, bool host_ok,
                     const struct cnode **list, uint32_t *len) {
  if (n->kind == AST_BINARY && n->op == op)
    return chain_of(b, n->a, op, false, list, len) && chain_of(b, n->b, op, host_ok, list, len);
  if (*len == CHAIN_MAX) return false;
  return (list[(*len)++] = build(b, n, host_ok)) != NULL;
}

/* a && b && ... (or ||) as one node running its leaf tests inline; a
 * longer chain as nested pairs. */
static struct cnode *build_chain(struct cbuild *b, const struct ast *n, bool host_ok) {
  const struct cnode *list[CHAIN_MAX];
  uint32_t len = 0;
  if (chain_of(b, n, n->op, host_ok, list, &len)) {
    const struct cnode **l = arena_alloc(&b->p->arena, len * sizeof(*l));
    struct cnode *c = l ? node(b, n->op == TOK_ANDAND ? c_conj : c_disj) : NULL;
    if (!c) {
      b->rc = BATON_ETOOBIG;
      return NULL;
    }
    memcpy(l, list, len * sizeof(*l));
    c->list = l, c->n_list = (uint8_t)len;
    hoist(b, c, c, UINT32_MAX);
    return c;
  }
  if (b->rc) return NULL;
  struct cnode *l = build(b, n->a, false), *r = l ? build(b, n->b, host_ok) : NULL;
  struct cnode *c = r ? node(b, n->op == TOK_ANDAND ? c_and : c_or) : NULL;
  if (c) c->a = l, c->b = r;
  return c;
}

/*
 * The closure of n, or NULL if some part of it has none. host_ok: n is the
 * last thing the condition evaluates (see the top of the file), so it may
 * ask the host.
 */
static struct cnode *build(struct cbuild *b, const struct ast *n, bool host_ok) {
  struct cpath x;
  switch (n->kind) {
    case AST_LIT:
      if (n->lit.kind != EXPR_BOOL) return NULL;
      return node(b, n->lit.v.b ? c_true : c_false);
    case AST_IDENT:
    case AST_SELECT: {
      if (n->kind == AST_SELECT && n->test_only) {
        struct cnode *c = node(b, c_has);
        if (!c || !path_of(b, n->a, &c->path) || !field_of(b, n, &c->path2.f[0])) return NULL;
        return c;
      }
      if (!path_of(b, n, &x)) return NULL;
      struct cnode *c = node(b, x.n == 1 ? c_bool1 : c_bool);
      if (c) c->path = x;
      return c;
    }
    case AST_UNARY: {
      if (n->op != TOK_BANG) return NULL;
      struct cnode *a = build(b, n->a, host_ok), *c = a ? node(b, c_not) : NULL;
      if (c) c->a = a;
      return c;
    }
    case AST_BINARY:
      if (n->op == TOK_ANDAND || n->op == TOK_OROR) return build_chain(b, n, host_ok);
      if (n->op == TOK_IN) return build_in(b, n);
      if (rel_of(n->op) >= 0) return build_compare(b, n, host_ok);
      return NULL;
    case AST_COND: {
      struct cnode *t = build(b, n->a, false), *y = t ? build(b, n->b, host_ok) : NULL;
      struct cnode *z = y ? build(b, n->c, host_ok) : NULL, *c = z ? node(b, c_cond) : NULL;
      if (c) c->a = t, c->b = y, c->c = z;
      return c;
    }
    case AST_CALL:
      return build_call(b, n, host_ok);
    case AST_COMPR:
      return build_macro(b, n);
    default:
      return NULL;
  }
}

static bool is_str_test48(const struct cnode *t) {
  return t->test == T_STR_EQ48 || t->test == T_STR_NE48;
}

static bool is_str_test(const struct cnode *t) {
  return t->test == T_STR_EQ || t->test == T_STR_NE || is_str_test48(t);
}

int closure_compile(struct expr_program *p, const struct ast *root) {
  struct cbuild b = {.p = p};
  if (p->n_locals > CLOSURE_MAX_LOCALS) return 0;
  const struct cnode *c = build(&b, root, true);
  if (b.rc) return b.rc;
  if (!c) return 0;
  /* Nothing points at the root node, so it can move into p, where the
   * ways in reach it without a load. */
  p->root = *c;
  c = p->closure = &p->root;
  /* The way in: a specialised one for a leaf test or a chain of them on
   * variables (hoisted with no macro variable: on_item is false). */
  if (c->test && !c->path.local)
    p->entry = root_fns[c->path.f[0].len > SHORT_WORD_MAX][c->test];
  else if ((c->fn == c_conj || c->fn == c_disj) && c->n_hoisted)
    p->entry = c->n_list != 2 ? root_chain
               : is_str_test(c->list[0]) && is_str_test(c->list[1])
                   ? str_chain2_fns[c->list[0]->path.f[0].len > SHORT_WORD_MAX ||
                                    c->list[1]->path.f[0].len > SHORT_WORD_MAX]
                                   [is_str_test48(c->list[0]) && is_str_test48(c->list[1])]
                                   [c->fn == c_conj]
                   : root_chain2;
  else if (c->fn == c_host_int)
    p->entry = root_host_int;
  else
    p->entry = closure_run;
  return 0;
}

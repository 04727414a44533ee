/*
 * The renderer: walks a compiled template's resolved tree with the caller's
 * data and appends to a capped buffer. It never changes the template; all
 * render state (variables, counters, cycle positions, scratch values) lives
 * in a struct rctx and an arena owned by one baton_template_render call.
 *
 * Scopes follow Ruby Liquid: loop variables and include/render arguments are
 * a stack searched innermost first; assign and capture write to the
 * template's one flat scope; increment/decrement counters come next; the
 * caller's top-level variables last. {% render %} gets fresh scopes (it sees
 * the caller's top-level variables but not the including template's
 * assignments); {% include %} shares them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template_int.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/tz.h"

enum { R_BREAK = 1, R_CONTINUE = 2 };

static int rerr(struct rctx *r, const char *at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rerr(struct rctx *r, const char *at, int code, const char *fmt, ...) {
  if (!r->err) return code;
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return tpl_error(r->err, &r->t->src, at, code, "%s", msg);
}

int filter_fail(struct rctx *r, int code, const char *fmt, ...) {
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return rerr(r, r->err_at, code, "%s", msg);
}

static int emit(struct rctx *r, const char *at, const char *p, size_t n) {
  int rc = buf_append(r->out, p, n);
  if (rc) return rerr(r, at, rc, "output is over the cap of %zu bytes", r->out->max);
  return 0;
}

static int emit_escaped(struct rctx *r, const char *at, const char *p, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    const char *rep;
    switch (p[i]) {
    case '&': rep = "&amp;"; break;
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '"': rep = "&quot;"; break;
    case '\'': rep = "&#39;"; break;
    default: continue;
    }
    int rc = emit(r, at, p + start, i - start);
    if (!rc) rc = emit(r, at, rep, strlen(rep));
    if (rc) return rc;
    start = i + 1;
  }
  return emit(r, at, p + start, n - start);
}

static int emit_value(struct rctx *r, const char *at, const struct value *v) {
  if (v->type == VAL_STR) {
    if (r->escape && !v->safe) return emit_escaped(r, at, v->s.p, v->s.len);
    return emit(r, at, v->s.p, v->s.len);
  }
  if (!r->escape || v->type == VAL_INT || v->type == VAL_FLOAT || v->type == VAL_BOOL ||
      v->type == VAL_NIL) {
    int rc = value_write(v, r->out);
    if (rc) return rerr(r, at, rc, "output is over the cap of %zu bytes", r->out->max);
    return 0;
  }
  struct value s = value_to_str(r->arena, v);
  return emit_escaped(r, at, s.s.p, s.s.len);
}

static bool name_eq(const char *a, size_t alen, const char *b, size_t blen) {
  return alen == blen && !memcmp(a, b, alen);
}

static struct value lookup(struct rctx *r, const char *name, size_t len) {
  for (size_t i = r->n_stack; i-- > 0;)
    if (name_eq(r->stack[i].name, r->stack[i].len, name, len)) return r->stack[i].v;
  if (r->loop && ((!r->loop->tablerow && name_eq(name, len, "forloop", 7)) ||
                  (r->loop->tablerow && name_eq(name, len, "tablerowloop", 12))))
    return (struct value){.type = VAL_FORLOOP, .loop = r->loop};
  /* Most renders assign little and count nothing: skip hashing into empty maps. */
  struct value *v = r->locals->len ? smap_get(r->locals, name, len) : NULL;
  if (v) return *v;
  int64_t *c = r->counters->len ? smap_get(r->counters, name, len) : NULL;
  if (c) return value_int(*c);
  if (r->env->vars) {
    struct value root = {.type = VAL_JSON, .j = r->env->vars};
    if (cJSON_IsObject(r->env->vars)) return value_member(&root, name, len);
  }
  return value_nil();
}

static void push_binding(struct rctx *r, const char *name, size_t len, struct value v) {
  if (r->n_stack == r->cap_stack) {
    r->cap_stack = r->cap_stack ? r->cap_stack * 2 : 16;
    struct binding *s = tpl_arena_alloc(r->arena, r->cap_stack * sizeof(*s));
    if (r->n_stack) memcpy(s, r->stack, r->n_stack * sizeof(*s));
    r->stack = s;
  }
  r->stack[r->n_stack++] = (struct binding){name, len, v};
}

static struct value index_value(struct rctx *r, const struct value *cur, const struct value *k) {
  if (k->type == VAL_STR) return value_member(cur, k->s.p, k->s.len);
  if ((k->type == VAL_INT || k->type == VAL_FLOAT) && value_is_seq(cur)) {
    int64_t i = k->type == VAL_INT ? k->i : double_to_i64(k->f);
    int64_t n = (int64_t)value_size(cur);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return value_nil();
    return value_at(cur, (size_t)i);
  }
  if (k->type == VAL_INT && cur->type == VAL_JSON && cJSON_IsObject(cur->j)) {
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)k->i);
    return value_member(cur, tmp, (size_t)n);
  }
  (void)r;
  return value_nil();
}

static int eval_path(struct rctx *r, const struct expr *e, struct value *out) {
  const struct segment *sg = &e->path.seg[0];
  struct value cur;
  if (sg->key) {
    cur = lookup(r, sg->key, sg->key_len);
  } else {
    struct value k;
    int rc = eval_expr(r, sg->idx, &k);
    if (rc) return rc;
    k = value_to_str(r->arena, &k);
    cur = lookup(r, k.s.p, k.s.len);
  }
  for (size_t i = 1; i < e->path.n_seg && cur.type != VAL_NIL; i++) {
    sg = &e->path.seg[i];
    if (sg->key) {
      struct value obj = cur;
      cur = value_member(&obj, sg->key, sg->key_len);
      /* obj.first of an object without a "first" member is its first [key, value] pair. */
      if (cur.type == VAL_NIL && obj.type == VAL_JSON && cJSON_IsObject(obj.j) && obj.j->child &&
          sg->key_len == 5 && !memcmp(sg->key, "first", 5)) {
        struct value *pair = tpl_arena_alloc(r->arena, 2 * sizeof(*pair));
        pair[0] = value_str(obj.j->child->string, strlen(obj.j->child->string));
        pair[1] = value_from_json(obj.j->child);
        cur = (struct value){.type = VAL_ARRAY, .a = {pair, 2}};
      }
    } else {
      struct value k;
      int rc = eval_expr(r, sg->idx, &k);
      if (rc) return rc;
      cur = index_value(r, &cur, &k);
    }
  }
  *out = cur;
  return 0;
}

static int to_int(struct rctx *r, const struct expr *e, const struct value *v, int64_t *out) {
  struct value n = value_to_num(v);
  bool numeric_str = false;
  if (v->type == VAL_STR) {
    size_t i = v->s.len && v->s.p[0] == '-' ? 1 : 0;
    numeric_str = i < v->s.len;
    for (; i < v->s.len; i++)
      if ((v->s.p[i] < '0' || v->s.p[i] > '9') && v->s.p[i] != '.') numeric_str = false;
  }
  if (v->type != VAL_INT && v->type != VAL_FLOAT && !numeric_str && v->type != VAL_NIL)
    return rerr(r, e->at, BATON_ETYPE, "expected a number");
  *out = n.type == VAL_INT ? n.i : double_to_i64(n.f);
  return 0;
}

static int eval_filters(struct rctx *r, const struct expr *e, struct value *out) {
  struct value cur;
  int rc = eval_expr(r, e->filt.base, &cur);
  if (rc) return rc;
  for (size_t i = 0; i < e->filt.n_calls; i++) {
    const struct filter_call *fc = &e->filt.calls[i];
    if (!fc->def) continue; /* unknown filter in a lax template: the value passes through */
    struct value argv[2];
    struct value *kwv = fc->n_kw ? tpl_arena_alloc(r->arena, fc->n_kw * sizeof(*kwv)) : NULL;
    for (size_t j = 0; j < fc->n_args && j < 2; j++)
      if ((rc = eval_expr(r, fc->args[j], &argv[j]))) return rc;
    for (size_t j = 0; j < fc->n_kw; j++)
      if ((rc = eval_expr(r, fc->kw_vals[j], &kwv[j]))) return rc;
    struct fargs a = {argv, fc->n_args, fc->kw_names, fc->kw_lens, kwv, fc->n_kw};
    struct value res = value_nil();
    r->err_at = fc->at;
    if ((rc = fc->def->fn(r, &cur, &a, &res))) return rc;
    /* Bounds on work: no value grows past the output cap or the loop bound, and the
       scratch arena stays under its budget however a loop feeds filters. */
    if (res.type == VAL_ARRAY && res.a.n > TPL_MAX_ITERATIONS)
      return rerr(r, fc->at, BATON_ETOOBIG, "array over %u items", TPL_MAX_ITERATIONS);
    if (res.type == VAL_STR && res.s.len > r->value_cap)
      return rerr(r, fc->at, BATON_ETOOBIG, "string over %zu bytes", r->value_cap);
    if (r->arena->total > TPL_MAX_SCRATCH)
      return rerr(r, fc->at, BATON_ETOOBIG, "render used over %u MiB of scratch memory",
                  TPL_MAX_SCRATCH >> 20);
    cur = res;
  }
  *out = cur;
  return 0;
}

static bool contains(const struct value *l, const struct value *rv, struct arena *a) {
  if (!value_truthy(rv)) return false; /* Ruby Liquid: `left && right && left.include?(right)` */
  if (l->type == VAL_STR) {
    if (rv->type == VAL_NIL) return false;
    struct value s = value_to_str(a, rv);
    if (!s.s.len) return true;
    return s.s.len <= l->s.len && memmem(l->s.p, l->s.len, s.s.p, s.s.len) != NULL;
  }
  if (value_is_seq(l)) {
    size_t n = value_size(l);
    for (size_t i = 0; i < n; i++) {
      struct value x = value_at(l, i);
      if (tpl_value_equal(&x, rv)) return true;
    }
    return false;
  }
  if (l->type == VAL_JSON && rv->type == VAL_STR) {
    struct value m = value_member(l, rv->s.p, rv->s.len);
    return m.type != VAL_NIL || cJSON_GetObjectItemCaseSensitive(l->j, "") != NULL;
  }
  return false;
}

int eval_expr(struct rctx *r, const struct expr *e, struct value *out) {
  int rc;
  switch (e->kind) {
  case EX_LIT: *out = e->lit; return 0;
  case EX_PATH: return eval_path(r, e, out);
  case EX_FILTERED: return eval_filters(r, e, out);
  case EX_RANGE: {
    struct value lo, hi;
    int64_t a, b;
    if ((rc = eval_expr(r, e->range.lo, &lo)) || (rc = eval_expr(r, e->range.hi, &hi))) return rc;
    /* Range ends go through to_number: "abc" and nil count as 0, as in Ruby Liquid. */
    if (lo.type == VAL_STR) lo = value_to_num(&lo);
    if (hi.type == VAL_STR) hi = value_to_num(&hi);
    if ((rc = to_int(r, e->range.lo, &lo, &a)) || (rc = to_int(r, e->range.hi, &hi, &b))) return rc;
    int64_t span;
    if (b >= a && (__builtin_sub_overflow(b, a, &span) || span >= TPL_MAX_ITERATIONS))
      return rerr(r, e->at, BATON_ETOOBIG, "range has over %u items", TPL_MAX_ITERATIONS);
    *out = (struct value){.type = VAL_RANGE, .r = {a, b}};
    return 0;
  }
  case EX_AND:
  case EX_OR: {
    struct value l, rv;
    if ((rc = eval_expr(r, e->bin.l, &l)) || (rc = eval_expr(r, e->bin.r, &rv))) return rc;
    bool res = e->kind == EX_AND ? value_truthy(&l) && value_truthy(&rv)
                                 : value_truthy(&l) || value_truthy(&rv);
    *out = value_bool(res);
    return 0;
  }
  case EX_CONTAINS: {
    struct value l, rv;
    if ((rc = eval_expr(r, e->bin.l, &l)) || (rc = eval_expr(r, e->bin.r, &rv))) return rc;
    *out = value_bool(contains(&l, &rv, r->arena));
    return 0;
  }
  case EX_CMP: {
    struct value l, rv;
    if ((rc = eval_expr(r, e->bin.l, &l)) || (rc = eval_expr(r, e->bin.r, &rv))) return rc;
    if (e->op == CMP_EQ || e->op == CMP_NE) {
      bool eq = tpl_value_equal(&l, &rv);
      *out = value_bool(e->op == CMP_EQ ? eq : !eq);
      return 0;
    }
    int c;
    if (tpl_value_compare(&l, &rv, &c))
      return rerr(r, e->at, BATON_ETYPE, "cannot compare %s with %s",
                  l.type == VAL_STR ? "a string" : "a number", rv.type == VAL_STR ? "a string" : "a number");
    bool res = false;
    if (c != 2) {
      switch (e->op) {
      case CMP_LT: res = c < 0; break;
      case CMP_GT: res = c > 0; break;
      case CMP_LE: res = c <= 0; break;
      case CMP_GE: res = c >= 0; break;
      }
    }
    *out = value_bool(res);
    return 0;
  }
  }
  return 0;
}

static int render_body(struct rctx *r, const struct body *b);

static int64_t *counter(struct rctx *r, const char *name, size_t len) {
  int ins;
  void **slot = smap_upsert(r->counters, name, len, &ins);
  if (ins) {
    int64_t *c = tpl_arena_alloc(r->arena, sizeof(*c));
    /* A counter starts from a top-level variable of the same name if it is a number. */
    if (r->env->vars) {
      struct value root = {.type = VAL_JSON, .j = r->env->vars};
      struct value v = value_member(&root, name, len);
      if (v.type == VAL_INT) *c = v.i;
    }
    *slot = c;
  }
  return *slot;
}

/* Renders body into a fresh buffer (capture, ifchanged); returns the text in the arena. */
static int render_to_string(struct rctx *r, const struct body *b, struct value *out) {
  struct buf tmp, *saved = r->out;
  if (r->arena->total > TPL_MAX_SCRATCH)
    return rerr(r, b->n ? b->v[0]->at : NULL, BATON_ETOOBIG,
                "render used over %u MiB of scratch memory", TPL_MAX_SCRATCH >> 20);
  buf_init(&tmp, r->value_cap);
  r->out = &tmp;
  int rc = render_body(r, b);
  r->out = saved;
  if (rc >= 0) *out = value_str(tpl_arena_strndup(r->arena, tmp.ptr ? tmp.ptr : "", tmp.len), tmp.len);
  buf_release(&tmp);
  return rc;
}

static int count_iteration(struct rctx *r, const struct node *n) {
  if (++r->iterations > TPL_MAX_ITERATIONS)
    return rerr(r, n->at, BATON_ETOOBIG, "over %u loop iterations", TPL_MAX_ITERATIONS);
  return 0;
}

/* The items a for/tablerow visits, before offset and limit. */
static int loop_items(struct rctx *r, const struct node *n, struct value *items) {
  struct value c;
  int rc = eval_expr(r, n->expr, &c);
  if (rc) return rc;
  if (c.type == VAL_JSON && cJSON_IsObject(c.j)) {
    /* An object iterates as [key, value] pairs. */
    size_t len = (size_t)cJSON_GetArraySize(c.j), i = 0;
    struct value arr = {.type = VAL_ARRAY};
    arr.a.v = tpl_arena_alloc(r->arena, (len ? len : 1) * sizeof(struct value));
    for (const cJSON *m = c.j->child; m && i < len; m = m->next, i++) {
      struct value *pair = tpl_arena_alloc(r->arena, 2 * sizeof(*pair));
      pair[0] = value_str(m->string, strlen(m->string));
      pair[1] = value_from_json(m);
      arr.a.v[i] = (struct value){.type = VAL_ARRAY, .a = {pair, 2}};
    }
    arr.a.n = i;
    *items = arr;
  } else if (value_is_seq(&c)) {
    *items = c.type == VAL_RANGE ? c : value_to_array(r->arena, &c);
  } else if (c.type == VAL_STR && c.s.len) {
    *items = value_to_array(r->arena, &c);
  } else {
    *items = (struct value){.type = VAL_ARRAY};
  }
  return 0;
}

static int render_for(struct rctx *r, const struct node *n) {
  struct value items;
  int rc = loop_items(r, n, &items);
  if (rc) return rc;
  int64_t len = (int64_t)value_size(&items), from = 0, to = len;
  if (n->loop->offset_continue) {
    int64_t *o = smap_get(r->offsets, n->loop->loop_name, n->loop->loop_name_len);
    from = o ? *o : 0;
  } else if (n->loop->offset) {
    struct value v;
    if ((rc = eval_expr(r, n->loop->offset, &v)) || (rc = to_int(r, n->loop->offset, &v, &from))) return rc;
  }
  if (from < 0) from = 0;
  if (n->loop->limit) {
    struct value v;
    int64_t lim;
    if ((rc = eval_expr(r, n->loop->limit, &v)) || (rc = to_int(r, n->loop->limit, &v, &lim))) return rc;
    if (lim < 0) lim = 0;
    if (from > len) from = len;
    to = lim < len - from ? from + lim : len;
  }
  if (from > len) from = len;
  if (to < from) to = from;
  int64_t count = to - from;
  {
    int ins;
    void **slot = smap_upsert(r->offsets, n->loop->loop_name, n->loop->loop_name_len, &ins);
    if (ins) *slot = tpl_arena_alloc(r->arena, sizeof(int64_t));
    *(int64_t *)*slot = to;
  }
  if (count == 0) return n->kind == ND_FOR ? render_body(r, &n->loop->else_body) : 0;
  struct loop lp = {.length = count, .parent = r->loop && !r->loop->detached ? r->loop : NULL,
                    .name = n->loop->loop_name,
                    .name_len = n->loop->loop_name_len};
  if (n->kind == ND_TABLEROW) {
    lp.tablerow = true, lp.cols = count;
    if (n->loop->cols) {
      struct value v;
      if ((rc = eval_expr(r, n->loop->cols, &v)) || (rc = to_int(r, n->loop->cols, &v, &lp.cols))) return rc;
      if (lp.cols <= 0) lp.cols = count;
    }
    if ((rc = emit(r, n->at, "<tr class=\"row1\">\n", 18))) return rc;
  }
  const struct loop *saved = r->loop;
  size_t base = r->n_stack;
  push_binding(r, n->name, n->name_len, value_nil());
  r->loop = &lp;
  for (int64_t k = 0; k < count; k++) {
    if ((rc = count_iteration(r, n))) break;
    int64_t idx = n->loop->reversed ? to - 1 - k : from + k;
    r->stack[base].v = value_at(&items, (size_t)idx);
    lp.index0 = k;
    if (lp.tablerow) {
      char tmp[64];
      int m = snprintf(tmp, sizeof(tmp), "<td class=\"col%lld\">", (long long)(lp.col + 1));
      if ((rc = emit(r, n->at, tmp, (size_t)m))) break;
    }
    int body_rc = render_body(r, &n->body);
    if (body_rc < 0) {
      rc = body_rc;
      break;
    }
    if (lp.tablerow) {
      if ((rc = emit(r, n->at, "</td>", 5))) break;
      if (lp.col == lp.cols - 1 && k != count - 1 && body_rc != R_BREAK) {
        char tmp[64];
        int m = snprintf(tmp, sizeof(tmp), "</tr>\n<tr class=\"row%lld\">", (long long)(lp.row + 2));
        if ((rc = emit(r, n->at, tmp, (size_t)m))) break;
      }
      if (++lp.col == lp.cols) lp.col = 0, lp.row++;
    }
    if (body_rc == R_BREAK) {
      rc = 0;
      break;
    }
    rc = 0;
  }
  r->loop = saved;
  r->n_stack = base;
  if (!rc && lp.tablerow) rc = emit(r, n->at, "</tr>\n", 6);
  return rc;
}

static int render_include(struct rctx *r, const struct node *n) {
  struct value name;
  int rc = eval_expr(r, n->call->tpl_name, &name);
  if (rc) return rc;
  if (name.type != VAL_STR) return rerr(r, n->at, BATON_ETYPE, "content block name is not a string");
  /* Each include counts as an iteration, so two includes of itself cannot take 2^64 steps. */
  if ((rc = count_iteration(r, n))) return rc;
  if (r->include_depth >= TPL_MAX_INCLUDE_DEPTH)
    return rerr(r, n->at, BATON_ETOOBIG, "content blocks nested over %d deep", TPL_MAX_INCLUDE_DEPTH);
  const struct baton_template *child = NULL;
  if (!r->env->lookup || r->env->lookup(r->env->ud, name.s.p, name.s.len, &child) || !child)
    return rerr(r, n->at, BATON_ENOENT, "no content block named '%.*s'", (int)MIN(name.s.len, 60),
                name.s.p);
  /* Arguments are evaluated in the caller's scope, before any scope changes. */
  struct value *kw = n->call->n_kw ? tpl_arena_alloc(r->arena, n->call->n_kw * sizeof(*kw)) : NULL;
  for (size_t i = 0; i < n->call->n_kw; i++)
    if ((rc = eval_expr(r, n->call->kw_vals[i], &kw[i]))) return rc;
  struct value with = value_nil();
  if (n->call->with && (rc = eval_expr(r, n->call->with, &with))) return rc;
  const char *bind_name = n->name ? n->name : name.s.p;
  size_t bind_len = n->name ? n->name_len : name.s.len;

  struct rctx sub = *r;
  struct smap locals, counters, cycles, offsets;
  bool isolated = n->kind == ND_RENDER;
  if (isolated) {
    smap_init(&locals), smap_init(&counters), smap_init(&cycles), smap_init(&offsets);
    sub.locals = &locals, sub.counters = &counters, sub.cycles = &cycles, sub.offsets = &offsets;
    sub.stack = NULL, sub.n_stack = sub.cap_stack = 0, sub.loop = NULL;
  }
  sub.t = child;
  sub.include_depth++;
  /*
   * render's arguments are the snippet's own variables (an assign replaces
   * them); include's shadow the shared scope for the include only.
   */
  for (size_t i = 0; i < n->call->n_kw; i++) {
    if (isolated) {
      int ins;
      struct value *box = tpl_arena_alloc(r->arena, sizeof(*box));
      *box = kw[i];
      *smap_upsert(sub.locals, n->call->kw_names[i], n->call->kw_lens[i], &ins) = box;
    } else {
      push_binding(&sub, n->call->kw_names[i], n->call->kw_lens[i], kw[i]);
    }
  }
  if (n->call->with && n->flag && value_is_seq(&with)) {
    struct value items = with.type == VAL_RANGE ? with : value_to_array(r->arena, &with);
    int64_t count = (int64_t)value_size(&items);
    struct loop lp = {.length = count, .detached = true};
    size_t slot = sub.n_stack;
    push_binding(&sub, bind_name, bind_len, value_nil());
    if (isolated) sub.loop = &lp;
    for (int64_t k = 0; k < count && rc >= 0; k++) {
      if (++sub.iterations > TPL_MAX_ITERATIONS) { /* sub's count is the one copied back */
        rc = rerr(r, n->at, BATON_ETOOBIG, "over %u loop iterations", TPL_MAX_ITERATIONS);
        break;
      }
      sub.stack[slot].v = value_at(&items, (size_t)k);
      lp.index0 = k;
      rc = render_body(&sub, &child->root);
      if (rc == R_BREAK && isolated) {
        rc = 0;
        break;
      }
      if (rc > 0 && !isolated) break;
    }
  } else {
    if (n->call->with) push_binding(&sub, bind_name, bind_len, with);
    rc = render_body(&sub, &child->root);
  }
  r->iterations = sub.iterations; /* the budget is per render, snippets included */
  if (isolated) {
    smap_release(&locals), smap_release(&counters), smap_release(&cycles), smap_release(&offsets);
    if (rc > 0) rc = 0; /* break does not leave a rendered snippet */
  } else {
    /* Shared scopes: bindings the child pushed are dropped, assignments stay. */
    r->stack = sub.stack, r->cap_stack = sub.cap_stack;
    r->ifchanged = sub.ifchanged, r->ifchanged_len = sub.ifchanged_len;
  }
  return rc;
}

static int render_node(struct rctx *r, const struct node *n) {
  int rc = 0;
  switch (n->kind) {
  case ND_TEXT: return emit(r, n->at, n->text, n->text_len);
  case ND_OUTPUT: {
    if (!n->expr) return 0;
    struct value v;
    if ((rc = eval_expr(r, n->expr, &v))) return rc;
    return emit_value(r, n->at, &v);
  }
  case ND_IF:
    for (size_t i = 0; i < n->n_branches; i++) {
      const struct branch *b = &n->branches[i];
      if (b->cond) {
        struct value v;
        if ((rc = eval_expr(r, b->cond, &v))) return rc;
        bool t = value_truthy(&v);
        if (n->negate && i == 0) t = !t;
        if (!t) continue;
      }
      return render_body(r, &b->body);
    }
    return 0;
  case ND_CASE: {
    struct value subj;
    if ((rc = eval_expr(r, n->expr, &subj))) return rc;
    bool matched = false;
    for (size_t i = 0; i < n->n_branches; i++) {
      const struct branch *b = &n->branches[i];
      if (!b->whens) {
        if (!matched && (rc = render_body(r, &b->body))) return rc;
        continue;
      }
      for (size_t j = 0; j < b->n_whens; j++) {
        struct value v;
        if ((rc = eval_expr(r, b->whens[j], &v))) return rc;
        /* Every matching value renders its block, as in Ruby Liquid. */
        if (tpl_value_equal(&subj, &v)) {
          matched = true;
          if ((rc = render_body(r, &b->body))) return rc;
        }
      }
    }
    return 0;
  }
  case ND_FOR:
  case ND_TABLEROW: return render_for(r, n);
  case ND_ASSIGN:
  case ND_CAPTURE: {
    struct value v;
    if (n->kind == ND_ASSIGN)
      rc = eval_expr(r, n->expr, &v);
    else
      rc = render_to_string(r, &n->body, &v);
    if (rc) return rc;
    int ins;
    void **slot = smap_upsert(r->locals, n->name, n->name_len, &ins);
    struct value *box = tpl_arena_alloc(r->arena, sizeof(*box));
    *box = v;
    *slot = box;
    return 0;
  }
  case ND_INCREMENT:
  case ND_DECREMENT: {
    int64_t *c = counter(r, n->name, n->name_len);
    if (n->kind == ND_DECREMENT) --*c;
    char tmp[32];
    int m = snprintf(tmp, sizeof(tmp), "%lld", (long long)*c);
    if (n->kind == ND_INCREMENT) ++*c;
    return emit(r, n->at, tmp, (size_t)m);
  }
  case ND_CYCLE: {
    const char *key = n->name;
    size_t key_len = n->name_len;
    if (n->expr) {
      struct value g;
      if ((rc = eval_expr(r, n->expr, &g))) return rc;
      g = value_to_str(r->arena, &g);
      /* Named groups live apart from unnamed ones with the same text. */
      char *k = tpl_arena_alloc(r->arena, g.s.len + 2);
      k[0] = '\x01';
      memcpy(k + 1, g.s.p, g.s.len);
      key = k, key_len = g.s.len + 1;
    }
    int ins;
    void **slot = smap_upsert(r->cycles, key, key_len, &ins);
    if (ins) *slot = tpl_arena_alloc(r->arena, sizeof(int64_t));
    int64_t *pos = *slot;
    if (!n->cycle->n_items) return 0;
    /* Ruby Liquid's rule: the group's position wraps at this tag's own value count. */
    struct value v = value_nil();
    if (*pos < (int64_t)n->cycle->n_items && (rc = eval_expr(r, n->cycle->items[*pos], &v))) return rc;
    *pos = *pos + 1 >= (int64_t)n->cycle->n_items ? 0 : *pos + 1;
    return emit_value(r, n->at, &v);
  }
  case ND_BREAK: return R_BREAK;
  case ND_CONTINUE: return R_CONTINUE;
  case ND_INCLUDE:
  case ND_RENDER: return render_include(r, n);
  case ND_IFCHANGED: {
    struct value v;
    if ((rc = render_to_string(r, &n->body, &v)) < 0) return rc;
    if (r->ifchanged && r->ifchanged_len == v.s.len && !memcmp(r->ifchanged, v.s.p, v.s.len))
      return 0;
    r->ifchanged = v.s.p, r->ifchanged_len = v.s.len;
    return emit(r, n->at, v.s.p, v.s.len);
  }
  case ND_AUTOESCAPE: {
    bool saved = r->escape;
    r->escape = n->flag;
    rc = render_body(r, &n->body);
    r->escape = saved;
    return rc;
  }
  }
  return 0;
}

static int render_body(struct rctx *r, const struct body *b) {
  for (size_t i = 0; i < b->n; i++) {
    int rc = render_node(r, b->v[i]);
    if (rc) return rc;
  }
  return 0;
}

int render_zone_offset(struct rctx *r, const char *zone, int64_t t, int32_t *off) {
  const char *name = zone ? zone : r->env->time_zone;
  *off = 0;
  if (!name || !*name) return 0;
  const struct tz *z = tz_get(name);
  if (!z) return filter_fail(r, BATON_EINVAL, "unknown time zone '%s'", name);
  *off = tz_offset_at(z, t, NULL);
  return 0;
}

int baton_template_render(const struct baton_template *t, const struct template_env *env,
                          struct buf *out, struct template_error *err) {
  static const struct template_env no_env;
  _Alignas(16) unsigned char first_chunk[4096];
  struct arena arena;
  struct smap locals, counters, cycles, offsets;
  tpl_arena_init_buf(&arena, first_chunk, sizeof(first_chunk));
  smap_init(&locals), smap_init(&counters), smap_init(&cycles), smap_init(&offsets);
  struct rctx r = {.t = t, .env = env ? env : &no_env, .arena = &arena, .out = out, .err = err,
                   .locals = &locals, .counters = &counters, .cycles = &cycles, .offsets = &offsets,
                   .escape = t->html_escape};
  r.value_cap = out->max < TPL_DEFAULT_VALUE_CAP * 64 ? out->max : TPL_DEFAULT_VALUE_CAP;
  int rc = render_body(&r, &t->root);
  if (rc > 0) rc = 0; /* break or continue outside a loop ends the template quietly */
  smap_release(&locals), smap_release(&counters), smap_release(&cycles), smap_release(&offsets);
  tpl_arena_release(&arena);
  return rc;
}

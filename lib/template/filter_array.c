/*
 * Array filters: first/last/size, join, concat, reverse, sorting, uniq,
 * compact, map, sum, and the property tests where/reject/find/find_index/has.
 * Inputs may be cJSON arrays, ranges or arrays made during the render; a
 * single non-array value acts as an array of one, nil as an empty array.
 * Results are arrays in the render arena that point at the input's items.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "template/template_int.h"
#include "util/common.h"

static void flatten_into(struct rctx *r, const struct value *v, struct value *out, size_t *n, size_t cap,
                         int depth) {
  size_t len = value_size(v);
  for (size_t i = 0; i < len && *n < cap; i++) {
    struct value x = value_at(v, i);
    if (value_is_seq(&x) && depth < TPL_MAX_DEPTH)
      flatten_into(r, &x, out, n, cap, depth + 1);
    else
      out[(*n)++] = x;
  }
}

static size_t count_flat(const struct value *v, int depth) {
  size_t len = value_size(v), n = 0;
  for (size_t i = 0; i < len; i++) {
    struct value x = value_at(v, i);
    n += value_is_seq(&x) && depth < TPL_MAX_DEPTH ? count_flat(&x, depth + 1) : 1;
  }
  return n;
}

/* The input as a flat array, as Ruby Liquid's filters see it (nested arrays are flattened). */
static struct value as_array(struct rctx *r, const struct value *in) {
  struct value a = value_to_array(r->arena, in);
  bool nested = false;
  for (size_t i = 0; i < a.a.n && !nested; i++) nested = value_is_seq(&a.a.v[i]);
  if (!nested) return a;
  size_t cap = count_flat(&a, 0), n = 0;
  struct value out = {.type = VAL_ARRAY};
  out.a.v = tpl_arena_alloc(r->arena, (cap ? cap : 1) * sizeof(struct value));
  flatten_into(r, &a, out.a.v, &n, cap, 0);
  out.a.n = n;
  return out;
}

static struct value new_array(struct rctx *r, size_t cap) {
  struct value v = {.type = VAL_ARRAY};
  v.a.v = tpl_arena_alloc(r->arena, (cap ? cap : 1) * sizeof(struct value));
  return v;
}

int f_first(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  if (in->type == VAL_STR) {
    size_t n = in->s.len ? 1 : 0;
    while (n < in->s.len && ((unsigned char)in->s.p[n] & 0xC0) == 0x80) n++;
    *out = value_str(in->s.p, n);
    return 0;
  }
  *out = value_is_seq(in) && value_size(in) ? value_at(in, 0) : value_nil();
  return 0;
}

int f_last(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  if (in->type == VAL_STR) {
    size_t n = in->s.len;
    while (n && ((unsigned char)in->s.p[n - 1] & 0xC0) == 0x80) n--;
    if (n) n--;
    while (n && ((unsigned char)in->s.p[n] & 0xC0) == 0x80) n--;
    *out = value_str(in->s.p + n, in->s.len - n);
    return 0;
  }
  size_t n = value_is_seq(in) ? value_size(in) : 0;
  *out = n ? value_at(in, n - 1) : value_nil();
  return 0;
}

int f_size(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  if (in->type == VAL_JSON && cJSON_IsObject(in->j)) {
    struct value s = value_member(in, "size", 4);
    *out = s;
    return 0;
  }
  *out = value_int((int64_t)value_size(in));
  return 0;
}

int f_join(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  if (!value_is_seq(in)) {
    *out = fstr(r, in);
    return 0;
  }
  struct value sep = a->n ? fstr(r, farg(a, 0)) : value_str(" ", 1);
  struct sbuf b;
  sb_init(r, &b);
  size_t n = value_size(in);
  for (size_t i = 0; i < n; i++) {
    struct value x = value_at(in, i);
    if (i) sb_append(&b, sep.s.p, sep.s.len);
    sb_value(&b, &x);
  }
  return sb_finish(r, &b, out);
}

int f_concat(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  const struct value *other = farg(a, 0);
  if (!value_is_seq(other)) return filter_fail(r, BATON_ETYPE, "concat expects an array");
  struct value x = as_array(r, in), y = value_to_array(r->arena, other);
  struct value res = new_array(r, x.a.n + y.a.n);
  memcpy(res.a.v, x.a.v, x.a.n * sizeof(struct value));
  memcpy(res.a.v + x.a.n, y.a.v, y.a.n * sizeof(struct value));
  res.a.n = x.a.n + y.a.n;
  *out = res;
  return 0;
}

int f_reverse(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = as_array(r, in);
  struct value res = new_array(r, x.a.n);
  for (size_t i = 0; i < x.a.n; i++) res.a.v[i] = x.a.v[x.a.n - 1 - i];
  res.a.n = x.a.n;
  *out = res;
  return 0;
}

/* The item's property key, or the item itself when key is NULL. */
static struct value prop(const struct value *item, const struct value *key) {
  if (!key) return *item;
  if (key->type != VAL_STR) return value_nil();
  return value_member(item, key->s.p, key->s.len);
}

struct sort_item {
  struct value key, item;
  size_t idx;
  bool natural;
};

/* nil sorts last; numbers before strings; strings bytewise (or case-folded). */
static int sort_cmp(const void *pa, const void *pb) {
  const struct sort_item *a = pa, *b = pb;
  bool an = a->key.type == VAL_NIL, bn = b->key.type == VAL_NIL;
  if (an || bn) {
    if (an && bn) return a->idx < b->idx ? -1 : 1;
    return an ? 1 : -1;
  }
  int c = 0;
  if (a->natural && a->key.type == VAL_STR && b->key.type == VAL_STR) {
    size_t n = MIN(a->key.s.len, b->key.s.len);
    c = strncasecmp(a->key.s.p, b->key.s.p, n);
    if (!c) c = a->key.s.len < b->key.s.len ? -1 : a->key.s.len > b->key.s.len;
  } else if (tpl_value_compare(&a->key, &b->key, &c) || c == 2) {
    bool anum = a->key.type == VAL_INT || a->key.type == VAL_FLOAT;
    bool bnum = b->key.type == VAL_INT || b->key.type == VAL_FLOAT;
    c = anum == bnum ? 0 : anum ? -1 : 1;
  }
  if (!c) c = a->idx < b->idx ? -1 : 1;
  return c;
}

static int sort_impl(struct rctx *r, const struct value *in, const struct fargs *a, bool natural,
                     struct value *out) {
  struct value x = as_array(r, in);
  const struct value *key = a->n && farg(a, 0)->type != VAL_NIL ? farg(a, 0) : NULL;
  struct sort_item *items = tpl_arena_alloc(r->arena, (x.a.n + 1) * sizeof(*items));
  for (size_t i = 0; i < x.a.n; i++) {
    items[i] = (struct sort_item){prop(&x.a.v[i], key), x.a.v[i], i, natural};
    /* sort_natural compares printed forms, case-folded. */
    if (natural && items[i].key.type != VAL_NIL) items[i].key = fstr(r, &items[i].key);
  }
  qsort(items, x.a.n, sizeof(*items), sort_cmp);
  struct value res = new_array(r, x.a.n);
  for (size_t i = 0; i < x.a.n; i++) res.a.v[i] = items[i].item;
  res.a.n = x.a.n;
  *out = res;
  return 0;
}
int f_sort(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return sort_impl(r, in, a, false, out);
}
int f_sort_natural(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return sort_impl(r, in, a, true, out);
}

int f_uniq(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = as_array(r, in);
  const struct value *key = a->n ? farg(a, 0) : NULL;
  struct value res = new_array(r, x.a.n);
  /* Quadratic, bounded by the array's length; arrays in messages are short. */
  for (size_t i = 0; i < x.a.n; i++) {
    struct value k = prop(&x.a.v[i], key);
    bool seen = false;
    for (size_t j = 0; j < res.a.n && !seen; j++) {
      struct value kj = prop(&res.a.v[j], key);
      seen = tpl_value_equal(&k, &kj) && k.type == kj.type;
    }
    if (!seen) res.a.v[res.a.n++] = x.a.v[i];
  }
  *out = res;
  return 0;
}

int f_compact(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = as_array(r, in);
  const struct value *key = a->n ? farg(a, 0) : NULL;
  struct value res = new_array(r, x.a.n);
  for (size_t i = 0; i < x.a.n; i++) {
    struct value k = prop(&x.a.v[i], key);
    if (k.type != VAL_NIL) res.a.v[res.a.n++] = x.a.v[i];
  }
  *out = res;
  return 0;
}

int f_map(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = as_array(r, in);
  const struct value *key = farg(a, 0);
  struct value res = new_array(r, x.a.n);
  for (size_t i = 0; i < x.a.n; i++) {
    const struct value *it = &x.a.v[i];
    if (key->type != VAL_STR) {
      res.a.v[res.a.n++] = value_nil();
      continue;
    }
    if (it->type != VAL_JSON || !cJSON_IsObject(it->j)) {
      if (it->type == VAL_NIL) continue;
      return filter_fail(r, BATON_ETYPE, "map expects an array of objects");
    }
    res.a.v[res.a.n++] = prop(it, key);
  }
  *out = res;
  return 0;
}

int f_sum(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = as_array(r, in);
  const struct value *key = a->n ? farg(a, 0) : NULL;
  int64_t si = 0;
  double sf = 0;
  bool is_float = false;
  for (size_t i = 0; i < x.a.n; i++) {
    if (key && key->type != VAL_NIL && (x.a.v[i].type != VAL_JSON || !cJSON_IsObject(x.a.v[i].j)))
      return filter_fail(r, BATON_ETYPE, "sum with a property expects an array of objects");
    struct value k = prop(&x.a.v[i], key && key->type != VAL_NIL ? key : NULL);
    if (key && key->type != VAL_NIL && (k.type == VAL_NIL)) continue;
    if (k.type != VAL_INT && k.type != VAL_FLOAT && k.type != VAL_STR) continue;
    struct value n = value_to_num(&k);
    if (n.type == VAL_FLOAT) is_float = true, sf += n.f;
    else if (__builtin_add_overflow(si, n.i, &si)) is_float = true, sf += (double)n.i;
  }
  *out = is_float ? value_float(sf + (double)si) : value_int(si);
  return 0;
}

/*
 * where/reject/find/find_index/has share one test: item[key] == value, or
 * item[key] truthy when value is absent or nil. A string item "has" key when
 * it contains it (Ruby's String#[]).
 */
static bool item_matches(const struct value *item, const struct fargs *a) {
  const struct value *key = farg(a, 0);
  struct value k;
  if (item->type == VAL_JSON && cJSON_IsObject(item->j))
    k = key->type == VAL_STR ? value_member(item, key->s.p, key->s.len) : value_nil();
  else if (item->type == VAL_INT && key->type == VAL_INT)
    /* Ruby's Integer#[] reads bit key; any bit (0 or 1) is truthy there. */
    k = value_int(key->i >= 0 && key->i < 63 ? (item->i >> key->i) & 1 : item->i < 0);
  else if (item->type == VAL_STR && key->type == VAL_STR)
    k = memmem(item->s.p, item->s.len, key->s.p, key->s.len) ? *key : value_nil();
  else
    k = value_nil();
  const struct value *want = farg(a, 1);
  if (a->n < 2 || want->type == VAL_NIL) return value_truthy(&k);
  return tpl_value_equal(&k, want);
}

enum { SEL_WHERE, SEL_REJECT, SEL_FIND, SEL_FIND_INDEX, SEL_HAS };
static int select_impl(struct rctx *r, const struct value *in, const struct fargs *a, int mode,
                       struct value *out) {
  struct value x = as_array(r, in);
  struct value res = new_array(r, x.a.n);
  if (farg(a, 0)->type == VAL_NIL) {
    /* An undefined property selects nothing (and finds nothing). */
    *out = mode == SEL_HAS ? value_bool(false) : mode >= SEL_FIND ? value_nil() : res;
    return 0;
  }
  for (size_t i = 0; i < x.a.n; i++) {
    if (x.a.v[i].type == VAL_NIL) {
      /* Ruby Liquid fails on a nil item; the suite expects an empty result. */
      *out = value_nil();
      return 0;
    }
    if (x.a.v[i].type == VAL_INT && farg(a, 0)->type == VAL_STR)
      return filter_fail(r, BATON_ETYPE, "cannot read property '%.*s' of a number",
                         (int)MIN(farg(a, 0)->s.len, 40), farg(a, 0)->s.p);
    bool m = item_matches(&x.a.v[i], a);
    if (mode == SEL_REJECT) m = !m;
    if (!m) continue;
    switch (mode) {
    case SEL_FIND: *out = x.a.v[i]; return 0;
    case SEL_FIND_INDEX: *out = value_int((int64_t)i); return 0;
    case SEL_HAS: *out = value_bool(true); return 0;
    default: res.a.v[res.a.n++] = x.a.v[i];
    }
  }
  if (mode == SEL_FIND || mode == SEL_FIND_INDEX) *out = value_nil();
  else if (mode == SEL_HAS) *out = value_bool(false);
  else *out = res;
  return 0;
}
int f_where(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return select_impl(r, in, a, SEL_WHERE, out);
}
int f_reject(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return select_impl(r, in, a, SEL_REJECT, out);
}
int f_find(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return select_impl(r, in, a, SEL_FIND, out);
}
int f_find_index(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return select_impl(r, in, a, SEL_FIND_INDEX, out);
}
int f_has(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return select_impl(r, in, a, SEL_HAS, out);
}

/*
 * The filter table and what every filter shares: lookup by name (binary
 * search over filter_list.h, which is kept sorted) and argument helpers.
 * The filters themselves are in filter_string.c, filter_array.c,
 * filter_math.c, filter_date.c and filter_baton.c (Baton's own).
 */
#include <stdarg.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

static const struct filter_def filters[] = {
#define FILTER_DECL(name, fn, lo, hi) {#name, fn, lo, hi},
#include "template/filter_list.h"
#undef FILTER_DECL
};

const struct filter_def *filter_find(const char *name, size_t len) {
  size_t lo = 0, hi = ARRAY_SIZE(filters);
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const char *m = filters[mid].name;
    size_t mlen = strlen(m);
    int c = memcmp(name, m, MIN(len, mlen));
    if (!c) c = len < mlen ? -1 : len > mlen;
    if (!c) return &filters[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

static const struct value nil_value = {.type = VAL_NIL};

const struct value *farg(const struct fargs *a, size_t i) { return i < a->n ? &a->v[i] : &nil_value; }

const struct value *fkwarg(const struct fargs *a, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < a->n_kw; i++)
    if (a->kw_lens[i] == n && !memcmp(a->kw_names[i], name, n)) return &a->kw_vals[i];
  return NULL;
}

struct value fstr(struct rctx *r, const struct value *v) { return value_to_str(r->arena, v); }

struct value fstr_from_buf(struct rctx *r, struct buf *b) {
  struct value v = value_str(tpl_arena_strndup(r->arena, b->ptr ? b->ptr : "", b->len), b->len);
  buf_release(b);
  return v;
}

void sb_init(struct rctx *r, struct sbuf *s) {
  buf_init(&s->b, r->value_cap);
  s->rc = 0;
}
void sb_append(struct sbuf *s, const void *p, size_t n) {
  if (!s->rc) s->rc = buf_append(&s->b, p, n);
}
void sb_putc(struct sbuf *s, char c) { sb_append(s, &c, 1); }
void sb_puts(struct sbuf *s, const char *str) { sb_append(s, str, strlen(str)); }
void sb_printf(struct sbuf *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (!s->rc) s->rc = buf_vprintf(&s->b, fmt, ap);
  va_end(ap);
}
void sb_value(struct sbuf *s, const struct value *v) {
  if (!s->rc) s->rc = value_write(v, &s->b);
}
void sb_json(struct sbuf *s, const struct value *v) {
  if (!s->rc) s->rc = value_write_json(v, &s->b);
}
int sb_finish(struct rctx *r, struct sbuf *s, struct value *out) {
  if (s->rc) {
    buf_release(&s->b);
    return filter_fail(r, BATON_ETOOBIG, "filter result is over %zu bytes", r->value_cap);
  }
  *out = fstr_from_buf(r, &s->b);
  return 0;
}

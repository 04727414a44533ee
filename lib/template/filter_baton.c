/*
 * Filters that are Baton's own or sit between Liquid dialects: default
 * (with allow_false), json, money (amount with a currency), pluralize, raw
 * (marks a value safe from HTML escaping) and track_link (rewrites a URL for
 * click tracking through the render's callback). Documented with examples
 * in docs/templates.md.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

int f_default(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  const struct value *allow = fkwarg(a, "allow_false");
  bool keep_false = allow && value_truthy(allow);
  bool use_default = in->type == VAL_NIL || (in->type == VAL_BOOL && !in->b && !keep_false) ||
                     ((in->type == VAL_STR || in->type == VAL_ARRAY || in->type == VAL_JSON) &&
                      value_is_empty(in));
  *out = use_default ? *farg(a, 0) : *in;
  return 0;
}

int f_json(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct sbuf b;
  sb_init(r, &b);
  sb_json(&b, in);
  return sb_finish(r, &b, out);
}

int f_raw(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  *out = fstr(r, in);
  out->safe = true;
  return 0;
}

struct currency {
  const char *code, *symbol;
  int decimals;
  bool symbol_after;
};
static const struct currency currencies[] = {
    {"USD", "$", 2, false}, {"EUR", "€", 2, false},  {"GBP", "£", 2, false},
    {"JPY", "¥", 0, false}, {"CHF", "CHF ", 2, false}, {"CAD", "CA$", 2, false},
    {"AUD", "A$", 2, false}, {"INR", "₹", 2, false},  {"SEK", " kr", 2, true},
    {"NOK", " kr", 2, true}, {"DKK", " kr", 2, true},  {"KRW", "₩", 0, false},
    {"BRL", "R$", 2, false}, {"CNY", "CN¥", 2, false}, {"MXN", "MX$", 2, false},
};

/* {{ 1234.5 | money: "EUR" }} -> €1,234.50; unknown codes print "1,234.50 XYZ". */
int f_money(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value n = value_to_num(in);
  double amount = n.type == VAL_INT ? (double)n.i : n.f;
  if (!isfinite(amount) || fabs(amount) > 1e15)
    return filter_fail(r, BATON_ERANGE, "money amount out of range");
  char code[8] = "USD";
  if (a->n) {
    struct value c = fstr(r, farg(a, 0));
    if (c.s.len != 3) return filter_fail(r, BATON_EINVAL, "money expects a 3-letter currency code");
    for (int i = 0; i < 3; i++) code[i] = (char)(c.s.p[i] >= 'a' && c.s.p[i] <= 'z' ? c.s.p[i] - 32 : c.s.p[i]);
  }
  const struct currency *cur = NULL;
  for (size_t i = 0; i < ARRAY_SIZE(currencies); i++)
    if (!strcmp(currencies[i].code, code)) cur = &currencies[i];
  int dec = cur ? cur->decimals : 2;
  /* Minor units as an integer (|amount| <= 1e15, so at most 1e17): no printf on the hot path. */
  uint64_t minor = (uint64_t)llround(fabs(amount) * pow(10, dec));
  char digits[32], *p = digits + sizeof(digits);
  *--p = 0;
  for (int i = 0; i < dec; i++) *--p = (char)('0' + minor % 10), minor /= 10;
  if (dec) *--p = '.';
  do *--p = (char)('0' + minor % 10), minor /= 10; while (minor);
  memmove(digits, p, strlen(p) + 1);
  bool neg = amount < 0 && strspn(digits, "0.") != strlen(digits);
  char *dot = strchr(digits, '.');
  size_t int_len = dot ? (size_t)(dot - digits) : strlen(digits);
  struct sbuf b;
  sb_init(r, &b);
  if (neg) sb_putc(&b, '-');
  if (cur && !cur->symbol_after) sb_puts(&b, cur->symbol);
  for (size_t i = 0; i < int_len; i++) {
    if (i && (int_len - i) % 3 == 0) sb_putc(&b, ',');
    sb_putc(&b, digits[i]);
  }
  if (dot) sb_puts(&b, dot);
  if (cur && cur->symbol_after) sb_puts(&b, cur->symbol);
  if (!cur) sb_printf(&b, " %s", code);
  return sb_finish(r, &b, out);
}

/* {{ count | pluralize: "item", "items" }} -> "item" when count is 1, else "items". */
int f_pluralize(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value n = value_to_num(in);
  bool one = n.type == VAL_INT ? n.i == 1 : n.f == 1.0;
  *out = fstr(r, farg(a, one ? 0 : 1));
  return 0;
}

/* {{ "https://shop.example/cart" | track_link: "cart" }} -> the callback's tracked URL. */
int f_track_link(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value url = fstr(r, in);
  if (!r->env->track_link) {
    *out = url;
    return 0;
  }
  struct value label = a->n ? fstr(r, farg(a, 0)) : value_str("", 0);
  char *lab = tpl_arena_strndup(r->arena, label.s.p, label.s.len);
  struct buf lb;
  buf_init(&lb, 8192);
  int rc = r->env->track_link(r->env->ud, url.s.p, url.s.len, lab, &lb);
  if (rc) {
    buf_release(&lb);
    return filter_fail(r, rc, "track_link failed: %s", baton_strerror(rc));
  }
  *out = fstr_from_buf(r, &lb);
  return 0;
}

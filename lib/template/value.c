/*
 * Runtime values: what expressions evaluate to and filters take and return.
 * Data from the caller stays in its cJSON tree (objects and arrays are
 * referenced, scalars converted on read); values made during a render live
 * in the render's arena. This file holds Liquid's semantics of truth,
 * emptiness, equality, ordering and printing, in one place.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

struct value value_from_json(const cJSON *j) {
  if (!j || cJSON_IsNull(j) || cJSON_IsInvalid(j)) return value_nil();
  if (cJSON_IsBool(j)) return value_bool(cJSON_IsTrue(j));
  if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    /* cJSON keeps no int/float distinction: integral values within 2^53 print as integers. */
    if (d == floor(d) && fabs(d) < 9007199254740992.0) return value_int((int64_t)d);
    return value_float(d);
  }
  if (cJSON_IsString(j)) return value_str(j->valuestring, strlen(j->valuestring));
  if (cJSON_IsRaw(j)) return value_str(j->valuestring, strlen(j->valuestring));
  return (struct value){.type = VAL_JSON, .j = j};
}

bool value_truthy(const struct value *v) {
  if (v->type == VAL_NIL) return false;
  if (v->type == VAL_BOOL) return v->b;
  return true;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool value_is_empty(const struct value *v) {
  switch (v->type) {
  case VAL_STR: return v->s.len == 0;
  case VAL_ARRAY: return v->a.n == 0;
  case VAL_JSON: return v->j->child == NULL;
  case VAL_EMPTY: return true;
  case VAL_BLANK: return true;
  default: return false;
  }
}

bool value_is_blank(const struct value *v) {
  switch (v->type) {
  case VAL_NIL: return true;
  case VAL_BOOL: return !v->b;
  case VAL_STR:
    for (size_t i = 0; i < v->s.len; i++)
      if (!is_space(v->s.p[i])) return false;
    return true;
  default: return value_is_empty(v);
  }
}

bool value_is_seq(const struct value *v) {
  return v->type == VAL_ARRAY || v->type == VAL_RANGE || (v->type == VAL_JSON && cJSON_IsArray(v->j));
}

static size_t utf8_chars(const char *p, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)p[i] & 0xC0) != 0x80) n++;
  return n;
}

size_t value_size(const struct value *v) {
  switch (v->type) {
  case VAL_STR: return utf8_chars(v->s.p, v->s.len);
  case VAL_ARRAY: return v->a.n;
  case VAL_JSON: return (size_t)cJSON_GetArraySize(v->j);
  case VAL_RANGE: return v->r.hi >= v->r.lo ? (size_t)(v->r.hi - v->r.lo + 1) : 0;
  default: return 0;
  }
}

struct value value_at(const struct value *v, size_t i) {
  switch (v->type) {
  case VAL_ARRAY: return i < v->a.n ? v->a.v[i] : value_nil();
  case VAL_JSON: return value_from_json(cJSON_GetArrayItem(v->j, (int)i));
  case VAL_RANGE: return value_int(v->r.lo + (int64_t)i);
  default: return value_nil();
  }
}

static const cJSON *json_member(const cJSON *obj, const char *key, size_t len) {
  /* cJSON keeps no key lengths: a bounded strnlen, only for keys whose first byte matches. */
  for (const cJSON *c = obj->child; c; c = c->next)
    if (c->string && (!len || c->string[0] == key[0]) && strnlen(c->string, len + 1) == len &&
        !memcmp(c->string, key, len))
      return c;
  return NULL;
}

static bool key_is(const char *key, size_t len, const char *w) {
  return strlen(w) == len && !memcmp(key, w, len);
}

struct value value_member(const struct value *v, const char *key, size_t len) {
  if (v->type == VAL_JSON && cJSON_IsObject(v->j)) {
    const cJSON *c = json_member(v->j, key, len);
    if (c) return value_from_json(c);
    if (key_is(key, len, "size")) return value_int((int64_t)value_size(v));
    return value_nil();
  }
  if (v->type == VAL_FORLOOP) {
    const struct loop *l = v->loop;
    if (key_is(key, len, "index")) return value_int(l->index0 + 1);
    if (key_is(key, len, "index0")) return value_int(l->index0);
    if (key_is(key, len, "rindex")) return value_int(l->length - l->index0);
    if (key_is(key, len, "rindex0")) return value_int(l->length - l->index0 - 1);
    if (key_is(key, len, "first")) return value_bool(l->index0 == 0);
    if (key_is(key, len, "last")) return value_bool(l->index0 == l->length - 1);
    if (key_is(key, len, "length")) return value_int(l->length);
    if (key_is(key, len, "name")) return value_str(l->name, l->name_len);
    if (key_is(key, len, "parentloop"))
      return l->parent ? (struct value){.type = VAL_FORLOOP, .loop = l->parent} : value_nil();
    if (l->tablerow) {
      if (key_is(key, len, "col")) return value_int(l->col + 1);
      if (key_is(key, len, "col0")) return value_int(l->col);
      if (key_is(key, len, "row")) return value_int(l->row + 1);
      if (key_is(key, len, "col_first")) return value_bool(l->col == 0);
      if (key_is(key, len, "col_last")) return value_bool(l->col == l->cols - 1);
    }
    return value_nil();
  }
  if (value_is_seq(v)) {
    size_t n = value_size(v);
    if (key_is(key, len, "size")) return value_int((int64_t)n);
    if (key_is(key, len, "first")) return n ? value_at(v, 0) : value_nil();
    if (key_is(key, len, "last")) return n ? value_at(v, n - 1) : value_nil();
    return value_nil();
  }
  if (v->type == VAL_STR && key_is(key, len, "size")) return value_int((int64_t)value_size(v));
  return value_nil();
}

static bool is_num(const struct value *v) { return v->type == VAL_INT || v->type == VAL_FLOAT; }
static double num_f(const struct value *v) { return v->type == VAL_INT ? (double)v->i : v->f; }

bool tpl_value_equal(const struct value *a, const struct value *b) {
  if (a->type == VAL_EMPTY || a->type == VAL_BLANK) {
    const struct value *t = a;
    a = b, b = t;
  }
  if (b->type == VAL_EMPTY) return a->type == VAL_EMPTY || (a->type != VAL_BLANK && value_is_empty(a));
  if (b->type == VAL_BLANK) return value_is_blank(a);
  if (is_num(a) && is_num(b)) {
    if (a->type == VAL_INT && b->type == VAL_INT) return a->i == b->i;
    return num_f(a) == num_f(b);
  }
  if (value_is_seq(a) && value_is_seq(b)) {
    size_t n = value_size(a);
    if (n != value_size(b)) return false;
    if (a->type == VAL_RANGE && b->type == VAL_RANGE) return a->r.lo == b->r.lo && a->r.hi == b->r.hi;
    for (size_t i = 0; i < n; i++) {
      struct value x = value_at(a, i), y = value_at(b, i);
      if (!tpl_value_equal(&x, &y)) return false;
    }
    return true;
  }
  if (a->type != b->type) return false;
  switch (a->type) {
  case VAL_NIL: return true;
  case VAL_BOOL: return a->b == b->b;
  case VAL_STR: return a->s.len == b->s.len && !memcmp(a->s.p, b->s.p, a->s.len);
  case VAL_JSON: return a->j == b->j || cJSON_Compare(a->j, b->j, true);
  case VAL_FORLOOP: return a->loop == b->loop;
  default: return false;
  }
}

int tpl_value_compare(const struct value *a, const struct value *b, int *out) {
  if (is_num(a) && is_num(b)) {
    if (a->type == VAL_INT && b->type == VAL_INT)
      *out = a->i < b->i ? -1 : a->i > b->i;
    else {
      double x = num_f(a), y = num_f(b);
      *out = x < y ? -1 : x > y ? 1 : 0;
      if (isnan(x) || isnan(y)) *out = 2;
    }
    return 0;
  }
  if (a->type == VAL_STR && b->type == VAL_STR) {
    size_t n = MIN(a->s.len, b->s.len);
    int c = n ? memcmp(a->s.p, b->s.p, n) : 0;
    if (!c) c = a->s.len < b->s.len ? -1 : a->s.len > b->s.len;
    *out = c < 0 ? -1 : c > 0;
    return 0;
  }
  if ((is_num(a) && b->type == VAL_STR) || (a->type == VAL_STR && is_num(b))) return BATON_ETYPE;
  *out = 2; /* not ordered: the comparison is false, as in Ruby Liquid */
  return 0;
}

int format_float(double f, struct buf *out) {
  if (isnan(f)) return buf_puts(out, "NaN");
  if (isinf(f)) return buf_puts(out, f < 0 ? "-Infinity" : "Infinity");
  /*
   * Shortest digits that read back as f: if some p <= 15 digits do, rounding
   * to 15 gives those digits plus zeros (f is within 2^-53 of them, far from
   * a 15-digit rounding boundary), so at most three tries instead of 17.
   */
  char tmp[64];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
    if (strtod(tmp, NULL) == f) break;
  }
  /* tmp is "-d.ddde+XX": pull out the digits and the exponent. */
  char digits[32];
  size_t nd = 0;
  const char *p = tmp;
  bool neg = *p == '-';
  if (neg) p++;
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  int exp = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = 0;
  char res[128];
  size_t r = 0;
  if (neg) res[r++] = '-';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      for (int i = 0; i <= exp; i++) res[r++] = (size_t)i < nd ? digits[i] : '0';
      res[r++] = '.';
      if ((size_t)exp + 1 < nd)
        for (size_t i = (size_t)exp + 1; i < nd; i++) res[r++] = digits[i];
      else
        res[r++] = '0';
    } else {
      res[r++] = '0', res[r++] = '.';
      for (int i = 0; i < -exp - 1; i++) res[r++] = '0';
      for (size_t i = 0; i < nd; i++) res[r++] = digits[i];
    }
    res[r] = 0;
  } else {
    res[r++] = digits[0], res[r++] = '.';
    if (nd > 1)
      for (size_t i = 1; i < nd; i++) res[r++] = digits[i];
    else
      res[r++] = '0';
    snprintf(res + r, sizeof(res) - r, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
  }
  return buf_puts(out, res);
}

int value_write(const struct value *v, struct buf *out) {
  switch (v->type) {
  case VAL_NIL:
  case VAL_EMPTY:
  case VAL_BLANK:
  case VAL_FORLOOP: return 0;
  case VAL_BOOL: return buf_puts(out, v->b ? "true" : "false");
  case VAL_INT: return buf_printf(out, "%lld", (long long)v->i);
  case VAL_FLOAT: return format_float(v->f, out);
  case VAL_STR: return buf_append(out, v->s.p, v->s.len);
  case VAL_RANGE: return buf_printf(out, "%lld..%lld", (long long)v->r.lo, (long long)v->r.hi);
  case VAL_ARRAY:
    for (size_t i = 0; i < v->a.n; i++) {
      int rc = value_write(&v->a.v[i], out);
      if (rc) return rc;
    }
    return 0;
  case VAL_JSON:
    if (cJSON_IsArray(v->j)) {
      for (const cJSON *c = v->j->child; c; c = c->next) {
        struct value x = value_from_json(c);
        int rc = value_write(&x, out);
        if (rc) return rc;
      }
      return 0;
    }
    return value_write_json(v, out);
  }
  return 0;
}

int value_write_json(const struct value *v, struct buf *out) {
  switch (v->type) {
  case VAL_STR: return buf_json_str(out, v->s.p, v->s.len);
  case VAL_NIL:
  case VAL_EMPTY:
  case VAL_BLANK:
  case VAL_FORLOOP: return buf_puts(out, "null");
  case VAL_FLOAT:
    if (!isfinite(v->f)) return buf_puts(out, "null");
    return format_float(v->f, out);
  case VAL_JSON: {
    char *s = cJSON_PrintUnformatted(v->j);
    int rc = buf_puts(out, s ? s : "null");
    cJSON_free(s);
    return rc;
  }
  case VAL_ARRAY:
  case VAL_RANGE: {
    int rc = buf_putc(out, '[');
    size_t n = value_size(v);
    for (size_t i = 0; !rc && i < n; i++) {
      struct value x = value_at(v, i);
      if (i) rc = buf_putc(out, ',');
      if (!rc) rc = value_write_json(&x, out);
    }
    return rc ? rc : buf_putc(out, ']');
  }
  default: return value_write(v, out);
  }
}

struct value value_to_str(struct arena *a, const struct value *v) {
  if (v->type == VAL_STR) return *v;
  if (v->type == VAL_NIL) return value_str("", 0);
  struct buf b;
  buf_init(&b, 0);
  value_write(v, &b);
  struct value s = value_str(tpl_arena_strndup(a, b.ptr ? b.ptr : "", b.len), b.len);
  buf_release(&b);
  return s;
}

struct value value_to_num(const struct value *v) {
  switch (v->type) {
  case VAL_INT:
  case VAL_FLOAT: return *v;
  case VAL_STR: {
    char tmp[64];
    size_t n = MIN(v->s.len, sizeof(tmp) - 1);
    memcpy(tmp, v->s.p, n), tmp[n] = 0;
    char *p = tmp;
    while (is_space(*p)) p++;
    /* Ruby's to_number: digits with a dot are a float, otherwise an integer prefix. */
    char *q = p;
    if (*q == '-' || *q == '+') q++;
    bool digits = false, dot = false;
    while ((*q >= '0' && *q <= '9') || (*q == '.' && !dot)) {
      if (*q == '.') {
        if (!(q[1] >= '0' && q[1] <= '9')) break;
        dot = true;
      } else
        digits = true;
      q++;
    }
    if (!digits) return value_int(0);
    if (dot) return value_float(strtod(p, NULL));
    return value_int(strtoll(p, NULL, 10));
  }
  default: return value_int(0);
  }
}

struct value value_to_array(struct arena *a, const struct value *v) {
  switch (v->type) {
  case VAL_ARRAY: return *v;
  case VAL_NIL: {
    struct value out = {.type = VAL_ARRAY};
    out.a.v = tpl_arena_alloc(a, sizeof(struct value)); /* never NULL, so callers may memcpy */
    return out;
  }
  case VAL_RANGE:
  case VAL_JSON:
    if (value_is_seq(v)) {
      size_t n = value_size(v);
      struct value out = {.type = VAL_ARRAY};
      out.a.v = tpl_arena_alloc(a, (n ? n : 1) * sizeof(struct value));
      out.a.n = n;
      if (v->type == VAL_JSON) {
        size_t i = 0;
        for (const cJSON *c = v->j->child; c && i < n; c = c->next) out.a.v[i++] = value_from_json(c);
      } else {
        for (size_t i = 0; i < n; i++) out.a.v[i] = value_int(v->r.lo + (int64_t)i);
      }
      return out;
    }
    /* an object is one item */
    __attribute__((fallthrough));
  default: {
    struct value out = {.type = VAL_ARRAY};
    out.a.v = tpl_arena_alloc(a, sizeof(struct value));
    out.a.v[0] = *v;
    out.a.n = 1;
    return out;
  }
  }
}

int64_t double_to_i64(double d) {
  if (d != d) return 0;
  if (d >= 9223372036854775807.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)d;
}

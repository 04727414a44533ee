/*
 * Builtin functions: size, the string functions (contains, startsWith,
 * endsWith, matches on PCRE2, lowerAscii, upperAscii) and the conversions
 * (int, uint, double, string, bytes, bool, type, dyn). Overloads are chosen
 * here by the kinds of the arguments; an argument list no overload accepts
 * gives "no matching overload". Timestamp and duration functions are in
 * timefn.c, journey functions in journey.c; this file dispatches to them.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

const struct builtin builtins[FN_N] = {
#define FN_ROW(id, name, style, lo, hi, ret) {name, style, lo, hi, ret},
    BUILTIN_LIST(FN_ROW)
#undef FN_ROW
};

int builtin_find(const char *name, size_t len) {
  for (int i = 0; i < FN_N; i++)
    if (strlen(builtins[i].name) == len && !memcmp(builtins[i].name, name, len)) return i;
  return -1;
}

/* ---- Regular expressions ------------------------------------------------- */

struct regex_entry {
  const char *pat;
  uint32_t len;
  pcre2_code *code;
};

struct regex_cache {
  size_t n, cap;
  struct regex_entry *items;
};

void regex_cache_free(struct regex_cache *rc) {
  if (!rc) return;
  for (size_t i = 0; i < rc->n; i++) pcre2_code_free(rc->items[i].code);
  free(rc->items);
  free(rc);
}

static pcre2_code *regex_compile(const char *pat, size_t len, char *err, size_t errlen) {
  int ec;
  PCRE2_SIZE eoff;
  pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF, &ec, &eoff, NULL);
  if (!code && err) {
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(ec, msg, sizeof(msg));
    snprintf(err, errlen, "invalid regular expression at offset %zu: %s", (size_t)eoff, msg);
  }
  return code;
}

int regex_precompile(struct expr_program *p, struct expr_value pattern, char *err, size_t errlen) {
  pcre2_code *code = regex_compile(pattern.v.s, pattern.aux, err, errlen);
  if (!code) return BATON_EPARSE;
  if (!p->regexes) p->regexes = xcalloc(1, sizeof(*p->regexes));
  struct regex_cache *rc = p->regexes;
  if (rc->n == rc->cap) {
    rc->cap = rc->cap ? rc->cap * 2 : 4;
    rc->items = xrealloc(rc->items, rc->cap * sizeof(*rc->items));
  }
  rc->items[rc->n++] = (struct regex_entry){pattern.v.s, pattern.aux, code};
  return 0;
}

void vm_regex_ctx_free(struct expr_ctx *c) {
  if (c->match_data) pcre2_match_data_free(c->match_data);
  c->match_data = NULL;
}

static struct expr_value fn_matches(struct vm *vm, struct expr_value s, struct expr_value re,
                                    uint32_t pos) {
  pcre2_code *code = NULL, *owned = NULL;
  const struct regex_cache *rc = vm->prog ? vm->prog->regexes : NULL;
  for (size_t i = 0; rc && i < rc->n && !code; i++)
    if (rc->items[i].pat == re.v.s && rc->items[i].len == re.aux) code = rc->items[i].code;
  if (!code) {
    /* A pattern computed at run time: compiled for this call only. */
    char err[200];
    code = owned = regex_compile(re.v.s, re.aux, err, sizeof(err));
    if (!code) return expr_error_new(vm->arena, pos, "%s", err);
  }
  if (!vm->ctx->match_data) {
    vm->ctx->match_data = pcre2_match_data_create(1, NULL);
    if (!vm->ctx->match_data) return expr_error_oom(pos);
    vm->ctx->n_heap++;
  }
  int r = pcre2_match(code, (PCRE2_SPTR)s.v.s, s.aux, 0, 0, vm->ctx->match_data, NULL);
  if (owned) pcre2_code_free(owned);
  if (r < 0 && r != PCRE2_ERROR_NOMATCH)
    return expr_error_new(vm->arena, pos, "regular expression match failed (%d)", r);
  return baton_expr_bool(r >= 0);
}

/* ---- Conversions --------------------------------------------------------- */

static struct expr_value conv_error(struct vm *vm, uint32_t pos, const char *to,
                                    struct expr_value s) {
  return expr_error_new(vm->arena, pos, "type conversion error: cannot convert \"%.*s\" to %s",
                        (int)MIN(s.aux, 100u), s.v.s, to);
}

static bool parse_int_str(const char *s, size_t n, bool is_unsigned, int64_t *i, uint64_t *u) {
  char tmp[32];
  if (n == 0 || n >= sizeof(tmp)) return false;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  size_t k = (tmp[0] == '-' || tmp[0] == '+') ? 1 : 0;
  if (is_unsigned && tmp[0] == '-') return false;
  if (k == n) return false;
  for (size_t j = k; j < n; j++)
    if (tmp[j] < '0' || tmp[j] > '9') return false;
  char *end;
  errno = 0;
  if (is_unsigned)
    *u = strtoull(tmp, &end, 10);
  else
    *i = strtoll(tmp, &end, 10);
  return errno == 0 && *end == 0;
}

static struct expr_value to_int(struct vm *vm, struct expr_value x, uint32_t pos) {
  switch (x.kind) {
    case EXPR_INT:
      return x;
    case EXPR_UINT:
      if (x.v.u > INT64_MAX) return expr_error_new(vm->arena, pos, "int range error");
      return baton_expr_int((int64_t)x.v.u);
    case EXPR_DOUBLE:
      /* Both ends exclusive: 2^63 and -2^63 as doubles do not round-trip. */
      if (!(x.v.d > -9223372036854775808.0 && x.v.d < 9223372036854775808.0))
        return expr_error_new(vm->arena, pos, "int range error");
      return baton_expr_int((int64_t)x.v.d);
    case EXPR_STRING: {
      int64_t i;
      uint64_t u;
      if (!parse_int_str(x.v.s, x.aux, false, &i, &u)) return conv_error(vm, pos, "int", x);
      return baton_expr_int(i);
    }
    case EXPR_TIMESTAMP:
      return baton_expr_int(x.v.sec);
  }
  return expr_error_overload(vm->arena, pos, "int", &x, 1);
}

static struct expr_value to_uint(struct vm *vm, struct expr_value x, uint32_t pos) {
  switch (x.kind) {
    case EXPR_UINT:
      return x;
    case EXPR_INT:
      if (x.v.i < 0) return expr_error_new(vm->arena, pos, "uint range error");
      return baton_expr_uint((uint64_t)x.v.i);
    case EXPR_DOUBLE:
      if (!(x.v.d > -1.0 && x.v.d < 18446744073709551616.0))
        return expr_error_new(vm->arena, pos, "uint range error");
      return baton_expr_uint((uint64_t)x.v.d);
    case EXPR_STRING: {
      int64_t i;
      uint64_t u;
      if (!parse_int_str(x.v.s, x.aux, true, &i, &u)) return conv_error(vm, pos, "uint", x);
      return baton_expr_uint(u);
    }
  }
  return expr_error_overload(vm->arena, pos, "uint", &x, 1);
}

static struct expr_value to_double(struct vm *vm, struct expr_value x, uint32_t pos) {
  switch (x.kind) {
    case EXPR_DOUBLE:
      return x;
    case EXPR_INT:
      return baton_expr_double((double)x.v.i);
    case EXPR_UINT:
      return baton_expr_double((double)x.v.u);
    case EXPR_STRING: {
      char tmp[64];
      if (x.aux == 0 || x.aux >= sizeof(tmp)) return conv_error(vm, pos, "double", x);
      memcpy(tmp, x.v.s, x.aux);
      tmp[x.aux] = 0;
      if (tmp[0] == ' ' || tmp[0] == '\t' || strchr(tmp, 'x') || strchr(tmp, 'X'))
        return conv_error(vm, pos, "double", x);
      char *end;
      double d = strtod(tmp, &end);
      if (*end) return conv_error(vm, pos, "double", x);
      return baton_expr_double(d);
    }
  }
  return expr_error_overload(vm->arena, pos, "double", &x, 1);
}

static struct expr_value str_copy(struct vm *vm, const char *s, size_t n, uint32_t pos) {
  struct expr_value v = baton_expr_string_copy(vm->arena, s, n);
  if (v.kind == EXPR_ERROR) v = expr_error_oom(pos);
  return v;
}

static struct expr_value to_string(struct vm *vm, struct expr_value x, uint32_t pos) {
  char tmp[48];
  int n;
  switch (x.kind) {
    case EXPR_STRING:
      return x;
    case EXPR_INT:
      n = snprintf(tmp, sizeof(tmp), "%lld", (long long)x.v.i);
      break;
    case EXPR_UINT:
      n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)x.v.u);
      break;
    case EXPR_BOOL:
      n = snprintf(tmp, sizeof(tmp), "%s", x.v.b ? "true" : "false");
      break;
    case EXPR_DOUBLE:
      if (isnan(x.v.d)) {
        n = snprintf(tmp, sizeof(tmp), "NaN");
      } else if (isinf(x.v.d)) {
        n = snprintf(tmp, sizeof(tmp), x.v.d > 0 ? "+Inf" : "-Inf");
      } else {
        n = (int)double_shortest(x.v.d, tmp);
      }
      break;
    case EXPR_BYTES:
      if (!baton_utf8_valid(x.v.s, x.aux))
        return expr_error_new(vm->arena, pos, "type conversion error: bytes are not valid UTF-8");
      x.kind = EXPR_STRING;
      return x;
    case EXPR_TIMESTAMP:
      n = (int)ts_format(x.v.sec, (int32_t)x.aux, tmp);
      break;
    case EXPR_DURATION:
      n = (int)dur_format(x.v.sec, (int32_t)x.aux, tmp);
      break;
    case EXPR_TYPE: {
      const char *tn = baton_expr_kind_name((int)x.v.type);
      return baton_expr_string(tn, strlen(tn));
    }
    default:
      return expr_error_overload(vm->arena, pos, "string", &x, 1);
  }
  return str_copy(vm, tmp, (size_t)n, pos);
}

static struct expr_value to_bool(struct vm *vm, struct expr_value x, uint32_t pos) {
  static const char *const t[] = {"1", "t", "true", "TRUE", "True"};
  static const char *const f[] = {"0", "f", "false", "FALSE", "False"};
  if (x.kind == EXPR_BOOL) return x;
  if (x.kind != EXPR_STRING) return expr_error_overload(vm->arena, pos, "bool", &x, 1);
  for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
    if (strlen(t[i]) == x.aux && !memcmp(t[i], x.v.s, x.aux)) return baton_expr_bool(true);
    if (strlen(f[i]) == x.aux && !memcmp(f[i], x.v.s, x.aux)) return baton_expr_bool(false);
  }
  return expr_error_new(vm->arena, pos, "type conversion error: cannot convert \"%.*s\" to bool",
                        (int)MIN(x.aux, 100u), x.v.s);
}

/* ---- Strings ------------------------------------------------------------- */

static struct expr_value ascii_case(struct vm *vm, struct expr_value s, bool upper, uint32_t pos) {
  char *p = arena_alloc(vm->arena, (size_t)s.aux + 1);
  if (!p) return expr_error_oom(pos);
  for (uint32_t i = 0; i < s.aux; i++) {
    char c = s.v.s[i];
    if (upper && c >= 'a' && c <= 'z') c = (char)(c - 32);
    if (!upper && c >= 'A' && c <= 'Z') c = (char)(c + 32);
    p[i] = c;
  }
  p[s.aux] = 0;
  return baton_expr_string(p, s.aux);
}

bool mem_contains(const char *h, size_t hn, const char *n, size_t nn) {
  if (nn == 0) return true;
  if (nn > hn) return false;
  return memmem(h, hn, n, nn) != NULL;
}

void builtin_call(struct vm *vm, int fn, const struct expr_value *args, int n, uint32_t pos,
                  struct expr_value *out) {
  struct expr_value a = n > 0 ? args[0] : baton_expr_null();
  struct expr_value b = n > 1 ? args[1] : baton_expr_null();
  switch (fn) {
    case FN_SIZE:
      switch (a.kind) {
        case EXPR_STRING:
          *out = baton_expr_int((int64_t)utf8_count(a.v.s, a.aux));
          return;
        case EXPR_BYTES:
          *out = baton_expr_int(a.aux);
          return;
        case EXPR_LIST:
          *out = baton_expr_int(a.v.list->len);
          return;
        case EXPR_MAP:
          *out = baton_expr_int(a.v.map->len);
          return;
      }
      break;
    case FN_CONTAINS:
    case FN_STARTS_WITH:
    case FN_ENDS_WITH:
    case FN_MATCHES:
      if (n != 2 || a.kind != EXPR_STRING || b.kind != EXPR_STRING) break;
      if (fn == FN_CONTAINS)
        *out = baton_expr_bool(mem_contains(a.v.s, a.aux, b.v.s, b.aux));
      else if (fn == FN_STARTS_WITH)
        *out = baton_expr_bool(b.aux <= a.aux && !memcmp(a.v.s, b.v.s, b.aux));
      else if (fn == FN_ENDS_WITH)
        *out = baton_expr_bool(b.aux <= a.aux && !memcmp(a.v.s + a.aux - b.aux, b.v.s, b.aux));
      else
        *out = fn_matches(vm, a, b, pos);
      return;
    case FN_LOWER_ASCII:
    case FN_UPPER_ASCII:
      if (a.kind != EXPR_STRING) break;
      *out = ascii_case(vm, a, fn == FN_UPPER_ASCII, pos);
      return;
    case FN_INT:
      *out = to_int(vm, a, pos);
      return;
    case FN_UINT:
      *out = to_uint(vm, a, pos);
      return;
    case FN_DOUBLE:
      *out = to_double(vm, a, pos);
      return;
    case FN_STRING:
      *out = to_string(vm, a, pos);
      return;
    case FN_BOOL:
      *out = to_bool(vm, a, pos);
      return;
    case FN_BYTES:
      if (a.kind == EXPR_BYTES) {
        *out = a;
        return;
      }
      if (a.kind != EXPR_STRING) break;
      a.kind = EXPR_BYTES;
      *out = a;
      return;
    case FN_DYN:
      *out = a;
      return;
    case FN_TYPE: {
      struct expr_value t = {.kind = EXPR_TYPE, .v.type = a.kind};
      *out = t;
      return;
    }
    case FN_TIMESTAMP:
    case FN_DURATION:
    case FN_GET_FULL_YEAR:
    case FN_GET_MONTH:
    case FN_GET_DAY_OF_YEAR:
    case FN_GET_DAY_OF_MONTH:
    case FN_GET_DATE:
    case FN_GET_DAY_OF_WEEK:
    case FN_GET_HOURS:
    case FN_GET_MINUTES:
    case FN_GET_SECONDS:
    case FN_GET_MILLISECONDS:
      time_accessor(vm, fn, args, n, pos, out);
      return;
    default:
      journey_call(vm, fn, args, n, pos, out);
      return;
  }
  *out = expr_error_overload(vm->arena, pos, builtins[fn].name, args, n);
}

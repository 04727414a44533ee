/*
 * JSON text straight to CEL values in an arena (RFC 8259), keeping what a
 * cJSON tree loses: a number written without fraction or exponent is an int
 * when it fits int64 ("1" is int, "1.0" double, 2^62 int), anything else a
 * double. Objects become maps with string keys (a repeated key: the last
 * wins), arrays lists. Strings are validated as UTF-8 with \u escapes and
 * surrogate pairs decoded. Depth is capped at 256.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

struct jp {
  const char *s;
  size_t n, i;
  struct expr_arena *a;
  int depth;
  int err;
};

static void ws(struct jp *p) {
  while (p->i < p->n &&
         (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

static int bad(struct jp *p) {
  if (!p->err) p->err = BATON_EPARSE;
  return p->err;
}

static int hex4(struct jp *p, uint32_t *out) {
  if (p->i + 4 > p->n) return bad(p);
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p->s[p->i++];
    int h = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (h < 0) return bad(p);
    v = v * 16 + (uint32_t)h;
  }
  *out = v;
  return 0;
}

static int string(struct jp *p, struct expr_value *out) {
  p->i++; /* opening quote */
  size_t start = p->i;
  while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
         (unsigned char)p->s[p->i] >= 0x20)
    p->i++;
  /* Decoded text is never longer than the source. */
  size_t end = p->i;
  while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end > p->n) end = p->n;
  char *o = arena_alloc(p->a, end - start + 1);
  if (!o) return p->err = BATON_ETOOBIG;
  size_t len = p->i - start;
  memcpy(o, p->s + start, len);
  for (;;) {
    if (p->i >= p->n) return bad(p);
    char c = p->s[p->i++];
    if (c == '"') break;
    if ((unsigned char)c < 0x20) return bad(p);
    if (c != '\\') {
      o[len++] = c;
      continue;
    }
    if (p->i >= p->n) return bad(p);
    c = p->s[p->i++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        o[len++] = c;
        break;
      case 'b':
        o[len++] = '\b';
        break;
      case 'f':
        o[len++] = '\f';
        break;
      case 'n':
        o[len++] = '\n';
        break;
      case 'r':
        o[len++] = '\r';
        break;
      case 't':
        o[len++] = '\t';
        break;
      case 'u': {
        uint32_t cp, lo;
        if (hex4(p, &cp)) return p->err;
        if (cp >= 0xD800 && cp < 0xDC00) {
          if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') return bad(p);
          p->i += 2;
          if (hex4(p, &lo) || lo < 0xDC00 || lo >= 0xE000) return bad(p);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return bad(p);
        }
        /* \uXXXX is 6 source bytes for at most 3 output bytes, a pair 12 for 4. */
        if (cp < 0x80) {
          o[len++] = (char)cp;
        } else if (cp < 0x800) {
          o[len++] = (char)(0xC0 | (cp >> 6));
          o[len++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          o[len++] = (char)(0xE0 | (cp >> 12));
          o[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
          o[len++] = (char)(0x80 | (cp & 0x3F));
        } else {
          o[len++] = (char)(0xF0 | (cp >> 18));
          o[len++] = (char)(0x80 | ((cp >> 12) & 0x3F));
          o[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
          o[len++] = (char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default:
        return bad(p);
    }
  }
  if (!baton_utf8_valid(o, len)) return p->err = BATON_EINVAL;
  o[len] = 0;
  *out = baton_expr_string(o, len);
  return 0;
}

static int number(struct jp *p, struct expr_value *out) {
  size_t start = p->i;
  bool is_int = true;
  if (p->s[p->i] == '-') p->i++;
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return bad(p);
  if (p->s[p->i] == '0')
    p->i++;
  else
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
  if (p->i < p->n && p->s[p->i] == '.') {
    is_int = false;
    p->i++;
    size_t d = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (d == p->i) return bad(p);
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    is_int = false;
    p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    size_t d = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (d == p->i) return bad(p);
  }
  char tmp[400];
  size_t len = p->i - start;
  if (len >= sizeof(tmp)) return bad(p);
  memcpy(tmp, p->s + start, len);
  tmp[len] = 0;
  if (is_int) {
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == 0) {
      *out = baton_expr_int(v);
      return 0;
    }
  }
  *out = baton_expr_double(strtod(tmp, NULL));
  return 0;
}

static int value(struct jp *p, struct expr_value *out);

/* Collects the items of an array or object in a growing heap vector, then
 * copies them to the arena once their number is known. */
static int compound(struct jp *p, struct expr_value *out, bool object) {
  if (++p->depth > 256) return p->err = BATON_ETOOBIG;
  p->i++;
  size_t cap = 16, cnt = 0, per = object ? 2 : 1;
  struct expr_value *tmp = xmalloc(cap * sizeof(*tmp));
  ws(p);
  if (p->i < p->n && p->s[p->i] == (object ? '}' : ']')) {
    p->i++;
  } else {
    for (;;) {
      if (cnt + per > cap) {
        cap *= 2;
        tmp = xrealloc(tmp, cap * sizeof(*tmp));
      }
      ws(p);
      if (object) {
        if (p->i >= p->n || p->s[p->i] != '"' || string(p, &tmp[cnt])) goto fail;
        ws(p);
        if (p->i >= p->n || p->s[p->i++] != ':') goto fail;
        ws(p);
        if (value(p, &tmp[cnt + 1])) goto fail;
      } else if (value(p, &tmp[cnt])) {
        goto fail;
      }
      cnt += per;
      ws(p);
      if (p->i >= p->n) goto fail;
      char c = p->s[p->i++];
      if (c == (object ? '}' : ']')) break;
      if (c != ',') goto fail;
    }
  }
  if (object) {
    /* A repeated key: the last one wins, as in most JSON readers. */
    size_t w = 0;
    for (size_t r = 0; r < cnt; r += 2) {
      size_t q = 0;
      for (; q < w; q += 2)
        if (tmp[q].aux == tmp[r].aux && !memcmp(tmp[q].v.s, tmp[r].v.s, tmp[r].aux)) break;
      tmp[q] = tmp[r];
      tmp[q + 1] = tmp[r + 1];
      if (q == w) w += 2;
    }
    struct expr_map *m = map_alloc(p->a, w / 2);
    if (!m) goto toobig;
    for (size_t k = 0; k < w / 2; k++) {
      m->entries[k].key = tmp[2 * k];
      m->entries[k].val = tmp[2 * k + 1];
    }
    if (map_seal(p->a, m)) goto toobig;
    out->kind = EXPR_MAP;
    out->v.map = m;
  } else {
    struct expr_list *l = list_alloc(p->a, cnt);
    if (!l) goto toobig;
    memcpy(l->items, tmp, cnt * sizeof(*tmp));
    l->len = (uint32_t)cnt;
    out->kind = EXPR_LIST;
    out->v.list = l;
  }
  out->aux = 0;
  free(tmp);
  p->depth--;
  return 0;
toobig:
  p->err = BATON_ETOOBIG;
fail:
  free(tmp);
  return bad(p);
}

static int value(struct jp *p, struct expr_value *out) {
  ws(p);
  if (p->i >= p->n) return bad(p);
  char c = p->s[p->i];
  if (c == '{' || c == '[') return compound(p, out, c == '{');
  if (c == '"') return string(p, out);
  if (c == '-' || (c >= '0' && c <= '9')) return number(p, out);
  static const struct {
    const char *w;
    int kind;
    bool b;
  } words[] = {{"true", EXPR_BOOL, true}, {"false", EXPR_BOOL, false}, {"null", EXPR_NULL, false}};
  for (size_t k = 0; k < ARRAY_SIZE(words); k++) {
    size_t l = strlen(words[k].w);
    if (p->i + l <= p->n && !memcmp(p->s + p->i, words[k].w, l)) {
      p->i += l;
      *out = words[k].kind == EXPR_BOOL ? baton_expr_bool(words[k].b) : baton_expr_null();
      return 0;
    }
  }
  return bad(p);
}

int baton_expr_value_parse_json(struct expr_arena *a, const char *text, size_t len,
                                struct expr_value *out, size_t *err_off) {
  struct jp p = {.s = text, .n = len, .a = a};
  int rc = value(&p, out);
  if (!rc) {
    ws(&p);
    if (p.i != p.n) rc = bad(&p);
  }
  if (rc && err_off) *err_off = p.i;
  return rc ? (p.err ? p.err : rc) : 0;
}

/*
 * String filters: case, trimming, search and replace, slicing by character,
 * truncation, splitting, HTML and URL escaping, base64. Inputs that are not
 * strings are converted with their printed form first (nil becomes "").
 * Positions and lengths count UTF-8 characters, as Ruby does, not bytes.
 */
#include <ctype.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Byte offset of character index ci in s (or len when past the end). */
static size_t char_off(const char *s, size_t len, size_t ci) {
  size_t i = 0;
  while (i < len && ci) {
    i++;
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    ci--;
  }
  return i;
}
static size_t char_count(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
  return n;
}

static int cat2(struct rctx *r, const struct value *x, const struct value *y, struct value *out) {
  struct value a = fstr(r, x), b = fstr(r, y);
  char *p = tpl_arena_alloc(r->arena, a.s.len + b.s.len + 1);
  memcpy(p, a.s.p, a.s.len);
  memcpy(p + a.s.len, b.s.p, b.s.len);
  *out = value_str(p, a.s.len + b.s.len);
  return 0;
}
int f_append(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return cat2(r, in, farg(a, 0), out);
}
int f_prepend(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return cat2(r, farg(a, 0), in, out);
}

enum { CASE_UP, CASE_DOWN, CASE_CAP };
static int change_case(struct rctx *r, const struct value *in, int mode, struct value *out) {
  struct value s = fstr(r, in);
  char *p = tpl_arena_strndup(r->arena, s.s.p, s.s.len);
  for (size_t i = 0; i < s.s.len; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c >= 0x80) continue;
    if (mode == CASE_UP || (mode == CASE_CAP && i == 0))
      p[i] = (char)toupper(c);
    else
      p[i] = (char)tolower(c);
  }
  *out = value_str(p, s.s.len);
  return 0;
}
int f_upcase(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return change_case(r, in, CASE_UP, out);
}
int f_downcase(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return change_case(r, in, CASE_DOWN, out);
}
int f_capitalize(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return change_case(r, in, CASE_CAP, out);
}

static int strip(struct rctx *r, const struct value *in, bool left, bool right, struct value *out) {
  struct value s = fstr(r, in);
  const char *p = s.s.p;
  size_t n = s.s.len;
  while (left && n && is_space(*p)) p++, n--;
  while (right && n && is_space(p[n - 1])) n--;
  *out = value_str(p, n);
  return 0;
}
int f_strip(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return strip(r, in, true, true, out);
}
int f_lstrip(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return strip(r, in, true, false, out);
}
int f_rstrip(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return strip(r, in, false, true, out);
}

enum { REP_ALL, REP_FIRST, REP_LAST };
static int replace(struct rctx *r, const struct value *in, const struct value *from,
                   const struct value *to, int mode, struct value *out) {
  struct value s = fstr(r, in), f = fstr(r, from), t = fstr(r, to);
  struct sbuf b;
  sb_init(r, &b);
  const char *p = s.s.p, *end = s.s.p + s.s.len;
  if (mode == REP_LAST) {
    const char *last = NULL;
    if (f.s.len <= s.s.len)
      for (const char *q = end - f.s.len; q >= p; q--)
        if (!memcmp(q, f.s.p, f.s.len)) {
          last = q;
          break;
        }
    if (!last) {
      *out = s;
      return 0;
    }
    sb_append(&b, p, (size_t)(last - p));
    sb_append(&b, t.s.p, t.s.len);
    sb_append(&b, last + f.s.len, (size_t)(end - last - f.s.len));
    return sb_finish(r, &b, out);
  }
  if (!f.s.len) {
    /* Ruby's gsub("") inserts the replacement between every character. */
    if (mode == REP_FIRST) {
      sb_append(&b, t.s.p, t.s.len);
      sb_append(&b, p, s.s.len);
    } else {
      sb_append(&b, t.s.p, t.s.len);
      for (size_t i = 0; i < s.s.len;) {
        size_t j = i + 1;
        while (j < s.s.len && ((unsigned char)p[j] & 0xC0) == 0x80) j++;
        sb_append(&b, p + i, j - i);
        sb_append(&b, t.s.p, t.s.len);
        i = j;
      }
    }
    return sb_finish(r, &b, out);
  }
  while (p < end) {
    const char *q = memmem(p, (size_t)(end - p), f.s.p, f.s.len);
    if (!q) break;
    sb_append(&b, p, (size_t)(q - p));
    sb_append(&b, t.s.p, t.s.len);
    p = q + f.s.len;
    if (mode == REP_FIRST) break;
  }
  sb_append(&b, p, (size_t)(end - p));
  return sb_finish(r, &b, out);
}
static const struct value empty_str = {.type = VAL_STR, .s = {"", 0}};
int f_replace(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return replace(r, in, farg(a, 0), farg(a, 1), REP_ALL, out);
}
int f_replace_first(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return replace(r, in, farg(a, 0), farg(a, 1), REP_FIRST, out);
}
int f_replace_last(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return replace(r, in, farg(a, 0), farg(a, 1), REP_LAST, out);
}
int f_remove(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return replace(r, in, farg(a, 0), &empty_str, REP_ALL, out);
}
int f_remove_first(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return replace(r, in, farg(a, 0), &empty_str, REP_FIRST, out);
}
int f_remove_last(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return replace(r, in, farg(a, 0), &empty_str, REP_LAST, out);
}

/* An integer argument, clamped to +-2^50 so position arithmetic cannot overflow. */
static int int_arg(struct rctx *r, const struct value *v, const char *what, int64_t *out) {
  const int64_t lim = (int64_t)1 << 50;
  if (v->type == VAL_INT) {
    *out = v->i > lim ? lim : v->i < -lim ? -lim : v->i;
    return 0;
  }
  if (v->type == VAL_STR) {
    struct value n = value_to_num(v);
    if (n.type == VAL_INT && (v->s.len && (v->s.p[0] == '-' || (v->s.p[0] >= '0' && v->s.p[0] <= '9')))) {
      *out = n.i > lim ? lim : n.i < -lim ? -lim : n.i;
      return 0;
    }
  }
  return filter_fail(r, BATON_ETYPE, "%s expects an integer", what);
}

int f_slice(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  int64_t start, len = 1;
  int rc = int_arg(r, farg(a, 0), "slice", &start);
  if (!rc && a->n > 1 && farg(a, 1)->type != VAL_NIL) rc = int_arg(r, farg(a, 1), "slice", &len);
  if (rc) return rc;
  bool seq = value_is_seq(in);
  struct value arr = seq ? value_to_array(r->arena, in) : fstr(r, in);
  int64_t n = seq ? (int64_t)arr.a.n : (int64_t)char_count(arr.s.p, arr.s.len);
  if (start < 0) start += n;
  if (start < 0) {
    len += start;
    start = 0;
  }
  if (len < 0 || start > n) len = 0;
  if (start + len > n) len = n - start;
  if (len < 0) len = 0;
  if (seq) {
    *out = (struct value){.type = VAL_ARRAY, .a = {arr.a.v + start, (size_t)len}};
  } else {
    size_t b0 = char_off(arr.s.p, arr.s.len, (size_t)start);
    size_t b1 = b0 + char_off(arr.s.p + b0, arr.s.len - b0, (size_t)len);
    *out = value_str(arr.s.p + b0, b1 - b0);
  }
  return 0;
}

int f_truncate(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value s = fstr(r, in);
  int64_t n = 50;
  if (a->n > 0) {
    int rc = int_arg(r, farg(a, 0), "truncate", &n);
    if (rc) return rc;
  }
  struct value ell = a->n > 1 ? fstr(r, farg(a, 1)) : value_str("...", 3);
  size_t chars = char_count(s.s.p, s.s.len);
  if (n < 0 || (size_t)n >= chars) {
    *out = s;
    return 0;
  }
  int64_t keep = n - (int64_t)char_count(ell.s.p, ell.s.len);
  if (keep < 0) keep = 0;
  size_t b = char_off(s.s.p, s.s.len, (size_t)keep);
  char *p = tpl_arena_alloc(r->arena, b + ell.s.len + 1);
  memcpy(p, s.s.p, b);
  memcpy(p + b, ell.s.p, ell.s.len);
  *out = value_str(p, b + ell.s.len);
  return 0;
}

int f_truncatewords(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value s = fstr(r, in);
  int64_t n = 15;
  if (a->n > 0) {
    int rc = int_arg(r, farg(a, 0), "truncatewords", &n);
    if (rc) return rc;
  }
  if (n <= 0) n = 1;
  struct value ell = a->n > 1 ? fstr(r, farg(a, 1)) : value_str("...", 3);
  struct sbuf b;
  sb_init(r, &b);
  const char *p = s.s.p, *end = p + s.s.len;
  int64_t words = 0;
  while (p < end) {
    while (p < end && is_space(*p)) p++;
    if (p >= end) break;
    const char *w = p;
    while (p < end && !is_space(*p)) p++;
    if (words == n) {
      sb_append(&b, ell.s.p, ell.s.len);
      return sb_finish(r, &b, out);
    }
    if (words) sb_putc(&b, ' ');
    sb_append(&b, w, (size_t)(p - w));
    words++;
  }
  buf_release(&b.b);
  *out = s;
  return 0;
}

int f_split(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value s = fstr(r, in), sep = fstr(r, farg(a, 0));
  size_t cap = 8, n = 0;
  struct value *v = tpl_arena_alloc(r->arena, cap * sizeof(*v));
#define PUSH(P, L)                                                 \
  do {                                                             \
    if (n == cap) {                                                \
      struct value *nv = tpl_arena_alloc(r->arena, 2 * cap * sizeof(*v)); \
      memcpy(nv, v, n * sizeof(*v));                               \
      v = nv, cap *= 2;                                            \
    }                                                              \
    v[n++] = value_str((P), (L));                                  \
  } while (0)
  const char *p = s.s.p, *end = p + s.s.len;
  if (sep.s.len == 1 && sep.s.p[0] == ' ') {
    /* Ruby's awk-style split: runs of whitespace, leading whitespace ignored. */
    while (p < end) {
      while (p < end && is_space(*p)) p++;
      if (p >= end) break;
      const char *w = p;
      while (p < end && !is_space(*p)) p++;
      PUSH(w, (size_t)(p - w));
    }
  } else if (!sep.s.len) {
    while (p < end) {
      const char *c = p++;
      while (p < end && ((unsigned char)*p & 0xC0) == 0x80) p++;
      PUSH(c, (size_t)(p - c));
    }
  } else {
    while (p <= end) {
      const char *q = memmem(p, (size_t)(end - p), sep.s.p, sep.s.len);
      if (!q) {
        PUSH(p, (size_t)(end - p));
        break;
      }
      PUSH(p, (size_t)(q - p));
      p = q + sep.s.len;
    }
    while (n && v[n - 1].s.len == 0) n--; /* Ruby drops trailing empty fields */
  }
#undef PUSH
  *out = (struct value){.type = VAL_ARRAY, .a = {v, n}};
  return 0;
}

int f_newline_to_br(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value s = fstr(r, in);
  struct sbuf b;
  sb_init(r, &b);
  for (size_t i = 0; i < s.s.len; i++) {
    if (s.s.p[i] == '\r' && i + 1 < s.s.len && s.s.p[i + 1] == '\n') continue;
    if (s.s.p[i] == '\n')
      sb_puts(&b, "<br />\n");
    else
      sb_putc(&b, s.s.p[i]);
  }
  return sb_finish(r, &b, out);
}

int f_strip_newlines(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value s = fstr(r, in);
  char *p = tpl_arena_alloc(r->arena, s.s.len + 1);
  size_t n = 0;
  for (size_t i = 0; i < s.s.len; i++)
    if (s.s.p[i] != '\n' && s.s.p[i] != '\r') p[n++] = s.s.p[i];
  *out = value_str(p, n);
  return 0;
}

static bool starts_ci(const char *p, const char *end, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(end - p) < n) return false;
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)p[i]) != w[i]) return false;
  return true;
}
static const char *find_ci(const char *p, const char *end, const char *w) {
  for (; p < end; p++)
    if (starts_ci(p, end, w)) return p;
  return NULL;
}

int f_strip_html(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value s = fstr(r, in);
  struct sbuf b;
  sb_init(r, &b);
  const char *p = s.s.p, *end = p + s.s.len;
  while (p < end) {
    if (*p != '<') {
      sb_putc(&b, *p++);
      continue;
    }
    const char *close = NULL;
    if (starts_ci(p, end, "<!--")) {
      const char *q = find_ci(p + 4, end, "-->");
      close = q ? q + 3 : NULL;
    } else if (starts_ci(p, end, "<script") || starts_ci(p, end, "<style")) {
      const char *tag = starts_ci(p, end, "<script") ? "</script" : "</style";
      const char *q = find_ci(p, end, tag);
      if (q) {
        const char *gt = memchr(q, '>', (size_t)(end - q));
        close = gt ? gt + 1 : NULL;
      }
    } else {
      const char *gt = memchr(p, '>', (size_t)(end - p));
      close = gt ? gt + 1 : NULL;
    }
    if (!close) {
      sb_putc(&b, *p++);
      continue;
    }
    p = close;
  }
  return sb_finish(r, &b, out);
}

static int html_escape(struct rctx *r, const struct value *in, bool once, struct value *out) {
  if (in->type == VAL_NIL) {
    *out = *in;
    return 0;
  }
  struct value s = fstr(r, in);
  struct sbuf b;
  sb_init(r, &b);
  for (size_t i = 0; i < s.s.len; i++) {
    char c = s.s.p[i];
    if (c == '&' && once) {
      /* Leave an existing entity (&amp; &#39; &#x27;) alone. */
      size_t j = i + 1;
      if (j < s.s.len && s.s.p[j] == '#') {
        j++;
        if (j < s.s.len && (s.s.p[j] == 'x' || s.s.p[j] == 'X')) j++;
        while (j < s.s.len && isxdigit((unsigned char)s.s.p[j])) j++;
      } else {
        while (j < s.s.len && isalnum((unsigned char)s.s.p[j])) j++;
      }
      if (j > i + 1 && j < s.s.len && s.s.p[j] == ';') {
        sb_putc(&b, c);
        continue;
      }
    }
    switch (c) {
    case '&': sb_puts(&b, "&amp;"); break;
    case '<': sb_puts(&b, "&lt;"); break;
    case '>': sb_puts(&b, "&gt;"); break;
    case '"': sb_puts(&b, "&quot;"); break;
    case '\'': sb_puts(&b, "&#39;"); break;
    default: sb_putc(&b, c);
    }
  }
  int rc = sb_finish(r, &b, out);
  out->safe = true;
  return rc;
}
int f_escape(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return html_escape(r, in, false, out);
}
int f_escape_once(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return html_escape(r, in, true, out);
}

int f_url_encode(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  if (in->type == VAL_NIL) {
    *out = *in;
    return 0;
  }
  struct value s = fstr(r, in);
  struct sbuf b;
  sb_init(r, &b);
  for (size_t i = 0; i < s.s.len; i++) {
    unsigned char c = (unsigned char)s.s.p[i];
    if (isalnum(c) || c == '*' || c == '-' || c == '.' || c == '_')
      sb_putc(&b, (char)c);
    else if (c == ' ')
      sb_putc(&b, '+');
    else
      sb_printf(&b, "%%%02X", c);
  }
  return sb_finish(r, &b, out);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
int f_url_decode(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  if (in->type == VAL_NIL) {
    *out = *in;
    return 0;
  }
  struct value s = fstr(r, in);
  char *p = tpl_arena_alloc(r->arena, s.s.len + 1);
  size_t n = 0;
  for (size_t i = 0; i < s.s.len; i++) {
    char c = s.s.p[i];
    if (c == '+')
      c = ' ';
    else if (c == '%' && i + 2 < s.s.len && hexval(s.s.p[i + 1]) >= 0 && hexval(s.s.p[i + 2]) >= 0) {
      c = (char)(hexval(s.s.p[i + 1]) * 16 + hexval(s.s.p[i + 2]));
      i += 2;
    }
    p[n++] = c;
  }
  *out = value_str(p, n);
  return 0;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_encode(struct rctx *r, const struct value *in, const char *alpha, struct value *out) {
  struct value s = fstr(r, in);
  const unsigned char *p = (const unsigned char *)s.s.p;
  size_t n = s.s.len, o = 0;
  char *dst = tpl_arena_alloc(r->arena, (n + 2) / 3 * 4 + 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    dst[o++] = alpha[(v >> 18) & 63];
    dst[o++] = alpha[(v >> 12) & 63];
    dst[o++] = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
    dst[o++] = i + 2 < n ? alpha[v & 63] : '=';
  }
  *out = value_str(dst, o);
  return 0;
}

static int b64_decode(struct rctx *r, const struct value *in, const char *alpha, struct value *out) {
  struct value s = fstr(r, in);
  unsigned char *dst = tpl_arena_alloc(r->arena, s.s.len / 4 * 3 + 4);
  size_t o = 0, k = 0, len = s.s.len;
  uint32_t acc = 0;
  while (len && s.s.p[len - 1] == '=') len--;
  if (s.s.len % 4 && alpha == b64std) goto bad;
  for (size_t i = 0; i < len; i++) {
    const char *q = memchr(alpha, s.s.p[i], 64);
    if (!q || !s.s.p[i]) goto bad;
    acc = acc << 6 | (uint32_t)(q - alpha);
    if (++k == 4) {
      dst[o++] = (unsigned char)(acc >> 16), dst[o++] = (unsigned char)(acc >> 8);
      dst[o++] = (unsigned char)acc;
      acc = 0, k = 0;
    }
  }
  if (k == 1) goto bad;
  if (k == 2) dst[o++] = (unsigned char)(acc >> 4);
  if (k == 3) dst[o++] = (unsigned char)(acc >> 10), dst[o++] = (unsigned char)(acc >> 2);
  *out = value_str((const char *)dst, o);
  return 0;
bad:
  return filter_fail(r, BATON_EINVAL, "invalid base64");
}

int f_base64_encode(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return b64_encode(r, in, b64std, out);
}
int f_base64_decode(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return b64_decode(r, in, b64std, out);
}
int f_base64_url_safe_encode(struct rctx *r, const struct value *in, const struct fargs *a,
                             struct value *out) {
  return b64_encode(r, in, b64url, out);
}
int f_base64_url_safe_decode(struct rctx *r, const struct value *in, const struct fargs *a,
                             struct value *out) {
  return b64_decode(r, in, b64url, out);
}

/*
 * The lexer, in two levels. lex_markup() splits a template into text,
 * {{ output }} and {% tag %} markup, applies whitespace control ({{- -}},
 * {%- -%}) and takes {% raw %} bodies verbatim; it knows nothing of
 * expressions. tpl_lexer_next() then tokenises the inside of one output or tag
 * for the parser. Neither allocates except to grow the markup list.
 */
#include <stdlib.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c) || c == '-'; }

struct mk {
  struct markup m;
  bool trim_left, trim_right;
};

static struct markup *push(struct markup_list *l) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 32;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
  }
  struct markup *m = &l->v[l->n++];
  memset(m, 0, sizeof(*m));
  return m;
}

/* Finds needle in [p, end); returns NULL if absent. */
static const char *find2(const char *p, const char *end, char a, char b) {
  for (; p + 1 < end; p++)
    if (p[0] == a && p[1] == b) return p;
  return NULL;
}

/* Splits "name args" in [p, end) of a tag. */
static void split_tag(struct markup *m, const char *p, const char *end) {
  while (p < end && is_space(*p)) p++;
  const char *name = p;
  if (p < end && *p == '#')
    p++;
  else
    while (p < end && (is_ident_start(*p) || is_digit(*p))) p++;
  m->p = name, m->len = (size_t)(p - name);
  while (p < end && is_space(*p)) p++;
  while (end > p && is_space(end[-1])) end--;
  m->args = p, m->args_len = (size_t)(end - p);
}

/*
 * Whitespace control: trims[i] says markup i strips the whitespace before it
 * (bit 1) and after it (bit 2) from the neighbouring text.
 */
static void apply_trims(struct markup_list *l, const unsigned char *trims) {
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].kind == MK_TEXT || l->v[i].kind == MK_RAW) continue;
    if ((trims[i] & 1) && i > 0 && (l->v[i - 1].kind == MK_TEXT || l->v[i - 1].kind == MK_RAW)) {
      struct markup *t = &l->v[i - 1];
      while (t->len && is_space(t->p[t->len - 1])) t->len--;
    }
    if ((trims[i] & 2) && i + 1 < l->n &&
        (l->v[i + 1].kind == MK_TEXT || l->v[i + 1].kind == MK_RAW)) {
      struct markup *t = &l->v[i + 1];
      while (t->len && is_space(*t->p)) t->p++, t->len--;
    }
  }
}

int lex_markup(const struct tpl_src *s, struct markup_list *out, struct template_error *err) {
  const char *p = s->src, *end = s->src + s->len;
  unsigned char *trims = NULL;
  size_t trims_cap = 0;
  int rc = 0;
  while (p < end) {
    const char *open = p;
    while (open + 1 < end && !(open[0] == '{' && (open[1] == '{' || open[1] == '%'))) open++;
    if (open + 1 >= end) open = end;
    if (open > p) {
      struct markup *m = push(out);
      m->kind = MK_TEXT, m->p = p, m->len = (size_t)(open - p), m->at = p;
    }
    if (open == end) break;
    bool tag = open[1] == '%';
    const char *q = open + 2;
    unsigned char trim = 0;
    if (q < end && *q == '-') trim |= 1, q++;
    const char *close = find2(q, end, tag ? '%' : '}', '}');
    if (!close) {
      rc = tpl_error(err, s, open, BATON_EPARSE, "%s was not closed", tag ? "tag '{%'" : "output '{{'");
      goto fail;
    }
    const char *inner_end = close;
    if (inner_end > q && inner_end[-1] == '-') trim |= 2, inner_end--;
    struct markup *m = push(out);
    m->at = open;
    if (!tag) {
      m->kind = MK_OUTPUT, m->p = q, m->len = (size_t)(inner_end - q);
    } else {
      m->kind = MK_TAG;
      split_tag(m, q, inner_end);
    }
    p = close + 2;
    if (out->n + 2 > trims_cap) {
      trims_cap = (out->n + 2) * 2;
      trims = xrealloc(trims, trims_cap);
    }
    trims[out->n - 1] = trim;
    if (out->n >= 2 && out->v[out->n - 2].kind == MK_TEXT) trims[out->n - 2] = 0;
    bool is_doc = m->kind == MK_TAG && m->len == 3 && !memcmp(m->p, "doc", 3);
    if (m->kind == MK_TAG && ((m->len == 3 && !memcmp(m->p, "raw", 3)) || is_doc)) {
      /* The body is verbatim up to the first {% endraw %} (or enddoc), whatever it holds. */
      const char *end_name = is_doc ? "enddoc" : "endraw";
      const char *body = p, *scan = p, *stop = NULL, *stop_end = NULL;
      unsigned char end_trim = 0;
      while ((scan = find2(scan, end, '{', '%'))) {
        const char *r = scan + 2;
        unsigned char t = 0;
        if (r < end && *r == '-') t |= 1, r++;
        while (r < end && is_space(*r)) r++;
        if ((size_t)(end - r) >= 6 && !memcmp(r, end_name, 6)) {
          r += 6;
          while (r < end && is_space(*r)) r++;
          if (r < end && *r == '-') t |= 2, r++;
          if (end - r >= 2 && r[0] == '%' && r[1] == '}') {
            stop = scan, stop_end = r + 2, end_trim = t;
            break;
          }
        }
        scan += 2;
      }
      if (!stop) {
        rc = tpl_error(err, s, open, BATON_EPARSE, "'%s' tag was never closed", is_doc ? "doc" : "raw");
        goto fail;
      }
      struct markup *raw = push(out);
      raw->kind = MK_RAW, raw->p = body, raw->len = (size_t)(stop - body), raw->at = body;
      struct markup *er = push(out);
      er->kind = MK_TAG, er->p = end_name, er->len = 6, er->args = stop, er->args_len = 0,
      er->at = stop;
      if (out->n + 2 > trims_cap) {
        trims_cap = (out->n + 2) * 2;
        trims = xrealloc(trims, trims_cap);
      }
      trims[out->n - 2] = 0;
      trims[out->n - 1] = end_trim;
      p = stop_end;
    }
  }
  if (out->n) {
    if (out->n > trims_cap) trims = xrealloc(trims, out->n);
    /* Text markup never trims; its slot may be unset when text came last. */
    for (size_t i = 0; i < out->n; i++)
      if (out->v[i].kind == MK_TEXT) trims[i] = 0;
    apply_trims(out, trims);
  }
fail:
  free(trims);
  return rc;
}

int lex_liquid_lines(const struct tpl_src *s, const char *p, size_t len, struct markup_list *out,
                     struct template_error *err) {
  const char *end = p + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    const char *a = p;
    while (a < le && is_space(*a)) a++;
    if (a < le) {
      struct markup *m = push(out);
      m->kind = MK_TAG, m->at = a;
      split_tag(m, a, le);
      if (!m->len) return tpl_error(err, s, a, BATON_EPARSE, "expected a tag name");
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

void lexer_init(struct lexer *lx, const struct tpl_src *src, const char *p, size_t len,
                struct template_error *err) {
  lx->src = src, lx->p = p, lx->end = p + len, lx->err = err, lx->rc = 0;
  tpl_lexer_next(lx);
}

int tpl_lexer_next(struct lexer *lx) {
  const char *p = lx->p, *end = lx->end;
  while (p < end && is_space(*p)) p++;
  struct tok *t = &lx->cur;
  t->p = p, t->len = 0;
  if (p >= end || lx->rc) {
    lx->p = p;
    return t->kind = TK_END;
  }
  char c = *p;
  const char *start = p;
  if (is_ident_start(c)) {
    while (p < end && is_ident_char(*p)) p++;
    if (p < end && *p == '?') p++;
    t->kind = TK_IDENT;
  } else if (is_digit(c) || (c == '-' && p + 1 < end && is_digit(p[1]))) {
    p++;
    while (p < end && is_digit(*p)) p++;
    t->kind = TK_INT;
    if (p + 1 < end && *p == '.' && is_digit(p[1])) {
      p++;
      while (p < end && is_digit(*p)) p++;
      t->kind = TK_FLOAT;
    }
    /* "1abc" or "123foo" run on into an identifier: lax Liquid reads them as one word. */
    if (p < end && (is_ident_start(*p)) && t->kind == TK_INT && c != '-') {
      while (p < end && is_ident_char(*p)) p++;
      t->kind = TK_IDENT;
    }
  } else if (c == '\'' || c == '"') {
    const char *q = memchr(p + 1, c, (size_t)(end - p - 1));
    if (!q) {
      lx->rc = tpl_error(lx->err, lx->src, p, BATON_EPARSE, "string literal was not closed");
      lx->p = end;
      return t->kind = TK_END;
    }
    t->kind = TK_STRING, t->p = p + 1, t->len = (size_t)(q - p - 1);
    lx->p = q + 1;
    return t->kind;
  } else if (c == '.') {
    p++;
    t->kind = TK_DOT;
    if (p < end && *p == '.') p++, t->kind = TK_DOTDOT;
  } else if (c == '=' || c == '!' || c == '<' || c == '>') {
    p++;
    if (p < end && (*p == '=' || (c == '<' && *p == '>'))) p++;
    else if (c == '=' || c == '!') {
      lx->rc = tpl_error(lx->err, lx->src, start, BATON_EPARSE, "unexpected character '%c'", c);
      lx->p = end;
      return t->kind = TK_END;
    }
    t->kind = TK_CMP;
  } else {
    switch (c) {
    case '[': t->kind = TK_LBRACKET; break;
    case ']': t->kind = TK_RBRACKET; break;
    case '(': t->kind = TK_LPAREN; break;
    case ')': t->kind = TK_RPAREN; break;
    case '|': t->kind = TK_PIPE; break;
    case ':': t->kind = TK_COLON; break;
    case ',': t->kind = TK_COMMA; break;
    default:
      lx->rc = tpl_error(lx->err, lx->src, start, BATON_EPARSE, "unexpected character '%c'", c);
      lx->p = end;
      return t->kind = TK_END;
    }
    p++;
  }
  t->p = start, t->len = (size_t)(p - start);
  lx->p = p;
  return t->kind;
}

/*
 * The parser: markup from lexer.c in, a tree of nodes and expressions out,
 * allocated in the template's arena. It checks syntax only; names of filters
 * and variables are checked by compile.c. Grammar (Shopify Liquid, strict):
 *
 *   filtered := primary ('|' IDENT (':' arg (',' arg)*)?)*
 *   arg      := IDENT ':' primary | primary
 *   primary  := literal | '(' primary '..' primary ')' | path
 *   path     := (IDENT | '[' filtered ']') ('.' IDENT | '[' filtered ']')*
 *   cond     := operand (CMP|contains operand)? (('and'|'or') cond)?
 *
 * `and` and `or` have equal precedence and group to the right, as in Ruby
 * Liquid: `a or b and c` is `a or (b and c)`.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

struct parser {
  struct baton_template *t;
  const struct tpl_src *s;
  struct arena *a;
  const struct markup_list *ml;
  size_t pos;
  struct template_error *err;
  int depth;
};

struct pvec {
  void **v;
  size_t n, cap;
};
static void pvec_push(struct pvec *v, void *p) {
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 8;
    v->v = xrealloc(v->v, v->cap * sizeof(void *));
  }
  v->v[v->n++] = p;
}
/* Moves the vector into the arena and frees the temporary. */
static void *pvec_finish(struct arena *a, struct pvec *v, size_t *n) {
  void **out = NULL;
  if (v->n) {
    out = tpl_arena_alloc(a, v->n * sizeof(void *));
    memcpy(out, v->v, v->n * sizeof(void *));
  }
  *n = v->n;
  free(v->v);
  v->v = NULL, v->n = v->cap = 0;
  return out;
}

static bool tok_is(const struct tok *t, const char *word) {
  size_t n = strlen(word);
  return t->kind == TK_IDENT && t->len == n && !memcmp(t->p, word, n);
}
static bool name_is(const char *p, size_t len, const char *word) {
  size_t n = strlen(word);
  return len == n && !memcmp(p, word, n);
}

static int perr(struct parser *ps, const char *at, const char *msg, const struct tok *t) {
  if (t && t->kind != TK_END)
    return tpl_error(ps->err, ps->s, at, BATON_EPARSE, "%s, found '%.*s'", msg, (int)MIN(t->len, 40),
                     t->p);
  return tpl_error(ps->err, ps->s, at, BATON_EPARSE, "%s", msg);
}

static struct expr *new_expr(struct parser *ps, int kind, const char *at) {
  struct expr *e = tpl_arena_alloc(ps->a, sizeof(*e));
  e->kind = (uint8_t)kind, e->at = at;
  return e;
}

static int parse_filtered(struct parser *ps, struct lexer *lx, struct expr **out);

static int parse_primary(struct parser *ps, struct lexer *lx, struct expr **out) {
  if (lx->rc) return lx->rc;
  if (++ps->depth > TPL_MAX_DEPTH)
    return tpl_error(ps->err, ps->s, lx->cur.p, BATON_ETOOBIG, "expression nested too deeply");
  struct tok t = lx->cur;
  struct expr *e = NULL;
  int rc = 0;
  switch (t.kind) {
  case TK_STRING:
    e = new_expr(ps, EX_LIT, t.p - 1);
    e->lit = value_str(t.p, t.len);
    tpl_lexer_next(lx);
    break;
  case TK_INT: {
    e = new_expr(ps, EX_LIT, t.p);
    /* Integers past int64 become floats rather than silently clamping. */
    const char *digits = tpl_arena_strndup(ps->a, t.p, t.len);
    errno = 0;
    long long v = strtoll(digits, NULL, 10);
    e->lit = errno == ERANGE ? value_float(strtod(digits, NULL)) : value_int(v);
    tpl_lexer_next(lx);
    break;
  }
  case TK_FLOAT:
    e = new_expr(ps, EX_LIT, t.p);
    e->lit = value_float(strtod(tpl_arena_strndup(ps->a, t.p, t.len), NULL));
    tpl_lexer_next(lx);
    break;
  case TK_LPAREN: {
    e = new_expr(ps, EX_RANGE, t.p);
    tpl_lexer_next(lx);
    if ((rc = parse_primary(ps, lx, &e->range.lo))) break;
    if (lx->cur.kind != TK_DOTDOT) {
      rc = perr(ps, lx->cur.p, "expected '..' in a range", &lx->cur);
      break;
    }
    tpl_lexer_next(lx);
    if ((rc = parse_primary(ps, lx, &e->range.hi))) break;
    if (lx->cur.kind != TK_RPAREN) {
      rc = perr(ps, lx->cur.p, "expected ')' after a range", &lx->cur);
      break;
    }
    tpl_lexer_next(lx);
    break;
  }
  case TK_IDENT:
  case TK_LBRACKET: {
    if (t.kind == TK_IDENT) {
      struct lexer save = *lx;
      tpl_lexer_next(lx);
      bool more = lx->cur.kind == TK_DOT || lx->cur.kind == TK_LBRACKET;
      *lx = save;
      struct value lit;
      bool is_lit = true;
      if (tok_is(&t, "true"))
        lit = value_bool(true);
      else if (tok_is(&t, "false"))
        lit = value_bool(false);
      else if (tok_is(&t, "nil") || tok_is(&t, "null"))
        lit = value_nil();
      else if (tok_is(&t, "empty"))
        lit = (struct value){.type = VAL_EMPTY};
      else if (tok_is(&t, "blank"))
        lit = (struct value){.type = VAL_BLANK};
      else
        is_lit = false;
      if (is_lit && !more) {
        e = new_expr(ps, EX_LIT, t.p);
        e->lit = lit;
        tpl_lexer_next(lx);
        break;
      }
    }
    e = new_expr(ps, EX_PATH, t.p);
    struct pvec segs = {0};
    struct segment *root = tpl_arena_alloc(ps->a, sizeof(*root));
    if (t.kind == TK_IDENT) {
      root->key = t.p, root->key_len = t.len;
      tpl_lexer_next(lx);
    } else {
      tpl_lexer_next(lx);
      if ((rc = parse_filtered(ps, lx, &root->idx))) break;
      if (lx->cur.kind != TK_RBRACKET) {
        rc = perr(ps, lx->cur.p, "expected ']'", &lx->cur);
        break;
      }
      if (root->idx->kind == EX_LIT && root->idx->lit.type == VAL_STR)
        root->key = root->idx->lit.s.p, root->key_len = root->idx->lit.s.len, root->idx = NULL;
      tpl_lexer_next(lx);
    }
    pvec_push(&segs, root);
    for (;;) {
      if (lx->cur.kind == TK_DOT) {
        tpl_lexer_next(lx);
        if (lx->cur.kind != TK_IDENT) {
          rc = perr(ps, lx->cur.p, "expected a name after '.'", &lx->cur);
          break;
        }
        struct segment *sg = tpl_arena_alloc(ps->a, sizeof(*sg));
        sg->key = lx->cur.p, sg->key_len = lx->cur.len;
        pvec_push(&segs, sg);
        tpl_lexer_next(lx);
      } else if (lx->cur.kind == TK_LBRACKET) {
        tpl_lexer_next(lx);
        struct segment *sg = tpl_arena_alloc(ps->a, sizeof(*sg));
        if ((rc = parse_filtered(ps, lx, &sg->idx))) break;
        if (lx->cur.kind != TK_RBRACKET) {
          rc = perr(ps, lx->cur.p, "expected ']'", &lx->cur);
          break;
        }
        if (sg->idx->kind == EX_LIT && sg->idx->lit.type == VAL_STR)
          sg->key = sg->idx->lit.s.p, sg->key_len = sg->idx->lit.s.len, sg->idx = NULL;
        pvec_push(&segs, sg);
        tpl_lexer_next(lx);
      } else {
        break;
      }
    }
    size_t n;
    struct segment **sp = pvec_finish(ps->a, &segs, &n);
    if (rc) break;
    e->path.seg = tpl_arena_alloc(ps->a, n * sizeof(struct segment));
    for (size_t i = 0; i < n; i++) e->path.seg[i] = *sp[i];
    e->path.n_seg = n;
    break;
  }
  default:
    rc = perr(ps, t.p, lx->rc ? "bad expression" : "expected a value", &t);
  }
  ps->depth--;
  if (!rc && lx->rc) rc = lx->rc;
  *out = e;
  return rc;
}

/* Parses ": arg, arg, name: arg" after a filter name or in include/render. */
static int parse_args(struct parser *ps, struct lexer *lx, struct pvec *args, struct pvec *kw_names,
                      struct pvec *kw_vals, bool allow_no_comma) {
  for (;;) {
    struct tok t = lx->cur;
    if (t.kind == TK_IDENT) {
      struct lexer save = *lx;
      tpl_lexer_next(lx);
      if (lx->cur.kind == TK_COLON) {
        tpl_lexer_next(lx);
        struct expr *v;
        int rc = parse_primary(ps, lx, &v);
        if (rc) return rc;
        struct tok *name = tpl_arena_alloc(ps->a, sizeof(*name));
        *name = t;
        pvec_push(kw_names, name);
        pvec_push(kw_vals, v);
        goto next;
      }
      *lx = save;
    }
    if (!args) return perr(ps, t.p, "expected a keyword argument", &t);
    struct expr *v;
    int rc = parse_primary(ps, lx, &v);
    if (rc) return rc;
    pvec_push(args, v);
  next:
    if (lx->cur.kind == TK_COMMA) {
      tpl_lexer_next(lx);
      continue;
    }
    if (allow_no_comma && lx->cur.kind == TK_IDENT) continue;
    return 0;
  }
}

static void kw_finish(struct parser *ps, struct pvec *names, struct pvec *vals, const char ***out_names,
                      size_t **out_lens, struct expr ***out_vals, size_t *n) {
  size_t nn;
  struct tok **toks = pvec_finish(ps->a, names, &nn);
  *out_vals = pvec_finish(ps->a, vals, n);
  *out_names = tpl_arena_alloc(ps->a, (nn + 1) * sizeof(char *));
  *out_lens = tpl_arena_alloc(ps->a, (nn + 1) * sizeof(size_t));
  for (size_t i = 0; i < nn; i++) (*out_names)[i] = toks[i]->p, (*out_lens)[i] = toks[i]->len;
}

static int parse_filtered(struct parser *ps, struct lexer *lx, struct expr **out) {
  struct expr *base;
  int rc = parse_primary(ps, lx, &base);
  if (rc) return rc;
  if (lx->cur.kind != TK_PIPE) {
    *out = base;
    return 0;
  }
  struct expr *e = new_expr(ps, EX_FILTERED, base->at);
  e->filt.base = base;
  struct filter_call *calls = NULL;
  size_t n = 0;
  while (lx->cur.kind == TK_PIPE) {
    tpl_lexer_next(lx);
    if (lx->cur.kind != TK_IDENT) {
      free(calls);
      return perr(ps, lx->cur.p, "expected a filter name after '|'", &lx->cur);
    }
    calls = xrealloc(calls, (n + 1) * sizeof(*calls));
    struct filter_call *fc = &calls[n++];
    memset(fc, 0, sizeof(*fc));
    fc->name = lx->cur.p, fc->name_len = lx->cur.len, fc->at = lx->cur.p;
    tpl_lexer_next(lx);
    if (lx->cur.kind == TK_COLON) {
      tpl_lexer_next(lx);
      struct pvec args = {0}, kn = {0}, kv = {0};
      rc = parse_args(ps, lx, &args, &kn, &kv, false);
      fc->args = pvec_finish(ps->a, &args, &fc->n_args);
      kw_finish(ps, &kn, &kv, &fc->kw_names, &fc->kw_lens, &fc->kw_vals, &fc->n_kw);
      if (rc) {
        free(calls);
        return rc;
      }
    }
  }
  e->filt.calls = tpl_arena_alloc(ps->a, n * sizeof(*calls));
  memcpy(e->filt.calls, calls, n * sizeof(*calls));
  e->filt.n_calls = n;
  free(calls);
  *out = e;
  return lx->rc;
}

static int parse_operand_cmp(struct parser *ps, struct lexer *lx, struct expr **out) {
  struct expr *l;
  int rc = parse_primary(ps, lx, &l);
  if (rc) return rc;
  struct tok t = lx->cur;
  if (t.kind == TK_CMP || tok_is(&t, "contains")) {
    tpl_lexer_next(lx);
    struct expr *r;
    if ((rc = parse_primary(ps, lx, &r))) return rc;
    struct expr *e = new_expr(ps, t.kind == TK_CMP ? EX_CMP : EX_CONTAINS, t.p);
    if (t.kind == TK_CMP) {
      if (t.len == 2 && t.p[0] == '=') e->op = CMP_EQ;
      else if (t.len == 2 && (t.p[0] == '!' || t.p[1] == '>')) e->op = CMP_NE;
      else if (t.len == 2 && t.p[0] == '<') e->op = CMP_LE;
      else if (t.len == 2) e->op = CMP_GE;
      else e->op = t.p[0] == '<' ? CMP_LT : CMP_GT;
    }
    e->bin.l = l, e->bin.r = r;
    l = e;
  }
  *out = l;
  return 0;
}

static int parse_cond(struct parser *ps, struct lexer *lx, struct expr **out) {
  if (++ps->depth > TPL_MAX_DEPTH)
    return tpl_error(ps->err, ps->s, lx->cur.p, BATON_ETOOBIG, "condition nested too deeply");
  struct expr *l;
  int rc = parse_operand_cmp(ps, lx, &l);
  if (rc) return rc;
  struct tok t = lx->cur;
  if (tok_is(&t, "and") || tok_is(&t, "or")) {
    tpl_lexer_next(lx);
    struct expr *r;
    if ((rc = parse_cond(ps, lx, &r))) return rc;
    struct expr *e = new_expr(ps, t.p[0] == 'a' ? EX_AND : EX_OR, t.p);
    e->bin.l = l, e->bin.r = r;
    l = e;
  }
  ps->depth--;
  *out = l;
  return 0;
}

/* Parses a whole markup's text as one expression kind and checks nothing follows. */
static int parse_full(struct parser *ps, const char *p, size_t len, bool cond, struct expr **out) {
  struct lexer lx;
  lexer_init(&lx, ps->s, p, len, ps->err);
  if (lx.rc) return lx.rc;
  int rc = cond ? parse_cond(ps, &lx, out) : parse_filtered(ps, &lx, out);
  if (rc) return rc;
  if (lx.cur.kind != TK_END) return perr(ps, lx.cur.p, "unexpected text after the expression", &lx.cur);
  return lx.rc;
}

static struct node *new_node(struct parser *ps, int kind, const struct markup *m) {
  struct node *n = tpl_arena_alloc(ps->a, sizeof(*n));
  n->kind = (uint8_t)kind, n->at = m->at;
  return n;
}

static void body_push(struct body *b, struct node *n) {
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 8;
    b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
  }
  b->v[b->n++] = n;
}
static void body_finish(struct parser *ps, struct body *b) {
  struct node **v = NULL;
  if (b->n) {
    v = tpl_arena_alloc(ps->a, b->n * sizeof(*v));
    memcpy(v, b->v, b->n * sizeof(*v));
  }
  free(b->v);
  b->v = v, b->cap = b->n;
}

/* Returns true if markup m is a tag named one of the |-separated words in stops. */
static bool is_stop(const struct markup *m, const char *stops) {
  if (m->kind != MK_TAG || !stops) return false;
  const char *s = stops;
  while (*s) {
    const char *e = strchr(s, '|');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (m->len == n && !memcmp(m->p, s, n)) return true;
    if (!e) break;
    s = e + 1;
  }
  return false;
}

static int parse_body(struct parser *ps, struct body *b, const char *stops, const struct markup **stop,
                      const struct markup *opener);

/* Reads a variable name for assign/capture/for/increment: an identifier or digits. */
static int read_name(struct parser *ps, struct lexer *lx, const char **name, size_t *len,
                     bool allow_string) {
  struct tok t = lx->cur;
  if (t.kind == TK_IDENT || t.kind == TK_INT || (allow_string && t.kind == TK_STRING)) {
    if (t.kind == TK_INT && t.p[0] == '-') return perr(ps, t.p, "expected a variable name", &t);
    if (t.kind == TK_IDENT && t.p[t.len - 1] == '?' && !allow_string)
      return perr(ps, t.p, "a variable name cannot end with '?'", &t);
    *name = t.p, *len = t.len;
    tpl_lexer_next(lx);
    return lx->rc;
  }
  return perr(ps, t.p, "expected a variable name", &t);
}

static int expect_end(struct parser *ps, struct lexer *lx) {
  if (lx->rc) return lx->rc;
  if (lx->cur.kind != TK_END) return perr(ps, lx->cur.p, "unexpected text in tag", &lx->cur);
  return 0;
}

static int parse_if(struct parser *ps, const struct markup *m, struct node *n) {
  struct branch *br = NULL;
  size_t nb = 0;
  const struct markup *cur = m;
  bool seen_else = false;
  int rc = 0;
  /* Branches after the first else are parsed (they must be well formed) but dropped. */
  for (;;) {
    struct branch b = {0};
    bool keep = !seen_else;
    if (keep && (cur == m || name_is(cur->p, cur->len, "elsif")))
      if ((rc = parse_full(ps, cur->args, cur->args_len, true, &b.cond))) break;
    const struct markup *stop;
    if ((rc = parse_body(ps, &b.body, n->negate ? "elsif|else|endunless" : "elsif|else|endif", &stop, m)))
      break;
    if (keep) {
      br = xrealloc(br, (nb + 1) * sizeof(*br));
      br[nb++] = b;
    }
    if (cur != m && name_is(cur->p, cur->len, "else")) seen_else = true;
    if (is_stop(stop, "endif|endunless")) break;
    cur = stop;
  }
  if (!rc) {
    n->branches = tpl_arena_alloc(ps->a, nb * sizeof(*br) + 1);
    memcpy(n->branches, br, nb * sizeof(*br));
    n->n_branches = nb;
  }
  free(br);
  return rc;
}

static int parse_tag(struct parser *ps, const struct markup *m, struct body *out);

static int parse_body(struct parser *ps, struct body *b, const char *stops, const struct markup **stop,
                      const struct markup *opener) {
  if (++ps->depth > TPL_MAX_DEPTH)
    return tpl_error(ps->err, ps->s, opener ? opener->at : NULL, BATON_ETOOBIG,
                     "blocks nested too deeply");
  int rc = 0;
  *stop = NULL;
  while (ps->pos < ps->ml->n) {
    const struct markup *m = &ps->ml->v[ps->pos++];
    if (m->kind == MK_TEXT || m->kind == MK_RAW) {
      if (!m->len) continue;
      struct node *n = new_node(ps, ND_TEXT, m);
      n->text = m->p, n->text_len = m->len;
      body_push(b, n);
    } else if (m->kind == MK_OUTPUT) {
      struct node *n = new_node(ps, ND_OUTPUT, m);
      const char *p = m->p;
      size_t len = m->len;
      while (len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++, len--;
      if (len) {
        if ((rc = parse_full(ps, p, len, false, &n->expr))) break;
      }
      body_push(b, n);
    } else if (is_stop(m, stops)) {
      *stop = m;
      break;
    } else if ((rc = parse_tag(ps, m, b))) {
      break;
    }
  }
  if (!rc && stops && !*stop) {
    if (opener)
      rc = tpl_error(ps->err, ps->s, opener->at, BATON_EPARSE, "tag '%.*s' was never closed",
                     (int)opener->len, opener->p);
    else
      rc = tpl_error(ps->err, ps->s, NULL, BATON_EPARSE, "block was never closed");
  }
  body_finish(ps, b);
  ps->depth--;
  return rc;
}

/* Skips markup up to the matching end tag (comment, doc), counting nesting. */
static int skip_block(struct parser *ps, const struct markup *m, const char *open, const char *close) {
  int level = 1;
  while (ps->pos < ps->ml->n) {
    const struct markup *x = &ps->ml->v[ps->pos++];
    if (x->kind != MK_TAG) continue;
    if (name_is(x->p, x->len, open)) level++;
    else if (name_is(x->p, x->len, close) && --level == 0) return 0;
  }
  return tpl_error(ps->err, ps->s, m->at, BATON_EPARSE, "tag '%s' was never closed", open);
}

static int parse_for(struct parser *ps, const struct markup *m, struct node *n, bool tablerow) {
  n->loop = tpl_arena_alloc(ps->a, sizeof(*n->loop));
  struct lexer lx;
  lexer_init(&lx, ps->s, m->args, m->args_len, ps->err);
  int rc = read_name(ps, &lx, &n->name, &n->name_len, true);
  if (rc) return rc;
  if (!tok_is(&lx.cur, "in")) return perr(ps, lx.cur.p, "expected 'in'", &lx.cur);
  tpl_lexer_next(&lx);
  const char *coll = lx.cur.p;
  if ((rc = parse_primary(ps, &lx, &n->expr))) return rc;
  n->loop->loop_name_len = n->name_len + 1 + (size_t)(lx.cur.p - coll);
  char *ln = tpl_arena_alloc(ps->a, n->loop->loop_name_len + 1);
  memcpy(ln, n->name, n->name_len);
  ln[n->name_len] = '-';
  memcpy(ln + n->name_len + 1, coll, (size_t)(lx.cur.p - coll));
  while (n->loop->loop_name_len > n->name_len + 1 && ln[n->loop->loop_name_len - 1] == ' ') n->loop->loop_name_len--;
  n->loop->loop_name = ln;
  while (lx.cur.kind != TK_END && !lx.rc) {
    if (lx.cur.kind == TK_COMMA) {
      tpl_lexer_next(&lx);
      continue;
    }
    if (tok_is(&lx.cur, "reversed") && !tablerow) {
      n->loop->reversed = true;
      tpl_lexer_next(&lx);
      continue;
    }
    struct tok t = lx.cur;
    if (t.kind != TK_IDENT) return perr(ps, t.p, "unexpected text in tag", &t);
    tpl_lexer_next(&lx);
    if (lx.cur.kind != TK_COLON) return perr(ps, lx.cur.p, "expected ':'", &lx.cur);
    tpl_lexer_next(&lx);
    struct expr **slot;
    if (tok_is(&t, "limit")) slot = &n->loop->limit;
    else if (tok_is(&t, "offset")) slot = &n->loop->offset;
    else if (tok_is(&t, "cols") && tablerow) slot = &n->loop->cols;
    else return perr(ps, t.p, "unknown loop argument", &t);
    if (slot == &n->loop->offset && tok_is(&lx.cur, "continue")) {
      n->loop->offset_continue = true;
      tpl_lexer_next(&lx);
      continue;
    }
    if ((rc = parse_primary(ps, &lx, slot))) return rc;
  }
  if ((rc = expect_end(ps, &lx))) return rc;
  const struct markup *stop;
  if ((rc = parse_body(ps, &n->body, tablerow ? "endtablerow" : "else|endfor", &stop, m))) return rc;
  if (!tablerow && name_is(stop->p, stop->len, "else"))
    rc = parse_body(ps, &n->loop->else_body, "endfor", &stop, m);
  return rc;
}

static int parse_case(struct parser *ps, const struct markup *m, struct node *n) {
  int rc = parse_full(ps, m->args, m->args_len, false, &n->expr);
  if (rc) return rc;
  struct body ignored = {0};
  const struct markup *stop;
  if ((rc = parse_body(ps, &ignored, "when|else|endcase", &stop, m))) return rc;
  struct branch *br = NULL;
  size_t nb = 0;
  while (!name_is(stop->p, stop->len, "endcase")) {
    struct branch b = {0};
    const struct markup *head = stop;
    if (name_is(head->p, head->len, "when")) {
      struct lexer lx;
      lexer_init(&lx, ps->s, head->args, head->args_len, ps->err);
      struct pvec vals = {0};
      for (;;) {
        struct expr *v;
        if ((rc = parse_primary(ps, &lx, &v))) break;
        pvec_push(&vals, v);
        if (lx.cur.kind == TK_COMMA || tok_is(&lx.cur, "or")) {
          tpl_lexer_next(&lx);
          continue;
        }
        rc = expect_end(ps, &lx);
        break;
      }
      b.whens = (struct expr **)pvec_finish(ps->a, &vals, &b.n_whens);
      if (rc) break;
    }
    if ((rc = parse_body(ps, &b.body, "when|else|endcase", &stop, m))) break;
    br = xrealloc(br, (nb + 1) * sizeof(*br));
    br[nb++] = b;
  }
  if (!rc) {
    n->branches = tpl_arena_alloc(ps->a, nb * sizeof(*br) + 1);
    if (nb) memcpy(n->branches, br, nb * sizeof(*br));
    n->n_branches = nb;
  }
  free(br);
  return rc;
}

static int parse_include(struct parser *ps, const struct markup *m, struct node *n, bool render) {
  n->call = tpl_arena_alloc(ps->a, sizeof(*n->call));
  struct lexer lx;
  lexer_init(&lx, ps->s, m->args, m->args_len, ps->err);
  int rc;
  if (lx.cur.kind == TK_STRING) {
    if ((rc = parse_primary(ps, &lx, &n->call->tpl_name))) return rc;
  } else if (!render && (lx.cur.kind == TK_IDENT || lx.cur.kind == TK_LBRACKET)) {
    if ((rc = parse_primary(ps, &lx, &n->call->tpl_name))) return rc;
  } else {
    return perr(ps, lx.cur.p, "expected the name of a content block in quotes", &lx.cur);
  }
  if (tok_is(&lx.cur, "with") || tok_is(&lx.cur, "for")) {
    n->flag = lx.cur.p[0] == 'f';
    tpl_lexer_next(&lx);
    if ((rc = parse_primary(ps, &lx, &n->call->with))) return rc;
    if (tok_is(&lx.cur, "as")) {
      tpl_lexer_next(&lx);
      if ((rc = read_name(ps, &lx, &n->name, &n->name_len, false))) return rc;
    }
  }
  if (lx.cur.kind == TK_COMMA) tpl_lexer_next(&lx);
  struct pvec kn = {0}, kv = {0};
  rc = 0;
  if (lx.cur.kind != TK_END) rc = parse_args(ps, &lx, NULL, &kn, &kv, true);
  kw_finish(ps, &kn, &kv, &n->call->kw_names, &n->call->kw_lens, &n->call->kw_vals, &n->call->n_kw);
  if (rc) return rc;
  return expect_end(ps, &lx);
}

static int parse_liquid(struct parser *ps, const struct markup *m, struct body *out) {
  struct markup_list ml = {0};
  int rc = lex_liquid_lines(ps->s, m->args, m->args_len, &ml, ps->err);
  if (!rc) {
    struct parser sub = *ps;
    sub.ml = &ml, sub.pos = 0;
    const struct markup *stop;
    struct body b = {0};
    rc = parse_body(&sub, &b, NULL, &stop, m);
    for (size_t i = 0; !rc && i < b.n; i++) body_push(out, b.v[i]);
  }
  free(ml.v);
  return rc;
}

static int parse_tag(struct parser *ps, const struct markup *m, struct body *out) {
  const char *name = m->p;
  size_t len = m->len;
  struct node *n = NULL;
  int rc = 0;
#define IS(w) name_is(name, len, w)
  if (IS("#")) {
    /* Inline comment: in a {% liquid %} block each line is its own comment. */
    return 0;
  } else if (IS("if") || IS("unless")) {
    n = new_node(ps, ND_IF, m);
    n->negate = IS("unless");
    rc = parse_if(ps, m, n);
  } else if (IS("case")) {
    n = new_node(ps, ND_CASE, m);
    rc = parse_case(ps, m, n);
  } else if (IS("for") || IS("tablerow")) {
    n = new_node(ps, IS("for") ? ND_FOR : ND_TABLEROW, m);
    rc = parse_for(ps, m, n, n->kind == ND_TABLEROW);
  } else if (IS("assign")) {
    n = new_node(ps, ND_ASSIGN, m);
    /* The name is scanned by hand: '=' alone is not an expression token. */
    const char *p = m->args, *end = m->args + m->args_len;
    while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '-')) p++;
    if (p == m->args || m->args[0] == '-')
      return perr(ps, m->args_len ? m->args : m->at, "expected a variable name after assign", NULL);
    n->name = m->args, n->name_len = (size_t)(p - m->args);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (p >= end || *p != '=' || (p + 1 < end && p[1] == '='))
      return perr(ps, p < end ? p : m->at, "expected '=' after the variable name in assign", NULL);
    rc = parse_full(ps, p + 1, (size_t)(end - p - 1), false, &n->expr);
  } else if (IS("capture")) {
    n = new_node(ps, ND_CAPTURE, m);
    struct lexer lx;
    lexer_init(&lx, ps->s, m->args, m->args_len, ps->err);
    if ((rc = read_name(ps, &lx, &n->name, &n->name_len, true))) return rc;
    if ((rc = expect_end(ps, &lx))) return rc;
    const struct markup *stop;
    rc = parse_body(ps, &n->body, "endcapture", &stop, m);
  } else if (IS("echo")) {
    n = new_node(ps, ND_OUTPUT, m);
    if (m->args_len) rc = parse_full(ps, m->args, m->args_len, false, &n->expr);
  } else if (IS("increment") || IS("decrement")) {
    n = new_node(ps, IS("increment") ? ND_INCREMENT : ND_DECREMENT, m);
    struct lexer lx;
    lexer_init(&lx, ps->s, m->args, m->args_len, ps->err);
    if ((rc = read_name(ps, &lx, &n->name, &n->name_len, false))) return rc;
    rc = expect_end(ps, &lx);
  } else if (IS("cycle")) {
    n = new_node(ps, ND_CYCLE, m);
    n->cycle = tpl_arena_alloc(ps->a, sizeof(*n->cycle));
    struct lexer lx;
    lexer_init(&lx, ps->s, m->args, m->args_len, ps->err);
    struct pvec items = {0};
    for (;;) {
      struct expr *v;
      if ((rc = parse_primary(ps, &lx, &v))) break;
      if (lx.cur.kind == TK_COLON && !n->expr && !items.n) {
        n->expr = v;
        tpl_lexer_next(&lx);
        continue;
      }
      pvec_push(&items, v);
      if (lx.cur.kind == TK_COMMA) {
        tpl_lexer_next(&lx);
        continue;
      }
      rc = expect_end(ps, &lx);
      break;
    }
    n->cycle->items = (struct expr **)pvec_finish(ps->a, &items, &n->cycle->n_items);
    /* Without a group name, cycles with the same values share a counter. */
    n->name = m->args, n->name_len = m->args_len;
  } else if (IS("break") || IS("continue")) {
    n = new_node(ps, IS("break") ? ND_BREAK : ND_CONTINUE, m);
  } else if (IS("include") || IS("render")) {
    n = new_node(ps, IS("include") ? ND_INCLUDE : ND_RENDER, m);
    rc = parse_include(ps, m, n, n->kind == ND_RENDER);
  } else if (IS("comment")) {
    return skip_block(ps, m, "comment", "endcomment");
  } else if ((IS("doc") || IS("raw")) &&
             (ps->pos + 1 >= ps->ml->n || ps->ml->v[ps->pos].kind != MK_RAW)) {
    /* Only lex_markup takes verbatim bodies: not inside {% liquid %}. */
    return tpl_error(ps->err, ps->s, m->at, BATON_EPARSE, "'%.*s' cannot be used in a liquid tag",
                     (int)len, name);
  } else if (IS("doc")) {
    /* lex_markup took the body verbatim, as for raw; doc renders nothing. */
    if (m->args_len) return perr(ps, m->args, "doc takes no arguments", NULL);
    ps->pos += 2;
    return 0;
  } else if (IS("raw")) {
    /* lex_markup made the body one MK_RAW markup followed by endraw. */
    const struct markup *body = &ps->ml->v[ps->pos];
    if (body->len) {
      n = new_node(ps, ND_TEXT, body);
      n->text = body->p, n->text_len = body->len;
    }
    ps->pos += 2;
  } else if (IS("liquid")) {
    return parse_liquid(ps, m, out);
  } else if (IS("ifchanged")) {
    n = new_node(ps, ND_IFCHANGED, m);
    const struct markup *stop;
    rc = parse_body(ps, &n->body, "endifchanged", &stop, m);
  } else if (IS("autoescape")) {
    n = new_node(ps, ND_AUTOESCAPE, m);
    n->flag = !name_is(m->args, m->args_len, "false");
    if (m->args_len && !name_is(m->args, m->args_len, "false") && !name_is(m->args, m->args_len, "true"))
      return perr(ps, m->args, "expected 'true' or 'false' after autoescape", NULL);
    const struct markup *stop;
    rc = parse_body(ps, &n->body, "endautoescape", &stop, m);
  } else if (len > 3 && !memcmp(name, "end", 3)) {
    return tpl_error(ps->err, ps->s, m->at, BATON_EPARSE, "unexpected '%.*s'", (int)len, name);
  } else if (IS("else") || IS("elsif") || IS("when")) {
    return tpl_error(ps->err, ps->s, m->at, BATON_EPARSE, "unexpected '%.*s'", (int)len, name);
  } else {
    return tpl_error(ps->err, ps->s, m->at, BATON_EPARSE, "unknown tag '%.*s'", (int)MIN(len, 40),
                     len ? name : "");
  }
#undef IS
  if (n && !rc) body_push(out, n);
  return rc;
}

int parse_template(struct baton_template *t, struct template_error *err) {
  struct markup_list ml = {0};
  int rc = lex_markup(&t->src, &ml, err);
  if (!rc) {
    struct parser ps = {.t = t, .s = &t->src, .a = &t->arena, .ml = &ml, .err = err};
    const struct markup *stop;
    rc = parse_body(&ps, &t->root, NULL, &stop, NULL);
  }
  free(ml.v);
  return rc;
}

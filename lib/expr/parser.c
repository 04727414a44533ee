/*
 * The parser: recursive descent over CEL's grammar, producing the AST in the
 * compile arena. It expands the macros (has, all, exists, exists_one, map,
 * filter) into AST_SELECT/AST_COMPR nodes, folds a minus sign into an integer
 * literal (so -9223372036854775808 is representable), and rejects reserved
 * words as identifiers. Names are not resolved here; that is the checker's.
 *
 *   expr     = or ['?' or ':' expr]
 *   or       = and {'||' and}          and = rel {'&&' rel}
 *   rel      = add {('<'|'<='|'>'|'>='|'=='|'!='|'in') add}
 *   add      = mul {('+'|'-') mul}     mul = unary {('*'|'/'|'%') unary}
 *   unary    = member | '!'{'!'} member | '-'{'-'} member
 *   member   = primary {'.' IDENT ['(' args ')'] | '[' expr ']'}
 *   primary  = ['.'] IDENT ['(' args ')'] | '(' expr ')' | '[' [args [',']] ']'
 *            | '{' [entries [',']] '}' | literal
 */
#include <stdio.h>
#include <string.h>

#include "expr/expr_int.h"

static const char *const reserved[] = {
    "as",  "break", "const",   "continue",  "else",   "for", "function", "if",   "import",
    "let", "loop",  "package", "namespace", "return", "var", "void",     "while"};

static bool is_reserved(const char *s, size_t n) {
  for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
    if (strlen(reserved[i]) == n && !memcmp(reserved[i], s, n)) return true;
  return false;
}

static struct ast *node(struct parser *p, enum ast_kind k, uint32_t pos) {
  struct ast *n = arena_alloc(p->arena, sizeof(*n));
  if (!n) return NULL;
  memset(n, 0, sizeof(*n));
  n->kind = k;
  n->pos = pos;
  n->type = -1;
  n->slot = -1;
  n->fn = -1;
  return n;
}

static int fail(struct parser *p, uint32_t pos, const char *fmt, const char *arg) {
  if (p->tok.kind != TOK_ERROR || pos != p->tok.pos)
    diag_set(p->diag, p->lx.src, p->lx.len, pos, fmt, arg);
  return BATON_EPARSE;
}

static int advance(struct parser *p) {
  if (lexer_next(&p->lx, &p->tok) == TOK_ERROR) return BATON_EPARSE;
  return 0;
}

static int expect(struct parser *p, enum tok_kind k) {
  if (p->tok.kind == TOK_ERROR) return BATON_EPARSE;
  if (p->tok.kind != k) {
    char what[64];
    snprintf(what, sizeof(what), "%s", token_name(k));
    diag_set(p->diag, p->lx.src, p->lx.len, p->tok.pos, "expected %s, found %s", what,
             token_name(p->tok.kind));
    return BATON_EPARSE;
  }
  return advance(p);
}

#define OOM(p) fail((p), (p)->tok.pos, "%s", "expression too large")

static int parse_ternary(struct parser *p, struct ast **out);

/* Parses comma-separated expressions up to close; a trailing comma is allowed. */
static int parse_args(struct parser *p, enum tok_kind close, struct ast ***args, uint32_t *n) {
  struct ast *tmp[256];
  uint32_t cnt = 0;
  int rc;
  size_t cap = ARRAY_SIZE(tmp);
  struct ast **v = tmp;
  while (p->tok.kind != close) {
    if (cnt == cap) {
      /* Long lists: copy into a bigger arena array. */
      struct ast **nv = arena_alloc(p->arena, cap * 2 * sizeof(*nv));
      if (!nv) return OOM(p);
      memcpy(nv, v, cnt * sizeof(*nv));
      v = nv;
      cap *= 2;
    }
    if ((rc = parse_ternary(p, &v[cnt]))) return rc;
    cnt++;
    if (p->tok.kind != TOK_COMMA) break;
    if ((rc = advance(p))) return rc;
  }
  if ((rc = expect(p, close))) return rc;
  *args = arena_alloc(p->arena, (cnt ? cnt : 1) * sizeof(**args));
  if (!*args) return OOM(p);
  memcpy(*args, v, cnt * sizeof(**args));
  *n = cnt;
  return 0;
}

static bool name_is(const struct ast *n, const char *s) {
  return n->name_len == strlen(s) && !memcmp(n->name, s, n->name_len);
}

/* Turns target.name(args) into a comprehension node when it is a macro. */
static int expand_member_macro(struct parser *p, struct ast *call) {
  static const struct {
    const char *name;
    enum macro_kind kind;
    uint32_t n_args;
  } macros[] = {{"all", MACRO_ALL, 2},
                {"exists", MACRO_EXISTS, 2},
                {"exists_one", MACRO_EXISTS_ONE, 2},
                {"existsOne", MACRO_EXISTS_ONE, 2},
                {"map", MACRO_MAP, 2},
                {"map", MACRO_MAP, 3},
                {"filter", MACRO_FILTER, 2}};
  for (size_t i = 0; i < ARRAY_SIZE(macros); i++) {
    if (!name_is(call, macros[i].name) || call->n_args != macros[i].n_args) continue;
    struct ast *v = call->args[0];
    if (v->kind != AST_IDENT) return fail(p, v->pos, "%s", "argument is not an identifier");
    call->kind = AST_COMPR;
    call->macro = macros[i].kind;
    call->name = v->name;
    call->name_len = v->name_len;
    /* a: range (already the call's target), b: predicate or transform,
     * c: the transform of three-argument map (b is then the filter). */
    call->b = call->args[1];
    call->c = call->n_args == 3 ? call->args[2] : NULL;
    return 0;
  }
  return 0;
}

static int parse_primary(struct parser *p, struct ast **out) {
  struct token t = p->tok;
  struct ast *n;
  int rc;
  switch (t.kind) {
    case TOK_INT:
      if (t.num.u > (uint64_t)INT64_MAX)
        return fail(p, t.pos, "%s", "integer literal out of range");
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_int((int64_t)t.num.u);
      break;
    case TOK_UINT:
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_uint(t.num.u);
      break;
    case TOK_DOUBLE:
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_double(t.num.d);
      break;
    case TOK_STRING:
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_string(t.str, t.str_len);
      break;
    case TOK_BYTES:
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_bytes(t.str, t.str_len);
      break;
    case TOK_TRUE:
    case TOK_FALSE:
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_bool(t.kind == TOK_TRUE);
      break;
    case TOK_NULL:
      if (!(n = node(p, AST_LIT, t.pos))) return OOM(p);
      n->lit = baton_expr_null();
      break;
    case TOK_LPAREN:
      if ((rc = advance(p)) || (rc = parse_ternary(p, out))) return rc;
      return expect(p, TOK_RPAREN);
    case TOK_LBRACKET:
      if (!(n = node(p, AST_LIST, t.pos))) return OOM(p);
      if ((rc = advance(p)) || (rc = parse_args(p, TOK_RBRACKET, &n->args, &n->n_args))) return rc;
      *out = n;
      return 0;
    case TOK_LBRACE: {
      if (!(n = node(p, AST_MAP, t.pos))) return OOM(p);
      if ((rc = advance(p))) return rc;
      struct ast **items = NULL;
      uint32_t cnt = 0, cap = 0;
      while (p->tok.kind != TOK_RBRACE) {
        if (cnt + 2 > cap) {
          uint32_t ncap = cap ? cap * 2 : 16;
          struct ast **ni = arena_alloc(p->arena, ncap * sizeof(*ni));
          if (!ni) return OOM(p);
          if (cnt) memcpy(ni, items, cnt * sizeof(*ni));
          items = ni;
          cap = ncap;
        }
        if ((rc = parse_ternary(p, &items[cnt]))) return rc;
        if ((rc = expect(p, TOK_COLON))) return rc;
        if ((rc = parse_ternary(p, &items[cnt + 1]))) return rc;
        cnt += 2;
        if (p->tok.kind != TOK_COMMA) break;
        if ((rc = advance(p))) return rc;
      }
      if ((rc = expect(p, TOK_RBRACE))) return rc;
      n->args = items;
      n->n_args = cnt;
      *out = n;
      return 0;
    }
    case TOK_DOT:
    case TOK_IDENT: {
      bool leading_dot = t.kind == TOK_DOT;
      if (leading_dot) {
        if ((rc = advance(p))) return rc;
        t = p->tok;
        if (t.kind != TOK_IDENT)
          return fail(p, t.pos, "expected identifier, found %s", token_name(t.kind));
      }
      if (t.num.u == 1) return fail(p, t.pos, "%s", "quoted identifiers are only valid after '.'");
      if (is_reserved(t.str, t.str_len)) {
        char nm[16];
        snprintf(nm, sizeof(nm), "%.*s", (int)t.str_len, t.str);
        return fail(p, t.pos, "reserved identifier '%s'", nm);
      }
      if ((rc = advance(p))) return rc;
      if (p->tok.kind == TOK_LPAREN) {
        if (!(n = node(p, AST_CALL, t.pos))) return OOM(p);
        n->name = t.str;
        n->name_len = t.str_len;
        if ((rc = advance(p)) || (rc = parse_args(p, TOK_RPAREN, &n->args, &n->n_args))) return rc;
        if (name_is(n, "has")) {
          if (n->n_args != 1 || n->args[0]->kind != AST_SELECT)
            return fail(p, t.pos, "%s", "invalid argument to has() macro");
          *out = n->args[0];
          (*out)->test_only = true;
          return 0;
        }
        *out = n;
        return 0;
      }
      if (p->tok.kind == TOK_LBRACE)
        return fail(p, p->tok.pos, "%s", "message construction is not supported");
      if (!(n = node(p, AST_IDENT, t.pos))) return OOM(p);
      n->name = t.str;
      n->name_len = t.str_len;
      *out = n;
      return 0;
    }
    case TOK_ERROR:
      return BATON_EPARSE;
    default:
      return fail(p, t.pos, "unexpected %s", token_name(t.kind));
  }
  *out = n;
  return advance(p);
}

static int parse_member(struct parser *p, struct ast **out) {
  int rc;
  if ((rc = parse_primary(p, out))) return rc;
  for (;;) {
    struct token t = p->tok;
    if (t.kind == TOK_DOT) {
      if ((rc = advance(p))) return rc;
      struct token f = p->tok;
      if (f.kind != TOK_IDENT && f.kind != TOK_TRUE && f.kind != TOK_FALSE && f.kind != TOK_NULL &&
          f.kind != TOK_IN)
        return fail(p, f.pos, "expected field name, found %s", token_name(f.kind));
      if (f.kind != TOK_IDENT) {
        f.str = p->lx.src + f.pos;
        f.str_len = f.len;
      }
      if ((rc = advance(p))) return rc;
      struct ast *n;
      if (p->tok.kind == TOK_LPAREN && f.num.u != 1) {
        if (!(n = node(p, AST_CALL, f.pos))) return OOM(p);
        n->a = *out;
        n->name = f.str;
        n->name_len = f.str_len;
        if ((rc = advance(p))) return rc;
        /* The receiver is args[0]: the checker counts it as an argument. */
        struct ast **args;
        uint32_t cnt;
        if ((rc = parse_args(p, TOK_RPAREN, &args, &cnt))) return rc;
        n->args = arena_alloc(p->arena, (cnt + 1) * sizeof(*n->args));
        if (!n->args) return OOM(p);
        n->args[0] = *out;
        memcpy(n->args + 1, args, cnt * sizeof(*args));
        n->n_args = cnt + 1;
        /* Macros see their own arguments without the receiver. */
        n->args++;
        n->n_args--;
        if ((rc = expand_member_macro(p, n))) return rc;
        if (n->kind == AST_CALL) {
          n->args--;
          n->n_args++;
        }
      } else {
        if (p->tok.kind == TOK_LBRACE)
          return fail(p, p->tok.pos, "%s", "message construction is not supported");
        if (!(n = node(p, AST_SELECT, f.pos))) return OOM(p);
        n->a = *out;
        n->name = f.str;
        n->name_len = f.str_len;
      }
      *out = n;
    } else if (t.kind == TOK_LBRACKET) {
      struct ast *n = node(p, AST_INDEX, t.pos);
      if (!n) return OOM(p);
      n->a = *out;
      if ((rc = advance(p)) || (rc = parse_ternary(p, &n->b)) || (rc = expect(p, TOK_RBRACKET)))
        return rc;
      *out = n;
    } else {
      return 0;
    }
  }
}

static int parse_unary(struct parser *p, struct ast **out) {
  struct token t = p->tok;
  int rc;
  if (t.kind != TOK_BANG && t.kind != TOK_MINUS) return parse_member(p, out);
  if (++p->depth > EXPR_MAX_DEPTH) return fail(p, t.pos, "%s", "expression nested too deeply");
  if ((rc = advance(p))) return rc;
  if (t.kind == TOK_MINUS && p->tok.kind == TOK_INT) {
    /* Fold -<int literal> so that INT64_MIN is expressible; a member access
     * after the literal binds tighter, so only fold a bare literal. */
    struct token lit = p->tok;
    struct lexer save = p->lx;
    if ((rc = advance(p))) return rc;
    if (p->tok.kind != TOK_DOT && p->tok.kind != TOK_LBRACKET) {
      if (lit.num.u > (uint64_t)INT64_MAX + 1)
        return fail(p, lit.pos, "%s", "integer literal out of range");
      struct ast *n = node(p, AST_LIT, t.pos);
      if (!n) return OOM(p);
      n->lit =
          baton_expr_int(lit.num.u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)lit.num.u);
      *out = n;
      p->depth--;
      return 0;
    }
    p->lx = save;
    p->tok = lit;
  }
  struct ast *n = node(p, AST_UNARY, t.pos);
  if (!n) return OOM(p);
  n->op = t.kind;
  if ((rc = parse_unary(p, &n->a))) return rc;
  p->depth--;
  *out = n;
  return 0;
}

static int binary(struct parser *p, struct token t, struct ast **lhs, struct ast *rhs) {
  struct ast *n = node(p, AST_BINARY, t.pos);
  if (!n) return OOM(p);
  n->op = t.kind;
  n->a = *lhs;
  n->b = rhs;
  *lhs = n;
  return 0;
}

static int parse_mul(struct parser *p, struct ast **out) {
  int rc = parse_unary(p, out);
  while (!rc &&
         (p->tok.kind == TOK_STAR || p->tok.kind == TOK_SLASH || p->tok.kind == TOK_PERCENT)) {
    struct token t = p->tok;
    struct ast *r;
    if ((rc = advance(p)) || (rc = parse_unary(p, &r))) return rc;
    rc = binary(p, t, out, r);
  }
  return rc;
}

static int parse_add(struct parser *p, struct ast **out) {
  int rc = parse_mul(p, out);
  while (!rc && (p->tok.kind == TOK_PLUS || p->tok.kind == TOK_MINUS)) {
    struct token t = p->tok;
    struct ast *r;
    if ((rc = advance(p)) || (rc = parse_mul(p, &r))) return rc;
    rc = binary(p, t, out, r);
  }
  return rc;
}

static bool is_relop(enum tok_kind k) {
  return k == TOK_LT || k == TOK_LE || k == TOK_GT || k == TOK_GE || k == TOK_EQ || k == TOK_NE ||
         k == TOK_IN;
}

static int parse_rel(struct parser *p, struct ast **out) {
  int rc = parse_add(p, out);
  while (!rc && is_relop(p->tok.kind)) {
    struct token t = p->tok;
    struct ast *r;
    if ((rc = advance(p)) || (rc = parse_add(p, &r))) return rc;
    rc = binary(p, t, out, r);
  }
  return rc;
}

static int parse_and(struct parser *p, struct ast **out) {
  int rc = parse_rel(p, out);
  while (!rc && p->tok.kind == TOK_ANDAND) {
    struct token t = p->tok;
    struct ast *r;
    if ((rc = advance(p)) || (rc = parse_rel(p, &r))) return rc;
    rc = binary(p, t, out, r);
  }
  return rc;
}

static int parse_or(struct parser *p, struct ast **out) {
  int rc = parse_and(p, out);
  while (!rc && p->tok.kind == TOK_OROR) {
    struct token t = p->tok;
    struct ast *r;
    if ((rc = advance(p)) || (rc = parse_and(p, &r))) return rc;
    rc = binary(p, t, out, r);
  }
  return rc;
}

static int parse_ternary(struct parser *p, struct ast **out) {
  int rc;
  if (++p->depth > EXPR_MAX_DEPTH) return fail(p, p->tok.pos, "%s", "expression nested too deeply");
  if ((rc = parse_or(p, out))) return rc;
  if (p->tok.kind == TOK_QUESTION) {
    struct ast *n = node(p, AST_COND, p->tok.pos);
    if (!n) return OOM(p);
    n->a = *out;
    if ((rc = advance(p)) || (rc = parse_or(p, &n->b)) || (rc = expect(p, TOK_COLON)) ||
        (rc = parse_ternary(p, &n->c)))
      return rc;
    *out = n;
  }
  p->depth--;
  return 0;
}

int parse_expr(struct expr_arena *a, const char *src, size_t len, struct expr_diag *diag,
               struct ast **out) {
  struct parser p = {0};
  p.arena = a;
  p.diag = diag;
  p.lx.src = src;
  p.lx.len = len;
  p.lx.arena = a;
  p.lx.diag = diag;
  int rc;
  if ((rc = advance(&p))) return rc;
  if ((rc = parse_ternary(&p, out))) return a->failed ? BATON_ETOOBIG : rc;
  if (p.tok.kind != TOK_EOF) return fail(&p, p.tok.pos, "unexpected %s", token_name(p.tok.kind));
  return 0;
}

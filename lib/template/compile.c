/*
 * The compiler: turns the parser's tree into the form that is rendered, and
 * is the only pass that knows names. It resolves every filter call to its
 * function and checks its argument count, and in strict mode rejects names of
 * top-level variables and filters Baton does not know, with their position.
 *
 * Why a resolved tree and not bytecode: a Liquid render spends its time in
 * variable lookup, filters and output, not in dispatch. The tree after this
 * pass has no names left to look up except variables, literals already
 * decoded, paths already split, and blocks (for/else, case, break, include
 * scopes) that map one to one onto the renderer's recursion. Bytecode would
 * add jump patching and a VM stack for the same work per node. The tree is
 * immutable after baton_template_compile returns, so renders share it.
 *
 * It is kept compact: one arena per template (chunks from 1 KiB, doubling),
 * 88-byte nodes whose loop- and include-only fields hang off a union, 40-byte
 * expressions, strings pointing into the template's one copy of its source.
 * The 3.2 KB email in bench/template compiles to about 20 KB.
 */
#include <stdlib.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

struct compiler {
  struct baton_template *t;
  const struct template_options *opt;
  struct template_error *err;
  struct smap bound; /* names the template binds itself (assign, capture, for, ...) */
  const char *const *globals;
  size_t n_globals;
};

static const char *const default_globals[] = {"profile", "event", "journey", "message", "offer"};

static void bind(struct compiler *c, const char *name, size_t len) {
  int ins;
  if (name) *smap_upsert(&c->bound, name, len, &ins) = c; /* any non-NULL value marks presence */
}

/* First pass: every name the template binds, wherever it binds it. */
static void collect_body(struct compiler *c, const struct body *b) {
  for (size_t i = 0; i < b->n; i++) {
    const struct node *n = b->v[i];
    switch (n->kind) {
    case ND_ASSIGN:
    case ND_CAPTURE:
    case ND_INCREMENT:
    case ND_DECREMENT: bind(c, n->name, n->name_len); break;
    case ND_FOR:
    case ND_TABLEROW: bind(c, n->name, n->name_len); break;
    default: break;
    }
    collect_body(c, &n->body);
    if (node_else(n)) collect_body(c, node_else(n));
    for (size_t j = 0; j < n->n_branches; j++) collect_body(c, &n->branches[j].body);
  }
}

static bool is_known(struct compiler *c, const char *name, size_t len) {
  if (smap_get(&c->bound, name, len)) return true;
  if ((len == 7 && !memcmp(name, "forloop", 7)) || (len == 12 && !memcmp(name, "tablerowloop", 12)))
    return true;
  for (size_t i = 0; i < c->n_globals; i++)
    if (strlen(c->globals[i]) == len && !memcmp(c->globals[i], name, len)) return true;
  return false;
}

static int resolve_expr(struct compiler *c, struct expr *e) {
  if (!e) return 0;
  int rc = 0;
  switch (e->kind) {
  case EX_LIT: return 0;
  case EX_RANGE:
    if ((rc = resolve_expr(c, e->range.lo))) return rc;
    return resolve_expr(c, e->range.hi);
  case EX_PATH: {
    struct segment *root = &e->path.seg[0];
    if (c->opt && c->opt->strict && root->key && !root->idx && !is_known(c, root->key, root->key_len))
      return tpl_error(c->err, &c->t->src, e->at, BATON_EPARSE, "unknown variable '%.*s'",
                       (int)MIN(root->key_len, 60), root->key);
    for (size_t i = 0; i < e->path.n_seg; i++)
      if ((rc = resolve_expr(c, e->path.seg[i].idx))) return rc;
    return 0;
  }
  case EX_CMP:
  case EX_AND:
  case EX_OR:
  case EX_CONTAINS:
    if ((rc = resolve_expr(c, e->bin.l))) return rc;
    return resolve_expr(c, e->bin.r);
  case EX_FILTERED:
    if ((rc = resolve_expr(c, e->filt.base))) return rc;
    for (size_t i = 0; i < e->filt.n_calls; i++) {
      struct filter_call *fc = &e->filt.calls[i];
      fc->def = filter_find(fc->name, fc->name_len);
      if (!fc->def) {
        /* Lax templates pass the value through an unknown filter unchanged. */
        if (c->opt && c->opt->strict)
          return tpl_error(c->err, &c->t->src, fc->at, BATON_EPARSE, "unknown filter '%.*s'",
                           (int)MIN(fc->name_len, 60), fc->name);
      } else if (fc->n_args < fc->def->min_args || fc->n_args > fc->def->max_args) {
        return tpl_error(c->err, &c->t->src, fc->at, BATON_EPARSE,
                         "filter '%s' takes %u to %u arguments, not %zu", fc->def->name,
                         fc->def->min_args, fc->def->max_args, fc->n_args);
      }
      for (size_t j = 0; j < fc->n_args; j++)
        if ((rc = resolve_expr(c, fc->args[j]))) return rc;
      for (size_t j = 0; j < fc->n_kw; j++)
        if ((rc = resolve_expr(c, fc->kw_vals[j]))) return rc;
    }
    return 0;
  }
  return 0;
}

static bool body_blank(const struct body *b);

/* A node is blank when rendering it can only produce whitespace (Ruby Liquid's blank?). */
static bool node_blank(const struct node *n) {
  switch (n->kind) {
  case ND_TEXT:
    for (size_t i = 0; i < n->text_len; i++)
      if (!strchr(" \t\n\r\v\f", n->text[i])) return false;
    return true;
  case ND_ASSIGN:
  case ND_CAPTURE: return true;
  case ND_IF:
  case ND_CASE:
  case ND_FOR:
    for (size_t i = 0; i < n->n_branches; i++)
      if (!body_blank(&n->branches[i].body)) return false;
    return body_blank(&n->body) && (!node_else(n) || body_blank(node_else(n)));
  default: return false;
  }
}

static bool body_blank(const struct body *b) {
  for (size_t i = 0; i < b->n; i++)
    if (!node_blank(b->v[i])) return false;
  return true;
}

static void drop_text(struct body *b) {
  size_t k = 0;
  for (size_t i = 0; i < b->n; i++)
    if (b->v[i]->kind != ND_TEXT) b->v[k++] = b->v[i];
  b->n = k;
}

/*
 * Blocks whose every branch is blank render nothing at all, not their
 * whitespace: "{% if x %}  {% endif %}" is "" (Ruby's remove_blank_strings).
 */
static void strip_blank_blocks(struct body *b) {
  for (size_t i = 0; i < b->n; i++) {
    struct node *n = b->v[i];
    for (size_t j = 0; j < n->n_branches; j++) strip_blank_blocks(&n->branches[j].body);
    strip_blank_blocks(&n->body);
    if (node_else(n)) strip_blank_blocks(node_else(n));
    if ((n->kind == ND_IF || n->kind == ND_CASE || n->kind == ND_FOR) && node_blank(n)) {
      for (size_t j = 0; j < n->n_branches; j++) drop_text(&n->branches[j].body);
      drop_text(&n->body);
      if (node_else(n)) drop_text(node_else(n));
    }
  }
}

static int resolve_body(struct compiler *c, struct body *b) {
  int rc = 0;
  for (size_t i = 0; i < b->n; i++) {
    struct node *n = b->v[i];
    if ((rc = resolve_expr(c, n->expr))) return rc;
    if ((n->kind == ND_FOR || n->kind == ND_TABLEROW) &&
        ((rc = resolve_expr(c, n->loop->limit)) || (rc = resolve_expr(c, n->loop->offset)) ||
         (rc = resolve_expr(c, n->loop->cols)) || (rc = resolve_body(c, &n->loop->else_body))))
      return rc;
    if (n->kind == ND_INCLUDE || n->kind == ND_RENDER) {
      if ((rc = resolve_expr(c, n->call->tpl_name)) || (rc = resolve_expr(c, n->call->with))) return rc;
      for (size_t j = 0; j < n->call->n_kw; j++)
        if ((rc = resolve_expr(c, n->call->kw_vals[j]))) return rc;
    }
    if (n->kind == ND_CYCLE)
      for (size_t j = 0; j < n->cycle->n_items; j++)
        if ((rc = resolve_expr(c, n->cycle->items[j]))) return rc;
    for (size_t j = 0; j < n->n_branches; j++) {
      struct branch *br = &n->branches[j];
      if ((rc = resolve_expr(c, br->cond))) return rc;
      for (size_t k = 0; k < br->n_whens; k++)
        if ((rc = resolve_expr(c, br->whens[k]))) return rc;
      if ((rc = resolve_body(c, &br->body))) return rc;
    }
    if ((rc = resolve_body(c, &n->body))) return rc;
  }
  return 0;
}

int compile_tree(struct baton_template *t, const struct template_options *opt,
                 struct template_error *err) {
  struct compiler c = {.t = t, .opt = opt, .err = err};
  smap_init(&c.bound);
  c.globals = opt && opt->globals ? opt->globals : default_globals;
  c.n_globals = opt && opt->globals ? opt->n_globals : ARRAY_SIZE(default_globals);
  collect_body(&c, &t->root);
  strip_blank_blocks(&t->root);
  int rc = resolve_body(&c, &t->root);
  smap_release(&c.bound);
  return rc;
}

int baton_template_compile(const char *src, size_t len, const struct template_options *opt,
                           struct baton_template **out, struct template_error *err) {
  *out = NULL;
  const char *name = opt && opt->name ? opt->name : "template";
  if (len > TPL_MAX_SOURCE) {
    struct tpl_src s = {.name = name};
    return tpl_error(err, &s, NULL, BATON_ETOOBIG, "template is over %u bytes", TPL_MAX_SOURCE);
  }
  struct baton_template *t = xcalloc(1, sizeof(*t));
  tpl_arena_init(&t->arena);
  t->name = xstrdup(name);
  t->text = xmalloc(len + 1);
  if (len) memcpy(t->text, src, len);
  t->text[len] = 0;
  t->src = (struct tpl_src){.name = t->name, .src = t->text, .len = len};
  t->html_escape = opt && opt->html_escape;
  int rc = parse_template(t, err);
  if (!rc) rc = compile_tree(t, opt, err);
  if (rc) {
    baton_template_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

void baton_template_free(struct baton_template *t) {
  if (!t) return;
  tpl_arena_release(&t->arena);
  free(t->text);
  free(t->name);
  free(t);
}

/*
 * The template module's own declarations: arenas, runtime values, lexer
 * tokens, the tree the parser builds and the compiler resolves, the filter
 * table, and the render context. Nothing here is for other modules.
 *
 * Pipeline: lexer.c (source -> markup tokens; tag/output markup -> expression
 * tokens) -> parser.c (tokens -> tree of nodes and expressions) -> compile.c
 * (resolves filter names to functions, checks strict mode, merges text,
 * freezes the tree) -> render.c (walks the resolved tree) with filter_*.c and
 * value.c. Why a resolved tree rather than bytecode is explained in compile.c.
 */
#ifndef BATON_TEMPLATE_INT_H
#define BATON_TEMPLATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "template/template.h"
#include "util/buf.h"
#include "util/smap.h"

#define TPL_MAX_SOURCE (1u << 20)     /* bytes of template source */
#define TPL_MAX_DEPTH 100             /* nested blocks and expressions */
#define TPL_MAX_INCLUDE_DEPTH 64      /* nested render/include */
#define TPL_MAX_ITERATIONS 1000000    /* loop iterations per render */
#define TPL_MAX_SCRATCH (256u << 20)  /* arena bytes one render may use */
#define TPL_DEFAULT_VALUE_CAP (1u << 20) /* largest string a filter may build without an output cap */

/* ---- arena: bump allocation freed all at once (compile tree, render scratch) ---- */
struct arena_chunk;
struct arena {
  struct arena_chunk *head;
  size_t used, size; /* in head */
  size_t total;      /* bytes handed out, for the render's scratch budget */
  struct arena_chunk *first; /* caller-owned first chunk (tpl_arena_init_buf), never freed */
};
void tpl_arena_init(struct arena *a);
/* Starts the arena in the caller's 16-byte aligned mem (e.g. on the stack): small renders never malloc. */
void tpl_arena_init_buf(struct arena *a, void *mem, size_t size);
void tpl_arena_release(struct arena *a);
void *tpl_arena_alloc(struct arena *a, size_t n); /* 16-byte aligned, zeroed, never NULL */
char *tpl_arena_strndup(struct arena *a, const char *s, size_t n);

/* ---- runtime values ---- */
enum value_type {
  VAL_NIL,
  VAL_BOOL,
  VAL_INT,
  VAL_FLOAT,
  VAL_STR,
  VAL_ARRAY, /* arena array of values */
  VAL_JSON,  /* cJSON object or array (scalars are converted on read) */
  VAL_RANGE,
  VAL_EMPTY, /* the literal `empty` */
  VAL_BLANK, /* the literal `blank` */
  VAL_FORLOOP,
};

struct loop;

struct value {
  uint8_t type;
  bool safe; /* string already HTML-escaped (or marked raw) */
  union {
    bool b;
    int64_t i;
    double f;
    struct {
      const char *p;
      size_t len;
    } s;
    struct {
      struct value *v;
      size_t n;
    } a;
    const cJSON *j;
    struct {
      int64_t lo, hi;
    } r;
    const struct loop *loop;
  };
};

static inline struct value value_nil(void) { return (struct value){.type = VAL_NIL}; }
static inline struct value value_bool(bool b) { return (struct value){.type = VAL_BOOL, .b = b}; }
static inline struct value value_int(int64_t i) { return (struct value){.type = VAL_INT, .i = i}; }
static inline struct value value_float(double f) { return (struct value){.type = VAL_FLOAT, .f = f}; }
static inline struct value value_str(const char *p, size_t len) {
  return (struct value){.type = VAL_STR, .s = {p, len}};
}
struct value value_from_json(const cJSON *j);
bool value_truthy(const struct value *v);
bool value_is_blank(const struct value *v);
bool value_is_empty(const struct value *v);
bool tpl_value_equal(const struct value *a, const struct value *b);
/* -1, 0, 1 in *out; BATON_ETYPE if a and b cannot be ordered. */
int tpl_value_compare(const struct value *a, const struct value *b, int *out);
/* Number of items for arrays/ranges/objects, bytes for strings, 0 otherwise. */
size_t value_size(const struct value *v);
bool value_is_seq(const struct value *v); /* array, JSON array or range */
/* Item i (0 <= i < value_size) of a sequence. */
struct value value_at(const struct value *v, size_t i);
/* Member key of an object (JSON or forloop); nil when absent. */
struct value value_member(const struct value *v, const char *key, size_t len);
/* Appends the Liquid string form (what {{ }} prints) to out. */
int value_write(const struct value *v, struct buf *out);
/* The string form in the arena (or pointing into v for strings). */
struct value value_to_str(struct arena *a, const struct value *v);
/* d as an integer, truncated toward zero and clamped to int64's range (NaN is 0). */
int64_t double_to_i64(double d);
/* Number form for math filters: int or float; strings are parsed, others 0. */
struct value value_to_num(const struct value *v);
/* Appends the shortest round-trip form of f, always with a '.', as Ruby does. */
int format_float(double f, struct buf *out);
/* Converts a sequence to a flat arena array (objects become a 1-item array). */
struct value value_to_array(struct arena *a, const struct value *v);
/* Writes v as JSON. */
int value_write_json(const struct value *v, struct buf *out);

/* ---- errors ---- */
struct tpl_src {
  const char *name;
  const char *src;
  size_t len;
};
/* Fills err (if not NULL) with code, a position derived from at, and a message. Returns code. */
int tpl_error(struct template_error *err, const struct tpl_src *s, const char *at, int code,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void tpl_position(const struct tpl_src *s, const char *at, int *line, int *col);

/* ---- lexer ---- */
enum markup_kind { MK_TEXT, MK_OUTPUT, MK_TAG, MK_RAW };
struct markup {
  uint8_t kind;
  const char *p; /* TEXT/RAW: the text; OUTPUT: the expression; TAG: the name */
  size_t len;
  const char *args; /* TAG: what follows the name */
  size_t args_len;
  const char *at; /* where the markup starts, for errors */
};
struct markup_list {
  struct markup *v;
  size_t n, cap;
};
/* Splits src into markup, applying whitespace control. Handles raw. */
int lex_markup(const struct tpl_src *s, struct markup_list *out, struct template_error *err);
/* Splits the body of a {% liquid %} tag into one TAG markup per line. */
int lex_liquid_lines(const struct tpl_src *s, const char *p, size_t len, struct markup_list *out,
                     struct template_error *err);

enum tok_kind {
  TK_END,
  TK_IDENT,
  TK_STRING,
  TK_INT,
  TK_FLOAT,
  TK_DOT,
  TK_DOTDOT,
  TK_LBRACKET,
  TK_RBRACKET,
  TK_LPAREN,
  TK_RPAREN,
  TK_PIPE,
  TK_COLON,
  TK_COMMA,
  TK_CMP, /* ==, !=, <>, <, >, <=, >= */
};
struct tok {
  uint8_t kind;
  const char *p;
  size_t len;
};
struct lexer {
  const struct tpl_src *src;
  const char *p, *end;
  struct tok cur;
  struct template_error *err;
  int rc;
};
void lexer_init(struct lexer *lx, const struct tpl_src *src, const char *p, size_t len,
                struct template_error *err);
/* Advances lx->cur; on a bad character sets lx->rc and returns TK_END. */
int tpl_lexer_next(struct lexer *lx);

/* ---- expressions ---- */
enum expr_kind { EX_LIT, EX_RANGE, EX_PATH, EX_CMP, EX_AND, EX_OR, EX_CONTAINS, EX_FILTERED };
enum cmp_op { CMP_EQ, CMP_NE, CMP_LT, CMP_GT, CMP_LE, CMP_GE };

struct expr;
struct segment {
  const char *key; /* constant key, or NULL when idx is used */
  size_t key_len;
  struct expr *idx; /* bracketed expression */
};
struct filter_def;
struct filter_call {
  const char *name;
  size_t name_len;
  const char *at;
  const struct filter_def *def; /* set by compile.c */
  struct expr **args;
  size_t n_args;
  const char **kw_names;
  size_t *kw_lens;
  struct expr **kw_vals;
  size_t n_kw;
};
struct expr {
  uint8_t kind;
  uint8_t op;
  const char *at;
  union {
    struct value lit;
    struct {
      struct expr *lo, *hi;
    } range;
    struct {
      struct segment *seg; /* seg[0] is the root: a name or a bracketed expression */
      size_t n_seg;
    } path;
    struct {
      struct expr *l, *r;
    } bin;
    struct {
      struct expr *base;
      struct filter_call *calls;
      size_t n_calls;
    } filt;
  };
};

/* ---- nodes ---- */
enum node_kind {
  ND_TEXT,
  ND_OUTPUT,
  ND_IF,
  ND_CASE,
  ND_FOR,
  ND_TABLEROW,
  ND_ASSIGN,
  ND_CAPTURE,
  ND_INCREMENT,
  ND_DECREMENT,
  ND_CYCLE,
  ND_BREAK,
  ND_CONTINUE,
  ND_INCLUDE,
  ND_RENDER,
  ND_IFCHANGED,
  ND_AUTOESCAPE,
};

struct node;
struct body {
  struct node **v;
  size_t n, cap;
};
struct branch {
  struct expr *cond; /* NULL: else branch */
  struct expr **whens; /* case/when: any of these equal to the subject */
  size_t n_whens;
  struct body body;
};
/* What only loops (for, tablerow) need. */
struct node_loop {
  struct expr *limit, *offset, *cols;
  struct body else_body; /* for ... else */
  const char *loop_name; /* "var-collection": forloop.name and the offset: continue key */
  size_t loop_name_len;
  bool reversed, offset_continue;
};
/* What only render and include need. */
struct node_call {
  struct expr *tpl_name; /* a literal or (include) a variable */
  struct expr *with;     /* with/for value */
  const char **kw_names;
  size_t *kw_lens;
  struct expr **kw_vals;
  size_t n_kw;
};
/* One tag or text run. Fields every kind shares live here; the few kinds
   with more hang it off the union, so common nodes stay small. */
struct node {
  uint8_t kind;
  bool negate; /* unless */
  bool flag;   /* autoescape on/off; include/render "for" rather than "with" */
  const char *at;
  union {
    struct { /* assign/capture/for variable, counters, cycle key, include alias */
      const char *name;
      size_t name_len;
    };
    struct { /* ND_TEXT */
      const char *text;
      size_t text_len;
    };
  };
  struct expr *expr;       /* output, assign, for collection, case subject, cycle group */
  struct branch *branches; /* if/unless/case */
  size_t n_branches;
  struct body body; /* for/tablerow/capture/ifchanged/autoescape body */
  union {
    struct node_loop *loop; /* ND_FOR, ND_TABLEROW */
    struct node_call *call; /* ND_INCLUDE, ND_RENDER */
    struct {                /* ND_CYCLE values */
      struct expr **items;
      size_t n_items;
    } *cycle;
  };
};
/* The else body of a for loop, or NULL for kinds that have none. */
static inline struct body *node_else(const struct node *n) {
  return (n->kind == ND_FOR || n->kind == ND_TABLEROW) && n->loop ? &n->loop->else_body : NULL;
}

/* ---- filters ---- */
struct rctx;
struct fargs {
  const struct value *v;
  size_t n;
  const char *const *kw_names;
  const size_t *kw_lens;
  const struct value *kw_vals;
  size_t n_kw;
};
typedef int (*filter_fn)(struct rctx *r, const struct value *in, const struct fargs *a,
                         struct value *out);
struct filter_def {
  const char *name;
  filter_fn fn;
  uint8_t min_args, max_args;
};
const struct filter_def *filter_find(const char *name, size_t len);
/* Sets the render error message for a filter failure and returns code. */
int filter_fail(struct rctx *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Helpers for filter functions (filters.c). */
const struct value *farg(const struct fargs *a, size_t i); /* argument i, or nil */
const struct value *fkwarg(const struct fargs *a, const char *name); /* keyword argument, or NULL */
struct value fstr(struct rctx *r, const struct value *v); /* string form in the render arena */
/* Moves a buffer's contents into the render arena as a string value and releases it. */
struct value fstr_from_buf(struct rctx *r, struct buf *b);
/*
 * A filter's result buffer: capped at the render's value cap, with the first
 * error kept so a filter can append freely and check once in sb_finish.
 */
struct sbuf {
  struct buf b;
  int rc;
};
void sb_init(struct rctx *r, struct sbuf *s);
void sb_append(struct sbuf *s, const void *p, size_t n);
void sb_putc(struct sbuf *s, char c);
void sb_puts(struct sbuf *s, const char *str);
void sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_value(struct sbuf *s, const struct value *v);
void sb_json(struct sbuf *s, const struct value *v);
/* Sets *out to the contents (in the arena) and returns 0, or fails the filter if over the cap. */
int sb_finish(struct rctx *r, struct sbuf *s, struct value *out);
#define FILTER_DECL(name, fn, lo, hi) \
  int fn(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out);
#include "template/filter_list.h"
#undef FILTER_DECL

/* ---- the compiled template ---- */
struct baton_template {
  struct tpl_src src;
  char *name;
  char *text; /* owned copy of the source; every pointer in the tree points into it */
  struct arena arena;
  struct body root;
  bool html_escape;
};

/* parser.c: builds t->root from the source; compile.c resolves it. */
int parse_template(struct baton_template *t, struct template_error *err);
int compile_tree(struct baton_template *t, const struct template_options *opt,
                 struct template_error *err);

/* ---- render context ---- */
struct binding {
  const char *name;
  size_t len;
  struct value v;
};
struct loop {
  int64_t index0, length;
  const struct loop *parent;
  const char *name;
  size_t name_len;
  int64_t col, row, cols; /* tablerow */
  bool tablerow;
  bool detached; /* a render-for loop: not a parentloop of loops inside the snippet */
};
struct rctx {
  const struct baton_template *t; /* template being rendered (for error positions) */
  const struct template_env *env;
  struct arena *arena;
  struct buf *out;
  struct template_error *err;
  struct binding *stack; /* loop variables and include arguments, innermost last */
  size_t n_stack, cap_stack;
  struct smap *locals;   /* assign and capture */
  struct smap *counters; /* increment/decrement: int64_t boxed in the arena */
  struct smap *cycles;
  struct smap *offsets;  /* for ... offset: continue */
  const struct loop *loop;
  int include_depth;
  int64_t iterations;
  bool escape;
  const char *ifchanged; /* last ifchanged output */
  size_t ifchanged_len;
  const char *err_at; /* position for filter errors */
  size_t value_cap;   /* largest string or capture a filter may build: the output cap */
};

/* Evaluates e. Returns 0 or a negative code (error recorded in r). */
int eval_expr(struct rctx *r, const struct expr *e, struct value *out);
/* The UTC offset (seconds) of the render's zone, or of the named zone, at t. */
int render_zone_offset(struct rctx *r, const char *zone, int64_t t, int32_t *off);

#endif

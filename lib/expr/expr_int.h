/*
 * Internals of the condition language, shared by its files and by nobody
 * else: the arena, list/map/error layouts, tokens, the AST, checker types,
 * the builtin function table, bytecode, programs and evaluation contexts.
 * The pipeline is lexer.c -> parser.c -> checker.c -> compiler.c -> vm.c,
 * with value.c (equality, ordering, formatting), builtins.c, timefn.c
 * (timestamps and durations), journey.c (host functions), error.c.
 */
#ifndef BATON_EXPR_EXPR_INT_H
#define BATON_EXPR_EXPR_INT_H

#include <stdarg.h>
#include <string.h>

#include "expr/expr.h"
#include "util/common.h"
#include "util/tz.h"

#define EXPR_MAX_SRC (64 * 1024)
#define EXPR_MAX_DEPTH 250
#define EXPR_MAX_VARS 1024

/* ---- Arena ---------------------------------------------------------------- */

struct arena_block {
  struct arena_block *next;
  size_t cap, used;
  char data[];
};

struct expr_arena {
  struct arena_block *head;  /* current block */
  struct arena_block *first; /* kept across resets */
  size_t total, max;
  size_t n_blocks_made; /* heap allocations so far, for baton_expr_ctx_heap_allocs */
  bool failed; /* an allocation hit max */
};

/* Returns n bytes aligned to 16, or NULL (and sets a->failed) past the cap. */
void *arena_alloc(struct expr_arena *a, size_t n);
void arena_init(struct expr_arena *a, size_t max, size_t first_cap);
void arena_release(struct expr_arena *a);

/* ---- Value layouts -------------------------------------------------------- */

struct expr_list {
  uint32_t len, cap;
  struct expr_value items[];
};

struct expr_map_entry {
  struct expr_value key, val;
};

/* A slot of a map's key index: the key's hash (compared before the key
 * itself is touched) and its entry's index + 1 (0: empty slot). */
struct map_slot {
  uint32_t hash, entry;
};

struct expr_map {
  uint32_t len;
  uint32_t index_cap;   /* power of two, or 0: no index (linear scan) */
  struct map_slot *index; /* open addressing over the string keys */
  uint64_t *tags;       /* key_tag() of each entry's key (see there), after entries[] */
  struct expr_map_entry entries[];
};

struct expr_error {
  uint32_t pos;
  const char *msg; /* the bytes after the struct, or a static string */
};

#define MAP_INDEX_MIN 9 /* maps with at least this many entries get a hash index */

struct expr_value expr_error_new(struct expr_arena *a, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The error for an operator or function with no overload for the given arguments. */
struct expr_value expr_error_overload(struct expr_arena *a, uint32_t pos, const char *fn,
                                      const struct expr_value *args, int n);
/* A static error for when the arena is exhausted. */
struct expr_value expr_error_oom(uint32_t pos);
/* The error of a journey function whose host callback failed with rc. */
struct expr_value journey_host_failed(struct expr_arena *a, int fn, int rc, uint32_t pos);
/* Whether h[0..hn) contains n[0..nn) (contains()). */
bool mem_contains(const char *h, size_t hn, const char *n, size_t nn);
/* Forgets the last evaluation's scratch if it used any (as each evaluation starts). */
void ctx_scratch_reset(struct expr_ctx *ctx);

/* value.c */
bool value_equal(struct expr_value a, struct expr_value b);
/* Orders a and b: sets *cmp to -1/0/1 and returns 0, or returns -1 if the
 * types are not comparable, or 1 if either is NaN (every comparison false). */
int value_compare(struct expr_value a, struct expr_value b, int *cmp);
/* Map lookup with CEL's numeric key equivalence; returns the entry or NULL. */
const struct expr_map_entry *map_lookup(const struct expr_map *m, struct expr_value key);
const struct expr_map_entry *map_lookup_str(const struct expr_map *m, const char *s, size_t n);

/* The hash string keys are indexed by. */
static inline uint32_t key_hash(const char *s, size_t n) { return (uint32_t)baton_hash64(s, n, 0); }

static inline uint64_t load64(const char *p) {
  uint64_t x;
  memcpy(&x, p, 8);
  return x;
}
static inline uint16_t load16(const char *p) {
  uint16_t x;
  memcpy(&x, p, 2);
  return x;
}
static inline uint32_t load32(const char *p) {
  uint32_t x;
  memcpy(&x, p, 4);
  return x;
}

/* a[0..n) == b[0..n) for the short strings field names are: whole words,
 * the last one overlapping the one before, so a 5-byte key is two loads a
 * side rather than a loop of five; never reads outside either string. */
static inline bool key_eq(const char *a, const char *b, uint32_t n) {
  if (n >= 8) {
    for (uint32_t i = 0; i + 8 < n; i += 8)
      if (load64(a + i) != load64(b + i)) return false;
    return load64(a + n - 8) == load64(b + n - 8);
  }
  if (n >= 4)
    return ((load32(a) ^ load32(b)) | (load32(a + n - 4) ^ load32(b + n - 4))) == 0;
  if (n == 0) return true;
  return a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1];
}

/* A string of at most 8 bytes as a word that, between strings of the same
 * length, is equal exactly when they are: two overlapping 4-byte loads, or
 * the first, middle and last bytes (all of them below 4). Never reads
 * outside s. */
static inline __attribute__((always_inline)) uint64_t key_word(const char *s, uint32_t n) {
  if (n >= 4) return load32(s) | (uint64_t)load32(s + n - 4) << 32;
  if (n == 0) return 0;
  const unsigned char *u = (const unsigned char *)s;
  return u[0] | (uint64_t)u[n >> 1] << 8 | (uint64_t)u[n - 1] << 16;
}

/* A string of at most 7 bytes as one word: its bytes, zero padded, and its
 * length in the top byte, so equal words mean equal strings. Constant `in`
 * sets of short strings (country codes, tiers) are arrays of these. */
#define SHORT_WORD_MAX 7
static inline uint64_t short_word(const char *s, uint32_t n) {
  uint64_t w;
  if (n >= 4) {
    w = load32(s) | ((uint64_t)load32(s + n - 4) >> (8 * (8 - n))) << 32;
  } else if (n >= 2) { /* two overlapping 2-byte loads */
    w = load16(s) | (uint64_t)load16(s + n - 2) << (8 * (n - 2));
  } else if (n) {
    w = (unsigned char)s[0];
  } else {
    w = 0;
  }
  return w | (uint64_t)n << 56;
}

/*
 * map_lookup_str for the VM's hot paths, with the key's hash h already known
 * (field names are constants: their hashes are computed at compile time).
 * Small maps are scanned inline.
 */
static inline __attribute__((always_inline)) const struct expr_map_entry *map_find_h(
    const struct expr_map *m, const char *s, uint32_t n, uint32_t h) {
  if (m->index) {
    uint32_t mask = m->index_cap - 1;
    for (uint32_t i = h & mask; m->index[i].entry; i = (i + 1) & mask) {
      if (m->index[i].hash != h) continue;
      const struct expr_map_entry *en = &m->entries[m->index[i].entry - 1];
      if (en->key.aux == n && key_eq(en->key.v.s, s, n)) return en;
    }
    return NULL;
  }
  for (uint32_t i = 0; i < m->len; i++) {
    const struct expr_map_entry *e = &m->entries[i];
    if (e->key.aux == n && e->key.kind == EXPR_STRING && key_eq(e->key.v.s, s, n)) return e;
  }
  return NULL;
}

/*
 * A map key as one word, kept beside each entry (expr_map.tags) so that a
 * field read through its position hint tests the key with one compare
 * instead of loading and comparing the key's bytes: for a string of at
 * most SHORT_WORD_MAX bytes its short_word, equal exactly when the strings
 * are; for a longer string its key_word with the top byte 0x80 (equal
 * tags then still need the key compare); for any other key (and the
 * entries of a map from baton_expr_map_new until they are set)
 * KEY_TAG_NONE, which no string's tag equals (a short word's top byte is
 * its length, at most 7). map_seal computes them, and baton_expr_map_set
 * keeps them: the tags cost about 26 instructions a key when a map is
 * built (docs/PERFORMANCE.md, "Key tags and ways in").
 */
#define KEY_TAG_NONE UINT64_MAX
#define KEY_TAG_LONG (0x80ull << 56)
static inline uint64_t key_tag_str(const char *s, uint32_t n) {
  if (n <= SHORT_WORD_MAX) return short_word(s, n);
  return (key_word(s, n) & ~(0xffull << 56)) | KEY_TAG_LONG;
}
static inline uint64_t key_tag(const struct expr_value *k) {
  return k->kind == EXPR_STRING ? key_tag_str(k->v.s, k->aux) : KEY_TAG_NONE;
}

/* map_find_hinted's slow path, out of line so that the VM loop's hot paths
 * keep their registers: map_find_h, then the hint updated. */
const struct expr_map_entry *map_find_miss(const struct expr_map *m, const char *s, uint32_t n,
                                           uint32_t h, uint16_t *hint);

/*
 * map_find_h first trying entry *hint, the index at which this instruction
 * last found its field: maps made by the same code (profiles parsed from
 * the same producer's JSON) hold their keys in the same order, so this is
 * usually one compare of key tags (tag: key_tag_str(s, n)) instead of a
 * probe of the index (V8's inline caches on hidden classes do the same for
 * cel-js). The hint is only ever a guess, checked against the key; it is
 * shared by the threads running the program, hence the relaxed atomics, and
 * rewritten only when it missed.
 */
static inline __attribute__((always_inline)) const struct expr_map_entry *map_find_hinted(
    const struct expr_map *m, const char *s, uint32_t n, uint32_t h, uint64_t tag,
    uint16_t *hint) {
  uint32_t i = __atomic_load_n(hint, __ATOMIC_RELAXED);
  if (likely(i < m->len) && likely(m->tags[i] == tag)) {
    const struct expr_map_entry *e = &m->entries[i];
    /* Equal tags are equal keys up to SHORT_WORD_MAX bytes. */
    if (likely(n <= SHORT_WORD_MAX) || (e->key.aux == n && key_eq(e->key.v.s, s, n))) return e;
  }
  return map_find_miss(m, s, n, h, hint);
}

static inline const struct expr_map_entry *map_find(const struct expr_map *m, const char *s,
                                                    uint32_t n) {
  return map_find_h(m, s, n, m->index ? key_hash(s, n) : 0);
}

/* Builds m's string-key index (m has len entries) and checks for repeated
 * and unsupported keys: 0, BATON_EEXIST, BATON_ETYPE. */
int map_seal(struct expr_arena *a, struct expr_map *m);
struct expr_list *list_alloc(struct expr_arena *a, size_t cap);
struct expr_map *map_alloc(struct expr_arena *a, size_t n);
/* Shortest round-trip text of a finite double into out (>= 40 bytes); returns its length. */
size_t double_shortest(double d, char *out);
size_t utf8_count(const char *s, size_t len);

/* ---- Tokens --------------------------------------------------------------- */

#define TOKEN_LIST(X)                                                        \
  X(EOF, "end of input") X(INT, "integer") X(UINT, "unsigned integer")       \
  X(DOUBLE, "number") X(STRING, "string") X(BYTES, "bytes")                  \
  X(IDENT, "identifier") X(TRUE, "'true'") X(FALSE, "'false'")               \
  X(NULL, "'null'") X(IN, "'in'") X(LPAREN, "'('") X(RPAREN, "')'")          \
  X(LBRACKET, "'['") X(RBRACKET, "']'") X(LBRACE, "'{'") X(RBRACE, "'}'")    \
  X(DOT, "'.'") X(COMMA, "','") X(COLON, "':'") X(QUESTION, "'?'")           \
  X(OROR, "'||'") X(ANDAND, "'&&'") X(EQ, "'=='") X(NE, "'!='")              \
  X(LT, "'<'") X(LE, "'<='") X(GT, "'>'") X(GE, "'>='") X(PLUS, "'+'")       \
  X(MINUS, "'-'") X(STAR, "'*'") X(SLASH, "'/'") X(PERCENT, "'%'")           \
  X(BANG, "'!'") X(ERROR, "invalid token")

enum tok_kind {
#define TOK_ENUM(name, text) TOK_##name,
  TOKEN_LIST(TOK_ENUM)
#undef TOK_ENUM
};

struct token {
  enum tok_kind kind;
  uint32_t pos, len; /* source span */
  /* Decoded literal: ints, doubles, and string/bytes contents (arena). */
  union {
    int64_t i;
    uint64_t u;
    double d;
  } num;
  const char *str;
  size_t str_len;
};

struct lexer {
  const char *src;
  size_t len, pos;
  struct expr_arena *arena;
  struct expr_diag *diag;
};

const char *token_name(enum tok_kind k);
/* Scans the next token; on a lexical error returns TOK_ERROR with diag set. */
int lexer_next(struct lexer *lx, struct token *t);
void diag_set(struct expr_diag *d, const char *src, size_t len, uint32_t pos, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));

/* ---- AST ------------------------------------------------------------------ */

enum ast_kind {
  AST_LIT,      /* lit */
  AST_IDENT,    /* name */
  AST_SELECT,   /* a.name, or has(a.name) when test_only */
  AST_INDEX,    /* a[b] */
  AST_CALL,     /* name(args) or a.name(args) when a is set */
  AST_UNARY,    /* op a */
  AST_BINARY,   /* a op b */
  AST_COND,     /* a ? b : c */
  AST_LIST,     /* [args] */
  AST_MAP,      /* {args[0]: args[1], ...} */
  AST_COMPR,    /* macro: a.macro(var, b[, c]) */
};

enum macro_kind { MACRO_ALL, MACRO_EXISTS, MACRO_EXISTS_ONE, MACRO_MAP, MACRO_FILTER };

struct ast {
  enum ast_kind kind;
  uint32_t pos;     /* source offset errors report */
  enum tok_kind op; /* UNARY/BINARY operator */
  bool test_only;   /* SELECT from has() */
  enum macro_kind macro;
  const char *name; /* IDENT, SELECT field, CALL function, COMPR variable */
  size_t name_len;
  struct expr_value lit;
  struct ast *a, *b, *c;
  struct ast **args;
  uint32_t n_args;
  /* Filled by the checker. */
  int type;      /* enum expr_kind, or -1 dynamic */
  int32_t slot;  /* IDENT: variable slot (>= 0), local (-2 - n), or -1 unresolved */
  int32_t fn;    /* CALL: builtin id, or -1 */
};

struct parser {
  struct lexer lx;
  struct token tok; /* lookahead */
  int depth;
  struct expr_arena *arena;
  struct expr_diag *diag;
};

/* Parses a whole expression; returns 0 and *out or BATON_EPARSE / BATON_ETOOBIG. */
int parse_expr(struct expr_arena *a, const char *src, size_t len, struct expr_diag *diag,
               struct ast **out);

/* ---- Builtin functions ---------------------------------------------------- */

/* Calling styles a function accepts. */
#define FN_GLOBAL 1 /* f(x) */
#define FN_MEMBER 2 /* x.f() */

/*
 * X(ID, "name", styles, min args, max args, result type or -1)
 * Args count the receiver of a member call. Journey functions are here too.
 */
#define BUILTIN_LIST(X)                                                   \
  X(SIZE, "size", FN_GLOBAL | FN_MEMBER, 1, 1, EXPR_INT)                  \
  X(CONTAINS, "contains", FN_MEMBER, 2, 2, EXPR_BOOL)                     \
  X(STARTS_WITH, "startsWith", FN_MEMBER, 2, 2, EXPR_BOOL)                \
  X(ENDS_WITH, "endsWith", FN_MEMBER, 2, 2, EXPR_BOOL)                    \
  X(MATCHES, "matches", FN_GLOBAL | FN_MEMBER, 2, 2, EXPR_BOOL)           \
  X(LOWER_ASCII, "lowerAscii", FN_MEMBER, 1, 1, EXPR_STRING)              \
  X(UPPER_ASCII, "upperAscii", FN_MEMBER, 1, 1, EXPR_STRING)              \
  X(INT, "int", FN_GLOBAL, 1, 1, EXPR_INT)                                \
  X(UINT, "uint", FN_GLOBAL, 1, 1, EXPR_UINT)                             \
  X(DOUBLE, "double", FN_GLOBAL, 1, 1, EXPR_DOUBLE)                       \
  X(STRING, "string", FN_GLOBAL, 1, 1, EXPR_STRING)                       \
  X(BYTES, "bytes", FN_GLOBAL, 1, 1, EXPR_BYTES)                          \
  X(BOOL, "bool", FN_GLOBAL, 1, 1, EXPR_BOOL)                             \
  X(DYN, "dyn", FN_GLOBAL, 1, 1, -1)                                      \
  X(TYPE, "type", FN_GLOBAL, 1, 1, EXPR_TYPE)                             \
  X(TIMESTAMP, "timestamp", FN_GLOBAL, 1, 1, EXPR_TIMESTAMP)              \
  X(DURATION, "duration", FN_GLOBAL, 1, 1, EXPR_DURATION)                 \
  X(GET_FULL_YEAR, "getFullYear", FN_MEMBER, 1, 2, EXPR_INT)              \
  X(GET_MONTH, "getMonth", FN_MEMBER, 1, 2, EXPR_INT)                     \
  X(GET_DAY_OF_YEAR, "getDayOfYear", FN_MEMBER, 1, 2, EXPR_INT)           \
  X(GET_DAY_OF_MONTH, "getDayOfMonth", FN_MEMBER, 1, 2, EXPR_INT)         \
  X(GET_DATE, "getDate", FN_MEMBER, 1, 2, EXPR_INT)                       \
  X(GET_DAY_OF_WEEK, "getDayOfWeek", FN_MEMBER, 1, 2, EXPR_INT)           \
  X(GET_HOURS, "getHours", FN_MEMBER, 1, 2, EXPR_INT)                     \
  X(GET_MINUTES, "getMinutes", FN_MEMBER, 1, 2, EXPR_INT)                 \
  X(GET_SECONDS, "getSeconds", FN_MEMBER, 1, 2, EXPR_INT)                 \
  X(GET_MILLISECONDS, "getMilliseconds", FN_MEMBER, 1, 2, EXPR_INT)       \
  X(NOW, "now", 0, 0, 0, EXPR_TIMESTAMP)                                  \
  X(COUNT, "count", FN_GLOBAL, 1, 2, EXPR_INT)                            \
  X(SUM, "sum", FN_GLOBAL, 2, 3, EXPR_DOUBLE)                             \
  X(LAST, "last", FN_GLOBAL, 2, 2, -1)                                    \
  X(IN_SEGMENT, "inSegment", FN_GLOBAL, 1, 1, EXPR_BOOL)                  \
  X(IN_JOURNEY, "inJourney", FN_GLOBAL, 1, 1, EXPR_BOOL)                  \
  X(OPEN_CASES, "openCases", FN_GLOBAL, 1, 1, EXPR_INT)                   \
  X(LOCAL_HOUR, "localHour", FN_GLOBAL, 0, 0, EXPR_INT)                   \
  X(LOCAL_MINUTE, "localMinute", FN_GLOBAL, 0, 0, EXPR_INT)               \
  X(LOCAL_WEEKDAY, "localWeekday", FN_GLOBAL, 0, 0, EXPR_INT)

enum builtin_id {
#define FN_ENUM(id, name, style, lo, hi, ret) FN_##id,
  BUILTIN_LIST(FN_ENUM)
#undef FN_ENUM
  FN_N
};

struct builtin {
  const char *name;
  int styles, min_args, max_args, ret;
};
extern const struct builtin builtins[FN_N];
/* Returns the builtin named name, or -1. */
int builtin_find(const char *name, size_t len);

struct vm;
/* Applies builtin fn to args[0..n); the result goes to *out (may be an error). */
void builtin_call(struct vm *vm, int fn, const struct expr_value *args, int n, uint32_t pos,
                  struct expr_value *out);
/* Journey functions (journey.c); same contract. */
void journey_call(struct vm *vm, int fn, const struct expr_value *args, int n, uint32_t pos,
                  struct expr_value *out);

/* ---- Time (timefn.c) ------------------------------------------------------ */

#define TS_MIN_SEC (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX_SEC 253402300799LL   /* 9999-12-31T23:59:59Z */
#define DUR_MAX_SEC 315576000000LL  /* 10000 years, as in google.protobuf.Duration */

int ts_parse(const char *s, size_t n, int64_t *sec, int32_t *nanos);
int dur_parse(const char *s, size_t n, int64_t *sec, int32_t *nanos);
/* Formats into out (>= 40 bytes); returns the length. */
size_t ts_format(int64_t sec, int32_t nanos, char *out);
size_t dur_format(int64_t sec, int32_t nanos, char *out);
/* Builds a checked value or an error ("timestamp out of range"). */
struct expr_value ts_value(struct vm *vm, int64_t sec, int64_t nanos, uint32_t pos);
struct expr_value dur_value(struct vm *vm, int64_t sec, int64_t nanos, uint32_t pos);
void time_accessor(struct vm *vm, int fn, const struct expr_value *args, int n, uint32_t pos,
                   struct expr_value *out);
/* a - b for timestamps: a duration, or an error if it does not fit in int64 nanoseconds. */
struct expr_value ts_diff(struct vm *vm, struct expr_value a, struct expr_value b, uint32_t pos);
/* Seconds since the epoch as if local time in zone zone[0..zone_len) were UTC
 * (zone NULL: UTC). Returns 0 or BATON_EINVAL for an unknown zone. */
int ts_local(struct vm *vm, struct expr_value t, const char *zone, size_t zone_len,
             int64_t *local_sec);

/* ---- Bytecode and programs ----------------------------------------------- */

enum opcode {
#define OP(name, n, doc) OP_##name,
#include "expr/opcode_list.h"
#undef OP
  OP_N
};

struct insn {
  uint8_t op;
  uint16_t hint; /* SELECT_VAR and friends: map_find_hinted's guess (shared, atomic) */
  uint32_t a, b;
  uint32_t pos;
};

/* ---- Closures (closure.c) ------------------------------------------------ */

#define CLOSURE_MAX_LOCALS 16 /* local slots a closure can use: macros nested 4 deep */
#define CPATH_MAX 4           /* fields in a path: profile.a.b.c.d */

/* What a closure node answers. */
enum { C_FALSE = 0, C_TRUE = 1, C_BAIL = 2, C_ERROR = 3 };

/* One evaluation's state, on baton_expr_eval's stack. */
struct ceval {
  const struct expr_value *vars;
  const struct expr_host *host;
  void *hctx;
  struct expr_ctx *ctx;
  uint64_t budget;          /* macro iterations left, counted as the VM counts them */
  struct expr_value err;    /* the value of a C_ERROR answer */
  const struct expr_program *prog; /* for the bytecode, when the closure bails */
  struct expr_value *out;
  struct expr_value loc[CLOSURE_MAX_LOCALS]; /* the VM's local slots, same numbering */
};

/* A field read: its name, key_hash and map_find_hinted's hint (written at run time). */
struct cfield {
  const char *s;
  uint32_t len, hash;
  uint16_t hint;
  uint64_t tag; /* key_tag_str(s, len) */
  uint64_t w1, w2; /* names of 8 to 16 bytes: their first and last 8 bytes */
};

/* vars[slot] (or loc[slot] when local), then each field in turn. */
struct cpath {
  uint16_t slot;
  bool local;
  uint8_t n;
  uint32_t off; /* slot * sizeof(struct expr_value): the ways in add it to vars */
  struct cfield f[CPATH_MAX];
};

struct cnode;
struct hoisted;
typedef int (*cnode_fn)(const struct cnode *n, struct ceval *e);

/* A node: the C function that evaluates it and the operands it reads. */
struct cnode {
  cnode_fn fn;
  uint8_t test;           /* a leaf test conj/disj/macros run inline (enum in closure.c), or 0 */
  uint8_t n_list;         /* conj/disj: the operands in list */
  const struct cnode *const *list;
  uint8_t rel;            /* compares: 0..5 for == != < <= > >= */
  uint16_t var;           /* macros: the local slot of the iteration variable */
  int fn_id;              /* host calls: the builtin */
  uint32_t pos;           /* host calls: the call's source offset, for its error */
  const struct cnode *a, *b, *c;
  struct cpath path, path2;
  struct expr_value k, k2; /* constant operands */
  uint64_t kword;         /* key_word of k when it is a string of at most 8 bytes */
  const struct hoisted *hoisted; /* macros, chains: their leaf tests, copied out (closure.c) */
  uint32_t n_hoisted;
  const uint64_t *words;  /* `in` short strings: their short_word()s by slot, ~0 where none */
  uint64_t mul;           /* ... the slot of word w being (w * mul) >> shift */
  uint8_t shift;
  const struct expr_map *set;   /* `in` a list of strings: hashed */
  int64_t window_ms;      /* count(): the window, or -1 for all time */
};

struct expr_program;
/* Builds p->closure and p->entry from the checked AST root when every node
 * of it has a closure form (leaves them NULL otherwise). Returns 0 or
 * BATON_ETOOBIG. */
int closure_compile(struct expr_program *p, const struct ast *root);
/* baton_expr_eval's signature: a program's way in. */
typedef int (*expr_entry_fn)(const struct expr_program *p, struct expr_ctx *ctx,
                             const struct expr_value *vars, const struct expr_host *host,
                             void *hctx, struct expr_value *out);

struct expr_env {
  char **names;
  int *types;
  size_t n_vars, cap;
};

struct expr_program {
  const struct expr_env *env;
  struct insn *code;
  size_t n_code;
  struct expr_value *consts;
  uint32_t *khash; /* key_hash of each string constant (0 for others) */
  uint64_t *ktag;  /* key_tag of each constant */
  size_t n_consts;
  uint32_t n_locals;
  uint32_t max_stack;
  size_t frame; /* max_stack + n_locals + 1: the context stack slots an evaluation needs */
  struct expr_arena arena; /* constants, hash indexes, and the source copy */
  char *src;
  size_t src_len;
  struct regex_cache *regexes; /* constant patterns of matches(), compiled once */
  const struct cnode *closure; /* the same program as closures (closure.c), or NULL */
  struct cnode root;           /* where closure points: the ways in find it at p + offset */
  expr_entry_fn entry;         /* how baton_expr_eval runs the program: vm_run without a closure */
};

/* Compiler helpers that closure.c shares. ast_is_const: n is a literal or a
 * list of such. ast_const_value: its value, strings copied into p's arena
 * (*rc BATON_ETOOBIG if that failed). fold_pure_call: *out = a call of a
 * builtin that depends only on its arguments, on literals (duration("30d")),
 * evaluated now: 0, or 1 if n is no such call or the call errs, or
 * BATON_ETOOBIG. in_short_words: l's items as short_word()s, or NULL unless
 * all are strings of at most 7 bytes and there are at most 64.
 * in_string_set: l's strings as a sealed map's keys, or NULL unless l holds
 * at least 4 items, all strings. */
bool ast_is_const(const struct ast *n);
struct expr_value ast_const_value(struct expr_program *p, const struct ast *n, int *rc);
int fold_pure_call(struct expr_program *p, const struct ast *n, struct expr_value *out);
uint64_t *in_short_words(struct expr_program *p, const struct expr_list *l);
struct expr_map *in_string_set(struct expr_program *p, const struct expr_list *l);

/* Checks and resolves ast in place; *n_locals receives the local slots the
 * comprehensions need. Returns 0 or BATON_ETYPE with diag set. */
int check_ast(const struct expr_env *env, struct ast *root, unsigned flags, const char *src,
              size_t len, struct expr_diag *diag, uint32_t *n_locals);
/* Compiles a checked AST into p. Returns 0 or BATON_ETOOBIG. */
int compile_ast(struct expr_program *p, struct ast *root, unsigned flags, struct expr_diag *diag);

/* ---- The VM --------------------------------------------------------------- */

struct expr_ctx {
  struct expr_value *stack; /* value stack followed by locals */
  size_t stack_cap;
  struct expr_arena arena;  /* per-evaluation scratch, reset at each run */
  void *match_data;         /* PCRE2 match data, made on first use of matches() */
  size_t n_heap;            /* stack and match data allocations */
  uint64_t max_iterations;  /* macro iterations allowed per evaluation */
  const struct tz *tz;      /* the last time zone resolved, and its name */
  char tz_name[64];
  size_t tz_name_len;
};

struct vm {
  struct expr_ctx *ctx;
  const struct expr_program *prog;
  const struct expr_host *host;
  void *hctx;
  struct expr_arena *arena;
  int64_t now_ms;
  bool have_now;
};

/* Runs p's bytecode: baton_expr_eval's contract (vm.c). */
int vm_run(const struct expr_program *p, struct expr_ctx *ctx, const struct expr_value *vars,
           const struct expr_host *host, void *hctx, struct expr_value *out);
/* The time "now" for this evaluation, asked of the host once. */
int64_t vm_now_ms(struct vm *vm);
/* Operators, shared by the VM loop and the checker's overload probes. */
void vm_binary(struct vm *vm, enum tok_kind op, struct expr_value a, struct expr_value b,
               uint32_t pos, struct expr_value *out);
void vm_unary(struct vm *vm, enum tok_kind op, struct expr_value a, uint32_t pos,
              struct expr_value *out);
void vm_index(struct vm *vm, struct expr_value x, struct expr_value k, uint32_t pos,
              struct expr_value *out);
/* CEL's name for an operator ("_+_"). */
const char *vm_op_name(enum tok_kind op);
void vm_regex_ctx_free(struct expr_ctx *c);
/* Compiled regular expressions of a program's constant patterns (builtins.c). */
struct regex_cache;
void regex_cache_free(struct regex_cache *rc);
int regex_precompile(struct expr_program *p, struct expr_value pattern, char *err, size_t errlen);

#endif

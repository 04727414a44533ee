/*
 * Baton's condition language: a compiled subset of Google's Common Expression
 * Language (CEL) plus journey functions (event counts in a window, last
 * values, local time of day, segment and journey membership, open cases).
 * Segments, branches, eligibility, suppression and exit rules all use it.
 * docs/conditions.md is the language reference.
 *
 * Life cycle:
 *   1. An environment (struct expr_env) declares the variables expressions
 *      may use; baton_expr_env_new_default() declares profile, event, context.
 *   2. baton_expr_compile() turns source text into an immutable program
 *      (lexer -> parser -> checker -> compiler -> bytecode), once, when a
 *      journey or segment is published.
 *   3. baton_expr_eval() runs a program with one value per declared variable
 *      and an optional host (struct expr_host) answering journey functions.
 *      Evaluation scratch lives in a struct expr_ctx that the caller keeps
 *      and reuses, so the common case allocates nothing on the heap.
 *
 * Threads: a compiled program and its environment are immutable and may be
 * shared by any number of threads. A struct expr_ctx and a struct expr_arena
 * belong to one thread at a time.
 *
 * This header is not the implementation; lib/expr/expr_int.h is.
 */
#ifndef BATON_EXPR_EXPR_H
#define BATON_EXPR_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct cJSON;

/* ---- Values -------------------------------------------------------------- */

/* The kinds of CEL values. EXPR_ERROR is an evaluation error carried as a value. */
#define EXPR_KIND_LIST(X)                    \
  X(NULL, "null_type")                       \
  X(BOOL, "bool")                            \
  X(INT, "int")                              \
  X(UINT, "uint")                            \
  X(DOUBLE, "double")                        \
  X(STRING, "string")                        \
  X(BYTES, "bytes")                          \
  X(LIST, "list")                            \
  X(MAP, "map")                              \
  X(TIMESTAMP, "google.protobuf.Timestamp")  \
  X(DURATION, "google.protobuf.Duration")    \
  X(TYPE, "type")                            \
  X(ERROR, "error")

enum expr_kind {
#define EXPR_KIND_ENUM(name, cel) EXPR_##name,
  EXPR_KIND_LIST(EXPR_KIND_ENUM)
#undef EXPR_KIND_ENUM
  EXPR_N_KINDS
};

struct expr_list;
struct expr_map;
struct expr_error;

/*
 * A CEL value: 16 bytes, passed by value. Strings and bytes point at memory
 * that is not owned by the value (a program's constants, an arena, or the
 * caller's own buffer that must outlive every evaluation using it).
 * Timestamps and durations are whole seconds (floor) plus nanoseconds in
 * 0..999999999, so -1.5s is sec = -2, aux = 500000000; both compare
 * lexicographically on (sec, aux).
 */
struct expr_value {
  uint8_t kind;  /* enum expr_kind */
  uint32_t aux;  /* string/bytes length; timestamp/duration nanoseconds */
  union {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;   /* STRING (UTF-8, not NUL-terminated) and BYTES */
    const struct expr_list *list;
    const struct expr_map *map;
    const struct expr_error *err;
    int64_t sec;     /* TIMESTAMP and DURATION */
    uint64_t type;   /* TYPE: the enum expr_kind it names */
  } v;
};

static inline struct expr_value baton_expr_null(void) {
  struct expr_value x = {.kind = EXPR_NULL};
  return x;
}
static inline struct expr_value baton_expr_bool(bool b) {
  struct expr_value x = {.kind = EXPR_BOOL, .v.b = b};
  return x;
}
static inline struct expr_value baton_expr_int(int64_t i) {
  struct expr_value x = {.kind = EXPR_INT, .v.i = i};
  return x;
}
static inline struct expr_value baton_expr_uint(uint64_t u) {
  struct expr_value x = {.kind = EXPR_UINT, .v.u = u};
  return x;
}
static inline struct expr_value baton_expr_double(double d) {
  struct expr_value x = {.kind = EXPR_DOUBLE, .v.d = d};
  return x;
}
/* s must be valid UTF-8 (not checked here) and outlive the value's use. */
static inline struct expr_value baton_expr_string(const char *s, size_t len) {
  struct expr_value x = {.kind = EXPR_STRING, .aux = (uint32_t)len, .v.s = s};
  return x;
}
static inline struct expr_value baton_expr_bytes(const void *p, size_t len) {
  struct expr_value x = {.kind = EXPR_BYTES, .aux = (uint32_t)len, .v.s = (const char *)p};
  return x;
}
/* ms since the epoch as a timestamp. */
static inline struct expr_value baton_expr_timestamp_ms(int64_t ms) {
  int64_t s = ms / 1000, r = ms % 1000;
  if (r < 0) r += 1000, s -= 1;
  struct expr_value x = {.kind = EXPR_TIMESTAMP, .aux = (uint32_t)(r * 1000000), .v.sec = s};
  return x;
}

/* Name of a kind as CEL spells its type ("int", "google.protobuf.Timestamp"). */
const char *baton_expr_kind_name(enum expr_kind k);

/* Lists and maps: read access. Index and entry pointers are valid as long as the value. */
size_t baton_expr_list_len(const struct expr_list *l);
struct expr_value baton_expr_list_get(const struct expr_list *l, size_t i);
size_t baton_expr_map_len(const struct expr_map *m);
void baton_expr_map_entry(const struct expr_map *m, size_t i, struct expr_value *key,
                          struct expr_value *val);
/* Looks up a string key; returns 1 and *val if present, 0 if not. */
int baton_expr_map_find(const struct expr_map *m, const char *key, size_t len,
                        struct expr_value *val);

/* An evaluation error: its message and byte offset in the source. */
const char *baton_expr_error_message(const struct expr_error *e);
uint32_t baton_expr_error_pos(const struct expr_error *e);

/* ---- Arenas: memory for values that outlive one evaluation ---------------- */

/*
 * A bump allocator. Values built into an arena (from JSON, or lists and maps
 * assembled by the caller) live until baton_expr_arena_reset/free. max caps the
 * total bytes (0: 64 MiB) so input cannot grow it without bound.
 */
struct expr_arena;
struct expr_arena *baton_expr_arena_new(size_t max);
/* Forgets every allocation but keeps the first block for reuse. */
void baton_expr_arena_reset(struct expr_arena *a);
void baton_expr_arena_free(struct expr_arena *a);

/*
 * Converts a parsed cJSON tree into a value in arena a: objects become maps
 * with string keys (a repeated key: the last wins), arrays lists, true/false
 * bool, null null. cJSON keeps only a double for a number, so a whole number
 * within +-2^53 becomes an int (1 and 1.0 alike) and any other a double; use
 * baton_expr_value_parse_json when the text is at hand. Everything is copied:
 * json may be freed afterwards. Returns 0, BATON_ETOOBIG (arena cap, or
 * nesting deeper than 256), or BATON_EINVAL (a string that is not UTF-8).
 */
int baton_expr_value_from_json(struct expr_arena *a, const struct cJSON *json,
                               struct expr_value *out);

/*
 * Parses JSON text[0..len) into a value in arena a, keeping the int/double
 * distinction as written: a number without fraction or exponent that fits
 * int64 is an int ("1", "-3", "4611686018427387904"), any other number a
 * double ("1.0", "1e3", "1e30"). Objects become maps with string keys (a
 * repeated key: the last wins), arrays lists. Returns 0, BATON_EPARSE (not
 * JSON; *err_off, if not NULL, gets the byte offset), BATON_EINVAL (a string
 * that is not UTF-8), or BATON_ETOOBIG (arena cap, or nesting over 256).
 */
int baton_expr_value_parse_json(struct expr_arena *a, const char *text, size_t len,
                                struct expr_value *out, size_t *err_off);

/*
 * Builders for typed lists and maps in an arena. A list or map is filled by
 * the caller through the returned item array, then used read-only.
 * baton_expr_map_new returns a map whose n entries the caller sets with
 * baton_expr_map_set(m, i, key, val) for i in [0, n), then seals with
 * baton_expr_map_seal (which indexes string keys and returns BATON_EEXIST on a
 * repeated key, BATON_ETYPE on a key that is not int, uint, bool or string).
 * When the arena's cap is reached, list_new, map_new and string_copy return
 * an EXPR_ERROR value (and list_new sets *items to NULL).
 */
struct expr_value baton_expr_list_new(struct expr_arena *a, size_t n, struct expr_value **items);
struct expr_value baton_expr_map_new(struct expr_arena *a, size_t n);
void baton_expr_map_set(struct expr_value map, size_t i, struct expr_value key,
                        struct expr_value val);
int baton_expr_map_seal(struct expr_arena *a, struct expr_value map);
/* Copies a string into the arena. */
struct expr_value baton_expr_string_copy(struct expr_arena *a, const char *s, size_t len);

/*
 * Formats v as a CEL literal that evaluates back to an equal value of the
 * same type: 1, 1u, 1.0, "a", b"\x00", [1, 2u], {"k": true}, null,
 * timestamp("2024-01-02T03:04:05Z"), duration("90s"), int. An error value
 * formats as its message. Returns 0 or BATON_ETOOBIG (b's cap).
 */
int baton_expr_value_format(struct buf *b, struct expr_value v);

/* CEL equality (heterogeneous numeric equality, deep for lists and maps). */
bool baton_expr_value_equal(struct expr_value a, struct expr_value b);

/* ---- Environments and compilation --------------------------------------- */

struct expr_env;

/* An environment with no variables. Free with baton_expr_env_free. */
struct expr_env *baton_expr_env_new(void);
/*
 * The standard environment of journey conditions: variables profile (slot
 * BATON_EXPR_VAR_PROFILE), event and context, all dynamically typed maps.
 */
struct expr_env *baton_expr_env_new_default(void);
enum { BATON_EXPR_VAR_PROFILE = 0, BATON_EXPR_VAR_EVENT = 1, BATON_EXPR_VAR_CONTEXT = 2 };
void baton_expr_env_free(struct expr_env *env);

/*
 * Declares variable name (may contain dots: "a.b" is resolved as one name,
 * longest prefix first). type is the kind the variable always has, or -1 for
 * dynamic. Returns the variable's slot (0, 1, ...: the index into the vars
 * array given to baton_expr_eval), BATON_EEXIST, or BATON_EINVAL (empty name,
 * a reserved word, or over 1024 variables). Not thread-safe: declare every
 * variable before compiling.
 */
int baton_expr_env_declare(struct expr_env *env, const char *name, int type);
size_t baton_expr_env_n_vars(const struct expr_env *env);
/* The slot of variable name, or BATON_ENOENT. */
int baton_expr_env_lookup(const struct expr_env *env, const char *name);

/* Compile flags. */
enum {
  /*
   * Skip the checker's type rules and turn unknown variables and functions
   * into evaluation errors rather than compile errors (CEL's "unchecked"
   * evaluation; used by the conformance runner).
   */
  BATON_EXPR_UNCHECKED = 1 << 0,
  /*
   * Bytecode only: no closure form (conditions of the common shapes are
   * otherwise also compiled to a tree of C functions that answers their
   * usual case faster and falls back to the bytecode). The results are the
   * same; tests compare the two with this flag.
   */
  BATON_EXPR_BYTECODE_ONLY = 1 << 1,
};

/* A compile error: message and position (byte offset, 1-based line and column). */
struct expr_diag {
  char msg[256];
  uint32_t pos;
  uint32_t line, col;
};

struct expr_program;

/*
 * Compiles src[0..len) against env (which must outlive the program).
 * Returns 0 and *out (free with baton_expr_program_free), BATON_EPARSE for a
 * syntax error, BATON_ETYPE for a name or type error (diag filled in for both),
 * or BATON_ETOOBIG (source over 64 KiB, or nesting deeper than 250).
 * Thread-safe for distinct diag.
 */
int baton_expr_compile(const struct expr_env *env, const char *src, size_t len, unsigned flags,
                       struct expr_program **out, struct expr_diag *diag);
void baton_expr_program_free(struct expr_program *p);

/*
 * Renders a diagnostic as people read it (appends to b):
 *   error: <input>:1:3: found no matching overload for '_+_' applied to '(int, string)'
 *    | 1 + 'a'
 *    | ..^
 * name labels the source ("<input>" if NULL). Returns 0 or BATON_ETOOBIG.
 */
int baton_expr_diag_render(struct buf *b, const char *name, const char *src, size_t len,
                           const struct expr_diag *diag);

/*
 * Fills diag from an evaluation error of a program compiled from src[0..len)
 * (message, offset, line and column) so it renders with a caret too.
 */
void baton_expr_error_diag(const struct expr_error *e, const char *src, size_t len,
                           struct expr_diag *diag);

/* Writes a human-readable listing of p's bytecode to b (for debugging and tests). */
int baton_expr_program_dump(struct buf *b, const struct expr_program *p);

/* ---- The host: data that journey functions ask the engine for ----------- */

/*
 * Callbacks answering journey functions. Every callback returns 0 on success
 * or a negative BATON_E* code, which becomes an evaluation error value at the
 * call site. A NULL callback makes its function fail with "not available".
 * Callbacks must not call back into the same struct expr_ctx.
 */
struct expr_host {
  /* Current time in ms since the epoch (if NULL: the real clock). */
  int64_t (*now_ms)(void *hctx);
  /* Number of events named name with since_ms <= time < until_ms. */
  int (*count_events)(void *hctx, const char *name, size_t name_len, int64_t since_ms,
                      int64_t until_ms, int64_t *out);
  /* Sum of the numeric property prop of those events (non-numbers are skipped). */
  int (*sum_events)(void *hctx, const char *name, size_t name_len, const char *prop,
                    size_t prop_len, int64_t since_ms, int64_t until_ms, double *out);
  /*
   * Property prop of the most recent event named name: *out set, or
   * BATON_ENOENT if there is none. The value may point into memory owned by
   * the host or into arena a (which lives until the evaluation ends).
   */
  int (*last_value)(void *hctx, const char *name, size_t name_len, const char *prop,
                    size_t prop_len, struct expr_arena *a, struct expr_value *out);
  /* *out = whether the customer is in segment id / in journey id. */
  int (*in_segment)(void *hctx, const char *id, size_t id_len, bool *out);
  int (*in_journey)(void *hctx, const char *id, size_t id_len, bool *out);
  /* *out = number of open cases of type type. */
  int (*open_cases)(void *hctx, const char *type, size_t type_len, int64_t *out);
  /* The customer's IANA time zone (e.g. "Europe/Paris"), or NULL for UTC. */
  const char *(*time_zone)(void *hctx);
};

/* ---- Evaluation ---------------------------------------------------------- */

struct expr_ctx;

/* Per-thread evaluation scratch (stack and arena); reuse it for every evaluation. */
struct expr_ctx *baton_expr_ctx_new(void);
void baton_expr_ctx_free(struct expr_ctx *ctx);

/*
 * Evaluates p with vars[i] bound to the environment's slot i (vars may be
 * NULL if the environment declares none; it must have
 * baton_expr_env_n_vars(env) entries otherwise) and host/hctx answering
 * journey functions (host may be NULL: they then fail with "not available").
 *
 * Returns 0 with the result in *out, or BATON_EINVAL when the result is an
 * evaluation error (then *out is an EXPR_ERROR value; see
 * baton_expr_error_message/pos). Strings, lists and maps in *out may point
 * into ctx's arena and stay valid until the next evaluation on ctx.
 * Allocates nothing on the heap unless the evaluation needs more than ctx's
 * retained scratch (it keeps what it grew to for the next run).
 */
int baton_expr_eval(const struct expr_program *p, struct expr_ctx *ctx,
                    const struct expr_value *vars, const struct expr_host *host, void *hctx,
                    struct expr_value *out);

/*
 * Like baton_expr_eval for conditions: returns 1 (true), 0 (false), or
 * BATON_ETYPE (result not a bool: *err, if not NULL, receives an error value)
 * or BATON_EINVAL (evaluation error, in *err).
 */
int baton_expr_eval_bool(const struct expr_program *p, struct expr_ctx *ctx,
                         const struct expr_value *vars, const struct expr_host *host,
                         void *hctx, struct expr_value *err);

/*
 * Caps the work of one evaluation on ctx: at most max_iterations macro
 * iterations in total (default 1,000,000; 0 restores the default) and at
 * most max_bytes of scratch memory (default 64 MiB, fixed when ctx is made).
 * Past the cap, the evaluation's result is an error value, so a condition
 * such as nested macros over big lists cannot stall the engine.
 */
void baton_expr_ctx_set_limit(struct expr_ctx *ctx, uint64_t max_iterations);

/*
 * How many times ctx has asked the heap for memory since it was made (its
 * stack, arena blocks, regex match data). Steady-state evaluation of the
 * same program adds nothing; tests and benchmarks check that.
 */
size_t baton_expr_ctx_heap_allocs(const struct expr_ctx *ctx);

/* The arena of ctx, for the host's last_value and for building per-evaluation values. */
struct expr_arena *baton_expr_ctx_arena(struct expr_ctx *ctx);

#endif

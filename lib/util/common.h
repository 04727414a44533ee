/*
 * Shared basics for every Baton module: error codes and their messages,
 * allocation that aborts on out-of-memory, and a few small macros. This is
 * not a grab bag: anything with state or policy belongs in its own module.
 */
#ifndef BATON_UTIL_COMMON_H
#define BATON_UTIL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Error codes: functions return 0 on success or one of these (negative). */
#define BATON_ERRNO_MAP(X)                                       \
  X(EINVAL, -1, "invalid argument")                              \
  X(ENOMEM, -2, "out of memory")                                 \
  X(EIO, -3, "input/output error")                               \
  X(ENOENT, -4, "not found")                                     \
  X(EEXIST, -5, "already exists")                                \
  X(ETOOBIG, -6, "too big")                                      \
  X(ECORRUPT, -7, "corrupt data")                                \
  X(EPARSE, -8, "parse error")                                   \
  X(EAUTH, -9, "not authorized")                                 \
  X(EBUSY, -10, "busy, try again later")                         \
  X(ECLOSED, -11, "closed")                                      \
  X(ERANGE, -12, "out of range")                                 \
  X(ETYPE, -13, "wrong type")                                    \
  X(EUNSUPPORTED, -14, "not supported")                          \
  X(ESTORE, -15, "store error")

enum {
#define BATON_ERR_ENUM(name, val, msg) BATON_##name = (val),
  BATON_ERRNO_MAP(BATON_ERR_ENUM)
#undef BATON_ERR_ENUM
};

/* Returns a static, lowercase message for a BATON_E* code (or "unknown error"). */
const char *baton_strerror(int err);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

/*
 * Allocation that never returns NULL: on failure it prints the caller's file
 * and line and aborts. Callers therefore never test for NULL; this is safe
 * because every buffer fed by input has a cap (see buf.h).
 */
void *baton_xmalloc_(size_t n, const char *file, int line);
void *baton_xcalloc_(size_t n, size_t size, const char *file, int line);
void *baton_xrealloc_(void *p, size_t n, const char *file, int line);
char *baton_xstrdup_(const char *s, const char *file, int line);
char *baton_xstrndup_(const char *s, size_t n, const char *file, int line);
#define xmalloc(n) baton_xmalloc_((n), __FILE__, __LINE__)
#define xcalloc(n, s) baton_xcalloc_((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) baton_xrealloc_((p), (n), __FILE__, __LINE__)
#define xstrdup(s) baton_xstrdup_((s), __FILE__, __LINE__)
#define xstrndup(s, n) baton_xstrndup_((s), (n), __FILE__, __LINE__)

/* 64-bit hash of a byte string (not cryptographic; stable across runs). */
uint64_t baton_hash64(const void *p, size_t len, uint64_t seed);

/* Returns true if [p, p+len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool baton_utf8_valid(const char *p, size_t len);

#endif

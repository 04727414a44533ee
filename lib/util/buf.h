/*
 * A growable byte buffer with a hard cap (curl's dynbuf idea): every buffer
 * fed by input is created with a maximum size, and appending past it fails
 * with BATON_ETOOBIG instead of growing without bound. The contents are always
 * NUL-terminated so they can be used as a C string.
 */
#ifndef BATON_UTIL_BUF_H
#define BATON_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
  char *ptr;   /* NUL-terminated contents, or NULL before the first append */
  size_t len;  /* bytes used, not counting the NUL */
  size_t cap;  /* bytes allocated */
  size_t max;  /* hard limit on len; 0 means SIZE_MAX */
};

/* Prepares an empty buffer that may hold at most max bytes (0: no cap). */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buffer may be reused after buf_init. */
void buf_release(struct buf *b);
/* Empties the buffer, keeping its allocation. */
void buf_clear(struct buf *b);
/* Appends n bytes; returns 0 or BATON_ETOOBIG (buffer unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259 requires. */
int buf_json_str(struct buf *b, const char *s, size_t n);
/* Makes room for n more bytes and returns where they go; commit with buf_commit. */
int buf_reserve(struct buf *b, size_t n, char **out);
void buf_commit(struct buf *b, size_t n);
/* Hands the contents to the caller (free() them) and empties the buffer. */
char *buf_steal(struct buf *b, size_t *len);

#endif

/* Capped growable buffers; see buf.h. */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

void buf_init(struct buf *b, size_t max) {
  b->ptr = NULL;
  b->len = b->cap = 0;
  b->max = max ? max : SIZE_MAX - 1;
}

void buf_release(struct buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

void buf_clear(struct buf *b) {
  b->len = 0;
  if (b->ptr) b->ptr[0] = '\0';
}

int buf_reserve(struct buf *b, size_t n, char **out) {
  if (n > b->max - b->len) return BATON_ETOOBIG;
  size_t need = b->len + n + 1;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->ptr = xrealloc(b->ptr, cap);
    b->cap = cap;
  }
  if (out) *out = b->ptr + b->len;
  return 0;
}

void buf_commit(struct buf *b, size_t n) {
  b->len += n;
  b->ptr[b->len] = '\0';
}

int buf_append(struct buf *b, const void *p, size_t n) {
  char *dst;
  int rc = buf_reserve(b, n, &dst);
  if (rc) return rc;
  if (n) memcpy(dst, p, n);
  buf_commit(b, n);
  return 0;
}

int buf_puts(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_putc(struct buf *b, char c) { return buf_append(b, &c, 1); }

int buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return BATON_EINVAL;
  char *dst;
  int rc = buf_reserve(b, (size_t)n, &dst);
  if (rc) return rc;
  vsnprintf(dst, (size_t)n + 1, fmt, ap);
  buf_commit(b, (size_t)n);
  return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int buf_json_str(struct buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t start = b->len;
  int rc = buf_putc(b, '"');
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': rc = buf_append(b, "\\\"", 2); break;
      case '\\': rc = buf_append(b, "\\\\", 2); break;
      case '\n': rc = buf_append(b, "\\n", 2); break;
      case '\r': rc = buf_append(b, "\\r", 2); break;
      case '\t': rc = buf_append(b, "\\t", 2); break;
      default:
        if (c < 0x20) {
          char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          rc = buf_append(b, esc, 6);
        } else {
          rc = buf_putc(b, (char)c);
        }
    }
  }
  if (!rc) rc = buf_putc(b, '"');
  if (rc) { /* leave the buffer as it was */
    b->len = start;
    if (b->ptr) b->ptr[start] = '\0';
  }
  return rc;
}

char *buf_steal(struct buf *b, size_t *len) {
  char *p = b->ptr ? b->ptr : xstrdup("");
  if (len) *len = b->len;
  b->ptr = NULL;
  b->len = b->cap = 0;
  return p;
}

/*
 * Errors as values: evaluation errors (struct expr_error, a message and the
 * source offset of the operation that failed, allocated in the evaluation
 * arena) and compile diagnostics (struct expr_diag) with their rendering as
 * the expression with a caret under the column. Not the place where errors
 * are decided; lexer, parser, checker and VM do that.
 */
#include <stdio.h>
#include <string.h>

#include "expr/expr_int.h"

struct expr_value expr_error_oom(uint32_t pos) {
  /* Static, so an exhausted arena can still report. Its position is not
   * recorded (0): the error is about the whole evaluation. */
  static const struct expr_error oom = {0, "evaluation memory limit exceeded"};
  (void)pos;
  struct expr_value v = {.kind = EXPR_ERROR, .v.err = &oom};
  return v;
}

struct expr_value expr_error_new(struct expr_arena *a, uint32_t pos, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof(tmp)) n = sizeof(tmp) - 1;
  struct expr_error *e = arena_alloc(a, sizeof(*e) + (size_t)n + 1);
  if (!e) return expr_error_oom(pos);
  char *text = (char *)(e + 1);
  memcpy(text, tmp, (size_t)n + 1);
  e->pos = pos;
  e->msg = text;
  struct expr_value v = {.kind = EXPR_ERROR, .v.err = e};
  return v;
}

struct expr_value expr_error_overload(struct expr_arena *a, uint32_t pos, const char *fn,
                                      const struct expr_value *args, int n) {
  char types[256];
  size_t off = 0;
  types[0] = 0;
  for (int i = 0; i < n && off < sizeof(types); i++) {
    int k = args[i].kind;
    const char *tn = baton_expr_kind_name(k);
    if (k == EXPR_TIMESTAMP) tn = "timestamp";
    if (k == EXPR_DURATION) tn = "duration";
    int w = snprintf(types + off, sizeof(types) - off, "%s%s", i ? ", " : "", tn);
    if (w < 0) break;
    off += (size_t)w;
  }
  return expr_error_new(a, pos, "no matching overload for '%s' applied to '(%s)'", fn, types);
}

const char *baton_expr_error_message(const struct expr_error *e) { return e->msg; }
uint32_t baton_expr_error_pos(const struct expr_error *e) { return e->pos; }

void diag_set(struct expr_diag *d, const char *src, size_t len, uint32_t pos, const char *fmt,
              ...) {
  if (!d) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
  va_end(ap);
  if (pos > len) pos = (uint32_t)len;
  d->pos = pos;
  d->line = 1;
  d->col = 1;
  /* Columns count code points, so the caret lines up under UTF-8 text. */
  for (size_t i = 0; i < pos; i++) {
    unsigned char c = (unsigned char)src[i];
    if (c == '\n') {
      d->line++;
      d->col = 1;
    } else if ((c & 0xC0) != 0x80) {
      d->col++;
    }
  }
}

int baton_expr_diag_render(struct buf *b, const char *name, const char *src, size_t len,
                           const struct expr_diag *d) {
  int rc = buf_printf(b, "error: %s:%u:%u: %s\n", name ? name : "<input>", d->line, d->col, d->msg);
  if (rc) return rc;
  /* Print the line the error is on, then dots up to the column and a caret. */
  size_t start = d->pos > len ? len : d->pos;
  while (start > 0 && src[start - 1] != '\n') start--;
  size_t end = start;
  while (end < len && src[end] != '\n') end++;
  if ((rc = buf_puts(b, " | ")) || (rc = buf_append(b, src + start, end - start)) ||
      (rc = buf_puts(b, "\n | ")))
    return rc;
  for (uint32_t c = 1; c < d->col; c++)
    if ((rc = buf_putc(b, '.'))) return rc;
  return buf_puts(b, "^");
}

void baton_expr_error_diag(const struct expr_error *e, const char *src, size_t len,
                           struct expr_diag *diag) {
  diag_set(diag, src, len, e->pos, "%s", e->msg);
}

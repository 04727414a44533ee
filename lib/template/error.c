/*
 * Errors meant for people: a message with the line and column where the
 * template went wrong (jq's locfile idea). Positions are computed from a
 * pointer into the template's source only when an error is reported, so the
 * tree carries one pointer per node instead of line and column fields.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

void tpl_position(const struct tpl_src *s, const char *at, int *line, int *col) {
  *line = *col = 0;
  if (!s || !at || at < s->src || at > s->src + s->len) return;
  int l = 1, c = 1;
  for (const char *p = s->src; p < at; p++) {
    if (*p == '\n')
      l++, c = 1;
    else if (((unsigned char)*p & 0xC0) != 0x80) /* count characters, not UTF-8 bytes */
      c++;
  }
  *line = l, *col = c;
}

int tpl_error(struct template_error *err, const struct tpl_src *s, const char *at, int code,
              const char *fmt, ...) {
  if (!err) return code;
  err->code = code;
  snprintf(err->file, sizeof(err->file), "%s", s && s->name ? s->name : "template");
  tpl_position(s, at, &err->line, &err->col);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return code;
}

char *baton_template_error_format(const struct template_error *err, char *out, size_t size) {
  if (err->line > 0)
    snprintf(out, size, "%s:%d:%d: %s", err->file, err->line, err->col, err->msg);
  else
    snprintf(out, size, "%s: %s", err->file, err->msg);
  return out;
}

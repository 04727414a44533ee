/*
 * Structured logs: one JSON object a line on stderr, with a time, a level, a
 * message and the fields that matter (ids, counts). Thread-safe: each line is
 * built in a per-call buffer and written with one write(2).
 *
 *   struct jlog_line l;
 *   jlog_begin(&l, JLOG_INFO, "checkpoint written");
 *   jlog_u64(&l, "offset", off);
 *   jlog_end(&l);
 */
#ifndef BATON_UTIL_JLOG_H
#define BATON_UTIL_JLOG_H

#include <stdint.h>

#include "util/buf.h"

enum jlog_level { JLOG_DEBUG, JLOG_INFO, JLOG_WARN, JLOG_ERROR };

struct jlog_line {
  struct buf b;
  int skip; /* below the minimum level: fields are ignored */
};

/* Sets the minimum level written (default JLOG_INFO) and the output fd (default 2). */
void jlog_set_level(enum jlog_level lvl);
void jlog_set_fd(int fd);
int jlog_parse_level(const char *name, enum jlog_level *out);

void jlog_begin(struct jlog_line *l, enum jlog_level lvl, const char *msg);
void jlog_str(struct jlog_line *l, const char *key, const char *val);
void jlog_strn(struct jlog_line *l, const char *key, const char *val, size_t n);
void jlog_i64(struct jlog_line *l, const char *key, int64_t val);
void jlog_u64(struct jlog_line *l, const char *key, uint64_t val);
void jlog_f64(struct jlog_line *l, const char *key, double val);
void jlog_end(struct jlog_line *l);

/* One-line shorthand for a message with an optional string field (key may be NULL). */
void jlog(enum jlog_level lvl, const char *msg, const char *key, const char *val);

#endif

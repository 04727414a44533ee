/* JSON-lines logger; see jlog.h. */
#include "util/jlog.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/common.h"

static atomic_int min_level = JLOG_INFO;
static atomic_int out_fd = 2;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void jlog_set_level(enum jlog_level lvl) { atomic_store(&min_level, (int)lvl); }
void jlog_set_fd(int fd) { atomic_store(&out_fd, fd); }

int jlog_parse_level(const char *name, enum jlog_level *out) {
  for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
    if (!strcmp(name, level_names[i])) {
      *out = (enum jlog_level)i;
      return 0;
    }
  return BATON_EINVAL;
}

void jlog_begin(struct jlog_line *l, enum jlog_level lvl, const char *msg) {
  l->skip = (int)lvl < atomic_load(&min_level);
  if (l->skip) return;
  buf_init(&l->b, 64 * 1024);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  buf_printf(&l->b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000, level_names[lvl]);
  buf_json_str(&l->b, msg, strlen(msg));
}

void jlog_strn(struct jlog_line *l, const char *key, const char *val, size_t n) {
  if (l->skip) return;
  buf_putc(&l->b, ',');
  buf_json_str(&l->b, key, strlen(key));
  buf_putc(&l->b, ':');
  buf_json_str(&l->b, val ? val : "", val ? n : 0);
}

void jlog_str(struct jlog_line *l, const char *key, const char *val) {
  jlog_strn(l, key, val, val ? strlen(val) : 0);
}

void jlog_i64(struct jlog_line *l, const char *key, int64_t val) {
  if (l->skip) return;
  buf_printf(&l->b, ",\"%s\":%lld", key, (long long)val);
}

void jlog_u64(struct jlog_line *l, const char *key, uint64_t val) {
  if (l->skip) return;
  buf_printf(&l->b, ",\"%s\":%llu", key, (unsigned long long)val);
}

void jlog_f64(struct jlog_line *l, const char *key, double val) {
  if (l->skip) return;
  buf_printf(&l->b, ",\"%s\":%.6g", key, val);
}

void jlog_end(struct jlog_line *l) {
  if (l->skip) return;
  buf_append(&l->b, "}\n", 2);
  ssize_t off = 0;
  while ((size_t)off < l->b.len) {
    ssize_t n = write(atomic_load(&out_fd), l->b.ptr + off, l->b.len - (size_t)off);
    if (n <= 0) break;
    off += n;
  }
  buf_release(&l->b);
}

void jlog(enum jlog_level lvl, const char *msg, const char *key, const char *val) {
  struct jlog_line l;
  jlog_begin(&l, lvl, msg);
  if (key) jlog_str(&l, key, val);
  jlog_end(&l);
}

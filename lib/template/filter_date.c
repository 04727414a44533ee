/*
 * The date filter: {{ value | date: format [, zone] }}. value is "now" or
 * "today" (the render's clock), a number or numeric string of seconds since
 * the epoch, or a date string (ISO 8601 / RFC 3339, "YYYY-MM-DD HH:MM:SS",
 * "March 14, 2016", RFC 2822). The instant is shown in the optional zone
 * argument, else the render's zone (the customer's), else UTC, using the
 * system tzdata through util/tz.h, never the process-wide TZ. format is
 * strftime's, with %z, %Z, %s and %N/%L computed here for the chosen zone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template/template_int.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/tz.h"

/* Parses a date value to ms since the epoch; returns false if it is not a date. */
static bool parse_date(struct rctx *r, const struct value *in, int64_t *ms) {
  /* Seconds since the epoch, within +-3 million years (so ms fit and gmtime works). */
  if (in->type == VAL_INT) {
    if (in->i > 100000000000000 || in->i < -100000000000000) return false;
    *ms = in->i * 1000;
    return true;
  }
  if (in->type == VAL_FLOAT) {
    if (!(in->f < 1e14 && in->f > -1e14)) return false;
    *ms = (int64_t)(in->f * 1000);
    return true;
  }
  if (in->type != VAL_STR || !in->s.len || in->s.len > 100) return false;
  char s[128];
  memcpy(s, in->s.p, in->s.len);
  s[in->s.len] = 0;
  if (!strcmp(s, "now") || !strcmp(s, "today")) {
    *ms = r->env->now_ms ? r->env->now_ms : clock_now_ms();
    return true;
  }
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*s >= '0' && *s <= '9' && !*end && n <= 100000000000000) {
    *ms = (int64_t)n * 1000;
    return true;
  }
  if (!clock_parse_iso8601(s, ms)) return true;
  if (strlen(s) >= 19 && s[10] == ' ') {
    char t[128];
    snprintf(t, sizeof(t), "%s", s);
    t[10] = 'T';
    /* "2016-03-14 10:00:00 +0100" and "... UTC": join the zone on. */
    char *sp = strchr(t + 11, ' ');
    if (sp) {
      if (!strcmp(sp + 1, "UTC") || !strcmp(sp + 1, "GMT"))
        *sp = 'Z', sp[1] = 0;
      else
        memmove(sp, sp + 1, strlen(sp));
    }
    if (!clock_parse_iso8601(t, ms)) return true;
  }
  static const char *const formats[] = {"%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y",
                                        "%a, %d %b %Y %H:%M:%S %z", "%Y/%m/%d", "%B %d, %Y %H:%M"};
  for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
    struct tm tm = {0};
    const char *rest = strptime(s, formats[i], &tm);
    if (rest && !*rest) {
      long off = tm.tm_gmtoff;
      *ms = ((int64_t)timegm(&tm) - off) * 1000;
      return true;
    }
  }
  return false;
}

int f_date(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value fmt = fstr(r, farg(a, 0));
  int64_t ms;
  if (in->type == VAL_NIL || !fmt.s.len || !parse_date(r, in, &ms)) {
    *out = *in;
    return 0;
  }
  const char *zone = NULL;
  char zbuf[64];
  if (a->n > 1 && farg(a, 1)->type == VAL_STR) {
    const struct value *z = farg(a, 1);
    snprintf(zbuf, sizeof(zbuf), "%.*s", (int)MIN(z->s.len, 63), z->s.p);
    zone = zbuf;
  }
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int32_t off;
  int rc = render_zone_offset(r, zone, secs, &off);
  if (rc) return rc;
  const char *abbr = "UTC";
  const char *zname = zone ? zone : r->env->time_zone;
  if (zname && *zname) {
    const struct tz *z = tz_get(zname);
    if (z) tz_offset_at(z, secs, &abbr);
  }
  time_t local = (time_t)(secs + off);
  struct tm tm;
  if (!gmtime_r(&local, &tm)) {
    *out = *in;
    return 0;
  }
  struct sbuf b;
  sb_init(r, &b);
  const char *p = fmt.s.p, *end = p + fmt.s.len;
  while (p < end) {
    if (*p != '%' || p + 1 >= end) {
      sb_putc(&b, *p++);
      continue;
    }
    const char *spec = p++;
    while (p < end && strchr("-_0^#", *p)) p++;
    while (p < end && *p >= '0' && *p <= '9') p++;
    if (p < end && (*p == 'E' || *p == 'O')) p++;
    if (p >= end) {
      sb_append(&b, spec, (size_t)(end - spec));
      break;
    }
    char conv = *p++;
    switch (conv) {
    case 'z': sb_printf(&b, "%c%02d%02d", off < 0 ? '-' : '+', abs(off) / 3600, abs(off) / 60 % 60); break;
    case 'Z': sb_puts(&b, abbr); break;
    case 's': sb_printf(&b, "%lld", (long long)secs); break;
    case 'N':
    case 'L': sb_printf(&b, "%03lld", (long long)(((ms % 1000) + 1000) % 1000)); break;
    case '%': sb_putc(&b, '%'); break;
    default: {
      char f[16], res[128];
      size_t n = (size_t)(p - spec);
      if (n >= sizeof(f)) n = sizeof(f) - 1;
      memcpy(f, spec, n);
      f[n] = 0;
      size_t m = strftime(res, sizeof(res), f, &tm);
      if (m)
        sb_append(&b, res, m);
      else
        sb_append(&b, spec, (size_t)(p - spec));
    }
    }
  }
  return sb_finish(r, &b, out);
}

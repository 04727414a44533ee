/*
 * Timestamps and durations: RFC 3339 parsing and formatting over CEL's range
 * (years 0001 to 9999, nanosecond precision), duration strings ("1h30m",
 * "-1.5s", "250ms"), range-checked construction, the conversions
 * timestamp() and duration(), and the accessors (getFullYear ... getMilliseconds)
 * in UTC or in a named zone through util/tz.h. Civil dates use Howard
 * Hinnant's days-from-civil algorithms, valid far beyond CEL's range.
 */
#include <stdio.h>
#include <string.h>

#include "expr/expr_int.h"
#include "util/clock.h"
#include "util/tz.h"

#define NS 1000000000LL
/* ts - ts must fit in a 64-bit count of nanoseconds (about 292 years), as in
 * the reference implementation; durations built otherwise use DUR_MAX_SEC. */
#define TS_DIFF_MAX_SEC 9223372036LL

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

static bool digits(const char *s, size_t n, size_t at, int count, int *out) {
  if (at + (size_t)count > n) return false;
  int v = 0;
  for (int i = 0; i < count; i++) {
    char c = s[at + (size_t)i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

int ts_parse(const char *s, size_t n, int64_t *sec, int32_t *nanos) {
  int Y, M, D, h, mi, se;
  if (!digits(s, n, 0, 4, &Y) || n < 20 || s[4] != '-' || !digits(s, n, 5, 2, &M) || s[7] != '-' ||
      !digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !digits(s, n, 11, 2, &h) ||
      s[13] != ':' || !digits(s, n, 14, 2, &mi) || s[16] != ':' || !digits(s, n, 17, 2, &se))
    return BATON_EPARSE;
  if (M < 1 || M > 12 || D < 1 || h > 23 || mi > 59 || se > 60) return BATON_EPARSE;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
  if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap)) return BATON_EPARSE;
  size_t i = 19;
  int64_t ns = 0;
  if (i < n && s[i] == '.') {
    i++;
    int nd = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (nd < 9) ns = ns * 10 + (s[i] - '0');
      nd++;
      i++;
    }
    if (nd == 0) return BATON_EPARSE;
    for (int k = nd; k < 9; k++) ns *= 10;
  }
  int64_t off = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
        !digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
      return BATON_EPARSE;
    off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return BATON_EPARSE;
  }
  if (i != n) return BATON_EPARSE;
  *sec = clock_days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + se - off;
  *nanos = (int32_t)ns;
  return 0;
}

size_t ts_format(int64_t sec, int32_t nanos, char *out) {
  int64_t days = floor_div(sec, 86400), rem = sec - days * 86400;
  int64_t y;
  unsigned m, d;
  clock_civil_from_days(days, &y, &m, &d);
  int n = snprintf(out, 40, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d,
                   (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
  if (nanos) {
    char frac[16];
    snprintf(frac, sizeof(frac), ".%09d", nanos);
    size_t fl = strlen(frac);
    while (frac[fl - 1] == '0') frac[--fl] = 0;
    n += snprintf(out + n, 40 - (size_t)n, "%s", frac);
  }
  n += snprintf(out + n, 40 - (size_t)n, "Z");
  return (size_t)n;
}

int dur_parse(const char *s, size_t n, int64_t *sec, int32_t *nanos) {
  size_t i = 0;
  bool neg = false;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) return BATON_EPARSE;
  if (n - i == 1 && s[i] == '0') {
    *sec = 0;
    *nanos = 0;
    return 0;
  }
  /* Accumulate in (seconds, nanoseconds) to keep precision over the range. */
  __int128 total = 0; /* nanoseconds */
  while (i < n) {
    __int128 whole = 0;
    int64_t frac = 0, frac_scale = 1;
    size_t d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      whole = whole * 10 + (s[i++] - '0');
      if (whole > (__int128)DUR_MAX_SEC * 3600 * 10) return BATON_ERANGE;
    }
    bool have_frac = false;
    if (i < n && s[i] == '.') {
      i++;
      while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (frac_scale < 1000000000000000000LL / 10) {
          frac = frac * 10 + (s[i] - '0');
          frac_scale *= 10;
        }
        i++;
        have_frac = true;
      }
    }
    if (i == d0 || (i == d0 + 1 && s[d0] == '.' && !have_frac)) return BATON_EPARSE;
    int64_t unit;
    if (i + 1 < n && s[i] == 'm' && s[i + 1] == 's')
      unit = 1000000, i += 2;
    else if (i + 1 < n && s[i] == 'u' && s[i + 1] == 's')
      unit = 1000, i += 2;
    else if (i + 2 < n && !memcmp(s + i, "\xc2\xb5s", 3))
      unit = 1000, i += 3;
    else if (i + 1 < n && s[i] == 'n' && s[i + 1] == 's')
      unit = 1, i += 2;
    else if (i < n && s[i] == 'h')
      unit = 3600 * NS, i++;
    else if (i < n && s[i] == 'd')
      unit = 86400 * NS, i++; /* Baton extension: days */
    else if (i < n && s[i] == 'm')
      unit = 60 * NS, i++;
    else if (i < n && s[i] == 's')
      unit = NS, i++;
    else
      return BATON_EPARSE;
    total += whole * unit + (__int128)frac * unit / frac_scale;
    if (total > (__int128)DUR_MAX_SEC * NS) return BATON_ERANGE;
  }
  if (neg) total = -total;
  int64_t sc = (int64_t)(total / NS), ns = (int64_t)(total % NS);
  if (ns < 0) ns += NS, sc--;
  *sec = sc;
  *nanos = (int32_t)ns;
  return 0;
}

size_t dur_format(int64_t sec, int32_t nanos, char *out) {
  bool neg = sec < 0;
  int64_t s = sec, ns = nanos;
  if (neg) {
    /* Back from floor form to sign and magnitude. */
    if (ns) s += 1, ns = NS - ns;
    s = -s;
  }
  int n = snprintf(out, 40, "%s%lld", neg ? "-" : "", (long long)s);
  if (ns) {
    char frac[16];
    snprintf(frac, sizeof(frac), ".%09lld", (long long)ns);
    size_t fl = strlen(frac);
    while (frac[fl - 1] == '0') frac[--fl] = 0;
    n += snprintf(out + n, 40 - (size_t)n, "%s", frac);
  }
  n += snprintf(out + n, 40 - (size_t)n, "s");
  return (size_t)n;
}

static void normalize(int64_t *sec, int64_t *nanos) {
  int64_t carry = floor_div(*nanos, NS);
  *sec += carry;
  *nanos -= carry * NS;
}

struct expr_value ts_value(struct vm *vm, int64_t sec, int64_t nanos, uint32_t pos) {
  normalize(&sec, &nanos);
  if (sec < TS_MIN_SEC || sec > TS_MAX_SEC)
    return expr_error_new(vm->arena, pos, "timestamp out of range");
  struct expr_value v = {.kind = EXPR_TIMESTAMP, .aux = (uint32_t)nanos, .v.sec = sec};
  return v;
}

struct expr_value dur_value(struct vm *vm, int64_t sec, int64_t nanos, uint32_t pos) {
  normalize(&sec, &nanos);
  if (sec < -DUR_MAX_SEC || sec > DUR_MAX_SEC || (sec == DUR_MAX_SEC && nanos))
    return expr_error_new(vm->arena, pos, "duration out of range");
  struct expr_value v = {.kind = EXPR_DURATION, .aux = (uint32_t)nanos, .v.sec = sec};
  return v;
}

struct expr_value ts_diff(struct vm *vm, struct expr_value a, struct expr_value b, uint32_t pos) {
  int64_t s = a.v.sec - b.v.sec, ns = (int64_t)a.aux - b.aux;
  normalize(&s, &ns);
  if (s > TS_DIFF_MAX_SEC || s < -TS_DIFF_MAX_SEC - 1)
    return expr_error_new(vm->arena, pos, "duration out of range");
  return dur_value(vm, s, ns, pos);
}

static struct expr_value conv_timestamp(struct vm *vm, struct expr_value x, uint32_t pos) {
  if (x.kind == EXPR_TIMESTAMP) return x;
  if (x.kind == EXPR_INT) return ts_value(vm, x.v.i, 0, pos);
  if (x.kind == EXPR_STRING) {
    int64_t s;
    int32_t ns;
    if (ts_parse(x.v.s, x.aux, &s, &ns))
      return expr_error_new(vm->arena, pos, "cannot parse timestamp \"%.*s\"", (int)MIN(x.aux, 64u),
                            x.v.s);
    return ts_value(vm, s, ns, pos);
  }
  return expr_error_overload(vm->arena, pos, "timestamp", &x, 1);
}

static struct expr_value conv_duration(struct vm *vm, struct expr_value x, uint32_t pos) {
  if (x.kind == EXPR_DURATION) return x;
  if (x.kind == EXPR_STRING) {
    int64_t s;
    int32_t ns;
    int rc = dur_parse(x.v.s, x.aux, &s, &ns);
    if (rc == BATON_ERANGE) return expr_error_new(vm->arena, pos, "duration out of range");
    if (rc)
      return expr_error_new(vm->arena, pos, "cannot parse duration \"%.*s\"", (int)MIN(x.aux, 64u),
                            x.v.s);
    return dur_value(vm, s, ns, pos);
  }
  return expr_error_overload(vm->arena, pos, "duration", &x, 1);
}

/* Splits a duration into whole seconds and nanoseconds, both truncated toward zero. */
static void dur_trunc(struct expr_value d, int64_t *s, int64_t *ns) {
  *s = d.v.sec;
  *ns = d.aux;
  if (*s < 0 && *ns) {
    *s += 1;
    *ns -= NS;
  }
}

/*
 * Local calendar fields of timestamp t in zone zone (UTC if NULL).
 * Returns 0 or BATON_EINVAL for an unknown zone.
 */
int ts_local(struct vm *vm, struct expr_value t, const char *zone, size_t zone_len,
             int64_t *local_sec) {
  *local_sec = t.v.sec;
  if (!zone) return 0;
  struct expr_ctx *c = vm->ctx;
  /* The context remembers the last zone it resolved: tz_get takes a
   * process-wide lock, and one customer's conditions ask for one zone. */
  if (c && c->tz && c->tz_name_len == zone_len && !memcmp(c->tz_name, zone, zone_len)) {
    *local_sec = t.v.sec + tz_offset_at(c->tz, t.v.sec, NULL);
    return 0;
  }
  char name[128];
  if (zone_len == 0 || zone_len >= sizeof(name)) return BATON_EINVAL;
  /* CEL also accepts an offset without its sign ("02:00" means "+02:00"). */
  size_t o = 0;
  if (zone[0] >= '0' && zone[0] <= '9') name[o++] = '+';
  if (o + zone_len >= sizeof(name)) return BATON_EINVAL;
  memcpy(name + o, zone, zone_len);
  name[o + zone_len] = 0;
  const struct tz *z = tz_get(name);
  if (!z) return BATON_EINVAL;
  if (c && zone_len <= sizeof(c->tz_name)) {
    memcpy(c->tz_name, zone, zone_len);
    c->tz_name_len = zone_len;
    c->tz = z;
  }
  *local_sec = t.v.sec + tz_offset_at(z, t.v.sec, NULL);
  return 0;
}

void time_accessor(struct vm *vm, int fn, const struct expr_value *args, int n, uint32_t pos,
                   struct expr_value *out) {
  struct expr_value a = args[0];
  if (fn == FN_TIMESTAMP) {
    *out = conv_timestamp(vm, a, pos);
    return;
  }
  if (fn == FN_DURATION) {
    *out = conv_duration(vm, a, pos);
    return;
  }
  if (a.kind == EXPR_DURATION && n == 1) {
    int64_t s, ns;
    dur_trunc(a, &s, &ns);
    switch (fn) {
      case FN_GET_HOURS:
        *out = baton_expr_int(s / 3600);
        return;
      case FN_GET_MINUTES:
        *out = baton_expr_int(s / 60);
        return;
      case FN_GET_SECONDS:
        *out = baton_expr_int(s);
        return;
      case FN_GET_MILLISECONDS:
        *out = baton_expr_int(ns / 1000000);
        return;
    }
  }
  if (a.kind != EXPR_TIMESTAMP || (n == 2 && args[1].kind != EXPR_STRING)) {
    *out = expr_error_overload(vm->arena, pos, builtins[fn].name, args, n);
    return;
  }
  int64_t ls;
  if (ts_local(vm, a, n == 2 ? args[1].v.s : NULL, n == 2 ? args[1].aux : 0, &ls)) {
    *out = expr_error_new(vm->arena, pos, "unknown time zone \"%.*s\"", (int)MIN(args[1].aux, 64u),
                          args[1].v.s);
    return;
  }
  int64_t days = floor_div(ls, 86400), rem = ls - days * 86400;
  int64_t y;
  unsigned m, d;
  clock_civil_from_days(days, &y, &m, &d);
  int64_t r = 0;
  switch (fn) {
    case FN_GET_FULL_YEAR:
      r = y;
      break;
    case FN_GET_MONTH:
      r = m - 1;
      break;
    case FN_GET_DAY_OF_YEAR:
      r = days - clock_days_from_civil(y, 1, 1);
      break;
    case FN_GET_DAY_OF_MONTH:
      r = d - 1;
      break;
    case FN_GET_DATE:
      r = d;
      break;
    case FN_GET_DAY_OF_WEEK:
      r = ((days % 7) + 11) % 7;
      break; /* 1970-01-01 was a Thursday */
    case FN_GET_HOURS:
      r = rem / 3600;
      break;
    case FN_GET_MINUTES:
      r = rem / 60 % 60;
      break;
    case FN_GET_SECONDS:
      r = rem % 60;
      break;
    case FN_GET_MILLISECONDS:
      r = a.aux / 1000000;
      break;
  }
  *out = baton_expr_int(r);
}

/*
 * TZif reader and POSIX TZ rule evaluation; see tz.h. Only version 2+ 64-bit
 * data is used (version 1 files fall back to their 32-bit block).
 */
#include "util/tz.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/common.h"
#include "util/smap.h"

#define TZ_MAX_FILE (512 * 1024)

struct tz_type {
  int32_t utoff;
  uint8_t isdst;
  uint8_t abbr_idx;
};

/* A POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0"): std offset and optional DST rule. */
struct tz_rule_date {
  char kind; /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' (month.week.day) */
  int a, b, c;
  int32_t time; /* seconds after local midnight, may be negative or > 24h */
};

struct tz_rule {
  int present;
  char std_abbr[16], dst_abbr[16];
  int32_t std_off, dst_off; /* seconds east */
  int has_dst;
  struct tz_rule_date start, end;
};

struct tz {
  char *name;
  int64_t *trans; /* transition instants, ascending */
  uint8_t *trans_type;
  size_t n_trans;
  struct tz_type *types;
  size_t n_types;
  char *abbrs;
  size_t abbrs_len;
  struct tz_rule rule;
};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

/* ---- POSIX TZ strings ---- */

static const char *parse_abbr(const char *p, char *out) {
  size_t n = 0;
  if (*p == '<') {
    p++;
    while (*p && *p != '>') {
      if (n < 15) out[n++] = *p;
      p++;
    }
    if (*p != '>') return NULL;
    p++;
  } else {
    while (isalpha((unsigned char)*p)) {
      if (n < 15) out[n++] = *p;
      p++;
    }
  }
  out[n] = '\0';
  return n >= 3 || (n > 0) ? p : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds. */
static const char *parse_hms(const char *p, int32_t *out) {
  int sign = 1;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  if (!isdigit((unsigned char)*p)) return NULL;
  int32_t h = 0, m = 0, s = 0;
  while (isdigit((unsigned char)*p)) h = h * 10 + (*p++ - '0');
  if (h > 167) return NULL;
  if (*p == ':') {
    p++;
    if (!isdigit((unsigned char)*p)) return NULL;
    while (isdigit((unsigned char)*p)) m = m * 10 + (*p++ - '0');
    if (*p == ':') {
      p++;
      if (!isdigit((unsigned char)*p)) return NULL;
      while (isdigit((unsigned char)*p)) s = s * 10 + (*p++ - '0');
    }
  }
  if (m > 59 || s > 59) return NULL;
  *out = sign * (h * 3600 + m * 60 + s);
  return p;
}

static const char *parse_date(const char *p, struct tz_rule_date *d) {
  if (*p == 'M') {
    p++;
    d->kind = 'M';
    if (sscanf(p, "%d.%d.%d", &d->a, &d->b, &d->c) != 3) return NULL;
    if (d->a < 1 || d->a > 12 || d->b < 1 || d->b > 5 || d->c < 0 || d->c > 6) return NULL;
    while (*p && (isdigit((unsigned char)*p) || *p == '.')) p++;
  } else {
    d->kind = 'D';
    if (*p == 'J') {
      d->kind = 'J';
      p++;
    }
    if (!isdigit((unsigned char)*p)) return NULL;
    d->a = 0;
    while (isdigit((unsigned char)*p)) d->a = d->a * 10 + (*p++ - '0');
    if (d->a > 365) return NULL;
  }
  d->time = 7200;
  if (*p == '/') {
    p = parse_hms(p + 1, &d->time);
    if (!p) return NULL;
  }
  return p;
}

static int parse_rule(const char *s, struct tz_rule *r) {
  memset(r, 0, sizeof(*r));
  const char *p = parse_abbr(s, r->std_abbr);
  int32_t off;
  if (!p || !(p = parse_hms(p, &off))) return BATON_EPARSE;
  r->std_off = -off; /* POSIX offsets are west-positive */
  if (*p) {
    p = parse_abbr(p, r->dst_abbr);
    if (!p) return BATON_EPARSE;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
      if (!(p = parse_hms(p, &off))) return BATON_EPARSE;
      r->dst_off = -off;
    }
    if (*p != ',') return BATON_EPARSE; /* a DST zone without rules: not supported */
    if (!(p = parse_date(p + 1, &r->start)) || *p != ',') return BATON_EPARSE;
    if (!(p = parse_date(p + 1, &r->end)) || *p) return BATON_EPARSE;
  }
  r->present = 1;
  return 0;
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }


static int64_t year_of(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400, y;
  unsigned m, d;
  clock_civil_from_days(days, &y, &m, &d);
  return y;
}

/* Local seconds (as if UTC) at which the rule date fires in year y. */
static int64_t rule_local(const struct tz_rule_date *d, int64_t y) {
  int64_t day;
  if (d->kind == 'J') {
    day = clock_days_from_civil(y, 1, 1) + d->a - 1;
    if (is_leap(y) && d->a >= 60) day++;
  } else if (d->kind == 'D') {
    day = clock_days_from_civil(y, 1, 1) + d->a;
  } else {
    int64_t first = clock_days_from_civil(y, (unsigned)d->a, 1);
    int wday = (int)(((first % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t dd = first + ((d->c - wday + 7) % 7) + (int64_t)(d->b - 1) * 7;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int len = mdays[d->a - 1] + (d->a == 2 && is_leap(y));
    while (dd >= first + len) dd -= 7;
    day = dd;
  }
  return day * 86400 + d->time;
}

static int32_t rule_offset(const struct tz_rule *r, int64_t t, const char **abbr) {
  if (!r->has_dst) {
    if (abbr) *abbr = r->std_abbr;
    return r->std_off;
  }
  int64_t y = year_of(t + r->std_off);
  /* DST starts at start.time in standard time, ends at end.time in DST. */
  int64_t start = rule_local(&r->start, y) - r->std_off;
  int64_t end = rule_local(&r->end, y) - r->dst_off;
  int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  if (abbr) *abbr = dst ? r->dst_abbr : r->std_abbr;
  return dst ? r->dst_off : r->std_off;
}

/* ---- TZif ---- */

void tz_free(struct tz *z) {
  if (!z) return;
  free(z->name);
  free(z->trans);
  free(z->trans_type);
  free(z->types);
  free(z->abbrs);
  free(z);
}

int tz_parse(const void *data, size_t len, const char *name, struct tz **out) {
  const uint8_t *p = data, *end = p + len;
  if (len < 44 || memcmp(p, "TZif", 4)) return BATON_ECORRUPT;
  int version = p[4] ? p[4] - '0' : 1;
  int use64 = version >= 2;
  uint32_t cnt[6];
  for (int i = 0; i < 6; i++) cnt[i] = be32(p + 20 + 4 * i);
  /* counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
  if (cnt[4] == 0 || cnt[4] > 256 || cnt[3] > 100000 || cnt[5] > 4096 || cnt[2] > 1000)
    return BATON_ECORRUPT;
  size_t v1_size = (size_t)cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[2] * 8 + cnt[1] + cnt[0];
  const uint8_t *hdr = p;
  if (use64) {
    if ((size_t)(end - p) < 44 + v1_size + 44) return BATON_ECORRUPT;
    hdr = p + 44 + v1_size;
    if (memcmp(hdr, "TZif", 4)) return BATON_ECORRUPT;
    for (int i = 0; i < 6; i++) cnt[i] = be32(hdr + 20 + 4 * i);
    if (cnt[4] == 0 || cnt[4] > 256 || cnt[3] > 100000 || cnt[5] > 4096 || cnt[2] > 1000)
      return BATON_ECORRUPT;
  }
  size_t tsz = use64 ? 8 : 4;
  size_t body = (size_t)cnt[3] * (tsz + 1) + cnt[4] * 6 + cnt[5] + cnt[2] * (tsz + 4) + cnt[1] +
                cnt[0];
  const uint8_t *q = hdr + 44;
  if ((size_t)(end - q) < body) return BATON_ECORRUPT;
  struct tz *z = xcalloc(1, sizeof(*z));
  z->name = xstrdup(name ? name : "");
  z->n_trans = cnt[3];
  z->trans = xcalloc(z->n_trans + 1, sizeof(*z->trans));
  z->trans_type = xcalloc(z->n_trans + 1, 1);
  for (size_t i = 0; i < z->n_trans; i++, q += tsz)
    z->trans[i] = use64 ? be64(q) : (int32_t)be32(q);
  for (size_t i = 0; i < z->n_trans; i++) {
    z->trans_type[i] = *q++;
    if (z->trans_type[i] >= cnt[4]) goto corrupt;
    if (i && z->trans[i] <= z->trans[i - 1]) goto corrupt;
  }
  z->n_types = cnt[4];
  z->types = xcalloc(z->n_types, sizeof(*z->types));
  for (size_t i = 0; i < z->n_types; i++, q += 6) {
    z->types[i].utoff = (int32_t)be32(q);
    z->types[i].isdst = q[4];
    z->types[i].abbr_idx = q[5];
    if (q[5] >= cnt[5] || z->types[i].utoff < -25 * 3600 || z->types[i].utoff > 26 * 3600)
      goto corrupt;
  }
  z->abbrs_len = cnt[5];
  z->abbrs = xcalloc(cnt[5] + 1, 1);
  memcpy(z->abbrs, q, cnt[5]);
  q += cnt[5] + cnt[2] * (tsz + 4) + cnt[1] + cnt[0];
  if (use64 && q < end && *q == '\n') {
    const uint8_t *nl = memchr(q + 1, '\n', (size_t)(end - q - 1));
    if (nl && nl - q - 1 > 0 && nl - q - 1 < 128) {
      char footer[128];
      memcpy(footer, q + 1, (size_t)(nl - q - 1));
      footer[nl - q - 1] = '\0';
      if (parse_rule(footer, &z->rule)) z->rule.present = 0;
    }
  }
  *out = z;
  return 0;
corrupt:
  tz_free(z);
  return BATON_ECORRUPT;
}

const char *tz_name(const struct tz *z) { return z->name; }

int32_t tz_offset_at(const struct tz *z, int64_t t, const char **abbr) {
  const struct tz_type *ty;
  if (z->n_trans == 0 || t < z->trans[0]) {
    if (z->n_trans == 0 && z->rule.present) return rule_offset(&z->rule, t, abbr);
    /* Before the first transition: the first non-DST type (RFC 8536 3.2). */
    ty = &z->types[0];
    for (size_t i = 0; i < z->n_types; i++)
      if (!z->types[i].isdst) {
        ty = &z->types[i];
        break;
      }
  } else if (t >= z->trans[z->n_trans - 1] && z->rule.present) {
    return rule_offset(&z->rule, t, abbr);
  } else {
    size_t lo = 0, hi = z->n_trans; /* last transition <= t */
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (z->trans[mid] <= t)
        lo = mid;
      else
        hi = mid;
    }
    ty = &z->types[z->trans_type[lo]];
  }
  if (abbr) *abbr = z->abbrs + ty->abbr_idx;
  return ty->utoff;
}

int64_t tz_local_to_utc(const struct tz *z, int64_t local) {
  /* Try the offsets in effect a day either side; prefer the earliest match. */
  int32_t o1 = tz_offset_at(z, local - 86400, NULL);
  int32_t o2 = tz_offset_at(z, local + 86400, NULL);
  int64_t best = INT64_MAX;
  int32_t offs[2] = {o1, o2};
  for (int i = 0; i < 2; i++) {
    int64_t t = local - offs[i];
    if (tz_offset_at(z, t, NULL) == offs[i] && t < best) best = t;
  }
  if (best != INT64_MAX) return best;
  /* In a gap: keep the distance past the transition (02:30 -> 03:30). */
  return local - (o1 < o2 ? o1 : o2);
}

/* ---- loading and cache ---- */

static int name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 128 || name[0] == '/' || name[0] == '.') return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!(isalnum((unsigned char)c) || c == '/' || c == '_' || c == '-' || c == '+' || c == '.'))
      return 0;
    if (c == '.' && i + 1 < n && name[i + 1] == '.') return 0;
  }
  return 1;
}

static struct tz *fixed_zone(const char *name, int32_t off) {
  struct tz *z = xcalloc(1, sizeof(*z));
  z->name = xstrdup(name);
  z->n_types = 1;
  z->types = xcalloc(1, sizeof(*z->types));
  z->types[0].utoff = off;
  z->abbrs = xstrdup(off == 0 ? "UTC" : name);
  z->abbrs_len = strlen(z->abbrs);
  z->trans = xcalloc(1, sizeof(*z->trans));
  z->trans_type = xcalloc(1, 1);
  return z;
}

static struct tz *load(const char *name) {
  if (!strcmp(name, "UTC") || !strcmp(name, "Z") || !strcmp(name, "Etc/UTC"))
    return fixed_zone(name, 0);
  if (name[0] == '+' || name[0] == '-') {
    int sign = name[0] == '-' ? -1 : 1, h, m = 0;
    const char *p = name + 1;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return NULL;
    h = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    if (*p == ':') p++;
    if (*p) {
      if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2]) return NULL;
      m = (p[0] - '0') * 10 + (p[1] - '0');
    }
    if (h > 18 || m > 59) return NULL;
    return fixed_zone(name, sign * (h * 3600 + m * 60));
  }
  if (!name_ok(name)) return NULL;
  const char *dir = getenv("BATON_ZONEINFO");
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > TZ_MAX_FILE) {
    close(fd);
    return NULL;
  }
  uint8_t *data = xmalloc((size_t)st.st_size);
  ssize_t got = 0;
  while (got < st.st_size) {
    ssize_t n = read(fd, data + got, (size_t)(st.st_size - got));
    if (n <= 0) break;
    got += n;
  }
  close(fd);
  struct tz *z = NULL;
  if (got == st.st_size) tz_parse(data, (size_t)got, name, &z);
  free(data);
  return z;
}

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct smap cache; /* name -> struct tz *, or a sentinel for "unknown" */
static char unknown_zone;

const struct tz *tz_get(const char *name) {
  if (!name) return NULL;
  size_t n = strlen(name);
  pthread_mutex_lock(&cache_mu);
  void *v = smap_get(&cache, name, n);
  if (!v) {
    struct tz *z = load(name);
    v = z ? (void *)z : (void *)&unknown_zone;
    /* Unknown names are cached too, but only a bounded number of them. */
    if (z || cache.len < 4096) *smap_upsert(&cache, name, n, NULL) = v;
  }
  pthread_mutex_unlock(&cache_mu);
  return v == &unknown_zone ? NULL : v;
}

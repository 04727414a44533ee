/* Computed aggregates; see aggregate.h. */
#include "engine/aggregate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/common.h"

static const char *const kind_names[] = {"count", "sum", "min", "max", "first", "last"};

const char *agg_kind_name(enum agg_kind k) { return kind_names[k]; }

int agg_kind_parse(const char *s, enum agg_kind *out) {
  for (int i = 0; i < (int)ARRAY_SIZE(kind_names); i++)
    if (!strcmp(s, kind_names[i])) {
      *out = (enum agg_kind)i;
      return 0;
    }
  return BATON_EINVAL;
}

void agg_state_clear(struct agg_state *st) {
  free(st->json);
  free(st->bv);
  free(st->bc);
  memset(st, 0, sizeof(*st));
}

static const cJSON *lookup(const cJSON *props, const char *path) {
  const cJSON *cur = props;
  char seg[128];
  while (cur && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (n >= sizeof(seg)) return NULL;
    memcpy(seg, path, n);
    seg[n] = '\0';
    cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, seg) : NULL;
    path += n + (dot ? 1 : 0);
  }
  return cur;
}

static double fold(enum agg_kind k, double acc, int has, double v) {
  if (!has) return v;
  switch (k) {
    case AGG_SUM: return acc + v;
    case AGG_MIN: return v < acc ? v : acc;
    case AGG_MAX: return v > acc ? v : acc;
    default: return acc;
  }
}

static int64_t bucket_width(const struct agg_def *d) {
  int64_t w = d->window_ms / AGG_BUCKETS;
  return w > 0 ? w : 1;
}

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void agg_update(const struct agg_def *d, struct agg_state *st, int64_t t_ms, const cJSON *props) {
  const cJSON *v = d->property ? lookup(props, d->property) : NULL;
  if (d->kind == AGG_FIRST || d->kind == AGG_LAST) {
    if (d->property && !v) return; /* the event lacks the property: nothing to remember */
    int take = d->kind == AGG_LAST ? (!st->count || t_ms >= st->at_ms) : (!st->count || t_ms < st->at_ms);
    st->count++;
    if (take) {
      st->at_ms = t_ms;
      free(st->json);
      st->json = v ? cJSON_PrintUnformatted(v) : NULL;
    }
    return;
  }
  double x = 0;
  if (d->kind != AGG_COUNT) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return; /* only numbers add up */
    x = v->valuedouble;
  }
  if (!d->window_ms) {
    st->count++;
    st->value = fold(d->kind, st->value, st->has_value, x);
    st->has_value = 1;
    return;
  }
  int64_t w = bucket_width(d), idx = floordiv(t_ms, w);
  if (!st->bv) {
    st->bv = xcalloc(AGG_BUCKETS, sizeof(*st->bv));
    st->bc = xcalloc(AGG_BUCKETS, sizeof(*st->bc));
    st->newest = idx;
  }
  if (idx <= st->newest - AGG_BUCKETS) return; /* older than anything the window can hold */
  if (idx > st->newest) { /* the window moves: clear the buckets it skips */
    int64_t steps = MIN(idx - st->newest, (int64_t)AGG_BUCKETS);
    for (int64_t i = 1; i <= steps; i++) {
      size_t b = (size_t)((st->newest + i) % AGG_BUCKETS + AGG_BUCKETS) % AGG_BUCKETS;
      st->bv[b] = 0;
      st->bc[b] = 0;
    }
    st->newest = idx;
  }
  size_t b = (size_t)(idx % AGG_BUCKETS + AGG_BUCKETS) % AGG_BUCKETS;
  st->bv[b] = fold(d->kind, st->bv[b], st->bc[b] > 0, x);
  st->bc[b]++;
}

void agg_value_json(const struct agg_def *d, const struct agg_state *st, int64_t now_ms,
                    struct buf *out) {
  char ts[32];
  if (d->kind == AGG_FIRST || d->kind == AGG_LAST) {
    if (!st->count) {
      buf_puts(out, "null");
      return;
    }
    buf_puts(out, "{\"value\":");
    buf_puts(out, st->json ? st->json : "null");
    buf_printf(out, ",\"at\":\"%s\"}", clock_format_ms(st->at_ms, ts));
    return;
  }
  uint64_t count = 0;
  double value = 0;
  int has = 0;
  if (!d->window_ms) {
    count = st->count;
    value = st->value;
    has = st->has_value;
  } else if (st->bv) {
    int64_t w = bucket_width(d), hi = floordiv(now_ms, w), lo = hi - AGG_BUCKETS + 1;
    for (int64_t idx = MAX(lo, st->newest - AGG_BUCKETS + 1); idx <= MIN(hi, st->newest); idx++) {
      size_t b = (size_t)(idx % AGG_BUCKETS + AGG_BUCKETS) % AGG_BUCKETS;
      if (!st->bc[b]) continue;
      count += st->bc[b];
      value = fold(d->kind, value, has, st->bv[b]);
      has = 1;
    }
  }
  if (d->kind == AGG_COUNT)
    buf_printf(out, "%llu", (unsigned long long)count);
  else if (!has)
    buf_puts(out, d->kind == AGG_SUM ? "0" : "null");
  else
    buf_printf(out, "%.17g", value);
}

uint64_t agg_fingerprint(const struct agg_def *d) {
  uint64_t h = baton_hash64(d->name, strlen(d->name), (uint64_t)d->kind);
  h = baton_hash64(d->event, strlen(d->event), h);
  if (d->property) h = baton_hash64(d->property, strlen(d->property), h);
  return baton_hash64(&d->window_ms, sizeof(d->window_ms), h);
}

void agg_encode(const struct agg_state *st, struct buf *b) {
  buf_append(b, &st->count, 8);
  buf_append(b, &st->value, 8);
  uint8_t flags = (uint8_t)((st->has_value ? 1 : 0) | (st->json ? 2 : 0) | (st->bv ? 4 : 0));
  buf_append(b, &flags, 1);
  buf_append(b, &st->at_ms, 8);
  if (st->json) {
    uint32_t n = (uint32_t)strlen(st->json);
    buf_append(b, &n, 4);
    buf_append(b, st->json, n);
  }
  if (st->bv) {
    buf_append(b, &st->newest, 8);
    buf_append(b, st->bv, AGG_BUCKETS * sizeof(*st->bv));
    buf_append(b, st->bc, AGG_BUCKETS * sizeof(*st->bc));
  }
}

size_t agg_decode(struct agg_state *st, const char *p, size_t len) {
  memset(st, 0, sizeof(*st));
  size_t off = 0;
  if (len < 25) return 0;
  memcpy(&st->count, p, 8);
  memcpy(&st->value, p + 8, 8);
  uint8_t flags = (uint8_t)p[16];
  memcpy(&st->at_ms, p + 17, 8);
  off = 25;
  st->has_value = flags & 1;
  if (flags & 2) {
    uint32_t n;
    if (len - off < 4) return 0;
    memcpy(&n, p + off, 4);
    off += 4;
    if (len - off < n) return 0;
    st->json = xstrndup(p + off, n);
    off += n;
  }
  if (flags & 4) {
    size_t need = 8 + AGG_BUCKETS * (sizeof(double) + sizeof(uint32_t));
    if (len - off < need) {
      agg_state_clear(st);
      return 0;
    }
    memcpy(&st->newest, p + off, 8);
    st->bv = xmalloc(AGG_BUCKETS * sizeof(*st->bv));
    st->bc = xmalloc(AGG_BUCKETS * sizeof(*st->bc));
    memcpy(st->bv, p + off + 8, AGG_BUCKETS * sizeof(*st->bv));
    memcpy(st->bc, p + off + 8 + AGG_BUCKETS * sizeof(double), AGG_BUCKETS * sizeof(*st->bc));
    off += need;
  }
  return off;
}

void agg_merge(const struct agg_def *d, struct agg_state *into, struct agg_state *from) {
  if (!from->count && !from->bv) return;
  if (d->kind == AGG_FIRST || d->kind == AGG_LAST) {
    int take = into->count == 0 ||
               (d->kind == AGG_LAST ? from->at_ms > into->at_ms : from->at_ms < into->at_ms);
    into->count += from->count;
    if (take) {
      free(into->json);
      into->json = from->json;
      from->json = NULL;
      into->at_ms = from->at_ms;
    }
  } else if (!d->window_ms) {
    if (from->has_value) {
      into->value = fold(d->kind, into->value, into->has_value, from->value);
      into->has_value = 1;
    }
    into->count += from->count;
  } else if (from->bv) {
    if (!into->bv) {
      into->bv = from->bv;
      into->bc = from->bc;
      into->newest = from->newest;
      from->bv = NULL;
      from->bc = NULL;
    } else {
      /* Bring both rings to the same newest bucket, then fold bucket by bucket. */
      int64_t newest = MAX(into->newest, from->newest);
      struct agg_state *both[2] = {into, from};
      for (int k = 0; k < 2; k++) {
        struct agg_state *st = both[k];
        int64_t steps = MIN(newest - st->newest, (int64_t)AGG_BUCKETS);
        for (int64_t i = 1; i <= steps; i++) {
          size_t b = (size_t)((st->newest + i) % AGG_BUCKETS + AGG_BUCKETS) % AGG_BUCKETS;
          st->bv[b] = 0;
          st->bc[b] = 0;
        }
        st->newest = newest;
      }
      for (size_t b = 0; b < AGG_BUCKETS; b++) {
        if (!from->bc[b]) continue;
        into->bv[b] = fold(d->kind, into->bv[b], into->bc[b] > 0, from->bv[b]);
        into->bc[b] += from->bc[b];
      }
    }
  }
  agg_state_clear(from);
}

/*
 * Computed aggregates: per-customer figures kept incrementally as events are
 * applied — "purchases in the last 30 days", "lifetime revenue", "last plan
 * seen" — declared in the configuration (docs/aggregates.md).
 *
 * An aggregate matches track events by name ("*": every track event) and
 * computes count, sum, min, max (of a numeric property), or the first/last
 * value of a property (or the time of the first/last event). With a window,
 * count/sum/min/max cover a sliding window kept in AGG_BUCKETS buckets by the
 * event's timestamp, so an event leaves the window up to window/AGG_BUCKETS
 * early; the window ends at the engine's clock. Deterministic: a function of
 * the events in log order.
 */
#ifndef BATON_ENGINE_AGGREGATE_H
#define BATON_ENGINE_AGGREGATE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AGG_BUCKETS 32
#define AGG_MAX_DEFS 64 /* aggregates per deployment */

enum agg_kind { AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX, AGG_FIRST, AGG_LAST };

struct agg_def {
  char *name;
  char *event;     /* track event name, or "*" */
  char *property;  /* dot path inside properties, or NULL */
  enum agg_kind kind;
  int64_t window_ms; /* 0: all time */
};

/* One customer's state for one aggregate. */
struct agg_state {
  uint64_t count;
  double value;      /* sum, min or max */
  int has_value;
  int64_t at_ms;     /* first/last: the event's time */
  char *json;        /* first/last: the property's value as JSON text, or NULL */
  int64_t newest;    /* windowed: index of the newest bucket */
  double *bv;        /* windowed: per-bucket value, AGG_BUCKETS (allocated on first use) */
  uint32_t *bc;      /* windowed: per-bucket count */
};

const char *agg_kind_name(enum agg_kind k);
int agg_kind_parse(const char *s, enum agg_kind *out);

/* Updates st with one matching event (props may be NULL). */
void agg_update(const struct agg_def *d, struct agg_state *st, int64_t t_ms, const cJSON *props);

/* Appends the aggregate's current value as JSON to out (null when there is none). */
void agg_value_json(const struct agg_def *d, const struct agg_state *st, int64_t now_ms,
                    struct buf *out);

void agg_state_clear(struct agg_state *st);

/* Folds from into into (a profile merge); from is left cleared. */
void agg_merge(const struct agg_def *d, struct agg_state *into, struct agg_state *from);

/* Serialisation inside a profile record; a definition's fingerprint ties the
   state to it, so a changed definition starts afresh. */
uint64_t agg_fingerprint(const struct agg_def *d);
void agg_encode(const struct agg_state *st, struct buf *b);
/* Returns bytes consumed, or 0 if malformed. */
size_t agg_decode(struct agg_state *st, const char *p, size_t len);

#endif

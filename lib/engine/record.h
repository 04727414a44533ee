/*
 * The records Baton writes to its event log, and their binary encoding. The
 * log itself stores opaque bytes (lib/evlog); this file is the one place that
 * knows what those bytes mean. All integers little-endian; a string is a u32
 * length and its bytes (not NUL-terminated in the log).
 *
 *   event:   u8 REC_EVENT, u8 kind, i64 received_ms, i64 timestamp_ms,
 *            str user_id, str anonymous_id, str message_id, str name,
 *            str source, str json (the normalised event as JSON text)
 *   journey: u8 REC_JOURNEY, u8 op, i64 time_ms, str id, str source (YAML)
 *   tick:    u8 REC_TICK, i64 time_ms (advances the engine clock: timers)
 *   profile: u8 REC_PROFILE, u8 op, i64 time_ms, str by, str id, str item_id,
 *            str json (a note or a case from another department's system, or a
 *            deletion: {"suppress": bool})
 *
 * Everything the engine does is a function of these records, so replaying
 * the log gives the same state and the same messages.
 */
#ifndef BATON_ENGINE_RECORD_H
#define BATON_ENGINE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum rec_type { REC_EVENT = 1, REC_JOURNEY = 2, REC_TICK = 3, REC_PROFILE = 4 };

enum event_kind {
  EV_TRACK = 1,
  EV_IDENTIFY = 2,
  EV_PAGE = 3,
  EV_SCREEN = 4,
  EV_GROUP = 5,
  EV_ALIAS = 6,
};

enum journey_op { JOP_PUBLISH = 1 };


struct rec_str {
  const char *ptr;
  uint32_t len;
};

struct rec_event {
  uint8_t kind;
  int64_t received_ms;
  int64_t timestamp_ms;
  struct rec_str user_id, anonymous_id, message_id, name, source, json;
};

struct rec_journey {
  uint8_t op;
  int64_t time_ms;
  struct rec_str id, source;
};

enum profile_op { POP_NOTE = 1, POP_CASE_OPEN = 2, POP_CASE_UPDATE = 3, POP_DELETE = 4 };

struct rec_profile {
  uint8_t op;
  int64_t time_ms;
  struct rec_str by, id; /* which profile: identity kind ("" = userId, else anonymousId) and value */
  struct rec_str item_id; /* the note's or case's id */
  struct rec_str json;    /* the fields sent (validated by the API) */
};

struct rec {
  enum rec_type type;
  union {
    struct rec_event ev;
    struct rec_journey jr;
    struct rec_profile pr;
    int64_t tick_ms;
  } u;
};

/* Appends the encoding to b. Returns 0 or BATON_ETOOBIG (b's cap). */
int rec_event_encode(struct buf *b, const struct rec_event *e);
int rec_journey_encode(struct buf *b, const struct rec_journey *j);
int rec_tick_encode(struct buf *b, int64_t time_ms);
int rec_profile_encode(struct buf *b, const struct rec_profile *p);

/*
 * Decodes one record; the strings in *out point into data. Returns 0 or
 * BATON_ECORRUPT if the bytes are not a well-formed record.
 */
int rec_decode(const void *data, size_t len, struct rec *out);

const char *event_kind_name(int kind);
/* Returns the kind for a Segment type name ("track", ...), or 0. */
int event_kind_parse(const char *name);

#endif

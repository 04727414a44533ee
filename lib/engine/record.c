/* Log record encoding; see record.h. */
#include "engine/record.h"

#include <string.h>

#include "util/common.h"

static int put_u8(struct buf *b, uint8_t v) { return buf_append(b, &v, 1); }
static int put_i64(struct buf *b, int64_t v) { return buf_append(b, &v, 8); }
static int put_str(struct buf *b, struct rec_str s) {
  int rc = buf_append(b, &s.len, 4);
  return rc ? rc : buf_append(b, s.ptr, s.len);
}

int rec_event_encode(struct buf *b, const struct rec_event *e) {
  size_t start = b->len;
  int rc = put_u8(b, REC_EVENT);
  if (!rc) rc = put_u8(b, e->kind);
  if (!rc) rc = put_i64(b, e->received_ms);
  if (!rc) rc = put_i64(b, e->timestamp_ms);
  if (!rc) rc = put_str(b, e->user_id);
  if (!rc) rc = put_str(b, e->anonymous_id);
  if (!rc) rc = put_str(b, e->message_id);
  if (!rc) rc = put_str(b, e->name);
  if (!rc) rc = put_str(b, e->source);
  if (!rc) rc = put_str(b, e->json);
  if (rc) b->len = start;
  return rc;
}

int rec_journey_encode(struct buf *b, const struct rec_journey *j) {
  size_t start = b->len;
  int rc = put_u8(b, REC_JOURNEY);
  if (!rc) rc = put_u8(b, j->op);
  if (!rc) rc = put_i64(b, j->time_ms);
  if (!rc) rc = put_str(b, j->id);
  if (!rc) rc = put_str(b, j->source);
  if (rc) b->len = start;
  return rc;
}

int rec_tick_encode(struct buf *b, int64_t time_ms) {
  size_t start = b->len;
  int rc = put_u8(b, REC_TICK);
  if (!rc) rc = put_i64(b, time_ms);
  if (rc) b->len = start;
  return rc;
}

int rec_profile_encode(struct buf *b, const struct rec_profile *p) {
  size_t start = b->len;
  int rc = put_u8(b, REC_PROFILE);
  if (!rc) rc = put_u8(b, p->op);
  if (!rc) rc = put_i64(b, p->time_ms);
  if (!rc) rc = put_str(b, p->by);
  if (!rc) rc = put_str(b, p->id);
  if (!rc) rc = put_str(b, p->item_id);
  if (!rc) rc = put_str(b, p->json);
  if (rc) b->len = start;
  return rc;
}

struct reader {
  const uint8_t *p, *end;
  int bad;
};

static uint8_t get_u8(struct reader *r) {
  if (r->end - r->p < 1) {
    r->bad = 1;
    return 0;
  }
  return *r->p++;
}

static int64_t get_i64(struct reader *r) {
  int64_t v = 0;
  if (r->end - r->p < 8) {
    r->bad = 1;
    return 0;
  }
  memcpy(&v, r->p, 8);
  r->p += 8;
  return v;
}

static struct rec_str get_str(struct reader *r) {
  struct rec_str s = {"", 0};
  uint32_t n;
  if (r->end - r->p < 4) {
    r->bad = 1;
    return s;
  }
  memcpy(&n, r->p, 4);
  r->p += 4;
  if ((size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return s;
  }
  s.ptr = (const char *)r->p;
  s.len = n;
  r->p += n;
  return s;
}

int rec_decode(const void *data, size_t len, struct rec *out) {
  struct reader r = {data, (const uint8_t *)data + len, 0};
  memset(out, 0, sizeof(*out));
  out->type = get_u8(&r);
  switch (out->type) {
    case REC_EVENT: {
      struct rec_event *e = &out->u.ev;
      e->kind = get_u8(&r);
      e->received_ms = get_i64(&r);
      e->timestamp_ms = get_i64(&r);
      e->user_id = get_str(&r);
      e->anonymous_id = get_str(&r);
      e->message_id = get_str(&r);
      e->name = get_str(&r);
      e->source = get_str(&r);
      e->json = get_str(&r);
      if (e->kind < EV_TRACK || e->kind > EV_ALIAS) r.bad = 1;
      break;
    }
    case REC_JOURNEY: {
      struct rec_journey *j = &out->u.jr;
      j->op = get_u8(&r);
      j->time_ms = get_i64(&r);
      j->id = get_str(&r);
      j->source = get_str(&r);
      if (j->op != JOP_PUBLISH) r.bad = 1;
      break;
    }
    case REC_TICK:
      out->u.tick_ms = get_i64(&r);
      break;
    case REC_PROFILE: {
      struct rec_profile *p = &out->u.pr;
      p->op = get_u8(&r);
      p->time_ms = get_i64(&r);
      p->by = get_str(&r);
      p->id = get_str(&r);
      p->item_id = get_str(&r);
      p->json = get_str(&r);
      if (p->op < POP_NOTE || p->op > POP_DELETE) r.bad = 1;
      break;
    }
    default:
      r.bad = 1;
  }
  return r.bad || r.p != r.end ? BATON_ECORRUPT : 0;
}

static const char *const kind_names[] = {"", "track", "identify", "page", "screen", "group", "alias"};

const char *event_kind_name(int kind) {
  return kind >= EV_TRACK && kind <= EV_ALIAS ? kind_names[kind] : "unknown";
}

int event_kind_parse(const char *name) {
  for (int k = EV_TRACK; k <= EV_ALIAS; k++)
    if (!strcmp(name, kind_names[k])) return k;
  return 0;
}

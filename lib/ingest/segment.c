/* Segment payload validation and normalisation; see segment.h. */
#include "ingest/segment.h"

#include <cjson/cJSON.h>
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/record.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jarena.h"
#include "util/jscan.h"

#define MAX_ID_LEN 1024
#define MAX_NAME_LEN 256
#define MAX_MESSAGE_ID_LEN 256

void segment_out_init(struct segment_out *o) {
  memset(o, 0, sizeof(*o));
  buf_init(&o->data, 0);
}

void segment_out_release(struct segment_out *o) {
  buf_release(&o->data);
  free(o->offsets);
  memset(o, 0, sizeof(*o));
}

static void out_reset(struct segment_out *o) {
  buf_clear(&o->data);
  o->n = 0;
}

enum segment_endpoint segment_endpoint_for_path(const char *path) {
  static const struct {
    const char *path;
    enum segment_endpoint ep;
  } map[] = {{"/v1/track", SEG_TRACK}, {"/v1/identify", SEG_IDENTIFY}, {"/v1/page", SEG_PAGE},
             {"/v1/screen", SEG_SCREEN}, {"/v1/group", SEG_GROUP},     {"/v1/alias", SEG_ALIAS},
             {"/v1/batch", SEG_BATCH},   {"/v1/import", SEG_BATCH},    {"/v1/t", SEG_TRACK},
             {"/v1/i", SEG_IDENTIFY},    {"/v1/p", SEG_PAGE},          {"/v1/s", SEG_SCREEN},
             {"/v1/g", SEG_GROUP},       {"/v1/a", SEG_ALIAS},         {"/v1/b", SEG_BATCH}};
  for (size_t i = 0; i < ARRAY_SIZE(map); i++)
    if (!strcmp(path, map[i].path)) return map[i].ep;
  return 0;
}

static int fail(struct segment_error *err, const char *code, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(struct segment_error *err, const char *code, const char *field, const char *fmt,
                ...) {
  err->status = 400;
  snprintf(err->code, sizeof(err->code), "%s", code);
  snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return BATON_EINVAL;
}

/* Where an event is, for error messages: "batch[3]." or "" (not built unless needed). */
struct ev_pos {
  int in_batch;
  size_t index;
};

/* Writes the field's full name ("batch[3].userId" or "userId") into buf. */
static const char *field_name(char *buf, size_t cap, const struct ev_pos *pos, const char *name) {
  if (pos->in_batch)
    snprintf(buf, cap, "batch[%zu].%s", pos->index, name);
  else
    snprintf(buf, cap, "%s", name);
  return buf;
}

/*
 * The members of an event Baton reads (the first N_WATCHED, which an event may
 * not give twice) or replaces. Looked up in one pass over the members: a
 * strcmp per watched name per member was a visible share of parsing a batch.
 */
enum {
  F_TYPE,
  F_USER_ID,
  F_ANONYMOUS_ID,
  F_EVENT,
  F_MESSAGE_ID,
  F_TIMESTAMP,
  F_SENT_AT,
  F_ORIGINAL_TIMESTAMP,
  F_WRITE_KEY,
  F_PROPERTIES,
  F_TRAITS,
  F_CONTEXT,
  F_PREVIOUS_ID,
  F_GROUP_ID,
  F_NAME,
  F_INTEGRATIONS,
  N_WATCHED,
  F_RECEIVED_AT = N_WATCHED, /* replaced, but a second one is kept as sent */
  N_FIELDS
};

static const char *const field_names[N_FIELDS] = {
    "type",     "userId",     "anonymousId", "event",   "messageId",  "timestamp",
    "sentAt",   "originalTimestamp",         "writeKey", "properties", "traits",
    "context",  "previousId", "groupId",     "name",     "integrations", "receivedAt"};

static int field_is(const char *k, int f) { return strcmp(k, field_names[f]) ? -1 : f; }

/* The field named k, or -1. */
static int field_of(const char *k) {
  switch (k[0]) {
    case 'a': return field_is(k, F_ANONYMOUS_ID);
    case 'c': return field_is(k, F_CONTEXT);
    case 'e': return field_is(k, F_EVENT);
    case 'g': return field_is(k, F_GROUP_ID);
    case 'i': return field_is(k, F_INTEGRATIONS);
    case 'm': return field_is(k, F_MESSAGE_ID);
    case 'n': return field_is(k, F_NAME);
    case 'o': return field_is(k, F_ORIGINAL_TIMESTAMP);
    case 'p': return k[1] == 'r' && k[2] == 'e' ? field_is(k, F_PREVIOUS_ID)
                                                 : field_is(k, F_PROPERTIES);
    case 'r': return field_is(k, F_RECEIVED_AT);
    case 's': return field_is(k, F_SENT_AT);
    case 't': return k[1] == 'y' ? field_is(k, F_TYPE)
                     : k[1] == 'r' ? field_is(k, F_TRAITS)
                                   : field_is(k, F_TIMESTAMP);
    case 'u': return field_is(k, F_USER_ID);
    case 'w': return field_is(k, F_WRITE_KEY);
    default: return -1;
  }
}

/* Returns the id as a string (numbers are accepted and converted into tmp, as Segment does). */
static int get_id(const cJSON *v, const char *name, const struct ev_pos *pos, char *tmp,
                  size_t tmpcap, const char **out, struct segment_error *err) {
  *out = NULL;
  if (!v || cJSON_IsNull(v)) return 0;
  char field[64];
  if (cJSON_IsString(v)) {
    size_t n = strlen(v->valuestring);
    if (n == 0) return 0; /* empty is the same as absent */
    if (n > MAX_ID_LEN) {
      field_name(field, sizeof(field), pos, name);
      return fail(err, "invalid_field", field, "%s is longer than %d characters", field,
                  MAX_ID_LEN);
    }
    *out = v->valuestring;
    return 0;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740991.0) {
      field_name(field, sizeof(field), pos, name);
      return fail(err, "invalid_field", field, "%s must be a string or an integer", field);
    }
    snprintf(tmp, tmpcap, "%.0f", d);
    *out = tmp;
    return 0;
  }
  field_name(field, sizeof(field), pos, name);
  return fail(err, "invalid_field", field, "%s must be a string or an integer", field);
}

static int check_object(const cJSON *v, const char *name, const struct ev_pos *pos,
                        struct segment_error *err) {
  if (!v || cJSON_IsNull(v) || cJSON_IsObject(v)) return 0;
  char field[64];
  field_name(field, sizeof(field), pos, name);
  return fail(err, "invalid_field", field, "%s must be an object", field);
}

static int get_time(const cJSON *v, const char *name, const struct ev_pos *pos, int64_t *out,
                    int *present, struct segment_error *err) {
  *present = 0;
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsString(v) || clock_parse_iso8601(v->valuestring, out)) {
    char field[64];
    field_name(field, sizeof(field), pos, name);
    return fail(err, "invalid_field", field, "%s must be an ISO 8601 date-time string", field);
  }
  *present = 1;
  return 0;
}

/* "baton-" and 32 lowercase hex digits (by hand: snprintf showed in profiles). */
static void gen_message_id(char *out, uint64_t seed, size_t index) {
  static const char hex[] = "0123456789abcdef";
  uint64_t a = baton_hash64(&seed, sizeof(seed), index);
  uint64_t b = baton_hash64(&index, sizeof(index), seed ^ 0x9e3779b97f4a7c15ull);
  memcpy(out, "baton-", 6);
  for (int i = 0; i < 16; i++) {
    out[6 + i] = hex[(a >> (60 - 4 * i)) & 15];
    out[22 + i] = hex[(b >> (60 - 4 * i)) & 15];
  }
  out[38] = '\0';
}

/*
 * The normalised event is written from the body's own text, not printed from
 * the cJSON tree: printing was a third of the parse (a snprintf and an sscanf
 * per number, a malloc per node). cJSON has accepted the body and scan_body
 * has refused what cJSON would change, so the text means what the tree holds;
 * copying it keeps numbers and escapes as the client wrote them ("1.50",
 * "1e2", "\u00e9", 20-digit ids), drops the whitespace outside strings, and
 * rewrites the few number spellings cJSON accepts but JSON does not (see
 * copy_number). The members the tree replaced or removed before are the
 * edits below, in the order and places cJSON put them.
 */

/* A member Baton sets: the value replaces member node (NULL: it is added at
   the end) and is a string written as is (Baton's values never need an
   escape), or the member is dropped (val NULL). */
struct edit {
  const cJSON *node;
  const char *name;
  const char *val;
};

/* The output: a buf's free room, checked once per token copied. */
struct writer {
  struct buf *b;
  char *o, *lim; /* the next byte, the end of the room reserved */
};

/* Makes room for n more bytes (doubling). Returns 0, or -1 past b's cap. */
static int writer_grow(struct writer *w, size_t n) {
  size_t used = w->o ? (size_t)(w->o - (w->b->ptr + w->b->len)) : 0;
  size_t want = used + (n > used ? n : used) + 256, left = w->b->max - w->b->len;
  if (want > left) want = used + n;
  char *base;
  if (buf_reserve(w->b, want, &base)) return -1;
  w->o = base + used;
  w->lim = base + want;
  return 0;
}

static inline int room(struct writer *w, size_t n) {
  return (size_t)(w->lim - w->o) >= n ? 0 : writer_grow(w, n);
}

static void writer_start(struct writer *w, struct buf *b) {
  buf_clear(b);
  w->b = b;
  w->o = w->lim = NULL;
  writer_grow(w, 0); /* cannot fail: reserves at most what b may still hold */
}

static void writer_end(struct writer *w) {
  if (w->o) buf_commit(w->b, (size_t)(w->o - (w->b->ptr + w->b->len)));
}

/* Characters cJSON reads as part of a number. */
static int is_num_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/*
 * Copies the number at p (which cJSON accepted: strtod read all of it) and
 * returns the byte after it, or NULL. strtod also reads "012", "-.5", "1."
 * and "1.e3", which JSON does not allow: those are rewritten to "12",
 * "-0.5", "1" and "1e3", the same number.
 */
static const char *copy_number(struct writer *w, const char *p, const char *end) {
  const char *s = p, *q = p;
  while (p < end && is_num_char(*p)) p++;
  if (room(w, (size_t)(p - s) + 1)) return NULL; /* "-.5" gains one byte */
  if (q < p && *q == '-') q++;
  const char *int_s = q;
  while (q < p && is_digit(*q)) q++;
  size_t n_int = (size_t)(q - int_s), n_frac = 0;
  const char *frac_s = NULL;
  if (q < p && *q == '.') {
    frac_s = ++q;
    while (q < p && is_digit(*q)) q++;
    n_frac = (size_t)(q - frac_s);
  }
  char *o = w->o;
  if (n_int >= 1 && (n_int == 1 || *int_s != '0') && (!frac_s || n_frac)) {
    memcpy(o, s, (size_t)(p - s)); /* already JSON: the usual case */
    w->o = o + (p - s);
    return p;
  }
  if (*s == '-') *o++ = '-';
  while (n_int > 1 && *int_s == '0') int_s++, n_int--;
  if (!n_int) *o++ = '0';
  memcpy(o, int_s, n_int);
  o += n_int;
  if (n_frac) {
    *o++ = '.';
    memcpy(o, frac_s, n_frac);
    o += n_frac;
  }
  memcpy(o, q, (size_t)(p - q)); /* the exponent, if any */
  w->o = o + (p - q);
  return p;
}

/*
 * Copies the value at p without the whitespace outside its strings and
 * returns the byte after it, or NULL if the text cannot be followed (or the
 * output would pass its buffer's cap).
 */
static const char *copy_value(struct writer *w, const char *p, const char *end) {
  size_t depth = 0;
  do {
    if (p >= end) return NULL;
    char c = *p;
    switch (c) {
      case '"': {
        const char *q = jscan_string(p, end);
        if (!q || room(w, (size_t)(q - p))) return NULL;
        memcpy(w->o, p, (size_t)(q - p));
        w->o += q - p;
        p = q;
        break;
      }
      case '{':
      case '[':
        depth++;
        /* fall through */
      case ',':
      case ':':
        if (room(w, 1)) return NULL;
        *w->o++ = c;
        p++;
        break;
      case '}':
      case ']':
        if (!depth || room(w, 1)) return NULL;
        depth--;
        *w->o++ = c;
        p++;
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        p++;
        break;
      default:
        if (c == '-' || is_digit(c)) {
          if (!(p = copy_number(w, p, end))) return NULL;
        } else if (c >= 'a' && c <= 'z') { /* true, false, null */
          const char *s = p;
          while (p < end && *p >= 'a' && *p <= 'z') p++;
          if (room(w, (size_t)(p - s))) return NULL;
          memcpy(w->o, s, (size_t)(p - s));
          w->o += p - s;
        } else {
          return NULL;
        }
    }
  } while (depth);
  return p;
}

/* Writes ["," ]"name":"val". */
static int put_member(struct writer *w, int comma, const char *name, const char *val) {
  size_t n = strlen(name), v = strlen(val);
  if (room(w, n + v + 6)) return -1;
  char *o = w->o;
  if (comma) *o++ = ',';
  *o++ = '"';
  memcpy(o, name, n);
  o += n;
  memcpy(o, "\":\"", 3);
  o += 3;
  memcpy(o, val, v);
  o += v;
  *o++ = '"';
  w->o = o;
  return 0;
}

/*
 * Writes the normalised event into b (emptied first): the members of the
 * object ev, whose text starts at p, in their order with the edits applied,
 * the added members after them, then ctx (a minified object, or NULL) as
 * "context". Returns the byte after the object's text, or NULL if the text
 * does not follow the tree (a bug: the event is then refused rather than
 * stored as something else) or the event passes b's cap.
 */
static const char *build_event(struct buf *b, const cJSON *ev, const char *p, const char *end,
                               const struct edit *ed, size_t n_ed, const char *ctx,
                               size_t ctx_len) {
  struct writer w;
  writer_start(&w, b);
  if (p >= end || *p != '{' || room(&w, 1)) return NULL;
  *w.o++ = '{';
  p++;
  int comma = 0;
  const char *k;
  size_t k_len;
  for (const cJSON *f = ev->child; f; f = f->next) {
    if (jscan_next_key(&p, end, &k, &k_len) != 1) return NULL;
    const struct edit *e = NULL;
    for (size_t i = 0; i < n_ed && ed[i].node; i++)
      if (ed[i].node == f) e = &ed[i];
    if (e) {
      if (!(p = jscan_value(p, end))) return NULL;
      if (e->val && put_member(&w, comma++, e->name, e->val)) return NULL;
      continue;
    }
    if (room(&w, k_len + 4)) return NULL;
    if (comma++) *w.o++ = ',';
    *w.o++ = '"';
    memcpy(w.o, k, k_len);
    w.o += k_len;
    memcpy(w.o, "\":", 2);
    w.o += 2;
    if (!(p = copy_value(&w, p, end))) return NULL;
  }
  if (jscan_next_key(&p, end, &k, &k_len) != 0) return NULL; /* members the tree has not */
  for (size_t i = 0; i < n_ed; i++)
    if (!ed[i].node && put_member(&w, comma++, ed[i].name, ed[i].val)) return NULL;
  if (room(&w, ctx_len + 12)) return NULL;
  if (ctx) {
    if (comma++) *w.o++ = ',';
    memcpy(w.o, "\"context\":", 10);
    memcpy(w.o + 10, ctx, ctx_len);
    w.o += 10 + ctx_len;
  }
  *w.o++ = '}';
  writer_end(&w);
  return p;
}

/* What one request's events share. */
struct parse_state {
  const struct segment_limits *lim;
  int64_t received_ms;
  char received[32]; /* received_ms as ISO 8601 */
  const char *source;
  uint64_t seed;
  const char *ctx; /* the batch's context, minified, or NULL */
  size_t ctx_len;
  int64_t sent_at; /* the batch's sentAt, if has_sent_at */
  int has_sent_at;
  struct buf json; /* the event being written */
  struct segment_out *out;
  struct segment_error *err;
};

/* Validates the event ev, whose text starts at *text (and ends before end),
   appends its record to st->out and moves *text past the event's text. kind
   is the endpoint's (0 in a batch: the type says). */
static int one_event(struct parse_state *st, const cJSON *ev, const char **text,
                     const char *end, int kind, size_t index, int in_batch) {
  const struct ev_pos pos = {in_batch, index};
  struct segment_error *err = st->err;
  /* Members Baton sets, in the order cJSON added them before: type, the two
     ids, originalTimestamp, timestamp, receivedAt, messageId, writeKey. */
  struct edit ed[8];
  size_t n_ed = 0;
  char field[64];
  if (!cJSON_IsObject(ev)) {
    snprintf(field, sizeof(field), "batch[%zu]", index);
    return fail(err, "invalid_event", field, "%s must be an object", field);
  }
  /* A field Baton reads given twice is ambiguous (cJSON would read the first,
     a JavaScript reader of the stored event the last): refuse it. */
  const cJSON *m[N_FIELDS] = {0};
  for (const cJSON *f = ev->child; f; f = f->next) {
    int w = field_of(f->string);
    if (w < 0) continue;
    if (m[w]) {
      if (w >= N_WATCHED) continue;
      field_name(field, sizeof(field), &pos, field_names[w]);
      return fail(err, "invalid_field", field, "%s is given more than once", field);
    }
    m[w] = f;
  }
  if (in_batch) {
    const cJSON *t = m[F_TYPE];
    if (!cJSON_IsString(t)) {
      field_name(field, sizeof(field), &pos, "type");
      return fail(err, "invalid_field", field,
                  "%s is required: track, identify, page, screen, group or alias", field);
    }
    kind = event_kind_parse(t->valuestring);
    if (!kind) {
      field_name(field, sizeof(field), &pos, "type");
      return fail(err, "invalid_field", field,
                  "%s '%.40s' is not one of track, identify, page, screen, group, alias", field,
                  t->valuestring);
    }
  } else {
    ed[n_ed++] = (struct edit){m[F_TYPE], "type", event_kind_name(kind)};
  }
  char uid_tmp[48], aid_tmp[48];
  const char *user_id, *anon_id;
  if (get_id(m[F_USER_ID], "userId", &pos, uid_tmp, sizeof(uid_tmp), &user_id, err) ||
      get_id(m[F_ANONYMOUS_ID], "anonymousId", &pos, aid_tmp, sizeof(aid_tmp), &anon_id, err))
    return BATON_EINVAL;
  /* Integer ids are stored as the strings they became. */
  if (user_id == uid_tmp) ed[n_ed++] = (struct edit){m[F_USER_ID], "userId", uid_tmp};
  if (anon_id == aid_tmp) ed[n_ed++] = (struct edit){m[F_ANONYMOUS_ID], "anonymousId", aid_tmp};
  if (!user_id && !anon_id) {
    char prefix[32] = "";
    if (in_batch) snprintf(prefix, sizeof(prefix), "batch[%zu].", index);
    field_name(field, sizeof(field), &pos, "userId");
    return fail(err, "missing_identity", field, "%suserId or %sanonymousId is required", prefix,
                prefix);
  }
  const char *name = "";
  if (kind == EV_TRACK) {
    const cJSON *n = m[F_EVENT];
    if (!cJSON_IsString(n) || !n->valuestring[0]) {
      field_name(field, sizeof(field), &pos, "event");
      return fail(err, "invalid_field", field, "%s is required for track: a non-empty string",
                  field);
    }
    if (strlen(n->valuestring) > MAX_NAME_LEN) {
      field_name(field, sizeof(field), &pos, "event");
      return fail(err, "invalid_field", field, "%s is longer than %d characters", field,
                  MAX_NAME_LEN);
    }
    name = n->valuestring;
  } else if (kind == EV_PAGE || kind == EV_SCREEN) {
    const cJSON *n = m[F_NAME];
    if (n && !cJSON_IsNull(n) && !cJSON_IsString(n)) {
      field_name(field, sizeof(field), &pos, "name");
      return fail(err, "invalid_field", field, "%s must be a string", field);
    }
    if (cJSON_IsString(n) && strlen(n->valuestring) <= MAX_NAME_LEN) name = n->valuestring;
  } else if (kind == EV_ALIAS) {
    const cJSON *prev = m[F_PREVIOUS_ID];
    if (!(cJSON_IsString(prev) && prev->valuestring[0]) && !cJSON_IsNumber(prev)) {
      field_name(field, sizeof(field), &pos, "previousId");
      return fail(err, "invalid_field", field, "%s is required for alias", field);
    }
  } else if (kind == EV_GROUP) {
    const cJSON *g = m[F_GROUP_ID];
    if (!(cJSON_IsString(g) && g->valuestring[0]) && !cJSON_IsNumber(g)) {
      field_name(field, sizeof(field), &pos, "groupId");
      return fail(err, "invalid_field", field, "%s is required for group", field);
    }
  }
  if (check_object(m[F_PROPERTIES], "properties", &pos, err) ||
      check_object(m[F_TRAITS], "traits", &pos, err) ||
      check_object(m[F_CONTEXT], "context", &pos, err) ||
      check_object(m[F_INTEGRATIONS], "integrations", &pos, err))
    return BATON_EINVAL;
  int64_t ts, ots, sent;
  int has_ts, has_ots, has_sent;
  if (get_time(m[F_TIMESTAMP], "timestamp", &pos, &ts, &has_ts, err) ||
      get_time(m[F_ORIGINAL_TIMESTAMP], "originalTimestamp", &pos, &ots, &has_ots, err) ||
      get_time(m[F_SENT_AT], "sentAt", &pos, &sent, &has_sent, err))
    return BATON_EINVAL;
  if (!has_sent && st->has_sent_at) {
    sent = st->sent_at;
    has_sent = 1;
  }
  int64_t orig = has_ts ? ts : ots;
  int has_orig = has_ts || has_ots;
  int64_t received_ms = st->received_ms;
  int64_t when = has_orig && has_sent ? received_ms - (sent - orig) : has_orig ? orig : received_ms;
  char ots_buf[32], ts_buf[32];
  if (has_ts && !has_ots)
    ed[n_ed++] = (struct edit){m[F_ORIGINAL_TIMESTAMP], "originalTimestamp",
                               clock_format_ms(ts, ots_buf)};
  ed[n_ed++] = (struct edit){m[F_TIMESTAMP], "timestamp", clock_format_ms(when, ts_buf)};
  ed[n_ed++] = (struct edit){m[F_RECEIVED_AT], "receivedAt", st->received};
  const cJSON *mid = m[F_MESSAGE_ID];
  char midbuf[48];
  const char *message_id;
  if (mid && !cJSON_IsNull(mid)) {
    if (!cJSON_IsString(mid) || !mid->valuestring[0] ||
        strlen(mid->valuestring) > MAX_MESSAGE_ID_LEN) {
      field_name(field, sizeof(field), &pos, "messageId");
      return fail(err, "invalid_field", field, "%s must be a non-empty string of at most %d", field,
                  MAX_MESSAGE_ID_LEN);
    }
    message_id = mid->valuestring;
  } else {
    gen_message_id(midbuf, st->seed, index);
    ed[n_ed++] = (struct edit){mid, "messageId", midbuf};
    message_id = midbuf;
  }
  if (m[F_WRITE_KEY]) ed[n_ed++] = (struct edit){m[F_WRITE_KEY], "writeKey", NULL};
  /* In-place edits first, so build_event's loop over them stops early. */
  struct edit sorted[8];
  size_t n_sorted = 0;
  for (size_t i = 0; i < n_ed; i++)
    if (ed[i].node) sorted[n_sorted++] = ed[i];
  for (size_t i = 0; i < n_ed; i++)
    if (!ed[i].node) sorted[n_sorted++] = ed[i];
  const char *ctx = st->ctx && !m[F_CONTEXT] ? st->ctx : NULL;
  *text = build_event(&st->json, ev, *text, end, sorted, n_sorted, ctx, ctx ? st->ctx_len : 0);
  if (!*text) {
    if (in_batch) snprintf(field, sizeof(field), "batch[%zu].", index);
    return fail(err, "invalid_event", in_batch ? field : "", "event cannot be serialised");
  }
  size_t jlen = st->json.len;
  if (jlen > st->lim->max_event_bytes) {
    snprintf(field, sizeof(field), in_batch ? "batch[%zu]" : "body", index);
    return fail(err, "event_too_large", field, "%s is %zu bytes; the limit is %zu per event", field,
                jlen, st->lim->max_event_bytes);
  }
  const char *source = st->source;
  struct rec_event r = {
      .kind = (uint8_t)kind,
      .received_ms = received_ms,
      .timestamp_ms = when,
      .user_id = {user_id ? user_id : "", user_id ? (uint32_t)strlen(user_id) : 0},
      .anonymous_id = {anon_id ? anon_id : "", anon_id ? (uint32_t)strlen(anon_id) : 0},
      .message_id = {message_id, (uint32_t)strlen(message_id)},
      .name = {name, (uint32_t)strlen(name)},
      .source = {source, (uint32_t)strlen(source)},
      .json = {st->json.ptr, (uint32_t)jlen},
  };
  struct segment_out *out = st->out;
  if (out->n + 2 > out->cap) {
    out->cap = out->cap ? out->cap * 2 : 16;
    out->offsets = xrealloc(out->offsets, out->cap * sizeof(*out->offsets));
  }
  if (out->n == 0) out->offsets[0] = 0;
  rec_event_encode(&out->data, &r);
  out->offsets[++out->n] = out->data.len;
  return 0;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes scan_body stops at: control characters, the backslash, non-ASCII
   (for UTF-8) and, where it follows strings, the quote. */
static const unsigned char stop_text[256] = {[0 ... 0x1f] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1};
static const unsigned char stop_str[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1};

/* Returns the first byte at or after p that scan_body stops at (the quote
   too if quotes), or end. With SSE2 (every x86-64), sixteen bytes a step: a
   signed compare with 0x20 catches control characters and non-ASCII alike. */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end,
                                              int quotes) {
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, bslash), _mm_cmplt_epi8(v, space));
    if (quotes) hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, quote));
    unsigned mask = (unsigned)_mm_movemask_epi8(hit);
    if (mask) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  const unsigned char *stop = quotes ? stop_str : stop_text;
  while (p < end && !stop[*p]) p++;
  return p;
}

/* Checks the UTF-8 sequence at *p (a byte >= 0x80) as baton_utf8_valid does,
   and moves past it. Returns 0 if it is not well-formed. */
static int utf8_seq(const unsigned char **pp, const unsigned char *end) {
  const unsigned char *p = *pp;
  unsigned c = *p, cp;
  size_t n;
  if (c >= 0xc2 && c <= 0xdf) n = 1, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 2, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 3, cp = c & 0x07;
  else return 0;
  if ((size_t)(end - p) < n + 1) return 0;
  for (size_t i = 1; i <= n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  *pp = p + n + 1;
  return 1;
}

/* p is a backslash that starts an escape. Returns SEG_BAD_NUL or
   SEG_BAD_ESCAPE for a \u escape segment_find_bad_char reports, else -1 and
   moves *pp past the escape's first two characters (only the backslash if
   the second is non-ASCII, so that UTF-8 is still checked). */
static int check_escape(const unsigned char **pp, const unsigned char *end) {
  const unsigned char *p = *pp;
  if (end - p > 1) {
    if (p[1] == 'u' && end - p > 5) {
      const char *h = (const char *)p + 2;
      if (!memcmp(h, "0000", 4)) return SEG_BAD_NUL;
      if (!is_hex(h[0]) || !is_hex(h[1]) || !is_hex(h[2]) || !is_hex(h[3])) return SEG_BAD_ESCAPE;
    }
    if (p[1] < 0x80) p++;
  }
  *pp = p + 1;
  return -1;
}

/*
 * scan_body following strings: tabs and newlines are whitespace outside
 * strings and refused inside them, so a body with any needs the string
 * boundaries. Same contract as scan_body.
 */
static int scan_strings(const char *body, size_t len, int check_utf8, size_t *bad, int *kind) {
  const unsigned char *start = (const unsigned char *)body, *p = start, *end = p + len;
  *bad = len;
  for (;;) {
    /* Outside strings. */
    for (;;) {
      p = skip_plain(p, end, 1);
      if (p >= end) return 1;
      unsigned c = *p;
      if (c == '"') {
        p++;
        break;
      }
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        *kind = SEG_BAD_CONTROL;
        goto found;
      }
      if (c >= 0x80 && check_utf8) {
        if (!utf8_seq(&p, end)) return 0;
        continue;
      }
      p++;
    }
    /* Inside a string. */
    for (;;) {
      p = skip_plain(p, end, 1);
      if (p >= end) return 1;
      unsigned c = *p;
      if (c == '"') {
        p++;
        break;
      }
      if (c == '\\') {
        if ((*kind = check_escape(&p, end)) >= 0) goto found;
        continue;
      }
      if (c < 0x20) {
        *kind = SEG_BAD_CONTROL;
        goto found;
      }
      if (!check_utf8) { /* c >= 0x80 */
        p++;
      } else if (!utf8_seq(&p, end)) {
        return 0;
      }
    }
  }
found:
  *bad = (size_t)(p - start);
  return !check_utf8 || baton_utf8_valid((const char *)p, (size_t)(end - p));
}

/*
 * One pass over a body for two questions: is it UTF-8 (if check_utf8; the
 * return value, as baton_utf8_valid), and where is the first character
 * segment_find_bad_char reports (*bad, or len if none, with *kind). Two
 * separate passes were both visible in profiles of a batch.
 *
 * The answer is only used for text cJSON accepted, where a backslash is
 * always inside a string and a control character is refused wherever it is,
 * except tab, CR and LF, which are whitespace outside strings. So strings
 * need following only in a body that holds one of those (then scan_strings
 * starts over): a minified body is read without stopping at each quote,
 * whose unpredictable branches were most of this scan's time.
 */
static inline int scan_body(const char *body, size_t len, int check_utf8, size_t *bad,
                            int *kind) {
  const unsigned char *start = (const unsigned char *)body, *p = start, *end = p + len;
  *bad = len;
  for (;;) {
    p = skip_plain(p, end, 0);
    if (p >= end) return 1;
    unsigned c = *p;
    if (c >= 0x80) {
      if (!check_utf8) p++;
      else if (!utf8_seq(&p, end)) return 0;
    } else if (c == '\\') {
      /* Escapes are pairs: of a run of backslashes, an odd last one escapes. */
      const unsigned char *r = p;
      while (r < end && *r == '\\') r++;
      if ((r - p) % 2 == 0) {
        p = r;
        continue;
      }
      p = r - 1;
      if ((*kind = check_escape(&p, end)) >= 0) break;
    } else if (c == '\t' || c == '\n' || c == '\r') {
      return scan_strings(body, len, check_utf8, bad, kind);
    } else {
      *kind = SEG_BAD_CONTROL;
      break;
    }
  }
  *bad = (size_t)(p - start);
  return !check_utf8 || baton_utf8_valid((const char *)p, (size_t)(end - p));
}

/* cJSON keeps strings NUL-terminated and accepts raw control characters, so
   "a\u0000b" would silently become "a" (another customer's id) and a raw
   control byte would be stored as sent. RFC 8259 forbids raw control
   characters in strings; Baton refuses the \u0000 escape it cannot keep, and
   "\uZZZZ", which is not JSON and which cJSON (1.7.15, parse_hex4) decodes as
   U+0000 as well. */
size_t segment_find_bad_char(const char *body, size_t len, int *kind) {
  size_t bad;
  scan_body(body, len, 0, &bad, kind);
  return bad;
}

/* cJSON turns a number beyond the double range (1e400) into infinity and
   prints it as null: refuse it instead, naming where it is. Returns 1 and
   writes the path ("properties.price", "batch[2].traits.n") if one is found. */
static int find_nonfinite(const cJSON *v, char *path, size_t cap, size_t at) {
  if (cJSON_IsNumber(v)) return !isfinite(v->valuedouble);
  if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return 0;
  size_t i = 0;
  for (const cJSON *c = v->child; c; c = c->next, i++) {
    int n = cJSON_IsObject(v) ? snprintf(path + at, cap - at, "%s%s", at ? "." : "", c->string)
                              : snprintf(path + at, cap - at, "[%zu]", i);
    size_t next = at + (n < 0 ? 0 : (size_t)n);
    if (next >= cap) next = cap - 1;
    if (find_nonfinite(c, path, cap, next)) return 1;
  }
  path[at] = '\0';
  return 0;
}

/* Whether v holds a number that is not finite (a walk without find_nonfinite's
   path building, which cost a snprintf per member). */
static int has_nonfinite(const cJSON *v) {
  if (cJSON_IsNumber(v)) return !isfinite(v->valuedouble);
  for (const cJSON *c = v->child; c; c = c->next)
    if ((c->child || cJSON_IsNumber(c)) && has_nonfinite(c)) return 1;
  return 0;
}

static void take_write_key(cJSON *root, struct segment_out *out) {
  cJSON *wk = cJSON_GetObjectItemCaseSensitive(root, "writeKey");
  if (cJSON_IsString(wk) && strlen(wk->valuestring) < sizeof(out->write_key))
    snprintf(out->write_key, sizeof(out->write_key), "%s", wk->valuestring);
}

int segment_parse(const char *body, size_t len, enum segment_endpoint ep,
                  const struct segment_limits *lim, int64_t received_ms, const char *source,
                  uint64_t seed, struct segment_out *out, struct segment_error *err) {
  memset(err, 0, sizeof(*err));
  out_reset(out);
  out->write_key[0] = '\0';
  if (len == 0) return fail(err, "invalid_json", "body", "the request body is empty");
  /* Both answers now, reported in this order: UTF-8, JSON, characters. */
  size_t bad;
  int bad_kind;
  if (!scan_body(body, len, 1, &bad, &bad_kind))
    return fail(err, "invalid_utf8", "body", "the request body is not valid UTF-8");
  const char *end = NULL;
  jarena_begin(); /* the tree lives in this thread's arena until jarena_end below */
  cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
  if (!root) {
    jarena_end();
    size_t at = end && end >= body ? (size_t)(end - body) : 0;
    return fail(err, "invalid_json", "body", "the request body is not valid JSON (near byte %zu)",
                at);
  }
  /* Trailing garbage after the JSON value is an error too (only whitespace allowed). */
  for (const char *p = end; p && p < body + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
      cJSON_Delete(root);
      jarena_end();
      return fail(err, "invalid_json", "body", "unexpected data after the JSON value at byte %zu",
                  (size_t)(p - body));
    }
  int rc = 0;
  struct parse_state st = {.lim = lim, .received_ms = received_ms, .seed = seed, .out = out,
                           .err = err};
  /* An event's stored text is at most 4/3 of its text ("-.5," gains a byte)
     plus the batch context and Baton's members (at most 64 bytes each). */
  buf_init(&st.json, 3 * len + 4096);
  if (!cJSON_IsObject(root)) {
    rc = fail(err, "invalid_json", "body", "the request body must be a JSON object");
    goto done;
  }
  if (bad < len) {
    rc = fail(err, "invalid_json", "body",
              bad_kind == SEG_BAD_NUL
                  ? "a string holds \\u0000 (NUL), which is not accepted, at byte %zu"
              : bad_kind == SEG_BAD_ESCAPE
                  ? "a string holds a \\u escape without four hex digits (not JSON) at byte %zu"
                  : "a raw control character (not allowed in JSON) at byte %zu",
              bad);
    goto done;
  }
  char path[128];
  path[0] = '\0';
  if (has_nonfinite(root) && find_nonfinite(root, path, sizeof(path), 0)) {
    rc = fail(err, "invalid_field", path, "%s is a number out of range", path);
    goto done;
  }
  take_write_key(root, out);
  if (!source) {
    source = lim->source_for_key ? lim->source_for_key(lim->source_arg, out->write_key) : NULL;
    if (!source) {
      rc = fail(err, "invalid_write_key", "writeKey",
                "a valid write key is required (Basic auth user name or writeKey)");
      err->status = 401;
      goto done;
    }
  }
  st.source = source;
  clock_format_ms(received_ms, st.received);
  /* The root object's text: cJSON skips a UTF-8 byte order mark and whitespace. */
  const char *text = body;
  if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3)) text += 3;
  text = jscan_ws(text, end);
  if (ep == SEG_BATCH) {
    cJSON *batch = cJSON_GetObjectItemCaseSensitive(root, "batch");
    if (!cJSON_IsArray(batch)) {
      rc = fail(err, "invalid_field", "batch", "batch is required: an array of events");
      goto done;
    }
    int n = cJSON_GetArraySize(batch);
    if (n == 0) {
      rc = fail(err, "invalid_field", "batch", "batch is empty");
      goto done;
    }
    if ((size_t)n > lim->max_batch_events) {
      rc = fail(err, "batch_too_large", "batch", "batch has %d events; the limit is %zu", n,
                lim->max_batch_events);
      goto done;
    }
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(root, "context");
    if (ctx && !cJSON_IsObject(ctx)) {
      rc = fail(err, "invalid_field", "context", "context must be an object");
      goto done;
    }
    int64_t sent = 0;
    int has_sent = 0;
    static const struct ev_pos top = {0, 0};
    if ((rc = get_time(cJSON_GetObjectItemCaseSensitive(root, "sentAt"), "sentAt", &top, &sent,
                       &has_sent, err)))
      goto done;
    st.sent_at = sent;
    st.has_sent_at = has_sent;
    /* The texts of batch and context: the root's members in step with its
       children, up to the later of the two. */
    const char *p = text + 1, *batch_text = NULL;
    struct buf ctx_text;
    buf_init(&ctx_text, 2 * len + 16);
    for (const cJSON *c = root->child; c; c = c->next) {
      const char *k;
      size_t k_len;
      if (jscan_next_key(&p, end, &k, &k_len) != 1) break;
      if (c == batch) batch_text = p;
      if (c == ctx) {
        struct writer w;
        writer_start(&w, &ctx_text);
        if (!(p = copy_value(&w, p, end))) break;
        writer_end(&w);
        st.ctx = ctx_text.ptr;
        st.ctx_len = ctx_text.len;
      }
      if (batch_text && (!ctx || st.ctx)) break; /* not past the batch unless needed */
      if (c != ctx && !(p = jscan_value(p, end))) break;
    }
    if (!batch_text || (ctx && !st.ctx)) {
      buf_release(&ctx_text);
      rc = fail(err, "invalid_json", "body", "the request body cannot be read back");
      goto done;
    }
    size_t i = 0;
    p = batch_text + 1;
    for (const cJSON *ev = batch->child; ev; ev = ev->next, i++) {
      p = jscan_ws(p, end);
      if (p < end && *p == ',') p = jscan_ws(p + 1, end);
      rc = one_event(&st, ev, &p, end, 0, i, 1);
      if (rc) break;
    }
    buf_release(&ctx_text);
  } else {
    rc = one_event(&st, root, &text, end, (int)ep, 0, 0);
  }
done:
  buf_release(&st.json);
  cJSON_Delete(root);
  jarena_end();
  if (rc) out_reset(out);
  return rc;
}

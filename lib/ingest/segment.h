/*
 * The Segment tracking API's payloads: parsing, validation and normalisation
 * of a request body into event-log records. A pure function of its inputs
 * (no I/O, no shared state), so it is unit-tested and fuzzed on its own.
 *
 * Normalisation: the event keeps every field it was sent with, except
 * writeKey; type is set from the endpoint; messageId is generated when
 * missing; receivedAt is added; timestamp follows Segment's clock-skew rule
 * timestamp = receivedAt - (sentAt - originalTimestamp) when the client sent
 * both, else the client's timestamp, else receivedAt; a batch's context is
 * copied into events without one. The stored JSON is the body's own text
 * minified: strings, keys and numbers as the client wrote them ("1.50",
 * "\u00e9"), except number spellings JSON does not allow but cJSON reads
 * ("012", "-.5", "1.": "12", "-0.5", "1"), integer ids (stored as strings),
 * and the members Baton sets (in place when present, else appended).
 */
#ifndef BATON_INGEST_SEGMENT_H
#define BATON_INGEST_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum segment_endpoint {
  SEG_TRACK = 1, /* values match enum event_kind */
  SEG_IDENTIFY = 2,
  SEG_PAGE = 3,
  SEG_SCREEN = 4,
  SEG_GROUP = 5,
  SEG_ALIAS = 6,
  SEG_BATCH = 7,
};

struct segment_limits {
  size_t max_event_bytes;  /* one event, as normalised JSON */
  size_t max_batch_events;
  /*
   * Optional, used when segment_parse is given no source: names the source
   * of the body's writeKey ("" when there is none), or returns NULL for an
   * unknown key, which fails the parse with status 401 "invalid_write_key".
   */
  const char *(*source_for_key)(void *arg, const char *write_key);
  void *source_arg;
};

/* A request-level error: HTTP status, a stable code, a message and the field. */
struct segment_error {
  int status;
  char code[32];
  char field[64];
  char msg[256];
};

/* Records produced from one request, ready for evlog_append. */
struct segment_out {
  struct buf data;   /* concatenated records */
  size_t *offsets;   /* n + 1 offsets into data */
  size_t n, cap;
  char write_key[256]; /* writeKey found in the body, if any ("" if none) */
};

void segment_out_init(struct segment_out *o);
void segment_out_release(struct segment_out *o);

/*
 * Parses body (len bytes) sent to endpoint ep and appends one REC_EVENT
 * record per event to out. source names the source (for the record); NULL
 * means "from the body's writeKey", through lim->source_for_key.
 * message_id_seed makes generated messageIds unique (e.g. random bytes).
 * Returns 0, or BATON_EINVAL with *err filled (status 400); on error out is
 * left empty: nothing from a bad request is stored.
 */
int segment_parse(const char *body, size_t len, enum segment_endpoint ep,
                  const struct segment_limits *lim, int64_t received_ms, const char *source,
                  uint64_t message_id_seed, struct segment_out *out, struct segment_error *err);

/* What segment_find_bad_char found. */
enum segment_bad_char {
  SEG_BAD_CONTROL = 0, /* a raw control character (not allowed by RFC 8259) */
  SEG_BAD_NUL = 1,     /* a \u0000 escape inside a string */
  SEG_BAD_ESCAPE = 2,  /* \u without four hex digits, which cJSON reads as \u0000 */
};

/*
 * Finds what a JSON parser built on C strings would change silently in a
 * JSON text that it accepted: a "\u0000" escape inside a string (the string
 * would end there), a "\u" escape without four hex digits (cJSON decodes it
 * as U+0000 too) or a raw control character. Returns the offset of the first
 * one and sets *kind to an enum segment_bad_char, or returns len if there is
 * none. Reads each byte once; body need not be NUL-terminated.
 */
size_t segment_find_bad_char(const char *body, size_t len, int *kind);

/* Maps a request path ("/v1/track", "/v1/t", ...) to its endpoint, or 0. */
enum segment_endpoint segment_endpoint_for_path(const char *path);

#endif

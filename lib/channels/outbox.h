/*
 * Outgoing messages: what a journey step asks to send, from the moment the
 * engine produces it until the delivery ledger records its final outcome.
 *
 * A message id is derived from the customer, journey, version, step and entry
 * number (never from a clock or counter), so replaying the log produces the
 * same ids and the ledger can refuse to send any id twice.
 */
#ifndef BATON_CHANNELS_OUTBOX_H
#define BATON_CHANNELS_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define OUTMSG_ID_LEN 36 /* "msg_" + 32 hex digits */

struct outmsg {
  char id[OUTMSG_ID_LEN + 1];
  char *customer;   /* profile key */
  char *journey_id;
  uint32_t version;
  char *step_id;
  char *url;
  char *headers;    /* "Name: value\n" lines, or NULL */
  char *body;       /* JSON */
  size_t body_len;
  int64_t created_ms; /* engine clock when produced */
  int attempts;       /* attempts made so far (delivery's bookkeeping) */
  int64_t next_ms;    /* earliest time of the next attempt */
  struct outmsg *next;
};

/* Fills id from the deterministic inputs. */
void outmsg_make_id(char id[OUTMSG_ID_LEN + 1], const char *customer, const char *journey_id,
                    uint32_t version, const char *step_id, uint32_t entry_no);

void outmsg_free(struct outmsg *m);

/* Binary serialisation for the outbox database. */
int outmsg_encode(const struct outmsg *m, struct buf *b);
/* Returns a new message or NULL if the bytes are malformed. */
struct outmsg *outmsg_decode(const void *p, size_t len);

#endif

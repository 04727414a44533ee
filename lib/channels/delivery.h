/*
 * Delivery: sends outgoing messages (webhook POSTs for now) with libcurl's
 * multi interface on one thread, and keeps the delivery ledger in the store.
 *
 * At most once: before an attempt, the message's ledger record is durably set
 * to "sending" (one LMDB commit covers a whole batch of attempts). A message
 * id whose record exists in a final state is never sent again, whoever
 * submits it (a replay regenerates the same ids). A record still "sending" at
 * start-up means the process died mid-attempt: the outcome is unknown, so the
 * message is marked "unknown" and not retried — never silently dropped, it
 * stays listed with its reason.
 *
 * Retries with exponential backoff only when the attempt certainly did not
 * reach the receiver or the receiver said to retry: connection failures, HTTP
 * 408, 429 and 5xx. Each attempt carries the same webhook-id header so a
 * receiver can de-duplicate. After max_attempts the message is "dead".
 * Other 4xx answers are final: "failed". A response timeout after the request
 * was sent is "unknown" (it may have been processed).
 *
 * Ledger states: sending, retrying, delivered, failed, dead, unknown.
 */
#ifndef BATON_CHANNELS_DELIVERY_H
#define BATON_CHANNELS_DELIVERY_H

#include <stdint.h>

#include "channels/outbox.h"
#include "store/store.h"

struct delivery;

struct delivery_options {
  int max_attempts;     /* >= 1 */
  int64_t timeout_ms;   /* whole request */
  int64_t backoff_ms;   /* first retry delay; doubles each time, capped at 1 h */
  int concurrency;      /* requests in flight at once */
};

struct delivery_stats {
  uint64_t delivered, failed, dead, unknown, retries, duplicates;
};

/*
 * Resolves in-doubt records left by a crash, loads undelivered messages from
 * the outbox database, and starts the delivery thread. Returns 0 or
 * BATON_ESTORE.
 */
int delivery_start(const struct delivery_options *opt, struct store *st, struct delivery **out);

/* Queues m (ownership passes to delivery). Thread-safe. Messages submitted
   after delivery_stop began are freed unsent (they remain in the outbox
   database if the engine checkpointed them). */
void delivery_submit(struct delivery *d, struct outmsg *m);

/*
 * Cancels messages not yet attempted (a customer was deleted): they are
 * dropped when their turn comes, with no ledger record. An attempt already in
 * flight finishes. Thread-safe; ids are copied.
 */
void delivery_cancel(struct delivery *d, const char *const *ids, size_t n);

/* Stops taking new attempts, waits for those in flight to finish and be
   recorded, joins the thread and frees d. */
void delivery_stop(struct delivery *d);

void delivery_get_stats(struct delivery *d, struct delivery_stats *out);

/*
 * Reads the ledger record of message id as JSON text into b (inside a read
 * transaction txn). Returns 0, BATON_ENOENT or BATON_ESTORE.
 */
int delivery_record_json(struct store *st, MDB_txn *txn, const char *id, struct buf *b);

#endif

/* Webhook delivery with a durable ledger; see delivery.h. */
#include "channels/delivery.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"
#include "util/smap.h"

#define MAX_BACKOFF_MS (3600 * 1000LL)
#define MAX_RESPONSE_BYTES (64 * 1024)

struct attempt {
  struct outmsg *m;
  CURL *easy;
  struct curl_slist *hdrs;
  char errbuf[CURL_ERROR_SIZE];
  size_t response_bytes;
};

struct delivery {
  struct delivery_options opt;
  struct store *st;
  CURLM *multi;
  pthread_t thread;
  pthread_mutex_t mu;
  struct outmsg *queue_head, **queue_tail; /* submitted, guarded by mu */
  int stopping;                            /* guarded by mu */
  /* delivery thread only: */
  struct outmsg *retries; /* sorted by next_ms */
  struct smap owned;      /* ids queued, retrying or in flight in this process */
  struct smap cancelled;  /* ids not to attempt (guarded by mu) */
  int in_flight;
  struct delivery_stats stats; /* guarded by mu */
};

int delivery_record_json(struct store *st, MDB_txn *txn, const char *id, struct buf *b) {
  MDB_val k = {strlen(id), (void *)id}, v;
  int rc = mdb_get(txn, st->deliveries, &k, &v);
  if (rc == MDB_NOTFOUND) return BATON_ENOENT;
  if (rc) return store_fail("get delivery", rc);
  return buf_append(b, v.mv_data, v.mv_size);
}

/* Reads the state of a ledger record ("" if none). */
static void record_state(struct delivery *d, MDB_txn *txn, const char *id, char *state,
                         size_t cap, int *attempts) {
  state[0] = '\0';
  *attempts = 0;
  MDB_val k = {strlen(id), (void *)id}, v;
  if (mdb_get(txn, d->st->deliveries, &k, &v)) return;
  cJSON *j = cJSON_ParseWithLength(v.mv_data, v.mv_size);
  if (!j) {
    snprintf(state, cap, "corrupt");
    return;
  }
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "state");
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attempts");
  if (cJSON_IsString(s)) snprintf(state, cap, "%s", s->valuestring);
  if (cJSON_IsNumber(a)) *attempts = a->valueint;
  cJSON_Delete(j);
}

static int put_record(struct delivery *d, MDB_txn *txn, const struct outmsg *m, const char *state,
                      long http_status, const char *error) {
  struct buf b;
  buf_init(&b, 0);
  char ts[32];
  buf_puts(&b, "{\"id\":");
  buf_json_str(&b, m->id, strlen(m->id));
  /* No customer identity in the ledger: it outlives erasure requests by design. */
  buf_printf(&b, ",\"state\":\"%s\",\"attempts\":%d,\"channel\":\"webhook\",\"journey\":",
             state, m->attempts);
  buf_json_str(&b, m->journey_id, strlen(m->journey_id));
  buf_printf(&b, ",\"version\":%u,\"step\":", m->version);
  buf_json_str(&b, m->step_id, strlen(m->step_id));
  buf_puts(&b, ",\"url\":");
  buf_json_str(&b, m->url, strlen(m->url));
  if (http_status) buf_printf(&b, ",\"http_status\":%ld", http_status);
  if (error) {
    buf_puts(&b, ",\"error\":");
    buf_json_str(&b, error, strlen(error));
  }
  buf_printf(&b, ",\"created\":\"%s\"", clock_format_ms(m->created_ms, ts));
  buf_printf(&b, ",\"updated\":\"%s\"}", clock_format_ms(clock_now_ms(), ts));
  MDB_val k = {strlen(m->id), (void *)m->id}, v = {b.len, b.ptr};
  int rc = mdb_put(txn, d->st->deliveries, &k, &v, 0);
  buf_release(&b);
  return rc ? store_fail("put delivery", rc) : 0;
}

static void del_outbox(struct delivery *d, MDB_txn *txn, const char *id) {
  MDB_val k = {strlen(id), (void *)id};
  int rc = mdb_del(txn, d->st->outbox, &k, NULL);
  if (rc && rc != MDB_NOTFOUND) store_fail("del outbox", rc);
}

/* Keeps m in the outbox database so that a retry survives a restart: the
   engine's checkpoint does not write a message that already has a ledger
   record, and a replayed copy is refused while the record says "retrying". */
static void put_outbox(struct delivery *d, MDB_txn *txn, const struct outmsg *m) {
  struct buf b;
  buf_init(&b, 0);
  outmsg_encode(m, &b);
  MDB_val k = {OUTMSG_ID_LEN, (void *)m->id}, v = {b.len, b.ptr};
  int rc = mdb_put(txn, d->st->outbox, &k, &v, 0);
  if (rc) store_fail("put outbox", rc);
  buf_release(&b);
}

static void log_outcome(const struct outmsg *m, const char *state, long status, const char *err) {
  struct jlog_line l;
  jlog_begin(&l, !strcmp(state, "delivered") ? JLOG_DEBUG : JLOG_WARN, "message outcome");
  jlog_str(&l, "message_id", m->id);
  jlog_str(&l, "state", state);
  jlog_str(&l, "customer", m->customer);
  jlog_str(&l, "journey", m->journey_id);
  jlog_str(&l, "step", m->step_id);
  jlog_i64(&l, "attempts", m->attempts);
  if (status) jlog_i64(&l, "http_status", status);
  if (err) jlog_str(&l, "error", err);
  jlog_end(&l);
}

static void retry_insert(struct delivery *d, struct outmsg *m) {
  struct outmsg **pp = &d->retries;
  while (*pp && (*pp)->next_ms <= m->next_ms) pp = &(*pp)->next;
  m->next = *pp;
  *pp = m;
}

static void release_owned(struct delivery *d, struct outmsg *m) {
  smap_del(&d->owned, m->id, strlen(m->id));
  outmsg_free(m);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg) {
  struct attempt *a = arg;
  (void)ptr;
  a->response_bytes += size * nmemb;
  /* Returning less than given aborts the transfer: responses are not needed beyond a cap. */
  return a->response_bytes > MAX_RESPONSE_BYTES ? 0 : size * nmemb;
}

static void start_attempt(struct delivery *d, struct outmsg *m) {
  struct attempt *a = xcalloc(1, sizeof(*a));
  a->m = m;
  a->easy = curl_easy_init();
  char h[160];
  a->hdrs = curl_slist_append(a->hdrs, "Content-Type: application/json");
  a->hdrs = curl_slist_append(a->hdrs, "User-Agent: baton/" BATON_VERSION);
  snprintf(h, sizeof(h), "webhook-id: %s", m->id);
  a->hdrs = curl_slist_append(a->hdrs, h);
  snprintf(h, sizeof(h), "webhook-timestamp: %lld", (long long)(m->created_ms / 1000));
  a->hdrs = curl_slist_append(a->hdrs, h);
  snprintf(h, sizeof(h), "Idempotency-Key: %s", m->id);
  a->hdrs = curl_slist_append(a->hdrs, h);
  if (m->headers) {
    char *copy = xstrdup(m->headers), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
      a->hdrs = curl_slist_append(a->hdrs, line);
    free(copy);
  }
  curl_easy_setopt(a->easy, CURLOPT_URL, m->url);
  curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(a->easy, CURLOPT_POST, 1L);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, m->body);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->body_len);
  curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->hdrs);
  curl_easy_setopt(a->easy, CURLOPT_TIMEOUT_MS, (long)d->opt.timeout_ms);
  curl_easy_setopt(a->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)MIN(d->opt.timeout_ms, 10000));
  curl_easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(a->easy, CURLOPT_ERRORBUFFER, a->errbuf);
  curl_easy_setopt(a->easy, CURLOPT_PRIVATE, a);
  curl_multi_add_handle(d->multi, a->easy);
  d->in_flight++;
}

/* Marks a batch "sending" in one commit, then starts them. */
static void begin_batch(struct delivery *d, struct outmsg *list) {
  if (!list) return;
  MDB_txn *txn = store_begin(d->st, 0);
  struct outmsg *go = NULL, **tail = &go;
  uint64_t dups = 0;
  for (struct outmsg *m = list, *next; m; m = next) {
    next = m->next;
    m->next = NULL;
    pthread_mutex_lock(&d->mu);
    int cancel = smap_del(&d->cancelled, m->id, strlen(m->id)) != NULL;
    pthread_mutex_unlock(&d->mu);
    if (cancel) { /* its customer was deleted before its turn */
      del_outbox(d, txn, m->id);
      release_owned(d, m);
      continue;
    }
    char state[32];
    int attempts;
    record_state(d, txn, m->id, state, sizeof(state), &attempts);
    int ours = m->attempts > 0 && !strcmp(state, "retrying");
    if (state[0] && !ours) {
      /* Already sent, failed, or being resolved: never send an id twice. */
      if (strcmp(state, "retrying")) del_outbox(d, txn, m->id);
      dups++;
      release_owned(d, m);
      continue;
    }
    m->attempts++;
    if (put_record(d, txn, m, "sending", 0, NULL)) {
      m->attempts--;
      release_owned(d, m);
      continue;
    }
    *tail = m;
    tail = &m->next;
  }
  if (store_commit(txn)) {
    /* Nothing was marked: drop the batch from memory; it stays in the outbox
       database (if checkpointed) and is retried at the next start. */
    for (struct outmsg *m = go, *next; m; m = next) {
      next = m->next;
      release_owned(d, m);
    }
    return;
  }
  pthread_mutex_lock(&d->mu);
  d->stats.duplicates += dups;
  pthread_mutex_unlock(&d->mu);
  for (struct outmsg *m = go, *next; m; m = next) {
    next = m->next;
    m->next = NULL;
    start_attempt(d, m);
  }
}

struct outcome {
  struct outmsg *m;
  const char *state;
  long status;
  char error[CURL_ERROR_SIZE + 64];
};

static void classify(struct delivery *d, struct attempt *a, CURLcode cc, struct outcome *o) {
  long status = 0;
  curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
  o->m = a->m;
  o->status = status;
  o->error[0] = '\0';
  int retryable = 0;
  if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && status)) {
    if (status >= 200 && status < 300) {
      o->state = "delivered";
      return;
    }
    snprintf(o->error, sizeof(o->error), "receiver answered HTTP %ld", status);
    retryable = status == 408 || status == 429 || status >= 500;
    if (!retryable) {
      o->state = "failed";
      return;
    }
  } else {
    snprintf(o->error, sizeof(o->error), "%s", a->errbuf[0] ? a->errbuf : curl_easy_strerror(cc));
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(a->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    int connected = pretransfer > 0;
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
        cc == CURLE_COULDNT_RESOLVE_PROXY || !connected) {
      retryable = 1; /* the request never left: safe to try again */
    } else {
      o->state = "unknown"; /* sent, no answer: it may have been processed */
      return;
    }
  }
  if (a->m->attempts >= d->opt.max_attempts) {
    o->state = "dead";
    return;
  }
  o->state = "retrying";
}

static void finish_batch(struct delivery *d, struct outcome *outs, size_t n) {
  if (!n) return;
  MDB_txn *txn = store_begin(d->st, 0);
  for (size_t i = 0; i < n; i++) {
    struct outcome *o = &outs[i];
    put_record(d, txn, o->m, o->state, o->status, o->error[0] ? o->error : NULL);
    if (strcmp(o->state, "retrying"))
      del_outbox(d, txn, o->m->id);
    else
      put_outbox(d, txn, o->m);
  }
  int rc = store_commit(txn);
  pthread_mutex_lock(&d->mu);
  for (size_t i = 0; i < n; i++) {
    struct outcome *o = &outs[i];
    if (!strcmp(o->state, "delivered")) d->stats.delivered++;
    else if (!strcmp(o->state, "failed")) d->stats.failed++;
    else if (!strcmp(o->state, "dead")) d->stats.dead++;
    else if (!strcmp(o->state, "unknown")) d->stats.unknown++;
    else d->stats.retries++;
  }
  pthread_mutex_unlock(&d->mu);
  for (size_t i = 0; i < n; i++) {
    struct outcome *o = &outs[i];
    if (rc) {
      /* The ledger still says "sending": after a restart the outcome is
         treated as unknown, which is the honest answer. */
      log_outcome(o->m, "unrecorded", o->status, "ledger commit failed");
      release_owned(d, o->m);
      continue;
    }
    log_outcome(o->m, o->state, o->status, o->error[0] ? o->error : NULL);
    if (!strcmp(o->state, "retrying")) {
      int64_t delay = d->opt.backoff_ms;
      for (int k = 1; k < o->m->attempts && delay < MAX_BACKOFF_MS; k++) delay *= 2;
      o->m->next_ms = clock_now_ms() + MIN(delay, MAX_BACKOFF_MS);
      retry_insert(d, o->m);
    } else {
      release_owned(d, o->m);
    }
  }
}

static void *delivery_main(void *arg) {
  struct delivery *d = arg;
  size_t cap_out = 64;
  struct outcome *outs = xcalloc(cap_out, sizeof(*outs));
  for (;;) {
    /* 1. Take what was submitted and the retries now due, up to the free slots. */
    pthread_mutex_lock(&d->mu);
    int stopping = d->stopping;
    struct outmsg *batch = NULL, **bt = &batch;
    int slots = d->opt.concurrency - d->in_flight;
    if (!stopping) {
      int64_t now = clock_now_ms();
      while (slots > 0 && d->retries && d->retries->next_ms <= now) {
        struct outmsg *m = d->retries;
        d->retries = m->next;
        m->next = NULL;
        *bt = m;
        bt = &m->next;
        slots--;
      }
      while (slots > 0 && d->queue_head) {
        struct outmsg *m = d->queue_head;
        d->queue_head = m->next;
        if (!d->queue_head) d->queue_tail = &d->queue_head;
        m->next = NULL;
        int inserted;
        smap_upsert(&d->owned, m->id, strlen(m->id), &inserted);
        if (!inserted) { /* the same id is already queued or in flight here */
          d->stats.duplicates++;
          outmsg_free(m);
          continue;
        }
        *bt = m;
        bt = &m->next;
        slots--;
      }
    }
    pthread_mutex_unlock(&d->mu);
    if (stopping && d->in_flight == 0) break;
    begin_batch(d, batch);

    /* 2. Drive transfers; sleep until activity, a wake-up, or the next retry. */
    int running = 0;
    curl_multi_perform(d->multi, &running);
    int timeout = 200;
    if (d->retries) {
      int64_t wait = d->retries->next_ms - clock_now_ms();
      timeout = (int)MAX(0, MIN(wait, timeout));
    }
    if (d->in_flight || timeout > 0) curl_multi_poll(d->multi, NULL, 0, timeout, NULL);
    curl_multi_perform(d->multi, &running);

    /* 3. Record finished attempts in one commit. */
    size_t n_out = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      struct attempt *a;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&a);
      if (n_out == cap_out) {
        cap_out *= 2;
        outs = xrealloc(outs, cap_out * sizeof(*outs));
      }
      classify(d, a, msg->data.result, &outs[n_out++]);
      curl_multi_remove_handle(d->multi, a->easy);
      curl_easy_cleanup(a->easy);
      curl_slist_free_all(a->hdrs);
      free(a);
      d->in_flight--;
    }
    finish_batch(d, outs, n_out);
  }
  free(outs);
  return NULL;
}

/* At start-up: records left "sending" by a crash become "unknown". */
static int resolve_in_doubt(struct delivery *d) {
  MDB_txn *txn = store_begin(d->st, 0);
  MDB_cursor *cur;
  mdb_cursor_open(txn, d->st->deliveries, &cur);
  MDB_val k, v;
  size_t n = 0;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  while (rc == 0) {
    cJSON *j = cJSON_ParseWithLength(v.mv_data, v.mv_size);
    const cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "state") : NULL;
    if (cJSON_IsString(s) && !strcmp(s->valuestring, "sending")) {
      cJSON_ReplaceItemInObjectCaseSensitive(j, "state", cJSON_CreateString("unknown"));
      cJSON_DeleteItemFromObjectCaseSensitive(j, "error");
      cJSON_AddStringToObject(j, "error",
                              "the process stopped during the attempt; not retried (at most once)");
      char *text = cJSON_PrintUnformatted(j);
      MDB_val nv = {strlen(text), text};
      mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
      free(text);
      MDB_val ok = k;
      mdb_del(txn, d->st->outbox, &ok, NULL);
      n++;
    }
    cJSON_Delete(j);
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (store_commit(txn)) return BATON_ESTORE;
  if (n) {
    struct jlog_line l;
    jlog_begin(&l, JLOG_WARN, "messages in doubt after a crash marked unknown");
    jlog_u64(&l, "count", n);
    jlog_end(&l);
  }
  return 0;
}

/* Loads undelivered messages from the outbox database. */
static void load_outbox(struct delivery *d) {
  MDB_txn *txn = store_begin(d->st, 1);
  MDB_cursor *cur;
  mdb_cursor_open(txn, d->st->outbox, &cur);
  MDB_val k, v;
  size_t n = 0;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    struct outmsg *m = outmsg_decode(v.mv_data, v.mv_size);
    if (!m) {
      jlog(JLOG_ERROR, "corrupt outbox entry skipped", NULL, NULL);
      continue;
    }
    char state[32];
    int attempts;
    record_state(d, txn, m->id, state, sizeof(state), &attempts);
    if (!strcmp(state, "retrying")) {
      m->attempts = attempts;
      m->next_ms = clock_now_ms();
      smap_upsert(&d->owned, m->id, strlen(m->id), NULL);
      retry_insert(d, m);
    } else {
      m->next = NULL;
      *d->queue_tail = m;
      d->queue_tail = &m->next;
    }
    n++;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (n) {
    struct jlog_line l;
    jlog_begin(&l, JLOG_INFO, "outbox loaded");
    jlog_u64(&l, "messages", n);
    jlog_end(&l);
  }
}

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int delivery_start(const struct delivery_options *opt, struct store *st, struct delivery **out) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, curl_init_once);
  struct delivery *d = xcalloc(1, sizeof(*d));
  d->opt = *opt;
  if (d->opt.max_attempts < 1) d->opt.max_attempts = 1;
  if (d->opt.concurrency < 1) d->opt.concurrency = 1;
  d->st = st;
  d->queue_tail = &d->queue_head;
  smap_init(&d->owned);
  smap_init(&d->cancelled);
  pthread_mutex_init(&d->mu, NULL);
  if (resolve_in_doubt(d)) {
    smap_release(&d->owned);
    free(d);
    return BATON_ESTORE;
  }
  load_outbox(d);
  d->multi = curl_multi_init();
  curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)d->opt.concurrency);
  pthread_create(&d->thread, NULL, delivery_main, d);
  pthread_setname_np(d->thread, "baton-delivery");
  *out = d;
  return 0;
}

void delivery_submit(struct delivery *d, struct outmsg *m) {
  m->next = NULL;
  pthread_mutex_lock(&d->mu);
  if (d->stopping) {
    pthread_mutex_unlock(&d->mu);
    outmsg_free(m);
    return;
  }
  *d->queue_tail = m;
  d->queue_tail = &m->next;
  pthread_mutex_unlock(&d->mu);
  curl_multi_wakeup(d->multi);
}

void delivery_stop(struct delivery *d) {
  pthread_mutex_lock(&d->mu);
  d->stopping = 1;
  pthread_mutex_unlock(&d->mu);
  curl_multi_wakeup(d->multi);
  pthread_join(d->thread, NULL);
  for (struct outmsg *m = d->queue_head, *n; m; m = n) {
    n = m->next;
    outmsg_free(m);
  }
  for (struct outmsg *m = d->retries, *n; m; m = n) {
    n = m->next;
    outmsg_free(m);
  }
  curl_multi_cleanup(d->multi);
  smap_release(&d->owned);
  smap_release(&d->cancelled);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

void delivery_cancel(struct delivery *d, const char *const *ids, size_t n) {
  pthread_mutex_lock(&d->mu);
  for (size_t i = 0; i < n; i++)
    if (d->cancelled.len < 1000000) *smap_upsert(&d->cancelled, ids[i], strlen(ids[i]), NULL) = (void *)1;
  pthread_mutex_unlock(&d->mu);
}

void delivery_get_stats(struct delivery *d, struct delivery_stats *out) {
  pthread_mutex_lock(&d->mu);
  *out = d->stats;
  pthread_mutex_unlock(&d->mu);
}

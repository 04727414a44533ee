/* HTTP server: routing, authentication, ingest and admin handlers; see server.h. */
#include "ingest/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine/record.h"
#include "ingest/inflate.h"
#include "ingest/segment.h"
#include "journey/journey.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"
#include "util/lathist.h"

#define ADMIN_MAX_BODY (JOURNEY_MAX_SOURCE + 1024)

struct req;

#define WORKER_NICE 5 /* ingest workers' scheduling priority relative to the other threads */
#define INLINE_INGEST_BYTES 8192 /* ingest bodies up to this size are parsed on the event loop */
/* libmicrohttpd's memory per connection: it holds the request's headers (up to about 14 KB fit;
   more is answered 431) and the read buffer. libmicrohttpd 0.9.75 zeroes all of it after every
   request on a kept-alive connection, so its size is a cost per request: 64 KiB cost the event
   loops 3-7 us more per single-event request than 32 KiB (docs/PERFORMANCE.md). */
#define CONN_POOL_BYTES (32 * 1024)

/* One event loop: a libmicrohttpd daemon of its own on the shared port (SO_REUSEPORT, the kernel
   spreads new connections over the loops), driven by one thread, the only one that calls it. */
struct loop {
  struct baton_server *srv;
  struct MHD_Daemon *mhd;
  pthread_t th;
  int ep, efd;            /* epoll set (MHD's epoll fd and efd), eventfd for finished requests */
  atomic_int quiesced;
  pthread_mutex_t done_mu;
  struct req *done;       /* finished by a worker or the log, to resume (under done_mu) */
  struct req *dispatch;   /* complete requests to hand to workers once MHD_run returns (loop only) */
};

struct baton_server {
  struct server_deps deps;
  int port;
  atomic_long active;     /* requests begun and not completed */
  atomic_long working;    /* requests suspended while a worker or the log has them */
  atomic_int stopping;    /* set by server_stop before it drains */
  atomic_ullong seq;      /* request counter for message id seeds */
  /* Ingest requests acknowledged 200: from their headers to the answer queued, and from the
     log's callback (durable) to the answer queued (the event loop's share). */
  struct lathist ack_lat, resume_lat;
  uint64_t seed;          /* random per process */
  struct segment_limits lim;
  /* the event loops */
  struct loop *loops;
  int n_loops;
  atomic_int loop_quit;
  /* ingest workers */
  pthread_t *workers;
  int n_workers;
  pthread_mutex_t q_mu;
  pthread_cond_t q_cv;
  struct req *q_head, *q_tail;
  int q_quit;
};

/* A response prepared off the event loop, sent when the connection resumes. */
struct reply {
  int status;     /* 0: none */
  int cors;
  int retry_after; /* seconds, 0: no header */
  const char *ctype;
  struct buf body;
};

enum { REQ_NEW, REQ_WORKING, REQ_DONE };

struct req {
  struct baton_server *srv;
  struct loop *lp;   /* the event loop serving its connection */
  struct MHD_Connection *conn;
  int is_ingest;
  enum segment_endpoint ep;
  struct buf body;
  int too_big;
  const struct baton_source *src;
  int append_status; /* set by the log writer before resuming */
  size_t n_events;
  int state;         /* REQ_*: handed off while REQ_WORKING, answered from `reply` once done */
  char *method, *url;
  struct reply reply;
  struct req *next;  /* in the dispatch, work or done list */
  int64_t t_begin;   /* clock_mono_ns when its headers had arrived */
  int64_t t_durable; /* when the log's callback ran (0: it did not) */
};

/* ---- responses ---- */

/* Set while a handler runs off the event loop: responses go there instead of to
   libmicrohttpd, which only the event loop calls. */
static _Thread_local struct reply *capture;

static enum MHD_Result queue_reply(struct MHD_Connection *conn, int status, const char *ctype,
                                   const char *body, size_t len, int cors, int retry_after) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
  if (cors) MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
  if (retry_after) {
    char v[16];
    snprintf(v, sizeof(v), "%d", retry_after);
    MHD_add_response_header(r, "Retry-After", v);
  }
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_full(struct MHD_Connection *conn, int status, const char *ctype,
                                  const char *body, size_t len, int cors, int retry_after) {
  if (!capture) return queue_reply(conn, status, ctype, body, len, cors, retry_after);
  capture->status = status;
  capture->ctype = ctype;
  capture->cors = cors;
  capture->retry_after = retry_after;
  buf_clear(&capture->body);
  buf_append(&capture->body, body, len);
  return MHD_YES;
}

static enum MHD_Result send_body(struct MHD_Connection *conn, int status, const char *ctype,
                                 const char *body, size_t len, int cors) {
  return reply_full(conn, status, ctype, body, len, cors, 0);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, const char *json,
                                 int cors) {
  return send_body(conn, status, "application/json", json, strlen(json), cors);
}

/* {"error": msg, "code": code, "field": field} */
static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *code,
                                  const char *field, const char *msg, int cors) {
  struct buf b;
  buf_init(&b, 0);
  buf_puts(&b, "{\"error\":");
  buf_json_str(&b, msg, strlen(msg));
  buf_puts(&b, ",\"code\":");
  buf_json_str(&b, code, strlen(code));
  if (field && *field) {
    buf_puts(&b, ",\"field\":");
    buf_json_str(&b, field, strlen(field));
  }
  buf_putc(&b, '}');
  enum MHD_Result r = send_json(conn, status, b.ptr, cors);
  buf_release(&b);
  return r;
}

static enum MHD_Result send_preflight(struct MHD_Connection *conn) {
  struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(r, "Access-Control-Allow-Methods", "POST, OPTIONS");
  MHD_add_response_header(r, "Access-Control-Allow-Headers",
                          "Content-Type, Authorization, Content-Encoding");
  MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
  enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- authentication ---- */

static int str_eq_ct(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  return na == nb && CRYPTO_memcmp(a, b, na) == 0;
}

static const struct baton_source *source_by_key(const struct baton_config *cfg, const char *key) {
  const struct baton_source *found = NULL;
  for (size_t i = 0; i < cfg->n_sources; i++)
    if (str_eq_ct(cfg->sources[i].write_key, key)) found = &cfg->sources[i];
  return found;
}

static const char *source_name_for_key(void *arg, const char *key) {
  const struct baton_source *src = *key ? source_by_key(arg, key) : NULL;
  return src ? src->name : NULL;
}

/* Decodes "Basic base64(user:pass)" and returns the user part in out. */
static int basic_user(const char *auth, char *out, size_t cap) {
  if (strncasecmp(auth, "Basic ", 6)) return -1;
  const char *b64 = auth + 6;
  while (*b64 == ' ') b64++;
  size_t n = strlen(b64);
  if (n == 0 || n > 1024 || n % 4) return -1;
  unsigned char dec[800];
  int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
  if (len < 0) return -1;
  while (len > 0 && b64[n - 1] == '=') { /* EVP_DecodeBlock counts padding as zero bytes */
    len--;
    n--;
  }
  dec[len] = '\0';
  char *colon = memchr(dec, ':', (size_t)len);
  size_t ulen = colon ? (size_t)(colon - (char *)dec) : (size_t)len;
  if (ulen >= cap) return -1;
  memcpy(out, dec, ulen);
  out[ulen] = '\0';
  return 0;
}

/* Returns the scopes of the Bearer key on conn, or 0 (and sends 401). */
static unsigned admin_scopes(struct baton_server *s, struct MHD_Connection *conn) {
  const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  if (!auth || strncasecmp(auth, "Bearer ", 7)) return 0;
  const char *key = auth + 7;
  while (*key == ' ') key++;
  unsigned scopes = 0;
  const struct baton_config *cfg = s->deps.cfg;
  for (size_t i = 0; i < cfg->n_admin_keys; i++)
    if (str_eq_ct(cfg->admin_keys[i].key, key)) scopes = cfg->admin_keys[i].scopes;
  return scopes;
}

/* ---- ingest ---- */

/* Set by handle_ingest when the log took the request's records: the log's callback finishes
   it, possibly before handle_ingest has returned, so nothing may touch the request after. */
static _Thread_local int ingest_in_log;

static void req_done(struct req *r);
static void ingest_durable(void *arg, uint64_t first_lsn, int status);

static enum MHD_Result finish_ingest(struct req *r) {
  struct MHD_Connection *conn = r->conn;
  if (r->append_status == 0) return send_json(conn, 200, "{\"success\":true}", 1);
  if (r->append_status == BATON_EBUSY) {
    static const char busy[] =
        "{\"error\":\"Baton is behind (event log or engine); retry shortly\",\"code\":\"busy\"}";
    return reply_full(conn, 429, "application/json", busy, sizeof(busy) - 1, 1, 1);
  }
  if (r->append_status == BATON_ECLOSED)
    return send_error(conn, 503, "shutting_down", NULL, "the server is shutting down", 1);
  return send_error(conn, 500, "log_error", NULL,
                    "the events could not be stored durably; nothing was acknowledged", 1);
}

static enum MHD_Result handle_ingest(struct req *r) {
  struct baton_server *s = r->srv;
  struct MHD_Connection *conn = r->conn;
  if (r->too_big) {
    char msg[128];
    snprintf(msg, sizeof(msg), "the request body is over the limit of %zu bytes",
             s->deps.cfg->max_body_bytes);
    return send_error(conn, 413, "body_too_large", "body", msg, 1);
  }
  if (engine_applied_lsn(s->deps.engine) + s->deps.cfg->max_engine_lag <
      evlog_durable_lsn(s->deps.log)) {
    r->append_status = BATON_EBUSY; /* the engine is behind: push back, never drop */
    return finish_ingest(r);
  }
  const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
  if (enc && strcasecmp(enc, "identity")) {
    if (strcasecmp(enc, "gzip") && strcasecmp(enc, "deflate") && strcasecmp(enc, "x-gzip"))
      return send_error(conn, 415, "unsupported_encoding", "Content-Encoding",
                        "Content-Encoding must be gzip, deflate or identity", 1);
    struct buf plain;
    /* +1: inflate_capped needs room for one byte over the limit to see it. */
    buf_init(&plain, s->deps.cfg->max_body_bytes + 1);
    int zrc = inflate_capped(r->body.ptr ? r->body.ptr : "", r->body.len,
                             s->deps.cfg->max_body_bytes, &plain);
    if (zrc) {
      buf_release(&plain);
      if (zrc == BATON_ETOOBIG) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the decompressed body is over the limit of %zu bytes",
                 s->deps.cfg->max_body_bytes);
        return send_error(conn, 413, "body_too_large", "body", msg, 1);
      }
      return send_error(conn, 400, "invalid_encoding", "body",
                        "the body is not a valid gzip or deflate stream", 1);
    }
    buf_release(&r->body);
    r->body = plain;
  }
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  uint64_t seed = s->seed ^ baton_hash64("", 0, atomic_fetch_add(&s->seq, 1));
  /* Without a Basic auth key, the parse itself resolves the body's writeKey. */
  struct segment_limits lim = s->lim;
  lim.source_for_key = source_name_for_key;
  lim.source_arg = (void *)s->deps.cfg;
  int rc = segment_parse(r->body.ptr ? r->body.ptr : "", r->body.len, r->ep, &lim,
                         clock_now_ms(), r->src ? r->src->name : NULL, seed, &out, &err);
  if (!r->src) {
    r->src = out.write_key[0] ? source_by_key(s->deps.cfg, out.write_key) : NULL;
    if (!r->src) { /* no valid key anywhere: that is the first thing to say */
      segment_out_release(&out);
      return send_error(conn, 401, "invalid_write_key", "writeKey",
                        "a valid write key is required (Basic auth user name or writeKey)", 1);
    }
  }
  if (rc) {
    segment_out_release(&out);
    return send_error(conn, err.status, err.code, err.field, err.msg, 1);
  }
  /* Nothing new goes to the log once server_stop has begun. */
  if (atomic_load(&s->stopping)) {
    segment_out_release(&out);
    return send_error(conn, 503, "shutting_down", NULL, "the server is shutting down", 1);
  }
  /* Customers deleted with suppression: their events never reach the log. */
  struct evlog_rec *recs = xmalloc(out.n * sizeof(*recs));
  size_t n_recs = 0;
  for (size_t i = 0; i < out.n; i++) {
    const char *data = out.data.ptr + out.offsets[i];
    size_t len = out.offsets[i + 1] - out.offsets[i];
    struct rec rec;
    if (rec_decode(data, len, &rec) == 0 &&
        engine_identity_suppressed(s->deps.engine, rec.u.ev.user_id.ptr, rec.u.ev.user_id.len,
                                   rec.u.ev.anonymous_id.ptr, rec.u.ev.anonymous_id.len))
      continue;
    recs[n_recs].data = data;
    recs[n_recs].len = len;
    n_recs++;
  }
  if (n_recs == 0) { /* all dropped: acknowledged, as Segment does for blocked users */
    free(recs);
    segment_out_release(&out);
    return send_json(conn, 200, "{\"success\":true}", 1);
  }
  r->n_events = n_recs;
  /* The log copies the records; ingest_durable answers once the group commit that covers them
     (one fdatasync for every request waiting) is done. */
  ingest_in_log = 1;
  rc = evlog_append_async(s->deps.log, recs, n_recs, ingest_durable, r);
  free(recs);
  segment_out_release(&out);
  if (rc == 0) return MHD_YES; /* r may already be answered and freed */
  ingest_in_log = 0;
  r->append_status = rc;
  return finish_ingest(r);
}

/* ---- admin ---- */

static enum MHD_Result need_scope(struct baton_server *s, struct MHD_Connection *conn,
                                  unsigned want, int *ok) {
  unsigned scopes = admin_scopes(s, conn);
  *ok = 0;
  if (!scopes)
    return send_error(conn, 401, "unauthorized", "Authorization",
                      "an admin key is required: Authorization: Bearer <key>", 0);
  if ((scopes & want) != want)
    return send_error(conn, 403, "forbidden", "Authorization",
                      "this admin key lacks the scope this request needs", 0);
  *ok = 1;
  return MHD_YES;
}

static enum MHD_Result send_buf(struct MHD_Connection *conn, int status, struct buf *b) {
  enum MHD_Result r = send_body(conn, status, "application/json", b->ptr ? b->ptr : "", b->len, 0);
  buf_release(b);
  return r;
}

static enum MHD_Result put_journey(struct req *r, const char *id) {
  struct baton_server *s = r->srv;
  struct MHD_Connection *conn = r->conn;
  if (r->too_big)
    return send_error(conn, 413, "body_too_large", "body", "the journey is over 256 KiB", 0);
  if (!journey_id_valid(id))
    return send_error(conn, 400, "invalid_id", "id",
                      "journey ids are 1-64 characters of letters, digits, _ . -", 0);
  struct journey_def *def;
  struct yerr err;
  char file[96];
  snprintf(file, sizeof(file), "%s", id);
  int rc = journey_parse(r->body.ptr ? r->body.ptr : "", r->body.len, file, id, &def, &err);
  if (rc) {
    struct buf b;
    buf_init(&b, 0);
    char msg[900];
    buf_puts(&b, "{\"error\":");
    yerr_format(&err, msg, sizeof(msg));
    buf_json_str(&b, msg, strlen(msg));
    buf_printf(&b, ",\"code\":\"invalid_journey\",\"line\":%d,\"column\":%d,\"message\":",
               err.line, err.col);
    buf_json_str(&b, err.msg, strlen(err.msg));
    buf_putc(&b, '}');
    return send_buf(conn, rc == BATON_ETOOBIG ? 413 : 400, &b);
  }
  journey_free(def);
  struct buf rec;
  buf_init(&rec, 0);
  struct rec_journey jr = {.op = JOP_PUBLISH,
                           .time_ms = clock_now_ms(),
                           .id = {id, (uint32_t)strlen(id)},
                           .source = {r->body.ptr, (uint32_t)r->body.len}};
  rec_journey_encode(&rec, &jr);
  struct evlog_rec lr = {rec.ptr, rec.len};
  uint64_t lsn;
  rc = evlog_append(s->deps.log, &lr, 1, &lsn);
  buf_release(&rec);
  if (rc) return send_error(conn, 503, "log_error", NULL, baton_strerror(rc), 0);
  if (engine_wait_applied(s->deps.engine, lsn, 10000))
    return send_error(conn, 503, "engine_busy", NULL,
                      "the journey is stored but the engine has not applied it yet", 0);
  struct buf b;
  buf_init(&b, 0);
  buf_puts(&b, "{\"id\":");
  buf_json_str(&b, id, strlen(id));
  buf_printf(&b, ",\"version\":%u}", engine_journey_version(s->deps.engine, id));
  return send_buf(conn, 200, &b);
}


/* ---- notes and cases ---- */

struct field_rule {
  const char *name;
  int required;
  size_t max_len;
  const char *const *one_of; /* NULL-terminated allowed values, or NULL */
};

static const char *const case_statuses[] = {"open", "pending", "closed", NULL};

/* Checks obj against rules: strings only, lengths, allowed values, no other fields. */
static int check_fields(const cJSON *obj, const struct field_rule *rules, size_t n, char *msg,
                        size_t cap, const char **field) {
  if (!cJSON_IsObject(obj)) {
    snprintf(msg, cap, "the body must be a JSON object");
    *field = "body";
    return -1;
  }
  for (const cJSON *f = obj->child; f; f = f->next) {
    size_t i;
    for (i = 0; i < n && strcmp(rules[i].name, f->string); i++) {}
    if (i == n) {
      snprintf(msg, cap, "unknown field '%.40s'", f->string);
      *field = "body";
      return -1;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, rules[i].name);
    *field = rules[i].name;
    if (!v) {
      if (rules[i].required) {
        snprintf(msg, cap, "%s is required", rules[i].name);
        return -1;
      }
      continue;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > rules[i].max_len) {
      snprintf(msg, cap, "%s must be a non-empty string of at most %zu bytes", rules[i].name,
               rules[i].max_len);
      return -1;
    }
    if (rules[i].one_of) {
      int ok = 0;
      for (const char *const *o = rules[i].one_of; *o; o++) ok |= !strcmp(*o, v->valuestring);
      if (!ok) {
        snprintf(msg, cap, "%s must be one of open, pending, closed", rules[i].name);
        return -1;
      }
    }
  }
  return 0;
}

static void random_id(const char *prefix, char *out, size_t cap) {
  unsigned char raw[8];
  if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) abort();
  int n = snprintf(out, cap, "%s", prefix);
  for (size_t i = 0; i < sizeof(raw); i++) n += snprintf(out + n, cap - (size_t)n, "%02x", raw[i]);
}

/* POST .../notes, POST .../cases, PATCH .../cases/{case}: appended to the log,
   answered once the engine has applied them (so a read right after sees them). */
static enum MHD_Result profile_write(struct req *r, const char *method, const char *pid,
                                     const char *what, const char *case_id) {
  struct baton_server *s = r->srv;
  struct MHD_Connection *conn = r->conn;
  static const struct field_rule note_rules[] = {
      {"text", 1, 10000, NULL}, {"department", 0, 64, NULL}, {"author", 0, 128, NULL}};
  static const struct field_rule open_rules[] = {
      {"id", 0, 64, NULL},        {"type", 1, 64, NULL},          {"text", 0, 10000, NULL},
      {"department", 0, 64, NULL}, {"status", 0, 16, case_statuses}};
  static const struct field_rule update_rules[] = {
      {"status", 0, 16, case_statuses}, {"text", 0, 10000, NULL}, {"department", 0, 64, NULL}};
  int is_note = !strcmp(what, "notes");
  int is_update = case_id != NULL;
  if (strcmp(method, is_update ? "PATCH" : "POST"))
    return send_error(conn, 405, "method_not_allowed", NULL, is_update ? "use PATCH" : "use POST",
                      0);
  int ok;
  enum MHD_Result ret = need_scope(s, conn, BATON_SCOPE_PROFILES_WRITE, &ok);
  if (!ok) return ret;
  if (r->too_big) return send_error(conn, 413, "body_too_large", "body", "the body is too large", 0);
  if (!baton_utf8_valid(r->body.ptr ? r->body.ptr : "", r->body.len))
    return send_error(conn, 400, "invalid_utf8", "body", "the body is not valid UTF-8", 0);
  cJSON *in = cJSON_ParseWithLength(r->body.ptr ? r->body.ptr : "", r->body.len);
  if (!in) return send_error(conn, 400, "invalid_json", "body", "the body is not valid JSON", 0);
  int kind;
  if (segment_find_bad_char(r->body.ptr, r->body.len, &kind) < r->body.len) {
    cJSON_Delete(in); /* the text would have been cut at the \u0000 */
    return send_error(conn, 400, "invalid_json", "body",
                      kind == SEG_BAD_NUL ? "a string holds \\u0000 (NUL), which is not accepted"
                      : kind == SEG_BAD_ESCAPE
                          ? "a string holds a \\u escape without four hex digits (not JSON)"
                          : "a raw control character (not allowed in JSON)",
                      0);
  }
  char msg[200];
  const char *field = NULL;
  int bad = is_note     ? check_fields(in, note_rules, ARRAY_SIZE(note_rules), msg, sizeof(msg), &field)
            : is_update ? check_fields(in, update_rules, ARRAY_SIZE(update_rules), msg, sizeof(msg), &field)
                        : check_fields(in, open_rules, ARRAY_SIZE(open_rules), msg, sizeof(msg), &field);
  if (!bad && is_update && !in->child) {
    snprintf(msg, sizeof(msg), "send at least one of status, text, department");
    field = "body";
    bad = 1;
  }
  if (bad) {
    cJSON_Delete(in);
    return send_error(conn, 400, "invalid_field", field, msg, 0);
  }
  const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
  if (by && strlen(by) > 64) { /* it used to be dropped: the note then went to the userId's profile */
    cJSON_Delete(in);
    return send_error(conn, 400, "invalid_field", "by", "by is at most 64 characters", 0);
  }
  char item[72];
  if (is_update) {
    snprintf(item, sizeof(item), "%s", case_id);
  } else {
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(in, "id");
    if (cJSON_IsString(cid) && strchr(cid->valuestring, '/')) {
      /* PATCH .../cases/{case} could never reach a case whose id holds a '/' */
      cJSON_Delete(in);
      return send_error(conn, 400, "invalid_field", "id", "id cannot contain '/'", 0);
    }
    if (cJSON_IsString(cid))
      snprintf(item, sizeof(item), "%s", cid->valuestring);
    else
      random_id(is_note ? "note_" : "case_", item, sizeof(item));
  }
  if (engine_profile_exists(s->deps.engine, by, pid, NULL)) {
    cJSON_Delete(in);
    return send_error(conn, 404, "not_found", "id", "no profile has this identity", 0);
  }
  int case_exists = !is_note && engine_profile_exists(s->deps.engine, by, pid, item) == 0;
  if (is_update && !case_exists) {
    cJSON_Delete(in);
    return send_error(conn, 404, "not_found", "case", "this profile has no case with this id", 0);
  }
  if (!is_note && !is_update && case_exists) {
    cJSON_Delete(in);
    return send_error(conn, 409, "conflict", "id", "this profile already has a case with this id",
                      0);
  }
  char *json = cJSON_PrintUnformatted(in);
  cJSON_Delete(in);
  struct rec_profile pr = {.op = is_note ? POP_NOTE : is_update ? POP_CASE_UPDATE : POP_CASE_OPEN,
                           .time_ms = clock_now_ms(),
                           .by = {by ? by : "", by ? (uint32_t)strlen(by) : 0},
                           .id = {pid, (uint32_t)strlen(pid)},
                           .item_id = {item, (uint32_t)strlen(item)},
                           .json = {json, (uint32_t)strlen(json)}};
  struct buf rec;
  buf_init(&rec, 0);
  rec_profile_encode(&rec, &pr);
  free(json);
  struct evlog_rec lr = {rec.ptr, rec.len};
  uint64_t lsn;
  int rc = evlog_append(s->deps.log, &lr, 1, &lsn);
  buf_release(&rec);
  if (rc) return send_error(conn, 503, "log_error", NULL, baton_strerror(rc), 0);
  if (engine_wait_applied(s->deps.engine, lsn, 10000))
    return send_error(conn, 503, "engine_busy", NULL, "stored, but not yet applied", 0);
  struct buf b;
  buf_init(&b, 0);
  buf_puts(&b, "{\"id\":");
  buf_json_str(&b, item, strlen(item));
  buf_putc(&b, '}');
  return send_buf(conn, is_update ? 200 : 201, &b);
}


/* DELETE /v1/profiles/{id}[?by=][&suppress=true]: answered once the customer is
   gone from memory, the store and the log's retained segments. */
static enum MHD_Result profile_delete(struct req *r, const char *pid) {
  struct baton_server *s = r->srv;
  struct MHD_Connection *conn = r->conn;
  int ok;
  enum MHD_Result ret = need_scope(s, conn, BATON_SCOPE_PROFILES_DELETE, &ok);
  if (!ok) return ret;
  const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
  const char *sup = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "suppress");
  if (by && strlen(by) > 64) by = NULL;
  if (sup && strcmp(sup, "true") && strcmp(sup, "false"))
    return send_error(conn, 400, "invalid_field", "suppress", "suppress must be true or false", 0);
  int suppress = sup && !strcmp(sup, "true");
  if (engine_profile_exists(s->deps.engine, by, pid, NULL))
    return send_error(conn, 404, "not_found", "id", "no profile has this identity", 0);
  const char *json = suppress ? "{\"suppress\":true}" : "{\"suppress\":false}";
  struct rec_profile pr = {.op = POP_DELETE,
                           .time_ms = clock_now_ms(),
                           .by = {by ? by : "", by ? (uint32_t)strlen(by) : 0},
                           .id = {pid, (uint32_t)strlen(pid)},
                           .item_id = {"delete", 6},
                           .json = {json, (uint32_t)strlen(json)}};
  struct buf rec;
  buf_init(&rec, 0);
  rec_profile_encode(&rec, &pr);
  struct evlog_rec lr = {rec.ptr, rec.len};
  uint64_t lsn;
  int rc = evlog_append(s->deps.log, &lr, 1, &lsn);
  buf_release(&rec);
  if (rc) return send_error(conn, 503, "log_error", NULL, baton_strerror(rc), 0);
  /* 1. applied and checkpointed: gone from memory and the store. */
  rc = engine_wait_applied(s->deps.engine, lsn, 10000);
  if (!rc) {
    engine_request_checkpoint(s->deps.engine);
    rc = engine_wait_checkpoint(s->deps.engine, lsn, 10000);
  }
  /* 2. A tick seals the log segment holding the deletion (the purge asked for
     a new segment); the checkpoint that covers it deletes the old segments. */
  if (!rc) {
    struct buf tick;
    buf_init(&tick, 64);
    rec_tick_encode(&tick, clock_now_ms());
    struct evlog_rec tr = {tick.ptr, tick.len};
    uint64_t tlsn;
    rc = evlog_append(s->deps.log, &tr, 1, &tlsn);
    buf_release(&tick);
    if (!rc) rc = engine_wait_applied(s->deps.engine, tlsn, 10000);
    if (!rc) {
      engine_request_checkpoint(s->deps.engine);
      rc = engine_wait_checkpoint(s->deps.engine, tlsn, 10000);
    }
  }
  if (rc)
    return send_error(conn, 503, "engine_busy", NULL,
                      "the deletion is recorded and will complete; the store was not yet updated",
                      0);
  return send_json(conn, 200, suppress ? "{\"deleted\":true,\"suppressed\":true}"
                                       : "{\"deleted\":true,\"suppressed\":false}",
                   0);
}

static enum MHD_Result handle_admin(struct req *r, const char *method, const char *url) {
  struct baton_server *s = r->srv;
  struct MHD_Connection *conn = r->conn;
  int ok;
  enum MHD_Result ret;
  if (!strcmp(url, "/healthz")) {
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
      return send_error(conn, 405, "method_not_allowed", NULL, "use GET", 0);
    return send_json(conn, 200, "{\"status\":\"ok\"}", 0);
  }
  if (!strncmp(url, "/v1/profiles/", 13)) {
    const char *id = url + 13;
    size_t idlen = strlen(id);
    /* .../notes, .../cases, .../cases/{case} */
    const char *slash = strrchr(id, '/');
    if (slash && slash > id && (!strcmp(slash, "/notes") || !strcmp(slash, "/cases"))) {
      char pid[1100];
      size_t n = (size_t)(slash - id);
      if (n >= sizeof(pid)) return send_error(conn, 400, "invalid_id", "id", "id too long", 0);
      memcpy(pid, id, n);
      pid[n] = '\0';
      return profile_write(r, method, pid, slash + 1, NULL);
    }
    if (slash && slash > id) {
      const char *prev = slash - 1;
      while (prev > id && *prev != '/') prev--;
      if (*prev == '/' && (size_t)(slash - prev) == 6 && !memcmp(prev, "/cases", 6) && slash[1]) {
        char pid[1100];
        size_t n = (size_t)(prev - id);
        if (n == 0 || n >= sizeof(pid) || strlen(slash + 1) > 64)
          return send_error(conn, 400, "invalid_id", "id", "invalid profile or case id", 0);
        memcpy(pid, id, n);
        pid[n] = '\0';
        return profile_write(r, method, pid, "cases", slash + 1);
      }
    }
    if (idlen > 7 && !strcmp(id + idlen - 7, "/export")) {
      if (strcmp(method, "GET"))
        return send_error(conn, 405, "method_not_allowed", NULL, "use GET", 0);
      ret = need_scope(s, conn, BATON_SCOPE_PROFILES_READ, &ok);
      if (!ok) return ret;
      char pid[1100];
      if (idlen - 7 >= sizeof(pid))
        return send_error(conn, 400, "invalid_id", "id", "id too long", 0);
      memcpy(pid, id, idlen - 7);
      pid[idlen - 7] = '\0';
      const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
      struct buf b;
      buf_init(&b, 0);
      if (engine_profile_export_json(s->deps.engine, by, pid, &b)) {
        buf_release(&b);
        return send_error(conn, 404, "not_found", "id", "no profile has this identity", 0);
      }
      return send_buf(conn, 200, &b);
    }
    if (idlen > 7 && !strcmp(id + idlen - 7, "/events")) {
      if (strcmp(method, "GET"))
        return send_error(conn, 405, "method_not_allowed", NULL, "use GET", 0);
      ret = need_scope(s, conn, BATON_SCOPE_PROFILES_READ, &ok);
      if (!ok) return ret;
      char pid[1100];
      if (idlen - 7 == 0 || idlen - 7 >= sizeof(pid))
        return send_error(conn, 400, "invalid_id", "id", "a profile id is required", 0);
      memcpy(pid, id, idlen - 7);
      pid[idlen - 7] = '\0';
      const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
      const char *ls = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
      const char *cs = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor");
      char *end;
      unsigned long limit = ls ? strtoul(ls, &end, 10) : 50;
      if (ls && (*end || limit < 1 || limit > 1000))
        return send_error(conn, 400, "invalid_field", "limit", "limit must be 1 to 1000", 0);
      unsigned long long cursor = cs ? strtoull(cs, &end, 10) : 0;
      if (cs && (*end || !*cs))
        return send_error(conn, 400, "invalid_field", "cursor",
                          "cursor must be the \"next\" value of a previous page", 0);
      struct buf b;
      buf_init(&b, 0);
      if (engine_profile_events_json(s->deps.engine, by, pid, limit, cursor, &b)) {
        buf_release(&b);
        return send_error(conn, 404, "not_found", "id", "no profile has this identity", 0);
      }
      return send_buf(conn, 200, &b);
    }
    if (!strcmp(method, "DELETE")) {
      if (!*id || strlen(id) > 1024)
        return send_error(conn, 400, "invalid_id", "id", "a profile id is required", 0);
      return profile_delete(r, id);
    }
    if (strcmp(method, "GET"))
      return send_error(conn, 405, "method_not_allowed", NULL, "use GET or DELETE", 0);
    ret = need_scope(s, conn, BATON_SCOPE_PROFILES_READ, &ok);
    if (!ok) return ret;
    if (!*id || strlen(id) > 1024)
      return send_error(conn, 400, "invalid_id", "id", "a profile id is required", 0);
    struct buf b;
    buf_init(&b, 0);
    const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
    if (engine_profile_json(s->deps.engine, by, id, &b)) {
      buf_release(&b);
      return send_error(conn, 404, "not_found", "id",
                        by ? "no profile has this identity" : "no profile has this userId or anonymousId",
                        0);
    }
    return send_buf(conn, 200, &b);
  }
  if (!strcmp(url, "/v1/journeys") || !strcmp(url, "/v1/journeys/")) {
    if (strcmp(method, "GET")) return send_error(conn, 405, "method_not_allowed", NULL, "use GET", 0);
    ret = need_scope(s, conn, BATON_SCOPE_JOURNEYS_READ, &ok);
    if (!ok) return ret;
    struct buf b;
    buf_init(&b, 0);
    engine_journeys_json(s->deps.engine, &b);
    return send_buf(conn, 200, &b);
  }
  if (!strncmp(url, "/v1/journeys/", 13)) {
    const char *id = url + 13;
    if (!strcmp(method, "PUT")) {
      ret = need_scope(s, conn, BATON_SCOPE_JOURNEYS_WRITE, &ok);
      if (!ok) return ret;
      return put_journey(r, id);
    }
    if (strcmp(method, "GET"))
      return send_error(conn, 405, "method_not_allowed", NULL, "use GET or PUT", 0);
    ret = need_scope(s, conn, BATON_SCOPE_JOURNEYS_READ, &ok);
    if (!ok) return ret;
    struct buf b;
    buf_init(&b, 0);
    if (engine_journey_json(s->deps.engine, id, &b)) {
      buf_release(&b);
      return send_error(conn, 404, "not_found", "id", "no journey has this id", 0);
    }
    return send_buf(conn, 200, &b);
  }
  if (!strcmp(url, "/v1/stats")) {
    ret = need_scope(s, conn, BATON_SCOPE_ADMIN, &ok);
    if (!ok) return ret;
    struct engine_stats es;
    engine_get_stats(s->deps.engine, &es);
    struct delivery_stats ds = {0};
    if (s->deps.delivery) delivery_get_stats(s->deps.delivery, &ds);
    struct lathist_snap wr, sy;
    evlog_get_io_stats(s->deps.log, &wr, &sy);
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "{\"log\":{\"durable_lsn\":%llu,\"first_lsn\":%llu,",
               (unsigned long long)evlog_durable_lsn(s->deps.log) - 1,
               (unsigned long long)evlog_first_lsn(s->deps.log));
    lathist_json(&b, "write", &wr);
    buf_putc(&b, ',');
    lathist_json(&b, "sync", &sy);
    struct lathist_snap ack, resume;
    lathist_read(&s->ack_lat, &ack);
    lathist_read(&s->resume_lat, &resume);
    buf_puts(&b, "},\"ingest\":{");
    lathist_json(&b, "ack", &ack);
    buf_putc(&b, ',');
    lathist_json(&b, "resume", &resume);
    buf_printf(&b,
               "},\"engine\":{\"applied_lsn\":%llu,"
               "\"profiles\":%llu,\"events\":%llu,\"journeys\":%llu,\"active_runs\":%llu,"
               "\"timers\":%llu,\"messages\":%llu,\"checkpoints\":%llu,\"checkpoint_lsn\":%llu,"
               "\"duplicates\":%llu,\"merges\":%llu,\"deleted\":%llu,\"suppressed\":%llu,"
               "\"cpu_ms\":%.1f,\"checkpoint_ms\":%.1f,\"checkpoint_cpu_ms\":%.1f},"
               "\"delivery\":{\"delivered\":%llu,\"failed\":%llu,\"dead\":%llu,\"unknown\":%llu,"
               "\"retries\":%llu,\"duplicates_refused\":%llu}}",
               (unsigned long long)es.applied_lsn, (unsigned long long)es.profiles,
               (unsigned long long)es.events, (unsigned long long)es.journeys,
               (unsigned long long)es.active_runs, (unsigned long long)es.timers,
               (unsigned long long)es.messages, (unsigned long long)es.checkpoints,
               (unsigned long long)es.checkpoint_lsn, (unsigned long long)es.duplicates,
               (unsigned long long)es.merges, (unsigned long long)es.deleted,
               (unsigned long long)es.suppressed, (double)es.cpu_ns / 1e6,
               (double)es.checkpoint_ns / 1e6, (double)es.checkpoint_cpu_ns / 1e6,
               (unsigned long long)ds.delivered,
               (unsigned long long)ds.failed, (unsigned long long)ds.dead,
               (unsigned long long)ds.unknown, (unsigned long long)ds.retries,
               (unsigned long long)ds.duplicates);
    return send_buf(conn, 200, &b);
  }
  return send_error(conn, 404, "not_found", NULL, "no such endpoint", 0);
}

/* ---- off the event loop: ingest workers, admin writes, the log's callback ---- */

/* Hands a finished request back to the event loop, which resumes its connection. */
static void req_done(struct req *r) {
  struct loop *lp = r->lp;
  pthread_mutex_lock(&lp->done_mu);
  int was_empty = !lp->done;
  r->next = lp->done;
  lp->done = r;
  pthread_mutex_unlock(&lp->done_mu);
  /* One wake-up per batch: the loop reads the eventfd before it takes the whole list, so a
     request added to a list that was not empty is taken with the one that woke it. (A group
     commit finishes a score of requests at once.) */
  uint64_t one = 1;
  if (was_empty && write(lp->efd, &one, sizeof(one)) < 0) { /* cannot overflow here */ }
}

/* The log writer's thread: the request's records are durable (or failed). */
static void ingest_durable(void *arg, uint64_t first_lsn, int status) {
  (void)first_lsn;
  struct req *r = arg;
  r->t_durable = clock_mono_ns();
  struct reply *saved = capture;
  capture = &r->reply;
  r->append_status = status;
  finish_ingest(r);
  capture = saved;
  req_done(r);
}

/* Runs a request's handler with its response captured. Ingest requests whose records went to
   the log are finished by ingest_durable instead. */
static void run_req(struct req *r) {
  struct reply *saved = capture;
  capture = &r->reply;
  ingest_in_log = 0;
  if (r->is_ingest)
    handle_ingest(r);
  else
    handle_admin(r, r->method, r->url);
  capture = saved;
  if (!ingest_in_log) req_done(r);
}

static void *worker_main(void *arg) {
  struct baton_server *s = arg;
  /* When the CPUs are short, the event loop (answers, profile reads) and the engine go first:
     parsing more ingest bodies can wait a little, the clients are waiting for answers. */
  if (setpriority(PRIO_PROCESS, (id_t)gettid(), WORKER_NICE)) { /* not allowed: equal share */ }
  pthread_mutex_lock(&s->q_mu);
  for (;;) {
    while (!s->q_head && !s->q_quit) pthread_cond_wait(&s->q_cv, &s->q_mu);
    struct req *r = s->q_head;
    if (!r) break;
    s->q_head = r->next;
    if (!s->q_head) s->q_tail = NULL;
    pthread_mutex_unlock(&s->q_mu);
    run_req(r);
    pthread_mutex_lock(&s->q_mu);
  }
  pthread_mutex_unlock(&s->q_mu);
  return NULL;
}

/* Admin writes wait for the log and the engine (up to seconds): each gets its own thread, so
   they never hold up ingestion. */
static void *admin_thread(void *arg) {
  pthread_setname_np(pthread_self(), "baton-admin");
  run_req(arg);
  return NULL;
}

static void dispatch(struct baton_server *s, struct req *r) {
  r->next = NULL;
  if (!r->is_ingest) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    int rc = pthread_create(&t, &at, admin_thread, r);
    pthread_attr_destroy(&at);
    if (rc == 0) return;
    struct reply *saved = capture; /* no thread to be had: answer 503 */
    capture = &r->reply;
    send_error(r->conn, 503, "busy", NULL, "the server cannot start a thread for this request", 0);
    capture = saved;
    req_done(r);
    return;
  }
  pthread_mutex_lock(&s->q_mu);
  if (s->q_tail)
    s->q_tail->next = r;
  else
    s->q_head = r;
  s->q_tail = r;
  pthread_cond_signal(&s->q_cv);
  pthread_mutex_unlock(&s->q_mu);
}

/* ---- libmicrohttpd callbacks (event loop thread) ---- */

/* Admin reads of memory (a profile, journeys, stats) are quick and answered on the event
   loop; a timeline page or an export reads the store and may be long, so it is handed off
   like everything else. */
static int runs_inline(const struct req *r, const char *method, const char *url) {
  if (r->is_ingest || (strcmp(method, "GET") && strcmp(method, "HEAD"))) return 0;
  size_t n = strlen(url);
  return !(n > 7 && (!strcmp(url + n - 7, "/events") || !strcmp(url + n - 7, "/export")));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  struct loop *lp = cls;
  struct baton_server *s = lp->srv;
  struct req *r = *con_cls;
  (void)version;
  if (!r) {
    r = xcalloc(1, sizeof(*r));
    r->srv = s;
    r->lp = lp;
    r->conn = conn;
    r->t_begin = clock_mono_ns();
    *con_cls = r;
    atomic_fetch_add(&s->active, 1);
    r->ep = segment_endpoint_for_path(url);
    r->is_ingest = r->ep != 0;
    size_t cap = r->is_ingest ? s->deps.cfg->max_body_bytes : ADMIN_MAX_BODY;
    buf_init(&r->body, cap);
    if (!strcmp(method, "OPTIONS")) return send_preflight(conn);
    if (r->is_ingest) {
      if (strcmp(method, "POST"))
        return send_error(conn, 405, "method_not_allowed", NULL, "use POST", 1);
      const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
      if (auth) {
        char user[600];
        if (basic_user(auth, user, sizeof(user)) || !(r->src = source_by_key(s->deps.cfg, user)))
          return send_error(conn, 401, "invalid_write_key", "Authorization",
                            "the write key is not valid (send it as the Basic auth user name)", 1);
      }
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > cap) {
      r->too_big = 1;
      if (r->is_ingest) return handle_ingest(r);
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (!r->too_big && buf_append(&r->body, upload_data, *upload_data_size)) {
      r->too_big = 1;
      buf_release(&r->body);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->state == REQ_DONE) { /* resumed: the answer is ready */
    if (r->t_durable && r->append_status == 0) {
      int64_t t = clock_mono_ns();
      lathist_add(&s->ack_lat, t - r->t_begin);
      lathist_add(&s->resume_lat, t - r->t_durable);
    }
    return queue_reply(conn, r->reply.status, r->reply.ctype, r->reply.body.ptr ? r->reply.body.ptr : "",
                       r->reply.body.len, r->reply.cors, r->reply.retry_after);
  }
  if (r->state == REQ_WORKING) return MHD_YES; /* cannot happen: it is suspended */
  if (runs_inline(r, method, url)) return handle_admin(r, method, url);
  /* Handed off once MHD_run returns (so the suspension has taken effect before anyone can
     finish it); the event loop resumes the connection when the answer is ready. */
  r->method = xstrdup(method);
  r->url = xstrdup(url);
  r->state = REQ_WORKING;
  buf_init(&r->reply.body, 0);
  atomic_fetch_add(&s->working, 1);
  MHD_suspend_connection(conn);
  if (r->is_ingest && r->body.len <= INLINE_INGEST_BYTES) {
    /* A small body (a single event, most often) is parsed here: a few microseconds, less
       than handing it to a worker and waking it. Its answer comes the same way, through the
       done list, which the loop reads only after this handler has returned. */
    run_req(r);
    return MHD_YES;
  }
  r->next = lp->dispatch;
  lp->dispatch = r;
  return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct baton_server *s = ((struct loop *)cls)->srv;
  struct req *r = *con_cls;
  (void)conn;
  (void)toe;
  if (!r) return;
  buf_release(&r->body);
  buf_release(&r->reply.body);
  free(r->method);
  free(r->url);
  free(r);
  *con_cls = NULL;
  atomic_fetch_sub(&s->active, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  jlog(JLOG_WARN, "http", "detail", msg);
}

/* An event loop: waits on its libmicrohttpd daemon's epoll set and the eventfd of finished
   requests. */
static void *server_loop(void *arg) {
  struct loop *lp = arg;
  struct baton_server *s = lp->srv;
  while (!atomic_load(&s->loop_quit)) {
    MHD_UNSIGNED_LONG_LONG to;
    int timeout = 500;
    if (MHD_get_timeout(lp->mhd, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)timeout)
      timeout = (int)to;
    struct epoll_event evs[4];
    epoll_wait(lp->ep, evs, 4, timeout);
    uint64_t n;
    if (read(lp->efd, &n, sizeof(n)) < 0) { /* nothing finished */ }
    pthread_mutex_lock(&lp->done_mu);
    struct req *done = lp->done;
    lp->done = NULL;
    pthread_mutex_unlock(&lp->done_mu);
    for (struct req *r = done, *next; r; r = next) {
      next = r->next;
      r->state = REQ_DONE;
      atomic_fetch_sub(&s->working, 1);
      MHD_resume_connection(r->conn);
    }
    MHD_run(lp->mhd); /* resumed connections get their answers queued and written in this run */
    struct req *d = lp->dispatch;
    lp->dispatch = NULL;
    for (struct req *r = d, *next; r; r = next) {
      next = r->next;
      dispatch(s, r);
    }
    if (atomic_load(&s->stopping) && !atomic_load(&lp->quiesced)) {
      MHD_socket fd = MHD_quiesce_daemon(lp->mhd); /* no new connections */
      if (fd != MHD_INVALID_SOCKET) close(fd);
      atomic_store(&lp->quiesced, 1);
    }
  }
  return NULL;
}

/* Closes what loop_open opened. */
static void loop_close(struct loop *lp) {
  if (lp->ep >= 0) close(lp->ep);
  if (lp->efd >= 0) close(lp->efd);
  if (lp->mhd) MHD_stop_daemon(lp->mhd);
  pthread_mutex_destroy(&lp->done_mu);
}

/* Starts loop lp's daemon on listen_fd (its own descriptor of the shared listening socket, which
   the daemon then owns) and its epoll set; the thread is started by the caller. Returns 0 or
   BATON_EIO (logged). */
static int loop_open(struct baton_server *s, struct loop *lp, int listen_fd, unsigned conn_limit) {
  lp->srv = s;
  lp->ep = lp->efd = -1;
  pthread_mutex_init(&lp->done_mu, NULL);
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  lp->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, lp,
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                             MHD_OPTION_LISTEN_SOCKET, listen_fd,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, lp,
                             MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL_BYTES,
                             MHD_OPTION_END);
  if (!lp->mhd) {
    close(listen_fd);
    jlog(JLOG_ERROR, "cannot start the HTTP server", "error", "libmicrohttpd refused to start");
    loop_close(lp);
    return BATON_EIO;
  }
  const union MHD_DaemonInfo *ei = MHD_get_daemon_info(lp->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  lp->ep = epoll_create1(EPOLL_CLOEXEC);
  lp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN};
  if (!ei || lp->ep < 0 || lp->efd < 0 ||
      (ev.data.fd = ei->epoll_fd, epoll_ctl(lp->ep, EPOLL_CTL_ADD, ei->epoll_fd, &ev)) ||
      (ev.data.fd = lp->efd, epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->efd, &ev))) {
    jlog(JLOG_ERROR, "cannot set up the HTTP event loop", "error", strerror(errno));
    loop_close(lp);
    return BATON_EIO;
  }
  return 0;
}

/* A listening TCP socket on ai (non-blocking; port 0 picks a free port, *port gets the one
   bound), shared by every event loop: each polls it and accepts whatever it finds. Returns the
   descriptor or -errno. */
static int listen_socket(const struct addrinfo *ai, int *port) {
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int on = 1;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
      (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on))) ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024) ||
      getsockname(fd, (struct sockaddr *)&ss, &sl)) {
    int err = errno;
    close(fd);
    return -err;
  }
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

int server_start(const struct server_deps *deps, struct baton_server **out) {
  struct baton_server *s = xcalloc(1, sizeof(*s));
  s->deps = *deps;
  s->lim.max_event_bytes = deps->cfg->max_event_bytes;
  s->lim.max_batch_events = deps->cfg->max_batch_events;
  if (getrandom(&s->seed, sizeof(s->seed), 0) != sizeof(s->seed)) s->seed = (uint64_t)clock_mono_ns();
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
  struct addrinfo *ai = NULL;
  char port[16];
  snprintf(port, sizeof(port), "%d", deps->cfg->listen_port);
  int grc = getaddrinfo(deps->cfg->listen_host, port, &hints, &ai);
  if (grc) {
    jlog(JLOG_ERROR, "listen address must be a numeric IP address", "listen",
         deps->cfg->listen_host);
    free(s);
    return BATON_EINVAL;
  }
  /* Event loops, each a libmicrohttpd daemon of its own (epoll, driven by server_loop) on one
     shared listening socket: a loop accepts the connections it finds (the least busy loop gets
     there first), reads their requests and writes their answers. Complete ingest requests are
     parsed on the loop when small, else handed to the workers (parse, validate, append to the
     log without waiting); the log's callback hands them back to their loop once durable and
     the loop resumes the connection. Admin reads are
     answered on the loop, admin writes get a thread of their own. Only a connection's own
     loop calls libmicrohttpd for it, so a resume never races the handler that suspended. */
  int lfd = listen_socket(ai, &s->port);
  freeaddrinfo(ai);
  if (lfd < 0) {
    struct jlog_line l;
    jlog_begin(&l, JLOG_ERROR, "cannot listen");
    jlog_str(&l, "host", deps->cfg->listen_host);
    jlog_i64(&l, "port", deps->cfg->listen_port);
    jlog_str(&l, "error", strerror(-lfd));
    jlog_end(&l);
    free(s);
    return BATON_EIO;
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  s->n_loops = deps->cfg->http_threads ? deps->cfg->http_threads
                                       : (int)(ncpu < 1 ? 1 : ncpu > 16 ? 16 : ncpu);
  s->loops = xcalloc((size_t)s->n_loops, sizeof(*s->loops));
  /* Each loop takes its share of the connection limit. */
  unsigned conn_limit = (unsigned)((deps->cfg->max_connections + s->n_loops - 1) / s->n_loops);
  int rc = 0, opened = 0;
  for (int i = 0; i < s->n_loops && rc == 0; i++) {
    int fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
    rc = fd < 0 ? BATON_EIO : loop_open(s, &s->loops[i], fd, conn_limit);
    if (rc == 0) opened++;
  }
  close(lfd);
  if (rc) {
    for (int i = 0; i < opened; i++) loop_close(&s->loops[i]);
    free(s->loops);
    free(s);
    return rc;
  }
  pthread_mutex_init(&s->q_mu, NULL);
  pthread_cond_init(&s->q_cv, NULL);
  s->n_workers = (int)(ncpu < 2 ? 2 : ncpu > 16 ? 16 : ncpu);
  s->workers = xcalloc((size_t)s->n_workers, sizeof(*s->workers));
  for (int i = 0; i < s->n_workers; i++) {
    pthread_create(&s->workers[i], NULL, worker_main, s);
    pthread_setname_np(s->workers[i], "baton-ingest");
  }
  for (int i = 0; i < s->n_loops; i++) {
    pthread_create(&s->loops[i].th, NULL, server_loop, &s->loops[i]);
    pthread_setname_np(s->loops[i].th, "baton-http");
  }
  struct jlog_line l;
  jlog_begin(&l, JLOG_INFO, "listening");
  jlog_str(&l, "host", deps->cfg->listen_host);
  jlog_i64(&l, "port", s->port);
  jlog_i64(&l, "max_connections", (int64_t)conn_limit * s->n_loops);
  jlog_i64(&l, "event_loops", s->n_loops);
  jlog_i64(&l, "workers", s->n_workers);
  jlog_end(&l);
  *out = s;
  return 0;
}

int server_port(struct baton_server *s) { return s->port; }

static void wake_loops(struct baton_server *s) {
  uint64_t one = 1;
  for (int i = 0; i < s->n_loops; i++)
    if (write(s->loops[i].efd, &one, sizeof(one)) < 0) { /* it wakes on its timeout anyway */ }
}

static int all_quiesced(struct baton_server *s) {
  for (int i = 0; i < s->n_loops; i++)
    if (!atomic_load(&s->loops[i].quiesced)) return 0;
  return 1;
}

void server_stop(struct baton_server *s, int drain_ms) {
  if (!s) return;
  atomic_store(&s->stopping, 1);
  wake_loops(s);
  for (int waited = 0; !all_quiesced(s) && waited < 5000; waited += 5) usleep(5000);
  for (int waited = 0; atomic_load(&s->active) > 0 && waited < drain_ms; waited += 10)
    usleep(10000);
  long left = atomic_load(&s->active);
  if (left) {
    struct jlog_line l;
    jlog_begin(&l, JLOG_WARN, "requests still open at shutdown");
    jlog_i64(&l, "count", left);
    jlog_end(&l);
  }
  /* A suspended connection must be resumed before libmicrohttpd stops: wait for what the
     workers, the log and admin threads still have (each ends within seconds). */
  for (int waited = 0; atomic_load(&s->working) > 0 && waited < 60000; waited += 10)
    usleep(10000);
  atomic_store(&s->loop_quit, 1);
  wake_loops(s);
  for (int i = 0; i < s->n_loops; i++) pthread_join(s->loops[i].th, NULL);
  pthread_mutex_lock(&s->q_mu);
  s->q_quit = 1;
  pthread_cond_broadcast(&s->q_cv);
  pthread_mutex_unlock(&s->q_mu);
  for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
  free(s->workers);
  for (int i = 0; i < s->n_loops; i++) {
    struct loop *lp = &s->loops[i];
    /* Answers finished after the loop stopped: resume them so libmicrohttpd can close them. */
    for (struct req *r = lp->done; r; r = r->next) MHD_resume_connection(r->conn);
    loop_close(lp);
  }
  free(s->loops);
  pthread_mutex_destroy(&s->q_mu);
  pthread_cond_destroy(&s->q_cv);
  free(s);
}

/*
 * Ingest load generator: talks HTTP/1.1 with keep-alive to a running
 * `baton serve` over N plain TCP connections (one thread, epoll) and measures
 * what the tracking API acknowledges. A 200 from Baton means the events are
 * fsynced in the event log, so every "acknowledged" figure here is durable.
 * It is a client only: bench/ingest/run.sh starts a server on a fresh data
 * directory and runs it.
 *
 * Modes (-m, comma-separated, run in order):
 *   batch      closed loop: every connection posts POST /v1/batch with -b
 *              events as fast as the answers come back, for -d seconds;
 *              prints events/s and requests/s acknowledged, errors by status
 *              and the latency of each request.
 *   lat-track  open loop: single-event POST /v1/track requests at -r events/s,
 *              sent on schedule whatever the server does; latency is measured
 *              from the scheduled send time (no coordinated omission), and
 *              every request due in the -d seconds is sent, also those still
 *              waiting for a connection when the time is up. Each
 *              request waits for an fsync, so it needs many connections (-C):
 *              requests/s <= connections / latency.
 *   lat-batch  open loop: POST /v1/batch of -b events at -r events/s.
 *   populate   closed loop like batch, but a fixed amount of work: every one of
 *              the -u customers once, whole customers per batch of at most -b
 *              events, in order; creates -u profiles with identity resolution
 *              (see "Customers" below); a request refused with 429 or 503
 *              (nothing stored) is sent again after its Retry-After, as an
 *              SDK does. Prints events/s acknowledged, from the first request
 *              to the last 200, and when the engine had applied them all.
 *   lookup     open loop: GET /v1/profiles/{id} at -r requests/s over -L
 *              connections for customers that populate created: by userId,
 *              ?by=anonymousId and ?by=email in turn; checks that each answer
 *              is the customer's profile. 404 counts as an error.
 * At the end it reads GET /v1/stats before and after and checks that the
 * server's durable_lsn and engine event count moved by exactly the number of
 * events acknowledged (no journeys are published during the run), and, after
 * populate or with -E, that the profile and merge counts moved as the
 * customers sent imply. A run of lookups only checks nothing there (another
 * client may be writing meanwhile).
 *
 * Customers: customer i (0 <= i < -u) has userId user-NNNNNNN, anonymousId
 * anon-NNNNNNN and email User-NNNNNNN@Example.com, and one of five histories
 * chosen by a hash of i and the seed (-S), as real traffic has them:
 *   known  35%  identify {userId, traits with email}, track {userId}
 *   login  30%  page {anonymousId}; identify {userId, anonymousId, email}
 *               (the anonymous profile becomes the user's); track {both}
 *   device 15%  track {userId}; page {anonymousId} (a second profile);
 *               identify {userId, anonymousId, email}: merged (one merge)
 *   anon   15%  page {anonymousId}: stays anonymous
 *   form    5%  identify {anonymousId, email} (a newsletter form); identify
 *               {userId, email}: merged by the email (one merge)
 * so populate leaves exactly one profile per customer and one merge per device
 * or form customer, whatever order the requests are applied in (a customer's
 * events travel in one request, and customers share no identity). The other
 * modes send track events of random customers under the identity the
 * customer's app would use (userId; userId and anonymousId for login
 * customers; anonymousId for anon customers), so after populate they create
 * no profiles.
 *
 * Events are realistic Segment events of about -s bytes: an event name,
 * properties and a context as analytics.js sends. Request bodies are built
 * before timing starts (a pool of 512 per mode, or with -E 262,144 single
 * events or 2,048 batches; every request for populate; 65,536 lookups).
 *
 *   bench_ingest -p PORT -k WRITE_KEY -a ADMIN_KEY [-m batch,lat-track,lat-batch]
 *                [-c conns (32)] [-C conns for lat-track (256)] [-L conns for
 *                lookup (64)] [-d seconds (8)] [-b events/batch (100)]
 *                [-r events/s, or lookups/s (20,000)] [-s event bytes]
 *                [-u customers (100,000)] [-S seed (1)] [-E] [-P server pid]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POOL 512
#define RBUF 16384
#define MAX_CONNS 1024

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "bench_ingest: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1dull;
}

/* ---- options ---- */

static struct {
  int port;
  const char *write_key, *admin_key, *modes;
  int conns, track_conns, lookup_conns, secs, batch, event_bytes, users, server_pid, existing;
  uint64_t seed;
  double rate;
} opt = {.modes = "batch,lat-track,lat-batch", .conns = 32, .track_conns = 256,
         .lookup_conns = 64, .secs = 8, .batch = 100, .event_bytes = 400, .users = 100000,
         .seed = 1, .rate = 20000};

/* ---- customers ---- */

enum history { H_KNOWN, H_LOGIN, H_DEVICE, H_ANON, H_FORM };

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ x >> 31;
}

/* Customer i's history: fixed by i and the seed (see the top of the file). */
static enum history history_of(uint32_t i) {
  unsigned h = (unsigned)(mix64(opt.seed * 0x9e3779b97f4a7c15ull + i) % 100);
  return h < 35 ? H_KNOWN : h < 65 ? H_LOGIN : h < 80 ? H_DEVICE : h < 95 ? H_ANON : H_FORM;
}

/* ---- request bodies ---- */

static const char *const names[] = {"Product Viewed", "Product Added",  "Page Viewed",
                                    "Cart Viewed",    "Order Completed", "Checkout Started",
                                    "Video Played",   "Signed Up",       "Coupon Applied"};

enum { E_TRACK, E_PAGE, E_IDENTIFY };
#define WITH_USER 1
#define WITH_ANON 2
#define WITH_EMAIL 4

/*
 * One event of customer i as analytics.js would send it, padded to about
 * event_bytes: a track, page or identify call carrying the customer's userId,
 * anonymousId and email trait as `with` says. with_type: inside a batch.
 */
static int event_json(char *out, size_t cap, int with_type, int type, uint32_t i, int with) {
  uint64_t r = rnd();
  static const char *const tname[] = {"track", "page", "identify"};
  int n = snprintf(out, cap, "{");
  if (with_type) n += snprintf(out + n, cap - (size_t)n, "\"type\":\"%s\",", tname[type]);
  if (with & WITH_USER) n += snprintf(out + n, cap - (size_t)n, "\"userId\":\"user-%07u\",", i);
  if (with & WITH_ANON)
    n += snprintf(out + n, cap - (size_t)n, "\"anonymousId\":\"anon-%07u\",", i);
  if (type == E_TRACK)
    n += snprintf(out + n, cap - (size_t)n,
                  "\"event\":\"%s\",\"properties\":{\"product_id\":\"sku-%05u\",\"price\":%u.%02u,"
                  "\"currency\":\"EUR\",\"quantity\":%u,\"category\":\"laptops\"},",
                  names[(r >> 20) % (sizeof(names) / sizeof(names[0]))],
                  (unsigned)(r >> 8 & 0xffff) % 50000, (unsigned)(r >> 24 & 0x3ff),
                  (unsigned)(r >> 34 & 63), (unsigned)(r >> 40 & 3) + 1);
  else if (type == E_PAGE)
    n += snprintf(out + n, cap - (size_t)n,
                  "\"name\":\"Laptops\",\"properties\":{\"path\":\"/shop/laptops\",\"title\":"
                  "\"Laptops\",\"referrer\":\"https://www.example.com/\"},");
  else {
    char em[48] = "";
    if (with & WITH_EMAIL) /* mixed case, as people type it; Baton compares lower-cased */
      snprintf(em, sizeof(em), "\"email\":\"User-%07u@Example.com\",", i);
    n += snprintf(out + n, cap - (size_t)n,
                  "\"traits\":{%s\"name\":\"Customer %u\",\"plan\":\"%s\",\"locale\":\"de-DE\"},",
                  em, i, (r >> 20 & 1) ? "pro" : "basic");
  }
  n += snprintf(out + n, cap - (size_t)n,
                "\"context\":{\"ip\":\"10.%u.%u.%u\",\"library\":{\"name\":\"analytics.js\","
                "\"version\":\"4.1.0\"},\"locale\":\"de-DE\",\"page\":{\"path\":\"/shop/laptops\"},"
                "\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
                (unsigned)(r >> 42 & 255), (unsigned)(r >> 50 & 255), (unsigned)(r >> 56 & 255));
  /* pad the user agent so the event is about event_bytes long */
  while (n < opt.event_bytes - 60 && (size_t)n < cap - 100) out[n++] = 'x';
  n += snprintf(out + n, cap - (size_t)n,
                "\"},\"timestamp\":\"2026-11-23T03:00:00.000Z\",\"sentAt\":\"2026-11-23T03:00:00"
                ".100Z\"}");
  return n;
}

/* A track event of a random customer, under the ids its app would send. */
static int random_event_json(char *out, size_t cap, int with_type) {
  uint32_t i = (uint32_t)(rnd() % (unsigned)opt.users);
  enum history h = history_of(i);
  int with = h == H_ANON ? WITH_ANON : h == H_LOGIN ? WITH_USER | WITH_ANON : WITH_USER;
  return event_json(out, cap, with_type, E_TRACK, i, with);
}

/* Customer i's whole history (see the top of the file) as batch items. */
static int customer_json(char *out, size_t cap, uint32_t i, int *n_events, int *n_merges) {
  struct {
    int type, with;
  } ev[3];
  int k = 0, m = 0;
  switch (history_of(i)) {
    case H_KNOWN:
      ev[k].type = E_IDENTIFY, ev[k++].with = WITH_USER | WITH_EMAIL;
      ev[k].type = E_TRACK, ev[k++].with = WITH_USER;
      break;
    case H_LOGIN:
      ev[k].type = E_PAGE, ev[k++].with = WITH_ANON;
      ev[k].type = E_IDENTIFY, ev[k++].with = WITH_USER | WITH_ANON | WITH_EMAIL;
      ev[k].type = E_TRACK, ev[k++].with = WITH_USER | WITH_ANON;
      break;
    case H_DEVICE:
      ev[k].type = E_TRACK, ev[k++].with = WITH_USER;
      ev[k].type = E_PAGE, ev[k++].with = WITH_ANON;
      ev[k].type = E_IDENTIFY, ev[k++].with = WITH_USER | WITH_ANON | WITH_EMAIL;
      m = 1;
      break;
    case H_ANON:
      ev[k].type = E_PAGE, ev[k++].with = WITH_ANON;
      break;
    case H_FORM:
      ev[k].type = E_IDENTIFY, ev[k++].with = WITH_ANON | WITH_EMAIL;
      ev[k].type = E_IDENTIFY, ev[k++].with = WITH_USER | WITH_EMAIL;
      m = 1;
      break;
  }
  int n = 0;
  for (int j = 0; j < k; j++) {
    if (j) out[n++] = ',';
    n += event_json(out + n, cap - (size_t)n, 1, ev[j].type, i, ev[j].with);
  }
  *n_events = k;
  *n_merges = m;
  return n;
}

struct req {
  char *data;
  size_t len;
  int events;    /* events in the body (0: a lookup) */
  int customers; /* populate: customers whose whole history is in the body */
  int merges;    /* populate: merges those customers cause */
  char expect[40]; /* lookup: the answer's body must contain this */
};

static char auth_b64[512];

static void b64(const char *in, char *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
    if (i + 1 < n) v |= (uint32_t)(unsigned char)in[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)in[i + 2];
    out[o++] = t[v >> 18 & 63];
    out[o++] = t[v >> 12 & 63];
    out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? t[v & 63] : '=';
  }
  out[o] = '\0';
}

static struct req post_req(const char *path, char *body, size_t n, int events) {
  struct req r;
  memset(&r, 0, sizeof(r));
  r.data = malloc(n + 512);
  r.len = (size_t)snprintf(r.data, n + 512,
                           "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                           path, auth_b64, n);
  memcpy(r.data + r.len, body, n);
  r.len += n;
  r.events = events;
  return r;
}

static struct req make_req(int batch_events) {
  size_t cap = (size_t)(batch_events ? batch_events : 1) * (size_t)(opt.event_bytes + 300) + 1024;
  char *body = malloc(cap);
  size_t n = 0;
  if (batch_events) {
    n += (size_t)snprintf(body, cap, "{\"batch\":[");
    for (int i = 0; i < batch_events; i++) {
      if (i) body[n++] = ',';
      n += (size_t)random_event_json(body + n, cap - n, 1);
    }
    n += (size_t)snprintf(body + n, cap - n, "]}");
  } else {
    n = (size_t)random_event_json(body, cap, 0);
  }
  struct req r = post_req(batch_events ? "/v1/batch" : "/v1/track", body, n,
                          batch_events ? batch_events : 1);
  free(body);
  return r;
}

/* populate: every customer once, whole customers per batch of at most opt.batch events. */
static struct req *make_populate(size_t *n_out) {
  size_t cap_reqs = (size_t)opt.users / 8 + 16, n_reqs = 0;
  struct req *reqs = malloc(cap_reqs * sizeof(*reqs));
  size_t cap = (size_t)(opt.batch + 3) * (size_t)(opt.event_bytes + 300) + 1024;
  char *body = malloc(cap), *cust = malloc(3 * (size_t)(opt.event_bytes + 300) + 1024);
  uint32_t i = 0;
  while (i < (uint32_t)opt.users) {
    size_t n = (size_t)snprintf(body, cap, "{\"batch\":[");
    int events = 0, customers = 0, merges = 0;
    while (i < (uint32_t)opt.users) {
      int ce, cm;
      size_t cn = (size_t)customer_json(cust, 3 * (size_t)(opt.event_bytes + 300) + 1024, i, &ce,
                                        &cm);
      if (events && events + ce > opt.batch) break;
      if (events) body[n++] = ',';
      memcpy(body + n, cust, cn);
      n += cn;
      events += ce, customers++, merges += cm, i++;
    }
    n += (size_t)snprintf(body + n, cap - n, "]}");
    if (n_reqs == cap_reqs) reqs = realloc(reqs, (cap_reqs *= 2) * sizeof(*reqs));
    reqs[n_reqs] = post_req("/v1/batch", body, n, events);
    reqs[n_reqs].customers = customers;
    reqs[n_reqs].merges = merges;
    n_reqs++;
  }
  free(body);
  free(cust);
  *n_out = n_reqs;
  return reqs;
}

/* lookup: GET /v1/profiles/{id} of random customers, by userId, anonymousId and email in turn. */
static struct req make_lookup(uint64_t k) {
  struct req r;
  memset(&r, 0, sizeof(r));
  uint32_t i = (uint32_t)(rnd() % (unsigned)opt.users);
  enum history h = history_of(i);
  char path[128];
  int by = (int)(k % 3);
  if (h == H_ANON) by = 1;                /* an anonymous customer has only its anonymousId */
  if (h == H_KNOWN && by == 1) by = 2;    /* a known one sent none */
  if (by == 0)
    snprintf(path, sizeof(path), "/v1/profiles/user-%07u", i);
  else if (by == 1)
    snprintf(path, sizeof(path), "/v1/profiles/anon-%07u?by=anonymousId", i);
  else
    snprintf(path, sizeof(path), "/v1/profiles/user-%07u@example.com?by=email", i);
  if (h == H_ANON)
    snprintf(r.expect, sizeof(r.expect), "\"key\":\"a:anon-%07u\"", i);
  else
    snprintf(r.expect, sizeof(r.expect), "\"userId\":\"user-%07u\"", i);
  r.data = malloc(512);
  r.len = (size_t)snprintf(r.data, 512,
                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
                           path, opt.admin_key);
  return r;
}

/* ---- connections ---- */

enum cstate { C_IDLE, C_BUSY };

struct conn {
  int fd;
  enum cstate st;
  const struct req *req;
  size_t sent;
  char rbuf[RBUF]; /* the response headers, then the first RBUF bytes of its body */
  size_t rlen;
  size_t hlen;     /* length of the headers once read, else 0 */
  size_t body_len; /* Content-Length of the response being read */
  size_t body_got; /* body bytes read so far (only the first ones are kept) */
  int64_t t0; /* scheduled (open loop) or actual (closed loop) send time */
  int status;      /* of the last response */
  int retry_after; /* its Retry-After, in seconds (0: none) */
};

struct stats {
  uint64_t ok_req, ok_events, sent_req;
  uint64_t ok_customers, ok_merges; /* populate */
  uint64_t wrong_profile;           /* lookup: a 200 with another customer's profile */
  uint64_t resent;                  /* populate: refused with 429 or 503 and sent again */
  uint64_t by_status[600];
  uint64_t io_errors;
  uint32_t *lat_us;
  size_t n_lat, cap_lat;
};

static int ep;
static struct conn conns[MAX_CONNS];

static int connect_one(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static void conn_open(int i) {
  struct conn *c = &conns[i];
  c->fd = connect_one();
  c->st = C_IDLE;
  c->rlen = c->hlen = c->body_len = c->body_got = 0;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev)) die("epoll_ctl");
}

static void conn_reset(int i, struct stats *s) {
  s->io_errors++;
  close(conns[i].fd);
  conn_open(i);
}

static void add_lat(struct stats *s, int64_t ns) {
  if (s->n_lat == s->cap_lat) {
    s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 65536;
    s->lat_us = realloc(s->lat_us, s->cap_lat * sizeof(*s->lat_us));
  }
  s->lat_us[s->n_lat++] = (uint32_t)(ns / 1000);
}

static void conn_send(int i, const struct req *r, int64_t t0, struct stats *s) {
  struct conn *c = &conns[i];
  c->st = C_BUSY;
  c->req = r;
  c->sent = 0;
  c->rlen = c->hlen = c->body_len = c->body_got = 0;
  c->t0 = t0;
  s->sent_req++;
  while (c->sent < r->len) {
    ssize_t n = send(c->fd, r->data + c->sent, r->len - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      return;
    }
    conn_reset(i, s);
    return;
  }
}

static void conn_more(int i, struct stats *s) {
  struct conn *c = &conns[i];
  while (c->st == C_BUSY && c->sent < c->req->len) {
    ssize_t n = send(c->fd, c->req->data + c->sent, c->req->len - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    conn_reset(i, s);
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/*
 * Reads what is there; returns 1 when a whole response was consumed, -1 when
 * the connection failed with a request in flight. Bodies of any length are
 * read, but only the headers and the body's first bytes are kept (a profile
 * can be larger than the buffer). One request is in flight per connection, so
 * nothing follows a response.
 */
static int conn_read(int i, struct stats *s, int64_t t) {
  struct conn *c = &conns[i];
  for (;;) {
    char sink[RBUF];
    int keep = c->rlen < RBUF - 1;
    char *dst = keep ? c->rbuf + c->rlen : sink;
    size_t room = keep ? RBUF - 1 - c->rlen : sizeof(sink);
    ssize_t n = recv(c->fd, dst, room, 0);
    if (n > 0) {
      if (keep) c->rlen += (size_t)n;
      if (c->hlen) c->body_got += (size_t)n;
      if (!c->hlen) {
        c->rbuf[c->rlen] = '\0';
        char *hend = strstr(c->rbuf, "\r\n\r\n");
        if (hend) {
          c->hlen = (size_t)(hend + 4 - c->rbuf);
          c->body_got = c->rlen - c->hlen;
          c->body_len = 0;
          for (char *p = c->rbuf; p < hend; p++)
            if (*p == '\n' && !strncasecmp(p + 1, "Content-Length:", 15)) {
              c->body_len = strtoul(p + 16, NULL, 10);
              break;
            }
        } else if (c->rlen >= RBUF - 1) {
          errno = EMSGSIZE; /* headers this long: not Baton */
          die("response headers");
        }
      }
      continue;
    }
    if (n < 0 && errno == EAGAIN) break;
    /* closed or failed: count it against the request in flight, if any */
    int busy = c->st == C_BUSY;
    conn_reset(i, s);
    return busy ? -1 : 0;
  }
  if (!c->hlen || c->body_got < c->body_len) return 0;
  c->rbuf[c->rlen] = '\0';
  int status = atoi(c->rbuf + 9);
  if (status < 0 || status >= 600) status = 599;
  s->by_status[status]++;
  if (status == 200) {
    s->ok_req++;
    s->ok_events += (uint64_t)c->req->events;
    s->ok_customers += (uint64_t)c->req->customers;
    s->ok_merges += (uint64_t)c->req->merges;
    if (c->req->expect[0] && !strstr(c->rbuf + c->hlen, c->req->expect)) s->wrong_profile++;
  }
  add_lat(s, t - c->t0);
  c->rbuf[c->hlen] = '\0';
  int close_after = strcasestr(c->rbuf, "\r\nConnection: close") != NULL;
  const char *ra = strcasestr(c->rbuf, "\r\nRetry-After:");
  c->status = status;
  c->retry_after = ra ? atoi(ra + 14) : 0;
  c->rlen = c->hlen = c->body_len = c->body_got = 0;
  c->st = C_IDLE;
  if (close_after) {
    close(c->fd);
    conn_open(i);
  }
  return 1;
}

/* ---- server-side figures ---- */

static long long json_num(const char *body, const char *key) {
  const char *p = strstr(body, key);
  return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* The server's latency histograms in GET /v1/stats (util/lathist.h): log.write, log.sync,
   ingest.ack, ingest.resume. */
#define HIST_BUCKETS 24
struct srv_hist {
  long long calls;
  double ms, max_ms;
  long long bucket[HIST_BUCKETS]; /* bucket i: calls under 2^i us */
};

struct srv_stats {
  long long durable_lsn, applied_lsn, events, profiles, merges;
  double engine_cpu_ms, checkpoint_ms, checkpoint_cpu_ms; /* engine thread CPU; checkpoints */
  struct srv_hist log_write, log_sync;                    /* the event log's write and fdatasync */
  struct srv_hist ack, resume; /* the server's own view of an acknowledgement's latency */
};

/* Reads "name":{"calls":..,"ms":..,"max_ms":..,"hist_us":[..]} from the stats body. */
static void parse_srv_hist(const char *body, const char *name, struct srv_hist *h) {
  memset(h, 0, sizeof(*h));
  char key[32];
  snprintf(key, sizeof(key), "\"%s\":{\"calls\":", name);
  const char *p = strstr(body, key);
  if (!p) return;
  h->calls = strtoll(p + strlen(key), NULL, 10);
  const char *q = strstr(p, "\"ms\":");
  if (q) h->ms = strtod(q + 5, NULL);
  q = strstr(p, "\"max_ms\":");
  if (q) h->max_ms = strtod(q + 9, NULL);
  q = strstr(p, "\"hist_us\":[");
  if (!q) return;
  q += 11;
  for (int i = 0; i < HIST_BUCKETS && *q && *q != ']'; i++) {
    char *end;
    h->bucket[i] = strtoll(q, &end, 10);
    q = *end == ',' ? end + 1 : end;
  }
}

/* The upper bound, in ms, of the bucket holding quantile p of the calls in a - b. */
static double hist_pct_ms(const struct srv_hist *a, const struct srv_hist *b, double p) {
  long long n = a->calls - b->calls, seen = 0;
  if (n <= 0) return 0;
  long long want = (long long)(p * (double)n + 0.5);
  if (want < 1) want = 1;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    seen += a->bucket[i] - b->bucket[i];
    if (seen >= want) return (double)(1LL << i) / 1000.0;
  }
  return (double)(1LL << (HIST_BUCKETS - 1)) / 1000.0;
}

/* Calls in a - b that took at least lo_us (a power of two). */
static long long hist_at_least(const struct srv_hist *a, const struct srv_hist *b, long long lo_us) {
  long long n = 0;
  for (int i = 0; i < HIST_BUCKETS; i++)
    if ((1LL << i) > lo_us) n += a->bucket[i] - b->bucket[i];
  return n;
}

static int get_stats(struct srv_stats *out) {
  int fd = connect_one();
  fcntl(fd, F_SETFL, 0);
  char req[512], buf[8192];
  int n = snprintf(req, sizeof(req),
                   "GET /v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                   "Connection: close\r\n\r\n",
                   opt.admin_key);
  if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) die("send stats");
  size_t len = 0;
  ssize_t k;
  while ((k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0) len += (size_t)k;
  buf[len] = '\0';
  close(fd);
  if (atoi(buf + 9) != 200) {
    fprintf(stderr, "bench_ingest: GET /v1/stats: %.80s\n", buf);
    return -1;
  }
  out->durable_lsn = json_num(buf, "\"durable_lsn\":");
  out->applied_lsn = json_num(buf, "\"applied_lsn\":");
  out->events = json_num(buf, "\"events\":");
  out->profiles = json_num(buf, "\"profiles\":");
  out->merges = json_num(buf, "\"merges\":");
  const char *c = strstr(buf, "\"cpu_ms\":");
  out->engine_cpu_ms = c ? strtod(c + 9, NULL) : 0;
  c = strstr(buf, "\"checkpoint_ms\":");
  out->checkpoint_ms = c ? strtod(c + 16, NULL) : 0;
  c = strstr(buf, "\"checkpoint_cpu_ms\":");
  out->checkpoint_cpu_ms = c ? strtod(c + 20, NULL) : 0;
  parse_srv_hist(buf, "write", &out->log_write);
  parse_srv_hist(buf, "sync", &out->log_sync);
  parse_srv_hist(buf, "ack", &out->ack);
  parse_srv_hist(buf, "resume", &out->resume);
  return 0;
}

static double server_cpu_s(void) {
  if (!opt.server_pid) return 0;
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", opt.server_pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  /* fields after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  return 0;
}

/* Bytes the server caused to be written to storage so far (/proc/PID/io). */
static double server_write_mb(void) {
  if (!opt.server_pid) return 0;
  char path[64], line[128];
  snprintf(path, sizeof(path), "/proc/%d/io", opt.server_pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  unsigned long long v = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "write_bytes: %llu", &v) == 1) break;
  fclose(f);
  return (double)v / 1e6;
}

static double self_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- one mode ---- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const struct stats *s, double p) {
  if (!s->n_lat) return 0;
  size_t i = (size_t)(p * (double)(s->n_lat - 1) + 0.5);
  return s->lat_us[i] / 1000.0;
}

static uint64_t total_acked, total_customers, total_merges;
static int sent_events;

/*
 * Runs one mode over pool[0..n_pool). once: sends every request of the pool
 * once, in order, and stops when all are answered (populate); otherwise sends
 * for opt.secs seconds, going round the pool. open_rate 0: closed loop (each
 * connection sends again as soon as it is answered); otherwise requests are
 * due at open_rate per second and wait in a queue for a free connection, their
 * latency counting from when they were due.
 */
static void run_mode(const char *label, const char *what, struct req *pool, size_t n_pool,
                     int once, double open_rate, int n_conns) {
  int saved_conns = opt.conns;
  opt.conns = n_conns;
  size_t body_bytes = 0;
  uint64_t pool_events = 0;
  for (size_t i = 0; i < n_pool; i++) body_bytes += pool[i].len, pool_events += (uint64_t)pool[i].events;
  int is_lookup = pool_events == 0;
  if (!is_lookup) sent_events = 1;
  struct stats s;
  memset(&s, 0, sizeof(s));
  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int i = 0; i < opt.conns; i++) conn_open(i);
  double srv0 = server_cpu_s(), cli0 = self_cpu_s(), wr0 = server_write_mb();
  struct srv_stats st0;
  if (get_stats(&st0)) exit(1);
  int64_t t_start = now_ns();
  int64_t t_end = t_start + (once ? 3600 : opt.secs) * (int64_t)1000000000;
  uint64_t next_req = 0;      /* open loop: index of the next due request */
  /* Open loop: every request due within the run is sent, those still queued for a connection
     when the time is up too (their latency counting from when they were due); dropping them
     would leave out exactly the requests a slow server made wait longest. */
  uint64_t n_due = open_rate > 0 ? (uint64_t)((double)opt.secs * open_rate) : 0;
  uint64_t pool_i = 0;
  int in_flight = 0;
  uint64_t backlog_max = 0;
  int64_t t_stop = 0; /* when sending stopped */
  int n_late = 0;     /* answers that came more than 10 s after t_stop */
  int64_t late_max = 0;
  /* once: requests refused with 429 or 503 (nothing stored) are sent again
     after their Retry-After, as an SDK does: a FIFO of pool indexes, due in
     order since Retry-After does not change. */
  size_t *retry = once ? malloc(n_pool * sizeof(*retry)) : NULL, r_head = 0, r_tail = 0;
  int64_t *retry_due = once ? malloc(n_pool * sizeof(*retry_due)) : NULL;
  struct epoll_event evs[256];
  for (;;) {
    int64_t t = now_ns();
    int sending = once ? pool_i < n_pool || r_head < r_tail
                  : open_rate > 0 ? next_req < n_due : t < t_end;
    if (!sending && in_flight == 0) break;
    if (sending) t_stop = 0;
    else if (!t_stop) t_stop = t;
    /* Answers that have not come 60 s after the end are lost (the server's
       connection timeout is 120 s); those after 10 s are reported as late. */
    if (!sending && t > t_stop + 60 * (int64_t)1000000000) break;
    /* Hand work to idle connections. */
    for (int i = 0; i < opt.conns && sending; i++) {
      if (conns[i].st != C_IDLE) continue;
      if (once) {
        if (r_head < r_tail && retry_due[r_head % n_pool] <= t)
          conn_send(i, &pool[retry[r_head++ % n_pool]], t, &s);
        else if (pool_i < n_pool)
          conn_send(i, &pool[pool_i++], t, &s);
        else
          break;
      } else if (open_rate > 0) {
        int64_t due = t_start + (int64_t)((double)next_req * 1e9 / open_rate);
        if (due > t || next_req >= n_due) break;
        conn_send(i, &pool[pool_i++ % n_pool], due, &s);
        next_req++;
      } else {
        conn_send(i, &pool[pool_i++ % n_pool], t, &s);
      }
      in_flight++;
    }
    if (open_rate > 0 && sending) {
      uint64_t due_now = (uint64_t)((double)(t - t_start) * open_rate / 1e9);
      if (due_now > n_due) due_now = n_due;
      if (due_now > next_req && due_now - next_req > backlog_max) backlog_max = due_now - next_req;
    }
    int timeout = 1;
    if (open_rate <= 0) timeout = 100;
    int n = epoll_wait(ep, evs, 256, timeout);
    int64_t tr = now_ns();
    for (int k = 0; k < n; k++) {
      int i = (int)evs[k].data.u32;
      if (evs[k].events & EPOLLOUT) conn_more(i, &s);
      if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int r = conn_read(i, &s, tr);
        if (r != 0) in_flight--;
        if (r == 1 && t_stop && tr - t_stop > 10 * (int64_t)1000000000) {
          n_late++;
          late_max = tr - t_stop;
        }
        if (r == 1 && once && (conns[i].status == 429 || conns[i].status == 503)) {
          s.by_status[conns[i].status]--;
          s.resent++;
          retry[r_tail % n_pool] = (size_t)(conns[i].req - pool);
          retry_due[r_tail++ % n_pool] =
              tr + (int64_t)(conns[i].retry_after ? conns[i].retry_after : 1) * 1000000000;
        }
      }
    }
  }
  free(retry);
  free(retry_due);
  double wall = (double)(now_ns() - t_start) / 1e9;
  int unanswered = in_flight;
  double srv_cpu = server_cpu_s() - srv0, cli_cpu = self_cpu_s() - cli0;
  double wr_mb = server_write_mb() - wr0;
  struct srv_stats st_end;
  int have_end = !is_lookup && !get_stats(&st_end);
  for (int i = 0; i < opt.conns; i++) close(conns[i].fd);
  close(ep);
  qsort(s.lat_us, s.n_lat, sizeof(*s.lat_us), cmp_u32);
  total_acked += s.ok_events;
  total_customers += s.ok_customers;
  total_merges += s.ok_merges;
  uint64_t units = is_lookup ? s.ok_req : s.ok_events;
  printf("%-9s %s, %d conns, %.1f s", label, what, opt.conns, wall);
  if (once) printf(", %zu requests once", n_pool);
  if (!is_lookup && pool_events > n_pool)
    printf(", %.1f events/request", (double)pool_events / (double)n_pool);
  printf(", ~%zu bytes/request", body_bytes / n_pool);
  if (open_rate > 0)
    printf(", offered %.0f requests/s (%.0f %s/s)", open_rate,
           is_lookup ? open_rate : open_rate * (double)pool_events / (double)n_pool,
           is_lookup ? "lookups" : "events");
  if (is_lookup)
    printf("\n  answered 200: %llu requests = %.0f requests/s (%llu with another customer's"
           " profile)\n",
           (unsigned long long)s.ok_req, (double)s.ok_req / wall,
           (unsigned long long)s.wrong_profile);
  else
    printf("\n  acknowledged (200, durable): %llu events = %.0f events/s, %llu requests = %.0f"
           " requests/s\n",
           (unsigned long long)s.ok_events, (double)s.ok_events / wall,
           (unsigned long long)s.ok_req, (double)s.ok_req / wall);
  if (s.ok_customers)
    printf("  customers acknowledged: %llu (%llu merges expected)\n",
           (unsigned long long)s.ok_customers, (unsigned long long)s.ok_merges);
  if (once && s.ok_events) {
    /* A 200 means durable, not applied: how long until the engine has applied it all? */
    struct srv_stats st1;
    while (!get_stats(&st1) && st1.applied_lsn < st1.durable_lsn && now_ns() - t_start < 3600e9)
      usleep(20000);
    double applied_wall = (double)(now_ns() - t_start) / 1e9;
    printf("  engine: applied everything %.1f s after the last acknowledgement: %.0f events/s"
           " from the first request to the last applied\n",
           applied_wall - wall, (double)s.ok_events / applied_wall);
    long long applied = st1.applied_lsn - st0.applied_lsn;
    if (applied > 0 && st1.engine_cpu_ms > 0)
      printf("  engine thread: %.2f us CPU per record applied (%.1f s); checkpoint writer: %.2f us"
             " CPU per record (%.1f s CPU, %.1f s wall)\n",
             (st1.engine_cpu_ms - st0.engine_cpu_ms) * 1e3 / (double)applied,
             (st1.engine_cpu_ms - st0.engine_cpu_ms) / 1e3,
             (st1.checkpoint_cpu_ms - st0.checkpoint_cpu_ms) * 1e3 / (double)applied,
             (st1.checkpoint_cpu_ms - st0.checkpoint_cpu_ms) / 1e3,
             (st1.checkpoint_ms - st0.checkpoint_ms) / 1e3);
  }
  if (s.resent)
    printf("  refused with 429 or 503 (busy; nothing stored) and sent again after Retry-After:"
           " %llu requests\n",
           (unsigned long long)s.resent);
  printf("  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%zu samples)\n", pct(&s, 0.5),
         pct(&s, 0.9), pct(&s, 0.99), s.n_lat ? s.lat_us[s.n_lat - 1] / 1000.0 : 0.0, s.n_lat);
  printf("  errors:");
  int any = 0;
  uint64_t n_err = 0;
  for (int st = 0; st < 600; st++)
    if (st != 200 && s.by_status[st]) {
      printf(" %d x%llu", st, (unsigned long long)s.by_status[st]);
      n_err += s.by_status[st];
      any = 1;
    }
  if (s.wrong_profile) {
    printf(" wrong-profile x%llu", (unsigned long long)s.wrong_profile);
    n_err += s.wrong_profile;
    any = 1;
  }
  if (s.io_errors) {
    printf(" connection-errors x%llu", (unsigned long long)s.io_errors);
    n_err += s.io_errors;
    any = 1;
  }
  if (n_late) {
    printf(" LATE x%d (answered more than 10 s after the end of sending, the last %.1f s after)",
           n_late, (double)late_max / 1e9);
    any = 1;
  }
  if (unanswered) {
    /* Durable already? Then the answer, not the fsync, is what got lost. */
    struct srv_stats st1;
    long long durable = get_stats(&st1) ? -1 : st1.durable_lsn - st0.durable_lsn;
    printf(" UNANSWERED x%d (no response 60 s after the end; by then the server's durable_lsn"
           " had moved by %lld against %llu events acknowledged here)",
           unanswered, durable, (unsigned long long)s.ok_events);
    any = 1;
  }
  if (open_rate > 0 && backlog_max)
    printf("%s (open loop fell behind by up to %llu requests)", any ? "" : " none",
           (unsigned long long)backlog_max), any = 1;
  if (!any) printf(" none");
  printf("\n  CPU: server %.2f s (%.0f%% of one core; %.1f us per %s), this client"
         " %.2f s, over %.1f s wall\n",
         srv_cpu, 100.0 * srv_cpu / wall, units ? srv_cpu * 1e6 / (double)units : 0.0,
         is_lookup ? "answered lookup" : "acknowledged event", cli_cpu, wall);
  if (opt.server_pid && !is_lookup)
    printf("  disk: server wrote %.0f MB (%.0f bytes per acknowledged event; log, store and"
           " checkpoints)\n",
           wr_mb, s.ok_events ? wr_mb * 1e6 / (double)s.ok_events : 0.0);
  if (have_end && st_end.log_sync.calls > st0.log_sync.calls) {
    /* What the disk added to each acknowledgement: the group commit's write and fdatasync. */
    const struct srv_hist *w1 = &st_end.log_write, *w0 = &st0.log_write;
    const struct srv_hist *f1 = &st_end.log_sync, *f0 = &st0.log_sync;
    long long nf = f1->calls - f0->calls, nw = w1->calls - w0->calls;
    printf("  event log: %lld fdatasyncs (%.0f/s), p50 < %.3g p99 < %.3g ms, %lld took 8 ms or"
           " more, %.1f s in all; %lld writes, p99 < %.3g ms, %lld took 8 ms or more\n",
           nf, (double)nf / wall, hist_pct_ms(f1, f0, 0.5), hist_pct_ms(f1, f0, 0.99),
           hist_at_least(f1, f0, 8192), (f1->ms - f0->ms) / 1e3, nw, hist_pct_ms(w1, w0, 0.99),
           hist_at_least(w1, w0, 8192));
    const struct srv_hist *a1 = &st_end.ack, *a0 = &st0.ack, *r1 = &st_end.resume, *r0 = &st0.resume;
    printf("  server's view: headers in to 200 queued p50 < %.3g p90 < %.3g p99 < %.3g ms; durable to"
           " 200 queued p99 < %.3g ms\n",
           hist_pct_ms(a1, a0, 0.5), hist_pct_ms(a1, a0, 0.9), hist_pct_ms(a1, a0, 0.99),
           hist_pct_ms(r1, r0, 0.99));
    printf("  event log fdatasyncs of 4 ms or more, by duration:");
    for (int i = 13; i < HIST_BUCKETS; i++)
      if (f1->bucket[i] - f0->bucket[i])
        printf(" %g-%g ms x%lld", (double)(1LL << (i - 1)) / 1000.0, (double)(1LL << i) / 1000.0,
               f1->bucket[i] - f0->bucket[i]);
    printf("\n");
  }
  /* one line for scripts (run.sh issue3) */
  printf("summary %s rate=%.0f p50=%.2f p90=%.2f p99=%.2f max=%.2f errors=%llu unanswered=%d late=%d"
         " behind=%llu cpu_us=%.1f cpu_pct=%.0f resent=%llu\n",
         label, (double)units / wall, pct(&s, 0.5), pct(&s, 0.9), pct(&s, 0.99),
         s.n_lat ? s.lat_us[s.n_lat - 1] / 1000.0 : 0.0, (unsigned long long)n_err, unanswered, n_late,
         (unsigned long long)backlog_max, units ? srv_cpu * 1e6 / (double)units : 0.0,
         100.0 * srv_cpu / wall, (unsigned long long)s.resent);
  fflush(stdout);
  free(s.lat_us);
  opt.conns = saved_conns;
}

static void free_pool(struct req *pool, size_t n) {
  for (size_t i = 0; i < n; i++) free(pool[i].data);
  free(pool);
}

/*
 * Runs a mode over a pool of requests built by make_req: POOL of them, or with
 * -E (customers populated before) enough to spread over many customers as real
 * traffic does (262,144 single events: at 20,000/s none repeats within 13 s,
 * longer than checkpoints are apart, so each checkpoint has as many changed
 * customers as random traffic over a large base gives it; 2,048 batches,
 * 204,800 events).
 */
static void run_pool(const char *label, int batch_events, double open_rate, int n_conns) {
  size_t n = !opt.existing ? POOL : batch_events ? 2048 : 262144;
  struct req *pool = malloc(n * sizeof(*pool));
  for (size_t i = 0; i < n; i++) pool[i] = make_req(batch_events);
  char what[64];
  if (batch_events)
    snprintf(what, sizeof(what), "POST /v1/batch of %d events", batch_events);
  else
    snprintf(what, sizeof(what), "POST /v1/track");
  run_mode(label, what, pool, n, 0, open_rate, n_conns);
  free_pool(pool, n);
}

int main(int argc, char **argv) {
  int c;
  while ((c = getopt(argc, argv, "p:k:a:m:c:C:L:d:b:r:s:u:S:EP:h")) != -1) {
    switch (c) {
      case 'p': opt.port = atoi(optarg); break;
      case 'k': opt.write_key = optarg; break;
      case 'a': opt.admin_key = optarg; break;
      case 'm': opt.modes = optarg; break;
      case 'c': opt.conns = atoi(optarg); break;
      case 'C': opt.track_conns = atoi(optarg); break;
      case 'L': opt.lookup_conns = atoi(optarg); break;
      case 'd': opt.secs = atoi(optarg); break;
      case 'b': opt.batch = atoi(optarg); break;
      case 'r': opt.rate = atof(optarg); break;
      case 's': opt.event_bytes = atoi(optarg); break;
      case 'u': opt.users = atoi(optarg); break;
      case 'S': opt.seed = strtoull(optarg, NULL, 10); break;
      case 'E': opt.existing = 1; break;
      case 'P': opt.server_pid = atoi(optarg); break;
      default:
        fprintf(stderr,
                "usage: bench_ingest -p PORT -k WRITE_KEY -a ADMIN_KEY\n"
                "  [-m batch,lat-track,lat-batch,populate,lookup] [-c conns] [-C conns for"
                " lat-track]\n  [-L conns for lookup] [-d seconds] [-b events/batch]\n"
                "  [-r events/s or lookups/s (open loop)] [-s event bytes] [-u customers]\n"
                "  [-S seed] [-E (customers populated before: expect no new profiles)]"
                " [-P server pid]\n");
        return c == 'h' ? 0 : 2;
    }
  }
  if (!opt.port || !opt.write_key || !opt.admin_key || opt.conns < 1 || opt.conns > MAX_CONNS ||
      opt.track_conns < 1 || opt.track_conns > MAX_CONNS || opt.lookup_conns < 1 ||
      opt.lookup_conns > MAX_CONNS || opt.batch < 3 || opt.users < 1 || opt.users > 10000000)
    return 2;
  char user[300];
  snprintf(user, sizeof(user), "%s:", opt.write_key);
  b64(user, auth_b64);
  struct srv_stats before, after;
  if (get_stats(&before)) return 1;
  int populated = 0;
  char *modes = strdup(opt.modes), *save = NULL;
  for (char *m = strtok_r(modes, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
    if (!strcmp(m, "batch")) {
      run_pool("batch", opt.batch, 0, opt.conns);
    } else if (!strcmp(m, "lat-track")) {
      run_pool("lat-track", 0, opt.rate, opt.track_conns);
    } else if (!strcmp(m, "lat-batch")) {
      run_pool("lat-batch", opt.batch, opt.rate / opt.batch, opt.conns);
    } else if (!strcmp(m, "populate")) {
      size_t n;
      int64_t t0 = now_ns();
      struct req *pool = make_populate(&n);
      fprintf(stderr, "bench_ingest: populate: %d customers in %zu requests built in %.1f s\n",
              opt.users, n, (double)(now_ns() - t0) / 1e9);
      run_mode("populate", "POST /v1/batch, whole customers", pool, n, 1, 0, opt.conns);
      free_pool(pool, n);
      populated = 1;
    } else if (!strcmp(m, "lookup")) {
      size_t n = 65536;
      struct req *pool = malloc(n * sizeof(*pool));
      for (size_t i = 0; i < n; i++) pool[i] = make_lookup(i);
      run_mode("lookup", "GET /v1/profiles/{id} (userId, ?by=anonymousId, ?by=email)", pool, n,
               0, opt.rate, opt.lookup_conns);
      free_pool(pool, n);
    } else {
      fprintf(stderr, "bench_ingest: unknown mode '%s'\n", m);
      return 2;
    }
  }
  free(modes);
  if (!sent_events) {
    printf("verify: lookups only: nothing to check against the server's counters\n");
    return 0;
  }
  /* The engine applies asynchronously: give it a moment to catch up. */
  int64_t until = now_ns() + 60 * (int64_t)1000000000;
  do {
    if (get_stats(&after)) return 1;
    if (after.applied_lsn >= after.durable_lsn) break;
    usleep(100000);
  } while (now_ns() < until);
  long long d_lsn = after.durable_lsn - before.durable_lsn, d_ev = after.events - before.events;
  int ok = d_lsn == (long long)total_acked && d_ev == (long long)total_acked;
  printf("verify: acknowledged %llu events; server durable_lsn moved by %lld, engine events by "
         "%lld (applied_lsn %lld of %lld): %s\n",
         (unsigned long long)total_acked, d_lsn, d_ev, after.applied_lsn, after.durable_lsn,
         ok ? "match" : "MISMATCH");
  if (populated || opt.existing) {
    long long d_prof = after.profiles - before.profiles, d_merge = after.merges - before.merges;
    int ok2 = d_prof == (long long)total_customers && d_merge == (long long)total_merges;
    printf("verify: customers acknowledged %llu, merges expected %llu; server profiles moved by"
           " %lld (now %lld), merges by %lld (now %lld): %s\n",
           (unsigned long long)total_customers, (unsigned long long)total_merges, d_prof,
           after.profiles, d_merge, after.merges, ok2 ? "match" : "MISMATCH");
    ok = ok && ok2;
  }
  return ok ? 0 : 3;
}

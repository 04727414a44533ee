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
 *              from the scheduled send time (no coordinated omission). Each
 *              request waits for an fsync, so it needs many connections (-C):
 *              requests/s <= connections / latency.
 *   lat-batch  open loop: POST /v1/batch of -b events at -r events/s.
 * At the end it reads GET /v1/stats before and after and checks that the
 * server's durable_lsn and engine event count moved by exactly the number of
 * events acknowledged (no journeys are published during the run).
 *
 * Events are realistic Segment track events of about -s bytes: a userId out
 * of -u users, an event name, properties and a context as analytics.js sends.
 * Request bodies are built before timing starts (a pool of 512 per mode).
 *
 *   bench_ingest -p PORT -k WRITE_KEY -a ADMIN_KEY [-m batch,lat-track,lat-batch]
 *                [-c conns (32)] [-C conns for lat-track (256)] [-d seconds (8)]
 *                [-b events/batch (100)] [-r events/s (20,000)]
 *                [-s event bytes] [-u users] [-P server pid (CPU use)]
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
  int conns, track_conns, secs, batch, event_bytes, users, server_pid;
  double rate;
} opt = {.modes = "batch,lat-track,lat-batch", .conns = 32, .track_conns = 256, .secs = 8,
         .batch = 100, .event_bytes = 400, .users = 100000, .rate = 20000};

/* ---- request bodies ---- */

static const char *const names[] = {"Product Viewed", "Product Added",  "Page Viewed",
                                    "Cart Viewed",    "Order Completed", "Checkout Started",
                                    "Video Played",   "Signed Up",       "Coupon Applied"};

/* One track event as analytics.js would send it, padded to about event_bytes. */
static int event_json(char *out, size_t cap, int with_type) {
  uint64_t r = rnd();
  int n = snprintf(out, cap,
                   "{%s\"userId\":\"user-%06u\",\"event\":\"%s\",\"properties\":{\"product_id\":"
                   "\"sku-%05u\",\"price\":%u.%02u,\"currency\":\"EUR\",\"quantity\":%u,"
                   "\"category\":\"laptops\"},\"context\":{\"ip\":\"10.%u.%u.%u\",\"library\":"
                   "{\"name\":\"analytics.js\",\"version\":\"4.1.0\"},\"locale\":\"de-DE\","
                   "\"page\":{\"path\":\"/shop/laptops\"},\"userAgent\":\"Mozilla/5.0 (X11; "
                   "Linux x86_64) Chrome/120.0",
                   with_type ? "\"type\":\"track\"," : "", (unsigned)(r % (unsigned)opt.users),
                   names[(r >> 20) % (sizeof(names) / sizeof(names[0]))],
                   (unsigned)(r >> 8 & 0xffff) % 50000, (unsigned)(r >> 24 & 0x3ff),
                   (unsigned)(r >> 34 & 63), (unsigned)(r >> 40 & 3) + 1, (unsigned)(r >> 42 & 255),
                   (unsigned)(r >> 50 & 255), (unsigned)(r >> 56 & 255));
  /* pad the user agent so the event is about event_bytes long */
  while (n < opt.event_bytes - 60 && (size_t)n < cap - 100) out[n++] = 'x';
  n += snprintf(out + n, cap - (size_t)n,
                "\"},\"timestamp\":\"2026-11-23T03:00:00.000Z\",\"sentAt\":\"2026-11-23T03:00:00"
                ".100Z\"}");
  return n;
}

struct req {
  char *data;
  size_t len;
  int events;
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

static struct req make_req(int batch_events) {
  size_t cap = (size_t)(batch_events ? batch_events : 1) * (size_t)(opt.event_bytes + 200) + 1024;
  char *body = malloc(cap);
  size_t n = 0;
  if (batch_events) {
    n += (size_t)snprintf(body, cap, "{\"batch\":[");
    for (int i = 0; i < batch_events; i++) {
      if (i) body[n++] = ',';
      n += (size_t)event_json(body + n, cap - n, 1);
    }
    n += (size_t)snprintf(body + n, cap - n, "]}");
  } else {
    n = (size_t)event_json(body, cap, 0);
  }
  struct req r;
  r.data = malloc(n + 512);
  r.len = (size_t)snprintf(r.data, n + 512,
                           "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                           batch_events ? "/v1/batch" : "/v1/track", auth_b64, n);
  memcpy(r.data + r.len, body, n);
  r.len += n;
  r.events = batch_events ? batch_events : 1;
  free(body);
  return r;
}

/* ---- connections ---- */

enum cstate { C_IDLE, C_BUSY };

struct conn {
  int fd;
  enum cstate st;
  const struct req *req;
  size_t sent;
  char rbuf[RBUF];
  size_t rlen;
  int64_t t0; /* scheduled (open loop) or actual (closed loop) send time */
};

struct stats {
  uint64_t ok_req, ok_events, sent_req;
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
  c->rlen = 0;
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
  c->rlen = 0;
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

/* Reads what is there; returns 1 when a whole response was consumed. */
static int conn_read(int i, struct stats *s, int64_t t) {
  struct conn *c = &conns[i];
  for (;;) {
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - 1 - c->rlen, 0);
    if (n > 0) {
      c->rlen += (size_t)n;
      if (c->rlen >= RBUF - 1) break;
      continue;
    }
    if (n < 0 && errno == EAGAIN) break;
    /* closed or failed: count it against the request in flight, if any */
    int busy = c->st == C_BUSY;
    conn_reset(i, s);
    return busy ? -1 : 0;
  }
  c->rbuf[c->rlen] = '\0';
  char *hend = strstr(c->rbuf, "\r\n\r\n");
  if (!hend) return 0;
  size_t clen = 0;
  for (char *p = c->rbuf; p < hend; p++) {
    if ((*p == '\n') && !strncasecmp(p + 1, "Content-Length:", 15)) {
      clen = strtoul(p + 16, NULL, 10);
      break;
    }
  }
  size_t total = (size_t)(hend + 4 - c->rbuf) + clen;
  if (c->rlen < total) return 0;
  int status = atoi(c->rbuf + 9);
  if (status < 0 || status >= 600) status = 599;
  s->by_status[status]++;
  if (status == 200) {
    s->ok_req++;
    s->ok_events += (uint64_t)c->req->events;
  }
  add_lat(s, t - c->t0);
  int close_after = strcasestr(c->rbuf, "\r\nConnection: close") != NULL;
  memmove(c->rbuf, c->rbuf + total, c->rlen - total);
  c->rlen -= total;
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

struct srv_stats {
  long long durable_lsn, applied_lsn, events;
};

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

static uint64_t total_acked;

/*
 * Runs one mode for opt.secs seconds. open_rate 0: closed loop (each
 * connection sends again as soon as it is answered); otherwise requests are
 * due at open_rate per second and wait in a queue for a free connection, their
 * latency counting from when they were due.
 */
static void run_mode(const char *label, int batch_events, double open_rate, int n_conns) {
  int saved_conns = opt.conns;
  opt.conns = n_conns;
  struct req *pool = malloc(POOL * sizeof(*pool));
  for (int i = 0; i < POOL; i++) pool[i] = make_req(batch_events);
  size_t body_bytes = 0;
  for (int i = 0; i < POOL; i++) body_bytes += pool[i].len;
  struct stats s;
  memset(&s, 0, sizeof(s));
  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int i = 0; i < opt.conns; i++) conn_open(i);
  double srv0 = server_cpu_s(), cli0 = self_cpu_s(), wr0 = server_write_mb();
  struct srv_stats st0;
  if (get_stats(&st0)) exit(1);
  int64_t t_start = now_ns(), t_end = t_start + (int64_t)opt.secs * 1000000000;
  uint64_t next_req = 0;      /* open loop: index of the next due request */
  uint64_t pool_i = 0;
  int in_flight = 0;
  int64_t last_due = t_start; /* open loop: due time of the oldest request not yet sent */
  uint64_t backlog_max = 0;
  struct epoll_event evs[256];
  for (;;) {
    int64_t t = now_ns();
    int sending = t < t_end;
    if (!sending && in_flight == 0) break;
    if (t > t_end + 10 * (int64_t)1000000000) break; /* answers lost: give up waiting */
    /* Hand work to idle connections. */
    for (int i = 0; i < opt.conns && sending; i++) {
      if (conns[i].st != C_IDLE) continue;
      if (open_rate > 0) {
        int64_t due = t_start + (int64_t)((double)next_req * 1e9 / open_rate);
        if (due > t) break;
        last_due = due;
        conn_send(i, &pool[pool_i++ % POOL], due, &s);
        next_req++;
      } else {
        conn_send(i, &pool[pool_i++ % POOL], t, &s);
      }
      in_flight++;
    }
    if (open_rate > 0 && sending) {
      uint64_t due_now = (uint64_t)((double)(t - t_start) * open_rate / 1e9);
      if (due_now > next_req && due_now - next_req > backlog_max) backlog_max = due_now - next_req;
    }
    (void)last_due;
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
      }
    }
  }
  double wall = (double)(now_ns() - t_start) / 1e9;
  int unanswered = in_flight;
  double srv_cpu = server_cpu_s() - srv0, cli_cpu = self_cpu_s() - cli0;
  double wr_mb = server_write_mb() - wr0;
  for (int i = 0; i < opt.conns; i++) close(conns[i].fd);
  close(ep);
  qsort(s.lat_us, s.n_lat, sizeof(*s.lat_us), cmp_u32);
  total_acked += s.ok_events;
  printf("%-9s %s, %d conns, %d s", label,
         batch_events ? "POST /v1/batch" : "POST /v1/track", opt.conns, opt.secs);
  if (batch_events) printf(", %d events/request", batch_events);
  printf(", ~%zu bytes/request", body_bytes / POOL);
  if (open_rate > 0) printf(", offered %.0f requests/s (%.0f events/s)", open_rate,
                            open_rate * (batch_events ? batch_events : 1));
  printf("\n  acknowledged (200, durable): %llu events = %.0f events/s, %llu requests = %.0f"
         " requests/s\n",
         (unsigned long long)s.ok_events, (double)s.ok_events / wall,
         (unsigned long long)s.ok_req, (double)s.ok_req / wall);
  printf("  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%zu samples)\n", pct(&s, 0.5),
         pct(&s, 0.9), pct(&s, 0.99), s.n_lat ? s.lat_us[s.n_lat - 1] / 1000.0 : 0.0, s.n_lat);
  printf("  errors:");
  int any = 0;
  for (int st = 0; st < 600; st++)
    if (st != 200 && s.by_status[st]) {
      printf(" %d x%llu", st, (unsigned long long)s.by_status[st]);
      any = 1;
    }
  if (s.io_errors) {
    printf(" connection-errors x%llu", (unsigned long long)s.io_errors);
    any = 1;
  }
  if (unanswered) {
    /* Durable already? Then the answer, not the fsync, is what got lost. */
    struct srv_stats st1;
    long long durable = get_stats(&st1) ? -1 : st1.durable_lsn - st0.durable_lsn;
    printf(" UNANSWERED x%d (no response 10 s after the end; by then the server's durable_lsn"
           " had moved by %lld against %llu events acknowledged here)",
           unanswered, durable, (unsigned long long)s.ok_events);
    any = 1;
  }
  if (open_rate > 0 && backlog_max)
    printf("%s (open loop fell behind by up to %llu requests)", any ? "" : " none",
           (unsigned long long)backlog_max), any = 1;
  if (!any) printf(" none");
  printf("\n  CPU: server %.2f s (%.0f%% of one core; %.1f us per acknowledged event), this client"
         " %.2f s, over %.1f s wall\n",
         srv_cpu, 100.0 * srv_cpu / wall, s.ok_events ? srv_cpu * 1e6 / (double)s.ok_events : 0.0,
         cli_cpu, wall);
  if (opt.server_pid)
    printf("  disk: server wrote %.0f MB (%.0f bytes per acknowledged event; log, store and"
           " checkpoints)\n",
           wr_mb, s.ok_events ? wr_mb * 1e6 / (double)s.ok_events : 0.0);
  fflush(stdout);
  for (int i = 0; i < POOL; i++) free(pool[i].data);
  free(pool);
  free(s.lat_us);
  opt.conns = saved_conns;
}

int main(int argc, char **argv) {
  int c;
  while ((c = getopt(argc, argv, "p:k:a:m:c:C:d:b:r:s:u:P:h")) != -1) {
    switch (c) {
      case 'p': opt.port = atoi(optarg); break;
      case 'k': opt.write_key = optarg; break;
      case 'a': opt.admin_key = optarg; break;
      case 'm': opt.modes = optarg; break;
      case 'c': opt.conns = atoi(optarg); break;
      case 'C': opt.track_conns = atoi(optarg); break;
      case 'd': opt.secs = atoi(optarg); break;
      case 'b': opt.batch = atoi(optarg); break;
      case 'r': opt.rate = atof(optarg); break;
      case 's': opt.event_bytes = atoi(optarg); break;
      case 'u': opt.users = atoi(optarg); break;
      case 'P': opt.server_pid = atoi(optarg); break;
      default:
        fprintf(stderr,
                "usage: bench_ingest -p PORT -k WRITE_KEY -a ADMIN_KEY [-m batch,lat-track,"
                "lat-batch]\n  [-c conns] [-C conns for lat-track] [-d seconds]\n  [-b events/batch] [-r events/s (open "
                "loop)] [-s event bytes] [-u users] [-P server pid]\n");
        return c == 'h' ? 0 : 2;
    }
  }
  if (!opt.port || !opt.write_key || !opt.admin_key || opt.conns < 1 || opt.conns > MAX_CONNS ||
      opt.track_conns < 1 || opt.track_conns > MAX_CONNS ||
      opt.batch < 1)
    return 2;
  char user[300];
  snprintf(user, sizeof(user), "%s:", opt.write_key);
  b64(user, auth_b64);
  struct srv_stats before, after;
  if (get_stats(&before)) return 1;
  char *modes = strdup(opt.modes), *save = NULL;
  for (char *m = strtok_r(modes, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
    if (!strcmp(m, "batch")) run_mode("batch", opt.batch, 0, opt.conns);
    else if (!strcmp(m, "lat-track")) run_mode("lat-track", 0, opt.rate, opt.track_conns);
    else if (!strcmp(m, "lat-batch")) run_mode("lat-batch", opt.batch, opt.rate / opt.batch, opt.conns);
    else {
      fprintf(stderr, "bench_ingest: unknown mode '%s'\n", m);
      return 2;
    }
  }
  free(modes);
  /* The engine applies asynchronously: give it a moment to catch up. */
  int64_t until = now_ns() + 20 * (int64_t)1000000000;
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
  return ok ? 0 : 3;
}

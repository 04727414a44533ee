/*
 * Engine apply benchmark: how many event-log records one engine thread
 * applies per second. It is a client of lib/engine only (no log, no store, no
 * HTTP): each run opens a fresh engine with engine_open (log and store NULL,
 * a sink that counts and frees messages), applies 10 REC_JOURNEY publish
 * records, then times engine_apply over a few million pre-encoded REC_EVENT
 * records on this one thread. Encoding is done once, before any timing.
 *
 * The events: a track/identify mix over 100,000 users (uniform), normalised
 * Segment JSON of about 400-500 bytes each (what lib/ingest writes to the
 * log), received_ms advancing at a fixed log-time rate so that journey waits
 * (30 s to 4 min) fire during the run and webhook messages are produced.
 * A fixed share of track events carry one of the 10 trigger event names.
 *
 * Each run opens a fresh engine and reports two timed passes over the events:
 * cold (profiles are created and their rings of recent events fill, so the
 * heap grows) and warm (after untimed passes have filled every ring: steady
 * state). Rates are given per wall-clock second and per second of the
 * thread's CPU time (the machine is shared; the latter is steadier).
 *
 *   scripts/build.sh build && build/bench/engine/bench_engine
 *   build/bench/engine/bench_engine -n 1000000 -u 100000 -r 3 -t 0.05 -i 0.15
 *   bench/engine/profile.sh   (perf profile of the warm pass only)
 *
 *   -n events (1,000,000)  -u users (100,000)  -r runs, each on a fresh engine (3)
 *   -t share of track events that trigger a journey (0.05)
 *   -i share of identify events (0.15)  -k recent events kept per profile (20,
 *   the server default)  -s log-time events per second (10,000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channels/outbox.h"
#include "engine/engine.h"
#include "engine/record.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"

#define N_JOURNEYS 10

static const char *const trigger_names[N_JOURNEYS] = {
    "Signed Up",       "Cart Abandoned",    "Order Completed", "Trial Started",
    "Plan Upgraded",   "Subscription Ended", "Support Ticket Opened", "Payment Failed",
    "Survey Answered", "Technician En Route"};

static const char *const plain_names[] = {
    "Page Viewed",   "Product Viewed", "Product Added",  "Products Searched", "Video Played",
    "Link Clicked",  "Form Submitted", "Coupon Applied", "Checkout Started",  "Product Removed"};

struct sink_counts {
  uint64_t messages;
  uint64_t body_bytes;
};

static void count_sink(void *arg, struct outmsg *m) {
  struct sink_counts *c = arg;
  c->messages++;
  c->body_bytes += m->body_len;
  outmsg_free(m);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64*: fast, deterministic */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}
static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* Journey i: trigger_names[i]; wait, webhook, wait, webhook (some end with an exit step). */
static void journey_yaml(struct buf *b, int i) {
  static const char *const waits[] = {"30s", "1m", "90s", "2m", "4m"};
  buf_printf(b,
             "id: bench-%02d\n"
             "name: Benchmark journey %d\n"
             "trigger:\n  event: %s\n"
             "reentry: %s\n"
             "steps:\n"
             "  - id: first-wait\n    type: wait\n    duration: %s\n"
             "  - id: first-hook\n    type: webhook\n    url: http://127.0.0.1:9/hooks/%d/a\n"
             "    headers:\n      X-Source: baton\n"
             "  - id: second-wait\n    type: wait\n    duration: %s\n"
             "  - id: second-hook\n    type: webhook\n    url: http://127.0.0.1:9/hooks/%d/b\n",
             i, i, trigger_names[i], i % 2 ? "never" : "after_exit", waits[i % 5], i,
             waits[(i + 2) % 5], i);
  if (i % 3 == 0) buf_puts(b, "  - id: done\n    type: exit\n");
}

/* Builds the normalised JSON of one event the way lib/ingest would store it. */
static void event_json(struct buf *j, int kind, const char *uid, const char *name,
                       const char *mid, const char *ts, uint64_t r) {
  buf_clear(j);
  if (kind == EV_TRACK) {
    buf_printf(j,
               "{\"userId\":\"%s\",\"event\":\"%s\",\"properties\":{\"product_id\":\"sku-%05u\","
               "\"price\":%u.%02u,\"currency\":\"EUR\",\"quantity\":%u,\"category\":\"laptops\"},",
               uid, name, (unsigned)(r % 50000), (unsigned)(r % 2000), (unsigned)(r % 100),
               (unsigned)(r % 4 + 1));
  } else {
    buf_printf(j,
               "{\"userId\":\"%s\",\"traits\":{\"email\":\"%s@example.com\",\"plan\":\"%s\","
               "\"first_name\":\"Ada\",\"logins\":%u,\"country\":\"DE\"},",
               uid, uid, r % 3 ? "pro" : "free", (unsigned)(r % 1000));
  }
  buf_printf(j,
             "\"context\":{\"ip\":\"10.%u.%u.%u\",\"library\":{\"name\":\"analytics.js\","
             "\"version\":\"4.1.0\"},\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) "
             "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\",\"locale\":"
             "\"de-DE\",\"page\":{\"path\":\"/shop/laptops\"}},\"type\":\"%s\",\"timestamp\":\"%s\",\"receivedAt\":\"%s\","
             "\"messageId\":\"%s\"}",
             (unsigned)(r >> 8 & 255), (unsigned)(r >> 16 & 255), (unsigned)(r >> 24 & 255),
             event_kind_name(kind), ts, ts, mid);
}

struct workload {
  struct buf data;   /* concatenated REC_EVENT records */
  size_t *off;       /* n + 1 offsets */
  size_t n;
  size_t n_track, n_identify, n_trigger;
  struct buf journeys; /* concatenated REC_JOURNEY records */
  size_t joff[N_JOURNEYS + 1];
  int64_t t0_ms;
  int64_t span_ms; /* log time covered by the events */
};

static void build_workload(struct workload *w, size_t n, unsigned users, double trig_share,
                           double ident_share, double log_rate) {
  memset(w, 0, sizeof(*w));
  buf_init(&w->data, 0);
  buf_init(&w->journeys, 0);
  w->n = n;
  w->off = xmalloc((n + 1) * sizeof(*w->off));
  w->t0_ms = 1795000000000LL; /* a fixed date: runs are reproducible */
  struct buf y;
  buf_init(&y, 0);
  for (int i = 0; i < N_JOURNEYS; i++) {
    buf_clear(&y);
    journey_yaml(&y, i);
    char id[16];
    snprintf(id, sizeof(id), "bench-%02d", i);
    struct rec_journey jr = {.op = JOP_PUBLISH, .time_ms = w->t0_ms,
                             .id = {id, (uint32_t)strlen(id)},
                             .source = {y.ptr, (uint32_t)y.len}};
    w->joff[i] = w->journeys.len;
    rec_journey_encode(&w->journeys, &jr);
  }
  w->joff[N_JOURNEYS] = w->journeys.len;
  buf_release(&y);
  struct buf j;
  buf_init(&j, 0);
  for (size_t i = 0; i < n; i++) {
    uint64_t r = rnd();
    char uid[24], mid[48], ts[32];
    snprintf(uid, sizeof(uid), "user-%06u", (unsigned)(r % users));
    /* "b" and two characters naming the pass (rewritten per pass: the engine
       drops a repeated (source, messageId) as a client's retry) */
    snprintf(mid, sizeof(mid), "b00-%016llx-%zu", (unsigned long long)(r >> 3), i);
    int64_t now = w->t0_ms + 1 + (int64_t)((double)i * 1000.0 / log_rate);
    clock_format_ms(now, ts);
    int kind = rnd01() < ident_share ? EV_IDENTIFY : EV_TRACK;
    const char *name = "";
    if (kind == EV_TRACK) {
      w->n_track++;
      if (rnd01() < trig_share) {
        name = trigger_names[rnd() % N_JOURNEYS];
        w->n_trigger++;
      } else {
        name = plain_names[rnd() % ARRAY_SIZE(plain_names)];
      }
    } else {
      w->n_identify++;
    }
    event_json(&j, kind, uid, name, mid, ts, rnd());
    struct rec_event ev = {.kind = (uint8_t)kind, .received_ms = now, .timestamp_ms = now,
                           .user_id = {uid, (uint32_t)strlen(uid)},
                           .anonymous_id = {"", 0},
                           .message_id = {mid, (uint32_t)strlen(mid)},
                           .name = {name, (uint32_t)strlen(name)},
                           .source = {"web", 3},
                           .json = {j.ptr, (uint32_t)j.len}};
    w->off[i] = w->data.len;
    rec_event_encode(&w->data, &ev);
  }
  w->off[n] = w->data.len;
  w->span_ms = (int64_t)((double)n * 1000.0 / log_rate) + 1;
  buf_release(&j);
}

struct pass_result {
  double rate;          /* events/s over the whole pass (wall clock) */
  double cpu_rate;      /* events per second of this thread's CPU time */
  double chunk_rate[4]; /* events/s over each quarter of the pass */
};

struct run_result {
  struct pass_result cold, warm;
  int warmup_passes;
  struct engine_stats st;
  struct sink_counts sink;
  uint64_t entered;
};

static void perf_ctl(const char *cmd);

/* Where the messageId's bytes start in an encoded REC_EVENT (see record.h). */
static size_t mid_offset(const char *r) {
  size_t at = 18; /* u8 type, u8 kind, i64 received, i64 timestamp */
  for (int i = 0; i < 2; i++) { /* user_id, anonymous_id */
    uint32_t n;
    memcpy(&n, r + at, 4);
    at += 4 + n;
  }
  return at + 4;
}

/* Moves every event of w forward in log time by shift_ms and gives it the
   messageId of pass number pass (outside any timing). */
static void shift_time(struct workload *w, int64_t shift_ms, unsigned pass) {
  static const char code[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (size_t i = 0; i < w->n; i++) {
    char *r = w->data.ptr + w->off[i]; /* u8 type, u8 kind, i64 received, i64 timestamp */
    int64_t t;
    memcpy(&t, r + 2, 8);
    t += shift_ms;
    memcpy(r + 2, &t, 8);
    memcpy(&t, r + 10, 8);
    t += shift_ms;
    memcpy(r + 10, &t, 8);
    char *mid = r + mid_offset(r);
    mid[1] = code[pass / 62 % 62];
    mid[2] = code[pass % 62];
  }
}

/* CPU time of this thread: on a shared machine, wall-clock rates fall when
   others run; the CPU-time rate shows what the engine itself costs. */
static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void apply_pass(struct engine *e, struct workload *w, uint64_t *lsn, int timed,
                       struct pass_result *pr) {
  size_t q = w->n / 4;
  if (timed) perf_ctl("enable\n");
  int64_t c0 = thread_cpu_ns();
  int64_t t0 = clock_mono_ns(), tq = t0;
  for (size_t i = 0; i < w->n; i++) {
    if (engine_apply(e, (*lsn)++, w->data.ptr + w->off[i], w->off[i + 1] - w->off[i])) {
      fprintf(stderr, "bench_engine: event record %zu refused\n", i);
      exit(1);
    }
    if (pr && q && (i + 1) % q == 0 && (i + 1) / q <= 4) {
      int64_t t = clock_mono_ns();
      pr->chunk_rate[(i + 1) / q - 1] = (double)q / ((double)(t - tq) / 1e9);
      tq = t;
    }
  }
  double secs = (double)(clock_mono_ns() - t0) / 1e9;
  double cpu = (double)(thread_cpu_ns() - c0) / 1e9;
  if (timed) perf_ctl("disable\n");
  if (pr) {
    pr->rate = (double)w->n / secs;
    pr->cpu_rate = (double)w->n / cpu;
  }
}

/*
 * One run on a fresh engine: a cold pass (every profile is created, the
 * per-profile rings of recent events grow: the heap grows with them), untimed
 * passes until every ring could be full, then a warm pass (steady state: the
 * heap no longer grows). Each later pass is the same events moved forward in
 * log time with new messageIds, so timers fire, journeys are re-entered where
 * allowed, and no event is dropped as a duplicate.
 */
static void one_run(struct workload *w, size_t recent, unsigned users, int which,
                    struct run_result *res) {
  memset(res, 0, sizeof(*res));
  struct engine_options eo = {.sink = count_sink, .sink_arg = &res->sink,
                              .recent_events = recent};
  struct engine *e;
  if (engine_open(&eo, &e)) {
    fprintf(stderr, "bench_engine: engine_open failed\n");
    exit(1);
  }
  uint64_t lsn = 1;
  for (int i = 0; i < N_JOURNEYS; i++) {
    if (engine_apply(e, lsn++, w->journeys.ptr + w->joff[i], w->joff[i + 1] - w->joff[i])) {
      fprintf(stderr, "bench_engine: journey record %d refused\n", i);
      exit(1);
    }
  }
  int64_t span = w->span_ms + 1000;
  int64_t shifted = 0;
  unsigned pass = 0;
  apply_pass(e, w, &lsn, which & 1, &res->cold);
  size_t applied = w->n;
  while (applied < (size_t)users * (recent ? recent : 1)) {
    shift_time(w, span, ++pass);
    shifted += span;
    apply_pass(e, w, &lsn, 0, NULL);
    applied += w->n;
    res->warmup_passes++;
  }
  shift_time(w, span, ++pass);
  shifted += span;
  apply_pass(e, w, &lsn, which & 2, &res->warm);
  shift_time(w, -shifted, 0); /* the next run starts from the same records */
  engine_get_stats(e, &res->st);
  /* Entries per journey version are only exposed in the JSON view: sum them. */
  struct buf b;
  buf_init(&b, 0);
  engine_journeys_json(e, &b);
  for (const char *p = b.ptr; p && (p = strstr(p, "\"entered\":")); p += 10)
    res->entered += strtoull(p + 10, NULL, 10);
  buf_release(&b);
  engine_close(e);
}

/* Under `perf record --control fd:N -D -1` (env PERF_CTL_FD=N), profile only
   the timed loop: bench/engine/profile.sh does this. */
static void perf_ctl(const char *cmd) {
  const char *fd = getenv("PERF_CTL_FD");
  if (fd && write(atoi(fd), cmd, strlen(cmd)) < 0) perror("bench_engine: PERF_CTL_FD");
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t n = 1000000, recent = 20;
  unsigned users = 100000;
  int runs = 3;
  double trig = 0.05, ident = 0.15, log_rate = 10000;
  int c;
  while ((c = getopt(argc, argv, "n:u:r:t:i:k:s:h")) != -1) {
    switch (c) {
      case 'n': n = strtoull(optarg, NULL, 10); break;
      case 'u': users = (unsigned)strtoul(optarg, NULL, 10); break;
      case 'r': runs = atoi(optarg); break;
      case 't': trig = atof(optarg); break;
      case 'i': ident = atof(optarg); break;
      case 'k': recent = strtoull(optarg, NULL, 10); break;
      case 's': log_rate = atof(optarg); break;
      default:
        fprintf(stderr, "usage: bench_engine [-n events] [-u users] [-r runs] [-t trigger share]"
                        " [-i identify share] [-k recent events] [-s log events/s]\n");
        return c == 'h' ? 0 : 2;
    }
  }
  if (n < 4 || users < 1 || runs < 1) return 2;
  int64_t g0 = clock_mono_ns();
  struct workload w;
  build_workload(&w, n, users, trig, ident, log_rate);
  printf("workload: %zu events (%zu track, %zu identify, %zu trigger a journey) over %u users,"
         " %d journeys,\n          %.0f bytes/record on average, %.1f s of log time; "
         "encoded in %.1f s; recent_events %zu\n",
         w.n, w.n_track, w.n_identify, w.n_trigger, users, N_JOURNEYS,
         (double)w.data.len / (double)w.n, (double)w.n / log_rate,
         (double)(clock_mono_ns() - g0) / 1e9, recent);
  const char *prof = getenv("BENCH_PROFILE"); /* "cold" or "warm": which pass perf sees */
  int which = !prof ? 0 : !strcmp(prof, "cold") ? 1 : 2;
  double *cold = xmalloc((size_t)runs * sizeof(*cold)), *warm = xmalloc((size_t)runs * sizeof(*warm));
  double *cold_cpu = xmalloc((size_t)runs * sizeof(*cold)), *warm_cpu = xmalloc((size_t)runs * sizeof(*warm));
  for (int r = 0; r < runs; r++) {
    struct run_result res;
    one_run(&w, recent, users, which, &res);
    cold[r] = res.cold.rate;
    warm[r] = res.warm.rate;
    cold_cpu[r] = res.cold.cpu_rate;
    warm_cpu[r] = res.warm.cpu_rate;
    printf("run %d: cold %9.0f events/s %6.0f ns/event, %9.0f per CPU-s (quarters %.0f %.0f %.0f"
           " %.0f)\n"
           "       warm %9.0f events/s %6.0f ns/event, %9.0f per CPU-s (quarters %.0f %.0f %.0f"
           " %.0f), after %d untimed pass(es)\n"
           "       profiles %llu, events %llu, journeys entered %llu, active runs %llu, "
           "timers %llu, messages %llu (sink %llu, %.0f bytes avg)\n",
           r + 1, cold[r], 1e9 / cold[r], res.cold.cpu_rate, res.cold.chunk_rate[0], res.cold.chunk_rate[1],
           res.cold.chunk_rate[2], res.cold.chunk_rate[3], warm[r], 1e9 / warm[r],
           res.warm.cpu_rate,
           res.warm.chunk_rate[0], res.warm.chunk_rate[1], res.warm.chunk_rate[2],
           res.warm.chunk_rate[3], res.warmup_passes, (unsigned long long)res.st.profiles,
           (unsigned long long)res.st.events, (unsigned long long)res.entered,
           (unsigned long long)res.st.active_runs, (unsigned long long)res.st.timers,
           (unsigned long long)res.st.messages, (unsigned long long)res.sink.messages,
           res.sink.messages ? (double)res.sink.body_bytes / (double)res.sink.messages : 0.0);
    fflush(stdout);
  }
  qsort(cold, (size_t)runs, sizeof(*cold), cmp_d);
  qsort(warm, (size_t)runs, sizeof(*warm), cmp_d);
  qsort(cold_cpu, (size_t)runs, sizeof(*cold), cmp_d);
  qsort(warm_cpu, (size_t)runs, sizeof(*warm), cmp_d);
  printf("engine apply, cold (new profiles): median %.0f events/s wall (min %.0f, max %.0f), "
         "%.0f per CPU-s (min %.0f, max %.0f), %d runs\n",
         cold[runs / 2], cold[0], cold[runs - 1], cold_cpu[runs / 2], cold_cpu[0],
         cold_cpu[runs - 1], runs);
  printf("engine apply, warm (steady state): median %.0f events/s wall (min %.0f, max %.0f), "
         "%.0f per CPU-s (min %.0f, max %.0f), %d runs\n",
         warm[runs / 2], warm[0], warm[runs - 1], warm_cpu[runs / 2], warm_cpu[0],
         warm_cpu[runs - 1], runs);
  printf("target 500000 events/s on one core, warm: %s by wall clock, %s per CPU-second\n",
         warm[runs / 2] >= 500000 ? "met" : "missed",
         warm_cpu[runs / 2] >= 500000 ? "met" : "missed");
  free(cold_cpu);
  free(warm_cpu);
  free(cold);
  free(warm);
  buf_release(&w.data);
  buf_release(&w.journeys);
  free(w.off);
  return 0;
}

/*
 * segment_parse on its own: the CPU cost per event of validating and
 * normalising a /v1/batch body of 100 track events (~440 bytes each, the
 * bodies bench_ingest sends), single thread, no HTTP and no log. It isolates
 * the HTTP workers' biggest cost in the ingest benchmark, so changes to
 * lib/ingest can be measured without the noise of a loaded machine.
 *
 * cJSON's nodes come from the parsing thread's arena (util/jarena.h), as in
 * the server; -m parses with malloc and free instead, for comparison.
 *
 *   build/bench/ingest/bench_parse [-n batches (20000)] [-r runs (5)] [-m]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest/segment.h"
#include "util/buf.h"
#include "util/jarena.h"
#include "util/clock.h"

static int64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  int batches = 20000, runs = 5, use_malloc = 0, c;
  while ((c = getopt(argc, argv, "n:r:m")) != -1) {
    if (c == 'n') batches = atoi(optarg);
    else if (c == 'r') runs = atoi(optarg);
    else if (c == 'm') use_malloc = 1;
    else return 2;
  }
  if (!use_malloc) jarena_install();
  struct buf body;
  buf_init(&body, 0);
  buf_puts(&body, "{\"batch\":[");
  for (int i = 0; i < 100; i++) {
    if (i) buf_putc(&body, ',');
    buf_printf(&body,
               "{\"type\":\"track\",\"userId\":\"user-%06d\",\"event\":\"Product Viewed\","
               "\"properties\":{\"product_id\":\"sku-%05d\",\"price\":%d.%02d,\"currency\":\"EUR\","
               "\"quantity\":%d,\"category\":\"laptops\"},\"context\":{\"ip\":\"10.1.%d.%d\","
               "\"library\":{\"name\":\"analytics.js\",\"version\":\"4.1.0\"},\"locale\":\"de-DE\","
               "\"page\":{\"path\":\"/shop/laptops\"},\"userAgent\":\"Mozilla/5.0 (X11; Linux "
               "x86_64) Chrome/120.0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},\"timestamp\":"
               "\"2026-11-23T03:00:00.000Z\",\"sentAt\":\"2026-11-23T03:00:00.100Z\"}",
               i * 977 % 100000, i * 31 % 50000, i % 2000, i % 100, i % 4 + 1, i % 256, i * 7 % 256);
  }
  buf_puts(&body, "]}");
  struct segment_limits lim = {.max_event_bytes = 32 * 1024, .max_batch_events = 2500};
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  printf("segment_parse: %d batches of 100 events, %zu bytes/body, cJSON nodes from %s\n", batches,
         body.len, use_malloc ? "malloc" : "the thread's arena");
  for (int r = 0; r < runs; r++) {
    int64_t t0 = cpu_ns();
    size_t bytes = 0;
    for (int i = 0; i < batches; i++) {
      if (segment_parse(body.ptr, body.len, SEG_BATCH, &lim, 1795000000000LL + i, "bench",
                        (uint64_t)i, &out, &err)) {
        fprintf(stderr, "bench_parse: %s\n", err.msg);
        return 1;
      }
      bytes += out.data.len;
    }
    double ns = (double)(cpu_ns() - t0) / (batches * 100.0);
    printf("run %d: %.2f us/event (CPU), %.0f events/s per core, %zu record bytes/event\n", r + 1,
           ns / 1000, 1e9 / ns, bytes / ((size_t)batches * 100));
  }
  segment_out_release(&out);
  buf_release(&body);
  return 0;
}

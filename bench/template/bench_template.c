/*
 * Renders-per-second benchmark for lib/template: compiles each template once
 * (as publishing does), then renders it with the same data for about
 * BENCH_SECONDS (default 1) and prints one line per template:
 *   <name> <renders/s> <µs/render> <output bytes>
 * Usage: bench_template DATA.json NAME=TEMPLATE.liquid...
 * With BENCH_OUT=DIR set, each template's output is written to DIR/NAME.baton.
 * The tracked-link callback mirrors the one bench.mjs gives liquidjs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"
#include "util/buf.h"
#include "util/clock.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "bench_template: cannot open %s\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) exit(1);
  p[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return p;
}

static int track(void *ud, const char *url, size_t len, const char *label, struct buf *out) {
  (void)ud;
  return buf_printf(out, "https://t.example.com/c/%s?u=%.*s", label, (int)len, url);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_template DATA.json NAME=TEMPLATE.liquid...\n");
    return 2;
  }
  double seconds = getenv("BENCH_SECONDS") ? atof(getenv("BENCH_SECONDS")) : 1.0;
  size_t dlen;
  char *dtext = slurp(argv[1], &dlen);
  cJSON *vars = cJSON_Parse(dtext);
  if (!vars) return 1;
  for (int i = 2; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) continue;
    *eq = 0;
    size_t len;
    char *src = slurp(eq + 1, &len);
    struct baton_template *t;
    struct template_error err;
    if (baton_template_compile(src, len, NULL, &t, &err)) {
      char msg[512];
      fprintf(stderr, "%s\n", baton_template_error_format(&err, msg, sizeof(msg)));
      return 1;
    }
    struct template_env env = {.vars = vars, .track_link = track, .time_zone = "Europe/London"};
    struct buf out;
    buf_init(&out, 1 << 20);
    long n = 0;
    int64_t start = clock_mono_ns(), end = start + (int64_t)(seconds * 1e9), now;
    do {
      for (int k = 0; k < 100; k++) {
        buf_clear(&out);
        if (baton_template_render(t, &env, &out, &err)) return 1;
      }
      n += 100;
      now = clock_mono_ns();
    } while (now < end);
    double el = (double)(now - start) / 1e9;
    printf("%s %.0f %.2f %zu\n", argv[i], n / el, el / n * 1e6, out.len);
    if (getenv("BENCH_OUT")) { /* run.sh checks both engines produced the same bytes */
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s.baton", getenv("BENCH_OUT"), argv[i]);
      FILE *f = fopen(path, "wb");
      if (f) fwrite(out.ptr, 1, out.len, f), fclose(f);
    }
    buf_release(&out);
    baton_template_free(t);
    free(src);
  }
  cJSON_Delete(vars);
  free(dtext);
  return 0;
}

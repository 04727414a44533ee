/*
 * `baton render`: renders one Liquid template with a JSON object as its
 * top-level variables and prints the output exactly, with no newline added.
 * A thin user of lib/template; content blocks for {% render %} come from a
 * folder (--blocks DIR: DIR/<name>.liquid).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "template/template.h"
#include "util/buf.h"
#include "util/common.h"

#define RENDER_MAX_INPUT (64u << 20)

static void render_usage(FILE *out) {
  fprintf(out,
          "usage: baton render TEMPLATE_FILE|- [--data-json FILE] [options]\n\n"
          "Renders a Liquid template and prints the result on stdout exactly (no newline\n"
          "is added). The JSON object in FILE gives the top-level variables (profile,\n"
          "event, journey, message, offer, ...). An invalid template exits with status 1\n"
          "and prints the error with its line and column on stderr.\n\n"
          "Options:\n"
          "  --data-json FILE    JSON object of top-level variables ('-' for stdin)\n"
          "  --strict            reject unknown top-level variables and filters, as\n"
          "                      publishing does (allowed: profile, event, journey,\n"
          "                      message, offer, and names given with --global)\n"
          "  --global NAME       allow NAME as a top-level variable in strict mode\n"
          "  --escape-html       HTML-escape output, as for email bodies\n"
          "  --time-zone ZONE    zone for the date filter (e.g. Europe/Paris)\n"
          "  --max-output BYTES  output cap (default 1048576)\n"
          "  --blocks DIR        content blocks for render/include: DIR/<name>.liquid\n"
          "  -h, --help          show this help\n");
}

static int read_all(const char *path, struct buf *b) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    fprintf(stderr, "baton render: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  char tmp[65536];
  size_t n;
  int rc = 0;
  while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
    if (buf_append(b, tmp, n)) {
      fprintf(stderr, "baton render: %s is too big\n", path);
      rc = -1;
      break;
    }
  if (ferror(f)) {
    fprintf(stderr, "baton render: cannot read %s: %s\n", path, strerror(errno));
    rc = -1;
  }
  if (f != stdin) fclose(f);
  return rc;
}

struct blocks {
  const char *dir;
  struct baton_template *loaded[256];
  char *names[256];
  size_t n;
  bool strict, escape;
};

static int lookup_block(void *ud, const char *name, size_t len, const struct baton_template **out) {
  struct blocks *bl = ud;
  for (size_t i = 0; i < bl->n; i++)
    if (strlen(bl->names[i]) == len && !memcmp(bl->names[i], name, len)) {
      *out = bl->loaded[i];
      return 0;
    }
  if (!bl->dir || bl->n == ARRAY_SIZE(bl->loaded) || memchr(name, '/', len) || memchr(name, 0, len) ||
      (len >= 2 && name[0] == '.'))
    return BATON_ENOENT;
  char path[4096];
  snprintf(path, sizeof(path), "%s/%.*s.liquid", bl->dir, (int)len, name);
  struct buf src;
  buf_init(&src, 1u << 20);
  FILE *f = fopen(path, "rb");
  if (!f) return BATON_ENOENT;
  char tmp[8192];
  size_t n;
  int rc = 0;
  while (!rc && (n = fread(tmp, 1, sizeof(tmp), f)) > 0) rc = buf_append(&src, tmp, n);
  fclose(f);
  struct baton_template *t = NULL;
  struct template_error err;
  struct template_options opt = {.name = path, .html_escape = bl->escape};
  if (!rc) rc = baton_template_compile(src.ptr ? src.ptr : "", src.len, &opt, &t, &err);
  buf_release(&src);
  if (rc) {
    char msg[512];
    fprintf(stderr, "baton render: %s\n", baton_template_error_format(&err, msg, sizeof(msg)));
    return rc;
  }
  bl->names[bl->n] = xstrndup(name, len);
  bl->loaded[bl->n++] = t;
  *out = t;
  return 0;
}

/*
 * Prints the source line of an error and a caret under its column (columns
 * count characters; tabs are kept so the caret lines up).
 */
static void print_caret(const char *src, size_t len, const struct template_error *err) {
  if (err->line <= 0 || err->col <= 0) return;
  const char *p = src, *end = src + len;
  for (int l = 1; l < err->line && p < end; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  const char *eol = memchr(p, '\n', (size_t)(end - p));
  if (!eol) eol = end;
  if (eol - p > 200) return; /* a minified line helps nobody */
  fprintf(stderr, "  %.*s\n  ", (int)(eol - p), p);
  int col = 1;
  for (const char *q = p; q < eol && col < err->col; q++) {
    if (((unsigned char)*q & 0xC0) == 0x80) continue;
    fputc(*q == '\t' ? '\t' : ' ', stderr);
    col++;
  }
  fputs("^\n", stderr);
}

int cmd_render(int argc, char **argv) {
  if (cmd_wants_help(argc, argv)) {
    render_usage(stdout);
    return 0;
  }
  const char *tpl_path = NULL, *data_path = NULL, *zone = NULL;
  const char *globals[64];
  size_t n_globals = 0;
  size_t max_output = 1u << 20;
  struct blocks bl = {0};
  bool strict = false, escape = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--data-json") && has_val) data_path = argv[++i];
    else if (!strcmp(a, "--strict")) strict = true;
    else if (!strcmp(a, "--escape-html")) escape = true;
    else if (!strcmp(a, "--time-zone") && has_val) zone = argv[++i];
    else if (!strcmp(a, "--blocks") && has_val) bl.dir = argv[++i];
    else if (!strcmp(a, "--global") && has_val && n_globals < ARRAY_SIZE(globals) - 5) globals[n_globals++] = argv[++i];
    else if (!strcmp(a, "--max-output") && has_val) {
      char *end;
      unsigned long long v = strtoull(argv[++i], &end, 10);
      if (*end || !v) {
        fprintf(stderr, "baton render: --max-output wants a positive number of bytes\n");
        return 2;
      }
      max_output = (size_t)v;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "baton render: unknown option '%s'; see 'baton render --help'\n", a);
      return 2;
    } else if (!tpl_path) tpl_path = a;
    else {
      fprintf(stderr, "baton render: unexpected argument '%s'\n", a);
      return 2;
    }
  }
  if (!tpl_path) {
    render_usage(stderr);
    return 2;
  }
  static const char *const defaults[] = {"profile", "event", "journey", "message", "offer"};
  for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) globals[n_globals++] = defaults[i];

  int status = 1;
  struct buf src, data, out;
  buf_init(&src, 1u << 20);
  buf_init(&data, RENDER_MAX_INPUT);
  buf_init(&out, max_output);
  cJSON *vars = NULL;
  struct baton_template *t = NULL;
  struct template_error err;
  char msg[512];
  if (read_all(tpl_path, &src)) goto done;
  if (data_path) {
    if (read_all(data_path, &data)) goto done;
    vars = cJSON_ParseWithLength(data.ptr ? data.ptr : "", data.len);
    if (!vars || !cJSON_IsObject(vars)) {
      fprintf(stderr, "baton render: %s is not a JSON object\n", data_path);
      goto done;
    }
  }
  bl.strict = strict, bl.escape = escape;
  struct template_options opt = {.name = strcmp(tpl_path, "-") ? tpl_path : "<stdin>",
                                       .strict = strict, .globals = globals,
                                       .n_globals = n_globals, .html_escape = escape};
  if (baton_template_compile(src.ptr ? src.ptr : "", src.len, &opt, &t, &err)) {
    fprintf(stderr, "baton render: %s\n", baton_template_error_format(&err, msg, sizeof(msg)));
    print_caret(src.ptr ? src.ptr : "", src.len, &err);
    goto done;
  }
  struct template_env env = {.vars = vars, .time_zone = zone, .lookup = lookup_block, .ud = &bl};
  if (baton_template_render(t, &env, &out, &err)) {
    fprintf(stderr, "baton render: %s\n", baton_template_error_format(&err, msg, sizeof(msg)));
    if (!strcmp(err.file, opt.name)) print_caret(src.ptr ? src.ptr : "", src.len, &err);
    goto done;
  }
  if (out.len && fwrite(out.ptr, 1, out.len, stdout) != out.len) {
    fprintf(stderr, "baton render: cannot write output: %s\n", strerror(errno));
    goto done;
  }
  status = fflush(stdout) ? 1 : 0;
done:
  baton_template_free(t);
  for (size_t i = 0; i < bl.n; i++) baton_template_free(bl.loaded[i]), free(bl.names[i]);
  cJSON_Delete(vars);
  buf_release(&src), buf_release(&data), buf_release(&out);
  return status;
}

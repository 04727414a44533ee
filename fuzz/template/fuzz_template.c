/*
 * libFuzzer target for lib/template: compile (lax and strict) and render.
 * Input: template bytes, optionally followed by a NUL and a JSON object of
 * top-level variables. Every content block name resolves to the template
 * itself, so include/render recursion and its bounds are exercised too. The
 * output cap is 64 KiB; a render may fail, but must not crash, leak, hang or
 * pass the cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"
#include "util/buf.h"

static int lookup_self(void *ud, const char *name, size_t len, const struct baton_template **out) {
  (void)name, (void)len;
  *out = ud;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *src = (const char *)data;
  const uint8_t *nul = memchr(data, 0, size);
  size_t src_len = nul ? (size_t)(nul - data) : size;
  cJSON *vars = NULL;
  if (nul) vars = cJSON_ParseWithLength((const char *)nul + 1, size - src_len - 1);
  struct template_options opt = {.html_escape = size && (data[size - 1] & 1)};
  struct baton_template *t = NULL;
  struct template_error err;
  if (!baton_template_compile(src, src_len, &opt, &t, &err)) {
    struct buf out;
    buf_init(&out, 1 << 16);
    struct template_env env = {.vars = vars, .lookup = lookup_self, .ud = t,
                                     .time_zone = "Europe/Paris", .now_ms = 1782907200000};
    baton_template_render(t, &env, &out, &err);
    if (out.len > out.max) abort();
    buf_release(&out);
    baton_template_free(t);
  }
  opt.strict = true;
  if (!baton_template_compile(src, src_len, &opt, &t, &err)) baton_template_free(t);
  cJSON_Delete(vars);
  return 0;
}

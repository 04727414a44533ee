/* Unit tests for capped body inflation: gzip and zlib, bombs, corrupt and truncated input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "ingest/inflate.h"
#include "util/common.h"

/* Compresses src with gzip (gzip = 1) or zlib framing into a new buffer. */
static unsigned char *compress_it(const char *src, size_t n, int gzip, size_t *out_len) {
  z_stream zs = {0};
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, gzip ? 16 + MAX_WBITS : MAX_WBITS, 9,
                                Z_DEFAULT_STRATEGY),
                   Z_OK);
  size_t cap = deflateBound(&zs, n) + 64;
  unsigned char *out = malloc(cap);
  zs.next_in = (Bytef *)src;
  zs.avail_in = (uInt)n;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *out_len = cap - zs.avail_out;
  deflateEnd(&zs);
  return out;
}

static void test_roundtrip(void **state) {
  (void)state;
  const char *msg = "{\"userId\":\"u\",\"event\":\"x\"}";
  for (int gzip = 0; gzip <= 1; gzip++) {
    size_t n;
    unsigned char *z = compress_it(msg, strlen(msg), gzip, &n);
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(inflate_capped((char *)z, n, 1024, &out), 0);
    assert_string_equal(out.ptr, msg);
    /* truncated */
    assert_int_equal(inflate_capped((char *)z, n - 3, 1024, &out), BATON_EPARSE);
    assert_int_equal(out.len, 0);
    buf_release(&out);
    free(z);
  }
}

static void test_bomb(void **state) {
  (void)state;
  size_t big = 64u << 20; /* 64 MiB of zeros compresses to ~64 KiB */
  char *zeros = calloc(1, big);
  size_t n;
  unsigned char *z = compress_it(zeros, big, 1, &n);
  free(zeros);
  assert_true(n < 200 * 1024);
  struct buf out;
  buf_init(&out, 0);
  assert_int_equal(inflate_capped((char *)z, n, 512 * 1024, &out), BATON_ETOOBIG);
  assert_int_equal(out.len, 0);
  assert_true(out.cap < 2u << 20); /* never allocated past the cap */
  buf_release(&out);
  free(z);
}

static void test_garbage(void **state) {
  (void)state;
  struct buf out;
  buf_init(&out, 0);
  assert_int_equal(inflate_capped("not compressed", 14, 1024, &out), BATON_EPARSE);
  assert_int_equal(inflate_capped("", 0, 1024, &out), BATON_EPARSE);
  size_t n;
  unsigned char *z = compress_it("abc", 3, 1, &n);
  unsigned char *extra = malloc(n + 4);
  memcpy(extra, z, n);
  memcpy(extra + n, "JUNK", 4);
  assert_int_equal(inflate_capped((char *)extra, n + 4, 1024, &out), BATON_EPARSE);
  free(extra);
  free(z);
  buf_release(&out);
}

static void test_multi_member(void **state) {
  (void)state;
  size_t n1, n2;
  unsigned char *a = compress_it("{\"userId\":", 10, 1, &n1);
  unsigned char *b = compress_it("\"u\"}", 4, 1, &n2);
  unsigned char *both = malloc(n1 + n2);
  memcpy(both, a, n1);
  memcpy(both + n1, b, n2);
  struct buf out;
  buf_init(&out, 0);
  assert_int_equal(inflate_capped((char *)both, n1 + n2, 1024, &out), 0);
  assert_string_equal(out.ptr, "{\"userId\":\"u\"}");
  buf_release(&out);
  free(a);
  free(b);
  free(both);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_bomb),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_multi_member),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

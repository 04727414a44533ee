/* Capped gzip/zlib inflation; see inflate.h. */
#include "ingest/inflate.h"

#include <zlib.h>

#include "util/common.h"

int inflate_capped(const char *in, size_t len, size_t max_out, struct buf *out) {
  buf_clear(out);
  z_stream zs = {0};
  /* 32 + MAX_WBITS: accept both gzip and zlib headers. */
  if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) return BATON_EPARSE;
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)MIN(len, (size_t)UINT32_MAX);
  int rc = BATON_EPARSE;
  for (;;) {
    size_t room = MIN((size_t)64 * 1024, max_out + 1 - out->len);
    char *dst;
    if (room == 0 || buf_reserve(out, room, &dst)) {
      rc = BATON_ETOOBIG;
      break;
    }
    zs.next_out = (Bytef *)dst;
    zs.avail_out = (uInt)room;
    int z = inflate(&zs, Z_NO_FLUSH);
    buf_commit(out, room - zs.avail_out);
    if (out->len > max_out) {
      rc = BATON_ETOOBIG;
      break;
    }
    if (z == Z_STREAM_END) {
      if (zs.avail_in == 0) {
        rc = 0;
        break;
      }
      /* Another gzip member follows (RFC 1952 allows several): go on with it. */
      if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b &&
          inflateReset(&zs) == Z_OK)
        continue;
      rc = BATON_EPARSE; /* trailing garbage */
      break;
    }
    if (z != Z_OK || (zs.avail_in == 0 && zs.avail_out != 0)) break; /* corrupt or truncated */
  }
  inflateEnd(&zs);
  if (rc) buf_clear(out);
  return rc;
}

/* libFuzzer target: Segment request bodies through the ingest parser, on every endpoint. */
#include <stddef.h>
#include <stdint.h>

#include "engine/record.h"
#include "ingest/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const struct segment_limits lim = {.max_event_bytes = 32 * 1024,
                                            .max_batch_events = 2500};
  enum segment_endpoint ep = (enum segment_endpoint)(data[0] % 7 + 1);
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  if (segment_parse((const char *)data + 1, size - 1, ep, &lim, 1800000000000LL, "fuzz", 1, &out,
                    &err) == 0) {
    for (size_t i = 0; i < out.n; i++) {
      struct rec r;
      /* Every record the parser produces must decode. */
      if (rec_decode(out.data.ptr + out.offsets[i], out.offsets[i + 1] - out.offsets[i], &r))
        __builtin_trap();
    }
  }
  segment_out_release(&out);
  return 0;
}

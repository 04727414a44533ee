/*
 * libFuzzer target: arbitrary bytes as event-log records, decoded and applied
 * to an engine (profiles, journey publication, triggers, timers). The input is
 * split on the byte sequence "\n--\n" into several records applied in order.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/engine.h"
#include "util/jlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jlog_set_level(JLOG_ERROR);
  struct engine_options o = {.recent_events = 4};
  struct engine *e;
  if (engine_open(&o, &e)) return 0;
  uint64_t lsn = 1;
  const uint8_t *p = data, *end = data + size;
  while (p < end && lsn < 64) {
    const uint8_t *sep = memmem(p, (size_t)(end - p), "\n--\n", 4);
    const uint8_t *stop = sep ? sep : end;
    engine_apply(e, lsn++, p, (size_t)(stop - p));
    p = sep ? sep + 4 : end;
  }
  engine_close(e);
  return 0;
}

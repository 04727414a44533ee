/* libFuzzer target: journey definitions (YAML/JSON) through the loader. */
#include <stddef.h>
#include <stdint.h>

#include "journey/journey.h"
#include "util/jlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jlog_set_level(JLOG_ERROR);
  struct journey_def *j = NULL;
  struct yerr err;
  if (journey_parse((const char *)data, size, "fuzz.yaml", NULL, &j, &err) == 0) {
    /* Invariants the engine relies on. */
    for (size_t i = 0; i < j->n_steps; i++)
      if (j->steps[i].next >= (int)j->n_steps) __builtin_trap();
    journey_free(j);
  }
  return 0;
}

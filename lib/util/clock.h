/* Wall and monotonic clocks in the units Baton uses everywhere. */
#ifndef BATON_UTIL_CLOCK_H
#define BATON_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
static inline int64_t clock_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds from an arbitrary start (CLOCK_MONOTONIC); for intervals only. */
static inline int64_t clock_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps ns nanoseconds, at most cap (through signals); returns the time slept (0 if ns <= 0).
   The rests of paced disk writers: as long as their last write kept the disk busy. */
int64_t clock_rest_ns(int64_t ns, int64_t cap);

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian calendar (any year). */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The inverse: the date of day z counted from 1970-01-01. */
void clock_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* The CLOCK_MONOTONIC time timeout_ms from now (for pthread_cond_timedwait
   on condvars using that clock); timeout_ms <= 0 means now. */
static inline struct timespec clock_deadline_after_ms(int timeout_ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  if (timeout_ms > 0) {
    t.tv_sec += timeout_ms / 1000;
    t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
      t.tv_sec++;
      t.tv_nsec -= 1000000000L;
    }
  }
  return t;
}

/*
 * Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-23T03:08:00.000Z") into out (at least 32 bytes). Returns out.
 */
char *clock_format_ms(int64_t ms, char *out);

/*
 * Parses an ISO 8601 / RFC 3339 date-time ("2026-11-23T03:08:00Z",
 * "...T03:08:00.123+01:00", or a date alone) into ms since the epoch.
 * Returns 0 or BATON_EPARSE.
 */
int clock_parse_iso8601(const char *s, int64_t *out_ms);

/*
 * Parses a duration like "2s", "500ms", "15m", "1h30m", "7d" into ms.
 * Returns 0, BATON_EPARSE, or BATON_ERANGE (negative or over 10 years).
 */
int clock_parse_duration(const char *s, int64_t *out_ms);

#endif

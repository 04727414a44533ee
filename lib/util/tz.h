/*
 * Time zones from the system tzdata files (TZif, RFC 8536) under
 * /usr/share/zoneinfo — never the TZ environment variable, which is process
 * global and not thread-safe to switch per customer. A zone answers "what is
 * the UTC offset at this instant" (for local time of day, dates in templates)
 * and "which instant is this local wall-clock time" (for waits until 9:00 in
 * the customer's zone). Instants past the file's last transition follow its
 * POSIX TZ footer rule.
 *
 * Zones are immutable once loaded; tz_get() caches them for the life of the
 * process and may be called from any thread.
 */
#ifndef BATON_UTIL_TZ_H
#define BATON_UTIL_TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz;

/*
 * Returns the zone named name: an IANA name ("Europe/Paris"), "UTC"/"Z", or a
 * fixed offset ("+05:30", "-0800", "+05"). Loaded once and cached; the pointer
 * stays valid for the life of the process. Returns NULL if the name is not a
 * valid zone (unknown, malformed, or a path trying to leave the zoneinfo tree).
 */
const struct tz *tz_get(const char *name);

/*
 * Loads a zone from a TZif file image (for tests and fuzzing). Returns 0 and
 * *out (free with tz_free), or BATON_ECORRUPT.
 */
int tz_parse(const void *data, size_t len, const char *name, struct tz **out);
void tz_free(struct tz *z);

/* The zone's name as given to tz_get. */
const char *tz_name(const struct tz *z);

/*
 * UTC offset in seconds east of Greenwich in effect at instant t (seconds
 * since the epoch, UTC). *abbr, if not NULL, receives the abbreviation
 * ("CET", "EDT"), valid as long as the zone.
 */
int32_t tz_offset_at(const struct tz *z, int64_t t, const char **abbr);

/*
 * Converts local wall-clock seconds (seconds since the epoch as if the local
 * time were UTC) to an instant. A time skipped by a forward transition maps to
 * the instant the same number of seconds after the transition (02:30 on a
 * spring-forward night becomes 03:30); a repeated time maps to its first
 * occurrence.
 */
int64_t tz_local_to_utc(const struct tz *z, int64_t local);

#endif

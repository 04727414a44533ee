/*
 * Request body decompression (Content-Encoding: gzip or deflate) with a hard
 * cap on the output, so a small "zip bomb" cannot make Baton allocate more than
 * the configured body limit.
 */
#ifndef BATON_INGEST_INFLATE_H
#define BATON_INGEST_INFLATE_H

#include <stddef.h>

#include "util/buf.h"

/*
 * Inflates a gzip or zlib stream (detected from its header) into out, which
 * is cleared first; several gzip members one after the other are inflated in
 * turn, as RFC 1952 allows. Returns 0, BATON_ETOOBIG if the output would exceed
 * max_out bytes, or BATON_EPARSE if the input is not a complete valid stream.
 */
int inflate_capped(const char *in, size_t len, size_t max_out, struct buf *out);

#endif

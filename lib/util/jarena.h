/*
 * A per-thread bump arena for cJSON's allocations while one request body is
 * parsed. A /v1/batch body of 100 events makes about 3,000 cJSON nodes and
 * strings, each a malloc and a free; under the ingest workers' load glibc's
 * allocator spent about 15% of the server's CPU on them (perf, 1M-customer
 * populate). Inside a jarena_begin/jarena_end scope on a thread, cJSON's
 * allocations are cut from that thread's arena and its frees of them do
 * nothing; jarena_end releases the lot at once.
 *
 * jarena_install sets cJSON's global hooks (cJSON_InitHooks) once, at
 * process start before any other thread uses cJSON. Outside a scope, and on
 * threads that never open one, the hooks are malloc and free. Without
 * jarena_install (unit tests, fuzzers) scopes do nothing and cJSON uses
 * malloc throughout, so the sanitizers see every node.
 *
 * Rule: nothing cJSON allocates inside a scope may outlive it (a tree parsed
 * in it is deleted in it; nothing printed in it is kept). Pointers cJSON
 * allocated before the scope may be freed inside it (they are recognised
 * and passed to free).
 *
 * Memory: the first chunk is kept between scopes, at most JARENA_KEEP_BYTES;
 * larger needs take further chunks, released by jarena_end.
 */
#ifndef BATON_UTIL_JARENA_H
#define BATON_UTIL_JARENA_H

#define JARENA_KEEP_BYTES ((size_t)1 << 20)

void jarena_install(void);
void jarena_begin(void);
void jarena_end(void);

#endif

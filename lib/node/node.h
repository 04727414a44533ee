/*
 * A running Baton node: wires the event log, the store, delivery, the engine
 * and the HTTP server together in the right order, and takes them down in the
 * reverse order so that a stop loses nothing:
 *
 *   start: log -> store -> delivery (resolves in-doubt sends, loads outbox)
 *          -> engine (loads checkpoint, replays the log) -> journeys_dir
 *          published -> HTTP server
 *   stop:  HTTP server (no new requests; in-flight ones finish) -> engine
 *          (applies the rest of the log, final checkpoint) -> delivery
 *          (attempts in flight finish and are recorded) -> log -> store
 */
#ifndef BATON_NODE_NODE_H
#define BATON_NODE_NODE_H

#include "config/config.h"

struct baton_node;

/*
 * Starts a node on cfg (which must outlive it). Returns 0, or a BATON_E*
 * code after logging what failed (the data directory is locked by another
 * process, the log or store cannot be opened, a journey in journeys_dir is
 * invalid, the address cannot be bound...).
 */
int baton_node_start(const struct baton_config *cfg, struct baton_node **out);

/* The HTTP port actually bound. */
int baton_node_port(struct baton_node *n);

/* Stops the node as described above and frees it. */
void baton_node_stop(struct baton_node *n);

/*
 * Publishes every *.yaml, *.yml and *.json file in dir (sorted by name) as a
 * journey whose id is taken from the file (or its name without extension).
 * An unchanged journey keeps its version. Returns 0 or BATON_EINVAL after
 * logging the first invalid file with line and column.
 */
int baton_node_publish_dir(struct baton_node *n, const char *dir);

#endif

/*
 * What the CLI's client commands (journey, import) share: finding the server
 * and the key to use, from flags, the environment, a server config file, or
 * the data directory's generated credentials, in that order.
 */
#ifndef BATON_SRC_CLIENT_H
#define BATON_SRC_CLIENT_H

#include <stddef.h>

enum client_key_kind {
  CLIENT_ADMIN_KEY, /* $BATON_ADMIN_KEY, the config's first admin key with the scopes asked */
  CLIENT_WRITE_KEY, /* $BATON_WRITE_KEY, the config's first source */
};

struct client_target {
  char url[512]; /* without a trailing slash */
  char key[512];
};

/*
 * Fills t. url/key/config/data_dir are the command's flags (NULL if not
 * given); scopes are the admin scopes needed (CLIENT_ADMIN_KEY). Returns 0, or
 * -1 after printing "baton CMD: ..." on stderr.
 */
int client_resolve(const char *cmd, enum client_key_kind kind, unsigned scopes, const char *url,
                   const char *key, const char *config, const char *data_dir,
                   struct client_target *t);

#endif

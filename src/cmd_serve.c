/* `baton serve`: placeholder removed once the server lands. */
#include "commands.h"
int cmd_serve(int argc, char **argv) { (void)argc; (void)argv; return 1; }

#include "commands.h"
int cmd_journey(int argc, char **argv) { (void)argc; (void)argv; return 1; }

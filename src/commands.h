/*
 * The `baton` subcommands: one cmd_<name>.c file each, listed in main.c's
 * table. Each takes argc/argv starting at the subcommand name and returns the
 * process exit status (0 success, 1 failure, 2 usage error).
 */
#ifndef BATON_SRC_COMMANDS_H
#define BATON_SRC_COMMANDS_H

int cmd_serve(int argc, char **argv);
int cmd_journey(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_render(int argc, char **argv);

/* Shared by commands: returns 1 if argv[i] is -h or --help. */
int cmd_wants_help(int argc, char **argv);

#endif

/*
 * The `baton` binary: a thin front door that dispatches to one subcommand.
 * The engine lives in lib/; each subcommand is one src/cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "util/jarena.h"

struct command {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "run the engine: HTTP ingest, journeys, delivery"},
    {"journey", cmd_journey, "publish and list journeys through the admin API"},
    {"import", cmd_import, "bulk import profiles (CSV) or events (JSONL), resumable"},
    {"eval", cmd_eval, "evaluate a condition expression (CEL)"},
    {"render", cmd_render, "render a Liquid template with JSON data"},
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: baton [--version] [--help] <command> [<args>]\n\n"
          "Baton is a real-time customer journey orchestration engine.\n\n"
          "Commands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nRun 'baton <command> --help' for the options of a command.\n");
}

int cmd_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("baton %s\n", BATON_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  /* cJSON's allocation hooks, set before any thread uses cJSON (see util/jarena.h). */
  jarena_install();
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "baton: '%s' is not a baton command; see 'baton --help'\n", argv[1]);
  return 2;
}

/* `kdflow report`: an HTML page with plots of one or more run directories. */
#pragma once

/* ARGV: the arguments after "report". Returns the exit status (0, or 2 on bad input). */
int kdf_cli_report (int argc, char **argv);
const char *kdf_cli_report_help (void);

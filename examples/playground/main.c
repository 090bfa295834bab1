/* playground — the runnable host: raw, pg, file and hop modes.
 *
 * Configured by environment (ARCHITECTURE.md §4): PLAYGROUND_MODE, PORT,
 * REACTORS, IDLE_TIMEOUT_MS, FILE_ROOT, PG*. `make run` starts raw mode. */
#include "playground.h"
#include <ioxide/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *mode = getenv("PLAYGROUND_MODE");
    if (!mode || !*mode) mode = "raw";
    /* One HTTP listener (HOST, PORT); everything else from the environment
     * and the library's defaults. */
    static struct iox_http_single s;
    char why[256];
    if (iox_http_single_from_env(&s, why, sizeof why) < 0) {
        fprintf(stderr, "playground: %s\n", why);
        return 2;
    }
    int rc;
    if (!strcmp(mode, "raw")) rc = playground_raw(&s.server, &s.http);
    else if (!strcmp(mode, "pg")) rc = playground_pg(&s.server, &s.http);
    else if (!strcmp(mode, "file")) rc = playground_file(&s.server, &s.http);
    else if (!strcmp(mode, "hop")) rc = playground_hop(&s.server, &s.http);
    else {
        fprintf(stderr, "playground: PLAYGROUND_MODE=%s is not one of raw, pg, file, hop\n", mode);
        return 2;
    }
    if (rc < 0) return 1;
    IOX_INFO("%s mode", mode);
    return iox_server_run(&s.server);
}

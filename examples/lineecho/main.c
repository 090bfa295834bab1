/* main.c — build/lineecho: the line protocol of lineecho.h on HOST:PORT
 * (default 127.0.0.1:7070), REACTORS reactors; try it with `nc 127.0.0.1 7070`. */
#include "lineecho.h"
#include <stdlib.h>

int main(void)
{
    const char *host = getenv("HOST");
    const char *port = getenv("PORT");
    const char *n = getenv("REACTORS");
    return lineecho_serve(host && *host ? host : "127.0.0.1", (uint16_t)(port ? atoi(port) : 7070),
                          n ? (unsigned)atoi(n) : 0);
}

/* main.c — ioxide-resp: a Redis-protocol (RESP2) server on ioxide.
 *
 * Environment: PORT (6380), HOST (0.0.0.0), REACTORS (online CPUs),
 * RESP_MAX_BULK (largest bulk argument, bytes; 64 MiB), RESP_MAX_ARGS
 * (largest argument count; 1048576), and the stream layer's
 * (IOX_MAX_CONNS, IOX_WRITE_CAP, IOX_MAX_REPLIES, ...). */
#include "server.h"
#include <ioxide/stream.h>
#include <stdio.h>
#include <stdlib.h>

static int env_u64(const char *name, uint64_t *out, uint64_t min, uint64_t max)
{
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || x < min || x > max) {
        fprintf(stderr, "ioxide-resp: %s=%s is not a number in [%llu, %llu]\n", name, v,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

int main(void)
{
    char why[256];
    uint64_t max_bulk = 64ull << 20, max_args = 1048576;
    if (env_u64("RESP_MAX_BULK", &max_bulk, 1, 1ull << 30) < 0 ||
        env_u64("RESP_MAX_ARGS", &max_args, 1, 1u << 30) < 0)
        return 1;
    resp_cfg.max_bulk = max_bulk;
    resp_cfg.max_args = (uint32_t)max_args;

    static struct iox_stream_config scfg = {
        .on_open = resp_on_open,
        .on_data = resp_on_data,
        .on_close = resp_on_close,
        .on_timeout = resp_on_timeout,
        .max_replies = 64,
    };
    /* A request is carried whole until it is parsed: room for the largest
     * bulk and its framing. */
    uint64_t carry = max_bulk * 2 + (1u << 20);
    scfg.max_carry = carry > UINT32_MAX ? UINT32_MAX : (uint32_t)carry;
    /* Output may reach the largest bulk and more before reading stops
     * (redis-server does not limit a normal client's output at all). Also
     * works around the stream layer not starting a send when a reply
     * written outside on_data (a hop coming back) alone puts the stream
     * over write_cap at the end of the turn: see the README's limits. */
    uint64_t wcap = max_bulk + (1u << 20);
    scfg.write_cap = wcap > UINT32_MAX ? UINT32_MAX : (uint32_t)wcap;
    if (iox_stream_config_from_env(&scfg, why, sizeof why) < 0) {
        fprintf(stderr, "ioxide-resp: %s\n", why);
        return 1;
    }

    static struct iox_listener_config l = {.proto = &iox_stream_protocol};
    l.proto_cfg = &scfg;
    if (!getenv("PORT")) l.port = 6380;
    if (iox_listener_config_from_env(&l, why, sizeof why) < 0) {
        fprintf(stderr, "ioxide-resp: %s\n", why);
        return 1;
    }
    struct iox_server_config cfg = {0};
    if (iox_server_config_from_env(&cfg, why, sizeof why) < 0) {
        fprintf(stderr, "ioxide-resp: %s\n", why);
        return 1;
    }
    cfg.listeners = &l;
    cfg.nlisteners = 1;
    cfg.on_start = resp_server_start;
    cfg.on_stop = resp_server_stop;
    return iox_server_run(&cfg);
}

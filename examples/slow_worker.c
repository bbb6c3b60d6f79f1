/* SPDX-License-Identifier: MIT */
/*
 * The smallest useful libdogslow user: one request that takes too long.
 *
 *     DOGSLOW_TIMER=2 ./slow_worker [seconds]
 *
 * registers with dogslowd, handles "GET /orders/42" by "querying a database"
 * for 5 seconds (or the number given), and exits.  With a 2-second timer the
 * daemon writes an undead-request report while the query is running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dogslow.h"

static unsigned query_seconds = 5;

static int query_database(const char *sql)
{
    struct timespec ts = {.tv_sec = query_seconds};

    printf("slow_worker: running \"%s\" (takes %u s)\n", sql, query_seconds);
    fflush(stdout);
    nanosleep(&ts, NULL); /* the request is stuck here */
    return 42;
}

static int load_order(int id)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT * FROM orders WHERE id = %d", id);
    return query_database(sql);
}

static void handle_request(const char *method, const char *url)
{
    dogslow_begin(method, url);
    printf("slow_worker: %s %s -> order %d\n", method, url, load_order(42));
    dogslow_end();
}

int main(int argc, char **argv)
{
    int r;

    if (argc > 1)
        query_seconds = (unsigned)strtoul(argv[1], NULL, 10);
    r = dogslow_register(NULL);
    if (r < 0) {
        fprintf(stderr, "slow_worker: not watched: %s (%s)\n", dogslow_last_error(),
                strerror(-r));
        /* An application keeps working when its watchdog is down. */
    } else {
        printf("slow_worker: registered with dogslowd (pid %d)\n", (int)getpid());
    }
    handle_request("GET", "/orders/42");
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The configuration parser as a fuzz target: an operator's file is trusted
 * more than a worker's bytes, but a config parser that crashes on a typo is
 * a daemon that does not come back after a reload.  The input is written to
 * a memfd and loaded as a file; then one option (chosen by the first byte)
 * is set from the rest as a command-line value would be.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "core.h"
#include "fuzz.h"

int fuzz_config(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static struct config c;
    char path[64], errors[4096], why[256], value[512];
    struct config_source src = {.path = path, .required = true};
    size_t n;

    if (fd < 0) {
        fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        if (fd < 0)
            return 0;
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    config_defaults(&c);
    errors[0] = '\0';
    (void)config_load(&src, &c, errors, sizeof(errors));
    if (strnlen(errors, sizeof(errors)) == sizeof(errors))
        abort(); /* the error text must stay terminated */
    if (size > 0 && config_noptions > 0) {
        const struct opt_def *o = &config_options[data[0] % config_noptions];
        n = size - 1 < sizeof(value) - 1 ? size - 1 : sizeof(value) - 1;
        memcpy(value, data + 1, n);
        value[n] = '\0';
        (void)config_set(&c, o, value, why, sizeof(why));
        char out[2048];
        config_format(&c, o, out, sizeof(out));
    }
    return 0;
}

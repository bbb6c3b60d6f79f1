/* SPDX-License-Identifier: MIT */
/*
 * What reports never show: local variables whose names look like secrets,
 * and values that look like payment card numbers.  One policy for native
 * locals (analysis) and Python locals (output).
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "core.h"

#define REDACT_DEFAULT                                                                             \
    "password, passwd, secret, token, api_key, apikey, authorization, cookie, session, csrf, "     \
    "private_key, credential"

bool redact_name(const struct config *c, const char *name)
{
    const char *list = c ? c->redact : REDACT_DEFAULT;
    char low[128], word[64];
    size_t n = 0;

    for (; name[n] && n < sizeof(low) - 1; n++)
        low[n] = (char)tolower((unsigned char)name[n]);
    low[n] = '\0';
    /* The list is "a, b, c" (the config table keeps lists that way). */
    for (const char *p = list; *p;) {
        size_t k = 0;
        while (*p == ',' || *p == ' ')
            p++;
        while (*p && *p != ',' && *p != ' ' && k < sizeof(word) - 1)
            word[k++] = (char)tolower((unsigned char)*p++);
        while (*p && *p != ',')
            p++;
        word[k] = '\0';
        if (k && strstr(low, word))
            return true;
    }
    return false;
}

bool redact_card_number(const char *v)
{
    for (const char *p = v; *p; p++) {
        int digits[19], n = 0;
        const char *q = p;

        if (!isdigit((unsigned char)*q) || (p > v && isdigit((unsigned char)p[-1])))
            continue;
        while (n < 19 && isdigit((unsigned char)*q)) {
            digits[n++] = *q++ - '0';
            if ((*q == ' ' || *q == '-') && isdigit((unsigned char)q[1]))
                q++;
        }
        if (n < 13 || isdigit((unsigned char)*q))
            continue;
        int sum = 0;
        for (int i = 0; i < n; i++) {
            int d = digits[n - 1 - i];
            if (i % 2) {
                d *= 2;
                if (d > 9)
                    d -= 9;
            }
            sum += d;
        }
        if (sum % 10 == 0)
            return true;
    }
    return false;
}

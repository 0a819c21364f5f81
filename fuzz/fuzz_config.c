/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the configuration reader: the input is written to a fresh temporary file in /tmp
 * (mkstemp), read with config_load, and the file is removed. A configuration that loads
 * must hold only values liaisond accepts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_common.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        FUZZ_CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/liaison-fuzz-config-XXXXXX";
    char err[1024];
    config_t c;

    int fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0);
    write_all(fd, data, size);
    FUZZ_CHECK(close(fd) == 0);
    int rc = config_load(path, &c, err, sizeof err);
    FUZZ_CHECK(unlink(path) == 0);
    if (rc != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        return 0;
    }
    FUZZ_CHECK(text_valid_id(c.id));
    FUZZ_CHECK(c.name[0] && text_valid_utf8(c.name, LIAISON_MAX_NAME, false));
    FUZZ_CHECK(text_valid_role(c.role));
    FUZZ_CHECK(text_valid_utf8(c.org, LIAISON_MAX_NAME, false));
    FUZZ_CHECK(text_valid_bind_endpoint(c.listen));
    FUZZ_CHECK(text_valid_endpoint(c.advertise));
    FUZZ_CHECK(c.retry_min_ms >= 10 && c.retry_min_ms <= c.retry_max_ms);
    FUZZ_CHECK(c.max_recipients >= 1 && c.max_recipients <= LIAISON_MAX_RECIPIENTS);
    FUZZ_CHECK(c.heartbeat_ms >= 100 && c.clock_window_s >= 1 && c.max_age_s >= 60);
    FUZZ_CHECK(c.checkpoint_entries >= 1 && c.checkpoint_seconds >= 1);
    FUZZ_CHECK(c.ack_routine_s >= 1 && c.ack_urgent_s >= 1);
    FUZZ_CHECK(c.ack_hook[0] == '\0' || c.ack_hook[0] == '/');
    FUZZ_CHECK(memchr(c.log_level, '\0', sizeof c.log_level) != NULL);
    return 0;
}

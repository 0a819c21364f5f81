/* SPDX-License-Identifier: Apache-2.0 */
/* A program that embeds libliaison-client the way an EHR would: public header only,
 * linked against the shared library. Driven by tests/integration/test_cli.py.
 *
 *   client_smoke HOME TO N      send one message, then N pipelined ones; print each id
 *   client_smoke HOME ack ID    acknowledge ID
 *   client_smoke HOME bad       error paths: an unknown peer, a bad id
 *   client_smoke HOME flood TO N   submit N sends without reading an answer, then collect all
 *   client_smoke HOME raw TO CT HEX   send the payload HEX (serialized by the caller) of content type CT
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "liaison_client.h"

static int fail(liaison_client_t *c, const char *what, liaison_rc rc)
{
    fprintf(stderr, "%s: rc=%d: %s\n", what, (int)rc, liaison_client_error(c));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: client_smoke HOME TO N | HOME ack ID | HOME bad\n");
        return 2;
    }
    char err[512];
    liaison_client_t *c = liaison_client_open(argv[1], LIAISON_SOCKET_CONTROL, err, sizeof err);
    if (!c) {
        fprintf(stderr, "open: %s\n", err);
        return 3;
    }
    char id[LIAISON_ID_HEX];
    int status = 0;
    liaison_rc rc;
    if (strcmp(argv[2], "bad") == 0) {
        rc = liaison_send_text(c, "nobody.here", "", "hello", id);
        printf("unknown-peer %d %s\n", (int)rc, liaison_client_error(c));
        rc = liaison_ack(c, "not-an-id", "", id);
        printf("bad-id %d %s\n", (int)rc, liaison_client_error(c));
        rc = liaison_send_text(c, "", "", "", id);
        printf("empty %d %s\n", (int)rc, liaison_client_error(c));
    } else if (strcmp(argv[2], "flood") == 0 && argc == 5) {
        int n = atoi(argv[4]), got = 0;
        for (int i = 0; i < n && status == 0; i++) {
            uint64_t token;
            rc = liaison_submit_text(c, argv[3], "", "flood", &token);
            if (rc != LIAISON_OK)
                status = fail(c, "submit", rc);
        }
        while (status == 0 && liaison_pending(c) > 0) {
            uint64_t token;
            rc = liaison_collect(c, &token, id);
            if (rc != LIAISON_OK)
                status = fail(c, "collect", rc);
            else
                got++;
        }
        printf("%d\n", got);
    } else if (strcmp(argv[2], "raw") == 0 && argc == 6) {
        size_t hl = strlen(argv[5]), len = hl / 2;
        unsigned char *buf = malloc(len ? len : 1);
        for (size_t i = 0; buf && i < len; i++) {
            unsigned v;
            if (sscanf(argv[5] + 2 * i, "%2x", &v) != 1)
                return 2;
            buf[i] = (unsigned char)v;
        }
        rc = buf ? liaison_send(c, argv[3], (uint32_t)atoi(argv[4]), buf, len, NULL, id) : LIAISON_INTERNAL;
        free(buf);
        if (rc != LIAISON_OK)
            status = fail(c, "send", rc);
        else
            printf("%s\n", id);
    } else if (strcmp(argv[2], "ack") == 0 && argc == 4) {
        rc = liaison_ack(c, argv[3], "seen", id);
        if (rc != LIAISON_OK)
            status = fail(c, "ack", rc);
        else
            printf("%s\n", id);
    } else if (argc == 4) {
        int n = atoi(argv[3]);
        rc = liaison_send_text(c, argv[2], "first", "sent synchronously", id);
        if (rc != LIAISON_OK) {
            status = fail(c, "send", rc);
        } else {
            printf("%s\n", id);
            /* Pipelined: keep up to 16 requests in flight, collect in order. */
            uint64_t submitted[4096];
            int next = 0, done = 0;
            while (done < n && status == 0) {
                while (next < n && next < 4096 && liaison_pending(c) < 16) {
                    char text[64];
                    snprintf(text, sizeof text, "pipelined %d", next);
                    rc = liaison_submit_text(c, argv[2], "", text, &submitted[next]);
                    if (rc != LIAISON_OK) {
                        status = fail(c, "submit", rc);
                        break;
                    }
                    next++;
                }
                if (status)
                    break;
                uint64_t token;
                rc = liaison_collect(c, &token, id);
                bool known = false;
                for (int k = 0; k < next && !known; k++)
                    known = submitted[k] == token;
                if (!known) {
                    fprintf(stderr, "answer for unknown token %llu\n", (unsigned long long)token);
                    status = 1;
                } else if (rc == LIAISON_OK) {
                    printf("%s\n", id);
                } else {
                    status = fail(c, "collect", rc);
                }
                done++;
            }
        }
    } else {
        status = 2;
    }
    liaison_client_close(c);
    return status;
}

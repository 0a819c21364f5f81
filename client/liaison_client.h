/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libliaison-client: the C API of a local liaisond, for the liaison CLI, an EHR, or
 * a script. It speaks the control protocol (docs/PROTOCOL.md, "Local control API")
 * over the daemon's IPC socket; access is granted by the socket's group (liaison for
 * the control socket, liaison-audit for the audit socket). Plain C, no dependency
 * leaks into this header.
 *
 *   liaison_client_t *c = liaison_client_open(NULL, LIAISON_SOCKET_CONTROL, err, sizeof err);
 *   char id[LIAISON_ID_HEX];
 *   if (liaison_send_text(c, "dr.okafor", "weekly update", "PHQ-9 down to 11.", id) != LIAISON_OK)
 *       fprintf(stderr, "%s\n", liaison_client_error(c));
 *   liaison_client_close(c);
 *
 * Every call returns one of the liaison_rc values; on failure liaison_client_error()
 * says what went wrong and how to fix it. A client handle is not thread-safe; use
 * one per thread.
 */
#ifndef LIAISON_CLIENT_H
#define LIAISON_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LIAISON_API __attribute__((visibility("default")))
#else
#define LIAISON_API
#endif

#define LIAISON_ID_HEX 33 /* 32 hex characters of a message id + NUL */

typedef enum liaison_rc {
    LIAISON_OK = 0,
    LIAISON_BAD_REQUEST = 1,  /* the request was malformed or invalid (fix the input) */
    LIAISON_REFUSED = 2,      /* valid, but refused by policy or state */
    LIAISON_NOT_FOUND = 3,    /* no such message, peer or review */
    LIAISON_INTERNAL = 4,     /* the daemon failed */
    LIAISON_UNREACHABLE = 5,  /* no daemon answers on the socket */
    LIAISON_TIMEOUT = 6,      /* no answer within the timeout */
    LIAISON_PROTOCOL = 7,     /* the answer could not be understood */
} liaison_rc;

typedef enum liaison_socket {
    LIAISON_SOCKET_CONTROL = 0, /* clinicians: messages, peers, status */
    LIAISON_SOCKET_AUDIT = 1,   /* auditors: audit operations only */
} liaison_socket;

typedef struct liaison_client liaison_client_t;

/* Connects to the daemon of the node whose home is `home` (NULL: $LIAISON_HOME, else
 * the systemd layout, /run/liaison). Returns NULL with a message in err when no daemon
 * listens there or the socket may not be used. */
LIAISON_API liaison_client_t *liaison_client_open(const char *home, liaison_socket which, char *err, size_t errlen);

/* Same, with the socket path given directly. */
LIAISON_API liaison_client_t *liaison_client_open_path(const char *socket_path, char *err, size_t errlen);

/* Closes the connection and frees the handle. NULL-safe. */
LIAISON_API void liaison_client_close(liaison_client_t *c);

/* How long a call waits for its answer (default 30000 ms). */
LIAISON_API void liaison_client_set_timeout(liaison_client_t *c, int timeout_ms);

/* The message of the last failed call on c. */
LIAISON_API const char *liaison_client_error(const liaison_client_t *c);

/* Raw call: req is a serialized liaison.control.Request (its request_id is set by the
 * library); on LIAISON_OK *resp is a malloc'd serialized liaison.control.Response of
 * *resp_len bytes, to be freed with free(). Any other code: *resp is NULL. */
LIAISON_API liaison_rc liaison_call(liaison_client_t *c, const void *req, size_t req_len, void **resp, size_t *resp_len);

/* Sends a free-text message to the comma-separated node ids in `to`. On LIAISON_OK the
 * message is stored and queued (durably) and its id is in id_hex. */
LIAISON_API liaison_rc liaison_send_text(liaison_client_t *c, const char *to, const char *subject, const char *text,
                             char id_hex[LIAISON_ID_HEX]);

/* Sends any payload: content_type as in liaison.wire.ContentType, payload a serialized
 * message of liaison.payload of that type, thread_id 16 bytes or NULL. */
LIAISON_API liaison_rc liaison_send(liaison_client_t *c, const char *to, uint32_t content_type, const void *payload, size_t len,
                        const uint8_t *thread_id, char id_hex[LIAISON_ID_HEX]);

/* Acknowledges a received message (e.g. a medication change), with an optional comment. */
LIAISON_API liaison_rc liaison_ack(liaison_client_t *c, const char *msg_id_hex, const char *comment, char ack_id_hex[LIAISON_ID_HEX]);

/* Pipelining: submit many sends without waiting, then collect their answers in order.
 * liaison_submit returns LIAISON_OK once the request is handed to the socket and gives
 * its token; liaison_collect waits for the next answer (timeout as set) and reports the
 * token it belongs to, its result code and the message id. Answers may arrive in any
 * order: match them by token. Each answer means the message is committed (stored and
 * queued durably). A synchronous call (liaison_send, liaison_ack, ...) abandons the
 * answers of requests still pending. */
LIAISON_API liaison_rc liaison_submit(liaison_client_t *c, const char *to, uint32_t content_type, const void *payload, size_t len,
                          uint64_t *token);
LIAISON_API liaison_rc liaison_collect(liaison_client_t *c, uint64_t *token, char id_hex[LIAISON_ID_HEX]);

/* liaison_submit of a free-text message. */
LIAISON_API liaison_rc liaison_submit_text(liaison_client_t *c, const char *to, const char *subject, const char *text,
                                           uint64_t *token);

/* Number of submitted requests not yet collected. */
LIAISON_API size_t liaison_pending(const liaison_client_t *c);

#ifdef __cplusplus
}
#endif

#endif

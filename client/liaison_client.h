/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libliaison-client: the C API of a local liaisond, for the liaison CLI, an EHR, or
 * a script. It speaks the control protocol (docs/PROTOCOL.md, "Local control API")
 * over the daemon's IPC socket; access is granted by the socket's group (liaison for
 * the control socket, liaison-audit for the audit socket). Plain C (C99 and later, and
 * C++ through extern "C"); no dependency leaks into this header. Manual: liaison_client(3).
 *
 *   cc ehr.c $(pkg-config --cflags --libs liaison-client)
 *
 *   char err[512];
 *   liaison_client_t *c;
 *   if (liaison_client_connect(NULL, LIAISON_SOCKET_CONTROL, &c, err, sizeof err) != LIAISON_OK)
 *       return fprintf(stderr, "%s\n", err), 1;
 *   char id[LIAISON_ID_HEX];
 *   liaison_rc rc = liaison_send_text(c, "dr.okafor", "weekly update", "PHQ-9 down to 11.", id);
 *   if (rc != LIAISON_OK)
 *       fprintf(stderr, "%s: %s\n", liaison_rc_string(rc), liaison_client_error(c));
 *   liaison_client_close(c);
 *
 * Conventions, for every function below unless its comment says otherwise:
 *
 * Errors. Every call returns a liaison_rc. The code is the stable, documented part:
 *   branch on it. The text of liaison_client_error() (or of the err buffer of the
 *   connect and open functions) is for people: it names the problem and the fix, in
 *   English, and may change between versions. Nothing is printed to stdout or stderr,
 *   and errno is not part of the API.
 * Arguments. Pointers are non-NULL unless a comment says NULL is allowed; a NULL
 *   client handle is undefined behaviour (except in liaison_client_close and
 *   liaison_client_error). Strings are NUL-terminated UTF-8 and only read during the
 *   call: the library keeps no pointer to them.
 * Ownership. The library allocates nothing the caller must free, except the handle
 *   (liaison_client_close), the answer of liaison_call (free()) and the messages of
 *   liaison_inbox and liaison_read (liaison_messages_free).
 * Blocking. A call sends its request and waits for the daemon's answer, up to the
 *   timeout of the handle (liaison_client_set_timeout, default 30 s). Signals do not
 *   interrupt the wait, unless the caller asks for it (liaison_client_set_interrupt).
 *   Nothing is retried: a request the daemon answered with an
 *   error had no effect; after LIAISON_TIMEOUT, or LIAISON_UNREACHABLE from a call
 *   on an open handle, the request may still have been, or still be, carried out:
 *   look (liaison outbox, or a ListRequest) before sending it again, or the care
 *   team may get it twice.
 * Threads. A handle has no lock: use it from one thread at a time (it may move
 *   between threads). Handles are independent of each other (each has its own
 *   ZeroMQ context), so one handle per thread needs no coordination. A child of
 *   fork() must not use its parent's handles.
 */
#ifndef LIAISON_CLIENT_H
#define LIAISON_CLIENT_H

#include <signal.h>
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

#define LIAISON_ID_HEX 33 /* 32 lower-case hex characters of a message id + NUL */

typedef enum liaison_rc {
    LIAISON_OK = 0,
    LIAISON_BAD_REQUEST = 1,  /* the request was malformed or invalid (fix the input); nothing was done */
    LIAISON_REFUSED = 2,      /* valid, but refused by policy or state; nothing was done. Sending to a
                               * recipient not in the directory ("peer unknown") is REFUSED */
    LIAISON_NOT_FOUND = 3,    /* no such message, peer, review or node; nothing was done */
    LIAISON_INTERNAL = 4,     /* the daemon failed, or the library ran out of memory */
    LIAISON_UNREACHABLE = 5,  /* no daemon listens on the socket ("daemon not running"); from a call
                               * on an open handle: it stopped, and the request may have taken effect */
    LIAISON_TIMEOUT = 6,      /* no answer within the timeout: the request may still be carried out */
    LIAISON_PROTOCOL = 7,     /* the answer could not be understood (client and daemon versions differ?) */
    LIAISON_PERMISSION = 8,   /* this user may not use the socket (not in its group); only from
                               * liaison_client_connect and liaison_client_connect_path */
    LIAISON_INTERRUPTED = 9,  /* the wait was cut short by the caller's flag (only after
                               * liaison_client_set_interrupt): the request may still be carried out */
} liaison_rc;

/* The name of a code, e.g. "LIAISON_TIMEOUT", for logs: a static string, stable across
 * versions ("LIAISON_UNKNOWN" for a value not listed above). */
LIAISON_API const char *liaison_rc_string(liaison_rc rc);

/* liaison.wire.ContentType (wire.proto): the content_type of liaison_send and
 * liaison_submit, and the payload.proto message its payload is a serialization of.
 * The .proto files are installed; `pkg-config --variable=protodir liaison-client`
 * says where. The numbers never change. */
typedef enum liaison_content_type {
    LIAISON_CONTENT_TEXT = 1,              /* liaison.payload.TextMessage (or liaison_send_text) */
    LIAISON_CONTENT_PROGRESS_NOTE = 2,     /* liaison.payload.ProgressNote */
    LIAISON_CONTENT_MEDICATION_CHANGE = 3, /* liaison.payload.MedicationChange */
    LIAISON_CONTENT_ACK = 4,               /* not sent with liaison_send: use liaison_ack */
    LIAISON_CONTENT_CASE_REVIEW = 5,       /* liaison.payload.CaseReview */
} liaison_content_type;

typedef enum liaison_socket {
    LIAISON_SOCKET_CONTROL = 0, /* clinicians: messages, peers, status */
    LIAISON_SOCKET_AUDIT = 1,   /* auditors: audit operations only */
} liaison_socket;

typedef struct liaison_client liaison_client_t;

/* Connects to the daemon of the node whose home is `home` (NULL: $LIAISON_HOME, else
 * the systemd layout, /run/liaison) and stores a new handle in *out, to be freed with
 * liaison_client_close. It checks that a daemon accepts connections on the socket but
 * sends nothing, so it returns at once. On failure *out is NULL, and err (if not NULL,
 * errlen > 0; 256 bytes is enough, a longer message is cut) holds a NUL-terminated
 * message. Returns:
 *   LIAISON_OK          connected
 *   LIAISON_UNREACHABLE the daemon is not running (no socket, or a stale one)
 *   LIAISON_PERMISSION  the socket may not be used by this user (not in its group)
 *   LIAISON_NOT_FOUND   there is no node at all at home (no socket, no configuration)
 *   LIAISON_BAD_REQUEST which is not a liaison_socket, or the path is not a socket or
 *                       is too long
 *   LIAISON_INTERNAL    out of memory, or ZeroMQ failed
 *  */
LIAISON_API liaison_rc liaison_client_connect(const char *home, liaison_socket which, liaison_client_t **out,
                                              char *err, size_t errlen);

/* Same, with the socket path given directly (NOT_FOUND is not returned).  */
LIAISON_API liaison_rc liaison_client_connect_path(const char *socket_path, liaison_client_t **out, char *err,
                                                   size_t errlen);

/* liaison_client_connect, returning the handle, or NULL on any failure (the code is
 * lost: prefer liaison_client_connect). err as there. */
LIAISON_API liaison_client_t *liaison_client_open(const char *home, liaison_socket which, char *err, size_t errlen);

/* liaison_client_connect_path, returning the handle or NULL. */
LIAISON_API liaison_client_t *liaison_client_open_path(const char *socket_path, char *err, size_t errlen);

/* Closes the connection and frees the handle; c is invalid afterwards. Does not block:
 * requests submitted and not collected may or may not reach the daemon (collect
 * every answer you rely on), and their answers are dropped. NULL is a no-op. */
LIAISON_API void liaison_client_close(liaison_client_t *c);

/* How long each later call on c waits for its answer (and for room to send), in
 * milliseconds. timeout_ms <= 0 restores the default, 30000; there is no infinite
 * wait. While waiting, the library checks every 500 ms that the daemon is still
 * there, so a daemon that stops is reported (LIAISON_UNREACHABLE) before the timeout. */
LIAISON_API void liaison_client_set_timeout(liaison_client_t *c, int timeout_ms);

/* Lets the caller cut short the waits of later calls on c, typically from a SIGINT
 * handler that only sets *flag (a sig_atomic_t, as C allows a handler to write). While
 * *flag is non-zero, a call that is waiting for its answer (or for room to send) stops
 * waiting within at most 500 ms, at once when the signal interrupts the wait (install
 * the handler without SA_RESTART or with it: either works), and returns
 * LIAISON_INTERRUPTED, unless the answer had already arrived, which is then returned
 * as usual. Like LIAISON_TIMEOUT, LIAISON_INTERRUPTED leaves the outcome open: the
 * request may already have been, or still be, carried out (look before sending it
 * again). A call started while *flag is non-zero sends its request and returns without
 * waiting. The library only reads *flag, never clears it: reset it to 0 before the next
 * call you want to wait. A synchronous call abandons its answer; after
 * liaison_collect the requests stay pending and can be collected once *flag is 0.
 * flag NULL (the default) restores the documented behaviour: signals do not interrupt
 * the wait. The flag must outlive c, or be unset first. */
LIAISON_API void liaison_client_set_interrupt(liaison_client_t *c, const volatile sig_atomic_t *flag);

/* The message of the last failed call on c: a NUL-terminated string owned by c, valid
 * until the next call on c or liaison_client_close. A successful call does not clear
 * it: read it only after a code other than LIAISON_OK. For NULL, a static string. */
LIAISON_API const char *liaison_client_error(const liaison_client_t *c);

/* Raw call, for every operation of control.proto: req is a serialized
 * liaison.control.Request of req_len bytes (its request_id is set by the library). On
 * LIAISON_OK *resp is a malloc'd serialized liaison.control.Response of *resp_len
 * bytes, to be freed with free(). Any other code: *resp is NULL and *resp_len 0, and
 * the daemon's error is in liaison_client_error (LIAISON_BAD_REQUEST also when req
 * does not decode). How to list the inbox, read a message or follow deliveries and
 * acknowledgements (ListRequest, ShowRequest): docs/PROTOCOL.md and liaison_client(3).
 * Abandons pending answers, as a synchronous call does (see liaison_submit). */
LIAISON_API liaison_rc liaison_call(liaison_client_t *c, const void *req, size_t req_len, void **resp, size_t *resp_len);

/* Sends a free-text message (subject and text: NULL is ""). On LIAISON_OK the message
 * is stored and queued durably, the daemon delivers it (retrying across outages and
 * restarts), and its id is in id_hex (NULL: not wanted). LIAISON_OK is not delivery:
 * follow the message's delivery state with a ListRequest (liaison_call).
 * `to`: recipient node ids separated by commas or spaces. Returns, besides the
 * transport codes (UNREACHABLE, TIMEOUT, PROTOCOL, INTERNAL):
 *   LIAISON_BAD_REQUEST no recipient, an invalid id, too many, or an invalid payload
 *   LIAISON_REFUSED     a recipient is not in the directory (peer unknown: add its card)
 *   LIAISON_NOT_FOUND   (liaison_send) thread_id names no message held here */
LIAISON_API liaison_rc liaison_send_text(liaison_client_t *c, const char *to, const char *subject, const char *text,
                             char id_hex[LIAISON_ID_HEX]);

/* Sends any payload, as liaison_send_text: content_type a liaison_content_type,
 * payload (len bytes) a serialized payload.proto message of that type, thread_id the
 * 16 raw bytes of a message id whose thread this message continues, or NULL.
 * LIAISON_REFUSED also when the payload's patient id is new to the node and differs
 * only in letter case from one it holds (ids are case-sensitive: it would start a
 * second record of what is most likely the same patient); see liaison_send_flags. */
LIAISON_API liaison_rc liaison_send(liaison_client_t *c, const char *to, uint32_t content_type, const void *payload, size_t len,
                        const uint8_t *thread_id, char id_hex[LIAISON_ID_HEX]);

/* liaison_send with flags (0, or LIAISON_SEND_* or'ed; others: LIAISON_BAD_REQUEST). */
#define LIAISON_SEND_DISTINCT_PATIENT 1u /* the patient id that differs only in letter case
                                            from one on the node is another patient: send,
                                            and do not ask again for this id */
LIAISON_API liaison_rc liaison_send_flags(liaison_client_t *c, const char *to, uint32_t content_type,
                                          const void *payload, size_t len, const uint8_t *thread_id, unsigned flags,
                                          char id_hex[LIAISON_ID_HEX]);

/* Acknowledges a received message (e.g. a medication change) given by its 32-hex id,
 * with an optional comment (NULL: none). On LIAISON_OK the acknowledgement is queued
 * to the message's sender and other recipients and its own id is in ack_id_hex (NULL:
 * not wanted). LIAISON_BAD_REQUEST: msg_id_hex is not a message id; LIAISON_REFUSED:
 * no such message here, or one this node sent, or already acknowledged, or not read on
 * this node yet (liaison_read, or liaison_inbox with LIAISON_INBOX_READ, reads it). */
LIAISON_API liaison_rc liaison_ack(liaison_client_t *c, const char *msg_id_hex, const char *comment, char ack_id_hex[LIAISON_ID_HEX]);

/* Pipelining: submit many sends without waiting, then collect their answers.
 * liaison_submit returns LIAISON_OK once the request is handed to the socket and gives
 * its token (NULL: not wanted); it checks only that the recipient list is not too
 * long (BAD_REQUEST); everything else, an empty list included, is answered through
 * liaison_collect. liaison_collect waits for the next answer (timeout as set) and reports
 * the token it belongs to (NULL: not wanted), its result code (as liaison_send's) and
 * the message id (NULL: not wanted). Answers may arrive in any order: match them by
 * token. Each LIAISON_OK answer means the message is committed (stored and queued
 * durably). liaison_collect with nothing pending returns LIAISON_BAD_REQUEST at once;
 * after LIAISON_TIMEOUT or LIAISON_UNREACHABLE the uncollected requests may still be
 * carried out. A synchronous call (liaison_send, liaison_ack, liaison_call, ...)
 * abandons the answers of requests still pending (the requests are still carried
 * out) and resets liaison_pending to 0. liaison_collect also takes the answer of a
 * pipelined wait (liaison_submit_wait), giving the waited message's id; use
 * liaison_collect_wait to see how far it got. */
LIAISON_API liaison_rc liaison_submit(liaison_client_t *c, const char *to, uint32_t content_type, const void *payload, size_t len,
                          uint64_t *token);
LIAISON_API liaison_rc liaison_collect(liaison_client_t *c, uint64_t *token, char id_hex[LIAISON_ID_HEX]);

/* liaison_submit of a free-text message. */
LIAISON_API liaison_rc liaison_submit_text(liaison_client_t *c, const char *to, const char *subject, const char *text,
                                           uint64_t *token);

/* Number of submitted requests not yet collected. */
LIAISON_API size_t liaison_pending(const liaison_client_t *c);

/* Waiting for a sent message to settle.
 *
 * Where a message this node sent stands, as liaison_wait reports it. */
typedef struct liaison_progress {
    unsigned recipients;   /* recipients of the message */
    unsigned delivered;    /* whose receipt this node holds: the message is stored on their node */
    unsigned rejected;     /* that refused it for good, or whose new keys cannot open it (liaison show
                            * MSG_ID says why); it will not reach them */
    unsigned acknowledged; /* that acknowledged it (a medication change asking for acknowledgement) */
    int settled;           /* 1: nothing more to wait for: every recipient has it or rejected it, and
                            * with LIAISON_WAIT_ACKS every one that has it acknowledged it; 0: the wait
                            * ran out first */
} liaison_progress_t;

#define LIAISON_WAIT_ACKS 1u          /* also wait for the recipients' acknowledgements */
#define LIAISON_WAIT_MAX_MS 86400000  /* the longest wait: 24 hours */

/* Waits until message id_hex, which this node sent, settles, or timeout_ms (0 to
 * LIAISON_WAIT_MAX_MS; 0: the state now) runs out, and fills *progress (NULL: not
 * wanted). The daemon answers as soon as the receipt (or the rejection, or the
 * acknowledgement) that settles it is committed, so a script need not poll. This call
 * waits up to timeout_ms plus 10 s, whatever the handle's timeout. LIAISON_OK does not
 * mean delivered: check progress->settled, and delivered against recipients. Waiting
 * has no effect on the message and is not audited (it reads no content). Returns,
 * besides the transport codes:
 *   LIAISON_BAD_REQUEST id_hex is not a message id, timeout_ms out of range, or unknown flags
 *   LIAISON_NOT_FOUND   no such message on this node
 *   LIAISON_REFUSED     the message was received, not sent, by this node; or
 *                       LIAISON_WAIT_ACKS for a message that asks for no acknowledgement;
 *                       or too many waits in progress on the node (16,384, of which
 *                       4,096 for one user)
 * A daemon that stops while a call waits makes it return LIAISON_UNREACHABLE; the
 * message's delivery goes on when it starts again: wait again then. */
LIAISON_API liaison_rc liaison_wait(liaison_client_t *c, const char *id_hex, int timeout_ms, unsigned flags,
                                    liaison_progress_t *progress);

/* Pipelined waits, as liaison_submit: liaison_submit_wait checks its arguments as
 * liaison_wait does and hands the request over; liaison_collect_wait takes the next
 * answer of any request submitted on c (a wait or a send), with its token: for a wait
 * it fills *progress (NULL: not wanted) and id_hex with the waited message's id; for a
 * send, id_hex is the new message's id and *progress is all zero. The handle's
 * timeout applies (liaison_client_set_timeout): set it above the waits' own. */
LIAISON_API liaison_rc liaison_submit_wait(liaison_client_t *c, const char *id_hex, int timeout_ms, unsigned flags,
                                           uint64_t *token);
LIAISON_API liaison_rc liaison_collect_wait(liaison_client_t *c, uint64_t *token, char id_hex[LIAISON_ID_HEX],
                                            liaison_progress_t *progress);

/* Reading messages: what liaison inbox and liaison show give, without control.proto.
 *
 * An acknowledgement of a medication change, as this node has seen it. */
typedef struct liaison_ack_info {
    char ack_id[LIAISON_ID_HEX]; /* the acknowledgement message */
    const char *by;              /* the node that acknowledged */
    uint64_t at_ms;              /* when, by its clock (the acknowledgement's creation time) */
    const char *comment;         /* its comment, from liaison_read only (each comment returned is a
                                  * read of that acknowledgement, audited); else NULL */
} liaison_ack_info_t;

/* A message as liaison_inbox and liaison_read return it. The strings, the payload and
 * the acknowledgements belong to the array; liaison_messages_free frees them (and wipes
 * the payloads and the comments). */
typedef struct liaison_message {
    char id[LIAISON_ID_HEX];        /* the message id, 32 lower-case hex digits */
    char thread_id[LIAISON_ID_HEX]; /* its thread (a medication change's acknowledgement, a
                                     * case review), or "" */
    char ref_id[LIAISON_ID_HEX];    /* an acknowledgement: the message it acknowledges; else "" */
    const char *sender;             /* node id of its author */
    const char *recipients;         /* node ids, comma-separated, in the sender's order; the sender
                                     * is among them (PROTOCOL.md 5) */
    uint32_t content_type;          /* LIAISON_CONTENT_*: the payload's message type */
    uint64_t created_ms;            /* when the sender made it, by its clock (ms since the epoch) */
    uint64_t received_ms;           /* when this node stored it */
    uint64_t read_ms;               /* a received message: its first read on this node (a read by
                                     * this very call included); 0: unread. A sent message: 0
                                     * (what the recipients did with it: liaison_wait) */
    int ack_required;               /* a medication change that asks for acknowledgement */
    int awaiting_ack;               /* a received one which this node has not acknowledged yet
                                     * (liaison_ack); 0 for a sent message */
    int urgent;
    const void *payload;            /* the decrypted payload, a serialized liaison.payload message of
                                     * content_type (payload.proto); NULL when not asked for, or
                                     * when unopenable */
    size_t payload_len;
    int unopenable;                 /* 1: asked for, but the message cannot be opened with the keys
                                     * this node has for its sender (its cards were removed or
                                     * replaced); the attempt is audited, and the message stays
                                     * unread */
    size_t n_acks;                  /* acknowledgements of this message seen on this node (a sent
                                     * medication change: the recipients'; a received one: every
                                     * recipient's, this node's own included) */
    const liaison_ack_info_t *acks;
} liaison_message_t;

#define LIAISON_INBOX_UNREAD 0x1u    /* only messages not yet read on this node */
#define LIAISON_INBOX_NEEDS_ACK 0x2u /* only medication changes this node has yet to acknowledge */
#define LIAISON_INBOX_READ 0x4u      /* with their payloads: each message returned is read, that
                                      * is marked read and audited (message-read), as by liaison_read */
#define LIAISON_INBOX_OLDEST 0x8u    /* with more matching than limit: take the oldest, not the
                                      * newest (they are still returned newest first) */

/* The messages this node received, newest first by their creation time (the sender's
 * clock): at most limit of them (0: 100, at most 1,000), filtered by flags
 * (LIAISON_INBOX_*). On LIAISON_OK *msgs is an array of *n messages (NULL when none) to
 * free with liaison_messages_free; on any other code *msgs is NULL and *n is 0. Without
 * LIAISON_INBOX_READ nothing is read: no payloads, nothing audited. With it, the
 * answer stops once its payloads reach 16 MiB, so fewer than limit may come back while
 * more match: with LIAISON_INBOX_UNREAD | LIAISON_INBOX_OLDEST, call again while a call
 * returns some message with a payload, to read them all in order (messages that cannot
 * be opened stay unread and come back every time: skip them by their unopenable flag).
 * Returns, besides the transport codes,
 * LIAISON_BAD_REQUEST for unknown flags, a limit over 1,000 or n NULL, and
 * LIAISON_INTERNAL when a read cannot be recorded in the audit log (no content is then
 * returned; the reads recorded before it stay recorded). */
LIAISON_API liaison_rc liaison_inbox(liaison_client_t *c, unsigned flags, unsigned limit, liaison_message_t **msgs,
                                     size_t *n);

/* Reads message id_hex (received or sent by this node): *msg is one message, with its
 * payload and its acknowledgements' comments, to free with liaison_messages_free(*msg, 1).
 * A received message is marked read on its first read; every read is audited
 * (message-read), each acknowledgement comment returned too. Returns, besides the
 * transport codes, LIAISON_BAD_REQUEST (not a message id), LIAISON_NOT_FOUND,
 * LIAISON_REFUSED (it cannot be opened with the keys this node has for its sender; the
 * attempt is audited) or LIAISON_INTERNAL (the read cannot be recorded in the audit log,
 * so nothing is shown). */
LIAISON_API liaison_rc liaison_read(liaison_client_t *c, const char *id_hex, liaison_message_t **msg);

/* Frees what liaison_inbox or liaison_read returned, wiping the payloads. NULL-safe. */
LIAISON_API void liaison_messages_free(liaison_message_t *msgs, size_t n);

#ifdef __cplusplus
}
#endif

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* The typed call used by the liaison CLI (not part of the public API): the same
 * connection as liaison_client.h, with protobuf-c request and response structures. */
#ifndef LIAISON_CLIENT_INTERNAL_H
#define LIAISON_CLIENT_INTERNAL_H

#include "control.pb-c.h"
#include "liaison_client.h"

/* Sends rq (request_id is set here) and waits for its answer. On LIAISON_OK or a
 * daemon-side error (BAD_REQUEST..INTERNAL) *resp holds the unpacked response (free
 * with liaison__control__response__free_unpacked); otherwise *resp is NULL. The rc
 * mirrors resp->code; liaison_client_error() has the daemon's message. */
liaison_rc liaison_call_pb(liaison_client_t *c, Liaison__Control__Request *rq, Liaison__Control__Response **resp);

/* Frees a response after wiping the clear text it may hold (payloads of a list or a
 * show, acknowledgement comments). NULL-safe. */
void liaison_response_free(Liaison__Control__Response *r);

/* A wait (liaison_wait) whose whole answer the caller wants: on LIAISON_OK *resp holds
 * a Response with its WaitResult. id is 16 bytes; timeout and flags as liaison_wait. */
liaison_rc liaison_wait_pb(liaison_client_t *c, const uint8_t *id, int timeout_ms, unsigned flags,
                           Liaison__Control__Response **resp);

#endif

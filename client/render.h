/* SPDX-License-Identifier: Apache-2.0 */
/* How messages and their payloads look to people (text) and to scripts (JSON). */
#ifndef LIAISON_RENDER_H
#define LIAISON_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "control.pb-c.h"

/* One message's metadata as a JSON object (no payload). */
json_t *render_summary_json(const Liaison__Control__MessageSummary *m);

/* One line: id, time, direction and party, type, flags (unread, needs ack, urgent, overdue). */
void render_summary_line(const Liaison__Control__MessageSummary *m);

/* Delivery and acknowledgement state of an outgoing message, one line per recipient. */
void render_deliveries(const Liaison__Control__MessageSummary *m, const char *indent);

/* A payload as JSON (the fields of its type, enums by name); a JSON null if it
 * cannot be decoded. */
json_t *render_payload_json(uint32_t content_type, const uint8_t *data, size_t len);

/* A payload for people, several lines. */
void render_payload_text(uint32_t content_type, const uint8_t *data, size_t len, const char *indent);

/* A message with its header and payload, as shown by `liaison show`. */
void render_message_text(const Liaison__Control__MessageSummary *m, const uint8_t *payload, size_t len);
/* After a message received that still waits for this node's acknowledgement: the
 * command that gives it, or, when its sender has been removed from the directory (an
 * acknowledgement is a message to them), what has to happen first. */
void render_ack_hint(const Liaison__Control__MessageSummary *m, bool sender_in_directory);
json_t *render_message_json(const Liaison__Control__MessageSummary *m, const uint8_t *payload, size_t len);

/* Scores of a progress note (-1 when absent) and its session date. Returns 0 if the
 * payload is a progress note. */
int render_note_scores(uint32_t content_type, const uint8_t *data, size_t len, int *phq9, int *gad7,
                       char session_date[11]);

/* The patient reference (id, label) of a clinical payload. Returns 0 if it has one. */
int render_patient(uint32_t content_type, const uint8_t *data, size_t len, char *id, size_t idlen, char *label,
                   size_t labellen);

/* After a listing by patient: how many `what` (e.g. "messages", "audit entries") are
 * about an id that differs from `patient` only in letter case, and so were not listed
 * (ids are case-sensitive). Prints nothing when n is 0. */
void render_case_variants(uint32_t n, const char *patient, const char *what);

/* The note under a listing the daemon cut at its 16 MiB of contents (ListResult.truncated):
 * how many were shown, and hint, a sentence on how to see the rest. */
void render_truncated(bool truncated, size_t shown, const char *hint);

/* The note under an inbox or outbox listing cut at its limit: how many matching messages
 * are left out (`left`; with !exact, at least that many), that the `shown` are the newest,
 * and how to see the rest (`liaison CMD ... --limit N`, at most max_limit, or a filter). */
void render_left_out(uint64_t left, bool exact, size_t shown, const char *cmd, uint32_t max_limit,
                     uint64_t oldest_ms);

#endif

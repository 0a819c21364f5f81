/* SPDX-License-Identifier: Apache-2.0 */
/* Text forms of liaison values: hex message ids, base64url, node ids, roles. */
#ifndef LIAISON_TEXT_H
#define LIAISON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define TEXT_MSGID_HEX (2u * LIAISON_MSGID_BYTES + 1u) /* 32 hex chars + NUL */

/* Writes 32 lower-case hex characters and a NUL into out. */
void text_msgid_to_hex(const uint8_t id[static LIAISON_MSGID_BYTES], char out[static TEXT_MSGID_HEX]);

/* Parses exactly 32 hex characters (either case). Returns 0, or -1 if s is not that. */
__attribute__((warn_unused_result))
int text_msgid_from_hex(const char *s, uint8_t id[static LIAISON_MSGID_BYTES]);

/* True if s is a valid node id: 1..64 bytes of [a-z0-9._-], starting with [a-z0-9]. */
bool text_valid_id(const char *s);

/* True if s is one of the roles: therapist, psychiatrist, pcp, pharmacist, nurse,
 * case-manager, auditor. */
bool text_valid_role(const char *s);

/* The list of roles joined by ", ", for error messages. */
const char *text_roles(void);

/* True if s is a ZeroMQ tcp:// or ipc:// endpoint of sane length. */
bool text_valid_endpoint(const char *s);

/* True if s is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF)
 * of at most max bytes with no control characters (C0, DEL, C1). When multiline, tab and
 * newline are allowed; a single line allows neither (nor \r in either case). */
bool text_valid_utf8(const char *s, size_t max, bool multiline);

/* Copies at most dstlen-1 bytes of untrusted s (NULL is taken as "") into dst, always
 * NUL-terminated, with every byte that is not printable ASCII (control characters, DEL,
 * any byte >= 0x80) replaced by '?', so that text from a peer or a card cannot forge log
 * lines or put escape sequences into a terminal. dstlen must be at least 1. */
void text_printable(char *dst, size_t dstlen, const char *s);

/* base64url without padding. Returns a malloc'd NUL-terminated string, or NULL. */
char *text_b64_encode(const uint8_t *bin, size_t len);

/* Decodes base64url without padding, ignoring ASCII whitespace anywhere.
 * On success returns 0 and a malloc'd buffer in *out (*out_len bytes);
 * on failure returns -1 and *out is NULL. Refuses input decoding to more than max. */
__attribute__((warn_unused_result))
int text_b64_decode(const char *s, size_t max, uint8_t **out, size_t *out_len);

/* Formats ms-since-epoch as UTC "YYYY-MM-DDTHH:MM:SSZ" (buf >= 21 bytes). */
void text_time_utc(uint64_t ms, char *buf, size_t len);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.mmm]]Z" or a number of ms into ms since epoch (UTC).
 * Returns 0 or -1. */
__attribute__((warn_unused_result))
int text_parse_time(const char *s, uint64_t *ms);

#endif

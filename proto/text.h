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

/* Endpoints are "tcp://HOST:PORT" (PORT 1..65535 in decimal) or "ipc://PATH", at most
 * 256 printable ASCII bytes. A bind (listen) address's HOST is an IPv4 address, an IPv6
 * address in brackets or '*'; an address to dial (advertise, card endpoint) may also be
 * a DNS host name, but not '*'. text_endpoint_problem returns NULL if s is valid, else a
 * static phrase saying what is wrong, for "'ENDPOINT': PHRASE" messages. */
const char *text_endpoint_problem(const char *s, bool bind);

/* True if s is a valid endpoint to dial (text_endpoint_problem(s, false) is NULL). */
bool text_valid_endpoint(const char *s);

/* True if s is a valid endpoint to bind (text_endpoint_problem(s, true) is NULL). */
bool text_valid_bind_endpoint(const char *s);

/* The rule a card's endpoint is decoded with: printable ASCII, at most 256 bytes,
 * tcp:// or ipc:// and something after it. Cards a node stored before the rule above
 * existed stay usable; a card being added is held to text_endpoint_problem(s, false). */
bool text_plausible_endpoint(const char *s);

/* True if s binds every interface (a tcp endpoint whose host is '*', 0.0.0.0 or [::]):
 * not an address peers can be told to dial. */
bool text_endpoint_wildcard(const char *s);

/* True if s is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF)
 * of at most max bytes with no control characters (C0, DEL, C1). When multiline, tab and
 * newline are allowed; a single line allows neither (nor \r in either case). */
bool text_valid_utf8(const char *s, size_t max, bool multiline);

/* As text_valid_utf8; when s is not valid, also writes into why a phrase saying what is
 * wrong and where (e.g. "contains a control character (0x1b) at line 3", "is not valid
 * UTF-8 (byte 0xff at line 2)", "is longer than 200 bytes"), never quoting the text. */
bool text_check_utf8(const char *s, size_t max, bool multiline, char *why, size_t whylen);

/* True for the code points that text_visible shows by name, never as themselves: the
 * invisible bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069), with which a sender could make a terminal show a dose or an id
 * reordered ("Trojan Source"), and the control characters other than tab and newline
 * (C0, DEL, C1), which the text rules refuse on the wire but a display must not trust. */
bool text_shown_by_name(uint32_t cp);

/* The number of terminal columns s takes as text_visible shows it: 2 for a wide (East
 * Asian) character, 0 for a combining mark or a zero-width character, the length of its
 * name for one shown by name ("<U+202E>", "<0xFF>"), 1 for any other. For lining up
 * table columns that hold names and labels ("田中" is 2 characters, 6 bytes, 4 columns;
 * "Zoë" typed with a combining diaeresis 3 columns and 4 characters). */
size_t text_display_width(const char *s);

/* Writes into out (cap bytes, NUL-terminated, cut between characters) the key under which
 * two names count as the same one typed differently: letters lower-cased, not only
 * ASCII but Latin (À-Þ, Latin Extended-A), Greek (final sigma as sigma) and Cyrillic,
 * and ASCII spaces and punctuation dropped ("SCHLAFQUALITÄT" and "Schlafqualität",
 * "ΥΠΝΟΣ" and "Υπνος" have one key). Bytes that are not valid UTF-8 are kept as they
 * are. cap must be at least 1. */
void text_fold_key(const char *s, char *out, size_t cap);

typedef void (*text_put_fn)(void *ctx, const char *p, size_t len);

/* Passes n bytes of s to put as they are to be shown to a person: every character for
 * which text_shown_by_name is true becomes its name ("<U+202E>", "<U+001B>"), every byte
 * that does not start a valid UTF-8 character becomes "<0xFF>", the rest is passed on
 * unchanged (in as few calls as it can). When final is false, a UTF-8 sequence cut by
 * the end of s (at most 3 bytes) is not passed on: the return value, the number of bytes
 * consumed, is then less than n, and the caller gives those bytes again with what
 * follows. With final true it returns n. */
size_t text_visible(const char *s, size_t n, bool final, text_put_fn put, void *ctx);

/* Copies at most dstlen-1 bytes of untrusted s (NULL is taken as "") into dst, always
 * NUL-terminated, with every byte that is not printable ASCII (control characters, DEL,
 * any byte >= 0x80) replaced by '?', so that text from a peer or a card cannot forge log
 * lines or put escape sequences into a terminal. dstlen must be at least 1. */
void text_printable(char *dst, size_t dstlen, const char *s);

/* Copies untrusted s (NULL is taken as "") into dst as single-line UTF-8 of at most
 * dstlen-1 bytes, always NUL-terminated: every byte that does not start a valid UTF-8
 * character, and every control character (C0 including tab and newline, DEL, C1), becomes
 * '?', and the copy is cut only between characters. Unlike text_printable it keeps
 * non-ASCII text. Returns true if dst equals s (nothing replaced or cut). Used where a
 * string leaves the node in a protobuf `string` field (audit entries, control errors),
 * which proto3 decoders other than protobuf-c refuse unless it is valid UTF-8. dst may be
 * s itself (cleaning in place); dstlen must be at least 1. */
bool text_clean_line(char *dst, size_t dstlen, const char *s);

/* Copies msg into out (cap bytes, NUL-terminated) with its quoted value replaced by
 * '?': for an error message that quotes what a request typed, kept in the audit log.
 * The value runs from the first quote opening after a non-alphanumeric byte ("node's"
 * is no quote) to the last quote followed by a non-alphanumeric byte or the end. */
void text_mask_quoted(char *out, size_t cap, const char *msg);

/* The optimal-string-alignment (restricted Damerau-Levenshtein) distance of a and b:
 * insertions, deletions, substitutions and swaps of two adjacent characters each count
 * 1, so "dr.okafr" is 1 from "dr.okafor" and "dr.okafro" is 1 from it too. Anything
 * over limit is returned as limit + 1, as is any string over TEXT_EDIT_MAX bytes (typo
 * suggestions compare short names: node ids, command names). Bytes, not characters. */
#define TEXT_EDIT_MAX 64
size_t text_edit_distance(const char *a, const char *b, size_t limit);

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

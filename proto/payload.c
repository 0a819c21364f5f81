/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the validation rules of every payload type. */
#include "payload.h"

#include <stdio.h>
#include <string.h>

#include "payload.pb-c.h"
#include "text.h"
#include "wire.pb-c.h"

bool payload_known_type(uint32_t ct)
{
    return ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT;
}

const char *payload_type_name(uint32_t ct)
{
    switch (ct) {
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT: return "text";
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_PROGRESS_NOTE: return "progress-note";
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_MEDICATION_CHANGE: return "medication-change";
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK: return "acknowledgement";
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW: return "case-review";
    default: return "unknown";
    }
}

static int validate_text(const uint8_t *data, size_t len, char *err, size_t errlen)
{
    int rc = -1;
    Liaison__Payload__TextMessage *m = liaison__payload__text_message__unpack(NULL, len, data);
    if (!m) {
        snprintf(err, errlen, "text message: not a valid TextMessage");
        goto out;
    }
    if (!text_valid_utf8(m->subject, PAYLOAD_MAX_SUBJECT, false)) {
        snprintf(err, errlen, "subject: must be a single line of UTF-8, at most %u bytes", PAYLOAD_MAX_SUBJECT);
        goto out;
    }
    if (!m->text[0] || !text_valid_utf8(m->text, PAYLOAD_MAX_TEXT, true)) {
        snprintf(err, errlen, "text: must be non-empty UTF-8 text of at most %u bytes", PAYLOAD_MAX_TEXT);
        goto out;
    }
    rc = 0;
out:
    if (m)
        liaison__payload__text_message__free_unpacked(m, NULL);
    return rc;
}

int payload_validate(uint32_t ct, const uint8_t *data, size_t len, payload_info_t *info, char *err, size_t errlen)
{
    payload_info_t scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof *info);
    if (len > LIAISON_MAX_PAYLOAD) {
        snprintf(err, errlen, "payload: %zu bytes, limit is %u", len, LIAISON_MAX_PAYLOAD);
        return -1;
    }
    switch (ct) {
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT:
        return validate_text(data, len, err, errlen);
    default:
        snprintf(err, errlen, "content type %u is not known to this node", ct);
        return -1;
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the text forms of liaison values (proto/text.c) on a NUL-terminated copy of the
 * input: base64url decoding (cards), time parsing (CLI and control filters), hex message
 * ids, UTF-8 validation (every user-entered string), ids, roles and endpoints. Checks the
 * round trips: what decodes re-encodes to the same text. On the raw bytes: what the CLI
 * lets through to a terminal (text_visible) is valid multi-line text without controls,
 * the same whether the bytes come at once or in two pieces; and edit distances. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void check_b64(const char *s, size_t n)
{
    uint8_t *bin = NULL;
    size_t bin_len = 0;
    /* Under the card limit, and a tiny limit to reach the "too long" branch. */
    size_t max = n % 3 == 0 ? 4 : LIAISON_MAX_CARD_TEXT;
    if (text_b64_decode(s, max, &bin, &bin_len) != 0) {
        FUZZ_CHECK(bin == NULL);
        return;
    }
    FUZZ_CHECK(bin != NULL && bin_len <= max);
    /* Canonical: encoding the bytes gives the input without its whitespace. */
    char *enc = text_b64_encode(bin, bin_len);
    FUZZ_CHECK(enc != NULL);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_space(s[i]))
            continue;
        FUZZ_CHECK(enc[j] == s[i]);
        j++;
    }
    FUZZ_CHECK(enc[j] == '\0');
    free(enc);
    free(bin);
}

static void check_time(const char *s, size_t n)
{
    uint64_t ms = 0;
    if (text_parse_time(s, &ms) != 0)
        return;
    /* The full UTC form is exactly what text_time_utc prints. */
    if (n == 20 && s[4] == '-' && s[10] == 'T' && s[16] == ':') {
        char buf[32];
        text_time_utc(ms, buf, sizeof buf);
        FUZZ_CHECK(strcmp(buf, s) == 0);
    }
    if (n == 10 && s[4] == '-') {
        FUZZ_CHECK(ms % 86400000u == 0);
        char buf[32];
        text_time_utc(ms, buf, sizeof buf);
        FUZZ_CHECK(strncmp(buf, s, 10) == 0);
    }
}

static void check_hex(const char *s)
{
    uint8_t id[LIAISON_MSGID_BYTES];
    char hex[TEXT_MSGID_HEX];
    if (text_msgid_from_hex(s, id) != 0)
        return;
    text_msgid_to_hex(id, hex);
    FUZZ_CHECK(strlen(s) == 2 * LIAISON_MSGID_BYTES);
    for (size_t i = 0; i < 2 * LIAISON_MSGID_BYTES; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        FUZZ_CHECK(hex[i] == c);
    }
}

static void check_utf8(const char *s, size_t n)
{
    bool one = text_valid_utf8(s, n, false);
    bool multi = text_valid_utf8(s, n, true);
    FUZZ_CHECK(!one || multi); /* single-line text is also valid multi-line text */
    if (one)
        FUZZ_CHECK(!strchr(s, '\n') && !strchr(s, '\t') && !strchr(s, '\r'));
    if (multi)
        FUZZ_CHECK(!strchr(s, '\r'));
    size_t len = strlen(s);
    if (len > 0)
        FUZZ_CHECK(!text_valid_utf8(s, len - 1, true)); /* over the limit */
    (void)text_valid_utf8(s, LIAISON_MAX_NAME, false);
}

typedef struct shown {
    char *buf;
    size_t n, cap;
} shown_t;

static void put(void *ctx, const char *p, size_t len)
{
    shown_t *sh = ctx;
    FUZZ_CHECK(len <= sh->cap - sh->n);
    memcpy(sh->buf + sh->n, p, len);
    sh->n += len;
}

static void check_visible(const uint8_t *data, size_t size)
{
    /* The longest name is 8 bytes ("<U+202E>") for at least one byte of input. */
    size_t cap = 8 * size + 1;
    shown_t whole = {malloc(cap), 0, cap}, parts = {malloc(cap), 0, cap};
    FUZZ_CHECK(whole.buf && parts.buf);
    const char *s = (const char *)data;
    FUZZ_CHECK(text_visible(s, size, true, put, &whole) == size);
    size_t cut = size / 2, used = text_visible(s, cut, false, put, &parts);
    FUZZ_CHECK(used <= cut && cut - used <= 3);
    FUZZ_CHECK(text_visible(s + used, size - used, true, put, &parts) == size - used);
    FUZZ_CHECK(parts.n == whole.n && memcmp(parts.buf, whole.buf, whole.n) == 0);
    whole.buf[whole.n] = '\0';
    FUZZ_CHECK(text_valid_utf8(whole.buf, whole.n, true));
    /* No bidirectional control either: U+061C, U+200E/F, U+202A..E, U+2066..9. */
    for (size_t i = 0; i + 1 < whole.n; i++) {
        const unsigned char *u = (const unsigned char *)whole.buf + i;
        FUZZ_CHECK(!(u[0] == 0xd8 && u[1] == 0x9c));
        if (i + 2 < whole.n && u[0] == 0xe2)
            FUZZ_CHECK(!(u[1] == 0x80 && (u[2] == 0x8e || u[2] == 0x8f || (u[2] >= 0xaa && u[2] <= 0xae))) &&
                       !(u[1] == 0x81 && u[2] >= 0xa6 && u[2] <= 0xa9));
    }
    free(whole.buf);
    free(parts.buf);
}

static void check_edit_distance(const char *s, size_t n)
{
    const char *b = s + n / 2; /* the second half against the whole */
    size_t d = text_edit_distance(s, b, 2);
    FUZZ_CHECK(d <= 3 && d == text_edit_distance(b, s, 2));
    FUZZ_CHECK(text_edit_distance(b, b, 2) == (strlen(b) > TEXT_EDIT_MAX ? 3 : 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_visible(data, size);
    char *s = fuzz_cstr(data, size);
    size_t n = strlen(s);

    check_b64(s, n);
    check_time(s, n);
    check_hex(s);
    check_utf8(s, n);
    check_edit_distance(s, n);
    if (text_valid_id(s))
        FUZZ_CHECK(n >= 1 && n <= LIAISON_MAX_ID);
    if (text_valid_role(s))
        FUZZ_CHECK(strstr(text_roles(), s) != NULL);
    if (text_valid_endpoint(s))
        FUZZ_CHECK(n <= LIAISON_MAX_ENDPOINT && (strncmp(s, "tcp://", 6) == 0 || strncmp(s, "ipc://", 6) == 0));
    free(s);
    return 0;
}

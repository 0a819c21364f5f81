/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the text forms of liaison values and the syntax rules for ids, roles, endpoints and user text. */
#include "text.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

static const char *const roles[] = {
    "therapist", "psychiatrist", "pcp", "pharmacist", "nurse", "case-manager", "auditor",
};

#define ROLES_JOINED "therapist, psychiatrist, pcp, pharmacist, nurse, case-manager, auditor"

/* Locale-independent character classes: ids and wire text are ASCII by definition. */
static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void text_msgid_to_hex(const uint8_t id[static LIAISON_MSGID_BYTES], char out[static TEXT_MSGID_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < LIAISON_MSGID_BYTES; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 0x0f];
    }
    out[2 * LIAISON_MSGID_BYTES] = '\0';
}

int text_msgid_from_hex(const char *s, uint8_t id[static LIAISON_MSGID_BYTES])
{
    int rc = -1;
    uint8_t tmp[LIAISON_MSGID_BYTES];

    if (!s || strnlen(s, 2 * LIAISON_MSGID_BYTES + 1) != 2 * LIAISON_MSGID_BYTES)
        goto out;
    for (size_t i = 0; i < LIAISON_MSGID_BYTES; i++) {
        int hi = hex_value(s[2 * i]);
        int lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto out;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(id, tmp, sizeof tmp);
    rc = 0;
out:
    return rc;
}

bool text_valid_id(const char *s)
{
    if (!s || !is_lower_alnum(s[0]))
        return false;
    size_t n = strnlen(s, LIAISON_MAX_ID + 1);
    if (n > LIAISON_MAX_ID)
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_lower_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    }
    return true;
}

bool text_valid_role(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strcmp(s, roles[i]) == 0)
            return true;
    }
    return false;
}

const char *text_roles(void)
{
    return ROLES_JOINED;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True if h (hlen bytes) is a dotted-quad IPv4 address: four decimal parts 0..255,
 * no leading zeros (inet_pton would read "010" as 10; ZeroMQ might not). */
static bool ipv4_literal(const char *h, size_t hlen)
{
    char buf[16];
    struct in_addr a;
    if (hlen == 0 || hlen >= sizeof buf)
        return false;
    memcpy(buf, h, hlen);
    buf[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++)
        if (is_digit(buf[i]) && buf[i] == '0' && (i == 0 || buf[i - 1] == '.') && is_digit(buf[i + 1]))
            return false;
    return inet_pton(AF_INET, buf, &a) == 1;
}

/* True if h (hlen bytes, without the brackets) is an IPv6 address. */
static bool ipv6_literal(const char *h, size_t hlen)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (hlen == 0 || hlen >= sizeof buf)
        return false;
    memcpy(buf, h, hlen);
    buf[hlen] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* True if h (hlen bytes) is a DNS host name: dot-separated labels of 1..63 letters,
 * digits and '-', not starting or ending with '-', at most 253 bytes, an optional
 * final dot. A name of digits and dots only must be an IPv4 address instead. */
static bool dns_name(const char *h, size_t hlen)
{
    if (hlen && h[hlen - 1] == '.')
        hlen--;
    if (hlen == 0 || hlen > 253)
        return false;
    size_t label = 0;
    bool only_digits = true;
    for (size_t i = 0; i <= hlen; i++) {
        char c = i < hlen ? h[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        /* '_' is not in RFC 1123 host names, but resolvers accept it and internal
         * names (container services, Windows hosts) use it. */
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !is_digit(c) && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false;
        only_digits = only_digits && is_digit(c);
        label++;
    }
    return !only_digits;
}

const char *text_endpoint_problem(const char *s, bool bind)
{
    static const char tcp[] = "tcp://";
    static const char ipc[] = "ipc://";
    const size_t plen = sizeof tcp - 1;

    if (!s || !s[0])
        return "it is empty";
    size_t n = strnlen(s, LIAISON_MAX_ENDPOINT + 1);
    if (n > LIAISON_MAX_ENDPOINT)
        return "it is longer than 256 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return "it contains a space or a character that is not printable ASCII";
    }
    if (strncmp(s, ipc, plen) == 0)
        return n > plen ? NULL : "ipc:// needs a socket path (ipc:///PATH)";
    if (strncmp(s, tcp, plen) != 0)
        return "it must have the form tcp://HOST:PORT";
    const char *host = s + plen, *end = s + n, *colon;
    size_t hlen;
    bool v6 = host[0] == '[';
    if (v6) {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close)
            return "an IPv6 address needs its closing ']' (tcp://[ADDRESS]:PORT)";
        colon = close + 1;
        if (colon == end || *colon != ':')
            return "the port is missing (tcp://HOST:PORT)";
        host++;
        hlen = (size_t)(close - host);
    } else {
        colon = memchr(host, ':', (size_t)(end - host));
        if (!colon)
            return "the port is missing (tcp://HOST:PORT)";
        hlen = (size_t)(colon - host);
        if (memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return "an IPv6 address must be in brackets (tcp://[ADDRESS]:PORT)";
    }
    if (hlen == 0 && !v6)
        return "the host is missing (tcp://HOST:PORT)";
    const char *port = colon + 1;
    size_t portlen = (size_t)(end - port);
    unsigned long pv = 0;
    /* One spelling per port, as ZeroMQ and the card's signature take it byte for byte. */
    if (portlen > 1 && port[0] == '0') {
        bool digits = true, nonzero = false;
        for (size_t i = 0; digits && i < portlen; i++) {
            digits = is_digit(port[i]);
            nonzero = nonzero || port[i] != '0';
        }
        if (digits && nonzero) /* (all zeros: no port at all, said below) */
            return "the port must be written without leading zeros";
    }
    bool port_ok = portlen >= 1 && portlen <= 5 && port[0] != '0';
    for (size_t i = 0; port_ok && i < portlen; i++) {
        port_ok = is_digit(port[i]);
        pv = pv * 10u + (unsigned long)(port[i] - '0');
    }
    if (!port_ok || pv < 1 || pv > 65535)
        return "the port must be a number from 1 to 65535";
    if (v6)
        return ipv6_literal(host, hlen) ? NULL : "the part in brackets is not an IPv6 address";
    if (hlen == 1 && host[0] == '*')
        return bind ? NULL : "'*' is not an address peers can dial: give a host name or an IP address";
    if (ipv4_literal(host, hlen))
        return NULL;
    if (bind)
        return "a listen address must be an IPv4 address, an IPv6 address in brackets or * (every interface), not"
               " a host name";
    return dns_name(host, hlen) ? NULL : "the host is not a host name or an IP address";
}

bool text_valid_endpoint(const char *s)
{
    return text_endpoint_problem(s, false) == NULL;
}

bool text_valid_bind_endpoint(const char *s)
{
    return text_endpoint_problem(s, true) == NULL;
}

bool text_plausible_endpoint(const char *s)
{
    if (!s)
        return false;
    size_t n = strnlen(s, LIAISON_MAX_ENDPOINT + 1);
    if (n > LIAISON_MAX_ENDPOINT || n <= 6 || (strncmp(s, "tcp://", 6) != 0 && strncmp(s, "ipc://", 6) != 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

bool text_endpoint_wildcard(const char *s)
{
    static const char *const any[] = {"tcp://*:", "tcp://0.0.0.0:", "tcp://[::]:"};
    for (size_t i = 0; s && i < sizeof any / sizeof any[0]; i++)
        if (strncmp(s, any[i], strlen(any[i])) == 0)
            return true;
    return false;
}

/* Decodes one UTF-8 sequence at s (n bytes available). Returns its length and the
 * code point in *cp, or 0 if it is malformed, overlong, a surrogate or > U+10FFFF. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len;
    uint32_t min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;   /* continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Scans n bytes of text and returns the offset of the first byte that is not allowed
 * (n if none); *bad is its code point, or UINT32_MAX if the UTF-8 is malformed there. */
static size_t utf8_scan(const unsigned char *p, size_t n, bool multiline, uint32_t *bad)
{
    size_t i = 0;
    while (i < n) {
        /* Printable ASCII, the bulk of clinical text, eight bytes at a time: no byte
         * with the high bit set, none below 0x20, none equal to 0x7f. */
        if (n - i >= 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
            uint64_t below_space = (x - 0x20u * ones) & ~x & highs;
            uint64_t y = x ^ (0x7fu * ones);
            uint64_t is_del = (y - ones) & ~y & highs;
            if (((x & highs) | below_space | is_del) == 0) {
                i += 8;
                continue;
            }
        }
        uint32_t cp = 0;
        size_t step = utf8_next(p + i, n - i, &cp);
        if (step == 0) {
            *bad = UINT32_MAX;
            return i;
        }
        bool control = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
        if (control && !(multiline && (cp == '\t' || cp == '\n'))) {
            *bad = cp;
            return i;
        }
        i += step;
    }
    return n;
}

bool text_shown_by_name(uint32_t cp)
{
    bool control = (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
    bool bidi = cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
                (cp >= 0x2066 && cp <= 0x2069);
    return control || bidi;
}

/* Length of the UTF-8 sequence that lead byte c starts, 0 if c cannot start one. */
static size_t utf8_lead_len(unsigned char c)
{
    return c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
}

/* Zero-width: combining marks of the common scripts, zero-width spaces and joiners,
 * variation selectors. Wide: the East Asian Wide and Fullwidth blocks and emoji. Ranges
 * of Unicode 15, sorted, inclusive. */
static bool in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid][0])
            hi = mid;
        else if (cp > r[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static size_t cp_width(uint32_t cp)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x05bf, 0x05bf}, {0x05c1, 0x05c2},
        {0x05c4, 0x05c5}, {0x05c7, 0x05c7}, {0x0610, 0x061a}, {0x064b, 0x065f}, {0x0670, 0x0670},
        {0x06d6, 0x06dc}, {0x06df, 0x06e4}, {0x06e7, 0x06e8}, {0x06ea, 0x06ed}, {0x0900, 0x0902},
        {0x093a, 0x093a}, {0x093c, 0x093c}, {0x0941, 0x0948}, {0x094d, 0x094d}, {0x0951, 0x0957},
        {0x0962, 0x0963}, {0x0981, 0x0981}, {0x09bc, 0x09bc}, {0x09c1, 0x09c4}, {0x09cd, 0x09cd},
        {0x0e31, 0x0e31}, {0x0e34, 0x0e3a}, {0x0e47, 0x0e4e}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff},
        {0x200b, 0x200d}, {0x2060, 0x2064}, {0x20d0, 0x20ff}, {0x302a, 0x302d}, {0x3099, 0x309a},
        {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f}, {0xfeff, 0xfeff}, {0xe0100, 0xe01ef},
    };
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f}, {0x231a, 0x231b}, {0x2329, 0x232a}, {0x23e9, 0x23ec}, {0x23f0, 0x23f0},
        {0x23f3, 0x23f3}, {0x25fd, 0x25fe}, {0x2614, 0x2615}, {0x2648, 0x2653}, {0x267f, 0x267f},
        {0x2693, 0x2693}, {0x26a1, 0x26a1}, {0x26aa, 0x26ab}, {0x26bd, 0x26be}, {0x26c4, 0x26c5},
        {0x26ce, 0x26ce}, {0x26d4, 0x26d4}, {0x26ea, 0x26ea}, {0x26f2, 0x26f3}, {0x26f5, 0x26f5},
        {0x26fa, 0x26fa}, {0x26fd, 0x26fd}, {0x2705, 0x2705}, {0x270a, 0x270b}, {0x2728, 0x2728},
        {0x274c, 0x274c}, {0x274e, 0x274e}, {0x2753, 0x2755}, {0x2757, 0x2757}, {0x2795, 0x2797},
        {0x27b0, 0x27b0}, {0x27bf, 0x27bf}, {0x2b1b, 0x2b1c}, {0x2b50, 0x2b50}, {0x2b55, 0x2b55},
        {0x2e80, 0x3029}, {0x302e, 0x303e}, {0x3041, 0x3096}, {0x309b, 0x33ff}, {0x3400, 0x4dbf},
        {0x4e00, 0x9fff}, {0xa000, 0xa4cf}, {0xa960, 0xa97f}, {0xac00, 0xd7a3}, {0xf900, 0xfaff},
        {0xfe10, 0xfe19}, {0xfe30, 0xfe6f}, {0xff00, 0xff60}, {0xffe0, 0xffe6}, {0x16fe0, 0x16fe4},
        {0x17000, 0x18cff}, {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf}, {0x1f18e, 0x1f18e},
        {0x1f191, 0x1f19a}, {0x1f200, 0x1f202}, {0x1f210, 0x1f23b}, {0x1f240, 0x1f248}, {0x1f250, 0x1f251},
        {0x1f260, 0x1f265}, {0x1f300, 0x1f320}, {0x1f32d, 0x1f335}, {0x1f337, 0x1f37c}, {0x1f37e, 0x1f393},
        {0x1f3a0, 0x1f3ca}, {0x1f3cf, 0x1f3d3}, {0x1f3e0, 0x1f3f0}, {0x1f3f4, 0x1f3f4}, {0x1f3f8, 0x1f43e},
        {0x1f440, 0x1f440}, {0x1f442, 0x1f4fc}, {0x1f4ff, 0x1f53d}, {0x1f54b, 0x1f54e}, {0x1f550, 0x1f567},
        {0x1f57a, 0x1f57a}, {0x1f595, 0x1f596}, {0x1f5a4, 0x1f5a4}, {0x1f5fb, 0x1f64f}, {0x1f680, 0x1f6c5},
        {0x1f6cc, 0x1f6cc}, {0x1f6d0, 0x1f6d2}, {0x1f6d5, 0x1f6d7}, {0x1f6eb, 0x1f6ec}, {0x1f6f4, 0x1f6fc},
        {0x1f7e0, 0x1f7eb}, {0x1f90c, 0x1f93a}, {0x1f93c, 0x1f945}, {0x1f947, 0x1f9ff}, {0x1fa70, 0x1faff},
        {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
    };
    if (in_ranges(cp, zero, sizeof zero / sizeof zero[0]))
        return 0;
    return in_ranges(cp, wide, sizeof wide / sizeof wide[0]) ? 2 : 1;
}

/* The lower-case letter of cp in the scripts text_fold_key covers, or cp itself. */
static uint32_t fold_cp(uint32_t cp)
{
    if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xc0 && cp <= 0xde && cp != 0xd7) || (cp >= 0x391 && cp <= 0x3ab) ||
        (cp >= 0x410 && cp <= 0x42f))
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40f)
        return cp + 0x50;
    if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14a && cp <= 0x177))
        return cp | 1u; /* even upper, odd lower */
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
        return cp % 2u ? cp + 1u : cp;
    switch (cp) {
    case 0x178: return 0xff;  /* Ÿ */
    case 0x386: return 0x3ac; /* Ά */
    case 0x388: case 0x389: case 0x38a: return cp + 0x25; /* Έ Ή Ί */
    case 0x38c: return 0x3cc; /* Ό */
    case 0x38e: case 0x38f: return cp + 0x3f; /* Ύ Ώ */
    case 0x3c2: return 0x3c3; /* final sigma */
    default: return cp;
    }
}

void text_fold_key(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), i = 0, o = 0;
    while (i < n) {
        uint32_t cp = 0;
        size_t step = utf8_next(p + i, n - i, &cp);
        char enc[4];
        size_t len = 0;
        if (!step) {
            enc[len++] = (char)p[i];
            step = 1;
        } else if (cp < 0x80) {
            if (is_lower_alnum((char)fold_cp(cp)))
                enc[len++] = (char)fold_cp(cp);
        } else {
            cp = fold_cp(cp);
            if (cp < 0x800) {
                enc[len++] = (char)(0xc0 | (cp >> 6));
            } else if (cp < 0x10000) {
                enc[len++] = (char)(0xe0 | (cp >> 12));
                enc[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            } else {
                enc[len++] = (char)(0xf0 | (cp >> 18));
                enc[len++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                enc[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            }
            enc[len++] = (char)(0x80 | (cp & 0x3f));
        }
        if (o + len + 1 > cap)
            break;
        memcpy(out + o, enc, len);
        o += len;
        i += step;
    }
    out[o] = '\0';
}

size_t text_display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), i = 0, w = 0;
    while (i < n) {
        uint32_t cp = 0;
        size_t step = utf8_next(p + i, n - i, &cp);
        if (!step) {
            w += 6; /* "<0xFF>" */
            i++;
            continue;
        }
        if (text_shown_by_name(cp))
            w += cp > 0xffff ? 9 : 8; /* "<U+202E>" */
        else
            w += cp_width(cp);
        i += step;
    }
    return w;
}

size_t text_visible(const char *s, size_t n, bool final, text_put_fn put, void *ctx)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* p[run..i) is text to pass on as it is */
    while (i < n) {
        size_t want = utf8_lead_len(p[i]);
        if (!final && want > n - i) {
            /* A sequence cut by the end of this piece: keep it for the next one if what
             * is here could still become a character. */
            bool prefix = true;
            for (size_t k = i + 1; k < n; k++)
                prefix = prefix && (p[k] & 0xc0) == 0x80;
            if (prefix)
                break;
        }
        uint32_t cp = 0;
        size_t step = utf8_next(p + i, n - i, &cp);
        if (step && !text_shown_by_name(cp)) {
            i += step;
            continue;
        }
        char name[16];
        int len = step ? snprintf(name, sizeof name, "<U+%04" PRIX32 ">", cp)
                       : snprintf(name, sizeof name, "<0x%02X>", (unsigned)p[i]);
        if (i > run)
            put(ctx, s + run, i - run);
        put(ctx, name, (size_t)len);
        i += step ? step : 1;
        run = i;
    }
    if (i > run)
        put(ctx, s + run, i - run);
    return i;
}

bool text_valid_utf8(const char *s, size_t max, bool multiline)
{
    if (!s)
        return false;
    size_t n = strnlen(s, max + 1);
    uint32_t bad;
    return n <= max && utf8_scan((const unsigned char *)s, n, multiline, &bad) == n;
}

bool text_check_utf8(const char *s, size_t max, bool multiline, char *why, size_t whylen)
{
    if (!s) {
        snprintf(why, whylen, "is missing");
        return false;
    }
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        snprintf(why, whylen, "is longer than %zu bytes", max);
        return false;
    }
    const unsigned char *p = (const unsigned char *)s;
    uint32_t bad = 0;
    size_t at = utf8_scan(p, n, multiline, &bad);
    if (at == n)
        return true;
    size_t line = 1;
    for (size_t i = 0; i < at; i++)
        line += p[i] == '\n';
    char where[32] = "";
    if (multiline)
        snprintf(where, sizeof where, " at line %zu", line);
    if (bad == UINT32_MAX)
        snprintf(why, whylen, "is not valid UTF-8 (byte 0x%02x%s)", p[at], where);
    else if (!multiline && (bad == '\n' || bad == '\t'))
        snprintf(why, whylen, "must be a single line without tabs (it contains %s)", bad == '\n' ? "a line break" : "a tab");
    else if (bad == '\r')
        snprintf(why, whylen, "contains a carriage return (0x0d)%s: lines end with LF alone", where);
    else
        snprintf(why, whylen, "contains a control character (0x%02" PRIx32 ")%s", bad, where);
    return false;
}

bool text_clean_line(char *dst, size_t dstlen, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), i = 0, o = 0;
    bool same = true;
    while (i < n) {
        uint32_t cp = 0;
        size_t step = utf8_next(p + i, n - i, &cp);
        bool control = step && (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f));
        size_t out = step && !control ? step : 1;
        if (o + out + 1 > dstlen) {
            same = false;
            break;
        }
        if (step && !control)
            memmove(dst + o, p + i, step); /* dst may be s: o <= i always */
        else
            dst[o] = '?', same = false;
        o += out;
        i += step ? step : 1;
    }
    dst[o] = '\0';
    return same;
}

void text_printable(char *dst, size_t dstlen, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < dstlen; i++)
        dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    dst[i] = '\0';
}

char *text_b64_encode(const uint8_t *bin, size_t len)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    if (!bin && len)
        return NULL;
    if (len > (SIZE_MAX / 4u) * 3u - 3u)
        return NULL;
    size_t cap = sodium_base64_ENCODED_LEN(len, (unsigned)variant);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    /* sodium_bin2base64 reads nothing when len is 0; give it a valid pointer anyway. */
    static const uint8_t empty[1];
    sodium_bin2base64(out, cap, len ? bin : empty, len, variant);
    return out;
}

int text_b64_decode(const char *s, size_t max, uint8_t **out, size_t *out_len)
{
    int rc = -1;
    uint8_t *buf = NULL;
    size_t n, digits = 0, bin_len = 0;

    if (out)
        *out = NULL;
    if (!s || !out || !out_len)
        goto out;
    n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (is_ascii_space(s[i]))
            continue;
        /* libsodium (1.0.18) decodes every byte >= 0x80 as the digit 63 ('_'), so one card
         * would have many spellings: allow only the base64url alphabet. */
        if (!is_lower_alnum(s[i]) && !(s[i] >= 'A' && s[i] <= 'Z') && s[i] != '-' && s[i] != '_')
            goto out;
        digits++;
    }
    /* Unpadded base64 carries 6 bits per digit; this bounds the decoded size exactly. */
    size_t cap = digits / 4u * 3u + (digits % 4u) * 3u / 4u;
    if (cap > max)
        goto out;
    buf = malloc(cap ? cap : 1);
    if (!buf)
        goto out;
    /* b64_end NULL: libsodium fails unless the whole input was consumed; it also
     * refuses non-zero trailing bits, so every byte string has one encoding. */
    if (sodium_base642bin(buf, cap, s, n, " \t\n\v\f\r", &bin_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        goto out;
    *out = buf;
    *out_len = bin_len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    return rc;
}

void text_time_utc(uint64_t ms, char *buf, size_t len)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000u);

    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    if (!gmtime_r(&t, &tm))
        return;
    if (strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

/* Reads exactly n decimal digits at *p, advancing it. Returns -1 if any is not a digit. */
static int take_digits(const char **p, size_t n, int *v)
{
    int acc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        acc = acc * 10 + (c - '0');
    }
    *p += n;
    *v = acc;
    return 0;
}

static int take_char(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

static int parse_ms_number(const char *s, uint64_t *ms)
{
    uint64_t acc = 0;
    if (!*s)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (acc > (UINT64_MAX - d) / 10u)
            return -1;
        acc = acc * 10u + d;
    }
    *ms = acc;
    return 0;
}

int text_parse_time(const char *s, uint64_t *ms)
{
    int rc = -1;
    int year, mon, day, hour = 0, min = 0, sec = 0, frac = 0;
    const char *p = s;
    struct tm tm;
    time_t t;

    if (!s || !ms)
        goto out;
    /* A date always has a '-' at index 4; anything else must be a number of ms. */
    if (strnlen(s, 5) < 5 || s[4] != '-') {
        if (parse_ms_number(s, ms) != 0)
            goto out;
        rc = 0;
        goto out;
    }
    if (take_digits(&p, 4, &year) || take_char(&p, '-') || take_digits(&p, 2, &mon) ||
        take_char(&p, '-') || take_digits(&p, 2, &day))
        goto out;
    if (*p) {
        if (take_char(&p, 'T') || take_digits(&p, 2, &hour) || take_char(&p, ':') ||
            take_digits(&p, 2, &min))
            goto out;
        if (*p == ':' && (take_char(&p, ':') || take_digits(&p, 2, &sec)))
            goto out;
        /* Milliseconds, as liaison prints them in JSON (".123"). */
        if (*p == '.' && (take_char(&p, '.') || take_digits(&p, 3, &frac)))
            goto out;
        if (take_char(&p, 'Z') || *p)
            goto out;
    }
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
        goto out;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t < 0)
        goto out;
    /* timegm normalizes 2023-02-30 to March 2; refuse dates that do not exist. */
    if (tm.tm_mday != day || tm.tm_mon != mon - 1 || tm.tm_year != year - 1900)
        goto out;
    *ms = (uint64_t)t * 1000u + (uint64_t)frac;
    rc = 0;
out:
    return rc;
}

size_t text_edit_distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > TEXT_EDIT_MAX || lb > TEXT_EDIT_MAX || (la > lb ? la - lb : lb - la) > limit)
        return limit + 1;
    /* Three rows of the distance matrix: i-2 (for swaps), i-1 and i. */
    size_t rows[3][TEXT_EDIT_MAX + 1];
    size_t *two = rows[0], *one = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        one[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = one[j - 1] + (a[i - 1] != b[j - 1]);
            if (one[j] + 1 < best)
                best = one[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && two[j - 2] + 1 < best)
                best = two[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = two;
        two = one;
        one = cur;
        cur = t;
    }
    return one[lb] > limit ? limit + 1 : one[lb];
}

/* Copies msg into out with the quoted value replaced by '?': a value the requester typed
 * (a mistyped node id may be a patient's id or name) is said to them, never kept in the
 * audit log, which auditors and exports read. The value runs from the first quote that
 * opens after a non-alphanumeric byte (not the apostrophe of "node's") to the last
 * quote followed by a non-alphanumeric byte or the end: a value may hold quotes itself
 * (O'Brien), and what lies between two quoted values is masked with them. */
void text_mask_quoted(char *out, size_t cap, const char *msg)
{
    if (!cap)
        return;
    size_t len = strlen(msg), open = len, close = len;
    for (size_t i = 0; i < len && open == len; i++)
        if (msg[i] == '\'' && (i == 0 || !isalnum((unsigned char)msg[i - 1])))
            open = i;
    for (size_t i = len; i-- > open + 1 && close == len;)
        if (msg[i] == '\'' && !isalnum((unsigned char)msg[i + 1]))
            close = i;
    if (open == len) /* no quoted value: as it is */
        snprintf(out, cap, "%s", msg);
    else /* a quote that does not close: the rest is masked */
        snprintf(out, cap, "%.*s'?'%s", (int)open, msg, close == len ? "" : msg + close + 1);
}

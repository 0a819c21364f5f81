/* SPDX-License-Identifier: Apache-2.0 */
/* rawpeer: a test tool that speaks to a liaisond as a peer with a real transport
 * key, but sends whatever bytes a test asks for (well-formed, forged, replayed,
 * malformed), and prints what the daemon answered. Not installed. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "card.h"
#include "config.h"
#include "control.pb-c.h"
#include "domains.h"
#include "keys.h"
#include "payload.pb-c.h"
#include "receipt.h"
#include "seal.h"
#include "text.h"
#include "wire.pb-c.h"

#define MAX_CARDS 8

static void die(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0), noreturn));
static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "rawpeer: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
    fputc('\n', stderr);
    exit(2);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read %s", path);
    char *buf = malloc(4 << 20);
    *len = fread(buf, 1, (4 << 20) - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void load_card(const char *path, card_t *c)
{
    size_t len;
    char *t = read_file(path, &len);
    char err[256];
    if (card_decode(t, c, err, sizeof err) != 0)
        die("bad card: %s", err);
    free(t);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: rawpeer --home H --target CARD [--card CARD]... [options] MODE\n"
            "modes: envelope | replay FILE | raw-hex HEX | random N | empty | frames N | oversize\n"
            "envelope options: --to A,B  --sender ID  --created-offset-ms N  --content-type N\n"
            "  --text T  --tamper header|body|sig  --swap-body  --save FILE  --repeat N  --burst (send all N, then read)\n"
            "  --thread HEX  --header-version N  --pad-recipients N  --resign\n"
            "  --truncate-envelope N  --truncate-frame N  --payload-file FILE (raw payload bytes)\n"
            "serve-reject CODE REASON_HEX: listens as --home, answers --repeat N envelopes\n"
            "  with Reject{their id, CODE, the bytes of REASON_HEX}, then waits for EOF on stdin\n"
            "serve-silent N: listens as --home, prints 'received ID' for N envelopes and answers\n"
            "  none of them, then waits for EOF on stdin\n"
            "card-loworder: prints the card of --home (--target must be that card) re-signed with an\n"
            "  all-zero (low-order) encryption key, and exits\n"
            "control mode (no --home/--target needed): control ENDPOINT FILE [NFRAMES]\n"
            "  sends FILE as one ZeroMQ frame (or NFRAMES copies as one multi-frame message)\n"
            "  to ENDPOINT (e.g. ipc:///H/run/control.sock) and prints\n"
            "  'response CODE REQUEST_ID ERROR' or 'garbage' or 'timeout'\n"
            "other: --timeout-ms N (default 5000)\n"
            "  --hold: after the exchanges, keep the connection and read commands from stdin:\n"
            "  'blast N' sends N more copies without waiting for answers (prints 'sent N'),\n"
            "  'exchange' sends one more copy and prints the answer, 'answer [MS]' prints the\n"
            "  next answer (or 'timeout' after MS ms, default the --timeout); EOF ends\n");
    exit(1);
}

/* Sends frames on a connected dealer and prints each answer. */
/* Waits for one answer and prints it: "receipt ID RECIPIENT BATCH HASH" (BATCH the
 * receipt's batch size, 0 alone; HASH a BLAKE2b-128 of its bytes, to compare answers),
 * "reject CODE ID REASON", "witness-reply ...", "timeout", "garbage" or "other". */
static int answer(void *d, int timeout_ms);

static int exchange(void *d, zmq_msg_t *frames, int nframes, int timeout_ms)
{
    for (int i = 0; i < nframes; i++)
        if (zmq_msg_send(&frames[i], d, i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
            die("send failed: %s", zmq_strerror(errno));
    return answer(d, timeout_ms);
}

static int answer(void *d, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = d, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) {
        printf("timeout\n");
        return 0;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    zmq_msg_recv(&m, d, 0);
    Liaison__Wire__Frame *f = liaison__wire__frame__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    if (!f) {
        printf("garbage\n");
    } else if (f->kind_case == LIAISON__WIRE__FRAME__KIND_RECEIPT) {
        receipt_t r;
        char err[128], hex[TEXT_MSGID_HEX];
        if (receipt_parse(f->receipt.data, f->receipt.len, &r, err, sizeof err) != 0) {
            printf("bad-receipt %s\n", err);
        } else {
            Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, f->receipt.len, f->receipt.data);
            uint8_t h[16];
            char hh[33];
            crypto_generichash(h, sizeof h, f->receipt.data, f->receipt.len, NULL, 0);
            sodium_bin2hex(hh, sizeof hh, h, sizeof h);
            text_msgid_to_hex(r.message_id, hex);
            printf("receipt %s %s %u %s\n", hex, r.recipient, rc ? rc->batch_size : 0u, hh);
            if (rc)
                liaison__wire__receipt__free_unpacked(rc, NULL);
        }
    } else if (f->kind_case == LIAISON__WIRE__FRAME__KIND_REJECT) {
        char hex[TEXT_MSGID_HEX] = "-";
        if (f->reject->message_id.len == LIAISON_MSGID_BYTES)
            text_msgid_to_hex(f->reject->message_id.data, hex);
        printf("reject %d %s %s\n", f->reject->code, hex, f->reject->reason);
    } else if (f->kind_case == LIAISON__WIRE__FRAME__KIND_WITNESS_REPLY && f->witness_reply) {
        printf("witness-reply %" PRIu64 " %d %s\n", f->witness_reply->held_size, (int)f->witness_reply->accepted,
               f->witness_reply->reason ? f->witness_reply->reason : "");
    } else {
        printf("other\n");
    }
    fflush(stdout);
    if (f)
        liaison__wire__frame__free_unpacked(f, NULL);
    zmq_msg_close(&m);
    return 0;
}

static void frame_from(zmq_msg_t *m, const void *data, size_t len)
{
    zmq_msg_init_size(m, len);
    if (len)
        memcpy(zmq_msg_data(m), data, len);
}

static void envelope_frame(zmq_msg_t *m, const uint8_t *env, size_t len)
{
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_ENVELOPE;
    f.envelope = (ProtobufCBinaryData){len, (uint8_t *)env};
    size_t n = liaison__wire__frame__get_packed_size(&f);
    zmq_msg_init_size(m, n);
    liaison__wire__frame__pack(&f, zmq_msg_data(m));
}

/* Ed25519 over "liaison-v1/envelope" 0x00 || u32be(len h) || h || u32be(len b) || b
 * (PROTOCOL.md "Envelope signature"), so a test can make any header/body pair carry
 * a valid signature of this node. */
static void sign_envelope(const keys_t *k, Liaison__Wire__Envelope *e, uint8_t sig[64])
{
    size_t n = sizeof LIAISON_DOMAIN_ENVELOPE + 8u + e->header.len + e->body.len;
    uint8_t *m = malloc(n), *q = m;
    memcpy(q, LIAISON_DOMAIN_ENVELOPE, sizeof LIAISON_DOMAIN_ENVELOPE);
    q += sizeof LIAISON_DOMAIN_ENVELOPE;
    uint32_t l = (uint32_t)e->header.len;
    *q++ = (uint8_t)(l >> 24); *q++ = (uint8_t)(l >> 16); *q++ = (uint8_t)(l >> 8); *q++ = (uint8_t)l;
    memcpy(q, e->header.data, e->header.len);
    q += e->header.len;
    l = (uint32_t)e->body.len;
    *q++ = (uint8_t)(l >> 24); *q++ = (uint8_t)(l >> 16); *q++ = (uint8_t)(l >> 8); *q++ = (uint8_t)l;
    memcpy(q, e->body.data, e->body.len);
    crypto_sign_detached(sig, NULL, m, n, k->sign_sk);
    free(m);
}

/* Rewrites the header of a sealed envelope (version, extra recipients) and, when
 * asked, signs the result again. Returns the new envelope bytes (malloc'd). */
static uint8_t *rewrite_envelope(const keys_t *k, const uint8_t *env, size_t *env_len, long version, long pad,
                                 bool resign)
{
    Liaison__Wire__Envelope *e = liaison__wire__envelope__unpack(NULL, *env_len, env);
    if (!e)
        die("%s", "cannot unpack our own envelope");
    Liaison__Wire__Header *h = liaison__wire__header__unpack(NULL, e->header.len, e->header.data);
    if (!h)
        die("%s", "cannot unpack our own header");
    ProtobufCBinaryData orig_hdr = e->header, orig_sig = e->signature;
    char **orig_r = h->recipients;
    size_t orig_n = h->n_recipients;
    char **names = NULL;
    if (version >= 0)
        h->version = (uint32_t)version;
    if (pad > 0) {
        names = calloc(orig_n + (size_t)pad, sizeof *names);
        for (size_t i = 0; i < orig_n; i++)
            names[i] = orig_r[i];
        for (long i = 0; i < pad; i++) {
            names[orig_n + (size_t)i] = malloc(16);
            snprintf(names[orig_n + (size_t)i], 16, "r%05ld", i);
        }
        h->recipients = names;
        h->n_recipients = orig_n + (size_t)pad;
    }
    size_t hl = liaison__wire__header__get_packed_size(h);
    uint8_t *hb = malloc(hl);
    liaison__wire__header__pack(h, hb);
    e->header = (ProtobufCBinaryData){hl, hb};
    uint8_t sig[64];
    if (resign) {
        sign_envelope(k, e, sig);
        e->signature = (ProtobufCBinaryData){64, sig};
    }
    size_t n = liaison__wire__envelope__get_packed_size(e);
    uint8_t *out = malloc(n);
    liaison__wire__envelope__pack(e, out);
    *env_len = n;
    e->header = orig_hdr;
    e->signature = orig_sig;
    if (names) {
        for (long i = 0; i < pad; i++)
            free(names[orig_n + (size_t)i]);
        free(names);
        h->recipients = orig_r;
        h->n_recipients = orig_n;
    }
    free(hb);
    liaison__wire__header__free_unpacked(h, NULL);
    liaison__wire__envelope__free_unpacked(e, NULL);
    return out;
}

/* control mode: raw bytes to a local control socket, the Response printed. */
static int control_mode(const char *endpoint, const char *file, int nframes, int timeout_ms)
{
    size_t len;
    char *body = read_file(file, &len);
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(d, endpoint) != 0)
        die("connect: %s", zmq_strerror(errno));
    for (int i = 0; i < nframes; i++)
        if (zmq_send(d, body, len, i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
            die("send failed: %s", zmq_strerror(errno));
    zmq_pollitem_t it = {.socket = d, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) {
        printf("timeout\n");
    } else {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, d, 0);
        Liaison__Control__Response *r =
            liaison__control__response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (!r) {
            printf("garbage\n");
        } else {
            printf("response %d %" PRIu64 " %s\n", (int)r->code, r->request_id, r->error ? r->error : "");
            liaison__control__response__free_unpacked(r, NULL);
        }
        zmq_msg_close(&m);
    }
    fflush(stdout);
    free(body);
    zmq_close(d);
    zmq_ctx_term(ctx);
    return 0;
}

/* serve-reject mode: listens as the node of --home (CURVE server with its transport key;
 * no ZAP handler, so any client is admitted) and answers each of the first `count`
 * envelopes it receives with a Reject{message id, code, reason}. Prints
 * 'rejected MSGID' for each, or 'timeout' when nothing arrives for timeout_ms.
 * serve-silent mode (reason NULL): answers nothing and prints 'received MSGID'. */
static int serve_reject(const config_t *cfg, const keys_t *k, int code, const char *reason, int count,
                        int timeout_ms)
{
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0, one = 1;
    zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, k->transport_sk, 32);
    if (zmq_bind(r, cfg->listen) != 0)
        die("bind: %s", zmq_strerror(errno));
    printf("listening\n");
    fflush(stdout);
    for (int served = 0; served < count;) {
        zmq_pollitem_t it = {.socket = r, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, timeout_ms) <= 0) {
            printf("timeout\n");
            break;
        }
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        zmq_msg_recv(&rid, r, 0);
        if (zmq_msg_more(&rid))
            zmq_msg_recv(&body, r, 0);
        Liaison__Wire__Frame *f = liaison__wire__frame__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        Liaison__Wire__Envelope *e = NULL;
        Liaison__Wire__Header *h = NULL;
        if (f && f->kind_case == LIAISON__WIRE__FRAME__KIND_ENVELOPE &&
            (e = liaison__wire__envelope__unpack(NULL, f->envelope.len, f->envelope.data)) &&
            (h = liaison__wire__header__unpack(NULL, e->header.len, e->header.data)) &&
            h->message_id.len == LIAISON_MSGID_BYTES && !reason) {
            char hex[TEXT_MSGID_HEX];
            text_msgid_to_hex(h->message_id.data, hex);
            printf("received %s\n", hex);
            fflush(stdout);
            served++;
        } else if (h && h->message_id.len == LIAISON_MSGID_BYTES) {
            Liaison__Wire__Reject rj = LIAISON__WIRE__REJECT__INIT;
            rj.code = (Liaison__Wire__RejectCode)code;
            rj.reason = (char *)reason;
            rj.message_id = h->message_id;
            Liaison__Wire__Frame out;
            liaison__wire__frame__init(&out);
            out.kind_case = LIAISON__WIRE__FRAME__KIND_REJECT;
            out.reject = &rj;
            zmq_msg_t m;
            size_t n = liaison__wire__frame__get_packed_size(&out);
            zmq_msg_init_size(&m, n);
            liaison__wire__frame__pack(&out, zmq_msg_data(&m));
            zmq_msg_send(&rid, r, ZMQ_SNDMORE);
            zmq_msg_send(&m, r, 0);
            char hex[TEXT_MSGID_HEX];
            text_msgid_to_hex(h->message_id.data, hex);
            printf("rejected %s\n", hex);
            fflush(stdout);
            served++;
        }
        if (h)
            liaison__wire__header__free_unpacked(h, NULL);
        if (e)
            liaison__wire__envelope__free_unpacked(e, NULL);
        if (f)
            liaison__wire__frame__free_unpacked(f, NULL);
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
    }
    /* Keeps the connection until stdin ends: the test closes it once the daemon has
     * recorded what it was told (closing earlier could lose the last Reject). */
    while (getchar() != EOF)
        ;
    zmq_close(r);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},    {"target", required_argument, NULL, 'T'},
        {"card", required_argument, NULL, 'C'},    {"to", required_argument, NULL, 't'},
        {"sender", required_argument, NULL, 's'},  {"created-offset-ms", required_argument, NULL, 'o'},
        {"content-type", required_argument, NULL, 'c'}, {"text", required_argument, NULL, 'x'},
        {"tamper", required_argument, NULL, 'm'},  {"swap-body", no_argument, NULL, 'w'},
        {"save", required_argument, NULL, 'S'},    {"repeat", required_argument, NULL, 'r'},
        {"timeout-ms", required_argument, NULL, 'O'}, {"thread", required_argument, NULL, 'h'},
        {"header-version", required_argument, NULL, 'V'}, {"pad-recipients", required_argument, NULL, 'P'},
        {"resign", no_argument, NULL, 'R'},        {"truncate-envelope", required_argument, NULL, 'E'},
        {"truncate-frame", required_argument, NULL, 'F'}, {"payload-file", required_argument, NULL, 'p'},
        {"hold", no_argument, NULL, 'L'},          {"burst", no_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    const char *home = NULL, *target = NULL, *to = NULL, *sender = NULL, *text = "hello from rawpeer";
    const char *tamper = NULL, *save = NULL, *thread = NULL, *payload_file = NULL;
    const char *cards[MAX_CARDS];
    int ncards = 0, repeat = 1, timeout_ms = 5000;
    long long offset = 0;
    uint32_t ctype = LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT;
    bool swap = false, resign = false, hold = false, burst = false;
    long hversion = -1, pad = 0, trunc_env = -1, trunc_frame = -1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'H': home = optarg; break;
        case 'T': target = optarg; break;
        case 'C': if (ncards < MAX_CARDS) cards[ncards++] = optarg; break;
        case 't': to = optarg; break;
        case 's': sender = optarg; break;
        case 'o': offset = strtoll(optarg, NULL, 10); break;
        case 'c': ctype = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'x': text = optarg; break;
        case 'm': tamper = optarg; break;
        case 'w': swap = true; break;
        case 'S': save = optarg; break;
        case 'r': repeat = atoi(optarg); break;
        case 'O': timeout_ms = atoi(optarg); break;
        case 'h': thread = optarg; break;
        case 'V': hversion = strtol(optarg, NULL, 10); break;
        case 'P': pad = strtol(optarg, NULL, 10); break;
        case 'R': resign = true; break;
        case 'E': trunc_env = strtol(optarg, NULL, 10); break;
        case 'F': trunc_frame = strtol(optarg, NULL, 10); break;
        case 'p': payload_file = optarg; break;
        case 'L': hold = true; break;
        case 'B': burst = true; break;
        default: usage();
        }
    }
    if (optind < argc && strcmp(argv[optind], "control") == 0) {
        if (optind + 2 >= argc)
            usage();
        int nf = optind + 3 < argc ? atoi(argv[optind + 3]) : 1;
        if (nf < 1 || nf > 16)
            die("%s", "control: 1..16 frames");
        return control_mode(argv[optind + 1], argv[optind + 2], nf, timeout_ms);
    }
    if (!home || !target || optind >= argc)
        usage();
    const char *mode = argv[optind];
    if (sodium_init() < 0)
        die("%s", "sodium_init");
    paths_t p;
    config_t cfg;
    char err[512];
    if (paths_resolve(&p, home, err, sizeof err) != 0 || config_load(p.config_file, &cfg, err, sizeof err) != 0)
        die("%s", err);
    keys_t *k = keys_load(p.key_dir, err, sizeof err);
    if (!k)
        die("%s", err);
    card_t tc, extra[MAX_CARDS];
    load_card(target, &tc);
    for (int i = 0; i < ncards; i++)
        load_card(cards[i], &extra[i]);

    if (strcmp(mode, "serve-reject") == 0 && optind + 2 < argc) {
        size_t n = strlen(argv[optind + 2]) / 2, bl;
        char *reason = calloc(1, n + 1);
        if (sodium_hex2bin((uint8_t *)reason, n, argv[optind + 2], strlen(argv[optind + 2]), NULL, &bl, NULL) != 0)
            die("bad hex %s", argv[optind + 2]);
        int rc = serve_reject(&cfg, k, atoi(argv[optind + 1]), reason, repeat, timeout_ms);
        free(reason);
        keys_destroy(&k);
        return rc;
    }
    if (strcmp(mode, "serve-silent") == 0 && optind + 1 < argc) {
        int rc = serve_reject(&cfg, k, 0, NULL, atoi(argv[optind + 1]), timeout_ms);
        keys_destroy(&k);
        return rc;
    }
    if (strcmp(mode, "card-loworder") == 0) {
        /* A validly signed card whose X25519 key is the all-zero point: every pair key
         * derived from it is the all-zero shared secret. */
        keys_t fake = *k;
        memset(fake.enc_pk, 0, sizeof fake.enc_pk);
        memset(tc.enc_pk, 0, sizeof tc.enc_pk);
        char *line = card_encode(&tc, &fake, err, sizeof err);
        if (!line)
            die("%s", err);
        printf("%s\n", line);
        free(line);
        keys_destroy(&k);
        return 0;
    }

    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, tc.transport_pk, 32);
    zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, k->transport_pk, 32);
    zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, k->transport_sk, 32);
    if (zmq_connect(d, tc.endpoint) != 0)
        die("connect: %s", zmq_strerror(errno));

    zmq_msg_t frames[16];
    int nframes = 1;
    uint8_t *env = NULL;
    size_t env_len = 0;
    if (strcmp(mode, "envelope") == 0) {
        /* Recipients: ourselves (or --sender) plus --to (default: the target). */
        const char *me = sender ? sender : cfg.id;
        seal_recipient_t rc[LIAISON_MAX_RECIPIENTS];
        uint8_t pk[LIAISON_MAX_RECIPIENTS][LIAISON_KEY_BYTES];
        char names[LIAISON_MAX_RECIPIENTS][LIAISON_MAX_ID + 1];
        size_t nr = 0;
        if (keys_pair_key(k, k->enc_pk, pk[nr]) != 0)
            die("%s", "pair key");
        snprintf(names[nr], sizeof names[nr], "%s", me);
        rc[nr] = (seal_recipient_t){names[nr], pk[nr]};
        nr++;
        char list[1024];
        snprintf(list, sizeof list, "%s", to ? to : tc.id);
        for (char *save_p = NULL, *id = strtok_r(list, ",", &save_p); id; id = strtok_r(NULL, ",", &save_p)) {
            const card_t *c = strcmp(id, tc.id) == 0 ? &tc : NULL;
            for (int i = 0; !c && i < ncards; i++)
                if (strcmp(extra[i].id, id) == 0)
                    c = &extra[i];
            if (!c)
                die("no card for recipient %s (give it with --card)", id);
            if (keys_pair_key(k, c->enc_pk, pk[nr]) != 0)
                die("%s", "pair key");
            snprintf(names[nr], sizeof names[nr], "%s", id);
            rc[nr] = (seal_recipient_t){names[nr], pk[nr]};
            nr++;
        }
        Liaison__Payload__TextMessage tm = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
        tm.subject = "rawpeer";
        tm.text = (char *)text;
        size_t plen;
        uint8_t *payload;
        if (payload_file) {
            payload = (uint8_t *)read_file(payload_file, &plen);
        } else {
            plen = liaison__payload__text_message__get_packed_size(&tm);
            payload = malloc(plen + 1);
            liaison__payload__text_message__pack(&tm, payload);
        }
        uint8_t tid[LIAISON_MSGID_BYTES];
        if (thread && text_msgid_from_hex(thread, tid) != 0)
            die("bad thread id %s", thread);
        uint8_t msgid[LIAISON_MSGID_BYTES];
        seal_input_t in = {.sender = me, .recipients = rc, .n_recipients = nr, .content_type = ctype,
                           .thread_id = thread ? tid : NULL,
                           .created_ms = (uint64_t)((long long)liaison_now_ms() + offset), .payload = payload,
                           .payload_len = plen};
        if (seal_envelope(k, &in, msgid, &env, &env_len, err, sizeof err) != 0)
            die("seal: %s", err);
        if (swap) {
            /* Same header and signature, body of another message sealed the same way. */
            uint8_t *env2 = NULL, mid2[LIAISON_MSGID_BYTES];
            size_t len2 = 0;
            if (seal_envelope(k, &in, mid2, &env2, &len2, err, sizeof err) != 0)
                die("seal: %s", err);
            Liaison__Wire__Envelope *e1 = liaison__wire__envelope__unpack(NULL, env_len, env);
            Liaison__Wire__Envelope *e2 = liaison__wire__envelope__unpack(NULL, len2, env2);
            ProtobufCBinaryData orig = e1->body;
            e1->body = e2->body;
            size_t n = liaison__wire__envelope__get_packed_size(e1);
            uint8_t *out = malloc(n);
            liaison__wire__envelope__pack(e1, out);
            e1->body = orig;
            liaison__wire__envelope__free_unpacked(e1, NULL);
            liaison__wire__envelope__free_unpacked(e2, NULL);
            free(env2);
            free(env);
            env = out;
            env_len = n;
        }
        if (hversion >= 0 || pad > 0 || resign) {
            /* A header the daemon must refuse, under a valid signature of ours. */
            uint8_t *out = rewrite_envelope(k, env, &env_len, hversion, pad, true);
            free(env);
            env = out;
        }
        if (tamper) {
            Liaison__Wire__Envelope *e = liaison__wire__envelope__unpack(NULL, env_len, env);
            ProtobufCBinaryData *field = strcmp(tamper, "header") == 0 ? &e->header
                                         : strcmp(tamper, "body") == 0 ? &e->body
                                                                       : &e->signature;
            field->data[field->len / 2] ^= 0x01;
            liaison__wire__envelope__pack(e, env);
            liaison__wire__envelope__free_unpacked(e, NULL);
        }
        char hex[TEXT_MSGID_HEX];
        text_msgid_to_hex(msgid, hex);
        fprintf(stderr, "message %s\n", hex);
        if (trunc_env >= 0 && (size_t)trunc_env < env_len)
            env_len = (size_t)trunc_env;
        envelope_frame(&frames[0], env, env_len);
        free(payload);
    } else if (strcmp(mode, "replay") == 0 && optind + 1 < argc) {
        char *b = read_file(argv[optind + 1], &env_len);
        env = (uint8_t *)b;
        envelope_frame(&frames[0], env, env_len);
    } else if (strcmp(mode, "raw-hex") == 0 && optind + 1 < argc) {
        const char *hx = argv[optind + 1];
        size_t n = strlen(hx) / 2, bl;
        uint8_t *b = malloc(n + 1);
        if (sodium_hex2bin(b, n, hx, strlen(hx), NULL, &bl, NULL) != 0)
            die("bad hex %s", hx);
        frame_from(&frames[0], b, bl);
        free(b);
    } else if (strcmp(mode, "random") == 0 && optind + 1 < argc) {
        size_t n = (size_t)atol(argv[optind + 1]);
        uint8_t *b = malloc(n + 1);
        randombytes_buf(b, n);
        frame_from(&frames[0], b, n);
        free(b);
    } else if (strcmp(mode, "empty") == 0) {
        frame_from(&frames[0], "", 0);
    } else if (strcmp(mode, "frames") == 0 && optind + 1 < argc) {
        nframes = atoi(argv[optind + 1]);
        if (nframes < 1 || nframes > 16)
            die("%s", "frames: 1..16");
        for (int i = 0; i < nframes; i++)
            frame_from(&frames[i], "x", 1);
    } else if (strcmp(mode, "oversize") == 0) {
        size_t n = LIAISON_MAX_FRAME + 1024;
        uint8_t *b = calloc(1, n);
        frame_from(&frames[0], b, n);
        free(b);
    } else {
        usage();
    }
    if (trunc_frame >= 0 && (size_t)trunc_frame < zmq_msg_size(&frames[0])) {
        zmq_msg_t t;
        frame_from(&t, zmq_msg_data(&frames[0]), (size_t)trunc_frame);
        zmq_msg_close(&frames[0]);
        frames[0] = t;
    }
    if (save && env) {
        FILE *f = fopen(save, "wb");
        if (!f || fwrite(env, 1, env_len, f) != env_len)
            die("cannot write %s", save);
        fclose(f);
    }
    /* --burst: all --repeat copies sent at once, then their answers read (a recipient
     * takes them in one batch); otherwise one exchange after the other. */
    for (int r = 0; r < repeat; r++) {
        zmq_msg_t copy[16];
        for (int i = 0; i < nframes; i++) {
            zmq_msg_init(&copy[i]);
            zmq_msg_copy(&copy[i], &frames[i]);
        }
        if (!burst) {
            exchange(d, copy, nframes, timeout_ms);
            continue;
        }
        for (int i = 0; i < nframes; i++)
            if (zmq_msg_send(&copy[i], d, i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
                die("send failed: %s", zmq_strerror(errno));
    }
    for (int r = 0; burst && r < repeat; r++)
        answer(d, timeout_ms);
    /* --hold: the same connection stays open while the test changes the target's
     * directory, so the daemon's handling of an already-authenticated connection shows. */
    char cmd[64];
    while (hold && fgets(cmd, sizeof cmd, stdin)) {
        if (strncmp(cmd, "answer", 6) == 0) {
            long ms = cmd[6] == ' ' ? strtol(cmd + 7, NULL, 10) : timeout_ms;
            answer(d, ms > 0 && ms < 600000 ? (int)ms : timeout_ms);
            fflush(stdout);
            continue;
        }
        long count = strncmp(cmd, "blast ", 6) == 0 ? strtol(cmd + 6, NULL, 10) : 1;
        bool wait = strncmp(cmd, "exchange", 8) == 0;
        if (!wait && strncmp(cmd, "blast ", 6) != 0)
            die("unknown --hold command %s", cmd);
        for (long r = 0; r < count; r++) {
            zmq_msg_t copy[16];
            for (int i = 0; i < nframes; i++) {
                zmq_msg_init(&copy[i]);
                zmq_msg_copy(&copy[i], &frames[i]);
            }
            if (wait) {
                exchange(d, copy, nframes, timeout_ms);
                continue;
            }
            for (int i = 0; i < nframes; i++)
                if (zmq_msg_send(&copy[i], d, i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
                    die("send failed: %s", zmq_strerror(errno));
        }
        if (!wait) {
            printf("sent %ld\n", count);
            fflush(stdout);
        }
    }
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    free(env);
    zmq_close(d);
    zmq_ctx_term(ctx);
    keys_destroy(&k);
    return 0;
}

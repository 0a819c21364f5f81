/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the node commands: init, card, fingerprint, status and the peer directory. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "card.h"
#include "cli.h"
#include "keys.h"
#include "patient.h"
#include "render.h"
#include "store.h"
#include "text.h"

/* ---- init ---- */

static int mkdirs(const char *path, mode_t mode)
{
    char tmp[CONFIG_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static void local_actor(char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];
    uid_t uid = getuid();
    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(buf, len, "user:%s", res->pw_name);
    else
        snprintf(buf, len, "uid:%u", (unsigned)uid);
}

/* Creates the database with its first audit entry and the node's identity recorded. */
static int create_db(const paths_t *p, const keys_t *k, const char *id, char *err, size_t errlen)
{
    store_t *s = store_open(p->db_file, STORE_CREATE, err, errlen);
    if (!s)
        return -1;
    audit_t *a = audit_open(s, err, errlen);
    int rc = -1;
    if (a && store_begin(s) == 0) {
        char actor[96];
        local_actor(actor, sizeof actor);
        audit_entry_t e = {.actor = actor, .action = "node-created", .outcome = "ok", .details = id};
        bool ok = store_meta_set(s, "sign_pk", k->sign_pk, LIAISON_KEY_BYTES) == 0 &&
                  store_meta_set(s, "node_id", (const uint8_t *)id, strlen(id)) == 0 && audit_append(a, &e) > 0;
        if (ok && store_commit(s) == 0)
            rc = 0;
        else
            snprintf(err, errlen, "cannot write %s: %s", p->db_file, store_error(s));
    }
    audit_close(&a);
    store_close(&s);
    return rc;
}

static int write_card(const char *path, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return ok ? 0 : -1;
}

static const char *const key_files[] = {KEYS_IDENTITY_FILE, KEYS_ENCRYPTION_FILE, KEYS_TRANSPORT_FILE,
                                        PATIENT_KEY_FILE};

/* Removes what a failed or interrupted init wrote; init refuses to start where any of
 * it existed, unless the marker of an unfinished init is there (then the files are that
 * init's, and no daemon ever ran on them: liaisond refuses to start while it exists). */
static void undo_init(const paths_t *p)
{
    const char *const *files = key_files;
    char path[CONFIG_PATH_MAX + 32];
    for (size_t i = 0; i < sizeof key_files / sizeof key_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", p->key_dir, files[i]);
        unlink(path);
    }
    unlink(p->config_file);
    unlink(p->card_file);
    unlink(p->db_file);
    snprintf(path, sizeof path, "%s-wal", p->db_file);
    unlink(path);
    snprintf(path, sizeof path, "%s-shm", p->db_file);
    unlink(path);
    snprintf(path, sizeof path, "%s-journal", p->db_file);
    unlink(path);
}

/* Makes the removal (or creation) of a file in dir durable. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Creates the marker of an init in progress, durably, before any other file. */
static int mark_init(const paths_t *p, char *err, size_t errlen)
{
    int fd = open(p->init_marker, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    if (!ok || sync_dir(p->config_dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", p->init_marker, strerror(errno));
        return -1;
    }
    return 0;
}

/* True if the endpoint tcp://HOST:PORT has a port from 1 to 65535 written with leading
 * zeros (tcp://127.0.0.1:07860), which the endpoint rules refuse; fixed gets the endpoint
 * without them. Any other port is left to those rules. */
static bool port_leading_zero(const char *ep, char *fixed, size_t len)
{
    const char *colon = strncmp(ep, "tcp://", 6) == 0 ? strrchr(ep, ':') : NULL;
    if (!colon || colon < ep + 6 || colon[1] != '0')
        return false;
    const char *p = colon + 1;
    if (strspn(p, "0123456789") != strlen(p))
        return false;
    while (*p == '0')
        p++;
    uint64_t port;
    if (cli_parse_uint(p, 65535, &port) != 0 || port == 0)
        return false;
    snprintf(fixed, len, "%.*s%s", (int)(colon + 1 - ep), ep, p);
    return true;
}

/* For a name over its limit in bytes that has letters outside ASCII: the limit counts
 * bytes, and "Ελένη" or "田中" take 2 or 3 of them a letter, so say so. */
static const char *bytes_note(const char *s)
{
    if (strnlen(s, LIAISON_MAX_NAME + 1) <= LIAISON_MAX_NAME)
        return "";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return "; a letter outside A-Z (é, Ω, 田) takes 2 to 4 of them";
    return "";
}

int cmd_init(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "id", .has_arg = true},     {.name = "name", .has_arg = true},
                     {.name = "role", .has_arg = true},   {.name = "org", .has_arg = true},
                     {.name = "listen", .has_arg = true}, {.name = "advertise", .has_arg = true},
                     {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    const char *id = cli_opt(o, "id")->value, *name = cli_opt(o, "name")->value, *role = cli_opt(o, "role")->value;
    const char *org = cli_opt(o, "org")->value ? cli_opt(o, "org")->value : "";
    const char *listen = cli_opt(o, "listen")->value, *adv = cli_opt(o, "advertise")->value;
    if (!id || !role || !listen)
        return cli_fail(EXIT_USAGE,
                        "init needs%s%s%s (e.g. liaison %s%s%sinit --id dr.okafor --name \"Dr. Chidi Okafor\" --role"
                        " psychiatrist --listen tcp://192.0.2.10:7400)",
                        id ? "" : " --id ID", role ? "" : " --role ROLE", listen ? "" : " --listen ENDPOINT",
                        cli->home ? "--home " : "", cli->home ? cli->home : "", cli->home ? " " : "");
    if (!text_valid_id(id))
        return cli_fail(EXIT_USAGE, "--id: '%.64s' is not a valid node id (1-64 of a-z 0-9 . _ -, starting with a"
                                    " letter or digit, e.g. dr.okafor)", id);
    if (!name)
        name = id;
    char bad[160];
    if (!name[0])
        return cli_fail(EXIT_USAGE, "--name: is empty (the name peers see, e.g. --name \"Dr. Chidi Okafor\"; without"
                                    " --name it is the id)");
    if (!text_check_utf8(name, LIAISON_MAX_NAME, false, bad, sizeof bad))
        return cli_fail(EXIT_USAGE, "--name: %s (a single line of UTF-8 text of at most %u bytes%s)", bad,
                        LIAISON_MAX_NAME, bytes_note(name));
    if (!text_valid_role(role))
        return cli_fail(EXIT_USAGE, "--role: '%.32s' is not a role (one of: %s)", role, text_roles());
    if (!text_check_utf8(org, LIAISON_MAX_NAME, false, bad, sizeof bad))
        return cli_fail(EXIT_USAGE, "--org: %s (a single line of UTF-8 text of at most %u bytes%s)", bad,
                        LIAISON_MAX_NAME, bytes_note(org));
    char fixed[LIAISON_MAX_ENDPOINT + 1];
    if (port_leading_zero(listen, fixed, sizeof fixed))
        return cli_fail(EXIT_USAGE, "--listen '%.256s': the port has a leading zero: write it as %s", listen, fixed);
    if (adv && port_leading_zero(adv, fixed, sizeof fixed))
        return cli_fail(EXIT_USAGE, "--advertise '%.256s': the port has a leading zero: write it as %s", adv, fixed);
    const char *why = text_endpoint_problem(listen, true);
    if (why)
        return cli_fail(EXIT_USAGE, "--listen '%.256s': %s (the address to bind, e.g. tcp://0.0.0.0:7701 or"
                                    " tcp://192.0.2.10:7701; peers dial --advertise tcp://HOST:PORT)", listen, why);
    if (!adv) {
        if (text_endpoint_wildcard(listen))
            return cli_fail(EXIT_USAGE, "--listen %s binds every interface: give the address peers should dial with"
                                        " --advertise tcp://HOST:PORT", listen);
        adv = listen;
    }
    if ((why = text_endpoint_problem(adv, false)))
        return cli_fail(EXIT_USAGE, "--advertise '%.256s': %s (the address peers dial, e.g."
                                    " tcp://okafor.clinic.example:7701)", adv, why);

    char err[600];
    paths_t p;
    if (paths_resolve(&p, cli->home, err, sizeof err) != 0)
        return cli_fail(EXIT_USAGE, "%s", err);
    /* An init killed halfway (a crash, a power cut) left its marker: what it wrote was
     * never used, so this one starts over. */
    bool resume = access(p.init_marker, F_OK) == 0;
    if (resume) {
        undo_init(&p);
        fprintf(stderr, "liaison: an earlier liaison init here did not finish; starting over\n");
    }
    if (access(p.config_file, F_OK) == 0)
        return cli_fail(EXIT_REFUSED, "a node is already set up here (%s exists); use another --home", p.config_file);
    if (access(p.db_file, F_OK) == 0)
        return cli_fail(EXIT_REFUSED, "%s already exists; refusing to overwrite a node's database", p.db_file);
    for (size_t i = 0; i < sizeof key_files / sizeof key_files[0]; i++) {
        char key[CONFIG_PATH_MAX + 32];
        snprintf(key, sizeof key, "%s/%s", p.key_dir, key_files[i]);
        if (access(key, F_OK) == 0)
            return cli_fail(EXIT_REFUSED, "%s already exists; refusing to overwrite a node's keys (move it away, or "
                                          "use another --home)", key);
    }
    if (access(p.card_file, F_OK) == 0)
        return cli_fail(EXIT_REFUSED, "%s already exists; refusing to overwrite a node's card (move it away, or use "
                                      "another --home)", p.card_file);
    const char *dirs[] = {p.config_dir, p.key_dir, p.state_dir};
    for (size_t i = 0; i < 3; i++)
        if (mkdirs(dirs[i], 0750) != 0)
            return cli_fail(EXIT_REFUSED, "cannot create %s: %s", dirs[i], strerror(errno));
    /* A directory that existed already (a --home made by someone else, or in /tmp) must
     * be this user's alone before keys and the database go there. */
    for (size_t i = 0; i < 3; i++)
        if (paths_check_dir(dirs[i], err, sizeof err) != 0)
            return cli_fail(EXIT_REFUSED, "%s; nothing was created", err);
    if (mark_init(&p, err, sizeof err) != 0)
        return cli_fail(EXIT_REFUSED, "%s", err);

    config_t c;
    config_defaults(&c);
    snprintf(c.id, sizeof c.id, "%s", id);
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.role, sizeof c.role, "%s", role);
    snprintf(c.org, sizeof c.org, "%s", org);
    snprintf(c.listen, sizeof c.listen, "%s", listen);
    snprintf(c.advertise, sizeof c.advertise, "%s", adv);

    card_t cd = {0};
    snprintf(cd.id, sizeof cd.id, "%s", id);
    snprintf(cd.name, sizeof cd.name, "%s", name);
    snprintf(cd.role, sizeof cd.role, "%s", role);
    snprintf(cd.org, sizeof cd.org, "%s", org);
    snprintf(cd.endpoint, sizeof cd.endpoint, "%s", adv);

    keys_t *k = keys_generate();
    if (!k)
        return cli_fail(EXIT_REFUSED, "cannot generate keys (out of secure memory)");
    memcpy(cd.sign_pk, k->sign_pk, LIAISON_KEY_BYTES);
    memcpy(cd.enc_pk, k->enc_pk, LIAISON_KEY_BYTES);
    memcpy(cd.transport_pk, k->transport_pk, LIAISON_KEY_BYTES);
    char *card = NULL;
    uint8_t pkey[LIAISON_KEY_BYTES];
    rc = 0;
    err[0] = 0;
    if (keys_save(k, p.key_dir, err, sizeof err) != 0 || patient_key_create(p.key_dir, pkey, err, sizeof err) != 0 ||
        config_write_new(p.config_file, &c, err, sizeof err) != 0 || create_db(&p, k, id, err, sizeof err) != 0 ||
        !(card = card_encode(&cd, k, err, sizeof err)) || write_card(p.card_file, card, err, sizeof err) != 0 ||
        sync_dir(p.config_dir) != 0 || sync_dir(p.key_dir) != 0 || sync_dir(p.state_dir) != 0) {
        if (!err[0])
            snprintf(err, sizeof err, "cannot sync the node's directories: %s", strerror(errno));
        undo_init(&p);
        unlink(p.init_marker);
        rc = cli_fail(EXIT_REFUSED, "init failed, nothing was created: %s", err);
    } else if (unlink(p.init_marker) != 0 || sync_dir(p.config_dir) != 0) {
        /* Everything is written; only the marker stays. liaisond refuses to start and
         * names it; the next init starts over. */
        rc = cli_fail(EXIT_REFUSED, "cannot remove %s: %s (run liaison %s%s%sinit again)", p.init_marker,
                      strerror(errno), p.home[0] ? "--home " : "", p.home, p.home[0] ? " " : "");
    }
    sodium_memzero(pkey, sizeof pkey);
    char fp[KEYS_FINGERPRINT_LEN];
    keys_fingerprint(k->sign_pk, fp);
    keys_destroy(&k);
    if (rc == 0) {
        const char *where = p.home[0] ? p.home : p.config_dir;
        cli_done("liaison card", "node %s was created in %s (fingerprint %s; its card is in %s)", id, where, fp,
                 p.card_file);
        if (cli->json) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "role", role, "home", where, "fingerprint",
                                  fp, "card", card, "card_file", p.card_file);
            cli_json_out(j);
        } else {
            printf("Created node %s (%s) in %s\n", id, role, where);
            printf("Fingerprint: %s\n", fp);
            printf("Your card is in %s; give it to your care team (liaison card prints it).\n", p.card_file);
            if (p.home[0])
                printf("Start the daemon with: liaisond --home %s\n", p.home);
            else
                printf("Start the daemon with: systemctl enable --now liaisond\n");
        }
    }
    free(card);
    return rc;
}

/* ---- card, fingerprint ---- */

/* Prints a card (text, or the --json object: source says where it came from when not the
 * card file). Returns 0, or the exit code after printing why. */
static int print_card(cli_t *cli, const char *text, const char *source, const char *where)
{
    card_t cd;
    char err[300];
    if (card_decode(text, &cd, err, sizeof err) != 0)
        return cli_fail(EXIT_REFUSED, "%s is damaged: %s", where, err);
    if (cli->json) {
        char fp[KEYS_FINGERPRINT_LEN];
        keys_fingerprint(cd.sign_pk, fp);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", cd.id, "name", cd.name, "role", cd.role,
                              "org", cd.org, "endpoint", cd.endpoint, "fingerprint", fp, "card", text);
        if (j && source)
            json_object_set_new(j, "source", json_string(source));
        return cli_json_out(j);
    }
    printf("%s\n", text);
    return 0;
}

/* card.txt is gone but the node is set up (liaison init would refuse): the running
 * daemon makes the node's card from liaison.conf and the keys (op_card), with the same
 * keys and so the same fingerprint. Without a daemon, says to restore the file. */
/* fresh: asked for (liaison card --fresh), card.txt or not: the card made from
 * liaison.conf as it is now, for peers who hold one naming an old endpoint or name. */
static int card_from_daemon(cli_t *cli, const paths_t *p, bool fresh)
{
    char err[600], start[CONFIG_PATH_MAX + 32];
    if (p->home[0])
        snprintf(start, sizeof start, "liaisond --home %s", p->home);
    else
        snprintf(start, sizeof start, "systemctl start liaisond");
    liaison_client_t *c = liaison_client_open(cli->home, LIAISON_SOCKET_CONTROL, err, sizeof err);
    Liaison__Control__Response *r = NULL;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_CARD;
    rq.card = true;
    bool ok = c && liaison_call_pb(c, &rq, &r) == LIAISON_OK &&
              r->result_case == LIAISON__CONTROL__RESPONSE__RESULT_CARD;
    liaison_client_close(c);
    if (!ok) {
        if (r)
            liaison__control__response__free_unpacked(r, NULL);
        if (fresh)
            return cli_fail(EXIT_REFUSED,
                            "card --fresh asks the running daemon for the card it makes from liaison.conf: start it"
                            " (%s) and run liaison card --fresh again",
                            start);
        return cli_fail(EXIT_REFUSED,
                        "no card at %s, although a node is set up here (%s exists): restore card.txt from the"
                        " node's backup, or start its daemon (%s) and run liaison card again: it then prints the"
                        " card the daemon makes with this node's keys",
                        p->card_file, p->config_file, start);
    }
    if (fresh)
        fprintf(stderr,
                "liaison: this card was made by the running daemon from this node's keys (the same fingerprint) and"
                " liaison.conf as it is now; give it to your peers (each runs: liaison peer add CARD, which updates"
                " their entry), and save it in place of %s so that liaison card prints it from now on\n",
                p->card_file);
    else
        fprintf(stderr,
            "liaison: %s is missing: this card was made by the running daemon from this node's keys (the same"
            " fingerprint) and liaison.conf (whose name, role, org or endpoint may differ from the card your peers"
            " hold); restore card.txt from the node's backup, or save this card in its place\n",
            p->card_file);
    int rc = print_card(cli, r->card->card, "daemon", "the daemon's card");
    liaison__control__response__free_unpacked(r, NULL);
    return rc;
}

int cmd_card(cli_t *cli, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    cli_opt_t o[] = {{.name = "fresh"}, {0}};
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    /* The card is public and stored beside the configuration: no daemon needed. */
    char err[600];
    paths_t p;
    if (paths_resolve(&p, cli->home, err, sizeof err) != 0)
        return cli_fail(EXIT_USAGE, "%s", err);
    if (cli_opt(o, "fresh")->count)
        return card_from_daemon(cli, &p, true);
    char *text = NULL;
    FILE *f = fopen(p.card_file, "r");
    if (f) {
        fclose(f);
        text = cli_read_file(p.card_file, LIAISON_MAX_CARD_TEXT);
    } else if (errno == ENOENT || errno == ENOTDIR) {
        if (access(p.config_file, F_OK) == 0)
            return card_from_daemon(cli, &p, false);
        return cli_fail(EXIT_REFUSED, "no card at %s (create the node first with: liaison %s%s%sinit --id ID --role"
                        " ROLE --listen ENDPOINT)", p.card_file, p.home[0] ? "--home " : "", p.home,
                        p.home[0] ? " " : "");
    } else {
        /* Not "no card": telling someone without access to create the node is wrong. */
        return cli_fail(EXIT_REFUSED, "cannot read %s: %s", p.card_file, strerror(errno));
    }
    if (!text)
        return EXIT_REFUSED;
    cli_chomp(text);
    rc = print_card(cli, text, NULL, p.card_file);
    free(text);
    return rc;
}

int cmd_fingerprint(cli_t *cli, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    cli_opt_t o[] = {{0}};
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    /* This node's own fingerprint is in its card, which is public and beside the
     * configuration: read on the phone while the daemon is down, too (as liaison card). */
    paths_t p;
    char err[600];
    FILE *f = npos == 0 && paths_resolve(&p, cli->home, err, sizeof err) == 0 ? fopen(p.card_file, "r") : NULL;
    bool card_bad = false; /* card.txt is there and cannot be used: err says why */
    if (f) {
        fclose(f);
        char *text = cli_read_file(p.card_file, LIAISON_MAX_CARD_TEXT);
        card_t cd;
        card_bad = !text;
        if (!text)
            snprintf(err, sizeof err, "it cannot be read");
        if (text) {
            cli_chomp(text);
            int bad = card_decode(text, &cd, err, sizeof err);
            free(text);
            card_bad = bad != 0;
            if (bad == 0) {
                char fp[KEYS_FINGERPRINT_LEN];
                keys_fingerprint(cd.sign_pk, fp);
                if (cli->json)
                    return cli_json_out(json_pack("{s:s, s:s}", "id", cd.id, "fingerprint", fp));
                printf("%s\n", fp);
                return 0;
            }
        }
    }
    Liaison__Control__FingerprintRequest fr = LIAISON__CONTROL__FINGERPRINT_REQUEST__INIT;
    fr.id = (char *)(npos ? pos[0] : "");
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_FINGERPRINT;
    rq.fingerprint = &fr;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_FINGERPRINT, &r)) != 0) {
        if (card_bad) /* the daemon was asked because the card could not be used: say so */
            cli_fail(rc, "nor could this node's card be used: %s: %s (restore it from a backup)", p.card_file, err);
        return rc;
    }
    if (cli->json)
        cli_json_out(json_pack("{s:s, s:s}", "id", r->fingerprint->id, "fingerprint", r->fingerprint->fingerprint));
    else
        printf("%s\n", r->fingerprint->fingerprint);
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

/* ---- status and peers ---- */

static json_t *peer_json(const Liaison__Control__PeerInfo *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:s?, s:o}", "id", p->id, "name", p->name, "role",
                     p->role, "org", p->org, "endpoint", p->endpoint, "fingerprint", p->fingerprint, "connected",
                     p->connected, "queued", (json_int_t)p->queued, "transport_error",
                     p->transport_error[0] ? p->transport_error : NULL, "added", cli_json_time(p->added_ms));
}

/* The peer table; with detail (peer list), each peer's endpoint and fingerprint too. */
static void print_peers(Liaison__Control__PeerInfo **peers, size_t n, bool detail)
{
    if (n == 0) {
        printf("No peers yet: add a colleague's card with: liaison peer add CARD_FILE\n");
        return;
    }
    printf("%-24s %-14s %-10s %6s  %s\n", "PEER", "ROLE", "LINK", "QUEUED", "NAME");
    for (size_t i = 0; i < n; i++) {
        const Liaison__Control__PeerInfo *p = peers[i];
        printf("%-24s %-14s %-10s %6u  %s%s%s\n", p->id, p->role, p->connected ? "connected" : "down", p->queued,
               p->name, p->org[0] ? ", " : "", p->org);
        if (detail)
            printf("    endpoint %s\n    fingerprint %s\n", p->endpoint, p->fingerprint);
        if (p->transport_error[0])
            printf("    ! %s\n", p->transport_error);
    }
}

int cmd_status(cli_t *cli, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    cli_opt_t o[] = {{0}};
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_STATUS;
    rq.status = true;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_STATUS, &r)) != 0)
        return rc;
    const Liaison__Control__StatusResult *s = r->status;
    /* The queue counts every delivery without a receipt; the peers' rows only those to
     * peers in the directory: the rest are held for removed peers. */
    uint32_t listed = 0;
    for (size_t i = 0; i < s->n_peers; i++)
        listed += s->peers[i]->queued;
    unsigned held = s->queue_depth > listed ? (unsigned)(s->queue_depth - listed) : 0;
    if (cli->json) {
        json_t *peers = json_array(), *overdue = json_array(), *alarms = json_array();
        for (size_t i = 0; i < s->n_peers; i++)
            json_array_append_new(peers, peer_json(s->peers[i]));
        for (size_t i = 0; i < s->n_overdue; i++)
            json_array_append_new(overdue, render_summary_json(s->overdue[i]));
        for (size_t i = 0; i < s->n_alarms; i++)
            json_array_append_new(alarms, json_pack("{s:s, s:o, s:s}", "peer", s->alarms[i]->peer, "at",
                                                    cli_json_time(s->alarms[i]->at_ms), "what", s->alarms[i]->what));
        json_t *db = s->database_failing_since_ms
                         ? json_pack("{s:o, s:s}", "since", cli_json_time(s->database_failing_since_ms), "error",
                                     s->database_error ? s->database_error : "")
                         : json_null();
        cli_json_out(json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:o, s:o}", "id",
                               s->id, "name", s->name, "role", s->role, "listen", s->listen, "version", s->version,
                               "started", cli_json_time(s->started_ms), "queue_depth", (json_int_t)s->queue_depth,
                               "held_for_removed_peers", (json_int_t)held, "audit_entries",
                               (json_int_t)s->audit_size, "awaiting_my_ack", (json_int_t)s->awaiting_my_ack,
                               "awaiting_their_ack", (json_int_t)s->awaiting_their_ack, "peers", peers, "overdue",
                               overdue, "overdue_total",
                               (json_int_t)(s->overdue_total > s->n_overdue ? s->overdue_total : s->n_overdue),
                               "alarms", alarms, "database_failing", db));
    } else {
        char t[32];
        cli_time(s->started_ms, t, sizeof t);
        printf("%s (%s, %s) liaisond %s, up since %s, listening on %s\n", s->id, s->name, s->role, s->version, t,
               s->listen);
        printf("Queue: %u deliver%s waiting for a receipt. Audit log: %" PRIu64 " entr%s.\n", s->queue_depth,
               s->queue_depth == 1 ? "y" : "ies", s->audit_size, s->audit_size == 1 ? "y" : "ies");
        if (held)
            printf("Of them, %u %s held for peers no longer in the directory, sent if their card is added again"
                   " (see: liaison outbox).\n", held, held == 1 ? "is" : "are");
        if (s->database_failing_since_ms) {
            char since[32];
            cli_time(s->database_failing_since_ms, since, sizeof since);
            printf("DATABASE: every commit has failed since %s (%s): nothing is stored, read or received meanwhile;"
                   " peers retry. %s\n",
                   since, s->database_error ? s->database_error : "",
                   s->database_error && strstr(s->database_error, "disk is full")
                       ? "Free space on the disk that holds the node's database."
                       : "See the daemon's log.");
        }
        if (s->n_alarms) {
            printf("\nALARMS: an audit log was rewritten or rolled back:\n");
            for (size_t i = 0; i < s->n_alarms; i++) {
                cli_time(s->alarms[i]->at_ms, t, sizeof t);
                printf("  %s  %s: %s\n", t, s->alarms[i]->peer, s->alarms[i]->what);
            }
            printf("Tell the care team's auditor: both signed checkpoints are kept in this node's database as\n"
                   "evidence (see liaison(1), ALARMS). Do not remove the peer or its messages meanwhile.\n");
        }
        if (s->awaiting_my_ack)
            printf("\nTo acknowledge: %u medication change%s (list: liaison inbox --needs-ack; read: liaison show"
                   " ID; then: liaison ack ID)\n",
                   s->awaiting_my_ack, s->awaiting_my_ack == 1 ? "" : "s");
        if (s->awaiting_their_ack)
            printf("\nAwaiting acknowledgement, not yet overdue: %u medication change%s you sent (who has and has"
                   " not acknowledged: liaison outbox)\n",
                   s->awaiting_their_ack, s->awaiting_their_ack == 1 ? "" : "s");
        if (s->n_overdue) {
            printf("\nOVERDUE acknowledgements of your medication changes (liaison show MSG_ID for the patient):\n");
            for (size_t i = 0; i < s->n_overdue; i++)
                render_summary_line(s->overdue[i]);
            if (s->overdue_total > s->n_overdue)
                cli_overdue_more(s->overdue_total, s->n_overdue);
        }
        printf("\n");
        print_peers(s->peers, s->n_peers, false);
    }
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

static int peer_add(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "replace"}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "peer add needs a card: liaison peer add FILE (or - to paste it)");
    char *text = cli_read_file(pos[0], LIAISON_MAX_CARD_TEXT * 2);
    if (!text)
        return EXIT_USAGE;
    card_t cd;
    char err[300];
    if (card_decode(text, &cd, err, sizeof err) != 0) {
        free(text);
        return cli_fail(EXIT_USAGE, "%s is not a valid card: %s", strcmp(pos[0], "-") ? pos[0] : "the input", err);
    }
    Liaison__Control__PeerAddRequest pa = LIAISON__CONTROL__PEER_ADD_REQUEST__INIT;
    pa.card = text;
    pa.replace = cli_opt(o, "replace")->count > 0;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_ADD;
    rq.peer_add = &pa;
    Liaison__Control__Response *r;
    rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_PEER, &r);
    free(text);
    if (rc)
        return rc;
    if (r->peer) {
        /* Say what the daemon did, not what was asked: --replace of a new peer adds it, and
         * a card with the same keys (a new endpoint, say) updates the one held. */
        const char *ch = r->peer->change;
        bool upd = strcmp(ch, "updated") == 0, rep = strcmp(ch, "replaced") == 0, same = strcmp(ch, "unchanged") == 0;
        cli_done("liaison peer list", "peer %s was %s (fingerprint %s)", r->peer->id,
                 same  ? "already in the directory, unchanged"
                 : upd ? "updated (same keys)"
                 : rep ? "replaced (NEW KEYS)"
                       : ch[0] ? ch : "added",
                 r->peer->fingerprint);
        if (cli->json) {
            json_t *j = peer_json(r->peer);
            if (j)
                json_object_set_new(j, "change", json_string(ch[0] ? ch : "added"));
            cli_json_out(j);
        } else if (same) {
            printf("Peer %s (%s, %s) is already in the directory with this card: nothing changed\nFingerprint: %s\n",
                   r->peer->id, r->peer->name, r->peer->role, r->peer->fingerprint);
        } else {
            printf("%s peer %s (%s, %s)%s\nFingerprint: %s\nCompare it with them by phone: liaison fingerprint %s\n",
                   upd ? "Updated" : rep ? "Replaced" : "Added", r->peer->id, r->peer->name, r->peer->role,
                   upd ? ": same keys, card refreshed" : rep ? ": NEW KEYS" : "", r->peer->fingerprint, r->peer->id);
        }
    }
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

static int peer_list(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_LIST;
    rq.peer_list = true;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_PEERS, &r)) != 0)
        return rc;
    size_t n = r->peers->n_peers;
    if (cli->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, peer_json(r->peers->peers[i]));
        cli_json_out(json_pack("{s:o}", "peers", a));
    } else {
        print_peers(n ? r->peers->peers : NULL, n, true);
    }
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

static int peer_remove(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "peer remove needs the peer's id: liaison peer remove ID");
    if (!text_valid_id(pos[0]))
        return cli_fail(EXIT_USAGE, "peer remove: '%.64s' is not a node id (see: liaison peer list)", pos[0]);
    Liaison__Control__PeerRemoveRequest pr = LIAISON__CONTROL__PEER_REMOVE_REQUEST__INIT;
    pr.id = (char *)pos[0];
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_REMOVE;
    rq.peer_remove = &pr;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT__NOT_SET, &r)) != 0)
        return rc;
    cli_done("liaison peer list", "peer %s was removed", pos[0]);
    if (cli->json)
        cli_json_out(json_pack("{s:s, s:b}", "id", pos[0], "removed", 1));
    else
        printf("Removed peer %s: no more traffic with them in either direction. Messages still queued for them,\n"
               "if any, are held (liaison outbox shows them) and sent if their card is added again.\n", pos[0]);
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

int cmd_peer(cli_t *cli, int argc, char **argv)
{
    if (argc < 1)
        return cli_fail(EXIT_USAGE, "peer needs a subcommand: add, list or remove");
    if (strcmp(argv[0], "add") == 0)
        return cli->cmd = "peer add", peer_add(cli, argc - 1, argv + 1);
    if (strcmp(argv[0], "list") == 0)
        return cli->cmd = "peer list", peer_list(cli, argc - 1, argv + 1);
    if (strcmp(argv[0], "remove") == 0)
        return cli->cmd = "peer remove", peer_remove(cli, argc - 1, argv + 1);
    return cli_fail(EXIT_USAGE, "unknown peer subcommand '%.32s' (add, list, remove)", argv[0]);
}

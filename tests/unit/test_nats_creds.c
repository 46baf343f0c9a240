/* test_nats_creds.c: the NATS credentials of the environment
 * (nats_creds.c), nkey seeds (nkey.c) and URLs redacted for logs. No
 * server: nrpc__nats_creds_apply only sets natsOptions. */
#include "check.h"
#include "internal.h"
#include "nkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A key pair made for this test with `openssl genpkey -algorithm ed25519`,
 * encoded as nkeys; it is used nowhere else. */
#define SEED "SUANXXNXJ2YOQ5GLJICWYZH3EARTN4YRRFHCDOXRGAMIHVUSTKMQJCZABA"
#define PUB "UCP5SAXATCYTZCH25TFKSQUF5H6JAZ6MOPJQO742VQ5LPI6TEHLN2EKH"

static const char *const VARS[] = {"NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_NKEY_SEED",
                                   "NATS_CREDS", "NATS_CA", "NATS_CERT", "NATS_KEY",
                                   "NATS_TLS_HOSTNAME", NULL};

static void
clear_env(void)
{
    for (int i = 0; VARS[i]; i++)
        unsetenv(VARS[i]);
}

/* Applies the environment to fresh options; returns the result and leaves
 * the texts in what and err. */
static int
apply(const char *url, char *what, char *err)
{
    natsOptions *o = NULL;
    int rc;

    if (natsOptions_Create(&o) != NATS_OK)
        return -2;
    rc = nrpc__nats_creds_apply(o, url, what, 512, err, 512);
    natsOptions_Destroy(o);
    return rc;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void
test_nkey(void)
{
    char pub[NRPC_NKEY_PUBLIC_LEN + 1];
    char bad[] = SEED;
    size_t n = 0;
    const char *text = "# a comment\r\n  -----BEGIN USER NKEY SEED-----\n  " SEED "\r\n", *s;

    CHECK(nrpc__nkey_user_public(SEED, strlen(SEED), pub) == NULL);
    CHECK_STR(pub, PUB);

    /* One character changed: the checksum says so. */
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    CHECK_CONTAINS(nrpc__nkey_user_public(bad, strlen(bad), pub), "checksum");
    /* Not base32, too short, too long, empty. */
    CHECK(nrpc__nkey_user_public("SU" "!!!!", 6, pub) != NULL);
    CHECK(nrpc__nkey_user_public(SEED, strlen(SEED) - 1, pub) != NULL);
    CHECK(nrpc__nkey_user_public(SEED "A", strlen(SEED) + 1, pub) != NULL);
    CHECK(nrpc__nkey_user_public("", 0, pub) != NULL);
    /* A public key is not a seed. */
    CHECK(nrpc__nkey_user_public(PUB "AA", strlen(PUB) + 2, pub) != NULL);

    s = nrpc__nkey_find_seed(text, strlen(text), &n);
    CHECK(s != NULL);
    CHECK_INT(n, strlen(SEED));
    CHECK(s && strncmp(s, SEED, n) == 0);
    CHECK(nrpc__nkey_find_seed("no seed\nhere\n", 13, &n) == NULL);
    CHECK(nrpc__nkey_find_seed("", 0, &n) == NULL);
    /* "SU" at the very end, without a newline. */
    s = nrpc__nkey_find_seed("x\nSU", 4, &n);
    CHECK(s != NULL && n == 2);
}

static void
test_redact(void)
{
    char out[128];

    nrpc__url_redact("nats://alice:s3cret@h1:4222,nats://h2:4222,tok@h3", out, sizeof out);
    CHECK_STR(out, "nats://***@h1:4222,nats://h2:4222,***@h3");
    CHECK(strstr(out, "s3cret") == NULL);
    nrpc__url_redact("nats://127.0.0.1:4222", out, sizeof out);
    CHECK_STR(out, "nats://127.0.0.1:4222");
    nrpc__url_redact("", out, sizeof out);
    CHECK_STR(out, "");
    /* A password with '@' in it: everything up to the last '@' goes. */
    nrpc__url_redact("tls://u:p@ss@host:1", out, sizeof out);
    CHECK_STR(out, "tls://***@host:1");
    /* Truncated, still terminated, no secret. */
    nrpc__url_redact("nats://user:password@averyveryverylonghostname:4222", out, 16);
    CHECK_INT(strlen(out), 15);
    CHECK(strstr(out, "password") == NULL);
}

static void
test_env(const char *dir)
{
    char what[512], err[512], seedf[600], credsf[600], missing[600];

    snprintf(seedf, sizeof seedf, "%s/user.nk", dir);
    snprintf(credsf, sizeof credsf, "%s/user.creds", dir);
    snprintf(missing, sizeof missing, "%s/nothing-here", dir);
    write_file(seedf, SEED "\n");

    clear_env();
    CHECK_INT(apply("nats://127.0.0.1:4222", what, err), 0);
    CHECK_STR(what, "no credentials");

    setenv("NATS_USER", "svc", 1);
    setenv("NATS_PASSWORD", "pw-not-to-log", 1);
    CHECK_INT(apply("nats://127.0.0.1:4222", what, err), 0);
    CHECK_STR(what, "user 'svc' (NATS_USER, NATS_PASSWORD)");
    CHECK(strstr(what, "pw-not-to-log") == NULL);

    /* Credentials in the URL and in the variables: which one is meant? */
    CHECK_INT(apply("nats://a:b@127.0.0.1:4222", what, err), -1);
    CHECK_STR(err, "NATS_URL carries credentials (user@host) and NATS_USER is set: use one");

    unsetenv("NATS_PASSWORD");
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_STR(err, "NATS_USER is set without NATS_PASSWORD");
    unsetenv("NATS_USER");
    setenv("NATS_PASSWORD", "x", 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_STR(err, "NATS_PASSWORD is set without NATS_USER");
    /* Empty counts as unset. */
    setenv("NATS_PASSWORD", "", 1);
    CHECK_INT(apply(NULL, what, err), 0);

    clear_env();
    setenv("NATS_TOKEN", "t0ken", 1);
    CHECK_INT(apply(NULL, what, err), 0);
    CHECK_STR(what, "a token (NATS_TOKEN)");
    setenv("NATS_NKEY_SEED", seedf, 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_STR(err, "NATS_TOKEN and NATS_NKEY_SEED are both set: use one way to authenticate to "
                   "NATS");

    clear_env();
    setenv("NATS_NKEY_SEED", seedf, 1);
    CHECK_INT(apply(NULL, what, err), 0);
    CHECK_STR(what, "nkey " PUB " (NATS_NKEY_SEED)");
    setenv("NATS_NKEY_SEED", missing, 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "NATS_NKEY_SEED: cannot read '");
    CHECK_CONTAINS(err, "No such file or directory");
    write_file(missing, "SUAAAA\n");
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "NATS_NKEY_SEED: the seed in '");
    write_file(missing, "nothing\n");
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "holds no user nkey seed");
    unlink(missing);
    /* A directory is not a seed file. */
    setenv("NATS_NKEY_SEED", dir, 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "NATS_NKEY_SEED: cannot read '");

    clear_env();
    write_file(credsf, "-----BEGIN NATS USER JWT-----\neyJ0eXAi.e30.sig\n------END NATS USER JWT------\n\n"
                       "-----BEGIN USER NKEY SEED-----\n" SEED "\n------END USER NKEY SEED------\n");
    setenv("NATS_CREDS", credsf, 1);
    CHECK_INT(apply(NULL, what, err), 0);
    CHECK_CONTAINS(what, "(NATS_CREDS)");
    write_file(credsf, SEED "\n");
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "holds no user JWT");
    unlink(credsf);

    clear_env();
    setenv("NATS_CERT", seedf, 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_STR(err, "NATS_CERT is set without NATS_KEY");
    clear_env();
    setenv("NATS_CA", missing, 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "NATS_CA: cannot read '");
    /* Readable, but not a certificate: nats.c says so now, not at connect. */
    setenv("NATS_CA", seedf, 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_CONTAINS(err, "NATS_CA: '");
    clear_env();
    setenv("NATS_TLS_HOSTNAME", "nats.example", 1);
    CHECK_INT(apply(NULL, what, err), -1);
    CHECK_STR(err, "NATS_TLS_HOSTNAME is set without NATS_CA or NATS_CERT");
    clear_env();
    unlink(seedf);
}

int
main(void)
{
    char dir[] = "/tmp/test_nats_creds.XXXXXX";

    test_nkey();
    test_redact();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_env(dir);
    rmdir(dir);
    return check_done("nats_creds");
}

/* auth_dir.h: the directory the auth-file fuzz targets load relative
 * jwks_file paths from: made once per run under /tmp with one valid JWKS
 * in it, removed at exit. Included by fuzz_auth_file.c and
 * fuzz_auth_toml.c. */
#ifndef NRPC_FUZZ_AUTH_DIR_H
#define NRPC_FUZZ_AUTH_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_dir[64];

static void
fuzz_dir_cleanup(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/jwks.json", fuzz_dir);
    unlink(path);
    rmdir(fuzz_dir);
}

/* Makes the directory (name: the target's, for its path); aborts when it
 * cannot. Returns it. */
static const char *
fuzz_auth_dir(const char *name)
{
    char path[128];
    FILE *f;

    snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/%s.XXXXXX", name);
    if (mkdtemp(fuzz_dir) == NULL)
        abort();
    snprintf(path, sizeof path, "%s/jwks.json", fuzz_dir);
    f = fopen(path, "w");
    if (f == NULL)
        abort();
    fputs("{\"keys\": [{\"kty\": \"oct\", \"kid\": \"h\", \"k\": "
          "\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"}]}",
          f);
    fclose(f);
    atexit(fuzz_dir_cleanup);
    return fuzz_dir;
}

#endif

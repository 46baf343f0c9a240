/*
 * file.c: reading a whole small file (nrpc_read_file), the one way every
 * natsrpc program reads its credentials, keys and migrations.
 */
#include "natsrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *
nrpc_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    /* Non-blocking open and a regular file only: a FIFO or a device named
     * by mistake would block the start or never end. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f;
    char *buf;
    size_t n;

    if (fd < 0) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read '%s': not a regular file", path);
        close(fd);
        return NULL;
    }
    f = fdopen(fd, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "cannot read '%s': out of memory", path);
        return NULL;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max) {
        if (ferror(f))
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        else
            snprintf(err, errlen, "'%s' is larger than %zu bytes", path, max);
        fclose(f);
        memset(buf, 0, n); /* it may hold a secret */
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/*
 * static.c: the front end's files (GATEWAY_STATIC_DIR) and the dispatch of
 * GET /websocket.
 *
 * GET or HEAD of "/" serves index.html; of "/<path>" serves that file when
 * it is a regular file under the folder. Paths are refused (not ours, so
 * the normal routes answer) when a segment is empty or starts with '.'
 * ("..", hidden files), and the resolved file must still lie inside the
 * folder once symbolic links are followed. Files are answered from their
 * descriptor (MHD sends them with sendfile) with a Content-Type from the
 * extension and Cache-Control: no-cache, so a new build shows on reload.
 */
#include "pages.h"
#include "ws/ws.h"

#include <microhttpd.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WS_PATH "/websocket"

static const struct {
    const char *ext;
    const char *type;
} static_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

static const char *
static_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    size_t i;

    if (dot && strchr(dot, '/') == NULL)
        for (i = 0; i < sizeof static_types / sizeof static_types[0]; i++)
            if (strcasecmp(dot, static_types[i].ext) == 0)
                return static_types[i].type;
    return "application/octet-stream";
}

/* The request path as a path relative to the folder, or -1: no empty
 * segments, no segment starting with '.', no backslashes or control
 * characters. */
static int
static_rel_path(const char *url, char *out, size_t outlen)
{
    const char *p;

    if (url == NULL || url[0] != '/')
        return -1;
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '\\' || *p == 0x7f)
            return -1;
        if (*p == '/' && (p[1] == '/' || p[1] == '.' || p[1] == '\0'))
            return -1;
    }
    if ((size_t)snprintf(out, outlen, "%s", url + 1) >= outlen)
        return -1;
    return 0;
}

/* Opens the file for url when it is a regular file inside dir. Returns the
 * descriptor (and its size) or -1. */
static int
static_open(const char *dir, const char *url, off_t *size, const char **type)
{
    char rel[PATH_MAX], full[PATH_MAX], real_dir[PATH_MAX], real_file[PATH_MAX];
    struct stat st;
    size_t dlen;
    int fd;

    if (dir == NULL || *dir == '\0' || static_rel_path(url, rel, sizeof rel) != 0)
        return -1;
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, rel) >= sizeof full)
        return -1;
    if (realpath(dir, real_dir) == NULL || realpath(full, real_file) == NULL)
        return -1;
    dlen = strlen(real_dir);
    if (strncmp(real_file, real_dir, dlen) != 0 || real_file[dlen] != '/')
        return -1;
    fd = open(real_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    *size = st.st_size;
    *type = static_type(real_file);
    return fd;
}

static int
front_method_ok(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

int
gw_front_match(const gw_config *cfg, const char *url, const char *method)
{
    off_t size;
    const char *type;
    int fd;

    if (url == NULL || method == NULL)
        return 0;
    if (strcmp(url, WS_PATH) == 0)
        return strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (!front_method_ok(method))
        return 0;
    fd = static_open(cfg->static_dir, url, &size, &type);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int
gw_front_respond(gw_ws *ws, const gw_config *cfg, struct MHD_Connection *conn, const char *url,
                 const char *method, int *status)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    const char *type = NULL;
    off_t size = 0;
    int fd;

    if (strcmp(url, WS_PATH) == 0)
        return gw_ws_upgrade(ws, conn, status);
    fd = static_open(cfg->static_dir, url, &size, &type);
    if (fd < 0) {
        /* Gone between the two calls. */
        static char gone[] = "{\"error\":{\"code\":404,\"type\":\"not_found\","
                             "\"message\":\"no such file\"}}";
        resp = MHD_create_response_from_buffer(sizeof gone - 1, gone, MHD_RESPMEM_PERSISTENT);
        *status = MHD_HTTP_NOT_FOUND;
        type = "application/json";
    } else {
        resp = MHD_create_response_from_fd((uint64_t)size, fd); /* MHD closes fd */
        *status = MHD_HTTP_OK;
    }
    if (resp == NULL) {
        if (fd >= 0)
            close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(conn, (unsigned)*status, resp);
    MHD_destroy_response(resp);
    return ret;
}

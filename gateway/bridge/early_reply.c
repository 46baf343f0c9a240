/*
 * early_reply.c: an answer written on the socket while the request's body
 * is still coming.
 *
 * libmicrohttpd 0.9.75 queues a response only right after the headers or
 * once the whole body is in: MHD_queue_response refuses every state in
 * between (connection.c: it wants MHD_CONNECTION_HEADERS_PROCESSED or
 * MHD_CONNECTION_FULL_REQ_RECEIVED), and suspending does not change the
 * state. A chunked body has no size to check up front, so a body found too
 * large while it streams could only be answered when the client chose to
 * end it. Instead the access handler writes the answer here, on the
 * connection's socket (nothing else is being written on it: the previous
 * answer of a keep-alive connection went out before MHD read this request)
 * and then returns MHD_NO, on which MHD shuts the socket down and closes it
 * without reading the rest of the body.
 *
 * The head is made from the MHD_Response the gateway would have queued, so
 * its headers (Content-Type, trace ids, CORS, Retry-After, ...) are the
 * same as on any other answer; the framing is ours: Content-Length and
 * Connection: close.
 */
#include "bridge.h"

#include <microhttpd.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

typedef struct {
    char *out;
    size_t cap, len;
    int full;
} head_buf;

static int
head_printf(head_buf *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
head_printf(head_buf *h, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (h->full)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(h->out + h->len, h->cap - h->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= h->cap - h->len) {
        h->full = 1;
        return -1;
    }
    h->len += (size_t)n;
    return 0;
}

static enum MHD_Result
head_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    head_buf *h = cls;

    (void)kind;
    /* The framing is this answer's own. */
    if (strcasecmp(key, MHD_HTTP_HEADER_CONNECTION) == 0 ||
        strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0 ||
        strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        return MHD_YES;
    return head_printf(h, "%s: %s\r\n", key, value) == 0 ? MHD_YES : MHD_NO;
}

long
gw_early_head(unsigned status, struct MHD_Response *resp, size_t body_len, time_t now, char *out,
              size_t cap)
{
    head_buf h = {out, cap, 0, 0};
    const char *reason = MHD_get_reason_phrase_for(status);
    char date[64];
    struct tm tm;

    if (cap == 0)
        return -1;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    head_printf(&h, "HTTP/1.1 %u %s\r\nDate: %s\r\n", status, reason ? reason : "", date);
    MHD_get_response_headers(resp, head_header, &h);
    head_printf(&h, "Content-Length: %zu\r\nConnection: close\r\n\r\n", body_len);
    return h.full ? -1 : (long)h.len;
}

int
gw_early_reply(struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp,
               const char *body, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char head[4096];
    long hl = gw_early_head(status, resp, len, time(NULL), head, sizeof head);
    struct iovec iov[2];
    struct msghdr msg;
    ssize_t n;

    if (ci == NULL || hl < 0)
        return -1;
    iov[0].iov_base = head;
    iov[0].iov_len = (size_t)hl;
    iov[1].iov_base = (void *)body;
    iov[1].iov_len = len;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = len > 0 ? 2 : 1;
    /* Never wait on the loop: a client whose receive window is shut gets
     * the close alone, as before. An answer of a few hundred bytes fits
     * an idle socket's send buffer. */
    do
        n = sendmsg(ci->connect_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)((size_t)hl + len) ? 0 : -1;
}

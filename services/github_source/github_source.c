/* github_source.c: github_source, a data source in the Sesam style: an
 * organization's GitHub repositories as JSON entities with "_id" (the
 * repository's full name) and "_updated" (its updated_at).
 * Subject: github_source.repos.
 *
 * It pages through GitHub's REST API with outbound HTTP on the service's
 * loop (natsrpc_http.h), following the Link header's rel="next", with
 * GITHUB_TOKEN as the bearer token when set. GITHUB_API_URL points it at
 * another server (GitHub Enterprise, or a fake in the tests); next-page
 * links must stay on that server. */
#include "github_source.h"

#include <natsrpc_http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_API_URL "https://api.github.com"
#define MAX_PAGES 100             /* 10,000 repositories at 100 a page */
#define MAX_PAGE_BYTES (16u << 20) /* one page of 100 repositories is ~600 KB */
#define PAGE_TIMEOUT_MS 30000

/* One repos() call in progress: freed by the callback that ends it. */
typedef struct {
    json_t *entities;
    int pages;
    char next[2048];
} repos_state;

static const char *
api_url(void)
{
    const char *u = getenv("GITHUB_API_URL");
    return u && *u ? u : DEFAULT_API_URL;
}

/* GitHub organization names: 1 to 39 letters, digits and single hyphens. */
static int
org_valid(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 39 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c == '-' && s[i + 1] != '-')))
            return 0;
    }
    return 1;
}

/* The URL of rel="next" in a Link header (RFC 8288), into out; 0 if none. */
int
github_next_link(const char *link, char *out, size_t outlen)
{
    const char *p = link;

    while (p && *p) {
        const char *lt = strchr(p, '<'), *gt, *end;
        if (lt == NULL)
            return 0;
        gt = strchr(lt, '>');
        if (gt == NULL)
            return 0;
        end = strchr(gt, ',');
        if (end == NULL)
            end = gt + strlen(gt);
        {
            const char *rel = strstr(gt, "rel=\"next\"");
            if (rel && rel < end && (size_t)(gt - lt - 1) < outlen) {
                memcpy(out, lt + 1, (size_t)(gt - lt - 1));
                out[gt - lt - 1] = '\0';
                return 1;
            }
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

static void fetch_page(nrpc_call *call, repos_state *st, const char *url);

static void
repos_end(nrpc_call *call, repos_state *st, int reply)
{
    if (reply)
        nrpc_reply_value(call, json_incref(st->entities));
    json_decref(st->entities);
    free(st);
}

/* Adds the entities of one page; -1 when the page is not an array. */
static int
add_page(nrpc_call *call, repos_state *st, const char *body, size_t len)
{
    const char *since = nrpc_arg_string(call, "since");
    json_t *page = json_loadb(body, len, 0, NULL), *repo;
    size_t i;

    if (!json_is_array(page)) {
        json_decref(page);
        return -1;
    }
    json_array_foreach(page, i, repo) {
        const char *name = json_string_value(json_object_get(repo, "full_name"));
        const char *updated = json_string_value(json_object_get(repo, "updated_at"));
        json_t *e;
        if (!json_is_object(repo) || name == NULL)
            continue;
        if (since && updated && strcmp(updated, since) <= 0)
            continue; /* ISO 8601 UTC stamps order as strings */
        e = json_deep_copy(repo);
        json_object_set_new(e, "_id", json_string(name));
        json_object_set_new(e, "_updated", updated ? json_string(updated) : json_null());
        json_array_append_new(st->entities, e);
    }
    json_decref(page);
    return 0;
}

static void
on_page(nrpc_call *call, int code, const nrpc_http_response *r, const char *error, void *arg)
{
    repos_state *st = arg;
    const char *org = nrpc_arg_string(call, "org");
    long status;
    size_t len;
    const char *body, *link;

    if (code != 0) {
        /* 504 past the deadline, 502 unreachable, or canceled */
        nrpc_fail(call, code == NRPC_CODE_CANCELED ? NRPC_CODE_UNAVAILABLE : code, NULL,
                  "GitHub: %s", error);
        repos_end(call, st, 0);
        return;
    }
    status = nrpc_http_status(r);
    body = nrpc_http_body(r, &len);
    if (status == 403 || status == 429) {
        const char *retry = nrpc_http_header(r, "Retry-After");
        const char *left = nrpc_http_header(r, "X-RateLimit-Remaining");
        if (retry || status == 429 || (left && strcmp(left, "0") == 0)) {
            nrpc_fail(call, NRPC_CODE_UNAVAILABLE, "rate_limited",
                      "GitHub rate limit reached; retry after %s s", retry ? retry : "60");
            repos_end(call, st, 0);
            return;
        }
    }
    if (status == 404) {
        nrpc_fail(call, NRPC_CODE_NOT_FOUND, NULL, "no GitHub organization '%s'", org);
        repos_end(call, st, 0);
        return;
    }
    if (status != 200) {
        nrpc_fail(call, 502, "bad_gateway", "GitHub answered %ld for organization '%s'", status,
                  org);
        repos_end(call, st, 0);
        return;
    }
    if (add_page(call, st, body, len) != 0) {
        nrpc_fail(call, 502, "bad_gateway", "GitHub sent a page that is not a JSON array");
        repos_end(call, st, 0);
        return;
    }
    link = nrpc_http_header(r, "Link");
    if (link && github_next_link(link, st->next, sizeof st->next)) {
        /* Pages come from the API we were pointed at, nowhere else. */
        if (strncmp(st->next, api_url(), strlen(api_url())) != 0) {
            nrpc_fail(call, 502, "bad_gateway", "GitHub's next page is on another server: %s",
                      st->next);
            repos_end(call, st, 0);
            return;
        }
        if (st->pages >= MAX_PAGES) {
            nrpc_fail(call, 502, "bad_gateway", "more than %d pages of repositories", MAX_PAGES);
            repos_end(call, st, 0);
            return;
        }
        fetch_page(call, st, st->next);
        return;
    }
    repos_end(call, st, 1);
}

static void
fetch_page(nrpc_call *call, repos_state *st, const char *url)
{
    const char *token = getenv("GITHUB_TOKEN");
    char auth[512];
    const char *headers[] = {"Accept", "application/vnd.github+json", "X-GitHub-Api-Version",
                             "2022-11-28", token && *token ? "Authorization" : NULL, auth, NULL};
    nrpc_http_req req = {.url = url,
                         .headers = headers,
                         .timeout_ms = PAGE_TIMEOUT_MS,
                         .max_response = MAX_PAGE_BYTES};
    nrpc_status s;

    snprintf(auth, sizeof auth, "Bearer %s", token ? token : "");
    st->pages++;
    s = nrpc_http_request(nrpc_service_data(nrpc_call_service(call)), call, &req, on_page, st);
    if (s != NRPC_OK) {
        nrpc_fail(call, 502, "bad_gateway", "cannot ask GitHub: %s", nrpc_status_text(s));
        repos_end(call, st, 0);
    }
}

/* repos(org, since = null) -> [entities] */
static void
repos(nrpc_call *call)
{
    const char *org = nrpc_arg_string(call, "org");
    repos_state *st;
    char url[1024];

    if (!org_valid(org)) {
        nrpc_fail(call, NRPC_CODE_BAD_REQUEST, NULL,
                  "argument 'org' must be a GitHub organization name (1 to 39 letters, digits "
                  "and single hyphens), not '%.64s'",
                  org);
        return;
    }
    if (strlen(api_url()) > 512) {
        nrpc_fail(call, NRPC_CODE_INTERNAL, NULL, "GITHUB_API_URL is longer than 512 bytes");
        return;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL || (st->entities = json_array()) == NULL) {
        free(st);
        nrpc_fail(call, NRPC_CODE_UNAVAILABLE, NULL, "out of memory");
        return;
    }
    snprintf(url, sizeof url, "%s/orgs/%s/repos?per_page=100", api_url(), org);
    fetch_page(call, st, url);
}

static int
github_start(nrpc_service *svc)
{
    nrpc_http *h = NULL;

    if (nrpc_http_start(&h, svc) != NRPC_OK)
        return -1;
    nrpc_service_set_data(svc, h);
    nrpc_log(NRPC_LOG_INFO, "GitHub API at %s%s", api_url(),
             getenv("GITHUB_TOKEN") && *getenv("GITHUB_TOKEN") ? " with a token" : "");
    return 0;
}

static void
github_stop(nrpc_service *svc)
{
    nrpc_http_stop(nrpc_service_data(svc));
    nrpc_service_set_data(svc, NULL);
}

static const nrpc_param repos_params[] = {
    {"org", NRPC_STRING, NULL, "the GitHub organization", "\"nats-io\""},
    {"since", NRPC_STRING, "null", "only repositories updated after this ISO 8601 time", NULL},
    {NULL},
};

static const char *const repos_routes[] = {"GET /github/{org}/repos", NULL};

static const nrpc_rpc github_rpcs[] = {
    {"repos", repos, repos_params,
     "An organization's repositories as entities with _id and _updated.", 0, repos_routes,
     NRPC_PUBLIC /* public data, read-only */},
    {NULL},
};

const nrpc_service_def github_source_service = {
    .name = "github_source",
    .version = "1.0.0",
    .description = "GitHub repositories as JSON entities (a Sesam-style data source).",
    .rpcs = github_rpcs,
    .on_start = github_start,
    .on_stop = github_stop,
};

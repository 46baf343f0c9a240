/* test_github_link.c: github_source's reading of GitHub's Link header. */
#include "check.h"
#include "../../services/github_source/github_source.h"

int
main(void)
{
    char out[128];

    CHECK_INT(github_next_link("<https://a/x?page=2>; rel=\"next\", <https://a/x?page=9>; "
                               "rel=\"last\"",
                               out, sizeof out),
              1);
    CHECK_STR(out, "https://a/x?page=2");
    /* next after last, and no spaces */
    CHECK_INT(github_next_link("<https://a/x?page=9>;rel=\"last\",<https://a/x?page=3>;rel=\"next\"",
                               out, sizeof out),
              1);
    CHECK_STR(out, "https://a/x?page=3");
    /* the last page has no next */
    CHECK_INT(github_next_link("<https://a/x?page=1>; rel=\"first\", <https://a/x?page=2>; "
                               "rel=\"prev\"",
                               out, sizeof out),
              0);
    /* malformed or hostile values */
    CHECK_INT(github_next_link("", out, sizeof out), 0);
    CHECK_INT(github_next_link("rel=\"next\"", out, sizeof out), 0);
    CHECK_INT(github_next_link("<https://a/x; rel=\"next\"", out, sizeof out), 0);
    CHECK_INT(github_next_link("<>; rel=\"next\"", out, sizeof out), 1);
    CHECK_STR(out, "");
    /* a URL longer than the buffer is not cut into another URL */
    CHECK_INT(github_next_link("<https://a/very/long/path/that/does/not/fit>; rel=\"next\"", out,
                               16),
              0);
    return check_done("test_github_link");
}
